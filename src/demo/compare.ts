/**
 * The demo's verdict, side by side: the numbers a newcomer should look at for each fleet (taken
 * from the real retry-analysis reports, never computed here on the side), a compact text table,
 * one combined self-contained HTML page with both full reports, and a closing paragraph in plain
 * words. All pure functions of a `DemoResult`.
 */
import type { Report, Severity, TimelineBin } from '../analysis/index.js';
import { formatReport } from '../analysis/index.js';
import { escapeHtml } from '../analysis/format/escape.js';
import type { DemoResult, FleetResult } from './run-demo.js';
import { NAIVE_MAX_RETRIES, NAIVE_OUTBOX } from './defaults.js';

/** One finding code and how many times (clients) it was raised. */
export interface FindingCount {
  readonly code: string;
  readonly severity: Severity;
  /**
   * The clients this code names (their own findings and those behind a "N more clients" summary);
   * for a code no client carries (a client type's, a fault window's), the findings.
   */
  readonly count: number;
}

/** The load after the last fault window ended. */
export interface AfterFaults {
  /** Seconds of data after the faults. */
  readonly seconds: number;
  readonly organicPerSecond: number;
  readonly offeredPerSecond: number;
  readonly goodputPerSecond: number;
  /** offered / organic after the faults, or null without organic load. */
  readonly amplification: number | null;
}

