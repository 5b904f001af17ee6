/**
 * Web pages cannot drive the control API: cross-site requests (a foreign Origin, or Sec-Fetch-Site
 * cross-site/same-site) and DNS rebinding (a foreign Host) are refused, a profile file selected by
 * path is never quoted back, and everything legitimate still works — curl with its default form
 * Content-Type, loopback names with ports, [::1], the ctl client, the Docker/Kubernetes sidecar on
 * 0.0.0.0 with a token, and the image's health check.
 * Real servers on port 0, raw sockets where the headers must be exactly what a browser sends.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AdminClient } from '../../src/admin/client.js';
import { startAdmin } from '../../src/admin/server.js';
import { checkFetchSite, checkOrigin, createHostPolicy, hostnameOf, isLoopbackHost } from '../../src/admin/request-guard.js';
import { createLogger } from '../../src/log.js';
import type { ProxyHandle } from '../../src/index.js';
import { onCleanup, request, tempDir } from '../helpers.js';
import { api, PROFILE_503, PROFILE_LATE, startAdminProxy } from './admin-helpers.js';

const savedAllow = process.env.AFTERSHOCK_ADMIN_ALLOW_HOST;
afterEach(() => {
  if (savedAllow === undefined) delete process.env.AFTERSHOCK_ADMIN_ALLOW_HOST;
  else process.env.AFTERSHOCK_ADMIN_ALLOW_HOST = savedAllow;
});

interface RawReply {
  status: number;
  head: string;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers loosely
  json: any;
}

/**
 * One request written byte for byte on a fresh socket (`Connection: close`, the socket is not
 * half-closed early), with exactly the headers given: no Host unless `headers` has one.
 */
