/**
 * One file analysed by several threads (split by client key) must give the report one engine
 * gives: every count, timeline bin, client, route, fault window and finding the same. Only the
 * sampled gap statistics of client types (medians, jitter) and their example lists may differ, and
 * the jitter findings that quote them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, type Report } from '../../src/analysis/index.js';
import { partitionOfLine } from '../../src/analysis/parallel.js';
import { PARTITIONED_LIMIT } from '../../src/analysis/report.js';
import { readRecordsTo } from '../../src/record/reader.js';
import type { AnyRecord } from '../../src/record/schema.js';
import { runAnalyze } from '../../src/cli/analyze.js';
import { PassThrough } from 'node:stream';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpFile(name: string, content: string | Buffer): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-parallel-'));
  dirs.push(d);
  const p = path.join(d, name);
  fs.writeFileSync(p, content);
  return p;
}

const T0 = Date.UTC(2026, 0, 1);

/**
 * A recording shaped like a test run: 300 clients, a 503 fault window with Retry-After in the
 * middle, clients that retry with and without backoff, POST retries, a NAT address, marks,
 * events, a few corrupt lines and CRLF endings. Deterministic (mulberry32).
 */
function recording(): string {
  let seed = 7;
  const rand = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const uas = ['okhttp/4.12.0', 'python-requests/2.32.3', 'Go-http-client/1.1', 'axios/1.7.2'];
  const lines: Array<{ end: number; line: string }> = [];
  let seq = 0;
  const http = (client: string, ip: string, ua: string, method: string, p: string, ts: number, status: number, injected: boolean): void => {
    const duration = 2 + rand() * 10;
    const fault = injected ? { rule: 'outage', type: 'http-error', injected: true } : null;
    const rec = {
      v: 1,
      type: 'http',
      id: `t-${++seq}`,
      ts,
      end: ts + duration,
      client,
      ip,
      conn: String(seq % 50),
      method,
      path: p,
      query: null,
      status,
      outcome: null,
      upstreamStatus: injected ? null : status,
      bytesIn: 0,
      bytesOut: 10,
      ttfb: duration,
      duration,
      fault,
      faults: fault === null ? [] : [fault],
      retryAfter: injected ? 2 : null,
      bodyHash: method === 'POST' ? `sha256:${seq}` : null,
      userAgent: ua,
      headers: {},
      error: null,
    };
    lines.push({ end: rec.end, line: JSON.stringify(rec) });
  };
  const faultFrom = T0 + 60_000;
  const faultTo = T0 + 90_000;
  for (let c = 0; c < 300; c++) {
    const ua = uas[c % uas.length] as string;
    const ip = `10.1.${c >> 8}.${c & 255}`;
    const client = `${ip} ${ua}`;
    const backoff = c % 3 === 0 ? 0 : 200 + 100 * (c % 5);
    let t = T0 + rand() * 5000;
    while (t < T0 + 150_000) {
      const method = c % 7 === 0 ? 'POST' : 'GET';
      const p = method === 'POST' ? '/v1/orders' : `/v1/items/${Math.floor(rand() * 50)}`;
      let attempt = 0;
      for (;;) {
        const failing = t >= faultFrom && t < faultTo && rand() < 0.7;
        http(client, ip, ua, method, p, t, failing ? 503 : 200, failing);
        if (!failing || attempt >= 4) break;
        attempt++;
        t += backoff * 2 ** attempt * (0.5 + rand()) + 20;
      }
      t += 800 + rand() * 1500;
    }
  }
  // NAT: one address, one key, several agents.
  for (let i = 0; i < 12; i++) http('203.0.113.9', '203.0.113.9', uas[i % uas.length] as string, 'GET', '/v1/feed', T0 + 10_000 + i * 700, 200, false);
  lines.sort((a, b) => a.end - b.end);
  const out = lines.map((l) => l.line);
  const header = JSON.stringify({ v: 1, type: 'header', aftershock: 'test', start: new Date(T0).toISOString(), startMs: T0, target: 'http://127.0.0.1:1', profile: { name: 'outage', hash: 'x' }, seed: 1, clientKey: 'auto', session: 's', redacted: [], instance: 'i1' });
  out.unshift(header);
  out.splice(200, 0, JSON.stringify({ v: 1, type: 'mark', ts: T0 + 59_000, label: 'fault on' }));
  out.splice(900, 0, '{"v":1,"type":"http","id":"broken"');
  out.splice(1500, 0, JSON.stringify({ v: 1, type: 'event', ts: T0 + 91_000, event: 'phase', detail: { phase: 'recovery' } }));
  out.splice(2100, 0, '[1,2,3]');
  // CRLF endings on a stretch of lines.
  return out.map((l, i) => (i > 3000 && i < 3100 ? `${l}\r` : l)).join('\n') + '\n';
}

