/**
 * CI gates over a report: `--fail-on retry-storm,unsafe-retry` (finding codes), `--fail-on critical`
 * (any finding of that severity or worse), `--fail-on 'amplification>1.5'` or `retryRatio>20%` or
 * `maxAttempts>=5` (comparisons on report metrics). A list holds when any of its conditions holds.
 * A malformed expression is a usage error (ERR_GATE) that says what would have been valid.
 */
import { AftershockError } from '../errors.js';
import { FINDING_CODES } from './findings.js';
import { faultsAlpha } from './report.js';
import type { Finding, FindingCode, Report, Severity } from './types.js';
import { closestWord } from '../suggest.js';

export type GateOp = '>' | '>=' | '<' | '<=' | '==' | '!=';

/** Numbers a gate can compare, read from a report. `null` means "not measurable here". */
const METRICS: Record<string, (r: Report) => number | null> = {
  attempts: (r) => r.totals.attempts,
  logicalRequests: (r) => r.totals.logicalRequests,
  retries: (r) => r.totals.retries,
  hedges: (r) => r.totals.hedges,
  // Attempts per logical request: at least 1 whenever there is one, not measurable before.
  amplification: (r) => (r.totals.logicalRequests === 0 ? null : r.totals.amplification),
  // Fault windows in which every attempt was a retry: offered / 0, unbounded.
  amplificationInFaults: (r) => faultsAlpha(r),
  amplificationBaseline: (r) => r.totals.amplificationBaseline,
  retryRatio: (r) => r.totals.retryRatio,
  clients: (r) => r.totals.clients,
  failures: (r) => r.totals.failures,
  injectedFaults: (r) => r.totals.injectedFaults,
  injectedFailures: (r) => r.totals.injectedFailures,
  succeeded: (r) => r.totals.succeeded,
  gaveUp: (r) => r.totals.gaveUp,
  maxAttempts: (r) => r.totals.maxAttempts,
  meanAttempts: (r) => r.totals.attemptsPerRequest.mean,
  p95Attempts: (r) => r.totals.attemptsPerRequest.p95,
  unboundedChains: (r) => r.totals.unboundedChains,
  unsafeRetries: (r) => r.totals.unsafeRetries,
  duplicateSubmissions: (r) => r.totals.duplicateSubmissions,
  nonRetryableRetries: (r) => r.totals.nonRetryableRetries,
  idempotencyKeyReused: (r) => r.totals.idempotencyKeyReused,
  retryAfterViolations: (r) => r.totals.retryAfter.violates,
  findings: (r) => r.findings.length,
  criticalFindings: (r) => r.findings.filter((f) => f.severity === 'critical').length,
  warningFindings: (r) => r.findings.filter((f) => f.severity === 'warning').length,
  herds: (r) => r.faultWindows.filter((w) => w.herd.detected).length,
  /** The slowest recovery over all fault windows; a window that never recovered counts as infinite. */
  recoverySeconds: (r) => {
    // Windows with no recovery to measure (nothing came after them) do not count; none measured: null.
    let max: number | null = null;
    for (const w of r.faultWindows) {
      if (w.recoverySeconds === null) {
        if (w.recoveryNote === 'the data ended first') return Number.POSITIVE_INFINITY;
      } else max = Math.max(max ?? 0, w.recoverySeconds);
    }
    return max;
  },
  badLines: (r) => r.dataQuality.badLines.count,
  recordsLost: (r) => r.dataQuality.recordsLost ?? 0,
};

/** The metric names a gate accepts. */
export const GATE_METRICS: readonly string[] = Object.keys(METRICS);

export type Gate =
  | { readonly kind: 'finding'; readonly code: FindingCode; readonly expr: string }
  | { readonly kind: 'severity'; readonly severity: Severity; readonly expr: string }
  | { readonly kind: 'metric'; readonly metric: string; readonly op: GateOp; readonly value: number; readonly expr: string };

