/**
 * The report for a person at a terminal: the verdict on top, the numbers that justify it, the worst
 * clients, then confidence and limits at the bottom. Readable in ten seconds; colour only when asked
 * (the CLI asks on a TTY unless NO_COLOR is set).
 */
import type { Report, Severity } from '../types.js';
import type { GateResult } from '../gates.js';
import { alphaText, faultsAlpha, windowAlpha } from '../report.js';
import { recoveryText, stripControls } from './escape.js';

export interface TextOptions {
  color?: boolean;
  /** Rows per table (clients, findings). Default 10. */
  rows?: number;
  /** The outcome of every `--fail-on` gate: shown under the verdict, each with why it held or not. */
  gates?: readonly GateResult[];
}

const ANSI = { red: '\u001b[31m', green: '\u001b[32m', yellow: '\u001b[33m', dim: '\u001b[2m', bold: '\u001b[1m', reset: '\u001b[0m' };

/** Display width of a string (code points; good enough for the ASCII-heavy values of a report). */
function width(s: string): number {
  return [...s].length;
}

function fit(s: string, w: number): string {
  const clean = stripControls(s);
  const cps = [...clean];
  if (cps.length <= w) return clean + ' '.repeat(w - cps.length);
  return cps.slice(0, Math.max(0, w - 1)).join('') + '…';
}

