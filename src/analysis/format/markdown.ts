/**
 * The report as a pull-request comment: verdict and reasons first, a totals row, the findings
 * table, the worst clients, and confidence and limits folded away in a <details>.
 */
import type { GateResult } from '../gates.js';
import { alphaText, faultsAlpha, windowAlpha } from '../report.js';
import type { Report } from '../types.js';
import { escapeMarkdown as md, escapeMarkdownKeepCode, recoveryText } from './escape.js';

function n(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

/**
 * Formats a report as GitHub-flavoured Markdown; with `gates` (every `--fail-on` outcome), a
 * table of them under the verdict, so the comment says why the job failed or passed.
 *
 * @example fs.writeFileSync('comment.md', formatMarkdown(report))
 */
export function formatMarkdown(report: Report, rows = 10, gates?: readonly GateResult[]): string {
  const t = report.totals;
  const out: string[] = [];
  const storm = report.verdict === 'retry-storm';
  out.push(`## aftershock retry analysis: ${storm ? '🔴 **retry storm**' : '🟢 **ok**'}`);
  out.push('');
  if (report.verdictReasons.length > 0) out.push(`> ${md(report.verdictReasons.join('; '))}`, '');
  if (gates !== undefined && gates.length > 0) {
    const held = gates.filter((g) => g.held).length;
    out.push(held > 0 ? `**CI gates (\`--fail-on\`): ❌ ${held} of ${gates.length} held: the job fails**` : `**CI gates (\`--fail-on\`): ✅ none of ${gates.length} held**`, '');
    out.push(row(['gate', 'result', 'why']), row(['---', '---', '---']));
    for (const g of gates) out.push(row([md(g.expr), g.held ? '❌ held' : '✅ did not hold', md(g.detail)]));
    out.push('');
  }
  const meta = [report.session === null ? null : `session ${md(report.session)}`, report.target === null ? null : `target ${md(report.target)}`, `${n(report.range.seconds, 1)} s of traffic`, `${t.clients} clients`].filter((x): x is string => x !== null);
  out.push(meta.join(' · '), '');
  out.push(row(['attempts', 'logical requests', 'retries', 'retry ratio', 'amplification', 'in fault windows', 'baseline', 'max attempts', 'failures', 'of them injected']));
  out.push(row(Array.from({ length: 10 }, () => '---:')));
  out.push(row([String(t.attempts), String(t.logicalRequests), String(t.retries), `${(t.retryRatio * 100).toFixed(1)} %`, t.logicalRequests === 0 ? 'n/a' : n(t.amplification), alphaText(faultsAlpha(report), n), n(t.amplificationBaseline), String(t.maxAttempts), String(t.failures), String(t.injectedFailures)]));
  out.push('');
  out.push(`### Findings (${report.findings.length})`, '');
  if (report.findings.length === 0) out.push('No findings.', '');
  else {
    out.push(row(['severity', 'finding', 'about', 'what happened', 'what to do']));
    out.push(row(['---', '---', '---', '---', '---']));
    for (const f of report.findings.slice(0, 30)) {
      const about = [f.client === undefined ? null : `client ${md(f.client)}`, f.route === undefined ? null : md(f.route), f.userAgent === undefined ? null : md(f.userAgent)].filter((x): x is string => x !== null).join('<br>');
      const sev = f.severity === 'critical' ? '🔴 critical' : f.severity === 'warning' ? '🟠 warning' : '⚪ info';
      out.push(row([sev, `\`${f.code}\``, about, md(f.message), escapeMarkdownKeepCode(f.advice)]));
    }
    if (report.findings.length > 30) out.push('', `… and ${report.findings.length - 30} more findings (see the JSON report).`);
    out.push('');
  }
  if (report.clients.length > 0) {
    out.push(`### Worst clients (${Math.min(rows, report.clients.length)} of ${report.clientsTotal})`, '');
    out.push(row(['client', 'type', 'attempts', 'retries', 'max', 'backoff', 'Retry-After', 'unsafe', 'duplicates']));
    out.push(row(['---', '---', '---:', '---:', '---:', '---', '---', '---:', '---:']));
    for (const c of report.clients.slice(0, rows)) {
      out.push(row([md(c.key), md(c.clientType), String(c.attempts), String(c.retries), String(c.maxAttempts), c.backoff, c.retryAfter, String(c.unsafeRetries), String(c.duplicateSubmissions)]));
    }
    out.push('');
  }
  if (report.clientTypes.length > 0) {
    out.push('### Client types', '');
    out.push(row(['type', 'clients', 'attempts', 'retries', 'backoff', 'jitter', 'Retry-After']));
    out.push(row(['---', '---:', '---:', '---:', '---', '---', '---']));
    for (const c of report.clientTypes.slice(0, rows)) {
      out.push(row([md(c.userAgent), String(c.clients), String(c.attempts), String(c.retries), `${c.backoff} (${c.backoffDetail.confidence})`, c.jitter, c.retryAfter]));
    }
    out.push('');
  }
  if (report.faultWindows.length > 0) {
    const origin = report.range.origin ?? 0;
    out.push('### Fault windows', '');
    out.push(row(['rule', 'at', 'duration', 'amplification', 'retries', 'herd', 'recovery']));
    out.push(row(['---', '---:', '---:', '---:', '---:', '---', '---']));
    for (const w of report.faultWindows.slice(0, rows)) {
      out.push(row([md(w.rule), `+${n((w.start - origin) / 1000, 1)} s`, `${n(w.durationSeconds, 1)} s`, alphaText(windowAlpha(w), n), String(w.retries), w.herd.detected ? '**herd**' : 'no', md(recoveryText(w, ' s'))]));
    }
    out.push('');
  }
  out.push('<details><summary>Confidence and known limits</summary>', '');
  out.push(`Confidence: **${report.confidence.level}** — ${md(report.confidence.reasons.join('; '))}`, '');
  for (const l of report.limits) out.push(`- ${md(l)}`);
  if (report.dataQuality.badLines.count > 0) out.push('', `${report.dataQuality.badLines.count} unreadable line(s) were skipped.`);
  if ((report.dataQuality.recordsLost ?? 0) > 0) out.push('', `The proxy could not write ${report.dataQuality.recordsLost} record(s) of this recording.`);
  out.push('', '</details>', '');
  return out.join('\n');
}