/** A condition, whether it held, and the value that decided it. */
export interface GateResult {
  readonly gate: Gate;
  readonly expr: string;
  readonly held: boolean;
  readonly actual: number | string | null;
  /** One line for a person: `amplification>1.5 held: amplification is 2.31` (or `did not hold: ...`). */
  readonly detail: string;
}

const COMPARISON = /^([A-Za-z][A-Za-z0-9]*)\s*(>=|<=|==|!=|=|>|<)\s*(-?\d+(?:\.\d+)?)(%?)$/;
const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info'];

function closest(word: string, options: readonly string[]): string | null {
  return closestWord(word, options, Math.max(2, Math.floor(word.length / 3)));
}

function parseOne(raw: string, whole: string): Gate {
  const expr = raw.trim();
  if (expr === '') throw new AftershockError('ERR_GATE', `--fail-on ${JSON.stringify(whole)}: empty condition (a stray comma?)`);
  if (/[<>=!]/.test(expr)) {
    const m = COMPARISON.exec(expr);
    if (m === null) {
      throw new AftershockError(
        'ERR_GATE',
        `--fail-on ${JSON.stringify(expr)}: write a comparison as <metric><op><number>, e.g. amplification>1.5, retryRatio>20% or maxAttempts>=5 (ops: > >= < <= == !=)`,
      );
    }
    const metric = m[1] as string;
    if (METRICS[metric] === undefined) {
      const hint = closest(metric, GATE_METRICS);
      throw new AftershockError('ERR_GATE', `--fail-on ${JSON.stringify(expr)}: unknown metric ${JSON.stringify(metric)}${hint === null ? '' : ` (did you mean ${hint}?)`}; metrics: ${GATE_METRICS.join(', ')}`);
    }
    const op = (m[2] === '=' ? '==' : m[2]) as GateOp;
    const value = Number(m[3]) / (m[4] === '%' ? 100 : 1);
    return { kind: 'metric', metric, op, value, expr };
  }
  if ((SEVERITIES as readonly string[]).includes(expr)) return { kind: 'severity', severity: expr as Severity, expr };
  if ((FINDING_CODES as readonly string[]).includes(expr)) return { kind: 'finding', code: expr as FindingCode, expr };
  const hint = closest(expr, [...FINDING_CODES, ...SEVERITIES]);
  throw new AftershockError(
    'ERR_GATE',
    `--fail-on ${JSON.stringify(expr)}: not a finding code, a severity or a comparison${hint === null ? '' : ` (did you mean ${hint}?)`}; codes: ${FINDING_CODES.join(', ')}; or e.g. amplification>1.5`,
  );
}

/**
 * Parses a `--fail-on` list: comma-separated finding codes, severities and comparisons.
 * Throws AftershockError('ERR_GATE') with a message that says what is valid.
 *
 * @example parseGate('retry-storm,amplification>1.5') // two gates
 * @example parseGate('retryRatio>20%')[0] // { kind: 'metric', metric: 'retryRatio', op: '>', value: 0.2, ... }
 */
export function parseGate(expr: string): Gate[] {
  if (typeof expr !== 'string' || expr.trim() === '') {
    throw new AftershockError('ERR_GATE', '--fail-on needs a condition: finding codes (retry-storm,unsafe-retry), a severity (critical) or a comparison (amplification>1.5)');
  }
  return expr.split(',').map((part) => parseOne(part, expr));
}

