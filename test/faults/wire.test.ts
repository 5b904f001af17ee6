/**
 * Every fault on the wire: a real upstream on 127.0.0.1:0, the real proxy, real HTTP and WebSocket
 * clients and raw `net` sockets. A reset must be an RST (ECONNRESET), a close a FIN with no
 * response, a hang must end when the client leaves, a truncation must stop at its byte, a throttle
 * must hold its rate (with a tolerance), a lost response must have reached the upstream, a capacity
 * must queue and reject at its bound. Everything is closed in afterEach (test/helpers.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, rawExchange, readRecords, request, startTestProxy, startUpstream, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { HttpRecord, WsRecord } from '../../src/record/schema.js';

const profile = (yaml: string) => parseProfile(yaml, null);

/** An upstream that counts requests and answers `body` (200, with Content-Length). */
async function counting(body: string | Buffer = 'hello from upstream', delayMs = 0, status = 200): Promise<{ url: string; hits: () => number; port: number }> {
  let hits = 0;
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    hits++;
    req.resume();
    const send = (): void => {
      res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  });
  return { url: up.url, hits: () => hits, port: up.port };
}

async function proxyWith(yaml: string, target: string, record = false) {
  const file = record ? path.join(tempDir(), 'rec.ndjson') : null;
  const proxy = await startTestProxy({ target, profile: profile(yaml), seed: 1, ...(file === null ? {} : { record: file }) });
  const port = Number(new URL(proxy.url).port);
  const records = (): HttpRecord[] => (file === null ? [] : readRecords(file).filter((r): r is HttpRecord => r.type === 'http'));
  const wsRecords = (): WsRecord[] => (file === null ? [] : readRecords(file).filter((r): r is WsRecord => r.type === 'ws'));
  return { proxy, port, records, wsRecords };
}

const GET = (p = '/x'): string => `GET ${p} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`;