/** The report without what a merged sample may change. */
function exact(r: Report): unknown {
  const copy = JSON.parse(JSON.stringify(r)) as Record<string, unknown>;
  for (const t of copy.clientTypes as Array<Record<string, unknown>>) {
    delete t.backoffDetail;
    delete t.jitterDetail;
    delete t.exampleClients;
    // Read from the merged sample (PARTITIONED_LIMIT): compared apart, away from the band edges.
    delete t.jitter;
  }
  // Jitter findings quote the sampled gaps of their trigger group.
  for (const f of copy.findings as Array<{ evidence?: Record<string, unknown> }>) {
    if (f.evidence?.trigger === undefined) continue;
    delete f.evidence.cvByIndex;
    delete f.evidence.gapsMs;
    delete f.evidence.examples;
  }
  delete copy.limits;
  delete (copy.dataQuality as Record<string, unknown>).partitions;
  delete (copy.dataQuality as Record<string, unknown>).workerThreads;
  return copy;
}

describe('partitionOfLine', () => {
  const line = (s: string): [Buffer, number, number] => {
    const b = Buffer.from(`xx\n${s}\nyy`);
    return [b, 3, 3 + Buffer.byteLength(s)];
  };

  it('puts every line of one client in one partition, wherever the field stands', () => {
    const a = partitionOfLine(...line('{"type":"http","client":"10.0.0.1 curl/8","ts":1}'), 4);
    expect(partitionOfLine(...line('{"client":"10.0.0.1 curl/8","type":"http","ts":2,"path":"/x"}'), 4)).toBe(a);
    expect(partitionOfLine(...line('{"type": "http", "client": "10.0.0.1 curl/8"}'), 4)).toBe(a);
  });

  it('sends lines without a client to the first partition', () => {
    expect(partitionOfLine(...line('{"type":"mark","ts":1,"label":"x"}'), 4)).toBe(0);
    expect(partitionOfLine(...line('{"type":"header","clientKey":"auto"}'), 4)).toBe(0);
    expect(partitionOfLine(...line('{"client":42}'), 4)).toBe(0);
    // The next line's client is not this line's.
    const b = Buffer.from('{"type":"mark"}\n{"client":"zz"}\n');
    expect(partitionOfLine(b, 0, 15, 4)).toBe(0);
  });

  it('spreads many clients over the partitions', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[partitionOfLine(...line(`{"client":"10.0.${i >> 8}.${i & 255} ua"}`), 3)]! += 1;
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });
});

