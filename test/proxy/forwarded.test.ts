/**
 * What the upstream is told about the client's connection, and what the client is told of the
 * upstream's handshake, on both legs: plain HTTP and WebSocket upgrades (the raw relay and the
 * message relay). X-Forwarded-* are computed by one module for both (src/upstream/forwarded.ts);
 * headers a Connection header names stay on their hop; the upstream's 101 reaches the client with
 * its own headers (Set-Cookie lines kept apart), the handshake headers being the proxy's.
 * Raw sockets on both ends, where the bytes matter.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TLS, onCleanup, rawServer, startTestProxy, waitFor } from '../helpers.js';
import { forwardedHeaders } from '../../src/upstream/forwarded.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function accept(key: string): string {
  return crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

/**
 * A raw upstream: keeps every request head it gets, answers an upgrade with a valid 101 carrying
 * `extra` header lines (or with `refuse` as a whole answer), anything else with a 204.
 */
async function rawUpstream(opts: { extra?: string; refuse?: string } = {}): Promise<{ url: string; heads: string[] }> {
  const heads: string[] = [];
  const server = await rawServer((sock) => {
    let buf = '';
    let upgraded = false;
    sock.on('data', (c: Buffer) => {
      if (upgraded) return; // frames
      buf += c.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        heads.push(head);
        const key = /\r\nsec-websocket-key: *(\S+)/i.exec(head);
        if (key === null) sock.write('HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n');
        else if (opts.refuse !== undefined) sock.end(opts.refuse);
        else {
          sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key[1] as string)}\r\n${opts.extra ?? ''}\r\n`);
          upgraded = true;
          return;
        }
      }
    });
  });
  return { url: server.url, heads };
}

/** Writes `bytes` on a fresh (TLS when asked) connection; resolves with the answer's head. */
function rawHead(port: number, bytes: string, secure = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = secure ? tls.connect({ port, host: '127.0.0.1', ca: TLS.cert, servername: 'localhost' }) : net.connect(port, '127.0.0.1');
    onCleanup(() => void s.destroy());
    let got = '';
    const t = setTimeout(() => reject(new Error(`no answer head; got ${JSON.stringify(got)}`)), 3000);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(t);
      resolve(got.slice(0, end));
    });
    s.on('error', reject);
    s.write(bytes);
  });
}

function upgrade(path: string, host: string | null, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\n${host === null ? '' : `Host: ${host}\r\n`}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

/** The header lines of a head (after its first line), names lower-cased. */
function lines(head: string): string[] {
  return head
    .split('\r\n')
    .slice(1)
    .map((l) => {
      const i = l.indexOf(':');
      return `${l.slice(0, i).toLowerCase()}: ${l.slice(i + 1).trim()}`;
    });
}

function forwarded(head: string): string[] {
  return lines(head)
    .filter((l) => l.startsWith('x-forwarded-'))
    .sort();
}

const PATHS = [
  { name: 'raw relay', opts: {} },
  { name: 'message relay', opts: { recordMessages: true } },
] as const;

describe('X-Forwarded-*', () => {
  it('X-Forwarded-Port is the port the client connected to, never taken from Host', async () => {
    const up = await rawUpstream();
    const proxy = await startTestProxy({ target: up.url });
    const port = proxy.address.port;
    for (const host of ['localhost', 'x:31337', 'user@evil:1', `127.0.0.1:${port}`]) {
      await rawHead(port, `GET /v HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    }
    await rawHead(port, 'GET /v HTTP/1.0\r\n\r\n');
    await rawHead(port, 'GET /v HTTP/1.1\r\nHost: x:31337\r\nX-Forwarded-Port: 443\r\n\r\n');
    expect(up.heads.map((h) => lines(h).filter((l) => l.startsWith('x-forwarded-port')))).toEqual([
      ...Array.from({ length: 5 }, () => [`x-forwarded-port: ${port}`]),
      [`x-forwarded-port: 443,${port}`],
    ]);
  });

  for (const p of PATHS) {
    it(`a WebSocket upgrade (${p.name}) gets the X-Forwarded-* a plain request gets, the client's kept`, async () => {
      const up = await rawUpstream();
      const proxy = await startTestProxy({ target: up.url, ...p.opts });
      const port = proxy.address.port;
      const spoof = 'X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoof\r\nX-Forwarded-Port: 443\r\n';
      await rawHead(port, `GET /h HTTP/1.1\r\nHost: a:8080\r\n${spoof}\r\n`);
      expect(await rawHead(port, upgrade('/w', 'a:8080', spoof))).toMatch(/^HTTP\/1\.1 101 /);
      await rawHead(port, 'GET /h HTTP/1.1\r\nHost: a:8080\r\n\r\n');
      expect(await rawHead(port, upgrade('/w', 'a:8080'))).toMatch(/^HTTP\/1\.1 101 /);
      await waitFor(() => up.heads.length === 4);
      const [httpSpoof, wsSpoof, httpPlain, wsPlain] = up.heads.map(forwarded);
      expect(wsSpoof).toEqual(httpSpoof);
      expect(wsPlain).toEqual(httpPlain);
      expect(httpSpoof).toEqual(['x-forwarded-for: 10.0.0.1,127.0.0.1', 'x-forwarded-host: spoof', `x-forwarded-port: 443,${port}`, 'x-forwarded-proto: https,http']);
      expect(httpPlain).toEqual(['x-forwarded-for: 127.0.0.1', 'x-forwarded-host: a:8080', `x-forwarded-port: ${port}`, 'x-forwarded-proto: http']);
    });
  }

  it('on a TLS listener: proto https and the listening port, for requests and upgrades', async () => {
    const up = await rawUpstream();
    const cert = new URL('../fixtures/tls/cert.pem', import.meta.url).pathname;
    const key = new URL('../fixtures/tls/key.pem', import.meta.url).pathname;
    const proxy = await startTestProxy({ target: up.url, tlsCert: cert, tlsKey: key });
    const port = proxy.address.port;
    await rawHead(port, 'GET /h HTTP/1.1\r\nHost: localhost\r\n\r\n', true);
    expect(await rawHead(port, upgrade('/w', 'localhost'), true)).toMatch(/^HTTP\/1\.1 101 /);
    await waitFor(() => up.heads.length === 2);
    const want = ['x-forwarded-for: 127.0.0.1', 'x-forwarded-host: localhost', `x-forwarded-port: ${port}`, 'x-forwarded-proto: https'];
    expect(up.heads.map(forwarded)).toEqual([want, want]);
  });

  it('forwardedHeaders: appended to what the client sent, Host kept when given, headers named in Connection ignored', () => {
    const conn = { remote: '192.0.2.7', localPort: 8443, encrypted: true };
    expect(forwardedHeaders({ host: 'h:1' }, conn)).toEqual({
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-port': '8443',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'h:1',
    });
    expect(forwardedHeaders({ host: 'h:1', 'x-forwarded-for': '10.0.0.1, 10.0.0.2', 'x-forwarded-port': '80', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'front' }, conn)).toEqual({
      'x-forwarded-for': '10.0.0.1, 10.0.0.2,192.0.2.7',
      'x-forwarded-port': '80,8443',
      'x-forwarded-proto': 'http,https',
    });
    // Without Host (HTTP/1.0) there is no host to tell; a hop-by-hop X-Forwarded-* is not the client's to pass on.
    expect(forwardedHeaders({ connection: 'x-forwarded-for, X-Forwarded-Host', 'x-forwarded-for': '10.0.0.1', 'x-forwarded-host': 'front' }, { ...conn, encrypted: false })).toEqual({
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-port': '8443',
      'x-forwarded-proto': 'http',
    });
  });
});

