/**
 * The report as ONE self-contained HTML file: no script, no network, no external URL. Charts are
 * inline SVG drawn here (offered load, goodput and errors over time with the fault windows shaded
 * and the marks drawn; attempts-per-request histograms). Every string that came from a recording
 * goes through `escapeHtml`, so a hostile User-Agent or path renders as text.
 */
import type { Report, TimelineBin } from '../types.js';
import type { GateResult } from '../gates.js';
import { alphaText, faultsAlpha, windowAlpha } from '../report.js';
import { escapeHtml as h, recoveryText } from './escape.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.storm{background:#c62828}.ok{background:#2e7d32}
.meta{color:#5a6270}.cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:14px}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#5a6270;font-size:12px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{padding:5px 8px;border-bottom:1px solid #eceff3;text-align:left;vertical-align:top}
th{background:#f0f2f5;font-weight:600;font-size:12px}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev-critical{color:#c62828;font-weight:600}.sev-warning{color:#b26a00;font-weight:600}.sev-info{color:#5a6270}
.finding{background:#fff;border:1px solid #dde1e7;border-left:4px solid #9aa3ae;border-radius:6px;padding:8px 12px;margin:8px 0}
.finding.critical{border-left-color:#c62828}.finding.warning{border-left-color:#e69500}
.finding p{margin:4px 0}.advice{color:#3a4350}.ev{font:12px ui-monospace,monospace;color:#5a6270;white-space:pre-wrap;word-break:break-all}
svg{background:#fff;border:1px solid #dde1e7;border-radius:6px}
.legend span{display:inline-block;margin-right:14px;font-size:12px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
code{font:12px ui-monospace,monospace;background:#eef0f3;padding:1px 4px;border-radius:3px}
details{margin-top:10px}
`;

function n(x: number | null, digits = 2): string {
  if (x === null || !Number.isFinite(x)) return 'n/a';
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

/** Downsamples bins to at most `max` points (summing counts per group, reported per bin). */
function downsample(bins: readonly TimelineBin[], max: number): Array<{ t: number; offered: number; goodput: number; errors: number }> {
  if (bins.length <= max) return bins.map((b) => ({ t: b.t, offered: b.offered, goodput: b.goodput, errors: b.errors }));
  const per = Math.ceil(bins.length / max);
  const out: Array<{ t: number; offered: number; goodput: number; errors: number }> = [];
  for (let i = 0; i < bins.length; i += per) {
    const g = bins.slice(i, i + per);
    out.push({
      t: (g[0] as TimelineBin).t,
      offered: g.reduce((a, b) => a + b.offered, 0) / g.length,
      goodput: g.reduce((a, b) => a + b.goodput, 0) / g.length,
      errors: g.reduce((a, b) => a + b.errors, 0) / g.length,
    });
  }
  return out;
}

function timelineSvg(report: Report): string {
  const bins = report.timeline;
  if (bins.length === 0) return '<p class="meta">No traffic recorded.</p>';
  const W = 1040;
  const H = 260;
  const L = 48;
  const R = 12;
  const T = 14;
  const B = 30;
  const binMs = report.dataQuality.binMs;
  const t0 = (bins[0] as TimelineBin).t;
  const t1 = (bins[bins.length - 1] as TimelineBin).t + binMs;
  const span = Math.max(1, t1 - t0);
  const pts = downsample(bins, 900);
  const ymax = Math.max(1, ...pts.map((p) => p.offered));
  const x = (t: number): number => L + ((t - t0) / span) * (W - L - R);
  const y = (v: number): number => T + (1 - v / ymax) * (H - T - B);
  const line = (key: 'offered' | 'goodput' | 'errors'): string =>
    pts.map((p) => `${x(p.t + binMs / 2).toFixed(1)},${y(p[key]).toFixed(1)}`).join(' ');
  const parts: string[] = [];
  parts.push(`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="offered load, goodput and errors per ${binMs} ms">`);
  for (const w of report.faultWindows) {
    const x0 = x(Math.max(t0, w.start));
    const x1 = x(Math.min(t1, w.end));
    parts.push(`<rect x="${x0.toFixed(1)}" y="${T}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${H - T - B}" fill="#e53935" fill-opacity="0.12"><title>${h(`fault window ${w.rule}: ${n(w.durationSeconds, 1)} s, amplification ${alphaText(windowAlpha(w), n)}`)}</title></rect>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eceff3"/>`);
    parts.push(`<text x="${L - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#5a6270">${n(v, 1)}</text>`);
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = t0 + (span * i) / ticks;
    // The first bin starts before the recording's first request (bins are whole seconds): its
    // tick reads -1s, not +-1s.
    const secs = Math.round((t - (report.range.origin ?? t0)) / 1000);
    parts.push(`<text x="${x(t).toFixed(1)}" y="${H - 10}" font-size="11" text-anchor="middle" fill="#5a6270">${secs < 0 ? '−' : '+'}${Math.abs(secs)}s</text>`);
  }
  parts.push(`<polyline fill="none" stroke="#1e88e5" stroke-width="1.6" points="${line('offered')}"/>`);
  parts.push(`<polyline fill="none" stroke="#43a047" stroke-width="1.6" points="${line('goodput')}"/>`);
  parts.push(`<polyline fill="none" stroke="#e53935" stroke-width="1.2" points="${line('errors')}"/>`);
  for (const m of report.marks) {
    if (m.t < t0 || m.t > t1) continue;
    const mx = x(m.t).toFixed(1);
    parts.push(`<line x1="${mx}" x2="${mx}" y1="${T}" y2="${H - B}" stroke="#6a1b9a" stroke-dasharray="3 3"/>`);
    parts.push(`<text x="${(Number(mx) + 3).toFixed(1)}" y="${T + 10}" font-size="11" fill="#6a1b9a">${h(m.label.slice(0, 40))}</text>`);
  }
  parts.push('</svg>');
  const legend =
    '<div class="legend"><span><i class="sw" style="background:#1e88e5"></i>offered load (attempts)</span><span><i class="sw" style="background:#43a047"></i>goodput (successful requests)</span><span><i class="sw" style="background:#e53935"></i>errors</span><span><i class="sw" style="background:#e53935;opacity:.25"></i>fault window</span><span><i class="sw" style="background:#6a1b9a"></i>mark</span></div>';
  return parts.join('') + legend + `<p class="meta">per ${binMs} ms bin</p>`;
}

function histogramSvg(hist: ReadonlyArray<{ attempts: number | string; count: number }>, label: string): string {
  if (hist.length === 0) return '';
  const W = 420;
  const H = 150;
  const B = 22;
  const T = 16;
  const max = Math.max(1, ...hist.map((b) => b.count));
  const bw = Math.min(36, (W - 20) / hist.length - 4);
  const parts = [`<svg viewBox="0 0 ${W} ${H}" width="${W}" role="img" aria-label="${h(label)}">`];
  parts.push(`<text x="6" y="12" font-size="11" fill="#5a6270">${h(label)}</text>`);
  hist.forEach((b, i) => {
    const bh = Math.max(1, Math.sqrt(b.count / max) * (H - B - T));
    const bx = 10 + i * (bw + 4);
    parts.push(`<rect x="${bx.toFixed(1)}" y="${(H - B - bh).toFixed(1)}" width="${bw.toFixed(1)}" height="${bh.toFixed(1)}" fill="#5c6bc0"><title>${h(`${b.count} requests with ${b.attempts} attempt(s)`)}</title></rect>`);
    parts.push(`<text x="${(bx + bw / 2).toFixed(1)}" y="${H - 8}" font-size="10" text-anchor="middle" fill="#5a6270">${h(String(b.attempts))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

function evidenceText(ev: Record<string, unknown>): string {
  const s = JSON.stringify(ev);
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

/**
 * Formats a report as one self-contained HTML page; with `gates` (every `--fail-on` outcome), a
 * table of them under the verdict.
 *
 * @example fs.writeFileSync('report.html', formatHtml(report))
 */
export function formatHtml(report: Report, rows = 50, gates?: readonly GateResult[]): string {
  const t = report.totals;
  const storm = report.verdict === 'retry-storm';
  const o: string[] = [];
  o.push('<!doctype html><html lang="en"><head><meta charset="utf-8">');
  o.push('<meta name="viewport" content="width=device-width,initial-scale=1">');
  o.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  o.push(`<title>${h(`aftershock retry analysis${report.session === null ? '' : `: ${report.session}`}`)}</title>`);
  o.push(`<style>${CSS}</style></head><body><main>`);
  o.push(`<h1>Retry analysis <span class="verdict ${storm ? 'storm' : 'ok'}">${storm ? 'retry storm' : 'ok'}</span></h1>`);
  if (report.verdictReasons.length > 0) o.push(`<p><b>Because:</b> ${h(report.verdictReasons.join('; '))}</p>`);
  if (gates !== undefined && gates.length > 0) {
    const held = gates.filter((g) => g.held).length;
    o.push(`<h2>CI gates (--fail-on): ${held > 0 ? `<span class="verdict storm">${held} of ${gates.length} held</span>` : `<span class="verdict ok">none of ${gates.length} held</span>`}</h2>`);
    o.push('<table><thead><tr><th>gate</th><th>result</th><th>why</th></tr></thead><tbody>');
    for (const g of gates) o.push(`<tr><td>${h(g.expr)}</td><td>${g.held ? 'held' : 'did not hold'}</td><td>${h(g.detail)}</td></tr>`);
    o.push('</tbody></table>');
  }
  const meta = [report.session === null ? null : `session ${report.session}`, report.target === null ? null : `target ${report.target}`, report.profile === null ? null : `profile ${report.profile.name}`, `${n(report.range.seconds, 1)} s`, report.generatedBy];
  o.push(`<p class="meta">${h(meta.filter((x): x is string => x !== null).join(' · '))}</p>`);
  const card = (v: string, label: string): string => `<div class="card"><b>${h(v)}</b><span>${h(label)}</span></div>`;
  o.push('<div class="cards">');
  o.push(card(String(t.attempts), 'attempts'));
  o.push(card(String(t.logicalRequests), 'logical requests'));
  o.push(card(`${t.retries} (${(t.retryRatio * 100).toFixed(1)} %)`, 'retries'));
  o.push(card(t.logicalRequests === 0 ? 'n/a' : n(t.amplification), 'amplification'));
  o.push(card(alphaText(faultsAlpha(report), n), 'amplification in fault windows'));
  o.push(card(n(t.amplificationBaseline), 'baseline amplification'));
  o.push(card(String(t.maxAttempts), 'max attempts per request'));
  o.push(card(String(t.failures), 'failures'));
  o.push(card(String(t.injectedFailures), 'failures injected by aftershock'));
  o.push(card(String(t.clients), 'clients'));
  o.push('</div>');

  o.push('<h2>Load over time</h2>');
  o.push(timelineSvg(report));

  o.push(`<h2>Findings (${report.findings.length})</h2>`);
  if (report.findings.length === 0) o.push('<p>No findings.</p>');
  for (const f of report.findings.slice(0, 200)) {
    const about = [f.client === undefined ? null : `client ${f.client}`, f.route === undefined ? null : `route ${f.route}`, f.userAgent === undefined ? null : `client type ${f.userAgent}`].filter((x): x is string => x !== null).join(' · ');
    o.push(`<div class="finding ${h(f.severity)}"><p><span class="sev-${h(f.severity)}">${h(f.severity)}</span> <code>${h(f.code)}</code>${about === '' ? '' : ` <span class="meta">${h(about)}</span>`}</p>`);
    o.push(`<p>${h(f.message)}</p><p class="advice">${h(f.advice)}</p><div class="ev">${h(evidenceText(f.evidence))}</div></div>`);
  }

  o.push('<h2>Attempts per logical request</h2>');
  o.push(histogramSvg(t.attemptsPerRequest.histogram, `all clients: mean ${n(t.attemptsPerRequest.mean)}, p95 ${t.attemptsPerRequest.p95}, max ${t.attemptsPerRequest.max}`));
  for (const ct of report.clientTypes.slice(0, 6)) {
    if (ct.retries === 0) continue;
    o.push(histogramSvg(ct.attemptsPerRequest.histogram, `${ct.userAgent}: mean ${n(ct.attemptsPerRequest.mean)}, max ${ct.attemptsPerRequest.max}`));
  }

  o.push(`<h2>Worst clients (${Math.min(rows, report.clients.length)} of ${report.clientsTotal})</h2>`);
  o.push('<table><thead><tr><th>client</th><th>User-Agent</th><th>attempts</th><th>retries</th><th>max</th><th>backoff</th><th>Retry-After</th><th>unsafe</th><th>duplicates</th><th>findings</th></tr></thead><tbody>');
  for (const c of report.clients.slice(0, rows)) {
    o.push(
      `<tr><td>${h(c.key)}</td><td>${h(c.userAgent ?? '')}</td><td class="n">${c.attempts}</td><td class="n">${c.retries}</td><td class="n">${c.maxAttempts}</td><td>${h(c.backoff)}</td><td>${h(c.retryAfter)}</td><td class="n">${c.unsafeRetries}</td><td class="n">${c.duplicateSubmissions}</td><td>${h(c.findings.join(', '))}</td></tr>`,
    );
  }
  o.push('</tbody></table>');
  if (report.clientsOmitted > 0) o.push(`<p class="meta">${report.clientsOmitted} more clients not listed.</p>`);

  o.push('<h2>Client types</h2><table><thead><tr><th>type</th><th>clients</th><th>attempts</th><th>retries</th><th>backoff</th><th>jitter</th><th>Retry-After</th><th>gaps per attempt (ms)</th></tr></thead><tbody>');
  for (const c of report.clientTypes.slice(0, rows)) {
    o.push(
      `<tr><td>${h(c.userAgent)}</td><td class="n">${c.clients}</td><td class="n">${c.attempts}</td><td class="n">${c.retries}</td><td>${h(`${c.backoff} (${c.backoffDetail.confidence})`)}</td><td>${h(`${c.jitter}${c.jitterDetail.cv === null ? '' : ` (CV ${c.jitterDetail.cv})`}`)}</td><td>${h(c.retryAfter)}</td><td>${h(c.backoffDetail.gapsMs.join(', '))}</td></tr>`,
    );
  }
  o.push('</tbody></table>');

  o.push('<h2>Routes</h2><table><thead><tr><th>route</th><th>attempts</th><th>logical</th><th>retries</th><th>amplification</th><th>unsafe</th></tr></thead><tbody>');
  for (const r of report.routes.slice(0, rows)) {
    o.push(`<tr><td>${h(r.route)}</td><td class="n">${r.attempts}</td><td class="n">${r.logicalRequests}</td><td class="n">${r.retries}</td><td class="n">${n(r.amplification)}</td><td class="n">${r.unsafeRetries}</td></tr>`);
  }
  o.push('</tbody></table>');

  if (report.faultWindows.length > 0) {
    const origin = report.range.origin ?? 0;
    o.push('<h2>Fault windows</h2><table><thead><tr><th>rule</th><th>at</th><th>duration</th><th>amplification</th><th>retries</th><th>herd</th><th>recovery spike</th><th>recovered after</th></tr></thead><tbody>');
    for (const w of report.faultWindows.slice(0, rows)) {
      o.push(
        `<tr><td>${h(w.rule)}</td><td class="n">+${n((w.start - origin) / 1000, 1)} s</td><td class="n">${n(w.durationSeconds, 1)} s</td><td class="n">${alphaText(windowAlpha(w), n)}</td><td class="n">${w.retries}</td><td>${w.herd.detected ? '<b>herd</b>' : 'no'}</td><td class="n">${n(w.recoverySpike.ratio)}×</td><td>${h(recoveryText(w, ' s'))}</td></tr>`,
      );
    }
    o.push('</tbody></table>');
  }

  o.push(`<h2>Confidence: ${h(report.confidence.level)}</h2><ul>`);
  for (const r of report.confidence.reasons) o.push(`<li>${h(r)}</li>`);
  o.push('</ul>');
  if ((report.dataQuality.recordsLost ?? 0) > 0) o.push(`<p>The proxy could not write ${report.dataQuality.recordsLost} record(s) of this recording.</p>`);
  if (report.dataQuality.badLines.count > 0) {
    o.push(`<p>${report.dataQuality.badLines.count} unreadable line(s) skipped:</p><ul>`);
    for (const b of report.dataQuality.badLines.lines.slice(0, 20)) o.push(`<li><code>${h(`${b.file}:${b.line}`)}</code> ${h(b.reason)}</li>`);
    o.push('</ul>');
  }
  o.push('<details><summary>Known limits</summary><ul>');
  for (const l of report.limits) o.push(`<li>${h(l)}</li>`);
  o.push('</ul></details>');
  o.push('</main></body></html>\n');
  return o.join('\n');
}
