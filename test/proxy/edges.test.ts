/**
 * Edges a user hit through the spine: a WebSocket client that gives up during the upstream
 * handshake, an upstream that picks no subprotocol, the raw relay's time to first byte, shutdown
 * with open WebSockets and keep-alive clients, a request without Host, and `OPTIONS *`.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { onCleanup, rawExchange, readRecords, startTestProxy, startUpstream, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { HttpRecord, WsRecord } from '../../src/record/schema.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const UPGRADE = (extra = ''): string => `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

/** An upstream that reads upgrade requests and never answers them (a stuck handshake). */
async function silentUpgradeUpstream(): Promise<{ url: string; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const srv = http.createServer();
  srv.on('upgrade', (_req, sock: net.Socket) => {
    sockets.push(sock);
    sock.on('error', () => undefined);
    sock.resume();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  onCleanup(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, sockets };
}

describe('WebSocket handshake edges', () => {
  it.each([
    ['raw relay', '', false],
    ['raw relay, compression offered', 'Sec-WebSocket-Extensions: permessage-deflate\r\n', false],
    ['message relay (--record-messages)', 'Sec-WebSocket-Extensions: permessage-deflate\r\n', true],
  ])('%s: a client that gives up while the upstream has not answered drops the upstream attempt and is recorded as client-abort', async (_name, extra, recordMessages) => {
    const up = await silentUpgradeUpstream();
    const dir = tempDir();
    const file = path.join(dir, 'abort.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, upstreamTimeout: '20s', recordMessages });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    s.write(UPGRADE(extra));
    await waitFor(() => up.sockets.length === 1);
    // (The upstream's socket is half-open: the proxy's FIN is what it sees.)
    const upClosed = new Promise<void>((r) => (up.sockets[0] as net.Socket).once('end', () => r()));
    const t0 = Date.now();
    s.end();
    await upClosed;
    expect(Date.now() - t0).toBeLessThan(2000); // not the 20 s upstream timeout
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec.outcome).toBe('client-abort');
    expect(rec.status).toBeNull();
  });

  it('a client that floods more than 1 MiB before its 101 is cut, and the record says why', async () => {
    const up = await silentUpgradeUpstream();
    const dir = tempDir();
    const file = path.join(dir, 'flood.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, upstreamTimeout: '20s' });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.write(UPGRADE());
    await waitFor(() => up.sockets.length === 1);
    s.write(Buffer.alloc(1024 * 1024 + 1024, 0x61));
    await closed;
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec).toMatchObject({ outcome: 'client-abort', status: null, error: 'early-data-over-limit' });
  });

  it('raw relay: an upstream that picks none of the offered subprotocols answers 101 without one, as it did; ttfb is the time to that answer', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => ws.send(d.toString())), { protocols: [] });
    const dir = tempDir();
    const file = path.join(dir, 'proto.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file });
    const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/p', { perMessageDeflate: false });
    onCleanup(() => ws.terminate());
    await new Promise<void>((r) => ws.once('open', () => r()));
    ws.close(1000);
    // Send the offer by hand: the `ws` client itself would refuse a 101 that picks none.
    const res = await rawExchange(Number(new URL(proxy.url).port), UPGRADE('Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n'), { timeoutMs: 500 });
    expect(res.data.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(res.data.toLowerCase()).not.toContain('sec-websocket-protocol');
    await waitFor(() => proxy.recorder.count >= 2);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    for (const r of recs) {
      expect(r.status).toBe(101);
      expect(typeof r.ttfb).toBe('number');
      expect(r.ttfb as number).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('WebSocket: a client that drops without a close frame', () => {
  /** One masked client frame (FIN set). */
  const frame = (opcode: number, payload: Buffer): Buffer => {
    const mask = Buffer.from([1, 2, 3, 4]);
    const body = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, body]);
  };

  it.each([
    ['raw relay', '', false],
    ['message relay with compression on both legs (--record-messages)', 'Sec-WebSocket-Extensions: permessage-deflate\r\n', true],
  ])('%s: its last messages still reach the upstream', async (_name, extra, recordMessages) => {
    const got: string[] = [];
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => got.push(d.toString())));
    const proxy = await startTestProxy({ target: upstream, recordMessages });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    onCleanup(() => {
      s.destroy();
    });
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (c: Buffer) => (head += c.toString('latin1')));
    s.write(UPGRADE(extra));
    await waitFor(() => head.startsWith('HTTP/1.1 101'));
    s.end(Buffer.concat(['one', 'two', 'three-last'].map((m) => frame(1, Buffer.from(m)))));
    await waitFor(() => got.length === 3, 3000);
    expect(got).toEqual(['one', 'two', 'three-last']);
  });
});

describe('shutdown with long-lived connections', () => {
  it('open WebSockets (raw and message relay) get 1001 at once, not at the end of the drain, and are recorded with it', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => ws.send(d.toString())));
    const dir = tempDir();
    const file = path.join(dir, 'term.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file, drainTimeout: '10s' });
    const closes: number[] = [];
    const sockets = await Promise.all(
      [false, true].map(
        (deflate) =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(proxy.url.replace('http', 'ws') + (deflate ? '/deflate' : '/plain'), { perMessageDeflate: deflate });
            onCleanup(() => ws.terminate());
            ws.once('open', () => resolve(ws));
            ws.once('error', reject);
            ws.once('close', (code) => closes.push(code));
          }),
      ),
    );
    expect(sockets).toHaveLength(2);
    const t0 = Date.now();
    await proxy.close();
    expect(Date.now() - t0).toBeLessThan(3000); // the drain timeout is 10 s
    await waitFor(() => closes.length === 2);
    expect(closes).toEqual([1001, 1001]);
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    expect(recs).toHaveLength(2);
    for (const r of recs) expect(r).toMatchObject({ closeCode: 1001, outcome: 'shutdown' });
  });

  it('a WebSocket still in its handshake at shutdown finishes it within the drain, then gets 1001 (it was cut with no answer at all)', async () => {
    // The upstream answers upgrades after 600 ms.
    const wss = new WebSocketServer({ noServer: true });
    const up = http.createServer();
    up.on('upgrade', (req, sock, head) => setTimeout(() => wss.handleUpgrade(req, sock, head, (ws) => ws.on('message', (d) => ws.send(d.toString()))), 600));
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    onCleanup(() => {
      for (const c of wss.clients) c.terminate();
      up.closeAllConnections();
      up.close();
    });
    const dir = tempDir();
    const file = path.join(dir, 'hs.ndjson');
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${(up.address() as AddressInfo).port}`, record: file, drainTimeout: '10s' });
    const results = [false, true].map((deflate) => {
      const ws = new WebSocket(proxy.url.replace('http', 'ws') + (deflate ? '/deflate' : '/plain'), { perMessageDeflate: deflate });
      onCleanup(() => ws.terminate());
      return new Promise<{ opened: boolean; code: number | null; error: string | null }>((resolve) => {
        let opened = false;
        ws.once('open', () => (opened = true));
        ws.once('close', (code) => resolve({ opened, code, error: null }));
        ws.once('error', (e) => resolve({ opened, code: null, error: e.message }));
      });
    });
    await new Promise((r) => setTimeout(r, 150));
    const t0 = Date.now();
    await proxy.close();
    expect(Date.now() - t0).toBeLessThan(3000); // not the 10 s drain: told 1001 once open
    expect(await Promise.all(results)).toEqual([
      { opened: true, code: 1001, error: null },
      { opened: true, code: 1001, error: null },
    ]);
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    expect(recs).toHaveLength(2);
    for (const r of recs) expect(r).toMatchObject({ status: 101, closeCode: 1001, outcome: 'shutdown' });
  });

  it('an answer sent during the drain says Connection: close, so a keep-alive client does not reuse a closing connection', async () => {
    let release: (() => void) | null = null;
    const up = await startUpstream((_req, res) => {
      release = () => res.end('late');
    });
    const proxy = await startTestProxy({ target: up.url, drainTimeout: '5s' });
    const agent = new http.Agent({ keepAlive: true });
    onCleanup(() => agent.destroy());
    const got = new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${proxy.url}/slow`, { agent }, resolve).on('error', reject);
    });
    await waitFor(() => release !== null);
    const closing = proxy.close();
    await new Promise((r) => setTimeout(r, 50));
    (release as unknown as () => void)();
    const res = await got;
    res.resume();
    expect(res.headers.connection).toBe('close');
    await closing;
  });
});

