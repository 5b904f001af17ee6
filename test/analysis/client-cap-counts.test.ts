/**
 * Above `--max-clients` the client table evicts summaries, but the report's client counts must
 * still count every client: `clientsTotal`/`clientsOmitted`, and each finding's "N in all". Where a
 * client came back after its eviction the count cannot be exact, and the report says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer, type Report } from '../../src/analysis/index.js';
import { EVICTED_RETURN_LIMIT } from '../../src/analysis/report.js';
import type { AnyRecord } from '../../src/record/schema.js';

const T = Date.UTC(2025, 0, 15, 12, 0, 0);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function rec(id: string, ts: number, client: string, status: number, extra: Record<string, unknown> = {}): AnyRecord {
  return { v: 1, type: 'http', id, ts, end: ts + 10, client, path: '/a', status, headers: {}, ...extra } as unknown as AnyRecord;
}

const injected = { fault: { rule: 'f', type: 'status', injected: true } };

function write(records: AnyRecord[]): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-cap-'));
  dirs.push(d);
  const file = path.join(d, 'rec.ndjson');
  const sorted = [...records].sort((a, b) => (a as unknown as { end: number }).end - (b as unknown as { end: number }).end);
  fs.writeFileSync(file, sorted.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** Offline in one thread, after checking the live engine (same records, file order) agrees. */
async function analyze(file: string, opts: { maxClients: number; maxReportedClients?: number }): Promise<Report> {
  const live = createAnalyzer(opts);
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) if (line !== '') live.ingest(JSON.parse(line) as AnyRecord);
  const offline = await analyzeFiles([file], { ...opts, threads: 1 });
  expect(live.report()).toEqual(offline);
  return offline;
}

const summaryOf = (r: Report, code: string) => r.findings.find((f) => f.code === code && f.client === undefined);

describe('client counts above --max-clients', () => {
  it('2,000 clients that each break Retry-After, 100 kept: every count says 2,000', async () => {
    const records: AnyRecord[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = T + i * 50;
      const c = `c${String(i).padStart(4, '0')}`;
      records.push(rec(`a${i}`, t, c, 503, { retryAfter: 5, ...injected }));
      records.push(rec(`b${i}`, t + 20, c, 200));
    }
    const file = write(records);
    const r = await analyze(file, { maxClients: 100 });
    expect(r.dataQuality.clientsEvicted).toBeGreaterThan(1000);
    expect(r.totals.clients).toBe(2000);
    expect(r.totals.retryAfter.violates).toBe(2000);
    expect(r.clientsTotal).toBe(2000);
    expect(r.clientsOmitted).toBe(2000 - r.clients.length);
    const each = r.findings.filter((f) => f.code === 'retry-after-violated' && f.client !== undefined);
    expect(each).toHaveLength(10);
    const rest = summaryOf(r, 'retry-after-violated');
    expect(rest?.message).toBe('1990 more clients with the same finding (2000 in all).');
    expect(rest?.evidence).toMatchObject({ clients: 2000, more: 1990, exact: true });
    expect(r.findings.find((f) => f.code === 'clients-truncated')?.message).toMatch(/^The report lists the 200 worst of 2000 clients;/);
    // Nobody came back after an eviction: the counts are exact and no limit is added.
    expect(r.limits).not.toContain(EVICTED_RETURN_LIMIT);

    // Split among two threads, each evicts by its own share of the cap: the counts still add up.
    const two = await analyzeFiles([file], { maxClients: 100, threads: 2 });
    expect(two.dataQuality.partitions).toBe(2);
    expect(two.clientsTotal).toBe(2000);
    expect(summaryOf(two, 'retry-after-violated')?.evidence).toMatchObject({ clients: 2000, exact: true });
  });

  it('counts clients whose summaries were all evicted, even when none of them is listed', async () => {
    const records: AnyRecord[] = [];
    // 50 clients that never give up (12 failing attempts, 1 s apart), then 1,000 clean clients
    for (let i = 0; i < 50; i++) for (let k = 0; k < 12; k++) records.push(rec(`u${i}-${k}`, T + k * 1000 + i, `u${i}`, 503));
    for (let i = 0; i < 1000; i++) records.push(rec(`ok${i}`, T + 200_000 + i * 100, `ok${i}`, 200));
    const r = await analyze(write(records), { maxClients: 100, maxReportedClients: 5 });
    expect(r.totals.unboundedChains).toBe(50);
    expect(r.clientsTotal).toBe(1050);
    const listed = r.findings.filter((f) => f.code === 'unbounded-retries' && f.client !== undefined);
    expect(listed.length).toBeLessThanOrEqual(5);
    expect(summaryOf(r, 'unbounded-retries')?.message).toBe(`${50 - listed.length} more clients with the same finding (50 in all).`);
  });

  it('says "at least" and states the limit when clients came back after their eviction', async () => {
    const records: AnyRecord[] = [];
    const unboundedChain = (client: string, at: number): void => {
      for (let k = 0; k < 12; k++) records.push(rec(`${client}-${at}-${k}`, at + k * 1000, client, 503));
    };
    for (let i = 0; i < 20; i++) unboundedChain(`r${i}`, T + i);
    for (let i = 0; i < 300; i++) records.push(rec(`ok${i}`, T + 200_000 + i * 100, `ok${i}`, 200));
    // the same 20 clients again, after their summaries were evicted
    for (let i = 0; i < 20; i++) unboundedChain(`r${i}`, T + 400_000 + i);
    const r = await analyze(write(records), { maxClients: 100 });
    expect(r.totals.unboundedChains).toBe(40);
    expect(r.clientsTotal).toBe(320);
    const rest = summaryOf(r, 'unbounded-retries');
    expect(rest?.message).toBe('At least 10 more clients with the same finding (at least 20 in all; see limits).');
    expect(rest?.evidence).toMatchObject({ clients: 20, exact: false });
    expect(r.limits).toContain(EVICTED_RETURN_LIMIT);
    expect(r.confidence.reasons.some((x) => x.includes('per-finding client counts are lower bounds'))).toBe(true);
  });
});