describe('analyzeFiles in threads', () => {
  it('gives the one-thread report: every count, bin, client, route, window and finding', async () => {
    const file = tmpFile('rec.ndjson', recording());
    const one = await analyzeFiles([file], { threads: 1 });
    const two = await analyzeFiles([file], { threads: 2 });
    const three = await analyzeFiles([file], { threads: 3 });
    expect(one.dataQuality.partitions).toBe(1);
    expect(two.dataQuality.partitions).toBe(2);
    expect(two.dataQuality.workerThreads).toBe(2);
    expect(three.dataQuality.partitions).toBe(3);
    // The recording exercises what must merge: retries, faults, NAT, marks, events, bad lines.
    expect(one.totals.retries).toBeGreaterThan(100);
    expect(one.faultWindows.length).toBeGreaterThan(0);
    expect(one.dataQuality.natSuspected).toEqual([{ ip: '203.0.113.9', userAgents: 4 }]);
    expect(one.marks).toHaveLength(1);
    expect(one.events).toHaveLength(1);
    expect(one.dataQuality.badLines.lines.map((b) => b.line)).toEqual([901, 2101]);
    expect(one.findings.length).toBeGreaterThan(0);
    expect(exact(two)).toEqual(exact(one));
    expect(exact(three)).toEqual(exact(one));
    expect(two.limits).toContain(PARTITIONED_LIMIT);
    expect(one.limits).not.toContain(PARTITIONED_LIMIT);
    // (Jitter classes come from a merged sample: compared on a recording made for it, below.)
    // The sampled medians stay close.
    for (let i = 0; i < one.clientTypes.length; i++) {
      const a = one.clientTypes[i]?.backoffDetail.gapsMs[0];
      const b = two.clientTypes[i]?.backoffDetail.gapsMs[0];
      if (a !== undefined && b !== undefined) expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.max(20, a * 0.25));
    }
  });

  it('reads the same jitter classes in threads as in one, for client types clear of a band edge (more chains than a sample holds)', async () => {
    let seed = 3;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const lines: Array<{ end: number; line: string }> = [];
    let id = 0;
    const rec = (client: string, ua: string, ts: number, failed: boolean): void => {
      const r = { v: 1, type: 'http', id: `j${++id}`, ts, end: ts + 5, client, ip: client.split(' ')[0], conn: 'c', method: 'GET', path: '/v1/x', query: null, status: failed ? 503 : 200, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 2, ttfb: 5, duration: 5, fault: failed ? { rule: 'outage', type: 'http-error', injected: true } : null, faults: [], retryAfter: null, bodyHash: null, userAgent: ua, headers: {}, error: null };
      lines.push({ end: r.end, line: JSON.stringify(r) });
    };
    // 400 clients of each kind fail at the same moment; 'steady' retries after exactly 800 ms twice,
    // 'jittery' after a full-jitter wait (uniform up to 1.6 s) twice.
    for (let c = 0; c < 400; c++) {
      for (const [ua, wait] of [['steady/1', () => 800], ['jittery/1', () => 1 + rand() * 1600]] as const) {
        const client = `10.9.${c >> 8}.${c & 255} ${ua}`;
        let t = T0 + 10_000 + (c % 7);
        rec(client, ua, t, true);
        t += 5 + wait();
        rec(client, ua, t, true);
        t += 5 + wait();
        rec(client, ua, t, false);
      }
    }
    lines.sort((a, b) => a.end - b.end);
    const file = tmpFile('jitter.ndjson', lines.map((l) => l.line).join('\n') + '\n');
    const one = await analyzeFiles([file], { threads: 1 });
    const byUa = (r: Report): Record<string, string> => Object.fromEntries(r.clientTypes.map((t) => [t.userAgent, t.jitter]));
    expect(byUa(one)).toMatchObject({ steady: 'none', jittery: 'full' });
    for (const threads of [2, 3]) expect(byUa(await analyzeFiles([file], { threads }))).toEqual(byUa(one));
  });

  it('reports progress and each bad line once, from every thread together', async () => {
    const file = tmpFile('rec.ndjson', recording());
    const bad: number[] = [];
    const progress: Array<{ records: number; bytes: number; totalBytes: number | null }> = [];
    const r = await analyzeFiles([file], { threads: 2, onBadLine: (_f, b) => bad.push(b.line), onProgress: (p) => progress.push(p) });
    expect(r.dataQuality.partitions).toBe(2);
    expect(bad.sort((a, b) => a - b)).toEqual([901, 2101]);
    const last = progress[progress.length - 1];
    expect(last?.records).toBe(r.dataQuality.records);
    expect(last?.bytes).toBe(fs.statSync(file).size);
    expect(last?.totalBytes).toBe(fs.statSync(file).size);
  });

  it('uses one thread where a split could separate a client or cost more than it saves', async () => {
    const text = recording();
    const plain = tmpFile('rec.ndjson', text);
    const gz = tmpFile('rec.ndjson.gz', zlib.gzipSync(text));
    expect((await analyzeFiles([gz], { threads: 2 })).dataQuality.partitions).toBe(1);
    expect((await analyzeFiles([plain, plain], { threads: 2 })).dataQuality.partitions).toBe(1);
    expect((await analyzeFiles([plain], { threads: 2, clientKeyHeader: 'x-client' })).dataQuality.partitions).toBe(1);
    // A small file by default: starting threads would cost more than they save.
    expect((await analyzeFiles([plain])).dataQuality.partitions).toBe(1);
  });

  it('runs one engine in a worker with a capped heap when asked (a large file does so by default): the same report', async () => {
    const text = recording();
    for (const file of [tmpFile('rec.ndjson', text), tmpFile('rec.ndjson.gz', zlib.gzipSync(text))]) {
      const here = await analyzeFiles([file], { threads: 1 });
      const worker = await analyzeFiles([file], { threads: 1, workerHeapMb: 256 });
      expect(here.dataQuality.workerThreads).toBe(0);
      expect(worker.dataQuality.workerThreads).toBe(1);
      expect(worker.dataQuality.partitions).toBe(1);
      expect({ ...worker, dataQuality: { ...worker.dataQuality, workerThreads: 0 } }).toEqual(here);
    }
  });

  it('starts over in one thread when a worker runs out of its heap', async () => {
    const file = tmpFile('rec.ndjson', recording());
    const one = await analyzeFiles([file], { threads: 1 });
    const bad: number[] = [];
    const r = await analyzeFiles([file], { threads: 2, workerHeapMb: 1, onBadLine: (_f, b) => bad.push(b.line) });
    expect(r.dataQuality.partitions).toBe(1);
    expect(r.dataQuality.workerThreads).toBe(0);
    expect(r).toEqual(one);
    // Each bad line reaches the caller once: the threads' reports were held back.
    expect(bad).toEqual([901, 2101]);
    await expect(analyzeFiles([file], { threads: 2, workerHeapMb: 0 })).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' });
  });

  /** A small recording of clients A and B (which hash to different partitions of 2). */
  function twoClients(rows: Array<[client: 'A' | 'B', ts: number, end: number, status: number]>): string {
    const lines = rows
      .map(([client, ts, end, status], i) => ({
        end,
        line: JSON.stringify({ v: 1, type: 'http', id: `r${i}`, ts: T0 + ts, end: T0 + end, client, ip: client === 'A' ? '10.0.0.1' : '10.0.0.2', conn: '1', method: 'GET', path: '/x', query: null, status, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 0, ttfb: 1, duration: end - ts, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: 'curl/8', headers: {}, error: null }),
      }))
      .sort((a, b) => a.end - b.end)
      .map((l) => l.line);
    return tmpFile('ab.ndjson', lines.join('\n') + '\n');
  }

  it("moves every thread's clock with the whole recording, so chains close where one engine closes them", async () => {
    const [a, b] = ['A', 'B'].map((c) => partitionOfLine(Buffer.from(`{"client":"${c}"}`), 0, 14, 2));
    expect(a).not.toBe(b);
    // A fails, and its next attempt ends long after B's traffic has carried the clock past A's window.
    const slow: Array<['A' | 'B', number, number, number]> = [['A', 0, 100, 503], ['A', 1000, 200_000, 200]];
    for (let t = 1000; t <= 150_000; t += 1000) slow.push(['B', t, t + 10, 200]);
    // A first attempt that lasts 20 s, then two short ones, while B keeps the clock going.
    const long: Array<['A' | 'B', number, number, number]> = [['A', 0, 20_000, 503], ['A', 1000, 1100, 503], ['A', 2000, 2100, 200]];
    for (let t = 1000; t <= 19_000; t += 500) long.push(['B', t, t + 10, 200]);
    for (const rows of [slow, long]) {
      const file = twoClients(rows);
      const one = await analyzeFiles([file], { threads: 1 });
      const two = await analyzeFiles([file], { threads: 2 });
      expect(two.dataQuality.partitions).toBe(2);
      expect(two.totals).toEqual(one.totals);
      expect(two.dataQuality.lateRecords).toBe(one.dataQuality.lateRecords);
    }
  });

  it('holds the merged timeline to maxBins as one engine does', async () => {
    const rows: Array<['A' | 'B', number, number, number]> = [];
    for (let s = 0; s < 10; s++) rows.push(['A', s * 1000, s * 1000 + 5, 200]);
    for (let s = 100; s < 110; s++) rows.push(['B', s * 1000, s * 1000 + 5, 200]);
    const file = twoClients(rows);
    const one = await analyzeFiles([file], { threads: 1, maxBins: 10 });
    const two = await analyzeFiles([file], { threads: 2, maxBins: 10 });
    expect(one.dataQuality.binMs).toBe(2000);
    expect(two.dataQuality.binMs).toBe(one.dataQuality.binMs);
    expect(two.timeline).toEqual(one.timeline);
  });

  it('splits a recording with long runs of lines without a client (WebSocket messages) correctly', async () => {
    const lines = [JSON.stringify({ v: 1, type: 'ws', id: 'w1', ts: T0, end: T0 + 9000, client: 'c1', ip: '10.0.0.1', conn: '1', method: 'GET', path: '/ws', query: null, status: 101, outcome: null, headers: {} })];
    for (let i = 0; i < 20_000; i++) lines.push(JSON.stringify({ v: 1, type: 'ws-message', ts: T0 + i / 10, exchange: 'w1', dir: 'in', opcode: 1, bytes: 5 }));
    const file = tmpFile('ws.ndjson', lines.join('\n') + '\n');
    const one = await analyzeFiles([file], { threads: 1 });
    const two = await analyzeFiles([file], { threads: 2 });
    expect(two.dataQuality.partitions).toBe(2);
    expect(two.dataQuality.recordsByType).toEqual(one.dataQuality.recordsByType);
    expect(two.totals).toEqual(one.totals);
  });

  it('refuses a bad thread count and names an unreadable file as one thread would', async () => {
    await expect(analyzeFiles(['x.ndjson'], { threads: 0 })).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' });
    await expect(analyzeFiles(['x.ndjson'], { threads: 1.5 })).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' });
    await expect(analyzeFiles([path.join(os.tmpdir(), 'aftershock-no-such-file.ndjson')], { threads: 2 })).rejects.toMatchObject({ code: 'ERR_RECORDING_READ' });
  });

  it('analyze --threads 2 writes the merged report and says so', async () => {
    const file = tmpFile('rec.ndjson', recording());
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    await runAnalyze([file], { failOn: [], threads: '2', color: false, format: 'json' }, { stdout, stderr, env: {} });
    const report = JSON.parse(out) as Report;
    expect(report.dataQuality.partitions).toBe(2);
    await expect(runAnalyze([file], { failOn: [], threads: 'many', color: false, format: 'json' }, { stdout, stderr, env: {} })).rejects.toMatchObject({ code: 'ERR_BAD_OPTION' });
  });
});