function raw(port: number, method: string, target: string, headers: Record<string, string>, body = '', opts: { version?: string; host?: string } = {}): Promise<RawReply> {
  const lines = [`${method} ${target} HTTP/${opts.version ?? '1.1'}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (body !== '' || method !== 'GET') lines.push(`content-length: ${Buffer.byteLength(body)}`);
  lines.push('connection: close');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, opts.host ?? '127.0.0.1', () => s.write(`${lines.join('\r\n')}\r\n\r\n${body}`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split === -1 ? text : text.slice(0, split);
      const rest = split === -1 ? '' : text.slice(split + 4);
      let json: unknown = null;
      try {
        json = JSON.parse(rest);
      } catch {
        /* not JSON */
      }
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head, body: rest, json });
    });
  });
}

const portOf = (url: string): number => Number(new URL(url).port);

/** A fault a hostile page would like to switch on. */
const TEAPOT = JSON.stringify({ name: 'csrf', match: { path: '/**' }, fault: { type: 'http-error', status: 418 } });

/** A second control API on the same proxy, with options `startProxy` does not pass through. */
async function startExtraAdmin(proxy: ProxyHandle, opts: { host: string; token?: string; allowHosts?: string[] }) {
  const admin = await startAdmin(proxy, { port: 0, log: createLogger({ level: 'silent' }), ...opts });
  onCleanup(() => admin.close());
  return admin;
}

describe('control API: requests from web pages are refused', () => {
  it('a cross-site text/plain POST (no preflight in a browser) is refused and the fault never fires', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    const host = `127.0.0.1:${port}`;

    // What a browser sends for fetch(..., { method: 'POST', mode: 'no-cors', body }) from another site.
    const browser = { host, 'content-type': 'text/plain;charset=UTF-8', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' };
    const crossSite = await raw(port, 'POST', '/faults', { ...browser, origin: 'https://evil.example' }, TEAPOT);
    expect(crossSite.status).toBe(403);
    expect(crossSite.json).toMatchObject({ error: 'origin-not-allowed' });
    expect(crossSite.json.message).toMatch(/evil\.example.*not this control API's own origin/);
    // Either mark alone is enough: Sec-Fetch-Site without Origin, Origin without Sec-Fetch-Site (an older browser).
    const siteOnly = await raw(port, 'POST', '/faults', browser, TEAPOT);
    expect(siteOnly.status).toBe(403);
    expect(siteOnly.json).toMatchObject({ error: 'cross-site-request' });
    expect(siteOnly.json.message).toMatch(/Sec-Fetch-Site "cross-site".*curl, scripts and aftershock ctl send none/);
    expect((await raw(port, 'POST', '/faults', { host, origin: 'https://evil.example', 'content-type': 'text/plain' }, TEAPOT)).status).toBe(403);
    // An HTML form posting from another site.
    const form = { host, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
    expect((await raw(port, 'POST', '/reset', form, 'a=1')).status).toBe(403);

    // JSON typed, but from a page: a browser would have preflighted; refused on Origin all the same.
    const jsonFromPage = await raw(port, 'POST', '/faults', { host, origin: 'http://localhost:3000', 'content-type': 'application/json' }, TEAPOT);
    expect(jsonFromPage.status).toBe(403);
    // A sandboxed iframe or a redirect sends `Origin: null`.
    expect((await raw(port, 'POST', '/faults', { host, origin: 'null', 'content-type': 'application/json' }, TEAPOT)).status).toBe(403);

    expect(proxy.engine.stats().some((r) => r.name === 'csrf')).toBe(false);
    expect((await request(`${proxy.url}/x`)).status).toBe(200);
  });

  it('Sec-Fetch-Site: cross-site and same-site are refused on every method; same-origin, none and absent pass', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    const host = `127.0.0.1:${port}`;
    proxy.setProfile(PROFILE_503);

    // No Origin at all: the Sec-Fetch-Site rule alone refuses.
    for (const site of ['cross-site', 'same-site', 'Cross-Site', 'something-new']) {
      const r = await raw(port, 'POST', '/faults', { host, 'sec-fetch-site': site, 'content-type': 'text/plain' }, TEAPOT);
      expect(r.status, site).toBe(403);
      expect(r.json?.error, site).toBe('cross-site-request');
    }
    // A dev server on localhost:3000 is the same site (sites ignore ports).
    const devServer = await raw(port, 'POST', '/reset', { host, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors' });
    expect(devServer.json.message).toMatch(/localhost:3000/);
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const target = method === 'PUT' ? '/profile' : method === 'PATCH' ? '/rules/api-503' : '/faults/api-503';
      const r = await raw(port, method, target, { host, 'sec-fetch-site': 'cross-site' }, method === 'PUT' ? 'name: x\nrules: []\n' : method === 'PATCH' ? '{"enabled":false}' : '');
      expect(r.status, method).toBe(403);
    }
    // A GET an <img>, <script> or iframe loads from another site: refused, the answer is never sent.
    const embedded = await raw(port, 'GET', '/profile', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'script' });
    expect(embedded.status).toBe(403);
    expect(embedded.body).not.toMatch(/api-503/);
    expect((await raw(port, 'GET', '/profile', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' })).status).toBe(403);
    expect(proxy.profile.name).toBe('api-down');
    expect(proxy.engine.stats().find((r) => r.name === 'api-503')?.enabled).toBe(true);
    expect(proxy.engine.stats().some((r) => r.name === 'csrf')).toBe(false);

    // The API's own page, a typed URL or bookmark, and a link a user follows from another site pass.
    const own = await raw(port, 'POST', '/marks', { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'content-type': 'application/json' }, '{"label":"same-origin"}');
    expect(own.status).toBe(201);
    expect((await raw(port, 'POST', '/marks', { host, 'sec-fetch-site': 'same-origin', 'content-type': 'text/plain;charset=UTF-8' }, '{"label":"same-origin, no origin"}')).status).toBe(201);
    expect((await raw(port, 'GET', '/rules', { host, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status).toBe(200);
    expect((await raw(port, 'GET', '/report?format=html', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status).toBe(200);
    expect((await raw(port, 'GET', '/rules', { host, 'sec-fetch-site': '' })).status).toBe(200);
  });

  it('curl-style bodies work whatever their Content-Type: -d sends a form type, --data-binary too', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    const host = `127.0.0.1:${port}`;
    // Exactly what `curl -d '{"label":"x"}' http://127.0.0.1:PORT/marks` sends.
    const curl = { host, 'user-agent': 'curl/8.5.0', accept: '*/*', 'content-type': 'application/x-www-form-urlencoded' };
    const mark = await raw(port, 'POST', '/marks', curl, '{"label":"x"}');
    expect(mark.status).toBe(201);
    expect((await raw(port, 'POST', '/faults', curl, TEAPOT)).status).toBe(201);
    expect(proxy.engine.stats().some((r) => r.name === 'csrf')).toBe(true);
    expect((await request(`${proxy.url}/x`)).status).toBe(418);
    const patch = await raw(port, 'PATCH', '/rules/csrf', curl, '{"enabled":false}');
    expect(patch.status).toBe(200);
    expect(patch.json.enabled).toBe(false);
    // Any other type, or none, reads the same JSON; a body that is not JSON still says so.
    for (const type of ['text/plain', 'multipart/form-data; boundary=x', 'application/json', undefined]) {
      const headers = type === undefined ? { host } : { host, 'content-type': type };
      expect((await raw(port, 'POST', '/marks', headers, `{"label":"${type ?? 'untyped'}"}`)).status, type).toBe(201);
    }
    const notJson = await raw(port, 'POST', '/marks', curl, 'label=x');
    expect(notJson.status).toBe(400);
    // Bodyless actions, as curl -X POST and ctl send them.
    expect((await raw(port, 'POST', '/reset', curl)).status).toBe(200);
    expect((await raw(port, 'DELETE', '/faults/csrf', { host })).status).toBe(200);
  });

  it('PUT /profile takes YAML or JSON whatever the Content-Type, as curl --data-binary sends it', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    const host = `127.0.0.1:${port}`;
    // `curl -X PUT --data-binary @api-down.yaml http://127.0.0.1:PORT/profile`.
    const r = await raw(port, 'PUT', '/profile', { host, 'user-agent': 'curl/8.5.0', accept: '*/*', 'content-type': 'application/x-www-form-urlencoded' }, PROFILE_503);
    expect(r.status).toBe(200);
    expect(r.json.name).toBe('api-down');
    expect(proxy.profile.name).toBe('api-down');

    for (const type of ['text/plain', 'application/yaml', 'text/yaml; charset=utf-8', 'application/x-yaml', 'text/x-yaml']) {
      await proxy.selectProfile('passthrough');
      expect((await raw(port, 'PUT', '/profile', { host, 'content-type': type }, PROFILE_503)).status, type).toBe(200);
      expect(proxy.profile.name, type).toBe('api-down');
    }
    const asJson = JSON.stringify({ name: 'json-one', rules: [] });
    expect((await raw(port, 'PUT', '/profile', { host, 'content-type': 'application/x-www-form-urlencoded' }, asJson)).status).toBe(200);
    expect(proxy.profile.name).toBe('json-one');

    // An invalid one still lists its problems (the client's own text), and changes nothing.
    const broken = await raw(port, 'PUT', '/profile', { host, 'content-type': 'application/x-www-form-urlencoded' }, 'name: x\nrules: 5\n');
    expect(broken.status).toBe(422);
    expect(broken.json.problems.length).toBeGreaterThan(0);
    expect(proxy.profile.name).toBe('json-one');
  });

  it('a DNS-rebinding Host is refused on every route, probes included, before the token is asked for', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    proxy.setProfile(PROFILE_503);
    for (const host of [`rebind.evil.example:${port}`, 'rebind.evil.example', `127.0.0.1.nip.io:${port}`, `localhost.evil.example:${port}`, `evil.localhost:${port}`, 'a b', 'user@127.0.0.1']) {
      for (const target of ['/rules', '/healthz', '/readyz', '/profile']) {
        const r = await raw(port, 'GET', target, { host });
        expect(r.status, `${host} ${target}`).toBe(403);
        expect(r.json?.error, host).toBe('host-not-allowed');
        expect(r.body).not.toMatch(/api-503/);
      }
    }
    const r = await raw(port, 'GET', '/rules', { host: `rebind.evil.example:${port}` });
    expect(r.json.message).toMatch(/DNS rebinding.*--admin-allow-host.*AFTERSHOCK_ADMIN_ALLOW_HOST/);
    expect(r.head).toMatch(/content-type: application\/json/i);

    const rebindPost = await raw(port, 'POST', '/faults', { host: `rebind.evil.example:${port}`, origin: `http://rebind.evil.example:${port}`, 'content-type': 'application/json' }, TEAPOT);
    expect(rebindPost.status).toBe(403);
    expect(proxy.engine.stats().some((x) => x.name === 'csrf')).toBe(false);

    const withToken = await startAdminProxy({ adminToken: 't0ken' });
    const p2 = portOf(withToken.admin);
    const refused = await raw(p2, 'GET', '/rules', { host: `rebind.evil.example:${p2}`, authorization: 'Bearer t0ken' });
    expect(refused.status).toBe(403);
  });

  it('POST /profile/select with a path never quotes the file it read', async () => {
    const dir = tempDir();
    const secrets = path.join(dir, 'secrets.env');
    fs.writeFileSync(secrets, 'DB_PASSWORD=hunter2\0API_KEY=sk-live-1234\0');
    const yamlSecrets = path.join(dir, 'config.yaml');
    fs.writeFileSync(yamlSecrets, 'name: x\nrules:\n  - name: r\n    fault: { type: http-error, status: 503 }\n    aws_secret_access_key: wJalrXUtnFEMI\n');
    const { admin, proxy } = await startAdminProxy();
    // Not a profile file by its name: refused before it is read, the same for a file that exists and one that does not.
    for (const file of [secrets, '/etc/shadow', '/proc/self/environ', path.join(dir, 'missing.env')]) {
      const r = await api(admin, 'POST', '/profile/select', { body: { name: file } });
      expect(r.status, file).toBe(400);
      expect(r.json.message).toMatch(/built-in profile name .* or the path of a \.yaml, \.yml or \.json file/);
    }
    const files = [yamlSecrets];
    for (const file of files) {
      const r = await api(admin, 'POST', '/profile/select', { body: { name: file } });
      expect(r.status, file).toBe(422);
      expect(r.json).toMatchObject({ error: 'profile-invalid', problems: [] });
      expect(r.json.message).toContain(JSON.stringify(file));
      expect(r.json.message).toMatch(/not a valid profile: \d+ problems?.*does not quote files it reads.*aftershock profiles validate/);
      for (const leaked of ['hunter2', 'sk-live', 'DB_PASSWORD', 'wJalrXUtnFEMI', 'aws_secret', 'PATH=', 'SHELL=', 'HOME=']) {
        expect(r.text, `${file} leaks ${leaked}`).not.toContain(leaked);
      }
    }
    expect((await api(admin, 'POST', '/profile/select', { body: { name: yamlSecrets } })).json.message).toMatch(/\(line 5\)/);
    expect(proxy.profile.name).toBe('passthrough');

    // A valid file is still applied, and a PUT body (the client's own text) still gets every problem.
    const good = path.join(dir, 'slow.yaml');
    fs.writeFileSync(good, PROFILE_LATE);
    expect((await api(admin, 'POST', '/profile/select', { body: { name: good } })).status).toBe(200);
    const put = await api(admin, 'PUT', '/profile', { body: 'name: x\nrules: 5\n' });
    expect(put.status).toBe(422);
    expect(put.json.problems.length).toBeGreaterThan(0);
  });
});

