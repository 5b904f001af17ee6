/**
 * One busy client (a load generator, a polling app) sends the same request thousands of times a
 * second: the reorder buffer then holds seconds of its attempts, and settling them must stay
 * linear. Quadratic settling made 150,000 records take over a minute; linear takes well under a
 * second, so the default test timeout is a 50x margin, not a timing assertion.
 */
import { describe, expect, it } from 'vitest';
import { createAnalyzer } from '../../src/analysis/index.js';
import type { HttpRecord } from '../../src/record/schema.js';

describe('one hot client', () => {
  it('ingests 150,000 records of one client at 10,000/s of recording time in linear time', () => {
    const a = createAnalyzer();
    const t0 = 1_800_000_000_000;
    for (let i = 0; i < 150_000; i++) {
      const ts = t0 + i * 0.1;
      const r: HttpRecord = {
        v: 1, type: 'http', id: `r${i}`, ts, end: ts + 0.05, client: '127.0.0.1 wrk', ip: '127.0.0.1', conn: '1',
        method: 'GET', path: '/v1/items/42', query: null, status: 200, outcome: null, upstreamStatus: null,
        bytesIn: 0, bytesOut: 10, ttfb: 0.05, duration: 0.05, fault: null, faults: [], retryAfter: null,
        bodyHash: null, userAgent: 'wrk', headers: {}, error: null,
      };
      a.ingest(r);
    }
    const report = a.report();
    expect(report.totals.attempts).toBe(150_000);
    expect(report.totals.retries).toBe(0);
    // The reorder buffer holds about its lag (5 s) of this client's attempts, not all of them.
    expect(a.stats().pendingAttempts).toBeLessThanOrEqual(51_000);
  }, 20_000);
});