describe('WebSocket handshake headers', () => {
  for (const p of PATHS) {
    it(`headers named in the client's Connection header do not reach the upstream (${p.name})`, async () => {
      const up = await rawUpstream();
      const proxy = await startTestProxy({ target: up.url, ...p.opts });
      const head = await rawHead(proxy.address.port, upgrade('/w', 'a', 'X-Internal-Secret: s3cr3t\r\nX-Kept: yes\r\n').replace('Connection: Upgrade', 'Connection: Upgrade, X-Internal-Secret'));
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      const got = lines(up.heads[0] as string);
      expect(got).toContain('x-kept: yes');
      expect(got.filter((l) => l.startsWith('x-internal-secret'))).toEqual([]);
    });

    it(`the upstream's 101 headers reach the client, Set-Cookie lines apart, hop-by-hop ones not (${p.name})`, async () => {
      const up = await rawUpstream({
        extra: 'Set-Cookie: sid=1; Path=/\r\nSet-Cookie: other=2; Domain=upstream.internal\r\nX-Upstream: yes\r\nKeep-Alive: timeout=5\r\nX-Hop: gone\r\nConnection: X-Hop\r\n',
      });
      const proxy = await startTestProxy({ target: up.url, cookieDomain: 'proxy.example', ...p.opts });
      const head = await rawHead(proxy.address.port, upgrade('/w', 'a'));
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
      const got = lines(head);
      expect(got.filter((l) => l.startsWith('set-cookie'))).toEqual(['set-cookie: sid=1; Path=/', 'set-cookie: other=2; Domain=proxy.example']);
      expect(got).toContain('x-upstream: yes');
      for (const gone of ['keep-alive', 'x-hop']) expect(got.filter((l) => l.startsWith(gone))).toEqual([]);
      // The handshake's own headers once each, the accept computed from the client's key.
      expect(got.filter((l) => /^(upgrade|connection|sec-websocket-accept):/.test(l))).toEqual(['upgrade: websocket', 'connection: Upgrade', `sec-websocket-accept: ${accept(KEY)}`]);
    });

    it(`with a subprotocol and compression chosen, the client gets each handshake header once, its own (${p.name})`, async () => {
      const up = await rawUpstream({ extra: 'Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\nSet-Cookie: sid=1\r\n' });
      const proxy = await startTestProxy({ target: up.url, ...p.opts });
      const head = await rawHead(proxy.address.port, upgrade('/w', 'a', 'Sec-WebSocket-Protocol: chat, other\r\nSec-WebSocket-Extensions: permessage-deflate\r\n'));
      expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
      const got = lines(head);
      expect(got.filter((l) => l.startsWith('sec-websocket-'))).toEqual([`sec-websocket-accept: ${accept(KEY)}`, 'sec-websocket-protocol: chat', 'sec-websocket-extensions: permessage-deflate']);
      expect(got).toContain('set-cookie: sid=1');
    });

    it(`a ws client sees the upstream's cookies on its upgrade (${p.name})`, async () => {
      const up = await rawUpstream({ extra: 'Set-Cookie: sid=1; Path=/\r\nSet-Cookie: other=2\r\n' });
      const proxy = await startTestProxy({ target: up.url, ...p.opts });
      const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/w`, { perMessageDeflate: false });
      onCleanup(() => ws.terminate());
      const cookies = await new Promise<string[] | undefined>((resolve, reject) => {
        ws.once('upgrade', (res) => resolve(res.headers['set-cookie']));
        ws.once('error', reject);
      });
      expect(cookies).toEqual(['sid=1; Path=/', 'other=2']);
    });
  }

  it('an upgrade the upstream refuses reaches the client with every Set-Cookie line', async () => {
    const up = await rawUpstream({
      refuse: 'HTTP/1.1 401 Unauthorized\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Hop: gone\r\nConnection: close, X-Hop\r\nContent-Length: 2\r\n\r\nno',
    });
    const proxy = await startTestProxy({ target: up.url });
    const head = await rawHead(proxy.address.port, upgrade('/w', 'a'));
    expect(head).toMatch(/^HTTP\/1\.1 401 /);
    const got = lines(head);
    expect(got.filter((l) => l.startsWith('set-cookie'))).toEqual(['set-cookie: a=1', 'set-cookie: b=2']);
    expect(got.filter((l) => l.startsWith('x-hop'))).toEqual([]);
  });
});
