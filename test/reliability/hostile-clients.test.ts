/**
 * Hostile and broken clients: each attack gets a clear refusal or a bounded wait, and the proxy
 * keeps serving everyone else.
 */
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, rawExchange, readRecords, request, startTestProxy, startUpstream, startWsUpstream, tempDir, waitFor } from '../helpers.js';

describe('hostile clients', () => {
  it('refuses request smuggling (Content-Length with Transfer-Encoding) without forwarding it', async () => {
    let forwarded = 0;
    const up = await startUpstream((req, res) => {
      forwarded++;
      req.resume();
      res.end('ok');
    });
    const proxy = await startTestProxy({ target: up.url });
    const smuggle =
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
    const r = await rawExchange(proxy.address.port, smuggle);
    expect(r.data).toMatch(/^HTTP\/1\.1 400/);
    expect(forwarded).toBe(0);
    const bad = await rawExchange(proxy.address.port, 'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n');
    expect(bad.data).toMatch(/^HTTP\/1\.1 400/);
    expect((await request(`${proxy.url}/fine`)).status).toBe(200);
  });

  it('bad chunking inside a forwarded body: a 400, the upstream request stopped, one record', async () => {
    let upstreamGotEnd = false;
    const up = await startUpstream((req, res) => {
      req.on('end', () => (upstreamGotEnd = true));
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const file = path.join(tempDir(), 'rec.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    // A valid first chunk (forwarded at once), then garbage where the next chunk size should be.
    const bad = await rawExchange(proxy.address.port, 'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nmore\r\n0\r\n\r\n');
    expect(bad.data).toMatch(/^HTTP\/1\.1 400/);
    await proxy.close();
    const recs = readRecords(file).filter((r) => r.type === 'http');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ method: 'POST', path: '/up', status: 400, outcome: 'bad-request', error: 'bad-request' });
    expect(upstreamGotEnd).toBe(false);
  });

  it('a chunked body ending in ~20 KB of trailers: the 431 it gets is recorded as an oversized head is (headers-too-large), once', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const file = path.join(tempDir(), 'rec.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const trailers = Array.from({ length: 200 }, (_, i) => `x-t${i}: ${'v'.repeat(100)}\r\n`).join('');
    const big = await rawExchange(proxy.address.port, `POST /tr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n${trailers}\r\n`);
    expect(big.data).toMatch(/^HTTP\/1\.1 431/);
    expect(big.data).toContain('x-aftershock-error: headers-too-large');
    // The same label as a request head over the limit.
    const head = await rawExchange(proxy.address.port, `GET /hd HTTP/1.1\r\nHost: x\r\n${trailers}\r\n`);
    expect(head.data).toMatch(/^HTTP\/1\.1 431/);
    await proxy.close();
    const recs = readRecords(file).filter((r) => r.type === 'http');
    expect(recs).toHaveLength(2);
    expect(recs.find((r) => r.path === '/hd')).toMatchObject({ status: 431, outcome: 'bad-request', error: 'headers-too-large' });
    expect(recs.find((r) => r.path === '/tr')).toMatchObject({ method: 'POST', status: 431, outcome: 'bad-request', error: 'headers-too-large' });
  });

  it('never lets the Host header choose the upstream', async () => {
    const up = await startUpstream((req, res) => res.end(`upstream saw ${req.url}`));
    const proxy = await startTestProxy({ target: up.url });
    const r = await rawExchange(proxy.address.port, 'GET /x HTTP/1.1\r\nHost: evil.example:25\r\nConnection: close\r\n\r\n');
    expect(r.data).toMatch(/^HTTP\/1\.1 200/);
    expect(r.data).toContain('upstream saw /x');
  });

  it('times out slowloris clients that dribble their headers', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, headersTimeout: '400ms' });
    const result = await new Promise<{ data: string; ms: number }>((resolve) => {
      const t0 = Date.now();
      const s = net.connect(proxy.address.port, '127.0.0.1');
      let data = '';
      s.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => s.writable && s.write('X-Drip: 1\r\n'), 100);
      s.on('data', (c: Buffer) => (data += c.toString()));
      s.on('close', () => {
        clearInterval(drip);
        resolve({ data, ms: Date.now() - t0 });
      });
      s.on('error', () => undefined);
      setTimeout(() => s.destroy(), 5000);
    });
    expect(result.data).toMatch(/^HTTP\/1\.1 408/);
    expect(result.ms).toBeLessThan(3000);
    expect((await request(`${proxy.url}/fine`)).status).toBe(200);
  });

  it('keeps serving with a thousand idle connections open', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url });
    const sockets: net.Socket[] = [];
    onCleanup(() => sockets.forEach((s) => s.destroy()));
    for (let i = 0; i < 1000; i++) {
      const s = net.connect(proxy.address.port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await waitFor(() => proxy.stats().connections >= 1000, 10_000);
    expect((await request(`${proxy.url}/fine`)).status).toBe(200);
  });

  it('survives aborts at every stage of an exchange', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-length': '100000' });
        res.write('x'.repeat(50_000));
        setTimeout(() => res.end('y'.repeat(50_000)), 50);
      });
    });
    const proxy = await startTestProxy({ target: up.url });
    const stages = [
      'GET /a HTT',
      'GET /a HTTP/1.1\r\nHost: x\r\n',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nhalf-a-body',
      'GET /a HTTP/1.1\r\nHost: x\r\n\r\n',
    ];
    for (const stage of stages) {
      await new Promise<void>((resolve) => {
        const s = net.connect(proxy.address.port, '127.0.0.1', () => {
          s.write(stage);
          setTimeout(() => {
            s.resetAndDestroy();
            resolve();
          }, 20);
        });
        s.on('error', () => undefined);
      });
    }
    expect((await request(`${proxy.url}/fine`)).status).toBe(200);
    await waitFor(() => proxy.stats().inFlight === 0);
  });

  it('survives invalid WebSocket frames and abrupt disconnects', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => ws.send(d)));
    const proxy = await startTestProxy({ target: upstream });
    // A handshake followed by garbage that is not a valid frame (reserved opcode 0x3, unmasked).
    const raw = await rawExchange(
      proxy.address.port,
      Buffer.concat([
        Buffer.from('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
        Buffer.from([0x83, 0x05, 1, 2, 3, 4, 5]),
      ]),
      { timeoutMs: 1500 },
    );
    expect(raw.data).toMatch(/^HTTP\/1\.1 101/);
    for (let i = 0; i < 20; i++) {
      const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/ws');
      ws.on('error', () => undefined);
      ws.on('open', () => ws.terminate());
    }
    const ok = new WebSocket(proxy.url.replace('http', 'ws') + '/ws');
    onCleanup(() => ok.terminate());
    const echoed = await new Promise<string>((resolve, reject) => {
      ok.on('open', () => ok.send('still here'));
      ok.on('message', (d) => resolve(d.toString()));
      ok.on('error', reject);
    });
    expect(echoed).toBe('still here');
  });
});

