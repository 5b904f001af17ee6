/**
 * The engine's promises: live and offline give the same report for the same records; report() is
 * read-only; memory stays at the caps; grouping follows spec §3 on small hand-made cases.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer, evaluateGates, formatReport, parseGate, type Report } from '../../src/analysis/index.js';
import { Recorder } from '../../src/record/recorder.js';
import type { AnyRecord, HttpRecord, WsRecord } from '../../src/record/schema.js';
import { T0, header } from '../fixtures/make-fixtures.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');
const tmp: string[] = [];
afterEach(() => {
  for (const p of tmp.splice(0)) fs.rmSync(p, { recursive: true, force: true });
});

function readFixture(name: string): AnyRecord[] {
  return fs
    .readFileSync(path.join(DIR, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AnyRecord);
}

let n = 0;
function http(p: Partial<HttpRecord> & { ts: number }): HttpRecord {
  const dur = p.end === undefined ? 10 : p.end - p.ts;
  return {
    v: 1,
    type: 'http',
    id: p.id ?? `r${++n}`,
    end: p.ts + dur,
    client: 'c1',
    ip: '10.0.0.1',
    conn: 'k1',
    method: 'GET',
    path: '/x',
    query: null,
    status: 200,
    outcome: null,
    upstreamStatus: null,
    bytesIn: 0,
    bytesOut: 10,
    ttfb: 5,
    duration: dur,
    fault: null,
    faults: [],
    retryAfter: null,
    bodyHash: null,
    userAgent: 'okhttp/4.9.0',
    headers: {},
    error: null,
    ...p,
  };
}

const fail = { status: 503 } as const;
const byEnd = (rs: AnyRecord[]): AnyRecord[] => [...rs].sort((a, b) => ((a as HttpRecord).end ?? 0) - ((b as HttpRecord).end ?? 0));

function run(records: AnyRecord[], opts = {}): Report {
  const a = createAnalyzer(opts);
  for (const r of records) a.ingest(r);
  return a.report();
}

describe('live == offline', () => {
  it.each(['immediate-storm.ndjson', 'good-client.ndjson', 'retry-after.ndjson', 'ws-storm.ndjson', 'explicit-ids.ndjson', 'hedged.ndjson'])(
    '%s: ingesting in write order gives the report analyzeFiles gives',
    async (name) => {
      const live = run(readFixture(name));
      const offline = await analyzeFiles([path.join(DIR, name)]);
      expect(live).toEqual(offline);
    },
  );

  it('through the real recorder: its listener (live) and its file (offline) agree', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-analysis-'));
    tmp.push(dir);
    const file = path.join(dir, 'rec.ndjson');
    const h = header('live-offline');
    const rec = Recorder.open({ path: file, header: { aftershock: h.aftershock, start: h.start, startMs: h.startMs, target: h.target, profile: h.profile, seed: h.seed, clientKey: h.clientKey, session: h.session, redacted: h.redacted } });
    const live = createAnalyzer();
    live.ingest(rec.headerRecord);
    rec.addListener((r) => live.ingest(r));
    for (const r of readFixture('constant-no-jitter.ndjson')) if (r.type !== 'header') rec.write(r);
    rec.write({ v: 1, type: 'mark', ts: T0 + 12_000, label: 'outage starts' });
    await rec.close();
    const offline = await analyzeFiles([file]);
    expect(live.report()).toEqual(offline);
    expect(offline.marks).toEqual([{ t: T0 + 12_000, label: 'outage starts' }]);
  });

  it('report() is read-only: asking mid-stream does not change the final report', () => {
    const records = readFixture('unsafe-retry.ndjson');
    const a = createAnalyzer();
    const b = createAnalyzer();
    records.forEach((r, i) => {
      a.ingest(r);
      b.ingest(r);
      if (i % 37 === 0) b.report();
    });
    const first = b.report();
    expect(b.report()).toEqual(first);
    expect(first).toEqual(a.report());
  });

  it('records out of start order within the reorder lag group the same as in start order', () => {
    const records = readFixture('constant-no-jitter.ndjson');
    const byStart = [records[0] as AnyRecord, ...records.slice(1).sort((x, y) => (x as HttpRecord).ts - (y as HttpRecord).ts)];
    const a = run(records);
    const b = run(byStart);
    expect(b.totals).toEqual(a.totals);
    expect(b.clientTypes.map((t) => [t.backoff, t.jitter])).toEqual(a.clientTypes.map((t) => [t.backoff, t.jitter]));
  });

  it('reset() forgets the traffic but keeps the recording header', () => {
    const a = createAnalyzer();
    for (const r of readFixture('polling.ndjson')) a.ingest(r);
    expect(a.report().totals.attempts).toBe(75);
    a.reset();
    const r = a.report();
    expect(r.totals.attempts).toBe(0);
    expect(r.session).toBe('polling');
    expect(r.verdict).toBe('ok');
  });
});

describe('bounded memory', () => {
  it('200k distinct clients with maxClients 10k keep the client table at the cap', () => {
    const a = createAnalyzer({ maxClients: 10_000 });
    a.ingest(header('many-clients'));
    for (let i = 0; i < 200_000; i++) {
      const ts = T0 + i;
      const failed = i % 10 === 0;
      a.ingest(http({ id: `m${i}`, ts, end: ts + 2, client: `client-${i}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, path: `/v1/items/${i % 1000}`, ...(failed ? fail : {}) }));
      if (i % 50_000 === 0) {
        const s = a.stats();
        expect(s.clients).toBeLessThanOrEqual(10_000);
        expect(s.ipsTracked).toBeLessThanOrEqual(10_000);
      }
    }
    const s = a.stats();
    expect(s.clients).toBeLessThanOrEqual(10_000);
    expect(s.hallOfShame).toBeLessThanOrEqual(200);
    // threads: 5 s of successes plus 120 s of failures at 1000 records/s, never all 200k
    expect(s.threads).toBeLessThan(30_000);
    expect(s.bins).toBeLessThanOrEqual(201);
    const r = a.report();
    expect(r.totals.attempts).toBe(200_000);
    expect(r.totals.clients).toBeGreaterThan(195_000);
    expect(r.clients.length).toBeLessThanOrEqual(200);
    expect(r.clientsOmitted).toBeGreaterThan(0);
    expect(r.dataQuality.clientsEvicted).toBeGreaterThan(150_000);
    expect(r.findings.map((f) => f.code)).toContain('clients-truncated');
  });

  it('a thread table past maxThreads ends the oldest logical requests early and says so', () => {
    const a = createAnalyzer({ maxClients: 100, maxThreads: 50 });
    for (let i = 0; i < 1000; i++) a.ingest(http({ ts: T0 + i, client: `c${i % 10}`, path: `/p/${i}`, ...fail }));
    expect(a.stats().threads).toBeLessThanOrEqual(50);
    const r = a.report();
    expect(r.dataQuality.threadsEvicted).toBeGreaterThan(0);
    expect(r.totals.attempts).toBe(1000);
  });

  it('a long live run coarsens its timeline instead of growing it', () => {
    const a = createAnalyzer({ maxBins: 100 });
    for (let i = 0; i < 1000; i++) a.ingest(http({ ts: T0 + i * 1000 }));
    expect(a.stats().bins).toBeLessThanOrEqual(100);
    expect(a.report().dataQuality.binMs).toBeGreaterThan(1000);
  });
});

describe('grouping (spec §3)', () => {
  it('a retry follows a failure within the window; after a success the same request is new', () => {
    const r = run([
      http({ ts: T0, ...fail }),
      http({ ts: T0 + 1000 }),
      http({ ts: T0 + 5000 }),
      http({ ts: T0 + 9000, ...fail }),
      http({ ts: T0 + 9000 + 200_000 }), // beyond W = 120 s: a new logical request
    ]);
    expect(r.totals).toMatchObject({ attempts: 5, logicalRequests: 4, retries: 1 });
  });

  it('the window grows with the largest Retry-After (1.5 x R + 5 s)', () => {
    const r = run([http({ ts: T0, status: 429, retryAfter: 100 }), http({ ts: T0 + 150_000 })]);
    expect(r.options.windowMs).toBe(155_000);
    expect(r.totals.retries).toBe(1);
    expect(r.clients[0]?.retryAfter).toBe('ignored');
  });

  it('gaps are measured end to start', () => {
    // 5 s timeouts, each retried 1 s after it ended: the gap is 1 s, not 6 s
    const recs: HttpRecord[] = [];
    for (let i = 0; i < 8; i++) {
      const t = T0 + i * 20_000;
      recs.push(http({ ts: t, end: t + 5000, status: 504, outcome: 'timeout', path: `/r/${i}` }));
      recs.push(http({ ts: t + 6000, end: t + 11_000, status: 504, outcome: 'timeout', path: `/r/${i}` }));
      recs.push(http({ ts: t + 12_000, path: `/r/${i}` }));
    }
    const r = run(recs);
    expect(r.clients[0]?.backoff).toBe('constant');
    expect(r.clientTypes[0]?.backoffDetail.gapsMs).toEqual([1000, 1000]);
  });

  it('an overlapping attempt is a hedge, not a retry', () => {
    const r = run(byEnd([http({ ts: T0, end: T0 + 500, status: null, outcome: 'client-abort' }), http({ ts: T0 + 100, end: T0 + 150 })]));
    expect(r.totals).toMatchObject({ attempts: 2, logicalRequests: 1, retries: 0, hedges: 1 });
  });

  it('one gap per chain: 10+ clients in step are a herd only when the retries are load and their own wait, not a Retry-After they honoured or a next poll', () => {
    // 20 clients polling every 2 s; a POST each during the fault, 503 with Retry-After: 5, retried exactly 5 s later.
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 20; c++) {
      for (let i = 0; i < 30; i++) rs.push(http({ ts: T0 + i * 2000 + c * 10, client: `c${c}`, query: `i=${i}` }));
      const t = T0 + 20_000 + c * 20;
      rs.push(http({ ts: t, client: `c${c}`, method: 'POST', path: '/pay', bodyHash: 'sha256:x:1', retryAfter: 5, status: 503, fault: { rule: 'pay-503', type: 'http-error', injected: true } }));
      rs.push(http({ ts: t + 5012, client: `c${c}`, method: 'POST', path: '/pay', bodyHash: 'sha256:x:1' }));
    }
    const honoured = run(byEnd(rs));
    expect(honoured.findings.filter((f) => f.code === 'no-jitter')).toEqual([]);
    expect(honoured.verdict).toBe('ok');
    // Pollers: one poll each failed in a 4 s outage, the next poll 5 s later is chained to it.
    const polls: HttpRecord[] = [];
    for (let c = 0; c < 20; c++) {
      for (let i = 0; i < 12; i++) {
        const ts = T0 + i * 5000 + c * 3;
        const down = ts - T0 >= 30_000 && ts - T0 < 34_000;
        polls.push(http({ ts, client: `p${c}`, path: '/feed', ...(down ? { status: 503, fault: { rule: 'outage', type: 'http-error', injected: true } } : {}) }));
      }
    }
    expect(run(byEnd(polls)).verdict).toBe('ok');
  });

  it('10+ clients that come back after the same single wait are a no-jitter herd, even with one gap per chain to go by', () => {
    const fleet = (n: number): Report =>
      run(byEnd(Array.from({ length: n }, (_, c) => [http({ ts: T0 + 20_000 + c, client: `c${c}`, ...fail }), http({ ts: T0 + 21_010 + c, client: `c${c}` })]).flat()));
    const wide = fleet(20);
    expect(wide.findings.find((f) => f.code === 'no-jitter')).toMatchObject({ severity: 'critical' });
    expect(wide.verdict).toBe('retry-storm');
    // A few clients with one gap each: too little to call (no schedule, no herd).
    expect(fleet(4).findings.filter((f) => f.code === 'no-jitter')).toEqual([]);
  });

  it('links whose token the recorder hid ([redacted:<hash>] segments) stay distinct requests, under one route', () => {
    // 3 clients each open 8 different download links once, 100 ms apart, all refused: no retries.
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 8; i++) rs.push(http({ ts: T0 + i * 100 + c, client: `c${c}`, path: `/dl/[redacted:${(c * 8 + i).toString(16).padStart(16, '0')}]`, ...fail }));
    }
    const r = run(byEnd(rs));
    expect(r.totals).toMatchObject({ attempts: 24, logicalRequests: 24, retries: 0 });
    expect(r.verdict).toBe('ok');
    expect(r.routes.map((x) => x.route)).toEqual(['GET /dl/:id']);
  });

  it('no jitter across 10 clients when one client\'s first failure had another trigger but the same waits', () => {
    // 10 clients, the same 100/200/400 ms schedule, no jitter; client 9's first attempt was closed by
    // another rule instead of answered 503 by the usual one, so its chain is aligned on another trigger.
    const rs: HttpRecord[] = [];
    const storm = { status: 503, fault: { rule: 'storm', type: 'http-error', injected: true } } as const;
    const close = { status: null, outcome: 'closed', fault: { rule: 'drop', type: 'close', injected: true } } as const;
    for (let c = 0; c < 10; c++) {
      for (let i = 0; i < 2; i++) {
        const t = T0 + i * 10_000 + c * 7;
        const opts = { client: `c${c}`, path: `/r/${i}`, userAgent: 'steady/1.0' };
        rs.push(http({ ts: t, ...opts, ...(c === 9 ? close : storm) }));
        rs.push(http({ ts: t + 110, ...opts, ...storm }));
        rs.push(http({ ts: t + 320, ...opts, ...storm }));
        rs.push(http({ ts: t + 730, ...opts }));
      }
    }
    const r = run(byEnd(rs));
    expect(r.clientTypes[0]?.jitter).toBe('none');
    expect(r.clientTypes[0]?.jitterDetail).toMatchObject({ clients: 10, chains: 18 });
    expect(r.findings.find((f) => f.code === 'no-jitter')).toMatchObject({ severity: 'critical' });
    expect(r.verdictReasons.join(' ')).toContain('no jitter across 10+ clients');
  });

  it('a wait of Retry-After plus a fixed offset stays in the client\'s own backoff (it may be its own schedule); only exact honouring leaves it', () => {
    const chains = (gap: number, client: string): HttpRecord[] => {
      const rs: HttpRecord[] = [];
      for (let i = 0; i < 3; i++) {
        const t = T0 + i * 20_000;
        rs.push(http({ ts: t, client, query: `i=${i}`, status: 429, retryAfter: 1 }));
        rs.push(http({ ts: t + 10 + gap, client, query: `i=${i}`, status: 429, retryAfter: 1 }));
        rs.push(http({ ts: t + 20 + 2 * gap, client, query: `i=${i}` }));
      }
      return rs;
    };
    // Every 1.5 s under Retry-After: 1 (within the jitter allowance): the client's own constant schedule, not jitter.
    const own = run(byEnd(chains(1500, 'own')));
    expect(own.clients[0]?.backoff).toBe('constant');
    // Exactly the 1 s asked for: the server's schedule.
    const exact = run(byEnd(chains(1000, 'exact')));
    expect(exact.clients[0]).toMatchObject({ backoff: 'insufficient-data', retryAfter: 'compliant' });
  });

  it('one chain of a doubling backoff reports its base and factor (spec 4.4), for the client and its type', () => {
    const rs: HttpRecord[] = [];
    let t = T0;
    for (const gap of [0, 100, 200, 400, 800]) {
      t += gap;
      rs.push(http({ ts: t, end: t + 5, ...(gap === 800 ? {} : fail) }));
      t += 5;
    }
    const r = run(byEnd(rs));
    expect(r.clients[0]?.backoffDetail).toMatchObject({ class: 'exponential' });
    expect(r.clients[0]?.backoffDetail.factor).toBeCloseTo(2, 1);
    expect(r.clients[0]?.backoffDetail.baseMs).toBeCloseTo(100, -1);
    expect(r.clientTypes[0]?.backoffDetail.factor).toBeCloseTo(2, 1);
  });

  it('warns of NAT when many agents share an address, however many (keys made from the address), and not for clients with keys of their own', () => {
    const behind = (n: number, key: (i: number) => string): Report =>
      run(byEnd(Array.from({ length: n }, (_, i) => http({ ts: T0 + i * 10, ip: '198.51.100.7', userAgent: `app/${i}`, client: key(i), path: `/p${i}` }))));
    expect(behind(20, (i) => `198.51.100.7 app/${i}`).dataQuality.natSuspected).toEqual([{ ip: '198.51.100.7', userAgents: 8 }]);
    expect(behind(4, (i) => `198.51.100.7 app/${i}`).dataQuality.natSuspected).toHaveLength(1);
    expect(behind(20, () => '198.51.100.7').dataQuality.natSuspected).toHaveLength(1);
    // Keyed by a header of their own (x-client-id values): told apart already.
    expect(behind(20, (i) => `device-${i}`).dataQuality.natSuspected).toEqual([]);
    // Two agents under a key that is the bare address: two programs merged into one client.
    expect(behind(2, () => '198.51.100.7').dataQuality.natSuspected).toEqual([{ ip: '198.51.100.7', userAgents: 2 }]);
    expect(behind(2, () => '198.51.100.7').findings.map((f) => f.code)).toContain('nat-suspected');
    // Two agents that the key tells apart (address + agent): one machine's browser and script, no warning.
    expect(behind(2, (i) => `198.51.100.7 app/${i}`).dataQuality.natSuspected).toEqual([]);
  });

  it('a retry through a second proxy whose clock is a little behind stays a retry: it started after the answer began (ttfb), not with the attempt', () => {
    // 20 ms attempts answered at 5 ms; the retry 1 ms after the end, stamped 12 ms early by the other proxy's clock.
    const rs = Array.from({ length: 20 }, (_, c) => [
      http({ ts: T0 + c * 1000, end: T0 + c * 1000 + 20, ttfb: 5, client: `c${c}`, ...fail }),
      http({ ts: T0 + c * 1000 + 21 - 12, end: T0 + c * 1000 + 21 - 12 + 20, ttfb: 5, client: `c${c}` }),
    ]).flat();
    const r = run(byEnd(rs));
    expect(r.totals).toMatchObject({ retries: 20, hedges: 0 });
  });

  it('copies sent together are hedges even when each lasts less than the 25 ms tolerance; an immediate retry after the answer stays a retry', () => {
    const together = run(byEnd(Array.from({ length: 5 }, (_, i) => http({ ts: T0 + i * 0.05, end: T0 + 10, ...fail }))));
    expect(together.totals).toMatchObject({ attempts: 5, logicalRequests: 1, retries: 0, hedges: 4 });
    expect(together.findings.filter((f) => f.code === 'immediate-retries')).toEqual([]);
    // Sent as each answer arrived (the record's end a few ms after the next start, within the tolerance): retries.
    const after = run(byEnd(Array.from({ length: 5 }, (_, i) => http({ ts: T0 + i * 10, end: T0 + i * 10 + 12, ...fail }))));
    expect(after.totals).toMatchObject({ attempts: 5, retries: 4, hedges: 0 });
  });

  it('cache-busting query keys do not split a logical request; other keys do', () => {
    const r = run([http({ ts: T0, query: 'a=1&_=1', ...fail }), http({ ts: T0 + 500, query: '_=2&a=1' }), http({ ts: T0 + 600, query: 'a=2', ...fail }), http({ ts: T0 + 900, query: 'a=3' })]);
    expect(r.totals).toMatchObject({ logicalRequests: 3, retries: 1 });
  });

  it('explicit ids group with high confidence; attempt hints mark retries even after a success', () => {
    const r = run([
      http({ ts: T0, method: 'POST', headers: { 'amz-sdk-invocation-id': 'inv-1', 'amz-sdk-request': 'attempt=1; max=3' }, bodyHash: 'sha256:a:1', ...fail }),
      http({ ts: T0 + 100, method: 'POST', headers: { 'amz-sdk-invocation-id': 'inv-1', 'amz-sdk-request': 'attempt=2; max=3' }, bodyHash: 'sha256:a:1' }),
      http({ ts: T0 + 1000, headers: { 'x-envoy-attempt-count': '1' }, path: '/e' }),
      http({ ts: T0 + 1100, headers: { 'x-envoy-attempt-count': '2' }, path: '/e' }),
    ]);
    expect(r.totals).toMatchObject({ logicalRequests: 2, retries: 2 });
    expect(r.confidence.grouping).toMatchObject({ high: 2, highRetries: 2 });
  });

  it('the same Idempotency-Key with another body is a finding and a new logical request', () => {
    const r = run([
      http({ ts: T0, method: 'POST', headers: { 'idempotency-key': 'k1' }, bodyHash: 'sha256:a:1', ...fail }),
      http({ ts: T0 + 300, method: 'POST', headers: { 'idempotency-key': 'k1' }, bodyHash: 'sha256:a:1' }),
      http({ ts: T0 + 900, method: 'POST', headers: { 'idempotency-key': 'k1' }, bodyHash: 'sha256:b:1' }),
    ]);
    expect(r.totals).toMatchObject({ logicalRequests: 2, retries: 1, idempotencyKeyReused: 1, unsafeRetries: 0 });
    expect(r.findings.find((f) => f.code === 'idempotency-key-reused')?.client).toBe('c1');
  });

  it('WebSocket: reconnects are retries; a connection open 5 s resets the chain', () => {
    const ws = (ts: number, end: number, status: number): WsRecord => ({
      v: 1, type: 'ws', id: `w${++n}`, ts, end, client: 'b1', ip: '10.0.0.9', conn: 'w', method: 'GET', path: '/socket', query: null, status, outcome: null, upstreamStatus: null,
      protocol: null, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, ttfb: 1, duration: end - ts, closeCode: null, closeReason: null, closedBy: null,
      fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: 'Mozilla/5.0 Firefox/121.0', headers: {}, error: null,
    });
    const r = run([ws(T0, T0 + 1000, 101), ws(T0 + 1100, T0 + 1110, 503), ws(T0 + 1200, T0 + 9000, 101), ws(T0 + 9100, T0 + 20_000, 101)]);
    expect(r.totals).toMatchObject({ attempts: 4, logicalRequests: 2, retries: 2 });
    expect(r.routes[0]?.route).toBe('WS /socket');
  });

  it('the client key header re-keys clients when recorded, and counts fallbacks', () => {
    const r = run([http({ ts: T0, client: '10.0.0.1', headers: { 'x-client-id': 'alice' } as HttpRecord['headers'] }), http({ ts: T0 + 10, client: '10.0.0.1' })], { clientKeyHeader: 'x-client-id' });
    expect(r.clients.map((c) => c.key).sort()).toEqual(['10.0.0.1', 'alice']);
    expect(r.dataQuality.clientKeyFallbacks).toBe(1);
    // a secret key header is recorded redacted: the recorded (hashed) key stands
    const secret = run([http({ ts: T0, client: 'h:0123abcd', headers: { authorization: '[redacted]' } as HttpRecord['headers'] })], { clientKeyHeader: 'authorization' });
    expect(secret.clients[0]?.key).toBe('h:0123abcd');
    expect(secret.dataQuality.clientKeyFallbacks).toBe(0);
  });

  it('counts records it cannot use instead of failing', () => {
    const a = createAnalyzer();
    a.ingest({ v: 1, type: 'http' } as unknown as AnyRecord);
    a.ingest({ v: 2, type: 'future-thing' } as unknown as AnyRecord);
    a.ingest(null as unknown as AnyRecord);
    const r = a.report();
    expect(r.dataQuality).toMatchObject({ invalidRecords: 2, unknownRecords: 1, newerSchemaRecords: 1 });
  });

  it('sums routes and client types past their caps under one "other" entry (it used to ask for it forever)', () => {
    // 5,100 routes whose paths stay apart after normalisation (letters, no ids).
    const word = (i: number): string => Array.from({ length: 3 }, (_, k) => String.fromCharCode(97 + (Math.floor(i / 26 ** k) % 26))).join('');
    const records: AnyRecord[] = [];
    for (let i = 0; i < 5100; i++) records.push(http({ ts: T0 + i, path: `/shop/${word(i)}`, userAgent: `agent${word(i)}/1.0` }));
    const r = run(records);
    expect(r.totals.attempts).toBe(5100);
    expect(r.routes.length + r.routesOmitted).toBeGreaterThanOrEqual(5000);
  });

  it('rejects malformed options with ERR_BAD_OPTION', () => {
    expect(() => createAnalyzer({ window: 'soon' })).toThrow(/duration/);
    expect(() => createAnalyzer({ maxClients: 0 })).toThrow(/positive integer/);
  });
});

describe('several runs in one recording', () => {
  it('a file two sessions were appended to names both and says they are analysed as one; a run given twice is listed once', () => {
    const first = header('qa-s1', 'aaaa0001');
    const second = { ...header('qa-s2', 'bbbb0002'), start: new Date(T0 + 60_000).toISOString(), startMs: T0 + 60_000 };
    const r = run([first, http({ ts: T0 + 10 }), second, http({ ts: T0 + 60_010, client: 'c2' }), first]);
    expect(r.session).toBe('qa-s1, qa-s2');
    expect(r.recordings.map((x) => x.session)).toEqual(['qa-s1', 'qa-s2']);
    expect(r.limits.some((l) => l.startsWith('These recordings hold 2 sessions (qa-s1, qa-s2), analysed as one'))).toBe(true);
    // A named run and an unnamed one, in either order: both runs are said.
    const unnamed = { ...header('x', 'cccc0003'), session: null, start: new Date(T0 + 60_000).toISOString(), startMs: T0 + 60_000 };
    for (const order of [[first, unnamed], [unnamed, first]]) {
      const m = run([order[0] as AnyRecord, http({ ts: T0 + 10 }), order[1] as AnyRecord, http({ ts: T0 + 60_010, client: 'c2' })]);
      expect(m.limits.some((l) => l.startsWith('These recordings hold 2 sessions'))).toBe(true);
      expect(m.session?.split(', ').sort()).toEqual(['(no session)', 'qa-s1']);
    }
    // One session: as before.
    const one = run([first, http({ ts: T0 + 10 })]);
    expect(one.session).toBe('qa-s1');
    expect(one.limits.some((l) => l.includes('sessions'))).toBe(false);
  });
});

describe('verdict without a fault window (spec §6: alpha above 1.1 x baseline with retries above 20 %)', () => {
  // Clients that fail against the upstream itself (no injected fault), retry twice with jittered
  // gaps and then succeed: amplification 3, two thirds of the attempts retries.
  function fleet(clients: number): AnyRecord[] {
    const out: AnyRecord[] = [header('no-faults')];
    for (let c = 0; c < clients; c++) {
      const base = T0 + c * 137;
      const g1 = 100 + ((c * 83) % 900);
      const g2 = 200 + ((c * 191) % 1800);
      const who = { client: `10.5.0.${c + 1} okhttp/4.9.0`, ip: `10.5.0.${c + 1}`, conn: `k${c}` };
      out.push(http({ ...who, ts: base, ...fail }));
      out.push(http({ ...who, ts: base + 10 + g1, ...fail }));
      out.push(http({ ...who, ts: base + 20 + g1 + g2 }));
    }
    return byEnd(out);
  }

  it.each([9, 12, 40])('%i clients at amplification 3: a storm by amplification, whatever the fleet size', (clients) => {
    const r = run(fleet(clients));
    expect(r.faultWindows).toEqual([]);
    expect(r.totals.amplification).toBe(3);
    expect(r.totals.amplificationBaseline).toBe(1);
    expect(r.verdict).toBe('retry-storm');
    expect(r.verdictReasons.join('; ')).toMatch(/^amplification 3 \(above 1\.1 x baseline 1\)/);
  });

  it('clients that succeed first time stay ok', () => {
    const out: AnyRecord[] = [header('calm')];
    for (let c = 0; c < 20; c++) out.push(http({ client: `10.5.1.${c}`, ip: `10.5.1.${c}`, ts: T0 + c * 100 }));
    const r = run(out);
    expect(r.totals.amplificationBaseline).toBe(1);
    expect(r.verdict).toBe('ok');
  });
});

describe('recovery, fault windows, budgets and Retry-After with jitter (found by reading the reports as a user)', () => {
  const injected = (rule: string) => ({ status: 503, fault: { rule, type: 'http-error', injected: true } }) as Partial<HttpRecord>;
  const code = (r: Report, c: string) => r.findings.filter((f) => f.code === c);

  it('sparse clients that never retry: the next request arriving late is not a slow recovery', () => {
    // 5 clients, one GET every 15 s each (none retried); 503s injected from 30 s to 45 s.
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 5; c++) {
      for (let i = 0; i < 8; i++) {
        const ts = T0 + i * 15_000 + c * 200;
        const inFault = ts - T0 >= 30_000 && ts - T0 < 45_000;
        rs.push(http({ ts, client: `c${c}`, query: `i=${i}`, ...(inFault ? injected('outage') : {}) }));
      }
    }
    const r = run(byEnd(rs));
    expect(r.totals.retries).toBe(0);
    expect(r.faultWindows.every((w) => w.recoverySeconds === 0)).toBe(true);
    expect(code(r, 'sustained-amplification')).toEqual([]);
    expect(r.verdict).toBe('ok');
  });

  it('a reconnect burst after the fault, then sockets that stay open: recovered when the burst ended, not a metastable storm', () => {
    const ws = (client: string, ts: number, end: number, status: number, fault: boolean): WsRecord => ({
      v: 1, type: 'ws', id: `w${++n}`, ts, end, client, ip: '10.0.0.9', conn: 'w', method: 'GET', path: '/socket', query: null, status, outcome: null, upstreamStatus: null,
      protocol: null, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, ttfb: 1, duration: end - ts, closeCode: null, closeReason: null, closedBy: null,
      fault: fault ? { rule: 'rej', type: 'ws-reject', injected: true } : null, faults: [], retryAfter: null, bodyHash: null, userAgent: 'wsapp/1.0', headers: {}, error: null,
    });
    const rs: WsRecord[] = [];
    for (let c = 0; c < 20; c++) {
      const k = `b${c}`;
      rs.push(ws(k, T0 + c * 10, T0 + 10_000, 101, false)); // connected, dropped at 10 s
      rs.push(ws(k, T0 + 10_500 + c * 20, T0 + 10_510 + c * 20, 503, true)); // rejected during the outage
      rs.push(ws(k, T0 + 12_500 + c * 30, T0 + 12_510 + c * 30, 503, true));
      rs.push(ws(k, T0 + 16_000 + c * 25, T0 + 60_000, 101, false)); // back after the outage, open 44 s
    }
    const r = run(byEnd(rs));
    expect(code(r, 'sustained-amplification')).toEqual([]);
    const w = r.faultWindows.find((x) => x.rule === 'rej');
    expect(w?.recoverySeconds).not.toBeNull();
    expect(w?.recoverySeconds as number).toBeLessThan(10);
  });

  it('the retries counted after a fault window stop before the next window: its own retries are not counted twice', () => {
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 40; i++) rs.push(http({ ts: T0 + i * 500, client: 'org', query: `i=${i}` }));
    for (let c = 0; c < 5; c++) {
      rs.push(http({ ts: T0 + 10_000 + c * 50, client: `a${c}`, path: '/a', ...injected('first') }));
      rs.push(http({ ts: T0 + 11_200 + c * 50, client: `a${c}`, path: '/a' }));
      rs.push(http({ ts: T0 + 14_300 + c * 50, client: `b${c}`, path: '/b', ...injected('second') }));
      rs.push(http({ ts: T0 + 14_600 + c * 50, client: `b${c}`, path: '/b' }));
    }
    const r = run(byEnd(rs));
    const first = r.faultWindows.find((w) => w.rule === 'first');
    expect(r.faultWindows.map((w) => w.rule).sort()).toEqual(['first', 'second']);
    expect(first?.retriesAfter).toBe(5);
  });

  it("the baseline rate is per second of the stretch before the faults, quiet seconds included", () => {
    const rs: HttpRecord[] = [];
    // 40 first attempts, all in the first second, then 7 quiet seconds, then a fault window at 8 s.
    for (let i = 0; i < 40; i++) rs.push(http({ ts: T0 + i * 20, client: `c${i}`, query: `i=${i}` }));
    rs.push(http({ ts: T0 + 7_500, client: 'late', query: 'i=late' }));
    for (let c = 0; c < 5; c++) rs.push(http({ ts: T0 + 8_000 + c * 50, client: `f${c}`, path: '/f', ...injected('storm') }));
    const r = run(byEnd(rs));
    const w = r.faultWindows.find((x) => x.rule === 'storm');
    // 41 attempts over the 8 seconds 0..7 (the window starts in second 8): about 5 a second, not 20.5.
    expect(w?.recoverySpike.baselineRate).toBeCloseTo(41 / 8, 3);
  });

  it("a retry is counted once: in the window when it falls in the window's last second, after it otherwise", () => {
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 40; i++) rs.push(http({ ts: T0 + i * 500, client: 'org', query: `i=${i}` }));
    for (let c = 0; c < 6; c++) {
      // The last injected failure ends at T0 + 10.3 s; three retries come in second 10, three in second 12.
      rs.push(http({ ts: T0 + 10_040 + c * 50, client: `a${c}`, path: '/a', ...injected('late') }));
      rs.push(http({ ts: c < 3 ? T0 + 10_400 + c * 100 : T0 + 12_400 + c * 100, client: `a${c}`, path: '/a' }));
    }
    const r = run(byEnd(rs));
    const w = r.faultWindows.find((x) => x.rule === 'late');
    expect(w?.end).toBe(T0 + 10_300);
    expect(w?.retriesAfter).toBe(3);
    expect((w?.retries ?? 0) + (w?.retriesAfter ?? 0)).toBe(r.totals.retries);
  });

  it('every rule that injected into an exchange has its fault window, not only the one that decided it', () => {
    const slow = { rule: 'little-latency', type: 'latency', injected: true as const };
    const down = { rule: 'items-503', type: 'http-error', injected: true as const };
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 20; i++) {
      const failing = i >= 5 && i < 15;
      rs.push(http({ ts: T0 + i * 1000, client: `c${i}`, ...(failing ? { status: 503, fault: down, faults: [slow, down] } : { fault: slow, faults: [slow] }) }));
    }
    const r = run(byEnd(rs));
    const w = (rule: string) => r.faultWindows.filter((x) => x.rule === rule);
    expect(w('items-503')).toHaveLength(1);
    // The latency rode on all 20 requests, the 503s included: one window over the whole run.
    expect(w('little-latency')).toHaveLength(1);
    expect(w('little-latency')[0]?.start).toBe(T0);
    expect(w('little-latency')[0]?.end).toBe(T0 + 19_010);
    // On a WebSocket open for minutes, every rule that acted on it acted at its end, as the deciding one does.
    const lag = { rule: 'ws-lag', type: 'ws-delay', injected: true as const };
    const drop = { rule: 'ws-drop', type: 'ws-drop', injected: true as const };
    const sock = { ...http({ ts: T0, end: T0 + 300_000, status: 101, fault: drop, faults: [lag, drop] }), type: 'ws' } as unknown as HttpRecord;
    const r2 = run([sock]);
    for (const x of r2.faultWindows) expect(x.start, x.rule).toBe(T0 + 300_000);
  });

  it('clients that wait out a long Retry-After and then succeed are not a metastable storm', () => {
    // 3 clients get a 503 with Retry-After: 20 at 10 s, wait the 20 s and succeed: the only traffic after the fault.
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 3; c++) {
      rs.push(http({ ts: T0 + 10_000 + c * 100, client: `c${c}`, query: 'x', retryAfter: 20, ...injected('f') }));
      rs.push(http({ ts: T0 + 30_010 + c * 100, client: `c${c}`, query: 'x' }));
    }
    const r = run(byEnd(rs));
    expect(r.totals.retries).toBe(3);
    expect(code(r, 'sustained-amplification')).toEqual([]);
    expect(r.faultWindows[0]?.recoverySeconds).not.toBeNull();
    expect(r.verdict).not.toBe('retry-storm');
    // The same retries failing (the upstream still down, no injected fault) keep the signature.
    const failing = rs.map((x) => (x.ts > T0 + 30_000 ? { ...x, status: 503 } : x));
    for (let c = 0; c < 3; c++) for (let i = 1; i < 30; i++) failing.push(http({ ts: T0 + 30_010 + c * 100 + i * 1000, client: `c${c}`, query: 'x', status: 503 }));
    const r2 = run(byEnd(failing));
    expect(code(r2, 'sustained-amplification')).toHaveLength(1);
  });

  /** Organic traffic for 60 s; c1 fails inside the fault (10-20 s, injected), then on the upstream's own 503s, retrying every 300 ms to the end of the data. */
  const stuckAfterFault = (): Report => {
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 60; i++) rs.push(http({ ts: T0 + i * 1000, client: 'org', query: `i=${i}` }));
    for (let t = T0 + 10_000; t < T0 + 60_000; t += 300) {
      rs.push(http({ ts: t, client: 'c1', path: '/stuck', ...(t < T0 + 20_000 ? injected('outage') : { status: 503 }) }));
    }
    return run(byEnd(rs));
  };

  it('amplified traffic still coming when the data ends is not recovered (the metastable signature stays)', () => {
    const r = stuckAfterFault();
    expect(code(r, 'sustained-amplification')).toHaveLength(1);
    expect(r.verdict).toBe('retry-storm');
  });

  it('says when the failures that kept the load up after the faults were the upstream\'s own, not injected (the report cannot tell a load-caused loop from an upstream failing for its own reasons)', () => {
    const r = stuckAfterFault();
    const [f] = code(r, 'sustained-amplification');
    expect(f?.message).toMatch(/the upstream itself failed \d+ of \d+ attempts \(not injected\)/);
    expect(f?.evidence.upstreamFailuresAfter).toBeGreaterThan(100);
    // The totals say how many failures there were and how many aftershock injected, in every format.
    const text = formatReport(r, 'text');
    expect(r.totals.injectedFailures).toBeGreaterThan(0);
    expect(r.totals.injectedFailures).toBeLessThan(r.totals.failures);
    expect(text).toContain(`failures ${r.totals.failures} (${r.totals.injectedFailures} injected by aftershock, ${r.totals.failures - r.totals.injectedFailures} not injected`);
    expect(formatReport(r, 'markdown')).toMatch(/\| failures \| of them injected \|/);
    expect(formatReport(r, 'html')).toContain('failures injected by aftershock');
  });

  it('two short incidents with quiet between: the first recovered (its aftermath stops before the second), and a window with nothing after it is n/a, not never', () => {
    const rs: HttpRecord[] = [];
    for (const base of [T0 + 3400, T0 + 12_400]) {
      for (let i = 0; i < 4; i++) rs.push(http({ ts: base + i * 5, method: 'POST', path: '/api/orders/1', bodyHash: 'sha256:ab:1', retryAfter: 1, ...injected('api-503') }));
      for (let i = 0; i < 3; i++) rs.push(http({ ts: base + 40 + i * 5, path: `/users/${i}` }));
    }
    const r = run(byEnd(rs));
    expect(r.faultWindows).toHaveLength(2);
    const [first, second] = r.faultWindows;
    expect(first?.recoverySeconds).not.toBeNull();
    expect(first?.recoverySeconds as number).toBeLessThan(5);
    // The data ends right after the second: nothing to tell, and no gate counts it as never.
    expect(second?.recoverySeconds).toBeNull();
    expect(second?.recoveryNote).toBe('no traffic after the window');
    expect(formatReport(r, 'text')).toContain('n/a (no traffic after the window)');
    expect(evaluateGates(r, parseGate('recoverySeconds>5'))).toEqual([]);
    expect(code(r, 'sustained-amplification')).toEqual([]);
  });

  it('one outage seen through sparse traffic is one fault window, not a row of slivers', () => {
    // 3 clients, one GET every 3 s each, all of them failing for 30 s: faults 3 s apart, nothing succeeds between.
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 20; i++) {
      for (let c = 0; c < 3; c++) {
        const ts = T0 + i * 3000 + c * 10;
        const inFault = ts - T0 >= 15_000 && ts - T0 < 45_000;
        rs.push(http({ ts, client: `c${c}`, query: `i=${i}`, ...(inFault ? injected('outage') : {}) }));
      }
    }
    const r = run(byEnd(rs));
    expect(r.faultWindows).toHaveLength(1);
    expect(r.faultWindows[0]?.durationSeconds).toBeGreaterThan(25);
    expect(r.faultWindows[0]?.faults).toBe(30);
    // Faults of a rule with successes between them stay apart.
    const split = run(byEnd([http({ ts: T0, ...injected('x') }), http({ ts: T0 + 5000, query: 'ok' }), http({ ts: T0 + 10_000, query: 'b', ...injected('x') })]));
    expect(split.faultWindows).toHaveLength(2);
  });

  it('one client over the retry budget is named, though its client type and the totals are within theirs', () => {
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 30; c++) for (let i = 0; i < 60; i++) rs.push(http({ ts: T0 + i * 1000 + c * 7, client: `good${c}`, query: `i=${i}` }));
    // "bad": 60 requests, 48 of them retried once after a 503 (44 % of its attempts are retries).
    for (let i = 0; i < 60; i++) {
      const ts = T0 + i * 1000 + 500;
      if (i < 48) {
        rs.push(http({ ts, client: 'bad', query: `i=${i}`, ...fail }));
        rs.push(http({ ts: ts + 200, client: 'bad', query: `i=${i}` }));
      } else rs.push(http({ ts, client: 'bad', query: `i=${i}` }));
    }
    const r = run(byEnd(rs));
    expect(r.totals.retryRatio).toBeLessThan(0.1);
    const f = code(r, 'retry-budget-exceeded');
    expect(f.map((x) => x.client)).toEqual(['bad']);
    expect(f[0]?.evidence).toMatchObject({ retries: 48, attempts: 108 });
    // A client within the budget (or with too few retries to judge) is not flagged.
    expect(r.clients.find((c) => c.key === 'good0')?.findings ?? []).not.toContain('retry-budget-exceeded');
  });

  it('Retry-After plus jitter honours it; waits far beyond it (the client\'s own schedule) ignore it', () => {
    const chain = (client: string, waits: number[]): HttpRecord[] => {
      const out: HttpRecord[] = [];
      let ts = T0;
      for (const w of waits) {
        const a = http({ ts, client, status: 503, retryAfter: 2 });
        out.push(a);
        ts = a.end + w;
      }
      out.push(http({ ts, client }));
      return out;
    };
    const r = run(byEnd([...chain('jittered', [2400, 2900, 2600, 2100, 2800]), ...chain('own', [8000, 8000, 8000, 8000, 8000])]));
    const jittered = r.clients.find((c) => c.key === 'jittered');
    expect(jittered?.retryAfter).toBe('compliant');
    expect(jittered?.retryAfterCounts).toMatchObject({ late: 4, lateWithinJitter: 4 });
    expect(r.clients.find((c) => c.key === 'own')?.retryAfter).toBe('ignored');
    expect(code(r, 'retry-after-ignored').map((f) => f.client)).toEqual(['own']);
  });

  it('a fault window whose attempts were all retries is a storm: offered / 0 organic is unbounded, not "not measurable"', () => {
    // 10 clients: a first attempt the upstream timed out (not injected) 0.5 s in, then 5 retries
    // inside an injected 503 window from 2 s on, then a success. The window has no first attempt.
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 10; c++) {
      rs.push(http({ ts: T0 + 500 + c * 10, end: T0 + 2000 + c * 10, client: `c${c}`, status: 504, outcome: 'timeout' }));
      let t = T0 + 2000 + c * 10;
      for (let k = 0; k < 5; k++) {
        t += 100 * 2 ** k * (0.5 + ((c * 7 + k * 13) % 10) / 10); // jittered: no other reason for a storm
        rs.push(http({ ts: t, client: `c${c}`, ...injected('f') }));
        t += 10;
      }
      rs.push(http({ ts: t + 1000 + 97 * c, client: `c${c}` }));
    }
    const r = run(byEnd(rs));
    const w = r.faultWindows[0];
    expect(w?.organic).toBe(0);
    expect(w?.offered).toBeGreaterThan(0);
    expect(w?.amplification).toBeNull();
    expect(r.totals.amplificationInFaults).toBeNull();
    expect(r.verdict).toBe('retry-storm');
    expect(code(r, 'retry-storm')[0]?.message).toMatch(/amplification unbounded \(\d+ retries, no first attempt; 7 over the whole run\) in fault window f/);
    const [g] = evaluateGates(r, parseGate('amplificationInFaults>2'));
    expect(g?.held).toBe(true);
    expect(g?.detail).toMatch(/unbounded/);
    expect(formatReport(r, 'text')).toMatch(/amplification 7 overall, unbounded in fault windows/);
  });

  it('an only-retries window of one late retry, or of a hedge, is no storm and no unbounded amplification of its own', () => {
    // A poller every 5 s; the upstream's own 503 once, retried 1.5 s later into an injected latency.
    const rs: HttpRecord[] = [];
    for (let i = 0; i < 12; i++) rs.push(http({ ts: T0 + i * 5000, client: 'p', query: `i=${i}`, ...(i === 4 ? { status: 503 } : {}) }));
    rs.push(http({ ts: T0 + 4 * 5000 + 1500, end: T0 + 4 * 5000 + 1700, client: 'p', query: 'i=4', fault: { rule: 'slow', type: 'latency', injected: true } }));
    const r = run(byEnd(rs));
    expect(r.totals.retries).toBe(1);
    expect(r.verdict).toBe('ok');
    // A hedge (a second copy while the first is in flight) in a fault window: nothing retried.
    const hedge = run(
      byEnd([
        http({ ts: T0, end: T0 + 3000, client: 'h' }),
        http({ ts: T0 + 2500, end: T0 + 2700, client: 'h', fault: { rule: 'slow', type: 'latency', injected: true } }),
      ]),
    );
    expect(hedge.totals.retries).toBe(0);
    expect(evaluateGates(hedge, parseGate('amplificationInFaults>1.5'), { all: true })[0]?.held).toBe(false);
    expect(formatReport(hedge, 'text')).not.toMatch(/unbounded/);
  });

  it('one irregular chain is irregular: the per-index reading needs 3+ chains of a client, 8+ of a type (README)', () => {
    // Gaps 301.6, 383.2, 574.8, 230.5 ms: no schedule. Without its last gap the series would fit an
    // exponential (factor 1.38), which is what the per-index reading of this one chain said.
    for (const gaps of [
      [301.6, 383.2, 574.8, 230.5],
      [383, 388, 330, 482],
    ]) {
      const rs: HttpRecord[] = [];
      let t = T0;
      for (const g of gaps) {
        const a = http({ ts: t, client: 'solo', ...injected('f') });
        rs.push(a);
        t = a.end + g;
      }
      rs.push(http({ ts: t, client: 'solo' }));
      const r = run(byEnd(rs));
      expect(r.clients[0]?.backoff).toBe('irregular');
      expect(r.clientTypes[0]?.backoff).toBe('irregular');
    }
  });

  it('a client type of one client reads as that client does (3 chains are enough for both)', () => {
    const rs: HttpRecord[] = [];
    let t = T0;
    for (let chain = 0; chain < 3; chain++) {
      for (const g of [100, 200, 300, 400]) {
        const a = http({ ts: t, client: 'solo', query: `q=${chain}`, ...injected('f') });
        rs.push(a);
        t = a.end + g * [[1.3, 0.7, 1.25, 0.8], [0.75, 1.3, 0.75, 1.2], [1, 1, 1.05, 1]][chain]![g / 100 - 1]!; // each chain irregular
      }
      rs.push(http({ ts: t, client: 'solo', query: `q=${chain}` }));
      t += 30_000;
    }
    const r = run(byEnd(rs));
    expect(r.clients[0]?.backoff).toBe('linear');
    expect(r.clientTypes[0]?.backoff).toBe('linear');
  });

  it("the upstream's own failures under a delay-only fault (latency) are not counted as injected; a client that gave up during it is", () => {
    const slow = { rule: 'slow-all', type: 'latency', injected: true } as const;
    const rs: HttpRecord[] = [
      http({ ts: T0, client: 'a', path: '/fail', status: 500, fault: slow }),
      http({ ts: T0 + 100, client: 'b', path: '/kill', status: 502, outcome: 'upstream-error', fault: slow }),
      http({ ts: T0 + 200, client: 'c', path: '/x', status: null, outcome: 'client-abort', fault: slow }),
      http({ ts: T0 + 300, client: 'd', path: '/y', status: 503, fault: { rule: 'err', type: 'http-error', injected: true } }),
    ];
    const r = run(byEnd(rs));
    expect(r.totals.failures).toBe(4);
    expect(r.totals.injectedFaults).toBe(4);
    expect(r.totals.injectedFailures).toBe(2); // the client-abort under latency, and the http-error
    expect(formatReport(r, 'text')).toMatch(/failures 4 \(2 injected by aftershock, 2 not injected/);
  });

  it('records far out of order (a reversed file) are called out even when no retry is found', () => {
    const rs: HttpRecord[] = [];
    for (let c = 0; c < 5; c++) {
      let ts = T0 + c * 100;
      for (let i = 0; i < 6; i++) {
        const a = http({ ts, client: `c${c}`, ...(i < 5 ? fail : {}) });
        rs.push(a);
        ts = a.end + 8000; // beyond the 5 s reorder lag
      }
    }
    expect(run(byEnd(rs)).totals.retries).toBe(25);
    const reversed = run(byEnd(rs).reverse());
    expect(reversed.totals.retries).toBeLessThan(25);
    const f = code(reversed, 'low-confidence-grouping');
    expect(f).toHaveLength(1);
    expect(f[0]?.message).toMatch(/not in the order the proxy writes them/);
    expect(code(run(byEnd(rs)), 'low-confidence-grouping')).toEqual([]);
  });
});
