/**
 * Two inputs that hold the same records (a copy of a recording, a copy taken mid-run next to the
 * whole file, a gzip of it): each record counts once, and the report says how many repeats it
 * dropped. Counted twice, every copied record read as a hedge and the amplification doubled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, formatReport, mergeRecordings } from '../../src/analysis/index.js';

const FIXTURE = path.join(import.meta.dirname, '..', 'fixtures', 'analysis', 'retry-after.ndjson');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-overlap-'));
  dirs.push(d);
  return d;
}

describe('overlapping inputs', () => {
  it('a copy of a recording analysed with it gives the report of the recording alone, and says it dropped the repeats', async () => {
    const d = tmp();
    const copy = path.join(d, 'copy.ndjson');
    fs.copyFileSync(FIXTURE, copy);
    const gz = path.join(d, 'copy.ndjson.gz');
    fs.writeFileSync(gz, gzipSync(fs.readFileSync(FIXTURE)));
    const alone = await analyzeFiles([FIXTURE]);
    const exchanges = alone.totals.attempts;
    for (const other of [copy, gz]) {
      const both = await analyzeFiles([FIXTURE, other]);
      expect(both.totals).toEqual(alone.totals);
      expect(both.findings.map((f) => f.code)).toEqual(alone.findings.map((f) => f.code));
      expect(both.dataQuality.duplicateRecords).toBe(exchanges);
      expect(both.confidence.reasons.join(' ')).toMatch(new RegExp(`${exchanges} records appeared in more than one input`));
      expect(formatReport(both, 'text')).toMatch(/appeared in more than one input/);
    }
    expect(alone.dataQuality.duplicateRecords).toBe(0);
  });

  it('a mark or an event two inputs both hold counts once too', async () => {
    const d = tmp();
    const rec = path.join(d, 'rec.ndjson');
    const lines = fs.readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l !== '');
    const first = JSON.parse(lines[1] as string) as { ts: number };
    lines.splice(2, 0, JSON.stringify({ v: 1, type: 'mark', ts: first.ts + 1, label: 'phase one' }), JSON.stringify({ v: 1, type: 'event', ts: first.ts + 2, event: 'reset', detail: {} }));
    fs.writeFileSync(rec, lines.join('\n') + '\n');
    const copy = path.join(d, 'copy.ndjson');
    fs.copyFileSync(rec, copy);
    const both = await analyzeFiles([rec, copy]);
    expect(both.marks.map((m) => m.label)).toEqual(['phase one']);
    expect(both.events.filter((e) => e.event === 'reset')).toHaveLength(1);
  });

  it('a copy taken mid-run next to the whole file: the shared part counts once', async () => {
    const d = tmp();
    const lines = fs.readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l !== '');
    const half = path.join(d, 'half.ndjson');
    fs.writeFileSync(half, lines.slice(0, Math.floor(lines.length / 2)).join('\n') + '\n');
    const alone = await analyzeFiles([FIXTURE]);
    const both = await analyzeFiles([half, FIXTURE]);
    expect(both.totals).toEqual(alone.totals);
    expect(both.dataQuality.duplicateRecords).toBeGreaterThan(0);
  });

  it('mergeRecordings yields each exchange once', async () => {
    const d = tmp();
    const copy = path.join(d, 'copy.ndjson');
    fs.copyFileSync(FIXTURE, copy);
    const ids: string[] = [];
    for await (const { record } of mergeRecordings([FIXTURE, copy])) if (record.type === 'http' || record.type === 'ws') ids.push(record.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