describe('request targets and Host', () => {
  it('an HTTP/1.1 request without Host gets the labelled JSON 400 and a record; HTTP/1.0 without Host is forwarded', async () => {
    const up = await startUpstream((req, res) => res.end(`host=${req.headers.host}`));
    const dir = tempDir();
    const file = path.join(dir, 'host.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    const bad = await rawExchange(port, 'GET /nohost HTTP/1.1\r\n\r\n', { timeoutMs: 2000 });
    expect(bad.data.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(bad.data).toContain('x-aftershock-error: missing-host');
    const old = await rawExchange(port, 'GET /old HTTP/1.0\r\n\r\n', { timeoutMs: 2000 });
    expect(old.data.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 200/);
    expect(old.data).toContain(`host=${new URL(up.url).host}`);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.find((r) => r.path === '/nohost')).toMatchObject({ status: 400, outcome: 'bad-request', error: 'missing-host' });
    expect(recs.find((r) => r.path === '/old')).toMatchObject({ status: 200 });
  });

  it('a request with more header lines than it may carry gets 431 and a record; a second Host or a Transfer-Encoding behind the filler is never passed over', async () => {
    let forwarded = 0;
    const up = await startUpstream((_req, res) => {
      forwarded++;
      res.end('ok');
    });
    const file = path.join(tempDir(), 'many.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    const filler = Array.from({ length: 1100 }, (_, i) => `x${i}: 1\r\n`).join('');
    const host = await rawExchange(port, `GET /many HTTP/1.1\r\nHost: a.example\r\n${filler}Host: evil.example\r\n\r\n`, { timeoutMs: 2000 });
    expect(host.data.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(host.data).toContain('x-aftershock-error: too-many-headers');
    const te = await rawExchange(port, `POST /te HTTP/1.1\r\nHost: a.example\r\n${filler}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, { timeoutMs: 2000 });
    expect(te.data.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    const ws = await rawExchange(port, UPGRADE(filler), { timeoutMs: 2000 });
    expect(ws.data.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    // A request with a few hundred header lines still passes, every line of it.
    const some = Array.from({ length: 300 }, (_, i) => `x${i}: 1\r\n`).join('');
    const ok = await rawExchange(port, `GET /ok HTTP/1.1\r\nHost: a.example\r\n${some}Connection: close\r\n\r\n`, { timeoutMs: 2000 });
    expect(ok.data).toMatch(/^HTTP\/1\.1 200 /);
    await proxy.close();
    expect(forwarded).toBe(1);
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    for (const p of ['/many', '/te']) expect(recs.find((r) => r.path === p)).toMatchObject({ status: 431, outcome: 'bad-request', error: 'too-many-headers' });
    expect(recs.find((r) => r.path === '/ws')).toMatchObject({ status: 431, error: 'too-many-headers' });
  });

  // RFC 9112 §3.2: a server MUST answer 400 to a request with more than one Host header line
  // (Node keeps the first and drops the others, so the upstream would see one the client did not mean).
  it('more than one Host line gets the labelled 400 and a record, for HTTP (1.1 and 1.0) and for a WebSocket upgrade; nothing is forwarded', async () => {
    let forwarded = 0;
    const up = await startUpstream((_req, res) => {
      forwarded++;
      res.end('ok');
    });
    const dir = tempDir();
    const file = path.join(dir, 'duphost.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    const http11 = await rawExchange(port, 'GET /dup HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\nhost: b.example\r\n\r\n', { timeoutMs: 2000 });
    expect(http11.data.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(http11.data).toContain('x-aftershock-error: duplicate-host');
    expect(JSON.parse(http11.data.slice(http11.data.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: 'duplicate-host' });
    const http10 = await rawExchange(port, 'GET /dup10 HTTP/1.0\r\nHOST: a.example\r\nHost: a.example\r\n\r\n', { timeoutMs: 2000 });
    expect(http10.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(http10.data).toContain('x-aftershock-error: duplicate-host');
    const ws = await rawExchange(port, UPGRADE('Host: y\r\n'), { timeoutMs: 2000 });
    expect(ws.data.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(ws.data).toContain('x-aftershock-error: duplicate-host');
    // One Host line still passes.
    const one = await rawExchange(port, 'GET /one HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n', { timeoutMs: 2000 });
    expect(one.data).toMatch(/^HTTP\/1\.1 200 /);
    await proxy.close();
    expect(forwarded).toBe(1);
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const refused = { status: 400, outcome: 'bad-request', error: 'duplicate-host' };
    expect(recs.find((r) => r.path === '/dup')).toMatchObject(refused);
    expect(recs.find((r) => r.path === '/dup10')).toMatchObject(refused);
    expect(recs.find((r) => r.path === '/ws')).toMatchObject({ method: 'GET', ...refused });
    expect(recs).toHaveLength(4);
  });

  it('OPTIONS * is refused with a message about asterisk-form, not absolute-form', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url });
    const res = await rawExchange(Number(new URL(proxy.url).port), 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 2000 });
    expect(res.data).toContain('x-aftershock-error: asterisk-form-refused');
  });
  it('Expect other than 100-continue gets a labelled, recorded 417 (Node used to answer it unseen)', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'expect.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const res = await rawExchange(Number(new URL(proxy.url).port), 'GET /e HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n', { timeoutMs: 2000 });
    expect(res.data.split('\r\n')[0]).toBe('HTTP/1.1 417 Expectation Failed');
    expect(res.data).toContain('x-aftershock-error: expectation-failed');
    await proxy.close();
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http');
    expect(rec).toMatchObject({ path: '/e', status: 417, outcome: 'bad-request', error: 'expectation-failed' });
  });

  it('a client that ends in the middle of its request line is recorded as client-abort, not as a 400 it never got', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'half.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.end('GET /abc HT');
    await new Promise<void>((r) => s.once('close', () => r()));
    expect(got).toBe('');
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http');
    expect(rec).toMatchObject({ status: null, outcome: 'client-abort', error: null });
  });

  it('a client that resets (RST) in the middle of its request head is recorded as one that ends (FIN) there is: client-abort, once; a reset between requests records nothing', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'half-rst.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    /** Writes `first` and waits for its answer when it is a whole request, then writes `partial` and leaves as told. */
    const leave = async (how: 'fin' | 'rst', first: string, partial: string): Promise<void> => {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('connect', () => r()));
      if (first !== '') {
        s.write(first);
        await new Promise<void>((r) => s.once('data', () => r()));
      }
      if (partial !== '') s.write(partial);
      // Let the proxy read the bytes before the client leaves.
      await new Promise((r) => setTimeout(r, 50));
      if (how === 'fin') s.end();
      else s.resetAndDestroy();
      await new Promise<void>((r) => (s.closed ? r() : s.once('close', () => r())));
    };
    const req = 'GET /whole HTTP/1.1\r\nHost: x\r\n\r\n';
    await leave('fin', '', 'GET /fin-head HTTP/1.1\r\nHost: x\r\nX-Par');
    await leave('rst', '', 'GET /rst-head HTTP/1.1\r\nHost: x\r\nX-Par');
    await leave('fin', '', 'GET /fin-li');
    await leave('rst', '', 'GET /rst-li');
    // After a whole exchange on the same (kept-alive) connection: a partial second head counts, no head at all does not.
    await leave('rst', req, 'GET /rst-second HTTP/1.1\r\nHo');
    await leave('rst', req, '');
    // 7 expected; the assertions below say which are missing if fewer come.
    await waitFor(() => proxy.recorder.count >= 7, 2000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    await proxy.close();
    // One connection each, in order. A partial head's line is not known to the proxy when the
    // client leaves (Node hands the parser's error no packet then): method and path are '-', FIN or RST.
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const aborted = (conn: string) => ({ conn, method: '-', path: '-', status: null, outcome: 'client-abort', error: null });
    const whole = (conn: string) => ({ conn, method: 'GET', path: '/whole', status: 200, outcome: null, error: null });
    expect(recs.map(({ conn, method, path, status, outcome, error }) => ({ conn, method, path, status, outcome, error }))).toEqual([
      aborted('1'), // FIN mid head
      aborted('2'), // RST mid head
      aborted('3'), // FIN mid request line
      aborted('4'), // RST mid request line
      whole('5'),
      aborted('5'), // RST mid second head
      whole('6'), // RST with no head begun: nothing more
    ]);
  });

  it.each(['rst', 'fin'] as const)('leaving (%s) in the rest of a body whose request was already answered is no second record', async (how) => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'answered-rst.ndjson');
    // The injected answer goes out after the body-read limit (1 s) with most of the body unread; the connection stays open.
    const profile = parseProfile('rules:\n  - name: down\n    fault: { type: http-error, status: 503 }', null);
    const proxy = await startTestProxy({ target: up.url, record: file, profile });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    s.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nsome');
    await new Promise<void>((r) => s.once('data', () => r()));
    if (how === 'fin') s.end();
    else s.resetAndDestroy();
    await new Promise<void>((r) => s.once('close', () => r()));
    await new Promise((r) => setTimeout(r, 200));
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map(({ path, status, outcome }) => ({ path, status, outcome }))).toEqual([{ path: '/up', status: 503, outcome: null }]);
  });

  // The record (and the body's hash in it) is written with the answer; the rest of the body still
  // arrives on the kept-alive connection. Hashing it threw ERR_CRYPTO_HASH_FINALIZED, uncaught.
  it('the rest of a body that arrives after its request was answered and recorded neither crashes the proxy nor changes the record', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'answered-more.ndjson');
    const profile = parseProfile('rules:\n  - name: down\n    match: { path: /up }\n    fault: { type: http-error, status: 503 }', null);
    const proxy = await startTestProxy({ target: up.url, record: file, profile });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    onCleanup(() => {
      s.destroy();
    });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\nsome');
    await waitFor(() => got.includes('\r\n\r\n'), 3000); // the 503, after the body-read limit
    expect(got).toMatch(/^HTTP\/1\.1 503/);
    await waitFor(() => proxy.recorder.count >= 1);
    got = '';
    // The rest of the body, then a next request on the same connection.
    s.write('-the-rest-of-it!');
    s.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => got.includes('\r\n\r\nok'), 3000);
    expect(got).toMatch(/^HTTP\/1\.1 200/);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map(({ path, status, bytesIn }) => ({ path, status, bytesIn }))).toEqual([
      { path: '/up', status: 503, bytesIn: 4 },
      { path: '/next', status: 200, bytesIn: 0 },
    ]);
  });
  it('an upload slower than --upstream-timeout is not a 504: the timeout counts from the end of the body', async () => {
    const up = await startUpstream((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        if (req.url === '/silent') return; // reads the whole body, then never answers
        res.end(`got ${n}`);
      });
    });
    const proxy = await startTestProxy({ target: up.url, upstreamTimeout: '600ms' });
    const upload = (p: string): Promise<{ status: number; text: string; bodyDoneAt: number; at: number }> =>
      new Promise((resolve, reject) => {
        const req = http.request(`${proxy.url}${p}`, { method: 'POST', agent: false, headers: { 'content-type': 'text/plain' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text, bodyDoneAt, at: Date.now() }));
        });
        req.on('error', reject);
        let bodyDoneAt = 0;
        let i = 0;
        const tick = (): void => {
          if (i++ < 4) {
            req.write('0123456789');
            setTimeout(tick, 400);
          } else {
            bodyDoneAt = Date.now();
            req.end();
          }
        };
        tick();
      });
    const ok = await upload('/slow');
    expect(ok).toMatchObject({ status: 200, text: 'got 40' }); // 1.6 s of upload against a 600 ms timeout
    const silent = await upload('/silent');
    expect(silent.status).toBe(504);
    expect(silent.at - silent.bodyDoneAt).toBeGreaterThanOrEqual(500);
  });

  it('a client that stops sending its body does not hold the exchange for ever: 408 after --upstream-timeout without a byte, recorded as a timeout', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const dir = tempDir();
    const file = path.join(dir, 'stall.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, upstreamTimeout: '500ms' });
    const t0 = Date.now();
    const res = await rawExchange(Number(new URL(proxy.url).port), 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789', { timeoutMs: 4000 });
    expect(res.data.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
    expect(res.data).toContain('x-aftershock-error: request-timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(Date.now() - t0).toBeLessThan(3000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http');
    expect(rec).toMatchObject({ status: 408, outcome: 'timeout', error: 'request-timeout' });
  });

  it('an HTTP/1.0 client gets the answer of an upstream that announces trailers (not a 500)', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { trailer: 'x-checksum', 'content-type': 'text/plain' });
      res.write('hello');
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end();
    });
    const proxy = await startTestProxy({ target: up.url });
    const res = await rawExchange(Number(new URL(proxy.url).port), 'GET /t HTTP/1.0\r\nHost: x\r\n\r\n', { timeoutMs: 2000 });
    expect(res.data.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    expect(res.data.endsWith('hello')).toBe(true);
  });
  it('a request pipelined behind a refused one is neither forwarded nor recorded (the refusal closes the connection)', async () => {
    const seen: string[] = [];
    const up = await startUpstream((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const dir = tempDir();
    const file = path.join(dir, 'pipe.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    const follow = 'DELETE /follow HTTP/1.1\r\nHost: x\r\n\r\n';
    for (const first of ['GET /nohost HTTP/1.1\r\n\r\n', 'POST /e HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 3\r\n\r\nabc', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 'GET http://h/abs HTTP/1.1\r\nHost: x\r\n\r\n']) {
      const res = await rawExchange(port, first + follow, { timeoutMs: 1000 });
      expect(res.data.match(/HTTP\/1\.1 \d+/g)).toHaveLength(1);
    }
    // A WebSocket upgrade pipelined behind a refusal: not forwarded, not recorded as a client that left.
    const up2 = await rawExchange(port, 'GET http://h/abs HTTP/1.1\r\nHost: x\r\n\r\n' + UPGRADE(), { timeoutMs: 1000 });
    expect(up2.data.match(/HTTP\/1\.1 \d+/g)).toEqual(['HTTP/1.1 400']);
    await proxy.close();
    expect(seen).toEqual([]);
    const all = readRecords(file);
    expect(all.filter((r) => r.type === 'ws')).toEqual([]);
    const recs = all.filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map((r) => r.status)).toEqual([400, 417, 400, 400, 400]);
  });
});

describe('the TLS listener', () => {
  const cert = new URL('../fixtures/tls/cert.pem', import.meta.url).pathname;
  const key = new URL('../fixtures/tls/key.pem', import.meta.url).pathname;

  it('closes a connection whose TLS handshake never finishes within --headers-timeout, without a record; records of real requests name their connection', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'tls.ndjson');
    const proxy = await startTestProxy({ target: up.url, tlsCert: cert, tlsKey: key, headersTimeout: '800ms', record: file });
    const port = Number(new URL(proxy.url).port);
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    const t0 = Date.now();
    await new Promise<void>((r) => silent.once('close', () => r()));
    expect(Date.now() - t0).toBeLessThan(5000);
    const https = await import('node:https');
    const fs = await import('node:fs');
    const status = await new Promise<number>((resolve, reject) => {
      https.get(`${proxy.url}/x`, { ca: fs.readFileSync(cert), agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
    expect(status).toBe(200);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs).toHaveLength(1); // the stalled handshake left no record
    expect(recs[0]?.conn).not.toBe('');
  });
});

describe('pipelined requests and heads that never left', () => {
  it('a request pipelined behind one the client abandons is recorded once (client-abort, no status) and does not stay in flight', async () => {
    const seen: string[] = [];
    const up = await startUpstream((req, res) => {
      seen.push(req.url ?? '');
      req.resume();
      if (req.url === '/hang') return; // never answers
      req.on('end', () => res.end('ok'));
    });
    const dir = tempDir();
    const file = path.join(dir, 'pipe-leak.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    s.on('error', () => undefined);
    s.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\nPOST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi');
    // Both are in flight; the second, held behind the first, has not reached the upstream.
    await waitFor(() => seen.length === 1 && proxy.stats().inFlight === 2);
    s.destroy();
    await waitFor(() => proxy.stats().inFlight === 0, 3000);
    await proxy.close();
    expect(seen).toEqual(['/hang']);
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map((r) => [r.path, r.status, r.outcome]).sort()).toEqual([
      ['/hang', null, 'client-abort'],
      ['/second', null, 'client-abort'],
    ]);
  });

  it('a sized head the upstream sent before going silent never reached the client: the record says no status', async () => {
    const srv = net.createServer((c) => {
      c.on('error', () => undefined);
      c.once('data', () => c.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n'));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => {
      srv.close();
    });
    const dir = tempDir();
    const file = path.join(dir, 'headonly.ndjson');
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, record: file, upstreamIdleTimeout: '300ms' });
    const res = await rawExchange(Number(new URL(proxy.url).port), 'GET /headonly HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 3000 });
    expect(res.data).toBe('');
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http');
    expect(rec).toMatchObject({ status: null, upstreamStatus: 200, outcome: 'timeout' });
  });
});

describe('WebSocket closes that must not overtake or cut messages', () => {
  it('a close does not overtake messages a ws-delay still holds (either direction)', async () => {
    const got: string[] = [];
    let upClose = 0;
    const upstream = await startWsUpstream((ws) => {
      ws.on('message', (d) => got.push(d.toString()));
      ws.on('close', (code) => (upClose = code));
    });
    const dir = tempDir();
    const profile = path.join(dir, 'delay.yaml');
    (await import('node:fs')).writeFileSync(profile, 'name: d\nrules:\n  - name: slow\n    fault: { type: ws-delay, delay: 200ms }\n');
    const proxy = await startTestProxy({ target: upstream, profile, watch: false });
    const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/d');
    onCleanup(() => ws.terminate());
    await new Promise<void>((r) => ws.once('open', () => r()));
    ws.send('a');
    ws.send('b');
    ws.send('c');
    ws.close(1000, 'done');
    await waitFor(() => upClose !== 0, 3000);
    expect(got).toEqual(['a', 'b', 'c']);
    expect(upClose).toBe(1000);
  });
});