function right(s: string, w: number): string {
  return width(s) >= w ? s : ' '.repeat(w - width(s)) + s;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function num(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

/** A table: header row then rows; numeric columns right-aligned. */
function table(head: string[], rows: string[][], widths: number[], numeric: boolean[]): string[] {
  const line = (cells: string[]): string =>
    '  ' +
    cells
      .map((c, i) => (numeric[i] === true ? right(stripControls(c), widths[i] as number) : fit(c, widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/**
 * Formats a report as plain text.
 *
 * @example formatText(report, { color: process.stdout.isTTY })
 */
export function formatText(report: Report, options: TextOptions = {}): string {
  const c = options.color === true ? ANSI : { red: '', green: '', yellow: '', dim: '', bold: '', reset: '' };
  const rows = options.rows ?? 10;
  const out: string[] = [];
  const t = report.totals;
  const storm = report.verdict === 'retry-storm';
  out.push(`${c.bold}aftershock retry analysis: ${storm ? `${c.red}RETRY STORM` : `${c.green}OK`}${c.reset}`);
  if (report.verdictReasons.length > 0) out.push(`  because: ${stripControls(report.verdictReasons.join('; '))}`);
  if (options.gates !== undefined && options.gates.length > 0) {
    const held = options.gates.filter((g) => g.held).length;
    out.push(`  ${held > 0 ? `${c.red}gates (--fail-on): ${held} of ${options.gates.length} held: FAIL` : `${c.green}gates (--fail-on): none of ${options.gates.length} held: pass`}${c.reset}`);
    for (const g of options.gates) out.push(`    ${g.held ? 'x' : 'ok'} ${stripControls(g.detail)}`);
  }
  const where = [
    report.session === null ? null : `session ${report.session}`,
    report.target === null ? null : `target ${report.target}`,
    `${num(report.range.seconds, 1)} s`,
    `${t.clients} client${t.clients === 1 ? '' : 's'}`,
  ].filter((x): x is string => x !== null);
  out.push(`  ${stripControls(where.join(' · '))}`);
  out.push('');
  out.push(
    `  attempts ${t.attempts}  logical requests ${t.logicalRequests}  retries ${t.retries} (${pct(t.retryRatio)})  hedges ${t.hedges}`,
  );
  out.push(
    `  amplification ${t.logicalRequests === 0 ? 'n/a' : num(t.amplification)} overall, ${alphaText(faultsAlpha(report), num)} in fault windows, ${num(t.amplificationBaseline)} baseline  ·  attempts/request mean ${num(t.attemptsPerRequest.mean)} p95 ${t.attemptsPerRequest.p95} max ${t.maxAttempts}`,
  );
  out.push(`  failures ${t.failures} (${t.injectedFailures} injected by aftershock, ${t.failures - t.injectedFailures} not injected: the upstream's or the network's own)  ·  exchanges with an injected fault ${t.injectedFaults}`);
  const extra: string[] = [];
  if (t.unboundedChains > 0) extra.push(`unbounded ${t.unboundedChains}`);
  if (t.unsafeRetries > 0) extra.push(`unsafe retries ${t.unsafeRetries}`);
  if (t.duplicateSubmissions > 0) extra.push(`duplicate submissions ${t.duplicateSubmissions}`);
  if (t.nonRetryableRetries > 0) extra.push(`retries after non-retryable ${t.nonRetryableRetries}`);
  const ra = t.retryAfter;
  if (ra.compliant + ra.violates + ra.late > 0) extra.push(`Retry-After compliant ${ra.compliant} / early ${ra.violates} / late ${ra.late}`);
  if (extra.length > 0) out.push(`  ${extra.join('  ·  ')}`);

  const sevLabel = (s: Severity): string => (s === 'critical' ? `${c.red}CRIT${c.reset}` : s === 'warning' ? `${c.yellow}WARN${c.reset}` : `${c.dim}info${c.reset}`);
  out.push('');
  out.push(`${c.bold}FINDINGS${c.reset} (${report.findings.length})`);
  if (report.findings.length === 0) out.push('  none');
  const shown = report.findings.slice(0, Math.max(rows, 12));
  for (const f of shown) out.push(`  ${sevLabel(f.severity)}  ${fit(f.code, 26)} ${stripControls(f.message)}`);
  if (report.findings.length > shown.length) out.push(`  … ${report.findings.length - shown.length} more (see --format json or html)`);

  if (report.clients.length > 0) {
    out.push('');
    out.push(`${c.bold}WORST CLIENTS${c.reset} (${Math.min(rows, report.clients.length)} of ${report.clientsTotal})`);
    out.push(
      ...table(
        ['client', 'type', 'attempts', 'retries', 'max', 'backoff', 'retry-after', 'unsafe', 'dup', 'findings'],
        report.clients.slice(0, rows).map((x) => [
          x.key,
          x.clientType,
          String(x.attempts),
          String(x.retries),
          String(x.maxAttempts),
          x.backoff,
          x.retryAfter,
          String(x.unsafeRetries),
          String(x.duplicateSubmissions),
          x.findings.join(','),
        ]),
        [28, 16, 8, 7, 4, 17, 14, 6, 4, 40],
        [false, false, true, true, true, false, false, true, true, false],
      ),
    );
  }
  if (report.clientTypes.length > 0) {
    out.push('');
    out.push(`${c.bold}CLIENT TYPES${c.reset}`);
    out.push(
      ...table(
        ['type', 'clients', 'attempts', 'retries', 'retry %', 'max', 'backoff', 'jitter', 'retry-after'],
        report.clientTypes.slice(0, rows).map((x) => [
          x.userAgent,
          String(x.clients),
          String(x.attempts),
          String(x.retries),
          pct(x.retryRatio),
          String(x.maxAttempts),
          `${x.backoff}${x.backoff === 'insufficient-data' ? '' : ` (${x.backoffDetail.confidence})`}`,
          x.jitter,
          x.retryAfter,
        ]),
        [20, 7, 8, 7, 8, 4, 26, 12, 14],
        [false, true, true, true, true, true, false, false, false],
      ),
    );
  }
  if (report.faultWindows.length > 0) {
    out.push('');
    out.push(`${c.bold}FAULT WINDOWS${c.reset}`);
    const origin = report.range.origin ?? 0;
    out.push(
      ...table(
        ['rule', 'at', 'for', 'amplification', 'retries', 'herd', 'recovered after'],
        report.faultWindows.slice(0, rows).map((w) => [
          w.rule,
          `+${num((w.start - origin) / 1000, 1)}s`,
          `${num(w.durationSeconds, 1)}s`,
          alphaText(windowAlpha(w), num),
          String(w.retries),
          w.herd.detected ? 'HERD' : 'no',
          recoveryText(w, 's'),
        ]),
        [22, 8, 8, 13, 7, 4, 40],
        [false, true, true, true, true, false, false],
      ),
    );
  }
  out.push('');
  out.push(`${c.dim}confidence ${report.confidence.level}: ${stripControls(report.confidence.reasons.join('; '))}${c.reset}`);
  if ((report.dataQuality.recordsLost ?? 0) > 0) out.push(`${c.dim}the proxy could not write ${report.dataQuality.recordsLost} record(s) of this recording${c.reset}`);
  if (report.dataQuality.badLines.count > 0) {
    out.push(`${c.dim}skipped ${report.dataQuality.badLines.count} unreadable line(s)${c.reset}`);
  }
  out.push(`${c.dim}known limits: ${report.limits.map((l) => l.replace(/\.$/, '')).join('; ')}.${c.reset}`);
  return out.join('\n') + '\n';
}