describe('control API: legitimate clients still get in', () => {
  it('loopback Host names with and without a port, any case, IPv6 [::1]; its own Origin', async () => {
    const { admin, proxy } = await startAdminProxy();
    const port = portOf(admin);
    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST', `localhost.:${port}`, `127.0.0.2:${port}`, `[::1]:${port}`, '[::1]', `[0:0:0:0:0:0:0:1]:${port}`, `[::ffff:127.0.0.1]:${port}`]) {
      expect((await raw(port, 'GET', '/rules', { host })).status, host).toBe(200);
    }
    // A page the API served itself posts with its own origin.
    const own = await raw(port, 'POST', '/marks', { host: `localhost:${port}`, origin: `http://localhost:${port}`, 'content-type': 'application/json; charset=utf-8' }, '{"label":"from its own page"}');
    expect(own.status).toBe(201);
    // A different port on the same name is another origin.
    expect((await raw(port, 'POST', '/marks', { host: `localhost:${port}`, origin: `http://localhost:${port + 1}`, 'content-type': 'application/json' }, '{"label":"x"}')).status).toBe(403);
    // Bodyless actions need no type, as curl -X POST and ctl send them.
    expect((await raw(port, 'POST', '/reset', { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await raw(port, 'POST', '/scenario/start', { host: `127.0.0.1:${port}` })).status).toBe(200);
    expect((await raw(port, 'DELETE', '/faults/none', { host: `127.0.0.1:${port}` })).status).toBe(404);
    // HTTP/1.0 without Host is no browser; HTTP/1.1 without Host is refused by Node itself.
    expect((await raw(port, 'GET', '/healthz', {}, '', { version: '1.0' })).status).toBe(200);
    expect((await raw(port, 'GET', '/healthz', {})).status).toBe(400);
    expect(proxy.profile.name).toBe('passthrough');
  });

  it('a control API listening on [::1] answers fetch at http://[::1]:port', async (ctx) => {
    const { proxy } = await startAdminProxy({ admin: false });
    let admin;
    try {
      admin = await startExtraAdmin(proxy, { host: '::1' });
    } catch {
      ctx.skip(); // no IPv6 loopback on this machine
      return;
    }
    expect(admin.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const client = new AdminClient({ url: admin.url });
    await client.mark('over ipv6');
    expect((await client.ready()).status).toBe('ready');
  });

  it('the ctl client (AdminClient) sends the right headers for every kind of call', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'slow.yaml');
    fs.writeFileSync(file, PROFILE_LATE);
    const { admin, proxy } = await startAdminProxy({ adminToken: 'ctl-token' });
    const client = new AdminClient({ url: admin, token: 'ctl-token' });
    expect((await client.setProfile(PROFILE_503)).name).toBe('api-down');
    expect((await client.setProfile(JSON.stringify({ name: 'as-json', rules: [] }))).name).toBe('as-json');
    expect((await client.selectProfile(file)).name).toBe('api-slow');
    await client.addFault({ name: 'now-503', match: { path: '/api/**' }, fault: { type: 'http-error', status: 503 } }, '30s');
    expect((await client.patchRule('now-503', { probability: 0.5 })).probability).toBe(0.5);
    await client.mark('ctl');
    await client.startScenario();
    await client.stopScenario();
    await client.reset();
    await client.removeFault('now-503');
    // A raw string through request() is labelled JSON, not text/plain.
    expect((await client.request('POST', '/marks', '{"label":"raw"}')).status).toBe(201);
    await expect(client.selectProfile('/proc/self/environ')).rejects.toThrow(/400 .*the path of a \.yaml, \.yml or \.json file/);
    expect(proxy.profile.name).toBe('api-slow');
  });

  it('names the operator allows (--admin-allow-host / AFTERSHOCK_ADMIN_ALLOW_HOST), exact or as .domain', async () => {
    const { proxy } = await startAdminProxy({ admin: false });
    const admin = await startExtraAdmin(proxy, { host: '127.0.0.1', allowHosts: ['chaos.test', '.corp.example'] });
    const port = portOf(admin.url);
    for (const host of [`chaos.test:${port}`, 'CHAOS.TEST', `api.corp.example:${port}`, `corp.example:${port}`]) {
      expect((await raw(port, 'GET', '/rules', { host })).status, host).toBe(200);
    }
    for (const host of [`chaos.test.evil:${port}`, `notcorp.example:${port}`]) {
      const r = await raw(port, 'GET', '/rules', { host });
      expect(r.status, host).toBe(403);
      expect(r.json.message).toMatch(/chaos\.test, \.corp\.example/);
    }
    // Still only its own origin may post from a page.
    expect((await raw(port, 'POST', '/marks', { host: `chaos.test:${port}`, origin: `http://chaos.test:${port}`, 'content-type': 'application/json' }, '{"label":"x"}')).status).toBe(201);

    process.env.AFTERSHOCK_ADMIN_ALLOW_HOST = 'aftershock.internal, other.internal';
    const fromEnv = await startAdminProxy();
    const p2 = portOf(fromEnv.admin);
    expect((await raw(p2, 'GET', '/rules', { host: `aftershock.internal:${p2}` })).status).toBe(200);
    expect((await raw(p2, 'GET', '/rules', { host: `other.internal` })).status).toBe(200);
    expect((await raw(p2, 'GET', '/rules', { host: `third.internal` })).status).toBe(403);
  });

  it('the sidecar: on 0.0.0.0 with a token, any Host name (Compose service, pod IP) gets in with the token; probes stay open', async () => {
    const { proxy } = await startAdminProxy({ admin: false });
    const admin = await startExtraAdmin(proxy, { host: '0.0.0.0', token: 'sidecar-token' });
    const port = portOf(admin.url);
    for (const host of [`aftershock:${port}`, `10.42.0.17:${port}`, `api-7d9f-abcde.default.pod.cluster.local:${port}`, `127.0.0.1:${port}`]) {
      expect((await raw(port, 'GET', '/healthz', { host })).status, host).toBe(200);
      expect((await raw(port, 'GET', '/readyz', { host })).status, host).toBe(200);
      expect((await raw(port, 'GET', '/metrics', { host })).status, host).toBe(401);
      expect((await raw(port, 'GET', '/metrics', { host, authorization: 'Bearer sidecar-token' })).status, host).toBe(200);
    }
    // The token does not open the door to web pages.
    const fromPage = await raw(port, 'POST', '/faults', { host: `aftershock:${port}`, origin: 'https://evil.example', authorization: 'Bearer sidecar-token', 'content-type': 'application/json' }, TEAPOT);
    expect(fromPage.status).toBe(403);
    const marked = await raw(port, 'POST', '/faults', { host: `aftershock:${port}`, 'sec-fetch-site': 'cross-site', authorization: 'Bearer sidecar-token', 'content-type': 'text/plain' }, TEAPOT);
    expect(marked.status).toBe(403);
    expect(marked.json.error).toBe('cross-site-request');
    expect(proxy.engine.stats().some((r) => r.name === 'csrf')).toBe(false);
  });

  it("the image's HEALTHCHECK command passes against AFTERSHOCK_ADMIN=0.0.0.0:<port>", async () => {
    const dockerfile = fs.readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const script = /CMD node -e "(.*)"\s*$/m.exec(dockerfile)?.[1];
    expect(script).toBeDefined();
    const { proxy } = await startAdminProxy({ admin: false });
    const admin = await startExtraAdmin(proxy, { host: '0.0.0.0', token: 'image-token' });
    const env = { ...process.env, AFTERSHOCK_ADMIN: `0.0.0.0:${portOf(admin.url)}` };
    // Not spawnSync: the control API answering it runs on this test's event loop.
    const code = await new Promise<number | null>((resolve) => spawn(process.execPath, ['-e', script as string], { env, stdio: 'ignore' }).on('exit', resolve));
    expect(code).toBe(0);
  });

  it("the image's HEALTHCHECK passes with the control API off in every spelling run takes (off, OFF, none, False)", async () => {
    const dockerfile = fs.readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8');
    const script = /CMD node -e "(.*)"\s*$/m.exec(dockerfile)?.[1] as string;
    for (const off of ['off', 'OFF', 'none', ' False ']) {
      const env = { ...process.env, AFTERSHOCK_ADMIN: off };
      const code = await new Promise<number | null>((resolve) => spawn(process.execPath, ['-e', script], { env, stdio: 'ignore' }).on('exit', resolve));
      expect(code, off).toBe(0);
    }
  });
});

