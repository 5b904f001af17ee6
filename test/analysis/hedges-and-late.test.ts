/**
 * Hedges and late records are not retries (spec §3.2 "polling is not retrying", §3.3 hedges):
 * concurrent identical requests that all succeed are one logical request with hedges, never an
 * unbounded chain nor a storm; a record that lies entirely before the open chain (sessions
 * concatenated out of order) is a logical request of its own and leaves the open chain alone.
 * Each recording is checked live (records in file order) and offline, and in one and two threads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer, type Report } from '../../src/analysis/index.js';
import type { AnyRecord } from '../../src/record/schema.js';

const T = Date.UTC(2025, 0, 15, 12, 0, 0);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** An exchange as a hand-written recording has it (the analysis fills in the rest). */
function rec(id: string, ts: number, end: number, client: string, status: number, extra: Record<string, unknown> = {}): AnyRecord {
  return { v: 1, type: 'http', id, ts, end, client, path: '/img.png', status, headers: {}, ...extra } as unknown as AnyRecord;
}

function write(records: AnyRecord[]): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-hedges-'));
  dirs.push(d);
  const file = path.join(d, 'rec.ndjson');
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** The offline report, after checking that live ingestion and two threads give the same one. */
async function analyze(records: AnyRecord[]): Promise<Report> {
  const live = createAnalyzer();
  for (const r of records) live.ingest(r);
  const file = write(records);
  const offline = await analyzeFiles([file], { threads: 1 });
  expect(live.report()).toEqual(offline);
  const two = await analyzeFiles([file], { threads: 2 });
  expect(two.totals).toEqual(offline.totals);
  expect(two.verdict).toBe(offline.verdict);
  expect(two.dataQuality.lateRecords).toBe(offline.dataQuality.lateRecords);
  expect(two.findings.map((f) => [f.code, f.client, f.message])).toEqual(offline.findings.map((f) => [f.code, f.client, f.message]));
  return offline;
}

const codes = (r: Report): string[] => r.findings.map((f) => f.code);

describe('hedges are not retries', () => {
  it('12 concurrent identical successful requests: one logical request, 11 hedges, no unbounded chain, verdict ok', async () => {
    const records: AnyRecord[] = [];
    for (let i = 0; i < 12; i++) records.push(rec(`p${i}`, T + i * 5, T + 200 + i * 5, 'c1', 200));
    const r = await analyze(records);
    expect(r.totals).toMatchObject({ attempts: 12, logicalRequests: 1, retries: 0, hedges: 11, failures: 0, unboundedChains: 0 });
    expect(r.verdict).toBe('ok');
    expect(r.verdictReasons).toEqual([]);
    expect(codes(r)).not.toContain('unbounded-retries');
    expect(codes(r)).not.toContain('retry-storm');
    expect(codes(r)).toContain('hedged-requests');
    expect(r.clients[0]).toMatchObject({ unboundedChains: 0, findings: [] });
  });

  it('a chain of failing hedges is not unbounded; eleven failing retries in a row are', async () => {
    const records: AnyRecord[] = [];
    // h: 12 overlapping failures (all in flight together)
    for (let i = 0; i < 12; i++) records.push(rec(`h${i}`, T + i * 5, T + 200 + i * 5, 'hedger', 503));
    // s: 12 failures one after the other, 1 s apart
    for (let i = 0; i < 12; i++) records.push(rec(`s${i}`, T + 1000 * i, T + 1000 * i + 10, 'stormer', 503));
    records.sort((a, b) => (a as unknown as { end: number }).end - (b as unknown as { end: number }).end);
    const r = await analyze(records);
    const hedger = r.clients.find((c) => c.key === 'hedger');
    const stormer = r.clients.find((c) => c.key === 'stormer');
    expect(hedger).toMatchObject({ attempts: 12, hedges: 11, retries: 0, unboundedChains: 0 });
    expect(hedger?.findings).not.toContain('unbounded-retries');
    expect(stormer).toMatchObject({ attempts: 12, retries: 11, unboundedChains: 1 });
    expect(r.totals.unboundedChains).toBe(1);
    expect(r.findings.filter((f) => f.code === 'unbounded-retries').map((f) => f.client)).toEqual(['stormer']);
    expect(r.verdict).toBe('retry-storm');
  });

  it('with no failure at all the verdict is ok, even when explicit ids make retries of re-sends', async () => {
    const records: AnyRecord[] = [];
    for (let i = 0; i < 12; i++) records.push(rec(`k${i}`, T + 1000 * i, T + 1000 * i + 10, 'c1', 200, { method: 'POST', headers: { 'idempotency-key': 'order-1' } }));
    const r = await analyze(records);
    expect(r.totals).toMatchObject({ failures: 0, retries: 11, unboundedChains: 1 });
    // The finding still names what the client did; it is no storm with nothing failing.
    expect(codes(r)).toContain('unbounded-retries');
    expect(r.verdict).toBe('ok');
    expect(r.verdictReasons).toEqual([]);
    expect(codes(r)).not.toContain('retry-storm');
  });
});

describe('late records that lie before the open chain', () => {
  it('two sessions of successful polls, the later one first in the file: 30 logical requests, no hedges, no storm', async () => {
    const poll = (session: string, at: number): AnyRecord[] => {
      const out: AnyRecord[] = [];
      for (let i = 0; i < 15; i++) for (const c of ['c1', 'c2']) out.push(rec(`${session}-${c}-${i}`, at + 1000 * i, at + 1000 * i + 20, c, 200));
      return out;
    };
    const records = [...poll('later', T + 3_600_000), ...poll('earlier', T)];
    const r = await analyze(records);
    expect(r.totals).toMatchObject({ attempts: 60, logicalRequests: 60, retries: 0, hedges: 0, unboundedChains: 0 });
    expect(r.dataQuality.lateRecords).toBe(30);
    expect(r.verdict).toBe('ok');
    expect(codes(r)).not.toContain('hedged-requests');
    expect(codes(r)).not.toContain('unbounded-retries');
  });

  it('does not disturb the open chain: its retry still counts as one', async () => {
    const records = [
      rec('b1', T + 100_000, T + 100_010, 'c1', 503),
      rec('b2', T + 101_000, T + 101_010, 'c1', 503),
      // moves the recording's clock 6 s on, so b1 and b2 are folded before the old record arrives
      rec('other', T + 107_000, T + 107_010, 'c9', 200),
      rec('old', T, T + 10, 'c1', 200),
      rec('b3', T + 107_500, T + 107_510, 'c1', 200),
    ];
    const r = await analyze(records);
    expect(r.dataQuality.lateRecords).toBe(1);
    const c1 = r.clients.find((c) => c.key === 'c1');
    // b1 -> b2 -> b3 is one logical request with 2 retries; "old" is a logical request of its own
    expect(c1).toMatchObject({ attempts: 4, logicalRequests: 2, retries: 2, hedges: 0, maxAttempts: 3 });
    expect(r.totals.hedges).toBe(0);
  });

  it('an attempt late but overlapping the open chain is still a hedge', async () => {
    const records = [
      rec('a1', T + 100_000, T + 100_300, 'c1', 503),
      rec('other', T + 106_000, T + 106_010, 'c9', 200),
      // started before a1 began and ended while a1 was in flight
      rec('early', T + 99_900, T + 100_100, 'c1', 200),
    ];
    const r = await analyze(records);
    expect(r.dataQuality.lateRecords).toBe(1);
    expect(r.clients.find((c) => c.key === 'c1')).toMatchObject({ attempts: 2, logicalRequests: 1, hedges: 1 });
  });
});
