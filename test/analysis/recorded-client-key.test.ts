/**
 * A recording made with `--client-key header:NAME` says so in its header; `analyze` keys clients
 * the way the proxy did, so the offline report equals the live one without repeating the flag.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer } from '../../src/analysis/index.js';
import type { AnyRecord, HttpRecord } from '../../src/record/schema.js';
import { T0, header } from '../fixtures/make-fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function recording(): AnyRecord[] {
  const out: AnyRecord[] = [header('tenants', 'ck01', 'header:X-Tenant')];
  let n = 0;
  for (let i = 0; i < 40; i++) {
    const tenant = i % 2 === 0 ? `t${i % 4}` : null;
    const ts = T0 + i * 250;
    const failed = i % 3 === 0;
    const rec: HttpRecord = {
      v: 1,
      type: 'http',
      id: `ck01-${++n}`,
      ts,
      end: ts + 5,
      client: tenant ?? `10.0.0.${i % 5} curl/8`,
      ip: `10.0.0.${i % 5}`,
      conn: `c${i}`,
      method: 'GET',
      path: '/v1/items',
      query: null,
      status: failed ? 503 : 200,
      outcome: null,
      upstreamStatus: null,
      bytesIn: 0,
      bytesOut: 2,
      ttfb: 3,
      duration: 5,
      fault: failed ? { rule: 'some-503', type: 'http-error', injected: true } : null,
      faults: failed ? [{ rule: 'some-503', type: 'http-error', injected: true }] : [],
      retryAfter: null,
      bodyHash: null,
      userAgent: 'curl/8',
      headers: (tenant === null ? {} : { 'x-tenant': tenant }) as HttpRecord['headers'],
      error: null,
    };
    out.push(rec);
  }
  return out;
}

describe('the recording header names the client key header', () => {
  it('analyze keys clients by it without the flag, as the live analysis did (plain file and gzip)', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-ck-'));
    dirs.push(d);
    const recs = recording();
    const text = recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const file = path.join(d, 'rec.ndjson');
    fs.writeFileSync(file, text);
    const gz = path.join(d, 'rec.ndjson.gz');
    fs.writeFileSync(gz, gzipSync(text));
    // What the proxy's live analysis (created with the header from --client-key) reports.
    const live = createAnalyzer({ clientKeyHeader: 'X-Tenant' });
    for (const r of recs) live.ingest(r);
    const want = live.report();
    expect(want.dataQuality.clientKeyFallbacks).toBe(20);
    for (const f of [file, gz]) {
      const off = await analyzeFiles([f]);
      expect(off.options.clientKeyHeader).toBe('x-tenant');
      expect(off.dataQuality.clientKeyFallbacks).toBe(want.dataQuality.clientKeyFallbacks);
      expect(off.findings.map((x) => x.code).sort()).toEqual(want.findings.map((x) => x.code).sort());
      expect(off.totals).toEqual(want.totals);
    }
    // Inputs keyed differently (one by the header, one by IP): nothing is adopted, in either order.
    const byIp = path.join(d, 'ip.ndjson');
    fs.writeFileSync(byIp, [{ ...header('ips', 'ip01', 'ip') }, ...recs.slice(1).map((r) => ({ ...r, id: `ip01-${(r as { id: string }).id}` }))].map((r) => JSON.stringify(r)).join('\n') + '\n');
    expect((await analyzeFiles([file, byIp])).options.clientKeyHeader).toBeNull();
    expect((await analyzeFiles([byIp, file])).options.clientKeyHeader).toBeNull();
    // Two recordings keyed by the same header: adopted.
    expect((await analyzeFiles([file, gz])).options.clientKeyHeader).toBe('x-tenant');
    // A flag given still wins.
    expect((await analyzeFiles([file], { clientKeyHeader: 'x-other' })).options.clientKeyHeader).toBe('x-other');
  });
});
