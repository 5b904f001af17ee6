/**
 * Broken upstreams: each yields the documented proxy error and a record, never a crash and never a
 * truncated success.
 */
import net from 'node:net';
import path from 'node:path';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { onCleanup, readRecords, request, startTestProxy, tempDir } from '../helpers.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { UpstreamPool, type BodySink, type UpstreamCall, type UpstreamSink } from '../../src/upstream/pool.js';
import { parseTarget } from '../../src/upstream/target.js';

async function rawUpstream(onSocket: (s: net.Socket) => void): Promise<string> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => onSocket(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

describe('broken upstreams', () => {
  it.each([
    ['resets before any header', (s: net.Socket) => s.resetAndDestroy(), 502, 'upstream-reset'],
    ['resets mid-headers', (s: net.Socket) => { s.write('HTTP/1.1 200 OK\r\nContent-Ty'); setTimeout(() => s.resetAndDestroy(), 20); }, 502, 'upstream-reset'],
    ['answers something that is not HTTP', (s: net.Socket) => s.end('SSH-2.0-OpenSSH_9.0\r\n'), 502, 'upstream-bad-response'],
  ])('%s -> %i %s, recorded', async (_name, behave, status, code) => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const target = await rawUpstream(behave);
    const proxy = await startTestProxy({ target, record: file });
    const r = await request(`${proxy.url}/x`);
    expect(r.status).toBe(status);
    expect(r.headers['x-aftershock-error']).toBe(code);
    await proxy.close();
    const rec = readRecords(file).find((x): x is HttpRecord => x.type === 'http');
    expect(rec).toMatchObject({ status, outcome: 'upstream-error', error: code });
  });

  it('answers 502 upstream-dns when the host name does not resolve', async () => {
    const proxy = await startTestProxy({ target: 'http://aftershock-no-such-host.invalid:80' });
    const r = await request(`${proxy.url}/x`);
    expect(r.status).toBe(502);
    expect(r.headers['x-aftershock-error']).toBe('upstream-dns');
  });

  it('survives an upstream that restarts under load: every request gets an answer and a record', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const handler: http.RequestListener = (_req, res) => setTimeout(() => res.end('ok'), 5);
    let server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    onCleanup(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${port}`, record: file });
    let stop = false;
    const statuses: number[] = [];
    const workers = Array.from({ length: 10 }, async () => {
      while (!stop) {
        try {
          statuses.push((await request(`${proxy.url}/load`)).status);
        } catch {
          statuses.push(-1);
        }
      }
    });
    await new Promise((r) => setTimeout(r, 150));
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise((r) => setTimeout(r, 150));
    server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    await new Promise((r) => setTimeout(r, 150));
    stop = true;
    await Promise.all(workers);
    expect(statuses.filter((s) => s === 502).length).toBeGreaterThan(0);
    expect(statuses.slice(-10).every((s) => s === 200)).toBe(true);
    await proxy.close();
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    // Every exchange the clients saw is recorded exactly once.
    expect(recs.length).toBe(statuses.length);
    expect(recs.filter((x) => x.status === 200 && x.outcome === null).length).toBe(statuses.filter((s) => s === 200).length);
  });
});

/**
 * The upstream leg on its own (src/upstream/pool.ts), behind a minimal front server that does what
 * the proxy's exchange does with a body: chunks to the client, the end as the end, an abort as a
 * reset. What the leg reports is what the exchange records.
 */
async function poolFront(target: string, bodyTimeoutMs: number): Promise<{ url: string; port: number; seen: Array<{ how: 'end' | 'abort' | 'error'; ms: number; call: UpstreamCall | null }> }> {
  const pool = new UpstreamPool(parseTarget(target), { verifyTls: true, maxSockets: 4, preserveHost: false, bodyTimeoutMs });
  const seen: Array<{ how: 'end' | 'abort' | 'error'; ms: number; call: UpstreamCall | null }> = [];
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, expecting: boolean): void => {
    const start = Date.now();
    let call: UpstreamCall | null = null;
    const sink: UpstreamSink & BodySink = {
      onUpstreamResponse(c) {
        res.writeHead(c.statusCode, c.headers['content-length'] === undefined ? {} : { 'content-length': c.headers['content-length'] });
        res.flushHeaders();
        c.sendTo(sink, res);
      },
      onUpstreamError() {
        seen.push({ how: 'error', ms: Date.now() - start, call });
        res.writeHead(502).end();
      },
      onUpstreamData: (chunk) => res.write(chunk),
      onUpstreamEnd() {
        seen.push({ how: 'end', ms: Date.now() - start, call });
        res.end();
      },
      onUpstreamAbort() {
        seen.push({ how: 'abort', ms: Date.now() - start, call });
        res.socket?.resetAndDestroy();
      },
    };
    call = expecting ? pool.sendExpecting(req, '127.0.0.1', sink) : pool.send(req, '127.0.0.1', false, sink);
    res.on('close', () => call?.abort());
  };
  const server = http.createServer((req, res) => forward(req, res, false));
  server.on('checkContinue', (req, res) => forward(req, res, true));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await pool.destroy();
  });
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, seen };
}

/** What a raw client gets: the bytes, and whether the connection ended with a reset. */
function rawGet(port: number, head: string, waitMs: number): Promise<{ data: string; reset: boolean; ended: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(head));
    let data = '';
    let reset = false;
    let ended = false;
    s.on('data', (c: Buffer) => (data += c.toString('latin1')));
    s.on('end', () => (ended = true));
    s.on('error', (e: NodeJS.ErrnoException) => (reset = e.code === 'ECONNRESET'));
    const t = setTimeout(() => s.destroy(), waitMs);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data, reset, ended });
    });
  });
}

describe('broken upstreams: a body that does not end as it should', () => {
  const STALL = 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc';

  it.each([
    ['a pooled request', 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an Expect: 100-continue request', 'POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n'],
  ])('%s: no body byte for the idle limit fails the body as timed out, and the client is reset', async (_name, head) => {
    const target = await rawUpstream((s) => s.write(STALL));
    const front = await poolFront(target, 400);
    const got = await rawGet(front.port, head, 4000);
    expect(got.data).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nabc$/);
    expect(got.reset).toBe(true);
    expect(front.seen).toHaveLength(1);
    const [ev] = front.seen;
    expect(ev?.how).toBe('abort');
    expect(ev?.call).toMatchObject({ failed: true, timedOut: true, complete: false });
    // 400 ms after the last byte, with room for a loaded machine
    expect(ev?.ms).toBeGreaterThanOrEqual(350);
    expect(ev?.ms).toBeLessThan(2000);
  });

  it('a client that holds the body back (backpressure) longer than the idle limit is not the upstream going silent', async () => {
    const body = Buffer.alloc(4 * 1024 * 1024, 120);
    const target = await rawUpstream((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.end(body);
    });
    const front = await poolFront(target, 200);
    const received = await new Promise<number>((resolve, reject) => {
      const req = http.get(`${front.url}/big`, (res) => {
        res.pause();
        setTimeout(() => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
          res.resume();
        }, 800);
      });
      req.on('error', reject);
    });
    expect(received).toBe(body.length);
    expect(front.seen.map((e) => e.how)).toEqual(['end']);
    expect(front.seen[0]?.call).toMatchObject({ complete: true, failed: false, timedOut: false });
  });

  it('a body delimited by the connection that ends in a reset is not taken as complete', async () => {
    const target = await rawUpstream((s) => {
      s.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n' + 'z'.repeat(100));
      setTimeout(() => s.resetAndDestroy(), 100);
    });
    const front = await poolFront(target, 0);
    const got = await rawGet(front.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 3000);
    expect(got.reset).toBe(true);
    expect(front.seen.map((e) => e.how)).toEqual(['abort']);
    expect(front.seen[0]?.call).toMatchObject({ failed: true, timedOut: false, complete: false });
  });
});
