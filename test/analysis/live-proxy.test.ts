/**
 * Synthetic client fleets through a real proxy with real injected faults: the live report (the
 * proxy's own analyzer) classifies each fleet, and the recording analysed offline gives the same
 * report. Real sockets on loopback; every retry opens a new connection, as most clients do.
 */
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeFiles } from '../../src/analysis/index.js';
import { startTestProxy, startUpstream, tempDir } from '../helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Fleet {
  name: string;
  ua: string;
  clients: number;
  method?: string;
  /** Path template: `{c}` is the client number, `{n}` the logical request number. */
  path: string;
  /** `immediate`, `constant:<ms>` or `full-jitter:<base ms>:<cap ms>`, with at most `attempts` attempts. */
  backoff: string;
  attempts: number;
}

/**
 * The fleets run in a worker thread: their timers must not queue behind the proxy's own work in
 * the test's event loop (a 200 ms constant backoff measured 250 ms late is accidental jitter).
 */
const FLEET_WORKER = `
const http = require('node:http');
const { workerData, parentPort } = require('node:worker_threads');
const { base, fleets, durationMs } = workerData;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const send = (url, method, headers, body) => new Promise((resolve) => {
  const req = http.request(url, { method, headers, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode || 0)); res.on('error', () => resolve(0)); });
  req.on('error', () => resolve(0));
  req.end(body);
});
const wait = (spec, k) => {
  const [kind, a, b] = spec.split(':');
  if (kind === 'immediate') return 0;
  if (kind === 'constant') return Number(a);
  return Math.random() * Math.min(Number(b), Number(a) * 2 ** k);
};
async function client(f, c, until) {
  let n = 0;
  while (Date.now() < until) {
    n++;
    const url = base + f.path.replace('{c}', String(c)).replace('{n}', String(n));
    const headers = { 'x-client-id': f.name + '-' + c, 'user-agent': f.ua };
    for (let k = 1; ; k++) {
      const status = await send(url, f.method || 'GET', headers, f.method === 'POST' ? JSON.stringify({ order: n, client: c }) : undefined);
      if (status > 0 && status < 500 && status !== 429 && status !== 408) break;
      if (k >= f.attempts) break;
      await sleep(wait(f.backoff, k));
    }
    await sleep(60 + ((c * 37 + n * 11) % 40));
  }
}
const until = Date.now() + durationMs;
Promise.all(fleets.flatMap((f) => Array.from({ length: f.clients }, (_, i) => client(f, i + 1, until)))).then(() => parentPort.postMessage('done'));
`;

function runFleets(base: string, fleets: Fleet[], durationMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const w = new Worker(FLEET_WORKER, { eval: true, workerData: { base, fleets, durationMs } });
    w.once('message', () => {
      void w.terminate().then(() => resolve());
    });
    w.once('error', reject);
  });
}