/** What the comparison shows for one fleet. */
export interface FleetSummary {
  readonly verdict: Report['verdict'];
  readonly logicalRequests: number;
  readonly attempts: number;
  readonly retries: number;
  readonly amplification: number;
  readonly amplificationInFaults: number | null;
  readonly amplificationBaseline: number;
  readonly retryRatio: number;
  readonly attemptsPerRequest: { readonly mean: number; readonly p95: number; readonly max: number };
  /** The fleet's client type's backoff class, jitter class and Retry-After compliance. */
  readonly backoff: string;
  readonly jitter: string;
  readonly retryAfter: string;
  /** When the last fault window ended, in seconds since the first request; null without faults. */
  readonly faultsEndedAt: number | null;
  /** Seconds from the end of the faults until amplification was back to baseline; null if never. */
  readonly recoverySeconds: number | null;
  readonly recoveryNote: string | null;
  readonly afterFaults: AfterFaults | null;
  readonly findings: readonly FindingCount[];
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

/**
 * Derives the comparison's numbers from one fleet's report.
 *
 * @example summarizeFleet(proxy.report()).amplification
 */
export function summarizeFleet(report: Report): FleetSummary {
  const t = report.totals;
  const type = [...report.clientTypes].sort((a, b) => b.attempts - a.attempts)[0];
  const origin = report.range.origin ?? report.range.start ?? 0;
  let last: Report['faultWindows'][number] | null = null;
  for (const w of report.faultWindows) if (last === null || w.end > last.end) last = w;
  let afterFaults: AfterFaults | null = null;
  if (last !== null) {
    const end = last.end;
    const bins = report.timeline.filter((b: TimelineBin) => b.t >= end);
    // The whole seconds after the faults, the last one only as far as the data goes (the run's
    // end cuts it: counted whole, it read a 50/s fleet as 31-44/s in short runs).
    const binMs = report.dataQuality.binMs;
    const dataEnd = report.range.end;
    let coveredMs = 0;
    for (const b of bins) coveredMs += dataEnd === null ? binMs : Math.max(0, Math.min(binMs, dataEnd - b.t));
    const seconds = round(coveredMs / 1000, 1);
    if (seconds > 0) {
      const sum = (k: 'organic' | 'offered' | 'goodput'): number => bins.reduce((a, b) => a + b[k], 0);
      afterFaults = {
        seconds,
        organicPerSecond: round((sum('organic') * 1000) / coveredMs, 1),
        offeredPerSecond: round((sum('offered') * 1000) / coveredMs, 1),
        goodputPerSecond: round((sum('goodput') * 1000) / coveredMs, 1),
        amplification: sum('organic') === 0 ? null : round(sum('offered') / sum('organic'), 2),
      };
    }
  }
  // Per code: how many clients it names (their own findings and the "N more clients" summary);
  // for a code no client carries (a client type's, a fault window's), how many findings.
  const counts = new Map<string, { severity: Severity; clients: number; others: number }>();
  for (const f of report.findings) {
    const more = typeof f.evidence.more === 'number' ? f.evidence.more : null;
    let c = counts.get(f.code);
    if (c === undefined) counts.set(f.code, (c = { severity: f.severity, clients: 0, others: 0 }));
    if (more !== null) c.clients += more;
    else if (f.client !== undefined) c.clients++;
    else c.others++;
  }
  return {
    verdict: report.verdict,
    logicalRequests: t.logicalRequests,
    attempts: t.attempts,
    retries: t.retries,
    amplification: t.amplification,
    amplificationInFaults: t.amplificationInFaults,
    amplificationBaseline: t.amplificationBaseline,
    retryRatio: t.retryRatio,
    attemptsPerRequest: { mean: t.attemptsPerRequest.mean, p95: t.attemptsPerRequest.p95, max: t.attemptsPerRequest.max },
    backoff: type?.backoff ?? 'n/a',
    jitter: type?.jitter ?? 'n/a',
    retryAfter: type?.retryAfter ?? 'n/a',
    faultsEndedAt: last === null ? null : round((last.end - origin) / 1000, 1),
    recoverySeconds: last?.recoverySeconds ?? null,
    recoveryNote: last?.recoveryNote ?? null,
    afterFaults,
    findings: [...counts].map(([code, c]) => ({ code, severity: c.severity, count: c.clients > 0 ? c.clients : c.others })),
  };
}

const x = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(v >= 10 ? 1 : 2)}x`);
const pct = (v: number): string => `${(v * 100).toFixed(1)} %`;

/**
 * How the recovery reads in one cell.
 *
 * @example recoveryText(result.fleets[0].summary) // 'not within the 15 s that followed'
 */
export function recoveryText(s: FleetSummary): string {
  if (s.faultsEndedAt === null) return 'no faults seen';
  if (s.recoverySeconds !== null) return `${s.recoverySeconds} s`;
  const after = s.afterFaults?.seconds ?? 0;
  return s.recoveryNote === 'the data ended first' ? `not within the ${after} s that followed` : `n/a (${s.recoveryNote ?? 'unknown'})`;
}

const SEVERITY_MARK: Record<Severity, string> = { critical: '!!', warning: '! ', info: '  ' };

/** The rows of the comparison: a label and one cell per fleet. */
function rows(fleets: readonly FleetResult[], aborted: boolean): Array<[string, string[]]> {
  const s = fleets.map((f) => f.summary);
  // Stopped early with (almost) no data after the last fault: the faults had not ended, the run had.
  const ended = (v: FleetSummary): string =>
    v.faultsEndedAt === null ? 'n/a' : aborted && (v.afterFaults === null || v.afterFaults.seconds <= 1) ? `still injecting when stopped (+${v.faultsEndedAt} s)` : `+${v.faultsEndedAt} s`;
  const out: Array<[string, string[]]> = [
    ['verdict', s.map((v) => (v.verdict === 'retry-storm' ? 'RETRY STORM' : 'ok'))],
    ['logical requests (organic load)', s.map((v) => String(v.logicalRequests))],
    ['attempts (offered load)', s.map((v) => String(v.attempts))],
    ['amplification, whole run', s.map((v) => x(v.amplification))],
    ['amplification in fault windows', s.map((v) => x(v.amplificationInFaults))],
    ['retry ratio (retries / attempts)', s.map((v) => pct(v.retryRatio))],
    ['attempts per request mean/p95/max', s.map((v) => `${v.attemptsPerRequest.mean.toFixed(2)} / ${v.attemptsPerRequest.p95} / ${v.attemptsPerRequest.max}`)],
    ['backoff / jitter', s.map((v) => `${v.backoff} / ${v.jitter}`)],
    ['Retry-After', s.map((v) => v.retryAfter)],
    ['faults ended at', s.map(ended)],
    ['amplification after the faults', s.map((v) => (v.afterFaults === null ? 'n/a' : `${x(v.afterFaults.amplification)} (${v.afterFaults.offeredPerSecond}/s for ${v.afterFaults.organicPerSecond}/s)`))],
    // Goodput counts requests that succeeded then, a backlog from the outage included: it can be
    // more than the new requests of that time.
    ['goodput after the faults', s.map((v) => (v.afterFaults === null ? 'n/a' : `${v.afterFaults.goodputPerSecond}/s (new requests ${v.afterFaults.organicPerSecond}/s)`))],
    ['back to baseline after the faults', s.map((v) => recoveryText(v))],
    // How far to trust the grading (the report's reasons and known limits are in the HTML report).
    ['confidence of the analysis', fleets.map((f) => f.report.confidence.level)],
  ];
  return out;
}

/**
 * The compact side-by-side text comparison, the findings per fleet, and the closing paragraph.
 *
 * @example process.stdout.write(formatComparison(await runDemo()))
 */
export function formatComparison(result: DemoResult): string {
  const fleets = result.fleets;
  const labelW = 36;
  const colW = Math.max(26, ...rows(fleets, result.aborted).flatMap(([, cells]) => cells.map((c) => c.length + 2)));
  const lines: string[] = [];
  const scaled = result.scale === 1 ? '' : `, timeline scaled x${result.scale.toFixed(2)}`;
  lines.push(`The same outage, ${fleets.length === 1 ? 'one kind' : 'two kinds'} of clients  (${result.profile}, ${Math.round(result.durationMs / 1000)} s${scaled}, ${result.clientsPerFleet} clients per fleet, seed ${result.seed}${result.aborted ? ', STOPPED EARLY' : ''})`);
  lines.push('');
  lines.push(`  ${''.padEnd(labelW)}${fleets.map((f) => f.kind.padEnd(colW)).join('')}`.trimEnd());
  for (const [label, cells] of rows(fleets, result.aborted)) lines.push(`  ${label.padEnd(labelW)}${cells.map((c) => c.padEnd(colW)).join('')}`.trimEnd());
  const findingLines = fleets.map((f) =>
    f.summary.findings.length === 0 ? ['none'] : f.summary.findings.map((c) => `${SEVERITY_MARK[c.severity]}${c.code}${c.count > 1 ? ` x${c.count}` : ''}`),
  );
  const height = Math.max(...findingLines.map((l) => l.length));
  for (let i = 0; i < height; i++) {
    const label = i === 0 ? 'findings (!! critical, ! warning)' : '';
    lines.push(`  ${label.padEnd(labelW)}${findingLines.map((l) => (l[i] ?? '').padEnd(colW)).join('')}`.trimEnd());
  }
  lines.push('');
  lines.push(...wrap(closingParagraph(result), 100));
  return lines.join('\n') + '\n';
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter((w) => w !== '')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    out.push(line);
  }
  return out;
}

/**
 * What went wrong for the naive clients and what the careful ones did differently, in plain words
 * and with this run's numbers. Says so when the run did not show the expected effect.
 *
 * @example console.log(closingParagraph(await runDemo()))
 */
export function closingParagraph(result: DemoResult): string {
  const naive = result.fleets.find((f) => f.kind === 'naive')?.summary;
  const careful = result.fleets.find((f) => f.kind === 'careful')?.summary;
  const parts: string[] = [];
  if (result.fleets.every((f) => f.summary.faultsEndedAt === null)) {
    const first = result.phases.find((p) => /outage|degrad|recover|gate/i.test(p.name));
    return `The run ${result.aborted ? 'was stopped' : 'ended'} before any fault was injected${first === undefined ? '' : ` (the ${first.name} phase starts at +${Math.round(first.startMs / 1000)} s)`}, so there is nothing to compare yet: let it run the whole ${Math.round(result.durationMs / 1000)} s.`;
  }
  if (result.aborted) parts.push('(Stopped early: the numbers cover only what ran.)');
  const rate = (1000 / result.intervalMs).toFixed(1);
  parts.push(
    `What happened: ${result.fleets.length === 2 ? 'both fleets' : 'the fleet'} sent the same everyday traffic (each client about ${rate} requests a second) to ${result.fleets.length === 2 ? 'identical copies of ' : ''}a small message service that can do about ${result.serviceCapacity} requests a second, through the same replayed outage: the service slows, then fails completely, then lets clients back in a few at a time.`,
  );
  if (naive !== undefined) {
    let s =
      `The naive clients treated every failure the same way: try again at once, up to ${NAIVE_MAX_RETRIES} times, ignoring the server's "Retry-After: come back in a few seconds"; and their app re-sent every unsent message (up to ${NAIVE_OUTBOX.max}) the moment one request got through. ` +
      `So each rejected message turned into many requests: during the faults they sent ${x(naive.amplificationInFaults)} their normal traffic (${pct(naive.retryRatio)} of everything they sent was a retry).`;
    const after = naive.afterFaults;
    const unrecovered = after !== null && naive.recoverySeconds === null && naive.recoveryNote === 'the data ended first';
    // A metastable failure is what the analysis calls sustained (10 s and more of amplified load
    // after the faults) with the clients still short of what they wanted; less is too soon to tell.
    const sustained = naive.findings.some((f) => f.code === 'sustained-amplification') && after !== null && after.goodputPerSecond < after.organicPerSecond;
    if (unrecovered && !sustained) {
      s += ` The run ended ${after.seconds} s after the faults, too soon to tell whether their load would come back down (the analysis needs 10 s after the faults to call amplification sustained): run it longer to see.`;
    } else if (after !== null && unrecovered) {
      s +=
        ` When the outage ended, that backlog arrived all at once, the service's queue filled, requests began to time out, and every timeout was retried at once, so the service spent its capacity on requests whose senders had already given up. ` +
        `Nothing was broken any more, yet for the last ${after.seconds} s they still sent ${x(after.amplification)} their normal load and got ${after.goodputPerSecond} of their ${after.organicPerSecond} requests a second through: their own retries kept the service down. That is a metastable failure: the trigger is gone, the overload sustains itself.`;
    } else if (naive.recoverySeconds !== null && naive.faultsEndedAt !== null) {
      const cmp = careful?.recoverySeconds ?? null;
      s += ` This time their backlog drained and the service came back ${naive.recoverySeconds} s after the faults ended${cmp !== null ? ` (careful: ${cmp} s)` : ''}: the shorter the outage, the smaller the backlog; a longer one (the default run) leaves a backlog the service never works off.`;
    }
    parts.push(s);
  }
  if (careful !== undefined) {
    let s =
      `The careful clients waited before retrying — a random wait that doubles each time up to a cap ("exponential backoff with full jitter"), or exactly as long as Retry-After asked — made at most 3 attempts, and never let retries exceed about 10 % of their requests (a retry budget). ` +
      `Their load stayed at ${x(careful.amplificationInFaults)} of normal during the faults`;
    if (careful.recoverySeconds !== null) s += `, and they were back to normal ${careful.recoverySeconds} s after the faults ended`;
    else if (careful.afterFaults !== null) s += `, and after the faults ${careful.afterFaults.goodputPerSecond} of their requests a second got through (they made ${careful.afterFaults.organicPerSecond} new ones a second)`;
    s += '. Some of their requests failed during the outage — nothing can help that — but they never made the outage worse.';
    const notes: string[] = [];
    if (careful.backoff === 'insufficient-data') notes.push('the analysis could not classify their backoff because, with a 10 % budget, hardly any request was retried twice');
    if (careful.findings.some((f) => f.code === 'herd')) {
      notes.push('it flags a small herd because every careful client was told the same Retry-After at the same moment, so their single retries came back close together — a reason for servers to vary Retry-After');
    }
    if (notes.length > 0) s += ` (Of the careful fleet's report: ${notes.join('; ')}.)`;
    parts.push(s);
  }
  const missed = unseenAttempts(result);
  if (missed !== null) parts.push(missed);
  return parts.join('\n');
}

