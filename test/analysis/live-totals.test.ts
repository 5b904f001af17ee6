/**
 * The few live numbers /metrics exports (attempts, logical requests, retries, retry ratio,
 * amplification) come from `liveTotals()`, which reads the committed totals and finishes only the
 * open threads' own counts: the same numbers as a whole report's totals, at any point of a
 * recording, without building the report (which evaluated every client on every scrape).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAnalyzer } from '../../src/analysis/index.js';
import type { AnyRecord } from '../../src/record/schema.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');

function records(name: string): AnyRecord[] {
  return fs
    .readFileSync(path.join(DIR, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as AnyRecord];
      } catch {
        return []; // the corrupt fixture's bad lines
      }
    });
}

describe('liveTotals()', () => {
  const fixtures = fs.readdirSync(DIR).filter((f) => f.endsWith('.ndjson'));

  it.each(fixtures)('%s: equals the report totals at every tenth of the recording and at its end', (name) => {
    const rs = records(name);
    const a = createAnalyzer({});
    const step = Math.max(1, Math.floor(rs.length / 10));
    let checked = 0;
    rs.forEach((r, i) => {
      a.ingest(r);
      if (i % step !== 0 && i !== rs.length - 1) return;
      const t = a.report().totals;
      expect(a.liveTotals()).toEqual({ attempts: t.attempts, logicalRequests: t.logicalRequests, retries: t.retries, retryRatio: t.retryRatio, amplification: t.amplification });
      checked++;
    });
    expect(checked).toBeGreaterThan(1);
  });

  it('before any record: zeros, as the report says', () => {
    expect(createAnalyzer({}).liveTotals()).toEqual({ attempts: 0, logicalRequests: 0, retries: 0, retryRatio: 0, amplification: 0 });
  });
});