describe('HTTP faults on the wire', () => {
  it('reset is a TCP RST: the client sees ECONNRESET and no response; the upstream is not called', async () => {
    const up = await counting();
    const { port, records } = await proxyWith('rules:\n  - name: rst\n    fault: { type: reset }', up.url, true);
    const raw = await rawExchange(port, GET());
    expect(raw.error?.code).toBe('ECONNRESET');
    expect(raw.data).toBe('');
    await expect(request(`http://127.0.0.1:${port}/y`)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(up.hits()).toBe(0);
    const rec = await waitFor(() => records()[0]);
    expect(rec).toMatchObject({ status: null, outcome: 'reset', fault: { rule: 'rst', type: 'reset', injected: true } });
  });

  it('close is a FIN with no response (not an RST)', async () => {
    const up = await counting();
    const { port } = await proxyWith('rules:\n  - fault: { type: close }', up.url);
    const raw = await rawExchange(port, GET());
    expect(raw.error).toBeNull();
    expect(raw.data).toBe('');
    expect(up.hits()).toBe(0);
  });

  it('hang holds until the client leaves, then the exchange ends; with a duration it resets', async () => {
    const up = await counting();
    const { proxy, port, records } = await proxyWith('rules:\n  - name: h\n    match: { path: /forever }\n    fault: { type: hang }\n  - name: timed\n    match: { path: /timed }\n    fault: { type: hang, duration: 150ms }', up.url, true);
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => void s.destroy());
    const got: Buffer[] = [];
    s.on('data', (c: Buffer) => got.push(c));
    s.on('error', () => undefined);
    s.write(GET('/forever'));
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    expect(proxy.stats().inFlight).toBe(1);
    s.destroy();
    await waitFor(() => proxy.stats().inFlight === 0);
    const held = await waitFor(() => records().find((r) => r.path === '/forever'));
    expect(held.outcome).toBe('client-abort');
    expect(held.duration).toBeGreaterThanOrEqual(250);
    const t0 = Date.now();
    const raw = await rawExchange(port, GET('/timed'));
    expect(raw.error?.code).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(130);
    expect(up.hits()).toBe(0);
  });

  it('hang with an upload larger than the read buffers still sees the client leave (the body is read and dropped)', async () => {
    const up = await counting();
    const { proxy, port, records } = await proxyWith('rules:\n  - name: h\n    match: { path: /up }\n    fault: { type: hang }', up.url, true);
    const size = 1_000_000;
    // With Expect: 100-continue too: no 100 comes, and the client (as curl does after 1 s) sends its body anyway.
    for (const how of ['rst', 'fin', 'expect'] as const) {
      const s = net.connect(port, '127.0.0.1');
      onCleanup(() => void s.destroy());
      s.on('error', () => undefined);
      s.write(`POST /up?how=${how} HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n${how === 'expect' ? 'Expect: 100-continue\r\n' : ''}\r\n`);
      s.write(Buffer.alloc(size, 97));
      await waitFor(() => proxy.stats().inFlight === 1);
      await new Promise((r) => setTimeout(r, 300));
      if (how === 'fin') s.end();
      else s.resetAndDestroy();
      await waitFor(() => proxy.stats().inFlight === 0, 3000);
      const rec = await waitFor(() => records().find((r) => r.query === `how=${how}`));
      expect(rec.outcome).toBe('client-abort');
      expect(rec.bodyHash).toMatch(new RegExp(`:${size}$`));
    }
    expect(up.hits()).toBe(0);
  });

  it('reset on a request pipelined behind an answered one: the client gets the answer, then a reset (not a clean end)', async () => {
    const up = await counting();
    const { port } = await proxyWith('rules:\n  - name: rst\n    match: { path: /rst }\n    fault: { type: reset }', up.url);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<string>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write('GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /rst HTTP/1.1\r\nHost: t\r\n\r\n'));
          let data = '';
          s.on('data', (c: Buffer) => (data += c.toString()));
          s.on('error', (e: NodeJS.ErrnoException) => resolve(`${data.startsWith('HTTP/1.1 200') ? '200' : 'none'} ${e.code ?? 'error'}`));
          s.on('end', () => resolve(`${data.startsWith('HTTP/1.1 200') ? '200' : 'none'} end`));
        }),
      ),
    );
    expect(outcomes.filter((o) => o !== '200 ECONNRESET')).toEqual([]);
  });

  it('http-error answers with its status, Retry-After and the fault label; the upstream is not called', async () => {
    const up = await counting();
    const { port } = await proxyWith('rules:\n  - name: reject-sends\n    match: { method: POST }\n    fault: { type: http-error, status: 503, retryAfter: 2s }', up.url);
    const r = await request(`http://127.0.0.1:${port}/v1/messages`, { method: 'POST', body: 'hi', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('2');
    expect(r.headers['x-aftershock-fault']).toBe('reject-sends/http-error');
    expect(JSON.parse(r.text)).toMatchObject({ error: 'injected', rule: 'reject-sends' });
    expect(up.hits()).toBe(0);
    expect((await request(`http://127.0.0.1:${port}/v1/messages`)).status).toBe(200);
  });

  it('latency delays the request; at: response delays the answer after the upstream has worked', async () => {
    let upstreamAt = 0;
    const up = await startUpstream((req, res) => {
      upstreamAt = Date.now();
      req.resume();
      res.end('ok');
    });
    const { port } = await proxyWith('rules:\n  - match: { path: /req }\n    fault: { type: latency, delay: 200ms }\n  - match: { path: /res }\n    fault: { type: latency, delay: 200ms, at: response }', up.url);
    let t0 = Date.now();
    expect((await request(`http://127.0.0.1:${port}/req`)).text).toBe('ok');
    expect(upstreamAt - t0).toBeGreaterThanOrEqual(180);
    t0 = Date.now();
    expect((await request(`http://127.0.0.1:${port}/res`)).text).toBe('ok');
    const total = Date.now() - t0;
    expect(upstreamAt - t0).toBeLessThan(150);
    expect(total).toBeGreaterThanOrEqual(180);
  });

  it('a gate that lets a request through untouched labels nothing; the one it rejects is labelled', async () => {
    const up = await counting('fine');
    const { port, records, proxy } = await proxyWith('rules:\n  - name: gate\n    fault: { type: rate-limit, rate: 1, burst: 1, per: global }', up.url, true);
    const first = await request(`http://127.0.0.1:${port}/a`);
    const second = await request(`http://127.0.0.1:${port}/b`);
    expect(first.status).toBe(200);
    expect(first.headers['x-aftershock-fault']).toBeUndefined();
    expect(second.status).toBe(429);
    expect(second.headers['x-aftershock-fault']).toBe('gate/rate-limit');
    await proxy.close();
    const recs = records();
    expect(recs.find((r) => r.path === '/a')?.fault).toBeNull();
    expect(recs.find((r) => r.path === '/b')?.fault).toMatchObject({ rule: 'gate', type: 'rate-limit', injected: true });
  });

  it('truncate lets exactly N body bytes through, then resets', async () => {
    const body = Buffer.alloc(20_000, 0x61);
    const up = await counting(body);
    const { port } = await proxyWith('rules:\n  - fault: { type: truncate, after: 1000 }', up.url);
    const raw = await rawExchange(port, GET());
    // The proxy lets the N bytes reach the client, then resets: an RST, not a clean end.
    expect(raw.error?.code).toBe('ECONNRESET');
    const split = raw.data.indexOf('\r\n\r\n');
    expect(raw.data.slice(0, split)).toMatch(/^HTTP\/1.1 200/);
    expect(raw.data.slice(0, split)).toMatch(/content-length: 20000/i);
    expect(raw.data.length - split - 4).toBe(1000);
    await expect(request(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: 'ECONNRESET' }); // incomplete body
  });

  it('throttle holds the body to its rate (within tolerance) and loses no byte', async () => {
    const body = Buffer.from(Array.from({ length: 60_000 }, (_, i) => i % 251));
    const up = await counting(body);
    const { port } = await proxyWith('rules:\n  - fault: { type: throttle, bytesPerSecond: 60000 }', up.url);
    const t0 = Date.now();
    const r = await request(`http://127.0.0.1:${port}/big`);
    const took = Date.now() - t0;
    expect(r.body.equals(body)).toBe(true);
    // 60 kB at 60 kB/s: about 1 s (the first 50 ms slice leaves at once).
    expect(took).toBeGreaterThan(850);
    expect(took).toBeLessThan(2500); // generous: CI machines are busy
  });

  it('slow-body dribbles chunks at its interval', async () => {
    const up = await counting('abcdefghijklmnopqrst');
    const { port } = await proxyWith('rules:\n  - fault: { type: slow-body, chunkSize: 5, interval: 60ms }', up.url);
    const t0 = Date.now();
    const r = await request(`http://127.0.0.1:${port}/`);
    expect(r.text).toBe('abcdefghijklmnopqrst');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(170); // chunks at 0, 60, 120, 180 ms
  });

  it('corrupt changes exactly `count` bytes and keeps the length', async () => {
    const body = Buffer.alloc(5000, 0x30);
    const up = await counting(body);
    const { port } = await proxyWith('rules:\n  - fault: { type: corrupt, count: 4 }', up.url);
    const r = await request(`http://127.0.0.1:${port}/`);
    expect(r.body.length).toBe(5000);
    expect([...r.body].filter((b) => b !== 0x30)).toHaveLength(4);
  });

  it('lost-response reaches the upstream, which does the work; the client is reset', async () => {
    let created = 0;
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        created++;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"id":"m1"}');
      });
    });
    const { port, records } = await proxyWith('rules:\n  - name: lose\n    match: { method: POST, status: [2xx] }\n    fault: { type: lost-response }', up.url, true);
    await expect(request(`http://127.0.0.1:${port}/v1/messages`, { method: 'POST', body: '{"text":"hi"}', headers: { 'content-type': 'application/json' } })).rejects.toMatchObject({ code: 'ECONNRESET' });
    await waitFor(() => created === 1);
    const rec = await waitFor(() => records()[0]);
    expect(rec).toMatchObject({ status: null, outcome: 'reset', upstreamStatus: 201, fault: { rule: 'lose', type: 'lost-response' } });
    // match.status: an upstream error is not swallowed.
    const failing = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(500);
      res.end('boom');
    });
    const other = await proxyWith('rules:\n  - match: { status: [2xx] }\n    fault: { type: lost-response }', failing.url);
    expect((await request(`http://127.0.0.1:${other.port}/`)).status).toBe(500);
  });

  it('a response delay before lost-response holds the reset back; a throttle picked before it never touched a body and is not labelled', async () => {
    const up = await startUpstream((_req, res) => res.end('0123456789'));
    const { proxy, port, records } = await proxyWith(
      'rules:\n  - name: hold\n    fault: { type: latency, delay: 300ms, at: response }\n  - name: thr\n    fault: { type: throttle, bytesPerSecond: 5 }\n  - name: lose\n    fault: { type: lost-response }',
      up.url,
      true,
    );
    const t0 = Date.now();
    const raw = await rawExchange(port, GET('/lost'));
    expect(raw.error?.code).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    const rec = await waitFor(() => records()[0]);
    expect(rec.faults.map((f) => f.rule)).toEqual(['hold', 'lose']);
    expect(rec).toMatchObject({ outcome: 'reset', fault: { rule: 'lose' } });
    // Counted as labelled: the throttle touched no body.
    const injected = Object.fromEntries(proxy.engine.stats().map((r) => [r.name, r.injected]));
    expect(injected).toMatchObject({ hold: 1, thr: 0, lose: 1 });
  });

  it('a client that leaves during the delay before lost-response was not reset by it: the lost-response is neither labelled nor counted', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const { proxy, port, records } = await proxyWith('rules:\n  - name: hold\n    fault: { type: latency, delay: 1s, at: response }\n  - name: lose\n    fault: { type: lost-response }', up.url, true);
    await rawExchange(port, GET('/gone'), { timeoutMs: 200 });
    const rec = await waitFor(() => records()[0], 4000);
    expect(rec).toMatchObject({ outcome: 'client-abort' });
    expect(rec.faults.map((f) => f.rule)).toEqual(['hold']);
    const injected = Object.fromEntries(proxy.engine.stats().map((r) => [r.name, r.injected]));
    expect(injected).toMatchObject({ hold: 1, lose: 0 });
  });

  it('throttle and slow-body label nothing when there is no body to slow (HEAD, 204)', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(req.url === '/empty' ? 204 : 200, { 'content-length': '10' });
      res.end(req.method === 'HEAD' || req.url === '/empty' ? undefined : '0123456789');
    });
    const { port, records } = await proxyWith('rules:\n  - name: thr\n    fault: { type: throttle, bytesPerSecond: 100000 }\n  - name: slow\n    fault: { type: slow-body }', up.url, true);
    for (const req of ['HEAD /x HTTP/1.1', 'GET /empty HTTP/1.1']) {
      const raw = await rawExchange(port, `${req}\r\nHost: t\r\nConnection: close\r\n\r\n`);
      expect(raw.data.toLowerCase()).not.toContain('x-aftershock-fault');
    }
    const recs = await waitFor(() => (records().length === 2 ? records() : undefined));
    for (const r of recs) expect(r).toMatchObject({ fault: null, faults: [] });
  });

  it('capacity works N at once, queues up to its bound, and rejects beyond it with 503', async () => {
    const up = await counting('done', 300);
    const { port } = await proxyWith('rules:\n  - name: cap\n    fault: { type: capacity, concurrency: 1, queue: 1, retryAfter: 1s }', up.url);
    const t0 = Date.now();
    const timed = (p: Promise<{ status: number; headers: http.IncomingHttpHeaders }>) => p.then((r) => ({ ...r, at: Date.now() - t0 }));
    const first = timed(request(`http://127.0.0.1:${port}/1`));
    await new Promise((r) => setTimeout(r, 50));
    const second = timed(request(`http://127.0.0.1:${port}/2`));
    await new Promise((r) => setTimeout(r, 50));
    const third = timed(request(`http://127.0.0.1:${port}/3`));
    const [a, b, c] = await Promise.all([first, second, third]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(b.at).toBeGreaterThanOrEqual(550); // waited for the first to finish, then worked 300 ms
    expect(c.status).toBe(503);
    expect(c.headers['retry-after']).toBe('1');
    expect(c.at).toBeLessThan(450); // rejected at once, not queued (that would take 600 ms)
    expect(up.hits()).toBe(2);
  });

  it('a queued request whose client leaves gives its place back', async () => {
    const up = await counting('done', 300);
    const { port } = await proxyWith('rules:\n  - fault: { type: capacity, concurrency: 1, queue: 1 }', up.url);
    const first = request(`http://127.0.0.1:${port}/1`);
    await new Promise((r) => setTimeout(r, 50));
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write(GET('/quitter'));
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const third = request(`http://127.0.0.1:${port}/3`); // takes the freed place, not rejected
    expect((await first).status).toBe(200);
    expect((await third).status).toBe(200);
    expect(up.hits()).toBe(2);
  });

  it('rate-limit answers 429 with an exact Retry-After once the bucket is empty', async () => {
    const up = await counting();
    const { port } = await proxyWith('rules:\n  - fault: { type: rate-limit, rate: 0.5, burst: 2, per: global }', up.url);
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 3; i++) {
      const r = await request(`http://127.0.0.1:${port}/`);
      statuses.push(r.status);
      retryAfter ??= r.headers['retry-after'] as string | undefined;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(retryAfter).toBe('2');
  });

  it('header-triggered faults work when the profile opts in', async () => {
    const up = await counting();
    const { port } = await proxyWith('headerFaults: true\nrules: []', up.url);
    const r = await request(`http://127.0.0.1:${port}/`, { headers: { 'x-aftershock-fault': 'http-error;status=418' } });
    expect(r.status).toBe(418);
    expect(r.headers['x-aftershock-fault']).toBe('header/http-error');
    expect((await request(`http://127.0.0.1:${port}/`, { headers: { 'x-aftershock-fault': 'bogus' } })).status).toBe(200);
  });

  it('a header-triggered response fault that never acts is not counted (a truncate longer than the body)', async () => {
    const up = await counting('ten bytes!');
    const { proxy, port } = await proxyWith('headerFaults: true\nrules: []', up.url);
    const r = await request(`http://127.0.0.1:${port}/`, { headers: { 'x-aftershock-fault': 'truncate;after=1000' } });
    expect(r.text).toBe('ten bytes!');
    expect(r.headers['x-aftershock-fault']).toBeUndefined();
    const cut = await request(`http://127.0.0.1:${port}/`, { headers: { 'x-aftershock-fault': 'http-error;status=418' } });
    expect(cut.status).toBe(418);
    expect(proxy.engine.stats().find((x) => x.name === 'header')).toMatchObject({ matched: 2, injected: 1 });
  });
});

