/**
 * The demo's closing words follow the run's own numbers: a metastable failure is named only when
 * the analysis called the amplification sustained and the clients were still short of what they
 * wanted; a run that ended right after the faults says it is too soon to tell.
 */
import { describe, expect, it } from 'vitest';
import { closingParagraph, formatComparison, summarizeFleet, unseenAttempts, type FleetSummary } from '../../src/demo/compare.js';
import type { DemoResult } from '../../src/demo/run-demo.js';
import { createAnalyzer, type Finding, type Report } from '../../src/analysis/index.js';

function naive(over: Partial<FleetSummary>): FleetSummary {
  return {
    verdict: 'retry-storm',
    logicalRequests: 100,
    attempts: 400,
    retries: 300,
    amplification: 4,
    amplificationInFaults: 8,
    amplificationBaseline: 1,
    retryRatio: 0.75,
    attemptsPerRequest: { mean: 4, p95: 8, max: 10 },
    backoff: 'immediate',
    jitter: 'none',
    retryAfter: 'ignored',
    faultsEndedAt: 40,
    recoverySeconds: null,
    recoveryNote: 'the data ended first',
    afterFaults: { seconds: 1, organicPerSecond: 32, offeredPerSecond: 36, goodputPerSecond: 36, amplification: 1.13 },
    findings: [{ code: 'immediate-retries', severity: 'critical', count: 5 }],
    ...over,
  };
}

function result(summary: FleetSummary, over: Partial<DemoResult> = {}, confidence = 'medium'): DemoResult {
  return {
    profile: 'signal-2021',
    durationMs: 41_000,
    scale: 1,
    phases: [],
    clientsPerFleet: 5,
    intervalMs: 500,
    serviceCapacity: 40,
    seed: 2,
    aborted: false,
    fleets: [{ kind: 'naive', summary, report: { confidence: { level: confidence } } } as unknown as DemoResult['fleets'][number]],
    htmlPath: null,
    recordPath: null,
    ...over,
  };
}

describe('the demo closing paragraph', () => {
  it('a run that ended a second after the faults, with more goodput than wanted, is too soon to tell, not a metastable failure', () => {
    const text = closingParagraph(result(naive({})));
    expect(text).not.toMatch(/metastable/);
    expect(text).toMatch(/too soon to tell/);
  });

  it('names the metastable failure when the analysis called it sustained and the clients were still short', () => {
    const text = closingParagraph(
      result(
        naive({
          afterFaults: { seconds: 20, organicPerSecond: 32, offeredPerSecond: 300, goodputPerSecond: 12, amplification: 9.4 },
          findings: [{ code: 'sustained-amplification', severity: 'critical', count: 1 }],
        }),
      ),
    );
    expect(text).toMatch(/That is a metastable failure/);
    expect(text).toMatch(/got 12 of their 32 requests a second through/);
  });
});

describe('the comparison table', () => {
  it('counts a per-client finding by its clients (not adding the client type\'s finding of the same code), and shows the confidence', () => {
    const base = createAnalyzer({}).report();
    const f = (code: string, extra: Partial<Finding>): Finding => ({ code, severity: 'warning', message: '', advice: '', evidence: {}, ...extra }) as Finding;
    const findings = [
      ...Array.from({ length: 3 }, (_, i) => f('retry-budget-exceeded', { client: `c${i}` })),
      f('retry-budget-exceeded', { evidence: { more: 17 } }),
      f('retry-budget-exceeded', { userAgent: 'naive' }),
      f('herd', {}),
      f('herd', {}),
    ];
    const summary = summarizeFleet({ ...base, findings } as Report);
    expect(summary.findings).toEqual([
      { code: 'retry-budget-exceeded', severity: 'warning', count: 20 },
      { code: 'herd', severity: 'warning', count: 2 },
    ]);
    const text = formatComparison(result(naive({}), {}, 'low'));
    expect(text).toMatch(/confidence of the analysis\s+low/);
  });

  it('a run stopped during the outage says the faults were still on, not that they ended', () => {
    const stopped = formatComparison(result(naive({ afterFaults: { seconds: 0, organicPerSecond: 0, offeredPerSecond: 0, goodputPerSecond: 0, amplification: null } }), { aborted: true }));
    expect(stopped).toMatch(/faults ended at\s+still injecting when stopped \(\+40 s\)/);
    expect(formatComparison(result(naive({})))).toMatch(/faults ended at\s+\+40 s/);
  });

  it('rates after the faults are per second of data: the last second, cut by the end of the run, counts for what it covers', () => {
    // 20 new requests a second; the faults end at 10 s; the data ends at 12.5 s (bins 10, 11, 12).
    const base = createAnalyzer({}).report();
    const bin = (t: number, n: number) => ({ t: t * 1000, offered: n, organic: n, retries: 0, hedges: 0, goodput: n, errors: 0, faults: 0 });
    const report = {
      ...base,
      range: { ...base.range, start: 0, origin: 0, end: 12_500 },
      faultWindows: [{ rule: 'f', start: 5000, end: 10_000, recoverySeconds: 0 }],
      timeline: [bin(9, 20), bin(10, 20), bin(11, 20), bin(12, 10)],
    } as unknown as Report;
    const after = summarizeFleet(report).afterFaults;
    expect(after?.seconds).toBe(2.5);
    expect(after?.organicPerSecond).toBe(20);
    expect(after?.goodputPerSecond).toBe(20);
    expect(formatComparison(result(naive({ afterFaults: after })))).toMatch(/goodput after the faults\s+20\/s \(new requests 20\/s\)/);
  });

  it('says so when a fleet\'s clients sent clearly more attempts than its proxy recorded (a saturated demo process), and not when they agree', () => {
    const fleet = (sent: number, seen: number) =>
      ({ kind: 'naive', summary: naive({}), clients: { attempts: sent }, report: { confidence: { level: 'medium' }, totals: { attempts: seen } } }) as unknown as DemoResult['fleets'][number];
    expect(unseenAttempts(result(naive({}), { fleets: [fleet(1000, 990)] }))).toBeNull();
    const text = closingParagraph(result(naive({}), { clientsPerFleet: 200, fleets: [fleet(38_780, 28_321)] }));
    expect(text).toMatch(/Not every attempt reached its proxy: the naive clients sent 38780 attempts and their proxy recorded 28321\. .* with 200 clients per fleet it was saturated/);
  });
});