describe('live analysis of real client fleets through the proxy', () => {
  it('classifies immediate, jittered-exponential and constant fleets and agrees with the offline analysis', async () => {
    const upstream = await startUpstream((req, res) => {
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
    const record = path.join(tempDir(), 'fleet.ndjson');
    const proxy = await startTestProxy({ target: upstream.url, record, session: 'fleet', clientKey: 'header:x-client-id', seed: 7 });
    proxy.addFault({ name: 'flaky-orders', match: { path: '/orders' }, probability: 0.4, fault: { type: 'http-error', status: 503 } });

    const fleets: Fleet[] = [
      { name: 'eager', ua: 'eager-sdk/1.0', clients: 12, path: '/api/items/{c}{n}', backoff: 'immediate', attempts: 5 },
      { name: 'careful', ua: 'careful-sdk/2.0', clients: 12, path: '/api/orders/{c}{n}', backoff: 'full-jitter:25:2000', attempts: 6 },
      { name: 'steady', ua: 'steady-sdk/1.0', clients: 12, path: '/api/profile/{c}{n}', backoff: 'constant:600', attempts: 3 },
      { name: 'poster', ua: 'poster/1.0', clients: 1, method: 'POST', path: '/orders', backoff: 'constant:30', attempts: 3 },
    ];
    const running = runFleets(proxy.url, fleets, 4000);
    await sleep(500);
    proxy.mark('outage starts');
    proxy.addFault({ name: 'outage', match: { path: '/api/**' }, fault: { type: 'http-error', status: 503 } }, 2500);
    await running;
    await proxy.close();

    const live = proxy.report();
    const offline = await analyzeFiles([record]);
    expect(offline.totals).toEqual(live.totals);
    expect(offline.clientTypes).toEqual(live.clientTypes);
    expect(offline.findings).toEqual(live.findings);

    const type = (ua: string) => live.clientTypes.find((t) => t.userAgent === ua);
    // on failure, the types' details say why (gaps per index, votes, jitter CVs)
    const why = JSON.stringify(live.clientTypes.map((t) => ({ ua: t.userAgent, backoff: t.backoffDetail, jitter: t.jitterDetail })));
    expect(type('eager-sdk'), why).toMatchObject({ backoff: 'immediate', clients: 12 });
    expect(type('steady-sdk'), why).toMatchObject({ backoff: 'constant', jitter: 'none', clients: 12 });
    expect(type('careful-sdk')?.backoff, why).toBe('exponential');
    expect(['full', 'proportional'], why).toContain(type('careful-sdk')?.jitter);

    const codes = new Set(live.findings.map((f) => f.code));
    expect(live.verdict).toBe('retry-storm');
    expect(codes).toContain('immediate-retries');
    expect(live.findings.find((f) => f.code === 'no-jitter')).toMatchObject({ userAgent: 'steady-sdk', severity: 'critical' });
    expect(live.findings.find((f) => f.code === 'unsafe-retry')).toMatchObject({ client: 'poster-1', route: 'POST /orders' });
    expect(live.findings.some((f) => f.code === 'immediate-retries' && f.client?.startsWith('careful') === true)).toBe(false);

    const outage = live.faultWindows.find((w) => w.rule === 'outage');
    expect(outage).toBeDefined();
    expect(outage?.durationSeconds).toBeGreaterThan(2);
    expect(outage?.amplification).toBeGreaterThan(1.5);
    expect(live.marks.map((m) => m.label)).toEqual(['outage starts']);
    expect(live.session).toBe('fleet');
  }, 20_000);

  it('sees lost responses turned into duplicate submissions, and Retry-After honoured or violated, on the wire', async () => {
    let completed = 0;
    const upstream = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST') completed++;
        res.writeHead(req.method === 'POST' ? 201 : 200);
        res.end('ok');
      });
    });
    const record = path.join(tempDir(), 'wire.ndjson');
    const proxy = await startTestProxy({ target: upstream.url, record, clientKey: 'header:x-client-id', seed: 3 });
    proxy.addFault({ name: 'lost', match: { path: '/payments' }, firstAttempts: 1, fault: { type: 'lost-response' } });
    proxy.addFault({ name: 'throttle', match: { path: '/search' }, firstAttempts: 1, fault: { type: 'http-error', status: 429, retryAfter: '1s' } });

    const fleets: Fleet[] = [
      { name: 'payer', ua: 'payer/1.0', clients: 2, method: 'POST', path: '/payments', backoff: 'constant:100', attempts: 3 },
      { name: 'rude', ua: 'rude/1.0', clients: 3, path: '/search', backoff: 'constant:100', attempts: 3 },
      { name: 'polite', ua: 'polite/1.0', clients: 3, path: '/search', backoff: 'constant:1100', attempts: 3 },
    ];
    await runFleets(proxy.url, fleets, 2500);
    await proxy.close();
    const live = proxy.report();
    const offline = await analyzeFiles([record]);
    expect(offline.totals).toEqual(live.totals);

    const payer = live.clients.find((c) => c.key === 'payer-1');
    expect(payer?.duplicateSubmissions).toBeGreaterThan(0);
    expect(live.findings.find((f) => f.code === 'duplicate-submission' && f.client === 'payer-1')).toMatchObject({ severity: 'critical', route: 'POST /payments' });
    // the upstream did the work more often than the payers had payments to make: duplicates
    const payments = live.clients.filter((c) => c.key.startsWith('payer')).reduce((n, c) => n + c.logicalRequests, 0);
    expect(completed).toBeGreaterThan(payments);
    for (const k of ['rude-1', 'rude-2', 'rude-3']) expect(live.clients.find((c) => c.key === k)?.retryAfter).toBe('violates');
    const dbg = JSON.stringify(live.clients.filter((c) => c.key.startsWith('polite')).map((c) => [c.key, c.retryAfterCounts, c.examples]));
    for (const k of ['polite-1', 'polite-2', 'polite-3']) expect(live.clients.find((c) => c.key === k)?.retryAfter, dbg).toBe('compliant');
    expect(live.findings.filter((f) => f.code === 'retry-after-violated').map((f) => f.client).sort()).toEqual(['rude-1', 'rude-2', 'rude-3']);
  }, 20_000);
});