/** An upstream that answers `body` chunked (no Content-Length: the proxy cannot know the length from the head). */
async function chunked(body: string | Buffer): Promise<{ url: string }> {
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    if (body.length > 0) res.write(body);
    res.end();
  });
  return { url: up.url };
}

/** The data of a chunked body as received, and whether its last (zero) chunk came. */
function dechunk(text: string): { body: string; last: boolean } {
  let body = '';
  for (let i = 0; ; ) {
    const eol = text.indexOf('\r\n', i);
    if (eol === -1) return { body, last: false };
    const size = parseInt(text.slice(i, eol), 16);
    if (size === 0) return { body, last: true };
    body += text.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

/** Connects a raw socket, sends `data`, and destroys it after `ms` (a client that gives up). */
async function giveUpAfter(port: number, data: string, ms: number): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  onCleanup(() => void s.destroy());
  s.on('error', () => undefined);
  s.write(data);
  await new Promise((r) => setTimeout(r, ms));
  s.destroy();
}

describe('what a fault did is what is labelled', () => {
  it('a hang, a latency and a capacity queue the client gives up on are labelled in the record', async () => {
    const up = await counting('done', 600);
    const { port, records } = await proxyWith(
      [
        'rules:',
        '  - { name: h, match: { path: /hang }, fault: { type: hang } }',
        '  - { name: slow, match: { path: /slow }, fault: { type: latency, delay: 2s } }',
        '  - { name: cap, match: { path: /cap/** }, fault: { type: capacity, concurrency: 1, queue: 2 } }',
      ].join('\n'),
      up.url,
      true,
    );
    const holder = request(`http://127.0.0.1:${port}/cap/holder`); // takes the one slot for 600 ms
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([giveUpAfter(port, GET('/hang'), 150), giveUpAfter(port, GET('/slow'), 150), giveUpAfter(port, GET('/cap/queued'), 150)]);
    expect((await holder).status).toBe(200);
    const recs = await waitFor(() => (records().length === 4 ? records() : null));
    const tag = (p: string) => {
      const r = recs.find((x) => x.path === p) as HttpRecord;
      return [r.outcome, r.fault, r.faults];
    };
    expect(tag('/hang')).toEqual(['client-abort', { rule: 'h', type: 'hang', injected: true }, [{ rule: 'h', type: 'hang', injected: true }]]);
    expect(tag('/slow')).toEqual(['client-abort', { rule: 'slow', type: 'latency', injected: true }, [{ rule: 'slow', type: 'latency', injected: true }]]);
    expect(tag('/cap/queued')).toEqual(['client-abort', { rule: 'cap', type: 'capacity', injected: true }, [{ rule: 'cap', type: 'capacity', injected: true }]]);
    expect(tag('/cap/holder')).toEqual([null, null, []]); // had room at once: a gate that passed
    expect(up.hits()).toBe(1);
  });

  it('an injected answer to `Expect: 100-continue` comes at once, without the body, and closes the connection', async () => {
    const up = await counting();
    const { port, records } = await proxyWith(
      'rules:\n  - { name: no, match: { path: /no }, fault: { type: http-error, status: 503, body: nope } }\n  - { name: rst, match: { path: /rst }, fault: { type: reset } }',
      up.url,
      true,
    );
    const post = (p: string): string => `POST ${p} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`;
    let t0 = Date.now();
    // The client holds its body back: it waits for 100 Continue (or the final answer), as curl does.
    const raw = await rawExchange(port, post('/no'), { timeoutMs: 3000 });
    expect(Date.now() - t0).toBeLessThan(600); // the proxy waited up to 1 s for the body before
    expect(raw.error).toBeNull(); // a FIN after the answer, not a reset, not left open
    expect(raw.data).toMatch(/^HTTP\/1\.1 503 /);
    expect(raw.data).not.toMatch(/100 Continue/);
    expect(raw.data).toMatch(/\r\nconnection: close\r\n/i);
    expect(raw.data.endsWith('\r\n\r\nnope')).toBe(true);
    t0 = Date.now();
    const reset = await rawExchange(port, post('/rst'), { timeoutMs: 3000 });
    expect(reset.error?.code).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeLessThan(600);
    expect(up.hits()).toBe(0);
    const recs = await waitFor(() => (records().length === 2 ? records() : null));
    expect(recs.find((r) => r.path === '/no')).toMatchObject({ status: 503, outcome: null, bytesIn: 0, bodyHash: null, fault: { rule: 'no', type: 'http-error' } });
  });

  it('truncate after: 0 sends the head, then resets', async () => {
    const up = await counting(Buffer.alloc(1000, 0x61));
    const { port, records } = await proxyWith('rules:\n  - { name: t0, fault: { type: truncate, after: 0 } }', up.url, true);
    const raw = await rawExchange(port, GET('/t0'));
    expect(raw.error?.code).toBe('ECONNRESET');
    expect(raw.data).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(raw.data).toMatch(/\r\ncontent-length: 1000\r\n/i);
    expect(raw.data).toMatch(/\r\nx-aftershock-fault: t0\/truncate\r\n/i);
    expect(raw.data.endsWith('\r\n\r\n')).toBe(true); // the head, no body byte
    const rec = await waitFor(() => records()[0]);
    expect(rec).toMatchObject({ status: 200, outcome: 'reset', bytesOut: 0, fault: { rule: 't0', type: 'truncate', injected: true } });
  });

  it('a truncate that cuts nothing is not labelled; one that cuts a body of unknown length is', async () => {
    const sized = await counting(Buffer.alloc(50, 0x62));
    const a = await proxyWith('rules:\n  - { name: t100, fault: { type: truncate, after: 100 } }', sized.url, true);
    const r = await request(`http://127.0.0.1:${a.port}/sized`);
    expect(r.body.length).toBe(50);
    expect(r.headers['x-aftershock-fault']).toBeUndefined();
    const small = await chunked(Buffer.alloc(50, 0x63));
    const b = await proxyWith('rules:\n  - { name: t100, fault: { type: truncate, after: 100 } }', small.url, true);
    const r2 = await request(`http://127.0.0.1:${b.port}/chunked`);
    expect(r2.body.length).toBe(50);
    expect(r2.headers['x-aftershock-fault']).toBeUndefined();
    const big = await chunked(Buffer.alloc(5000, 0x64));
    const c = await proxyWith('rules:\n  - { name: t100, fault: { type: truncate, after: 100 } }', big.url, true);
    const raw = await rawExchange(c.port, GET('/big'));
    expect(raw.error?.code).toBe('ECONNRESET');
    const split = raw.data.indexOf('\r\n\r\n');
    expect(raw.data.slice(0, split)).toMatch(/\r\nx-aftershock-fault: t100\/truncate/i);
    expect(dechunk(raw.data.slice(split + 4))).toEqual({ body: 'd'.repeat(100), last: false }); // 100 bytes, no last chunk
    const recA = await waitFor(() => a.records()[0]);
    const recB = await waitFor(() => b.records()[0]);
    const recC = await waitFor(() => c.records()[0]);
    expect([recA.outcome, recA.fault, recA.faults]).toEqual([null, null, []]);
    expect([recB.outcome, recB.fault, recB.faults]).toEqual([null, null, []]);
    // The rule's counters (GET /rules, /metrics) agree with the labels: matched, not injected.
    const ruleA = a.proxy.engine.stats().find((x) => x.name === 't100');
    expect(ruleA).toMatchObject({ matched: 1, injected: 0 });
    expect(c.proxy.engine.stats().find((x) => x.name === 't100')).toMatchObject({ matched: 1, injected: 1 });
    // A chunked body shorter than the cut: the lazy truncate never acted, so it is not counted either.
    expect(b.proxy.engine.stats().find((x) => x.name === 't100')).toMatchObject({ matched: 1, injected: 0 });
    expect(recC).toMatchObject({ status: 200, outcome: 'reset', bytesOut: 100, fault: { rule: 't100', type: 'truncate', injected: true } });
  });

  it('corrupt count on a small body of unknown length flips exactly `count` of its bytes; an empty body is not labelled', async () => {
    const body = '{"ok":true,"method":"GET","url":"/cc","body":""}';
    const up = await chunked(body);
    const { port, records } = await proxyWith('rules:\n  - { name: cc, match: { path: /cc }, fault: { type: corrupt, count: 3 } }', up.url, true);
    for (let i = 0; i < 10; i++) {
      const r = await request(`http://127.0.0.1:${port}/cc`);
      expect(r.body.length).toBe(body.length);
      expect([...r.body].filter((b, j) => b !== body.charCodeAt(j))).toHaveLength(3);
      expect(r.headers['x-aftershock-fault']).toBe('cc/corrupt');
    }
    const empty = await chunked('');
    const e = await proxyWith('rules:\n  - { name: cc, fault: { type: corrupt, count: 3 } }', empty.url, true);
    const r = await request(`http://127.0.0.1:${e.port}/empty`);
    expect(r.body.length).toBe(0);
    expect(r.headers['x-aftershock-fault']).toBeUndefined();
    const recs = await waitFor(() => (records().length === 10 ? records() : null));
    expect(recs.every((x) => x.fault?.type === 'corrupt' && x.faults.length === 1)).toBe(true);
    const rec = await waitFor(() => e.records()[0]);
    expect([rec.status, rec.fault, rec.faults]).toEqual([200, null, []]);
  });

  it('capacity rate: N takes a burst of N requests at once, then rejects', async () => {
    const up = await counting();
    const { port } = await proxyWith('rules:\n  - { name: cap, fault: { type: capacity, rate: 3 } }', up.url);
    // Four at once: three tokens, the fourth finds none (a token takes 333 ms to come back).
    const statuses = await Promise.all([1, 2, 3, 4].map((i) => request(`http://127.0.0.1:${port}/${i}`).then((r) => r.status)));
    expect(statuses.sort()).toEqual([200, 200, 200, 503]);
    expect(up.hits()).toBe(3);
  });

  it('an injected answer counts its body in bytesOut', async () => {
    const up = await counting();
    const { port, records, proxy } = await proxyWith('rules:\n  - { name: e, fault: { type: http-error, status: 503, body: "not now, retry later" } }', up.url, true);
    const r = await request(`http://127.0.0.1:${port}/a`);
    expect(r.text).toBe('not now, retry later');
    const head = await request(`http://127.0.0.1:${port}/b`, { method: 'HEAD' });
    expect(head.body.length).toBe(0);
    await proxy.close();
    const recs = records();
    expect(recs.find((x) => x.path === '/a')?.bytesOut).toBe(20);
    expect(recs.find((x) => x.path === '/b')?.bytesOut).toBe(0);
  });
});

// ------------------------------------------------------------------ WebSocket

async function wsUpstream(onConnection: (ws: WebSocket) => void): Promise<{ url: string; received: string[] }> {
  const received: string[] = [];
  const url = await startWsUpstream((ws) => {
    ws.on('message', (d: Buffer) => received.push(d.toString()));
    onConnection(ws);
  });
  return { url, received };
}

function wsConnect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode, headers: res.headers })));
  });
}

