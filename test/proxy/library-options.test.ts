/**
 * startProxy's options as a library caller gets them wrong: every mistake is one ERR_BAD_OPTION
 * that names the option (as the CLI's flags are checked), found before anything is opened, so a
 * failed start leaves no recording file, descriptor or timer behind.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startProxy, type ProxyOptions } from '../../src/index.js';
import { onCleanup, tempDir } from '../helpers.js';

const T = 'http://127.0.0.1:9';

describe('startProxy option checks', () => {
  it.each([
    ['maxConnections', { maxConnections: -5 }, /maxConnections -5: give a whole number above 0/],
    ['maxConnections', { maxConnections: 'abc' }, /maxConnections "abc"/],
    ['seed', { seed: Number.NaN }, /seed null: give a whole number from 0/],
    ['seed', { seed: 'abc' }, /seed "abc": give a whole number from 0/],
    ['seed', { seed: 1e300 }, /seed 1e\+300: give a whole number from 0/],
    ['seed', { seed: -5 }, /seed -5: give a whole number from 0 to \d+, as a profile's seed/],
    ['upstreamSockets', { upstreamSockets: -1 }, /upstreamSockets -1: give a whole number above 0/],
    ['headersTimeout', { headersTimeout: 0 }, /headersTimeout 0: must be longer than 0/],
    ['headersTimeout', { headersTimeout: 'abc' }, /headersTimeout "abc": write a duration/],
    ['hostHeader', { hostHeader: 'bogus' }, /hostHeader "bogus": give "target"/],
    ['target', { target: 123 }, /target 123: give a string/],
    ['listen', { listen: 0 }, /listen 0: give a string/],
    ['admin', { admin: true }, /admin true: give HOST:PORT, or false/],
    ['profile', { profile: 123 }, /profile 123: give a built-in profile name/],
    ['profile', { profile: {} }, /profile \{\}: give a built-in profile name/],
    ['clientKey', { clientKey: 5 }, /clientKey 5: give a string/],
    ['redact', { redact: 'authorization' }, /redact "authorization": give a list of strings/],
    ['recordHeaders', { recordHeaders: 'x-id' }, /recordHeaders "x-id": give a list of strings/],
    ['adminToken', { adminToken: 123 }, /adminToken 123: give a string/],
    ['logger', { logger: {} }, /logger \{\}: give a pino logger/],
    ['adminAllowHosts', { adminAllowHosts: ['ok.example', 'host!'] }, /adminAllowHosts \["ok\.example","host!"\]: "host!" is not a host name/],
    ['cookieDomain', { cookieDomain: 'bad domain' }, /cookieDomain "bad domain": give a domain name/],
    ['cookieDomain', { cookieDomain: 'example.com:8080' }, /cookieDomain "example\.com:8080": give a domain name/],
  ] as const)('%s: %j', async (_name, bad, message) => {
    const dir = tempDir();
    const record = path.join(dir, 'rec.ndjson');
    const options = { target: T, listen: '127.0.0.1:0', admin: false, record, ...bad } as unknown as ProxyOptions;
    await expect(startProxy(options)).rejects.toMatchObject({ code: 'ERR_BAD_OPTION', message: expect.stringMatching(message) });
    // Checked before anything was opened: no recording file.
    expect(fs.existsSync(record)).toBe(false);
  });

  it('no options, or none with a target: one clear error', async () => {
    await expect(startProxy(undefined as unknown as ProxyOptions)).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' });
    await expect(startProxy({} as ProxyOptions)).rejects.toMatchObject({ code: 'ERR_BAD_TARGET', message: expect.stringMatching(/missing target/) });
  });
});

describe('a start that fails, and a closed handle', () => {
  const fds = (): number => fs.readdirSync('/proc/self/fd').length;

  it('a taken port: ERR_LISTEN, and the recording it had opened is closed again (no descriptor, no timer re-creating the file)', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as net.AddressInfo).port;
    const dir = tempDir();
    const record = path.join(dir, 'rec.ndjson');
    const before = fds();
    for (let i = 0; i < 20; i++) {
      await expect(startProxy({ target: T, listen: `127.0.0.1:${port}`, admin: false, record })).rejects.toMatchObject({ code: 'ERR_LISTEN' });
    }
    expect(fds()).toBe(before);
    // The file this failed start created is gone (a header-only recording reads as a run with no
    // traffic), and no writer left behind re-creates it (one would check its path every second).
    expect(fs.existsSync(record)).toBe(false);
    await new Promise((r) => setTimeout(r, 1500));
    expect(fs.existsSync(record)).toBe(false);
    // A recording that was there before is kept, as it was: no header of a run that never
    // happened is appended to it (a sidecar restarting on a taken port added one each time).
    const earlier = '{"v":1,"type":"header"}\n';
    fs.writeFileSync(record, earlier);
    for (let i = 0; i < 3; i++) await expect(startProxy({ target: T, listen: `127.0.0.1:${port}`, admin: false, record })).rejects.toMatchObject({ code: 'ERR_LISTEN' });
    expect(fs.readFileSync(record, 'utf8')).toBe(earlier);
  });

  it('a taken control-API port: the existing recording gains nothing either', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => taken.close(() => r())));
    const port = (taken.address() as net.AddressInfo).port;
    const record = path.join(tempDir(), 'rec.ndjson');
    const earlier = '{"v":1,"type":"header"}\n';
    fs.writeFileSync(record, earlier);
    await expect(startProxy({ target: T, listen: '127.0.0.1:0', admin: `127.0.0.1:${port}`, record })).rejects.toMatchObject({ code: 'ERR_LISTEN' });
    expect(fs.readFileSync(record, 'utf8')).toBe(earlier);
  });

  it('after close() the handle takes no more changes (ERR_CLOSED), and selectProfile starts no file watch', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.yaml');
    fs.writeFileSync(file, 'name: p\nrules: []\n');
    const proxy = await startProxy({ target: T, listen: '127.0.0.1:0', admin: false, record: path.join(dir, 'rec.ndjson') });
    await proxy.close();
    const before = fds();
    expect(() => proxy.mark('late')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => proxy.addFault({ name: 'x', match: { path: '/**' }, fault: { type: 'reset' } })).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => proxy.setProfile('name: q\nrules: []\n')).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => proxy.startScenario()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    await expect(proxy.selectProfile(file)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    // The engine the handle exposes (the library's PATCH /rules) takes none either; reading it still works.
    expect(() => proxy.engine.patchRule('x', { enabled: false })).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => proxy.engine.addFault({ name: 'y', match: { path: '/**' }, fault: { type: 'reset' } })).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(() => proxy.engine.resetCounters()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
    expect(proxy.engine.stats()).toEqual([]);
    expect(fds()).toBe(before);
  });
});
