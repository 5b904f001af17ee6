/**
 * The `headers` of an injected answer (http-error, ws-reject) cannot carry the headers that frame
 * the message or belong to the connection: a Content-Length or Transfer-Encoding next to the one
 * the proxy sets made a response with both (a client, or the next request on the connection, read
 * garbage), and Connection/Upgrade/Keep-Alive/TE/Trailer/Proxy-Connection are the proxy's to
 * manage per hop. The profile is refused at load with a message that names the header and why.
 * The headers a profile may set still reach the client, each response framed once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProfileError, type ProfileProblem } from '../../src/errors.js';
import { loadProfile } from '../../src/rules/index.js';
import { rawExchange, startTestProxy, startUpstream, tempDir } from '../helpers.js';

async function problemsOf(yaml: string): Promise<ProfileProblem[]> {
  const file = path.join(tempDir(), 'headers.yaml');
  fs.writeFileSync(file, yaml);
  try {
    await loadProfile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return [...(err as ProfileError).problems];
  }
  throw new Error('expected the profile to be refused');
}

const REFUSED: ReadonlyArray<readonly [string, RegExp]> = [
  ['Content-Length', /^Content-Length frames the response: the proxy sets it from the body/],
  ['transfer-encoding', /^transfer-encoding frames the response: the proxy sets it from the body/],
  ['Connection', /^Connection is a hop-by-hop header \(RFC 9110 §7\.6\.1\)/],
  ['Keep-Alive', /^Keep-Alive is a hop-by-hop header/],
  ['Upgrade', /^Upgrade is a hop-by-hop header/],
  ['TE', /^TE is a hop-by-hop header/],
  ['Proxy-Connection', /^Proxy-Connection is a hop-by-hop header/],
  ['Trailer', /^Trailer announces trailer fields, and an injected answer has none/],
  ['Host', /^Host is a request header/],
];

describe('headers an injected answer cannot carry', () => {
  it.each(REFUSED)('%s is refused at its own line and path, with why', async (name, why) => {
    const ps = await problemsOf(`name: h\nrules:\n  - name: e\n    fault:\n      type: http-error\n      headers:\n        x-ok: "1"\n        ${name}: "3"\n`);
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ line: 8, path: `rules[0].fault.headers.${name}` });
    expect(ps[0]?.message).toMatch(why);
  });

  it('is refused in any case, for ws-reject too, every one at once', async () => {
    const ps = await problemsOf('name: h\nrules:\n  - fault: { type: ws-reject, headers: { CONTENT-length: 3, transfer-ENCODING: chunked, connection: close } }\n');
    expect(new Set(ps.map((p) => p.path))).toEqual(new Set(['rules[0].fault.headers.CONTENT-length', 'rules[0].fault.headers.transfer-ENCODING', 'rules[0].fault.headers.connection']));
  });

  it('Retry-After given twice (retryAfter and headers) is refused at retryAfter, for ws-reject too', async () => {
    for (const type of ['http-error', 'ws-reject']) {
      const ps = await problemsOf(`name: h\nrules:\n  - name: e\n    fault:\n      type: ${type}\n      retryAfter: 2\n      headers:\n        Retry-After: "5"\n`);
      expect(ps).toHaveLength(1);
      expect(ps[0]).toMatchObject({ line: 6, path: 'rules[0].fault.retryAfter' });
      expect(ps[0]?.message).toMatch(/Retry-After is given twice/);
    }
    // Either one alone is fine.
    await expect(loadProfile(await (async () => {
      const file = path.join(tempDir(), 'one.yaml');
      fs.writeFileSync(file, 'name: h\nrules:\n  - fault: { type: http-error, headers: { Retry-After: "5" } }\n');
      return file;
    })())).resolves.toBeDefined();
  });

  it('the headers a profile may set reach the client, and each pipelined answer is framed once', async () => {
    const up = await startUpstream((_req, res) => res.end('up'));
    const profile = await (async () => {
      const file = path.join(tempDir(), 'ok.yaml');
      fs.writeFileSync(file, 'name: ok\nrules:\n  - fault: { type: http-error, status: 503, headers: { x-extra: yes, cache-control: no-store }, body: down }\n');
      return loadProfile(file);
    })();
    const proxy = await startTestProxy({ target: up.url, profile });
    const port = Number(new URL(proxy.url).port);
    const { data } = await rawExchange(port, 'GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const answers = data.split(/(?=HTTP\/1\.1 )/);
    expect(answers).toHaveLength(2);
    for (const a of answers) {
      expect(a).toMatch(/^HTTP\/1\.1 503 /);
      expect(a).toMatch(/\r\nx-extra: yes\r\n/i);
      expect(a).toMatch(/\r\ncache-control: no-store\r\n/i);
      expect(a.match(/\r\ncontent-length: /gi)).toHaveLength(1);
      expect(a).not.toMatch(/\r\ntransfer-encoding: /i);
      expect(a.endsWith('down')).toBe(true);
    }
  });
});
