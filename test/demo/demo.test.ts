/**
 * `aftershock demo` end to end, shortened: the real CLI in-process (so it runs the current
 * sources), real message services, proxies, fleets and analysis on loopback, with the timeline
 * compressed to 9 s. The JSON must show the naive fleet amplifying far more than the careful one,
 * with the naive findings and none of them for the careful fleet.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';
import { readRecords, tempDir } from '../helpers.js';
import type { HeaderRecord } from '../../src/record/schema.js';
import type { Report } from '../../src/analysis/index.js';
import { formatComparison, type FleetSummary } from '../../src/demo/compare.js';
import type { DemoResult, FleetResult } from '../../src/demo/run-demo.js';

interface FleetJson {
  summary: FleetSummary;
  clients: { logical: number; attempts: number };
  service: { received: number };
  report: Report;
}


afterEach(() => {
  process.exitCode = undefined;
});

describe('aftershock demo', () => {
  it('replays a compressed outage: the naive fleet storms, the careful one does not', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const html = path.join(dir, 'demo.html');
    const record = path.join(dir, 'demo.ndjson');
    const run = await cli(['demo', '--duration', '9s', '--clients', '8', '--seed', '3', '--json', '--html', html, '--record', record]);
    expect(run.code ?? 0).toBe(0);

    const json = JSON.parse(run.stdout) as Omit<DemoResult, 'fleets'> & { fleets: Record<'naive' | 'careful', FleetJson> };
    expect(json.durationMs).toBe(9000);
    const { naive, careful } = json.fleets;

    // Same organic load on both sides...
    expect(Math.abs(naive.report.totals.logicalRequests - careful.report.totals.logicalRequests)).toBeLessThan(0.2 * careful.report.totals.logicalRequests);
    // ...very different offered load.
    expect(naive.report.totals.amplification).toBeGreaterThan(2 * careful.report.totals.amplification);
    expect(naive.report.totals.amplificationInFaults).toBeGreaterThanOrEqual(3);
    expect(careful.report.totals.amplification).toBeLessThan(1.3);
    expect(careful.report.totals.retryRatio).toBeLessThan(0.2);

    const codes = (r: Report): string[] => r.findings.map((f) => f.code);
    expect(naive.report.verdict).toBe('retry-storm');
    expect(codes(naive.report)).toEqual(expect.arrayContaining(['retry-storm', 'immediate-retries', 'retry-after-violated', 'unbounded-retries']));
    expect(naive.summary.backoff).toBe('immediate');
    expect(careful.report.verdict).toBe('ok');
    for (const code of ['retry-storm', 'immediate-retries', 'retry-after-violated', 'unbounded-retries', 'retry-budget-exceeded', 'sustained-amplification']) {
      expect(codes(careful.report)).not.toContain(code);
    }

    // The live view went to stderr (stdout carries the JSON only).
    expect(run.stderr).toMatch(/\] naive\s+organic/);
    expect(run.stderr).toContain(`HTML report: ${html}`);

    // One self-contained page with both fleets.
    const page = fs.readFileSync(html, 'utf8');
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('naive fleet: the full report');
    expect(page).toContain('careful fleet: the full report');
    expect(page).not.toMatch(/<script|<link|<iframe|\ssrc=|url\(/i); // nothing loaded from anywhere

    // The text comparison and its closing paragraph, from the same numbers.
    const result: DemoResult = { ...json, fleets: (['naive', 'careful'] as const).map((kind) => ({ kind, ...json.fleets[kind] }) as unknown as FleetResult) };
    const text = formatComparison(result);
    expect(text).toMatch(/verdict\s+RETRY STORM\s+ok/);
    expect(text).toMatch(/!!immediate-retries x8/);
    expect(text).toContain('The naive clients treated every failure the same way');
    const inFaults = naive.report.totals.amplificationInFaults as number;
    expect(text).toContain(`during the faults they sent ${inFaults.toFixed(inFaults >= 10 ? 1 : 2)}x their normal traffic`);
    const early = formatComparison({ ...result, aborted: true, fleets: result.fleets.map((f) => ({ ...f, summary: { ...f.summary, faultsEndedAt: null } })) });
    expect(early).toContain('The run was stopped before any fault was injected (the degrading phase starts at +2 s)');

    // The recording holds both proxies' headers and every exchange the analysis counted.
    const recs = readRecords(record);
    const headers = recs.filter((r): r is HeaderRecord => r.type === 'header');
    expect(headers.map((h) => h.session).sort()).toEqual(['demo-careful', 'demo-naive']);
    expect(recs.filter((r) => r.type === 'http')).toHaveLength(naive.report.totals.attempts + careful.report.totals.attempts);
  });

  it('refuses bad options with one line and exit status 2', async () => {
    const bad = await cli(['demo', '--clients', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--clients "0": give a whole number from 1 to 500/);
    const short = await cli(['demo', '--duration', '1s']);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/--duration "1s": give 3s to 10m/);
    const fleet = await cli(['demo', '--fleet', 'reckless']);
    expect(fleet.code).toBe(2);
  });
});