/**
 * When a fleet's clients counted clearly more attempts than its proxy recorded, says so: one
 * process runs the clients, proxies and services, and past a few dozen clients per fleet it is
 * saturated, so attempts time out at the client before the proxy reads them and the reports
 * cover only part of the traffic. Null when every fleet's counts agree (within 5 %).
 *
 * @example unseenAttempts(result) // 'Not every attempt reached its proxy: ...'
 */
export function unseenAttempts(result: DemoResult): string | null {
  const short: string[] = [];
  for (const f of result.fleets) {
    const sent = f.clients?.attempts ?? 0;
    if (sent === 0) continue;
    const seen = f.report.totals.attempts;
    if (sent - seen > Math.max(20, 0.05 * sent)) short.push(`the ${f.kind} clients sent ${sent} attempts and their proxy recorded ${seen}`);
  }
  if (short.length === 0) return null;
  return (
    `Not every attempt reached its proxy: ${short.join('; ')}. One process runs the clients, the proxies and the services, and with ${result.clientsPerFleet} clients per fleet it was saturated: ` +
    'attempts timed out at the client before the proxy read them, so the reports above cover only what the proxies saw. Run with fewer --clients (the default 20 fits) for a complete picture.'
  );
}

const FLEET_COLOURS: Record<string, string> = { naive: '#c62828', careful: '#2e7d32' };