describe('resource bounds', () => {
  it('refuses connections past maxConnections, counts them, and keeps serving those it holds', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, maxConnections: 5 });
    const held: net.Socket[] = [];
    onCleanup(() => held.forEach((s) => s.destroy()));
    for (let i = 0; i < 5; i++) {
      const s = net.connect(proxy.address.port, '127.0.0.1');
      s.on('error', () => undefined);
      held.push(s);
    }
    await waitFor(() => proxy.stats().connections === 5);
    const extra = await rawExchange(proxy.address.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 1000 });
    expect(extra.data).toBe('');
    expect(proxy.stats().droppedConnections).toBeGreaterThanOrEqual(1);
    // A held connection still gets served.
    const answer = await new Promise<string>((resolve) => {
      const s = held[0] as net.Socket;
      s.once('data', (c: Buffer) => resolve(c.toString()));
      s.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
  });

  it('holds a client that stops reading with bounded memory: backpressure reaches the upstream', async () => {
    const gc = (globalThis as { gc?: () => void }).gc as () => void;
    let upstreamBlocked = false;
    let upstreamSent = 0;
    const up = await startUpstream((_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (upstreamSent < 200 * 1024 * 1024) {
          upstreamSent += chunk.length;
          if (!res.write(chunk)) {
            upstreamBlocked = true;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const proxy = await startTestProxy({ target: up.url });
    gc();
    const before = process.memoryUsage();
    const s = net.connect(proxy.address.port, '127.0.0.1');
    s.on('error', () => undefined);
    onCleanup(() => {
      s.destroy();
    });
    s.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    s.pause(); // never read
    await waitFor(() => upstreamBlocked);
    await new Promise((r) => setTimeout(r, 500));
    gc();
    const after = process.memoryUsage();
    const grown = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
    // The upstream is stalled far below the 200 MB it wants to send, and the proxy holds little.
    expect(upstreamSent).toBeLessThan(32 * 1024 * 1024);
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    expect((await request(`${proxy.url}/other`)).status).toBe(200);
  });

  it('returns to its memory baseline after a burst of hostile connections', async () => {
    const gc = (globalThis as { gc?: () => void }).gc as () => void;
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url });
    for (let i = 0; i < 50; i++) await request(`${proxy.url}/warm${i}`);
    gc();
    const base = process.memoryUsage().heapUsed;
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 500; i++) {
      const s = net.connect(proxy.address.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('connect', () => s.write(i % 2 === 0 ? 'GET /half HTTP/1.1\r\nHost: x\r\n' : 'GARBAGE\r\n\r\n'));
      sockets.push(s);
    }
    await waitFor(() => proxy.stats().connections >= 250, 10_000);
    for (const s of sockets) s.resetAndDestroy();
    await waitFor(() => proxy.stats().connections === 0, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    gc();
    gc();
    const grown = process.memoryUsage().heapUsed - base;
    expect(grown).toBeLessThan(8 * 1024 * 1024);
    expect((await request(`${proxy.url}/fine`)).status).toBe(200);
  });
});
