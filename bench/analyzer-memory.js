// Live-analysis memory with many distinct client keys: feeds synthetic http records straight into
// `createAnalyzer().ingest` (as the proxy's recorder does) and reads heapUsed after a full GC at
// each checkpoint. Run with --expose-gc.
//
//   node --expose-gc bench/analyzer-memory.js '{"checkpoints":[100000,1000000]}'
import { distModule, processFacts, serveParent } from './lib.js';

const cfg = JSON.parse(process.argv[2] ?? '{"checkpoints":[100000,1000000]}');

function gc() {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
}

async function run({ checkpoints }) {
  const { createAnalyzer } = await import(distModule('analysis/index.js'));
  const analyzer = createAnalyzer({});
  const startMs = Date.UTC(2025, 0, 1);
  analyzer.ingest({
    v: 1,
    type: 'header',
    aftershock: 'bench',
    start: new Date(startMs).toISOString(),
    startMs,
    target: 'http://127.0.0.1:3000',
    profile: { name: 'flaky', hash: 'bench' },
    seed: 1,
    clientKey: 'auto',
    session: null,
    redacted: [],
    instance: 'bench0001',
  });
  const uas = ['okhttp/4.12.0', 'python-requests/2.32.3', 'Go-http-client/1.1', 'axios/1.7.2'];
  const tag = { rule: 'some-503', type: 'http-error', injected: true };
  gc();
  const points = [{ keys: 0, ...pick(processFacts()) }];
  const last = checkpoints[checkpoints.length - 1];
  let i = 0;
  let t0 = performance.now();
  let from = 0;
  for (const cp of checkpoints) {
    for (; i < cp; i++) {
      // 1 ms of recording time per record: a million clients span ~17 minutes, several windows.
      const ts = startMs + i;
      const fault = i % 10 === 0;
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const ua = uas[i & 3];
      analyzer.ingest({
        v: 1,
        type: 'http',
        id: `bench0001-${i.toString(36)}`,
        ts,
        end: ts + 2,
        client: `client-${i}`,
        ip,
        conn: i.toString(36),
        method: 'GET',
        path: `/v1/items/${i % 1000}`,
        query: null,
        status: fault ? 503 : 200,
        outcome: null,
        upstreamStatus: null,
        bytesIn: 0,
        bytesOut: 40,
        ttfb: 1.5,
        duration: 2,
        fault: fault ? tag : null,
        faults: fault ? [tag] : [],
        retryAfter: null,
        bodyHash: null,
        userAgent: ua,
        headers: {},
        error: null,
      });
    }
    const secs = (performance.now() - t0) / 1000;
    gc();
    points.push({ keys: cp, recordsPerSecond: (cp - from) / secs, ...pick(processFacts()), stats: analyzer.stats() });
    t0 = performance.now();
    from = cp;
  }
  // The report must still be producible at the end (and is part of what live analysis costs).
  const r0 = performance.now();
  analyzer.report();
  const reportMs = performance.now() - r0;
  return { points: points.filter((p) => p.keys > 0), empty: points[0], reportMs, keys: last, hotClient: hotClient(createAnalyzer, startMs) };
}

/**
 * The other extreme: ONE client (a load generator, as wrk is) sending the same GET at 10,000 req/s
 * of recording time. Ingest rate over the first and the last 10,000 records shows whether the
 * per-record cost grows with the number of attempts held for reordering.
 */
function hotClient(createAnalyzer, startMs) {
  const analyzer = createAnalyzer({});
  const total = 100_000;
  const chunk = 10_000;
  // Bounded in time: when the per-record cost grows with the backlog, stop after 15 s.
  const deadline = performance.now() + 15_000;
  const rates = [];
  let t0 = performance.now();
  let i = 0;
  for (; i < total && performance.now() < deadline; i++) {
    const ts = startMs + i * 0.1;
    analyzer.ingest({
      v: 1, type: 'http', id: `h-${i.toString(36)}`, ts, end: ts + 1, client: '127.0.0.1', ip: '127.0.0.1', conn: String(i % 100),
      method: 'GET', path: '/v1/items/42', query: null, status: 200, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 40,
      ttfb: 0.8, duration: 1, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: null, headers: {}, error: null,
    });
    if ((i + 1) % chunk === 0) {
      rates.push(chunk / ((performance.now() - t0) / 1000));
      t0 = performance.now();
    }
  }
  if (i % chunk !== 0) rates.push((i % chunk) / ((performance.now() - t0) / 1000));
  return { records: i, timeBounded: i < total, recordsPerSecondFirst: rates[0], recordsPerSecondLast: rates[rates.length - 1], rates, stats: analyzer.stats() };
}

function pick(f) {
  return { heapUsed: f.heapUsed, rss: f.rss };
}

serveParent({ run: () => run(cfg) });
process.send({ type: 'ready' });