/**
 * Both fleets' offered load (solid) and goodput (dashed) per second on one chart, over the
 * profile's phases (faulty phases shaded): the storm and its aftermath at a glance.
 *
 * @example html.push(comparisonSvg(result))
 */
export function comparisonSvg(result: DemoResult): string {
  const W = 1040;
  const H = 280;
  const L = 52;
  const R = 12;
  const T = 22;
  const B = 30;
  const span = Math.max(1, result.durationMs / 1000);
  const series = result.fleets.map((f) => {
    const origin = f.report.range.origin ?? f.report.range.start ?? 0;
    const binS = f.report.dataQuality.binMs / 1000;
    return {
      kind: f.kind,
      pts: f.report.timeline.map((b) => ({ s: (b.t - origin) / 1000 + binS / 2, offered: b.offered / binS, goodput: b.goodput / binS })),
    };
  });
  const ymax = Math.max(1, ...series.flatMap((x) => x.pts.map((p) => Math.max(p.offered, p.goodput))));
  const px = (sec: number): number => L + (Math.min(span, Math.max(0, sec)) / span) * (W - L - R);
  const py = (v: number): number => T + (1 - v / ymax) * (H - T - B);
  const o: string[] = [`<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="offered load and goodput per second of each fleet">`];
  for (const p of result.phases) {
    const bad = /outage|degrad|recover|gate/i.test(p.name);
    const x0 = px(p.startMs / 1000);
    const x1 = px(p.endMs / 1000);
    if (bad) o.push(`<rect x="${x0.toFixed(1)}" y="${T}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${H - T - B}" fill="#e53935" fill-opacity="0.08"/>`);
    o.push(`<text x="${((x0 + x1) / 2).toFixed(1)}" y="${T - 7}" font-size="10" text-anchor="middle" fill="#5a6270">${escapeHtml(p.name)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    o.push(`<line x1="${L}" x2="${W - R}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#eceff3"/>`);
    o.push(`<text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#5a6270">${Math.round(v)}/s</text>`);
  }
  for (let i = 0; i <= 6; i++) {
    const sec = (span * i) / 6;
    o.push(`<text x="${px(sec).toFixed(1)}" y="${H - 10}" font-size="11" text-anchor="middle" fill="#5a6270">${Math.round(sec)} s</text>`);
  }
  for (const sr of series) {
    const colour = FLEET_COLOURS[sr.kind] ?? '#1e88e5';
    const line = (k: 'offered' | 'goodput'): string => sr.pts.map((p) => `${px(p.s).toFixed(1)},${py(p[k]).toFixed(1)}`).join(' ');
    o.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.8" points="${line('offered')}"/>`);
    o.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.4" stroke-dasharray="4 3" points="${line('goodput')}"/>`);
  }
  o.push('</svg>');
  const legend = result.fleets
    .map((f) => {
      const c = FLEET_COLOURS[f.kind] ?? '#1e88e5';
      return `<span><i class="sw" style="background:${c}"></i>${escapeHtml(f.kind)}: offered load (solid), goodput (dashed)</span>`;
    })
    .join('');
  return `${o.join('')}<div class="legend">${legend}<span><i class="sw" style="background:#e53935;opacity:.25"></i>faults injected</span></div>`;
}

const HTML_CSS = `
.demo{max-width:1100px;margin:0 auto;padding:24px 24px 0}
.demo table td,.demo table th{white-space:nowrap}.demo p{max-width:820px}
.fleet-title{max-width:1100px;margin:32px auto 0;padding:0 24px;font-size:20px}
`;

/**
 * One self-contained HTML page: the comparison and the closing paragraph, then each fleet's full
 * report as `formatReport(report, 'html')` renders it (same stylesheet, no script, no network).
 *
 * @example fs.writeFileSync('demo.html', renderDemoHtml(result))
 */
export function renderDemoHtml(result: DemoResult): string {
  const h = escapeHtml;
  const pages = result.fleets.map((f) => ({ kind: f.kind, html: formatReport(f.report, 'html') }));
  const style = /<style>([\s\S]*?)<\/style>/.exec(pages[0]?.html ?? '')?.[1] ?? '';
  const o: string[] = [];
  o.push('<!doctype html><html lang="en"><head><meta charset="utf-8">');
  o.push(`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`);
  o.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  o.push(`<title>aftershock demo: ${h(result.profile)}</title><style>${style}${HTML_CSS}</style></head><body>`);
  o.push('<div class="demo">');
  o.push(`<h1>The same outage, ${result.fleets.length === 1 ? 'one kind' : 'two kinds'} of clients</h1>`);
  o.push(`<p class="meta">profile <code>${h(result.profile)}</code> · ${Math.round(result.durationMs / 1000)} s${result.scale === 1 ? '' : ` (timeline scaled ×${result.scale.toFixed(2)})`} · ${result.clientsPerFleet} clients per fleet · seed ${result.seed}${result.aborted ? ' · stopped early' : ''}</p>`);
  o.push('<table><tr><th></th>');
  for (const f of result.fleets) o.push(`<th><a href="#${h(f.kind)}">${h(f.kind)}</a></th>`);
  o.push('</tr>');
  for (const [label, cells] of rows(result.fleets, result.aborted)) {
    const cell = (c: string): string => (label === 'verdict' ? `<td><span class="verdict ${c === 'ok' ? 'ok' : 'storm'}">${h(c)}</span></td>` : `<td class="n">${h(c)}</td>`);
    o.push(`<tr><td>${h(label)}</td>${cells.map(cell).join('')}</tr>`);
  }
  o.push(`<tr><td>findings</td>${result.fleets.map((f) => `<td>${f.summary.findings.length === 0 ? 'none' : f.summary.findings.map((c) => `<span class="sev-${c.severity}">${h(c.code)}</span>${c.count > 1 ? ` ×${c.count}` : ''}`).join('<br>')}</td>`).join('')}</tr>`);
  o.push('</table>');
  o.push('<h2>Offered load and goodput per second</h2>');
  o.push(comparisonSvg(result));
  o.push('<h2>What happened</h2>');
  for (const p of closingParagraph(result).split('\n')) o.push(`<p>${h(p)}</p>`);
  o.push('</div>');
  for (const p of pages) {
    const main = /<main>([\s\S]*)<\/main>/.exec(p.html)?.[1];
    o.push(`<h2 class="fleet-title" id="${h(p.kind)}">${h(p.kind)} fleet: the full report</h2>`);
    o.push(main === undefined ? `<main><p>The report could not be embedded.</p></main>` : `<main>${main}</main>`);
  }
  o.push('</body></html>');
  return o.join('\n');
}

/**
 * The combined JSON (`aftershock demo --json`): the run, each fleet's summary, client and service
 * counters, and its full report.
 *
 * @example JSON.stringify(demoJson(result)).length > 0
 */
export function demoJson(result: DemoResult): Record<string, unknown> {
  return {
    schemaVersion: 1,
    profile: result.profile,
    durationMs: result.durationMs,
    scale: result.scale,
    phases: result.phases,
    clientsPerFleet: result.clientsPerFleet,
    intervalMs: result.intervalMs,
    serviceCapacity: result.serviceCapacity,
    seed: result.seed,
    aborted: result.aborted,
    htmlPath: result.htmlPath,
    recordPath: result.recordPath,
    fleets: Object.fromEntries(result.fleets.map((f) => [f.kind, { summary: f.summary, clients: f.clients, service: f.service, report: f.report }])),
  };
}