function compare(a: number, op: GateOp, b: number): boolean {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

const SEVERITY_ORDER: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

type GateInput = string | Gate | ReadonlyArray<string | Gate | readonly Gate[]>;

function flatten(g: GateInput): Gate[] {
  // A string is what `--fail-on` takes (it was read character by character: no gate, a pass);
  // a list may hold strings too (repeated --fail-on).
  if (typeof g === 'string') return parseGate(g);
  const one = (x: unknown): Gate[] => {
    if (typeof x === 'string') return parseGate(x);
    if (Array.isArray(x)) return x.flatMap(one);
    const kind = (x as { kind?: unknown } | null)?.kind;
    if (kind !== 'finding' && kind !== 'severity' && kind !== 'metric') {
      throw new AftershockError('ERR_GATE', `not a gate: ${JSON.stringify(x)}; give a --fail-on string or what parseGate returns`);
    }
    return [x as Gate];
  };
  return one(g);
}

/**
 * Whether a finding is one a gate is about: a finding gate selects its code, a severity gate every
 * finding of that severity or worse; a comparison selects no finding.
 *
 * @example gateSelects(parseGate('critical')[0], finding) // true for a critical finding
 */
export function gateSelects(gate: Gate, finding: Finding): boolean {
  if (gate.kind === 'finding') return finding.code === gate.code;
  if (gate.kind === 'severity') return SEVERITY_ORDER[finding.severity] <= SEVERITY_ORDER[gate.severity];
  return false;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One gate against a report, held or not, with the line that says why. */
function checkGate(report: Report, gate: Gate): GateResult {
  if (gate.kind === 'metric') {
    const actual = (METRICS[gate.metric] as (r: Report) => number | null)(report);
    const held = actual !== null && compare(actual, gate.op, gate.value);
    const unbounded = gate.metric === 'amplificationInFaults' ? 'unbounded (every attempt in the fault windows was a retry)' : 'never (not recovered)';
    const shown = actual === null ? 'not measurable in this report' : `${Number.isFinite(actual) ? actual : unbounded}`;
    return { gate, expr: gate.expr, held, actual, detail: `${gate.expr} ${held ? 'held' : 'did not hold'}: ${gate.metric} is ${shown}` };
  }
  const hits = report.findings.filter((f) => gateSelects(gate, f));
  const held = hits.length > 0;
  if (gate.kind === 'finding') {
    const about = hits
      .slice(0, 3)
      .map((f) => f.client ?? f.route ?? f.userAgent)
      .filter((x): x is string => x !== undefined);
    const more = hits.length > 3 && about.length > 0 ? ', …' : '';
    const detail = held ? `${gate.expr} held: ${plural(hits.length, 'finding')}${about.length > 0 ? ` (${about.join(', ')}${more})` : ''}` : `${gate.expr} did not hold: no ${gate.code} finding`;
    return { gate, expr: gate.expr, held, actual: hits.length, detail };
  }
  const detail = held
    ? `${gate.expr} held: ${plural(hits.length, 'finding')} of severity ${gate.severity} or worse (${[...new Set(hits.map((f) => f.code))].join(', ')})`
    : `${gate.expr} did not hold: no finding of severity ${gate.severity} or worse`;
  return { gate, expr: gate.expr, held, actual: hits.length, detail };
}

/**
 * Evaluates gates against a report and returns the conditions that HELD (empty: the build passes).
 * Accepts a `--fail-on` string, one gate, a list, or lists of lists (several `--fail-on` options).
 * Throws ERR_RECORDING_READ when the report holds no exchange (nothing to judge is no pass). With `{ all: true }`
 * it returns every gate, in order, each with `held` and a `detail` that says why it held or not
 * (what a JUnit report with one test case per gate needs).
 *
 * @example
 * const held = evaluateGates(report, parseGate('retry-storm,amplification>1.5'));
 * if (held.length > 0) process.exitCode = 1;
 * @example
 * const all = evaluateGates(report, gates, { all: true });
 * fs.writeFileSync('retries.xml', formatReport(report, 'junit', { gates: all }));
 */
export function evaluateGates(report: Report, gates: GateInput, options: { all?: boolean } = {}): GateResult[] {
  const list = flatten(gates);
  // Gates over no exchange at all judge nothing: a CI job whose clients never reached the proxy
  // (a wrong port, a proxy that did not start, a file that is no recording) must not go green.
  if (list.length > 0 && report.totals.attempts === 0) {
    throw new AftershockError('ERR_RECORDING_READ', 'the report holds no exchange, so the gates have nothing to judge: did the clients reach the proxy?');
  }
  const results = list.map((gate) => checkGate(report, gate));
  return options.all === true ? results : results.filter((r) => r.held);
}
