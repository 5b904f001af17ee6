/**
 * The `idempotency-key-reused` finding says what happened: how many times an earlier request's
 * Idempotency-Key came back with a different body (reuses), not a count of keys. One key sent with
 * three bodies is two reuses of one key; it read "sent 2 Idempotency-Keys again".
 */
import { describe, expect, it } from 'vitest';
import { createAnalyzer, type Report } from '../../src/analysis/index.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { T0, header } from '../fixtures/make-fixtures.js';

let n = 0;
function post(ts: number, key: string, body: string): HttpRecord {
  return {
    v: 1, type: 'http', id: `p${++n}`, ts, end: ts + 10, client: 'c1', ip: '10.0.0.1', conn: 'k1', method: 'POST', path: '/transfers', query: null,
    status: 201, outcome: null, upstreamStatus: null, bytesIn: 10, bytesOut: 10, ttfb: 5, duration: 10, fault: null, faults: [], retryAfter: null,
    bodyHash: `sha256:${body}:1`, userAgent: 'okhttp/4.9.0', headers: { 'idempotency-key': key }, error: null,
  };
}

function reuseFinding(records: HttpRecord[]): { report: Report; message: string } {
  const a = createAnalyzer();
  a.ingest(header('idem'));
  for (const r of records) a.ingest(r);
  const report = a.report();
  const found = report.findings.filter((f) => f.code === 'idempotency-key-reused');
  expect(found).toHaveLength(1);
  return { report, message: (found[0] as { message: string }).message };
}

describe('idempotency-key-reused: the message counts reuses', () => {
  it('one key sent three times with three bodies: two reuses of a key, not "2 Idempotency-Keys"', () => {
    const { report, message } = reuseFinding([post(T0, 'k1', 'a'), post(T0 + 1000, 'k1', 'b'), post(T0 + 2000, 'k1', 'c')]);
    expect(report.totals.idempotencyKeyReused).toBe(2);
    expect(message).toBe("c1 (okhttp/4.9.0) reused an earlier request's Idempotency-Key with a different body 2 times.");
    expect(message).not.toMatch(/Idempotency-Keys/);
  });

  it('a single reuse says once', () => {
    const { message } = reuseFinding([post(T0, 'k1', 'a'), post(T0 + 1000, 'k1', 'b')]);
    expect(message).toBe("c1 (okhttp/4.9.0) reused an earlier request's Idempotency-Key with a different body once.");
  });
});
