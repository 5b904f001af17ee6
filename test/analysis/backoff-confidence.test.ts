/**
 * Backoff confidence (spec §4: "needs 2 gaps; 3 for high confidence"): two gaps cannot tell linear
 * from exponential, so a class that rests on chains of two gaps is `medium`, however many such
 * chains agree; chains of three or more gaps can make it `high`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer, type Report } from '../../src/analysis/index.js';
import { decideBackoff } from '../../src/analysis/report.js';
import type { AnyRecord } from '../../src/record/schema.js';

const T = Date.UTC(2025, 0, 15, 12, 0, 0);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** `chains` logical requests of one client: 503s with these gaps (end to start) between them, then a 200. */
function recording(chains: number, gaps: number[]): AnyRecord[] {
  const out: AnyRecord[] = [];
  for (let k = 0; k < chains; k++) {
    let t = T + k * 60_000;
    for (let i = 0; i <= gaps.length; i++) {
      const last = i === gaps.length;
      out.push({ v: 1, type: 'http', id: `x${k}-${i}`, ts: t, end: t + 10, client: 'c1', path: '/a', status: last ? 200 : 503, headers: {}, userAgent: 'okhttp/4.9.0' } as unknown as AnyRecord);
      t += 10 + (gaps[i] ?? 0);
    }
  }
  return out;
}

async function analyze(records: AnyRecord[]): Promise<Report> {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-backoff-'));
  dirs.push(d);
  const file = path.join(d, 'rec.ndjson');
  fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const live = createAnalyzer();
  for (const r of records) live.ingest(r);
  const offline = await analyzeFiles([file]);
  expect(live.report()).toEqual(offline);
  return offline;
}

describe('backoff confidence follows the gaps per chain', () => {
  it('three chains of 503, 100 ms, 503, 200 ms, 200: exponential with medium confidence', async () => {
    const r = await analyze(recording(3, [100, 200]));
    expect(r.clients[0]?.backoffDetail).toMatchObject({ class: 'exponential', confidence: 'medium', basis: 'chains', chains: 3 });
    expect(r.clientTypes[0]?.backoffDetail).toMatchObject({ class: 'exponential', confidence: 'medium' });
  });

  it('three chains of three doubling gaps: exponential with high confidence', async () => {
    const r = await analyze(recording(3, [100, 200, 400]));
    expect(r.clients[0]?.backoffDetail).toMatchObject({ class: 'exponential', confidence: 'high', basis: 'chains', chains: 3 });
    expect(r.clientTypes[0]?.backoffDetail).toMatchObject({ class: 'exponential', confidence: 'high' });
  });

  it('many chains: high needs at least 3 chains of 3+ gaps behind the class', () => {
    const none = { immediate: 0, constant: 0, linear: 0, exponential: 0, irregular: 0, 'insufficient-data': 0 };
    expect(decideBackoff({ ...none, exponential: 10 }, [100, 200], 0, 20, none).confidence).toBe('medium');
    expect(decideBackoff({ ...none, exponential: 10 }, [100, 200, 400], 0, 22, { ...none, exponential: 2 }).confidence).toBe('medium');
    expect(decideBackoff({ ...none, exponential: 10 }, [100, 200, 400], 0, 23, { ...none, exponential: 3 }).confidence).toBe('high');
    // the deep chains must agree as well: 3 exponential of 10 deep ones is no high-confidence class
    expect(decideBackoff({ ...none, exponential: 10, irregular: 1 }, [100, 200, 400], 0, 40, { ...none, exponential: 3, irregular: 7 }).confidence).toBe('medium');
  });
});