describe('readRecordsTo', () => {
  it('reads a plain file only up to maxBytes, so threads started together see the same file', async () => {
    const a = '{"v":1,"type":"mark","ts":1,"label":"a"}';
    const b = '{"v":1,"type":"mark","ts":2,"label":"b"}';
    const file = tmpFile('grow.ndjson', `${a}\n${b}\n${a}\n`);
    const got: AnyRecord[] = [];
    const bad: string[] = [];
    await readRecordsTo(file, { push: (r) => got.push(r) }, { maxBytes: a.length + 1 + 10, onBadLine: (x) => bad.push(x.reason) });
    expect(got).toHaveLength(1);
    expect(bad).toEqual(['truncated last line (no newline at end of file)']);
  });

  it("lets the consumer's own errors through as they are (not as an unreadable recording)", async () => {
    const file = tmpFile('m.ndjson', '{"v":1,"type":"mark","ts":1,"label":"a"}\n');
    const boom = new TypeError('consumer bug');
    await expect(
      readRecordsTo(file, {
        push: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });

  it('hands over each record as parsed, skips filtered lines and keeps their line numbers', async () => {
    const lines = ['{"v":1,"type":"mark","ts":1,"label":"a"}', '{"v":1,"type":"mark","ts":2,"label":"skip"}', '{oops', '{"v":1,"type":"mark","ts":3,"label":"b"}', '{"v":1,"type":"mark","ts":4,"label":"skip"'];
    const file = tmpFile('m.ndjson', lines.join('\n'));
    const got: AnyRecord[] = [];
    const bad: Array<[number, string]> = [];
    await readRecordsTo(
      file,
      { push: (r) => got.push(r) },
      {
        lineFilter: (buf, s, e) => !buf.toString('utf8', s, e).includes('skip'),
        onBadLine: (b) => bad.push([b.line, b.reason]),
      },
    );
    expect(got.map((r) => (r as { ts: number }).ts)).toEqual([1, 3]);
    // The filtered-out truncated last line is not reported: another reader owns it.
    expect(bad).toEqual([[3, 'invalid JSON']]);
  });
});