describe('request-guard decisions', () => {
  const loopbackOnly = createHostPolicy({ listenHost: '127.0.0.1', tokenRequired: false, allowHosts: [] });

  it('reads Host headers strictly: loopback is 127/8, ::1 and localhost, not names that start like them', () => {
    expect(hostnameOf('[::1]:8081')).toBe('::1');
    expect(hostnameOf('LocalHost.:80')).toBe('localhost');
    expect(hostnameOf('127.1')).toBe('127.0.0.1');
    expect(hostnameOf('evil.example@127.0.0.1')).toBeNull();
    expect(hostnameOf('127.0.0.1/x')).toBeNull();
    expect(hostnameOf('host:99999')).toBeNull();
    for (const h of ['localhost', '127.0.0.1', '127.255.0.9', '::1', '[::1]:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['127.0.0.1.nip.io', 'localhost.evil.example', 'evil.localhost', '0.0.0.0', '::', '10.0.0.1', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('no DNS name under a label it controls passes the loopback policy (property)', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(label, fc.constantFrom('127.0.0.1', 'localhost', '127.1.2.3', 'localhost.'), fc.option(fc.integer({ min: 1, max: 65535 })), (l, base, port) => {
        const host = `${base}${base.endsWith('.') ? '' : '.'}${l}${port === null ? '' : `:${port}`}`;
        expect(loopbackOnly.check(host)?.status, host).toBe(403);
        expect(loopbackOnly.check(`${l}.${base}${port === null ? '' : `:${port}`}`)?.status).toBe(403);
      }),
    );
  });

  it('beyond loopback: IP addresses pass, names need the listen name, an allowed name or a token', () => {
    const open = createHostPolicy({ listenHost: '0.0.0.0', tokenRequired: false, allowHosts: [] });
    expect(open.beyondLoopback).toBe(true);
    expect(open.anyHost).toBe(false);
    expect(open.check('10.42.0.17:8081')).toBeNull();
    expect(open.check('[fd00::5]:8081')).toBeNull();
    expect(open.check('aftershock:8081')?.message).toMatch(/--admin-allow-host.*or set --admin-token/);
    const named = createHostPolicy({ listenHost: 'devbox.lan', tokenRequired: false, allowHosts: [] });
    expect(named.check('devbox.lan:8081')).toBeNull();
    expect(named.check('other.lan:8081')?.message).toMatch(/devbox\.lan/);
    expect(createHostPolicy({ listenHost: '::', tokenRequired: true, allowHosts: [] }).anyHost).toBe(true);
    // On loopback the token does not open other names, and IP addresses other than loopback are refused.
    const loopToken = createHostPolicy({ listenHost: '127.0.0.1', tokenRequired: true, allowHosts: [] });
    expect(loopToken.check('aftershock:8081')?.status).toBe(403);
    expect(loopToken.check('10.0.0.1:8081')?.status).toBe(403);
    expect(createHostPolicy({ listenHost: '127.0.0.1', tokenRequired: false, allowHosts: ['*'] }).check('any.example')).toBeNull();
  });

  it('Origin: none, or the same host and port; Sec-Fetch-Site: none, same-origin, absent or a followed link', () => {
    expect(checkOrigin(undefined, '127.0.0.1:8081')).toBeNull();
    expect(checkOrigin('http://127.0.0.1:8081', '127.0.0.1:8081')).toBeNull();
    expect(checkOrigin('http://[::1]:8081', '[::1]:8081')).toBeNull();
    expect(checkOrigin('http://127.0.0.1', '127.0.0.1:80')).toBeNull();
    for (const o of ['http://127.0.0.1:8082', 'https://evil.example', 'null', 'file://', 'not a url', 'chrome-extension://abc']) {
      expect(checkOrigin(o, '127.0.0.1:8081')?.code, o).toBe('origin-not-allowed');
    }
    expect(checkOrigin('http://127.0.0.1:8081', undefined)?.status).toBe(403);

    const site = (v: string, more: Record<string, string> = {}) => ({ 'sec-fetch-site': v, ...more });
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      expect(checkFetchSite(method, {}), method).toBeNull();
      expect(checkFetchSite(method, site('same-origin')), method).toBeNull();
      expect(checkFetchSite(method, site('none')), method).toBeNull();
      expect(checkFetchSite(method, site(' Same-Origin ')), method).toBeNull();
      expect(checkFetchSite(method, site('')), method).toBeNull();
      for (const v of ['cross-site', 'same-site', 'same-origin, cross-site', 'bogus']) {
        expect(checkFetchSite(method, site(v))?.code, `${method} ${v}`).toBe('cross-site-request');
      }
      // A form posted from another site is a navigation too: only GET navigations to a page pass.
      const navigate = site('cross-site', { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' });
      expect(checkFetchSite(method, navigate)?.status ?? null, method).toBe(method === 'GET' ? null : 403);
    }
    for (const dest of ['iframe', 'object', 'embed', 'frame', '']) {
      expect(checkFetchSite('GET', site('cross-site', { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': dest }))?.status, dest).toBe(403);
    }
    expect(checkFetchSite('GET', site('same-site', { 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' }))?.message).toMatch(/same site.*localhost:3000/);
  });
});