const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> => new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));

describe('WebSocket faults on the wire', () => {
  it('ws-reject refuses the upgrade with 503 and Retry-After', async () => {
    const up = await wsUpstream(() => undefined);
    const { proxy, wsRecords } = await proxyWith('rules:\n  - name: shed\n    fault: { type: ws-reject, status: 503, retryAfter: 5s }', up.url, true);
    await expect(wsConnect(proxy.url.replace('http', 'ws') + '/socket')).rejects.toMatchObject({ status: 503, headers: { 'retry-after': '5', 'x-aftershock-fault': 'shed/ws-reject' } });
    const rec = await waitFor(() => wsRecords()[0]);
    expect(rec).toMatchObject({ status: 503, retryAfter: 5, fault: { rule: 'shed', type: 'ws-reject' } });
  });

  it('a ws-close behind a ws-reject that refused the upgrade is not counted as injected (it had nothing to close)', async () => {
    const up = await wsUpstream(() => undefined);
    const { proxy } = await proxyWith(
      'rules:\n  - name: shed\n    fault: { type: ws-reject, status: 503 }\n  - name: drop\n    fault: { type: ws-close, code: 1006, after: 1s }',
      up.url,
      true,
    );
    await expect(wsConnect(proxy.url.replace('http', 'ws') + '/socket')).rejects.toMatchObject({ status: 503 });
    const stats = proxy.engine.stats();
    expect(stats.find((x) => x.name === 'shed')).toMatchObject({ injected: 1 });
    expect(stats.find((x) => x.name === 'drop')).toMatchObject({ injected: 0 });
    // The same with the ws-close listed first: picked before the reject, then dropped.
    const first = await proxyWith(
      'rules:\n  - name: drop\n    fault: { type: ws-close, code: 1006, after: 1s }\n  - name: shed\n    fault: { type: ws-reject, status: 503 }',
      up.url,
      true,
    );
    await expect(wsConnect(first.proxy.url.replace('http', 'ws') + '/socket')).rejects.toMatchObject({ status: 503 });
    const again = first.proxy.engine.stats();
    expect(again.find((x) => x.name === 'shed')).toMatchObject({ injected: 1 });
    expect(again.find((x) => x.name === 'drop')).toMatchObject({ injected: 0 });
  });

  it('ws-close with 1006 drops the connection without a close frame; a code closes with a frame', async () => {
    const up = await wsUpstream(() => undefined);
    const { proxy, wsRecords } = await proxyWith(
      'rules:\n  - name: drop\n    match: { path: /drop }\n    fault: { type: ws-close, code: 1006, after: 100ms }\n  - name: count\n    match: { path: /count }\n    fault: { type: ws-close, code: 4000, reason: enough, afterMessages: 2 }',
      up.url,
      true,
    );
    const base = proxy.url.replace('http', 'ws');
    const dropped = await wsConnect(base + '/drop');
    const t0 = Date.now();
    expect(await closed(dropped)).toEqual({ code: 1006, reason: '' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
    const counted = await wsConnect(base + '/count');
    const c = closed(counted);
    counted.send('one');
    counted.send('two');
    expect(await c).toEqual({ code: 4000, reason: 'enough' });
    await waitFor(() => up.received.includes('two'));
    // Both closes are the proxy's own, and both records say which rule did it.
    const recs = await waitFor(() => (wsRecords().length === 2 ? wsRecords() : undefined));
    const byPath = Object.fromEntries(recs.map((r) => [r.path, r]));
    expect(byPath['/drop']).toMatchObject({ closedBy: 'proxy', fault: { rule: 'drop', type: 'ws-close', injected: true } });
    expect(byPath['/count']).toMatchObject({ closedBy: 'proxy', closeCode: 4000, fault: { rule: 'count', type: 'ws-close', injected: true } });
  });

  it('ws-drop drops messages in its direction only', async () => {
    const up = await wsUpstream((ws) => {
      const t = setInterval(() => ws.send('tick'), 20);
      ws.on('close', () => clearInterval(t));
    });
    const { proxy } = await proxyWith('rules:\n  - fault: { type: ws-drop, fraction: 1, direction: out }', up.url);
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/');
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    ws.send('to-upstream');
    await waitFor(() => up.received.includes('to-upstream'));
    await new Promise((r) => setTimeout(r, 150));
    expect(got).toEqual([]);
  });

  it('ws-delay holds messages, keeping their order', async () => {
    const up = await wsUpstream((ws) => ws.on('message', (d: Buffer) => ws.send(d.toString())));
    const { proxy } = await proxyWith('rules:\n  - fault: { type: ws-delay, delay: 200ms, direction: in }', up.url);
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/');
    const got: string[] = [];
    const t0 = Date.now();
    const both = new Promise<number>((r) =>
      ws.on('message', (d: Buffer) => {
        got.push(d.toString());
        if (got.length === 2) r(Date.now() - t0);
      }),
    );
    ws.send('a');
    ws.send('b');
    expect(await both).toBeGreaterThanOrEqual(180);
    expect(got).toEqual(['a', 'b']);
  });

  it('ws-delay with jitter keeps the order of a direction, and the record lists each rule once however many messages it held', async () => {
    const up = await wsUpstream(() => undefined);
    const { proxy, wsRecords } = await proxyWith(
      'rules:\n  - name: d-in\n    fault: { type: ws-delay, delay: 60ms, jitter: 55ms, direction: in }\n  - name: d-out\n    fault: { type: ws-delay, delay: 20ms, direction: out }',
      up.url,
      true,
    );
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/jit');
    const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
    for (const m of sent) {
      ws.send(m);
      await new Promise((r) => setTimeout(r, 3));
    }
    await waitFor(() => up.received.length === sent.length, 4000);
    expect(up.received).toEqual(sent);
    ws.close(1000);
    const [rec] = await waitFor(() => (wsRecords().length === 1 ? wsRecords() : undefined));
    expect(rec?.faults.map((f) => f.rule)).toEqual(['d-in']);
    const rules = Object.fromEntries(proxy.engine.stats().map((r) => [r.name, r.injected]));
    // d-out held nothing (the upstream sent no message): it did not act, and is neither listed nor counted.
    expect(rules).toMatchObject({ 'd-in': 1, 'd-out': 0 });
  });

  it('ws-delay whose jitter draws some delays of 0 keeps bursts in order: a message whose time has come waits behind those still held', async () => {
    const up = await wsUpstream((ws) => {
      let n = 0;
      const burst = (): void => {
        for (let i = 0; i < 2000 && n < 4000; i++) ws.send(String(n++));
        if (n < 4000) setTimeout(burst, 5);
      };
      burst();
    });
    const { proxy } = await proxyWith('rules:\n  - name: d\n    fault: { type: ws-delay, delay: 1ms, jitter: 3ms, direction: out }', up.url);
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/burst');
    const got: number[] = [];
    ws.on('message', (d: Buffer) => got.push(Number(d.toString())));
    await waitFor(() => got.length === 4000, 8000);
    const firstOutOfOrder = got.findIndex((v, i) => v !== i);
    expect(firstOutOfOrder).toBe(-1);
  });

  it('ws-delay holds at most about a megabyte per direction before the sender has to wait (a fast sender behind a 2 s delay held gigabytes)', async () => {
    const MiB = Buffer.alloc(1024 * 1024, 0x61);
    let stop = false;
    const up = await wsUpstream((ws) => {
      const pump = (): void => {
        if (stop || ws.readyState !== WebSocket.OPEN) return;
        // Offer more only as the proxy takes it (what a well-behaved sender does).
        while (ws.bufferedAmount < 4 * MiB.length) ws.send(MiB);
        setTimeout(pump, 5);
      };
      pump();
    });
    const { proxy, wsRecords } = await proxyWith('rules:\n  - name: hold\n    fault: { type: ws-delay, delay: 2s, direction: out }', up.url, true);
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/flood');
    ws.on('message', () => undefined);
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    ws.terminate();
    const [rec] = await waitFor(() => (wsRecords().length === 1 ? wsRecords() : undefined), 8000);
    // What the proxy took from the upstream in 1.5 s (all of it held): the high-water mark and the sockets' buffers, not the link's speed (150 MB and more).
    expect(rec?.bytesOut).toBeLessThan(48 * MiB.length);
  });

  it('a ws-close or ws-freeze that never came to act (the client left first) is neither labelled nor counted', async () => {
    const up = await wsUpstream(() => undefined);
    const { proxy, wsRecords } = await proxyWith(
      'rules:\n  - name: late-close\n    match: { path: /close }\n    fault: { type: ws-close, after: 3s }\n  - name: late-freeze\n    match: { path: /freeze }\n    fault: { type: ws-freeze, after: 3s }\n  - name: soon-close\n    match: { path: /soon }\n    fault: { type: ws-close, after: 50ms, code: 4001 }',
      up.url,
      true,
    );
    const base = proxy.url.replace('http', 'ws');
    for (const p of ['/close', '/freeze']) {
      const ws = await wsConnect(base + p);
      ws.close(1000);
      await closed(ws);
    }
    const soon = await wsConnect(base + '/soon');
    expect(await closed(soon)).toMatchObject({ code: 4001 });
    const recs = await waitFor(() => (wsRecords().length === 3 ? wsRecords() : undefined));
    const byPath = Object.fromEntries(recs.map((r) => [r.path, r]));
    expect(byPath['/close']).toMatchObject({ fault: null, faults: [] });
    expect(byPath['/freeze']).toMatchObject({ fault: null, faults: [] });
    expect(byPath['/soon']).toMatchObject({ fault: { rule: 'soon-close', type: 'ws-close', injected: true } });
    const rules = Object.fromEntries(proxy.engine.stats().map((r) => [r.name, r.injected]));
    expect(rules).toMatchObject({ 'late-close': 0, 'late-freeze': 0, 'soon-close': 1 });
  });

  it('ws-freeze stops relaying but keeps the connection open', async () => {
    const up = await wsUpstream((ws) => ws.on('message', (d: Buffer) => ws.send(d.toString())));
    // The freeze comes 600 ms after the open: room for the first echo on a busy machine.
    const { proxy } = await proxyWith('rules:\n  - fault: { type: ws-freeze, after: 600ms }', up.url);
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/');
    const opened = Date.now();
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    ws.send('before');
    await waitFor(() => got.includes('before'));
    await new Promise((r) => setTimeout(r, Math.max(0, opened + 700 - Date.now())));
    ws.send('after');
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual(['before']);
    expect(up.received).toEqual(['before']);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });
});
