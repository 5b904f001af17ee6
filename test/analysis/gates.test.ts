/**
 * --fail-on gates: finding codes, severities and comparisons; which held; malformed expressions
 * are ERR_GATE usage errors that say what is valid.
 */
import fc from 'fast-check';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AftershockError } from '../../src/errors.js';
import { analyzeFiles, evaluateGates, parseGate, type Report } from '../../src/analysis/index.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');
let storm: Report;
let clean: Report;
beforeAll(async () => {
  storm = await analyzeFiles([path.join(DIR, 'immediate-storm.ndjson')]);
  clean = await analyzeFiles([path.join(DIR, 'polling.ndjson')]);
});

describe('parseGate', () => {
  it('parses codes, severities and comparisons (with % and = as ==)', () => {
    expect(parseGate('retry-storm,unsafe-retry')).toEqual([
      { kind: 'finding', code: 'retry-storm', expr: 'retry-storm' },
      { kind: 'finding', code: 'unsafe-retry', expr: 'unsafe-retry' },
    ]);
    expect(parseGate('critical')).toEqual([{ kind: 'severity', severity: 'critical', expr: 'critical' }]);
    expect(parseGate('amplification>1.5')).toEqual([{ kind: 'metric', metric: 'amplification', op: '>', value: 1.5, expr: 'amplification>1.5' }]);
    expect(parseGate(' retryRatio > 20% ')[0]).toMatchObject({ metric: 'retryRatio', op: '>', value: 0.2 });
    expect(parseGate('maxAttempts>=5')[0]).toMatchObject({ op: '>=', value: 5 });
    expect(parseGate('retries=0')[0]).toMatchObject({ op: '==', value: 0 });
    expect(parseGate('findings!=0')[0]).toMatchObject({ op: '!=' });
    expect(parseGate('amplification<1.1')[0]).toMatchObject({ op: '<' });
    expect(parseGate('recoverySeconds<=30')[0]).toMatchObject({ op: '<=', value: 30 });
  });

  it.each([
    ['', /needs a condition/],
    ['retry-strom', /did you mean retry-storm/],
    ['amplfication>1.5', /unknown metric "amplfication" \(did you mean amplification\?\)/],
    ['amplification>>1.5', /write a comparison/],
    ['amplification>', /write a comparison/],
    ['>1.5', /write a comparison/],
    ['retry-storm,,unsafe-retry', /empty condition/],
    ['amplification>1.5x', /write a comparison/],
  ])('rejects %j with ERR_GATE', (expr, message) => {
    let err: unknown;
    try {
      parseGate(expr);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AftershockError);
    expect((err as AftershockError).code).toBe('ERR_GATE');
    expect((err as AftershockError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(message);
  });

  it('property: any metric comparison with a number parses back to its parts', () => {
    fc.assert(
      fc.property(fc.constantFrom('amplification', 'retryRatio', 'maxAttempts', 'retries'), fc.constantFrom('>', '>=', '<', '<=', '==', '!='), fc.double({ min: 0, max: 1000, noNaN: true }), (metric, op, v) => {
        const value = Math.round(v * 100) / 100;
        const [g] = parseGate(`${metric}${op}${value}`);
        return g?.kind === 'metric' && g.metric === metric && g.op === op && g.value === value;
      }),
    );
  });
});

describe('evaluateGates', () => {
  it('returns the conditions that held, with the value that made them hold', () => {
    const held = evaluateGates(storm, parseGate('retry-storm,unsafe-retry,amplification>1.5,maxAttempts>=5,retryRatio>20%,retries==0'));
    expect(held.map((h) => h.expr)).toEqual(['retry-storm', 'amplification>1.5', 'maxAttempts>=5', 'retryRatio>20%']);
    expect(held.every((h) => h.held)).toBe(true);
    expect(held.find((h) => h.expr === 'maxAttempts>=5')?.actual).toBe(5);
    expect(held[0]?.detail).toMatch(/retry-storm held: 1 finding/);
  });

  it('a finding gate names at most three of its findings, and says when there are more', () => {
    const many = { ...storm, findings: ['a', 'b', 'c', 'd', 'e'].map((c) => ({ ...(storm.findings.find((f) => f.code === 'immediate-retries') ?? storm.findings[0]), client: `immediate-${c}` })) } as Report;
    const [g] = evaluateGates(many, parseGate(many.findings[0]?.code ?? 'immediate-retries'));
    expect(g?.detail).toMatch(/held: 5 findings \(immediate-a, immediate-b, immediate-c, …\)$/);
    const [one] = evaluateGates({ ...many, findings: many.findings.slice(0, 3) }, parseGate(many.findings[0]?.code ?? 'immediate-retries'));
    expect(one?.detail).toMatch(/held: 3 findings \(immediate-a, immediate-b, immediate-c\)$/);
  });

  it('a clean recording holds nothing', () => {
    expect(evaluateGates(clean, parseGate('retry-storm,critical,warning,amplification>1.1,retryRatio>10%'))).toEqual([]);
    expect(evaluateGates(clean, parseGate('retries==0'))).toHaveLength(1);
  });

  it('severity gates hold for that severity or worse', () => {
    expect(evaluateGates(storm, parseGate('critical'))).toHaveLength(1);
    expect(evaluateGates(storm, parseGate('info'))[0]?.actual).toBe(storm.findings.length);
  });

  it('accepts one gate, a list, or several lists', () => {
    const [a] = parseGate('retry-storm');
    expect(evaluateGates(storm, a!)).toHaveLength(1);
    expect(evaluateGates(storm, [parseGate('retry-storm'), parseGate('maxAttempts>4')])).toHaveLength(2);
  });

  it('recoverySeconds counts a window that never recovered as infinite', async () => {
    const sustained = await analyzeFiles([path.join(DIR, 'sustained.ndjson')]);
    expect(evaluateGates(sustained, parseGate('recoverySeconds>10'))).toHaveLength(1);
    expect(evaluateGates(clean, parseGate('recoverySeconds>10'))).toHaveLength(0);
  });
});

describe('gates on numbers a report cannot measure', () => {
  it('recoverySeconds with every window n/a (no traffic after it) is not measurable, not 0', () => {
    const base = { totals: { attempts: 1 }, faultWindows: [{ recoverySeconds: null, recoveryNote: 'no traffic after the window', herd: { detected: false } }] } as unknown as Report;
    const [r] = evaluateGates(base, parseGate('recoverySeconds<1'), { all: true });
    expect(r?.held).toBe(false);
    expect(r?.detail).toMatch(/not measurable/);
  });
});

describe('gates and files from the library, as the CLI takes them', () => {
  it('a --fail-on string is parsed (it was read character by character, and a storm passed), in a list too; anything else is refused', () => {
    expect(evaluateGates(storm, 'retry-storm').map((g) => g.expr)).toEqual(['retry-storm']);
    expect(evaluateGates(storm, ['retry-storm', 'amplification>1.05']).map((g) => g.expr)).toEqual(['retry-storm', 'amplification>1.05']);
    expect(() => evaluateGates(storm, [{ nope: 1 }] as unknown as string[])).toThrow(/not a gate/);
  });

  it('gates over a report of no exchange throw ERR_RECORDING_READ, as `analyze --fail-on` exits 2 (nothing judged is no pass)', async () => {
    const empty = await analyzeFiles([path.join(DIR, '..', '..', '..', 'package.json')]);
    expect(empty.totals.attempts).toBe(0);
    expect(() => evaluateGates(empty, parseGate('critical'))).toThrow(/holds no exchange, so the gates have nothing to judge/);
    expect(evaluateGates(empty, [])).toEqual([]);
  });

  it('analyzeFiles takes one path as a string, and refuses an empty list', async () => {
    const one = await analyzeFiles(path.join(DIR, 'polling.ndjson'));
    expect(one).toEqual(clean);
    await expect(analyzeFiles([])).rejects.toThrow(/give at least one recording/);
  });

  it('the package loads with require() too (CommonJS test runners), not only import', async () => {
    const { createRequire } = await import('node:module');
    const lib = createRequire(import.meta.url)('aftershock') as { startProxy?: unknown; analyzeFiles?: unknown };
    expect(typeof lib.startProxy).toBe('function');
    expect(typeof lib.analyzeFiles).toBe('function');
  });
});

describe('a client key header no record carries', () => {
  it('is said in limits (a typo grouped clients as recorded, silently)', async () => {
    const r = await analyzeFiles([path.join(DIR, 'polling.ndjson')], { clientKeyHeader: 'x-clinet-id' });
    expect(r.limits.join(' ')).toMatch(/No record carries the client key header x-clinet-id/);
    expect(clean.limits.join(' ')).not.toMatch(/client key header/);
  });
});
