/**
 * Exchanges the proxy itself cut, recorded for what cut them: a response fault still streaming
 * when the drain ran out was cut by the shutdown (the upstream never reset), and a request
 * pipelined behind an injected fault that closed its connection was cut by that fault (its
 * client never left). Real upstreams on 127.0.0.1:0, raw `net` sockets for the pipelining.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onCleanup, readRecords, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { HttpRecord } from '../../src/record/schema.js';

describe('response faults in flight at shutdown', () => {
  it('a throttled, a slowed and a corrupted-and-slowed body cut by the end of the drain are recorded shutdown, as a slow upstream body is', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      if (req.url === '/plain') {
        // The upstream itself is slow: a chunk every 20 ms of a 200 KB body.
        res.writeHead(200, { 'content-length': 200_000 });
        const t = setInterval(() => res.write(Buffer.alloc(1000, 0x61)), 20);
        res.on('close', () => clearInterval(t));
        return;
      }
      const body = Buffer.alloc(1_000_000, 0x62);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const file = path.join(tempDir(), 'shut.ndjson');
    const proxy = await startTestProxy({
      target: up.url,
      record: file,
      drainTimeout: '200ms',
      profile: parseProfile(
        [
          'rules:',
          '  - { name: thr, match: { path: /thr }, fault: { type: throttle, bytesPerSecond: 50000 } }',
          '  - { name: sb, match: { path: /slow }, fault: { type: slow-body, chunkSize: 100, interval: 50ms } }',
          '  - { name: corr, match: { path: /corrupt }, fault: { type: corrupt, count: 3 } }',
          '  - { name: sb2, match: { path: /corrupt }, fault: { type: slow-body, chunkSize: 100, interval: 50ms } }',
        ].join('\n'),
        null,
      ),
    });
    const paths = ['/plain', '/thr', '/slow', '/corrupt'];
    const got = new Map<string, number>();
    for (const p of paths) {
      const req = http.get(`${proxy.url}${p}`, { agent: false }, (res) => res.on('data', (c: Buffer) => got.set(p, (got.get(p) ?? 0) + c.length)));
      req.on('error', () => undefined);
      onCleanup(() => void req.destroy());
    }
    await waitFor(() => paths.every((p) => (got.get(p) ?? 0) > 0));
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const by = Object.fromEntries(recs.map((r) => [r.path, r]));
    expect(recs).toHaveLength(4);
    for (const p of paths) expect([p, by[p]?.status, by[p]?.outcome, by[p]?.error]).toEqual([p, 200, 'shutdown', null]);
    expect(by['/thr']?.fault).toMatchObject({ rule: 'thr', type: 'throttle', injected: true });
    expect(by['/slow']?.fault).toMatchObject({ rule: 'sb', type: 'slow-body', injected: true });
  });
});

/** Writes `data` on a raw socket and waits until the proxy ends the connection (RST or FIN). */
function pipeline(port: number, data: string): Promise<{ data: string; error: string | null }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => void s.destroy());
    let got = '';
    let error: string | null = null;
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ data: got, error }));
    s.write(data);
  });
}

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: t\r\n\r\n`;

describe('requests pipelined behind an exchange that cut the connection', () => {
  async function setup() {
    const hits: string[] = [];
    const up = await startUpstream((req, res) => {
      hits.push(req.url ?? '');
      req.resume();
      if (req.url === '/broken') {
        // A real upstream failure mid-body: a head, part of the body, then an RST.
        res.writeHead(200, { 'content-length': 10_000 });
        res.write(Buffer.alloc(100, 0x61));
        setTimeout(() => req.socket.resetAndDestroy(), 50);
        return;
      }
      const body = req.url === '/trunc' ? Buffer.alloc(5000, 0x61) : Buffer.from('ok');
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const file = path.join(tempDir(), 'pipe.ndjson');
    const proxy = await startTestProxy({
      target: up.url,
      record: file,
      profile: parseProfile(
        [
          'rules:',
          '  - { name: rst, match: { path: /rst }, fault: { type: reset } }',
          '  - { name: cls, match: { path: /cls }, fault: { type: close } }',
          '  - { name: hangc, match: { path: /hangc }, fault: { type: hang, duration: 150ms, then: close } }',
          '  - { name: hangr, match: { path: /hangr }, fault: { type: hang, duration: 150ms, then: reset } }',
          '  - { name: lost, match: { path: /lost }, fault: { type: lost-response } }',
          '  - { name: trunc, match: { path: /trunc }, fault: { type: truncate, after: 100 } }',
          '  - { name: err, match: { path: /err }, fault: { type: http-error, status: 503 } }',
        ].join('\n'),
        null,
      ),
    });
    const records = (): HttpRecord[] => readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    return { proxy, port: Number(new URL(proxy.url).port), hits, records };
  }

  it.each([
    ['/rst', 'reset', 'reset'],
    ['/cls', 'close', 'closed'],
    ['/hangc', 'hang', 'closed'],
    ['/hangr', 'hang', 'reset'],
    ['/lost', 'lost-response', 'reset'],
    ['/trunc', 'truncate', 'reset'],
  ])('behind an injected %s (%s): recorded %s with its fault, not client-abort; the rule counts once', async (first, type, outcome) => {
    const { proxy, port, records, hits } = await setup();
    await pipeline(port, GET(first) + GET('/next?i=1') + GET('/next?i=2'));
    await waitFor(() => proxy.stats().inFlight === 0 && records().length === 3);
    const rule = proxy.engine.stats().find((r) => r.name === first.slice(1));
    await proxy.close();
    const recs = records();
    const ahead = recs.find((r) => r.path === first) as HttpRecord;
    expect(ahead).toMatchObject({ outcome, fault: { type, injected: true } });
    const behind = recs.filter((r) => r.path === '/next');
    expect(behind).toHaveLength(2);
    // Held behind the one that cut the connection, they never reached the upstream.
    expect(hits.filter((h) => h.startsWith('/next'))).toEqual([]);
    for (const r of behind) {
      expect(r).toMatchObject({ status: null, outcome, error: 'connection-cut-ahead', fault: ahead.fault, upstreamStatus: null });
      expect(r.faults).toEqual([ahead.fault]);
    }
    expect(rule?.injected).toBe(1); // the fault acted once, on the exchange it was decided for
  });

  it('behind an injected answer to Expect: 100-continue (which closes the connection): recorded closed with its fault', async () => {
    const { proxy, port, records, hits } = await setup();
    const res = await pipeline(port, 'POST /err HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n0123456789' + GET('/next'));
    expect(res.data).toMatch(/^HTTP\/1\.1 503 /);
    expect(res.data.match(/HTTP\/1\.1 \d+/g)).toHaveLength(1);
    await waitFor(() => proxy.stats().inFlight === 0 && records().length === 2);
    await proxy.close();
    const recs = records();
    const ahead = recs.find((r) => r.path === '/err') as HttpRecord;
    expect(ahead).toMatchObject({ status: 503, outcome: null, fault: { rule: 'err', type: 'http-error' } });
    expect(recs.find((r) => r.path === '/next')).toMatchObject({ status: null, outcome: 'closed', error: 'connection-cut-ahead', fault: ahead.fault });
    expect(hits).toEqual([]);
  });

  it('behind an upstream that reset mid-body (not injected): recorded reset with no fault, not client-abort', async () => {
    const { proxy, port, records, hits } = await setup();
    const res = await pipeline(port, GET('/broken') + GET('/next'));
    expect(res.error).toBe('ECONNRESET');
    await waitFor(() => proxy.stats().inFlight === 0 && records().length === 2);
    await proxy.close();
    const recs = records();
    expect(recs.find((r) => r.path === '/broken')).toMatchObject({ outcome: 'reset', error: 'upstream-reset', fault: null });
    expect(recs.find((r) => r.path === '/next')).toMatchObject({ status: null, outcome: 'reset', error: 'connection-cut-ahead', fault: null, faults: [], upstreamStatus: null });
    expect(hits).toEqual(['/broken']);
  });

  it('a client that leaves with requests pipelined behind a held one is still client-abort for all of them', async () => {
    const { proxy, port, records } = await setup();
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.write('GET /hangc HTTP/1.1\r\nHost: t\r\n\r\n' + GET('/next'));
    await waitFor(() => proxy.stats().inFlight === 2);
    s.resetAndDestroy();
    await waitFor(() => proxy.stats().inFlight === 0 && records().length === 2);
    await proxy.close();
    for (const r of records()) expect([r.path, r.outcome, r.error]).toEqual([r.path, 'client-abort', null]);
  });
});

describe('a pipelining flood', () => {
  it('one connection is read no further while a few dozen pipelined requests are held (bounded by what one read holds); the rest are read as those finish, every one answered and recorded once', async () => {
    let release: (() => void) | null = null;
    const gate = new Promise<void>((r) => (release = r));
    const up = await startUpstream((req, res) => {
      // The first request waits until the test lets it go: everything behind it is held.
      if (req.url === '/p?i=0') void gate.then(() => res.end('ok'));
      else res.end('ok');
    });
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const port = Number(new URL(proxy.url).port);
    const n = 10_000; // 370 KB: several reads of the socket
    const sock = net.connect(port, '127.0.0.1');
    onCleanup(() => {
      sock.destroy();
    });
    let got = '';
    sock.on('data', (c: Buffer) => (got += c.toString('latin1')));
    sock.write(Array.from({ length: n }, (_, i) => `GET /p?i=${i} HTTP/1.1\r\nHost: t\r\n\r\n`).join(''));
    await new Promise((r) => setTimeout(r, 300));
    // Held behind the first: the proxy parsed what it had read (one read of 64 KB is ~1,800
    // requests) and read no further.
    const held = proxy.stats().inFlight;
    expect(held).toBeLessThanOrEqual(2500);
    (release as unknown as () => void)();
    await waitFor(() => (got.match(/HTTP\/1\.1 200/g) ?? []).length === n, 30_000);
    sock.end();
    await waitFor(() => readRecords(file).filter((r) => r.type === 'http').length === n, 5000);
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(new Set(recs.map((r) => r.query)).size).toBe(n);
  });
});
