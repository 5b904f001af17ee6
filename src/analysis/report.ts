/**
 * From aggregates to the report: classify each client and client type, lay out the timeline, derive
 * the fault windows and what happened in and after them (amplification, herds, recovery), then
 * turn it all into findings and one verdict. Pure: the same aggregates give the same report.
 */
import type { HeaderRecord } from '../record/schema.js';
import { VERSION } from '../version.js';
import type { Aggregates, Bin, ClientAgg, Counts, FamilyAgg, JitterGroup } from './aggregates.js';
import { FINE_BIN_MS, SERIES_MIN_SHARE, addBin } from './aggregates.js';
import type { ResolvedOptions, QualityCounters } from './types.js';
import { type Confidence, decideBackoff, summarizeRetryAfter } from './backoff.js';
import type { EvidenceKind } from './chain.js';
import { FINDINGS, RETRY_BUDGET, SEVERITY_RANK, SHARE_BASED_FINDINGS, judgeClient, makeFinding, overRetryBudget } from './findings.js';
import { JITTER_THRESHOLDS, classifyJitter } from './jitter.js';
import { StrideReservoir, median, round } from './stats.js';
import type {
  AttemptsPerRequest,
  BackoffDetail,
  ClientReport,
  ClientTypeReport,
  FaultWindowReport,
  Finding,
  FindingCode,
  HerdReport,
  JitterDetail,
  Report,
  RetryAfterCounts,
  RouteReport,
  TimelineBin,
  Totals,
} from './types.js';

/** One merged stretch of injected faults of one rule. */
export interface FaultInterval {
  start: number;
  end: number;
  faults: number;
}

export interface ReportInput {
  agg: Aggregates;
  opts: ResolvedOptions;
  windowMs: number;
  faultIntervals: ReadonlyMap<string, readonly FaultInterval[]>;
  headers: readonly HeaderRecord[];
  marks: ReadonlyArray<{ t: number; label: string }>;
  events: ReadonlyArray<{ t: number; event: string; detail: Record<string, unknown> }>;
  quality: QualityCounters;
  distinctClients: number;
  nat: ReadonlyArray<{ ip: string; userAgents: number }>;
  firstTs: number | null;
  lastEnd: number | null;
  /** Threads the records were split among by client key (1: one engine saw them all). */
  partitions?: number;
  /** Worker threads the engines ran in (0: the calling thread). */
  workerThreads?: number;
  /** A client key header was asked for, and no record carried it. */
  clientKeyHeaderUnseen?: boolean;
}

/** Fault bins closer than this (ms) are one fault window. */
export const FAULT_GAP_MS = 2000;

/** Thresholds of the report-level checks (spec §5, §6), quoted by the docs. */
export const REPORT_THRESHOLDS = {
  /** Retry budgets: Google SRE per-client 10 %, Finagle/Linkerd/Envoy 20 % (see `RETRY_BUDGET`). */
  budgetSre: RETRY_BUDGET.sre,
  budgetFinagle: RETRY_BUDGET.finagle,
  /** A client's or client type's budget finding needs this many retries. */
  typeBudgetMinRetries: RETRY_BUDGET.minRetries,
  /** Verdict: alpha above this factor of baseline, with retry ratio above `budgetFinagle`. */
  stormAlphaFactor: 1.1,
  /** Verdict: no jitter across at least this many clients. */
  noJitterClients: 10,
  /** Herd: variance/mean above this (with at least `herdMinRetries` and 10 bins) ... */
  herdVarianceToMean: 3,
  herdMinRetriesForVariance: 10,
  /** ... or peak/mean above this with at least this many retries. */
  herdPeakToMean: 5,
  herdMinRetries: 20,
  /** ... and a peak that chance (Poisson arrivals) would produce in fewer than this many bins. */
  herdChance: 0.01,
  /** Recovery: alpha back within this factor of baseline, over a 3-bin rolling window. */
  recoveryFactor: 1.1,
  recoveryRollingBins: 3,
  /** Sustained amplification: not recovered this many seconds after the window. */
  sustainSeconds: 10,
  /** Retries counted after a window for this long. */
  afterWindowSeconds: 60,
  /** Pre-fault baseline needs this many first attempts; else outside-window bins are used. */
  baselineMinOrganic: 10,
  /** NAT: this many User-Agents behind one IP. */
  natUserAgents: 3,
} as const;
const R = REPORT_THRESHOLDS;

/** Stated when one file was analysed by several threads (`dataQuality.partitions` > 1). */
export const PARTITIONED_LIMIT =
  'This recording was split by client key among several threads and their results merged. Counts, timeline, clients, routes, fault windows and findings are those of one engine, except that the sampled gap statistics (median gaps per attempt index, jitter) come from a merged sample, that where a cap was reached (clients or open requests evicted) each thread evicted by its own share of it, and that a client key written in two different JSON spellings could be split. Use --threads 1 for a single-engine result.';

/** Stated when a client came back after the client table (`--max-clients`) evicted its summary. */
export const EVICTED_RETURN_LIMIT =
  'Some clients came back after the client table (--max-clients) evicted their summary: each part of such a client is judged on its own, so the clients listed and their numbers cover a part, and per-finding client counts ("N in all") are lower bounds ("at least"), or estimates ("about") for immediate-retries and the Retry-After findings, which are decided by a share of the gaps. Totals count every attempt either way; a larger --max-clients avoids this.';

/** The known limits (spec §7), stated in every report. */
export const KNOWN_LIMITS: readonly string[] = [
  'Polling that follows a failed poll looks like a retry (same fingerprint, previous attempt failed); a client that gives up and sends the same request again within the window looks like one long chain.',
  'NAT merges clients: several clients behind one IP and User-Agent share a client key and overstate per-client amplification.',
  'TLS must be terminated at the proxy to fingerprint requests; a pass-through tunnel shows no paths or bodies.',
  'Per-attempt nonces in bodies (request ids, timestamps) change the body hash and split one logical request into several; they need masking rules.',
  'Retries made behind the proxy (by a sidecar, a load balancer, or the upstream itself) are invisible.',
  'A hang only causes retries if the client has a retryable timeout.',
  'Two gaps cannot tell linear from exponential backoff; such schedules are classified with medium confidence.',
  'Full-jitter clients look irregular chain by chain; they are classified from the median gap per attempt index over many chains. Chains that reach deep attempt indexes inside a short fault window are biased towards short gaps.',
  'Records arrive in end order; attempts more than the reorder lag out of start order are grouped as they come (counted in dataQuality.lateRecords).',
  'Fault windows come from the faulted attempts: faults of one rule more than 2 s apart make one window only when nothing succeeded in between, so a rule that targets some routes while other routes keep succeeding shows a sparse outage as several windows.',
  "A fault window's counts (offered, organic, retries, amplification) add up the whole time bins it touches (1 s by default): a short window right next to another rule's window shares its edge seconds' traffic with it.",
  'A WebSocket endpoint is its path and query (cache-busting keys and per-connection ones such as sid, id or token dropped): a client that reconnects with a query that changes every time (a resume cursor such as ?since=) starts a new chain on each reconnect unless that key is named in --cache-busting-keys.',
  'The retry window grows with the largest Retry-After seen so far, as the records stream in: a request whose chain had already closed under the smaller window is not joined again when a larger Retry-After comes later (give --window to fix it).',
];

/**
 * A fault window's offered / organic load: unbounded (Infinity) when it had retries and no first
 * attempt; null when it had neither (a hedge alone, say).
 */
export function windowAlpha(w: Pick<FaultWindowReport, 'amplification' | 'offered' | 'organic' | 'retries'>): number | null {
  if (w.amplification !== null) return w.amplification;
  return w.organic === 0 && w.retries > 0 ? Number.POSITIVE_INFINITY : null;
}

/** The report's offered / organic load over its fault windows, unbounded (Infinity) when every attempt in them was a retry. */
export function faultsAlpha(r: Pick<Report, 'totals' | 'faultWindows'>): number | null {
  if (r.totals.amplificationInFaults !== null) return r.totals.amplificationInFaults;
  return r.faultWindows.some((w) => w.retries > 0) ? Number.POSITIVE_INFINITY : null;
}

/** An amplification for people: the number, `unbounded` (only retries), or what `show` makes of null. */
export function alphaText(alpha: number | null, show: (x: number | null) => string): string {
  return alpha === Number.POSITIVE_INFINITY ? 'unbounded' : show(alpha);
}

/** Retries an only-retries window needs before it can make a storm: one late retry never does. */
const UNBOUNDED_MIN_RETRIES = 10;

function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

function perRequest(c: Counts): AttemptsPerRequest {
  return { mean: round(c.hist.mean, 3), p95: c.hist.quantile(0.95), max: c.hist.max, histogram: c.hist.buckets() };
}

function ra(c: Counts): RetryAfterCounts {
  return { compliant: c.raCompliant, violates: c.raViolates, late: c.raLate, lateWithinJitter: c.raJittered };
}

/** Deciding a backoff from many chains lives with the classifiers (backoff.ts); still importable here. */
export { decideBackoff, IMMEDIATE_SHARE } from './backoff.js';

/** Chains needed at an attempt index before its median gap joins a client type's series. */
const FAMILY_INDEX_MIN_SAMPLES = 8;

function familySeries(f: FamilyAgg): number[] {
  const out: number[] = [];
  const n0 = (f.gapsByIndex[0] as StrideReservoir).count;
  // With fewer chains than that, every one of them (a single chain's gaps are its schedule).
  const need = Math.min(FAMILY_INDEX_MIN_SAMPLES, n0);
  if (need === 0) return out;
  for (const r of f.gapsByIndex) {
    if (r.values.length < need || r.count < SERIES_MIN_SHARE * n0) break;
    out.push(median(r.values));
  }
  return out;
}

function decideJitter(f: FamilyAgg): JitterDetail {
  let best: [string, JitterGroup] | null = null;
  for (const e of f.groups) if (best === null || e[1].samples > best[1].samples) best = e;
  if (best === null) return { class: 'unknown', cv: null, cvByIndex: [], chains: 0, clients: 0, trigger: null };
  const [trigger, g] = best;
  const j = classifyJitter({
    gapsByIndex: g.byIndex.map((r: StrideReservoir) => r.values),
    countsByIndex: g.byIndex.map((r: StrideReservoir) => r.count),
    firstGapsByClient: [...g.clients.values()],
    ratios: g.ratios.values,
  });
  return {
    class: j.class,
    cv: j.cv === null ? null : round(j.cv, 4),
    cvByIndex: j.cvByIndex.map((c) => (c === null ? null : round(c, 4))),
    chains: g.samples,
    clients: j.class === 'none' ? g.clients.size + sameWaitElsewhere(f, trigger, g) : g.clients.size,
    trigger,
  };
}

/**
 * Clients of the type whose first failure had another trigger (a connection closed where the others
 * were refused) but who came back after the very same first wait as the chains the class was read
 * from: every first gap within 2 % or 15 ms of those chains' median. They retry in step with the
 * others, and count among the clients with no jitter.
 */
function sameWaitElsewhere(f: FamilyAgg, trigger: string, g: JitterGroup): number {
  const firsts = (g.byIndex[0] as StrideReservoir).values;
  if (firsts.length === 0) return 0;
  const m = median(firsts);
  const tol = Math.max(3 * JITTER_THRESHOLDS.noiseMs, 0.02 * m);
  const seen = new Set<string>();
  for (const [t, other] of f.groups) {
    if (t === trigger) continue;
    for (const [client, gaps] of other.clients) {
      if (g.clients.has(client) || seen.has(client) || gaps.length === 0) continue;
      if (gaps.every((x) => Math.abs(x - m) <= tol)) seen.add(client);
    }
  }
  return seen.size;
}

interface ClientEval {
  agg: ClientAgg;
  report: ClientReport;
  critical: number;
  warning: number;
}

function evalClient(c: ClientAgg): ClientEval {
  const { backoff, retryAfter: raVerdict, codes, critical, warning } = judgeClient(c);
  const giveUp = c.giveUp.n === 0 ? null : modeOf(c.giveUp.counts, c.giveUp.max);
  const examples: string[] = [];
  for (const k of ['unbounded', 'duplicate', 'raViolation', 'immediate', 'unsafe', 'nonRetryable', 'retry'] as EvidenceKind[]) {
    for (const id of c.examples[k] ?? []) if (examples.length < 3 && !examples.includes(id)) examples.push(id);
  }
  return {
    agg: c,
    critical,
    warning,
    report: {
      key: c.key,
      userAgent: c.userAgent,
      clientType: c.family,
      ip: c.ip,
      attempts: c.attempts,
      logicalRequests: c.logical,
      retries: c.retries,
      hedges: c.hedges,
      retryRatio: round(ratio(c.retries, c.attempts), 4),
      maxAttempts: c.hist.max,
      giveUpAfter: giveUp,
      backoff: backoff.class,
      backoffDetail: backoff,
      retryAfter: raVerdict,
      retryAfterCounts: ra(c),
      unsafeRetries: c.unsafeRetries,
      duplicateSubmissions: c.duplicateSubmissions,
      nonRetryableRetries: c.nonRetryableRetries,
      unboundedChains: c.unbounded,
      immediateRetries: c.immediateGaps,
      attemptsPerRequest: perRequest(c),
      findings: codes,
      examples,
    },
  };
}

function modeOf(counts: readonly number[], max: number): number {
  let best = 0;
  let bestN = -1;
  for (let i = 0; i < counts.length; i++) {
    if ((counts[i] as number) > bestN) {
      bestN = counts[i] as number;
      best = i + 1;
    }
  }
  return best > counts.length - 1 ? max : best;
}

function worstFirst(a: ClientEval, b: ClientEval): number {
  return (
    b.critical - a.critical ||
    b.warning - a.warning ||
    b.agg.badness - a.agg.badness ||
    b.agg.attempts - a.agg.attempts ||
    (a.agg.key < b.agg.key ? -1 : a.agg.key > b.agg.key ? 1 : 0)
  );
}

function binsInRange(bins: ReadonlyMap<number, Bin>, fromIdx: number, toIdx: number): Bin {
  const sum: Bin = { offered: 0, organic: 0, retries: 0, hedges: 0, goodput: 0, errors: 0, faults: 0 };
  if (toIdx - fromIdx > bins.size) {
    for (const [k, b] of bins) if (k >= fromIdx && k <= toIdx) addBin(sum, b);
  } else {
    for (let k = fromIdx; k <= toIdx; k++) {
      const b = bins.get(k);
      if (b !== undefined) addBin(sum, b);
    }
  }
  return sum;
}

interface Window {
  rule: string;
  start: number;
  end: number;
  faults: number;
}

/**
 * P(X >= k) for X ~ Poisson(m): how likely a 100 ms bin this full is by chance alone. Summed in
 * log space so large means do not underflow.
 */
export function poissonTail(k: number, m: number): number {
  if (k <= 0) return 1;
  if (m <= 0) return 0;
  let term = Math.exp(-m);
  let below = 0;
  for (let i = 0; i < k; i++) {
    below += term;
    term *= m / (i + 1);
    if (!Number.isFinite(term)) break;
  }
  return Math.max(0, 1 - below);
}

/**
 * Herd test (spec §5) over the 100 ms retry bins of a window: variance/mean > 3, or peak/mean > 5
 * with 20+ retries. With sparse retries (mean well under one per bin) a peak of 5 is ordinary, so
 * the peak must also be unlikely by chance (expected number of such bins under Poisson arrivals
 * below 0.01).
 */
function herdOf(fine: ReadonlyMap<number, number>, w: Window, fineDropped: boolean): HerdReport {
  const from = Math.floor(w.start / FINE_BIN_MS);
  const to = Math.floor(w.end / FINE_BIN_MS);
  const n = to - from + 1;
  let total = 0;
  let peak = 0;
  let sq = 0;
  if (n > fine.size) {
    for (const [k, c] of fine) {
      if (k < from || k > to) continue;
      total += c;
      sq += c * c;
      if (c > peak) peak = c;
    }
  } else {
    for (let k = from; k <= to; k++) {
      const c = fine.get(k) ?? 0;
      total += c;
      sq += c * c;
      if (c > peak) peak = c;
    }
  }
  if (total === 0) return { detected: false, retries: 0, varianceToMean: null, peakToMean: null };
  const mean = total / n;
  const variance = sq / n - mean * mean;
  const vtm = variance / mean;
  const ptm = peak / mean;
  const byVariance = vtm > R.herdVarianceToMean && total >= R.herdMinRetriesForVariance && n >= 10;
  const byPeak = ptm > R.herdPeakToMean && total >= R.herdMinRetries && n * poissonTail(peak, mean) < R.herdChance;
  const h: HerdReport = { detected: byVariance || byPeak, retries: total, varianceToMean: round(vtm, 3), peakToMean: round(ptm, 3) };
  if (n < 10 || total < R.herdMinRetriesForVariance) h.note = `too few retries (${total}) or 100 ms bins (${n}) for a variance test`;
  if (fineDropped) h.note = 'older 100 ms retry bins were dropped to bound memory; herd detection may be partial';
  return h;
}

/** What happened after a fault episode (all overlapping windows) ended. */
interface Aftermath {
  end: number;
  rules: string[];
  retriesAfter: number;
  recoverySeconds: number | null;
  recoveryNote?: string;
  observedMs: number;
  spikeOffered: number;
  /** Attempts and failures the upstream gave itself (not injected) while load stayed amplified after the episode. */
  amplifiedAttempts: number;
  ownFailures: number;
}

/**
 * Recordings whose earlier file is not among the inputs: a proxy instance's file that was moved
 * away (rotation, mv) goes on in a new file, which starts with the same header and says it
 * continues (`recording-continued`). Every part has a header, so an instance with no more headers
 * than continuations lacks its first part.
 */
function missingEarlierParts(
  headers: readonly HeaderRecord[],
  events: ReadonlyArray<{ t: number; event: string; detail: Record<string, unknown> }>,
): Array<{ instance: string; t: number; linesBefore: number | null }> {
  const continued = new Map<string, { n: number; t: number; linesBefore: number | null }>();
  for (const e of events) {
    const instance = e.detail.instance;
    if (e.event !== 'recording-continued' || typeof instance !== 'string') continue;
    const seen = continued.get(instance);
    const linesBefore = typeof e.detail.linesBefore === 'number' ? e.detail.linesBefore : null;
    if (seen === undefined) continued.set(instance, { n: 1, t: e.t, linesBefore });
    else seen.n++;
  }
  const out: Array<{ instance: string; t: number; linesBefore: number | null }> = [];
  for (const [instance, c] of continued) {
    const parts = headers.filter((h) => h.instance === instance).length;
    if (parts <= c.n) out.push({ instance, t: c.t, linesBefore: c.linesBefore });
  }
  return out;
}

/** Builds the report. */
export function buildReport(input: ReportInput): Report {
  const { agg, opts } = input;
  const binMs = agg.binMs;
  const header = input.headers[0];
  const starts = input.headers.map((h) => h.startMs).filter((x) => typeof x === 'number' && Number.isFinite(x));
  const origin = starts.length > 0 ? Math.min(...starts, input.firstTs ?? Number.POSITIVE_INFINITY) : input.firstTs;

  // ---- clients ----
  const evals: ClientEval[] = [];
  for (const c of agg.clients.values()) evals.push(evalClient(c));
  evals.sort(worstFirst);
  const listed = evals.slice(0, opts.maxReportedClients);

  // ---- client types ----
  const types: ClientTypeReport[] = [];
  for (const f of agg.families.values()) {
    if (f.attempts === 0) continue;
    // A type of one client is that client: its series needs the chains a client's does.
    const minChains = f.clients === 1 ? 3 : FAMILY_INDEX_MIN_SAMPLES;
    const backoff = decideBackoff(f.votes, familySeries(f), f.immediateGaps, f.gapCount, f.deepVotes, f.gapsByIndex[0]?.count ?? 0, minChains);
    // Immediate retries all come back at once: no jitter, and no CV of gaps that are no schedule.
    const jitter = backoff.class === 'immediate' ? { ...decideJitter(f), class: 'none' as const, cv: null } : decideJitter(f);
    types.push({
      userAgent: f.family,
      userAgents: [...f.userAgents],
      clients: f.clients,
      attempts: f.attempts,
      logicalRequests: f.logical,
      retries: f.retries,
      retryRatio: round(ratio(f.retries, f.attempts), 4),
      maxAttempts: f.hist.max,
      backoff: backoff.class,
      backoffDetail: backoff,
      jitter: jitter.class,
      jitterDetail: jitter,
      retryAfter: summarizeRetryAfter(ra(f)),
      attemptsPerRequest: perRequest(f),
      exampleClients: [...f.exampleClients],
    });
  }
  types.sort((a, b) => b.retries - a.retries || b.attempts - a.attempts || (a.userAgent < b.userAgent ? -1 : 1));

  // ---- routes ----
  const routesAll: RouteReport[] = [];
  for (const r of agg.routes.values()) {
    routesAll.push({
      route: r.route,
      attempts: r.attempts,
      logicalRequests: r.logical,
      retries: r.retries,
      amplification: round(ratio(r.attempts, r.logical), 3),
      retryRatio: round(ratio(r.retries, r.attempts), 4),
      failures: r.failures,
      unsafeRetries: r.unsafeRetries,
      duplicateSubmissions: r.duplicateSubmissions,
      nonRetryableRetries: r.nonRetryableRetries,
      attemptsPerRequest: perRequest(r),
    });
  }
  routesAll.sort((a, b) => b.retries - a.retries || b.attempts - a.attempts || (a.route < b.route ? -1 : 1));
  const routes = routesAll.slice(0, opts.maxReportedRoutes);

  // ---- timeline ----
  const keys = [...agg.bins.keys()].sort((a, b) => a - b);
  const timeline: TimelineBin[] = [];
  const originMs = origin ?? 0;
  const pushBin = (k: number, b: Bin | undefined): void => {
    const x = b ?? { offered: 0, organic: 0, retries: 0, hedges: 0, goodput: 0, errors: 0, faults: 0 };
    timeline.push({
      t: k * binMs,
      offset: round((k * binMs - originMs) / 1000, 3),
      organic: x.organic,
      offered: x.offered,
      goodput: x.goodput,
      errors: x.errors,
      faults: x.faults,
      retries: x.retries,
      hedges: x.hedges,
      amplification: x.organic === 0 ? null : round(x.offered / x.organic, 3),
    });
  };
  if (keys.length > 0) {
    const lo = keys[0] as number;
    const hi = keys[keys.length - 1] as number;
    if (hi - lo + 1 <= Math.max(opts.maxBins, keys.length) * 2) for (let k = lo; k <= hi; k++) pushBin(k, agg.bins.get(k));
    else for (const k of keys) pushBin(k, agg.bins.get(k));
  }

  // ---- fault windows, episodes and baseline ----
  const windows: Window[] = [];
  for (const [rule, list] of input.faultIntervals) {
    // Faults of one rule more than FAULT_GAP_MS apart are one window when nothing succeeded
    // between them: sparse traffic through a long outage is one outage, not a row of slivers.
    let cur: Window | null = null;
    for (const iv of [...list].sort((a, b) => a.start - b.start)) {
      if (cur !== null && binsInRange(agg.bins, Math.floor(cur.end / binMs), Math.floor(iv.start / binMs)).goodput === 0) {
        cur.end = Math.max(cur.end, iv.end);
        cur.faults += iv.faults;
        continue;
      }
      cur = { rule, start: iv.start, end: iv.end, faults: iv.faults };
      windows.push(cur);
    }
  }
  windows.sort((a, b) => a.start - b.start || (a.rule < b.rule ? -1 : 1));
  // Episodes: the union of every rule's windows (2 s gap tolerance). Recovery is measured after an
  // episode ends: while another rule still injects faults there is nothing to recover to.
  // (Lookups below walk these sorted lists or use maps: a sidecar up for days with a flapping
  // profile has thousands of windows, and a scan per window or per second made a report take seconds.)
  type Episode = { start: number; end: number; rules: string[] };
  const episodes: Episode[] = [];
  const episodeByWindow = new Map<Window, Episode>();
  for (const w of windows) {
    const last = episodes[episodes.length - 1];
    if (last !== undefined && w.start <= last.end + FAULT_GAP_MS) {
      last.end = Math.max(last.end, w.end);
      if (!last.rules.includes(w.rule)) last.rules.push(w.rule);
      episodeByWindow.set(w, last);
    } else {
      const e = { start: w.start, end: w.end, rules: [w.rule] };
      episodes.push(e);
      episodeByWindow.set(w, e);
    }
  }
  const nextEpisodeStart = new Map<Episode, number>();
  for (let i = 0; i < episodes.length; i++) nextEpisodeStart.set(episodes[i] as Episode, episodes[i + 1]?.start ?? Number.POSITIVE_INFINITY);
  const episodeOf = (w: Window): Episode => episodeByWindow.get(w) as Episode;
  const afterMs = R.afterWindowSeconds * 1000;
  // Whether second k is inside an episode or in the aftermath after one; asked for k in rising order.
  let cursor = 0;
  const inEpisodeOrAftermath = (k: number): boolean => {
    const s0 = k * binMs;
    while (cursor < episodes.length && (episodes[cursor] as Episode).end + afterMs < s0) cursor++;
    for (let j = cursor; j < episodes.length && (episodes[j] as Episode).start < s0 + binMs; j++) {
      const e = episodes[j] as Episode;
      if (s0 <= e.end + afterMs) return true;
    }
    return false;
  };
  let baseline = { alpha: 1, source: 'assumed' as 'pre-fault' | 'outside-faults' | 'assumed', offeredRate: 0, bins: 0 };
  if (episodes.length === 0) {
    // No fault window: no fault-free stretch to measure a baseline from. The whole recording is
    // what is judged, so measuring the baseline from it too would make "above 1.1 x baseline"
    // impossible (a fleet of 12 clients at amplification 3 read as ok; 9 such clients as a storm).
    const span = keys.length === 0 ? 1 : (keys[keys.length - 1] as number) - (keys[0] as number) + 1;
    baseline = { alpha: 1, source: 'assumed', offeredRate: agg.totals.logical / span, bins: 0 };
  } else {
    const firstStart = episodes.length > 0 ? (episodes[0] as { start: number }).start : Number.POSITIVE_INFINITY;
    // The rate is per second of the stretch, quiet seconds included (a bin with no traffic is not
    // in the map): 40 connections over 8 s are 5/s, not 40/s because they came in one second.
    let off = 0;
    let org = 0;
    let last: number | null = null;
    for (const k of keys) {
      if ((k + 1) * binMs > firstStart) break;
      const b = agg.bins.get(k) as Bin;
      off += b.offered;
      org += b.organic;
      last = k;
    }
    const first = keys[0] ?? 0;
    let n = last === null ? 0 : last - first + 1;
    if (org >= R.baselineMinOrganic) baseline = { alpha: off / org, source: 'pre-fault', offeredRate: off / n, bins: n };
    else {
      off = 0;
      org = 0;
      n = 0;
      const lastKeyAll = keys[keys.length - 1] ?? first;
      // Every second of the recording outside the episodes and their aftermath (only the bins that
      // hold traffic when the recording spans too many seconds to walk).
      const visit = (k: number): void => {
        if (inEpisodeOrAftermath(k)) return;
        n++;
        const b = agg.bins.get(k);
        if (b === undefined) return;
        off += b.offered;
        org += b.organic;
      };
      if (lastKeyAll - first + 1 <= 200_000) for (let k = first; k <= lastKeyAll; k++) visit(k);
      else for (const k of keys) visit(k);
      if (org >= R.baselineMinOrganic) baseline = { alpha: off / org, source: 'outside-faults', offeredRate: off / n, bins: n };
      else {
        const span = keys.length === 0 ? 1 : (keys[keys.length - 1] as number) - (keys[0] as number) + 1;
        baseline = { alpha: 1, source: 'assumed', offeredRate: agg.totals.logical / span, bins: 0 };
      }
    }
  }
  const baseAlpha = Math.max(1, baseline.alpha);
  const lastKey = keys.length === 0 ? 0 : (keys[keys.length - 1] as number);

  const aftermaths = new Map<number, Aftermath>();
  const aftermathOf = (e: Episode): Aftermath => {
    const cached = aftermaths.get(e.start);
    if (cached !== undefined) return cached;
    const to = Math.floor(e.end / binMs);
    const nextStart = nextEpisodeStart.get(e) ?? Number.POSITIVE_INFINITY;
    // Up to the last whole bin before the next episode: the bin it starts in holds its own retries.
    const beforeNext = Number.isFinite(nextStart) ? Math.floor(nextStart / binMs) - 1 : Number.POSITIVE_INFINITY;
    const afterTo = Math.min(Math.floor((e.end + R.afterWindowSeconds * 1000) / binMs), beforeNext);
    const after = to + 1 <= afterTo ? binsInRange(agg.bins, to + 1, afterTo) : null;
    const stopAt = Math.min(lastKey, beforeNext);
    // Recovery is the end of the amplified traffic, not the arrival of the next request: quiet
    // seconds are not amplification. With no amplified window at all, load was back at once (0 s),
    // however long the next request took to come. Amplified windows followed by a full rolling
    // window of silence (a reconnect burst, then sockets that stay open) recovered when that
    // traffic ended; amplified traffic still coming when the data ends did not recover.
    let recoverySeconds: number | null = null;
    let sawTraffic = false;
    let lastAmplified: number | null = null;
    for (let k = to + 1; k <= stopAt; k++) {
      const roll = binsInRange(agg.bins, k, Math.min(k + R.recoveryRollingBins - 1, stopAt));
      if (roll.offered === 0) continue;
      sawTraffic = true;
      // Only retries, every one of them answered: the clients' backlog draining once the fault is
      // gone (Retry-After honoured, then success), not load that keeps itself up.
      const draining = roll.organic === 0 && roll.errors === 0;
      if (draining || (roll.organic > 0 && roll.offered / roll.organic <= R.recoveryFactor * baseAlpha)) {
        recoverySeconds = lastAmplified === null ? 0 : round(Math.max(0, (k * binMs - e.end) / 1000), 1);
        break;
      }
      lastAmplified = k;
    }
    if (recoverySeconds === null && lastAmplified !== null && stopAt - lastAmplified >= R.recoveryRollingBins) {
      recoverySeconds = round(Math.max(0, ((lastAmplified + 1) * binMs - e.end) / 1000), 1);
    }
    // Nothing at all came after the episode, but the data goes on (quiet for a whole rolling
    // window): nothing was amplified, so load was back at once.
    if (recoverySeconds === null && lastAmplified === null && stopAt - to >= R.recoveryRollingBins) recoverySeconds = 0;
    // The amplified stretch after the episode: were its failures injected (another rule) or the upstream's own?
    const amplified = lastAmplified === null ? null : binsInRange(agg.bins, to + 1, lastAmplified);
    const a: Aftermath = {
      end: e.end,
      rules: e.rules,
      retriesAfter: after?.retries ?? 0,
      recoverySeconds,
      observedMs: Math.min(input.lastEnd ?? e.end, nextStart) - e.end,
      spikeOffered: agg.bins.get(to + 1)?.offered ?? 0,
      amplifiedAttempts: amplified?.offered ?? 0,
      ownFailures: amplified === null ? 0 : Math.max(0, amplified.errors - amplified.faults),
    };
    if (recoverySeconds === null) {
      a.recoveryNote = stopAt < lastKey ? 'another fault window began first' : !sawTraffic ? 'no traffic after the window' : 'the data ended first';
    }
    aftermaths.set(e.start, a);
    return a;
  };

  const faultWindows: FaultWindowReport[] = [];
  let inOff = 0;
  let inOrg = 0;
  for (const e of episodes) {
    const s0 = binsInRange(agg.bins, Math.floor(e.start / binMs), Math.floor(e.end / binMs));
    inOff += s0.offered;
    inOrg += s0.organic;
  }
  for (const w of windows) {
    const s0 = binsInRange(agg.bins, Math.floor(w.start / binMs), Math.floor(w.end / binMs));
    const ep = episodeOf(w);
    const am = aftermathOf(ep);
    const fw: FaultWindowReport = {
      start: w.start,
      end: w.end,
      rule: w.rule,
      durationSeconds: round((w.end - w.start) / 1000, 3),
      faults: w.faults,
      offered: s0.offered,
      organic: s0.organic,
      retries: s0.retries,
      amplification: s0.organic === 0 ? null : round(s0.offered / s0.organic, 3),
      retryRatio: round(ratio(s0.retries, s0.offered), 4),
      herd: herdOf(agg.fine, w, agg.fineDropped > 0),
      recoverySpike: {
        offered: am.spikeOffered,
        baselineRate: round(baseline.offeredRate * (binMs / 1000), 3),
        ratio: baseline.offeredRate > 0 ? round(am.spikeOffered / baseline.offeredRate, 3) : null,
      },
      retriesAfter: am.retriesAfter,
      recoverySeconds: am.recoverySeconds,
      measuredFrom: ep.end,
    };
    if (am.recoveryNote !== undefined) fw.recoveryNote = am.recoveryNote;
    faultWindows.push(fw);
  }

  // ---- totals ----
  const t = agg.totals;
  const totals: Totals = {
    attempts: t.attempts,
    logicalRequests: t.logical,
    retries: t.retries,
    hedges: t.hedges,
    amplification: round(ratio(t.attempts, t.logical), 4),
    retryRatio: round(ratio(t.retries, t.attempts), 4),
    clients: input.distinctClients,
    failures: t.failures,
    injectedFaults: input.quality.injectedFaults,
    injectedFailures: input.quality.injectedFailures,
    succeeded: t.succeeded,
    gaveUp: t.gaveUp,
    maxAttempts: t.hist.max,
    unboundedChains: t.unbounded,
    unsafeRetries: t.unsafeRetries,
    duplicateSubmissions: t.duplicateSubmissions,
    nonRetryableRetries: t.nonRetryableRetries,
    idempotencyKeyReused: t.idemReuse,
    retryAfter: ra(t),
    attemptsPerRequest: perRequest(t),
    amplificationInFaults: inOrg === 0 ? null : round(inOff / inOrg, 4),
    amplificationBaseline: round(baseline.alpha, 4),
  };

  // ---- findings ----
  const findings: Finding[] = [];
  const perCode = new Map<FindingCode, ClientEval[]>();
  for (const e of evals) for (const code of e.report.findings) (perCode.get(code) ?? perCode.set(code, []).get(code))?.push(e);
  const clientFinding = (code: FindingCode, e: ClientEval): Finding => clientFindingOf(code, e, opts.unboundedAttempts);
  // Every client with a finding, not only the ones the capped client table still holds: the
  // evicted clients were judged as they left the table (`Aggregates.evictedFindings`); the clients
  // held now are added unless that tally holds them already. Exact unless a client came back after
  // its eviction: then the parts are judged apart and the count is a lower bound ("at least"), or,
  // for findings decided by a share of the gaps, an estimate ("about").
  const exactTallies = agg.reEvicted === 0 && agg.returned.size === 0;
  const clientsWith = (code: FindingCode): number => {
    const list = perCode.get(code) ?? [];
    let n = agg.evictedFindings[code] ?? 0;
    for (const e of list) if (!agg.tallied.has(e.agg.key) && !agg.returned.has(e.agg.key)) n++;
    return Math.max(n, list.length);
  };
  const howMany = (code: FindingCode, n: number): string => (exactTallies ? String(n) : `${SHARE_BASED_FINDINGS.has(code) ? 'about' : 'at least'} ${n}`);
  const codesFound = new Set<FindingCode>([...perCode.keys(), ...(Object.keys(agg.evictedFindings) as FindingCode[])]);
  for (const code of codesFound) {
    const list = perCode.get(code) ?? [];
    const shown = list.slice(0, opts.maxFindingsPerCode);
    for (const e of shown) findings.push(clientFinding(code, e));
    const all = clientsWith(code);
    if (all > shown.length) {
      const rest = all - shown.length;
      const sev = shown[0] === undefined ? undefined : clientFinding(code, shown[0] as ClientEval).severity;
      const more = howMany(code, rest);
      findings.push(
        makeFinding(
          code,
          `${more.charAt(0).toUpperCase()}${more.slice(1)} more client${rest === 1 ? '' : 's'} with the same finding (${howMany(code, all)} in all${exactTallies ? '' : '; see limits'}).`,
          { clients: all, more: rest, exact: exactTallies, examples: list.slice(shown.length, shown.length + 3).map((x) => x.agg.key) },
          sev === undefined ? {} : { severity: sev },
        ),
      );
    }
  }
  let noJitterWide = false;
  for (const ct of types) {
    const j = ct.jitterDetail;
    const wide = j.clients >= R.noJitterClients;
    // One gap per chain tells no schedule, but 10+ clients coming back after the same wait of their
    // own is the herd the spec's verdict names (§5: the CV of the k-th gap, k = 1 included) — when
    // those retries are load (10 % of the attempts or more: pollers whose next poll followed a
    // failed one are not), and not a Retry-After they were told and honoured.
    const oneGapHerd = wide && ct.retryRatio >= R.budgetSre && !(j.trigger ?? '').includes('|ra:');
    if (ct.jitter === 'none' && ct.backoff !== 'immediate' && (ct.backoff !== 'insufficient-data' || oneGapHerd) && j.clients >= 2) {
      if (wide) noJitterWide = true;
      const schedule = ct.backoff === 'insufficient-data' ? 'came back after the same wait' : `retried on the same ${ct.backoff} schedule`;
      findings.push(
        makeFinding(
          'no-jitter',
          `${ct.userAgent}: ${j.clients} client${j.clients === 1 ? '' : 's'} ${schedule} with no jitter (CV of the k-th gap ${j.cv ?? 'n/a'} across ${j.chains} chains, trigger ${j.trigger ?? 'n/a'}).`,
          { clients: j.clients, chains: j.chains, cv: j.cv, cvByIndex: j.cvByIndex, trigger: j.trigger, gapsMs: ct.backoffDetail.gapsMs, examples: ct.exampleClients },
          { userAgent: ct.userAgent, severity: wide ? 'critical' : 'warning' },
        ),
      );
    }
  }
  for (const ct of types) {
    if (overRetryBudget(ct)) {
      findings.push(
        makeFinding(
          'retry-budget-exceeded',
          `${ct.userAgent}: retries were ${round(ct.retryRatio * 100, 1)} % of its attempts (${ct.retries} of ${ct.attempts}, ${ct.clients} client${ct.clients === 1 ? '' : 's'}), above the 20 % Finagle/Envoy budget.`,
          { retries: ct.retries, attempts: ct.attempts, retryRatio: ct.retryRatio, clients: ct.clients, examples: ct.exampleClients },
          { userAgent: ct.userAgent },
        ),
      );
    }
  }
  let stormAlpha: string | null = null;
  let stormWindow: FaultWindowReport | null = null;
  let sustained = false;
  for (const w of faultWindows) {
    // A window whose attempts were all retries (the first attempts fell in the seconds before it,
    // as a ws-close counts at the connection's end) has offered / organic = retries / 0: unbounded.
    // It has no amplification of its own to judge, so the whole run's is (as with no fault windows),
    // and only with UNBOUNDED_MIN_RETRIES retries in it (a lone late retry is no storm).
    const alpha = windowAlpha(w);
    const unbounded = alpha === Number.POSITIVE_INFINITY;
    const judged = !unbounded || (w.retries >= UNBOUNDED_MIN_RETRIES && totals.amplification > R.stormAlphaFactor * baseAlpha && totals.retryRatio > R.budgetFinagle);
    if (judged && alpha !== null && alpha > R.stormAlphaFactor * baseAlpha && w.retryRatio > R.budgetFinagle) {
      if (stormWindow === null || alpha > (windowAlpha(stormWindow) ?? 0)) stormWindow = w;
    }
    if (w.herd.detected) {
      findings.push(
        makeFinding(
          'herd',
          `Fault window ${w.rule} (${w.durationSeconds}s): ${w.herd.retries} retries arrived in bursts (variance/mean ${w.herd.varianceToMean} in 100 ms bins, peak/mean ${w.herd.peakToMean}).`,
          { rule: w.rule, start: w.start, end: w.end, retries: w.herd.retries, varianceToMean: w.herd.varianceToMean, peakToMean: w.herd.peakToMean, recoverySpike: w.recoverySpike },
        ),
      );
    }
  }
  const retriesByEpisodeEnd = new Map<number, number>();
  for (const w of faultWindows) retriesByEpisodeEnd.set(w.measuredFrom, (retriesByEpisodeEnd.get(w.measuredFrom) ?? 0) + w.retries);
  for (const e of episodes) {
    const am = aftermathOf(e);
    const inside = retriesByEpisodeEnd.get(e.end) ?? 0;
    const rules = e.rules.join(', ');
    const notRecovered = am.recoverySeconds === null && am.recoveryNote === 'the data ended first' && am.observedMs >= R.sustainSeconds * 1000;
    if (notRecovered || (am.recoverySeconds !== null && am.recoverySeconds > R.sustainSeconds)) {
      sustained = true;
      // The analysis sees failures, not their cause: when the upstream itself kept failing, say so
      // (a load-caused loop is the metastable failure; an upstream failing for reasons of its own
      // only had clients that retried its failures).
      const own =
        am.ownFailures > 0 && am.ownFailures >= 0.1 * am.amplifiedAttempts
          ? ` In that time the upstream itself failed ${am.ownFailures} of ${am.amplifiedAttempts} attempts (not injected): if the load caused those failures, this is the metastable loop; if they had a cause of their own, the clients were retrying real failures.`
          : '';
      findings.push(
        makeFinding(
          'sustained-amplification',
          (am.recoverySeconds === null
            ? `After the faults (${rules}) ended, amplification never returned within 10 % of baseline (${round(baseAlpha, 2)}) in the ${round(am.observedMs / 1000, 1)} s of data that followed; ${am.retriesAfter} retries arrived in the first minute.`
            : `After the faults (${rules}) ended, amplification took ${am.recoverySeconds} s to return within 10 % of baseline (${round(baseAlpha, 2)}); ${am.retriesAfter} retries arrived in the first minute.`) + own,
          {
            rules: e.rules,
            start: e.start,
            end: e.end,
            recoverySeconds: am.recoverySeconds,
            retriesAfter: am.retriesAfter,
            baselineAmplification: round(baseAlpha, 3),
            upstreamFailuresAfter: am.ownFailures,
          },
        ),
      );
    } else if (am.retriesAfter > Math.max(5, 0.1 * inside)) {
      findings.push(
        makeFinding('retries-after-fault', `${am.retriesAfter} retries arrived in the minute after the faults (${rules}) ended (${inside} inside).`, {
          rules: e.rules,
          end: e.end,
          retriesAfter: am.retriesAfter,
          retriesInside: inside,
        }),
      );
    }
  }
  if (stormWindow !== null) {
    const shown = stormWindow.amplification ?? `unbounded (${stormWindow.retries} retries, no first attempt; ${totals.amplification} over the whole run)`;
    stormAlpha = `amplification ${shown} in fault window ${stormWindow.rule} (above ${R.stormAlphaFactor} x baseline ${round(baseAlpha, 2)}) with ${round(stormWindow.retryRatio * 100, 1)} % of its attempts retries (above ${R.budgetFinagle * 100} %)`;
  } else if (episodes.length === 0 && totals.amplification > R.stormAlphaFactor * baseAlpha && totals.retryRatio > R.budgetFinagle) {
    stormAlpha = `amplification ${totals.amplification} (above ${R.stormAlphaFactor} x baseline ${round(baseAlpha, 2)}) with ${round(totals.retryRatio * 100, 1)} % of attempts retries (above ${R.budgetFinagle * 100} %)`;
  }
  if (totals.retryRatio > R.budgetSre && totals.retries > 0) {
    const over20 = totals.retryRatio > R.budgetFinagle;
    findings.push(
      makeFinding(
        'retry-budget-exceeded',
        `Retries were ${round(totals.retryRatio * 100, 1)} % of all attempts (${totals.retries} of ${totals.attempts}), above the ${over20 ? '20 % Finagle/Envoy' : '10 % Google SRE'} retry budget.`,
        { retries: totals.retries, attempts: totals.attempts, retryRatio: totals.retryRatio, budgets: { sre: R.budgetSre, finagle: R.budgetFinagle } },
        { severity: over20 ? 'warning' : 'info' },
      ),
    );
  }
  if (totals.hedges > 0) {
    findings.push(makeFinding('hedged-requests', `${totals.hedges} attempts overlapped an earlier attempt of the same request (hedges); counted in offered load, not as retries.`, { hedges: totals.hedges, examples: t.examples.hedge ?? [] }));
  }
  const natShown = input.nat.slice(0, opts.maxFindingsPerCode);
  for (const n of natShown) {
    findings.push(makeFinding('nat-suspected', `IP ${n.ip} sent requests with ${n.userAgents}${n.userAgents >= 8 ? '+' : ''} different User-Agents; clients behind it may be merged.`, { ip: n.ip, userAgents: n.userAgents }));
  }
  const q = input.quality;
  if (q.badLines > 0) {
    findings.push(makeFinding('bad-lines', `${q.badLines} line${q.badLines === 1 ? '' : 's'} could not be read and ${q.badLines === 1 ? 'was' : 'were'} skipped (first at ${q.badLineList[0]?.file ?? '?'}:${q.badLineList[0]?.line ?? '?'}).`, { count: q.badLines, lines: q.badLineList.slice(0, 10).map((b) => `${b.file}:${b.line} ${b.reason}`) }));
  }
  if (q.recordsLost > 0) {
    findings.push(makeFinding('records-lost', `The proxy could not write ${q.recordsLost} record${q.recordsLost === 1 ? '' : 's'} of this recording (it says so in its records-lost events); those exchanges are missing from every number here.`, { records: q.recordsLost }));
  }
  const mediumRetries = t.retries - t.retriesHigh;
  const ipKeyed = evals.some((e) => e.agg.key === e.agg.ip && e.agg.retries > 0);
  const ambiguous = input.nat.length > 0 || agg.lateCount > 0 || q.clientKeyFallbacks > 0 || ipKeyed;
  // Records far out of order (files joined with cat, a sorted or reversed file) hide retries
  // altogether: say so even when no retry was found.
  const disordered = agg.lateCount > 0.01 * Math.max(1, t.attempts);
  if ((t.retries > 0 && mediumRetries / t.retries > 0.5 && ambiguous) || disordered) {
    const grouped = t.retries > 0 ? `${mediumRetries} of ${t.retries} retries were grouped by fingerprint (no explicit ids)` : 'No retries were found';
    findings.push(
      makeFinding(
        'low-confidence-grouping',
        `${grouped}${input.nat.length > 0 ? ', some clients share an IP' : ''}${agg.lateCount > 0 ? `, ${agg.lateCount} attempts arrived out of order` : ''}${q.clientKeyFallbacks > 0 ? `, ${q.clientKeyFallbacks} attempts lacked the client key header` : ''}${ipKeyed ? ', some clients are keyed by IP alone' : ''}.${disordered ? ` The records are not in the order the proxy writes them (by end time, within ${opts.reorderLagMs / 1000} s): give each recording as its own file instead of joining them, and do not sort or reverse them.` : ''}`,
        { mediumRetries, highRetries: t.retriesHigh, lateRecords: agg.lateCount, natSuspected: input.nat.length, clientKeyFallbacks: q.clientKeyFallbacks },
      ),
    );
  }
  // Every distinct client (as totals.clients), not the ones the capped table kept.
  const clientsTotal = Math.max(input.distinctClients, evals.length);
  const clientsOmitted = clientsTotal - listed.length;
  if (clientsOmitted > 0 || agg.evictedClients > 0) {
    findings.push(
      makeFinding(
        'clients-truncated',
        `The report lists the ${listed.length} worst of ${clientsTotal} clients${agg.evictedClients > 0 ? `; ${agg.evictedClients} client summaries were evicted to bound memory (the ${evals.length} worst or most recent were kept; totals and finding counts include every client)` : ''}.`,
        { listed: listed.length, total: clientsTotal, kept: evals.length, evicted: agg.evictedClients, distinct: input.distinctClients },
      ),
    );
  }

  // ---- verdict ----
  const reasons: string[] = [];
  const immediateClients = clientsWith('immediate-retries');
  const immediateTypes = types.filter((x) => x.backoff === 'immediate').length;
  if (stormAlpha !== null) reasons.push(stormAlpha);
  if (immediateClients > 0) reasons.push(`immediate retries (${howMany('immediate-retries', immediateClients)} client${immediateClients === 1 ? '' : 's'})`);
  else if (immediateTypes > 0) reasons.push(`immediate retries (${immediateTypes} client type${immediateTypes === 1 ? '' : 's'})`);
  if (noJitterWide) reasons.push(`no jitter across ${R.noJitterClients}+ clients`);
  if (t.unbounded > 0) reasons.push(`unbounded retries (${t.unbounded} logical request${t.unbounded === 1 ? '' : 's'} with more than ${opts.unboundedAttempts} attempts)`);
  if (sustained) reasons.push('amplification sustained after the fault ended');
  // A storm is retries answering failures: a recording in which nothing failed is never one (its
  // repeats are polling, hedging or explicit re-sends, and the findings still name them).
  const verdict = reasons.length > 0 && t.failures > 0 ? 'retry-storm' : 'ok';
  if (verdict === 'ok') reasons.length = 0;
  if (verdict === 'retry-storm') {
    findings.push(
      makeFinding('retry-storm', `Retry storm: ${reasons.join('; ')}. Overall: amplification ${totals.amplification}${totals.amplificationInFaults === null ? '' : ` (${totals.amplificationInFaults} in fault windows)`}, baseline ${round(baseline.alpha, 3)}, retries ${round(totals.retryRatio * 100, 1)} % of attempts.`, {
        reasons,
        amplification: totals.amplification,
        amplificationInFaults: totals.amplificationInFaults,
        amplificationBaseline: totals.amplificationBaseline,
        retryRatio: totals.retryRatio,
        retries: totals.retries,
        attempts: totals.attempts,
      }),
    );
  }
  const order = new Map(FINDINGS.map((f, i) => [f.code, i]));
  findings.sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] || (order.get(a.code) as number) - (order.get(b.code) as number));

  // ---- confidence ----
  const creasons: string[] = [];
  let level: Confidence = 'high';
  const lower = (to: Confidence, why: string): void => {
    creasons.push(why);
    if (to === 'low' || (to === 'medium' && level === 'high')) level = to;
  };
  if (t.attempts === 0) lower('low', 'no attempts were recorded');
  else if (t.failures === 0) lower('low', 'nothing failed, so no retry behaviour was exercised');
  else if (t.retries < 10) lower('low', `only ${t.retries} retr${t.retries === 1 ? 'y' : 'ies'} observed`);
  if (t.retries > 0 && mediumRetries / t.retries > 0.5) lower('medium', `${round((100 * mediumRetries) / t.retries, 0)} % of retries were grouped by fingerprint (medium confidence), not explicit ids`);
  if (input.nat.length > 0) lower('medium', `${input.nat.length} IP${input.nat.length === 1 ? '' : 's'} show several User-Agents (NAT may merge clients)`);
  if (q.badLines > 0) lower(q.badLines > 0.01 * Math.max(1, q.records) ? 'low' : 'medium', `${q.badLines} unreadable line${q.badLines === 1 ? '' : 's'} skipped`);
  if (q.recordsLost > 0) lower(q.recordsLost > 0.01 * Math.max(1, q.records) ? 'low' : 'medium', `the proxy could not write ${q.recordsLost} record${q.recordsLost === 1 ? '' : 's'} (a disk problem while recording)`);
  if (q.duplicateRecords > 0) lower('medium', `${q.duplicateRecords} records appeared in more than one input (a recording given with a copy of itself?) and were counted once`);
  if (agg.lateCount > 0) lower(agg.lateCount > 0.01 * Math.max(1, t.attempts) ? 'medium' : 'high', `${agg.lateCount} attempts arrived out of start order beyond the reorder lag`);
  if (agg.evictedClients > 0) lower('medium', `${agg.evictedClients} client summaries were evicted to bound memory`);
  if (!exactTallies) creasons.push(`${agg.returned.size + agg.reEvicted} time${agg.returned.size + agg.reEvicted === 1 ? '' : 's'} a client came back after its summary was evicted: per-finding client counts are lower bounds or estimates`);
  if (q.threadsEvicted > 0) lower('medium', `${q.threadsEvicted} logical requests were closed early to bound memory`);
  if (episodes.length === 0 && t.failures > 0) creasons.push('no injected faults: fault windows, herds and recovery were not measured');
  const worker = opts.worker !== null && opts.worker.of > 1 ? opts.worker : null;
  const missingParts = missingEarlierParts(input.headers, input.events);
  if (missingParts.length > 0) lower('medium', `part of the recording is missing: ${missingParts.length === 1 ? 'a file this one continues is' : `${missingParts.length} files these continue are`} not among the inputs`);
  if (worker !== null) lower('medium', `the live analysis of worker ${worker.index} of ${worker.of}: about 1/${worker.of} of the traffic`);
  if (creasons.length === 0) creasons.push('explicit ids or clear fingerprints, enough retries, clean input');

  const limits = [...KNOWN_LIMITS];
  if ((input.partitions ?? 1) > 1) limits.push(PARTITIONED_LIMIT);
  if (!exactTallies) limits.push(EVICTED_RETURN_LIMIT);
  for (const m of missingParts) {
    limits.push(
      `The recording of proxy instance ${m.instance} continues a file that was moved away or replaced at ${new Date(m.t).toISOString()} (${m.linesBefore ?? 'some'} lines before it): that part is not among the inputs, so what happened before is not counted here. Analyse both files together.`,
    );
  }
  if (worker !== null) {
    limits.push(
      `This is worker ${worker.index} of ${worker.of} (run --workers ${worker.of}): its live analysis sees only the exchanges on this worker's connections, so a logical request whose retries went to another worker is split in two and the counts are about 1/${worker.of} of the whole. Analyse all the workers' recordings together (aftershock analyze rec.w*.ndjson) for the whole picture.`,
    );
  }
  if (opts.clientKeyHeader === null && input.headers.some((h) => h.clientKey === 'ip')) limits.push('This recording keyed clients by IP only: every client behind one address is one client here.');
  // A client key header no record carries and no recording keyed by: a typo reads as a header the
  // proxy had already keyed by, and the clients are grouped as recorded, not as asked.
  if (opts.clientKeyHeader !== null && input.clientKeyHeaderUnseen === true && !input.headers.some((h) => h.clientKey === `header:${opts.clientKeyHeader}`)) {
    limits.push(`No record carries the client key header ${opts.clientKeyHeader}, and no recording was keyed by it: clients are keyed as recorded (check the name).`);
  }
  // One header per proxy run: the same run given twice (a gzip copy) is listed once.
  const recordings = uniqueRecordings(input.headers);
  // A run without a session beside a named one is a session of its own (several unnamed runs are
  // several proxies of one test, as sidecars and workers are).
  const named = recordings.some((h) => h.session !== null && h.session !== '');
  const sessions = named ? [...new Set(recordings.map((h) => (h.session === null || h.session === '' ? '(no session)' : h.session)))] : [];
  if (sessions.length > 1) {
    limits.push(
      `These recordings hold ${sessions.length} sessions (${sessions.join(', ')}), analysed as one: the totals are theirs together, and a request of one that repeats a request of another within the retry window reads as its retry. Give each run its own --record file to grade it alone.`,
    );
  }

  return {
    schemaVersion: 1,
    generatedBy: `aftershock ${VERSION}`,
    verdict,
    verdictReasons: reasons,
    session: sessions.length > 1 ? sessions.join(', ') : (header?.session ?? null),
    target: header?.target ?? null,
    profile: header?.profile ?? null,
    recordings: recordings.map((h) => ({
      instance: h.instance ?? null,
      session: h.session ?? null,
      target: h.target ?? null,
      start: h.start ?? null,
      aftershock: h.aftershock ?? null,
    })),
    range: {
      start: input.firstTs,
      end: input.lastEnd,
      origin,
      seconds: input.firstTs === null || input.lastEnd === null ? 0 : round((input.lastEnd - input.firstTs) / 1000, 3),
    },
    options: {
      windowMs: input.windowMs,
      windowAuto: opts.windowMs === null,
      binMs,
      maxClients: opts.maxClients,
      clientKeyHeader: opts.clientKeyHeader,
      ...(opts.worker === null ? {} : { worker: { ...opts.worker } }),
      cacheBustingKeys: [...opts.cacheBustingKeys],
      reorderLagMs: opts.reorderLagMs,
      unboundedAttempts: opts.unboundedAttempts,
    },
    totals,
    clients: listed.map((e) => e.report),
    clientsTotal,
    clientsOmitted,
    clientTypes: types,
    routes,
    routesOmitted: routesAll.length - routes.length,
    timeline,
    faultWindows,
    findings,
    confidence: { level, reasons: creasons, grouping: { high: t.chainsHigh, medium: t.logical - t.chainsHigh, highRetries: t.retriesHigh, mediumRetries } },
    limits,
    dataQuality: {
      records: q.records,
      recordsByType: { ...q.recordsByType },
      badLines: { count: q.badLines, lines: [...q.badLineList], truncated: q.badLines > q.badLineList.length },
      recordsLost: q.recordsLost,
      duplicateRecords: q.duplicateRecords,
      unknownRecords: q.unknownRecords,
      newerSchemaRecords: q.newerSchemaRecords,
      invalidRecords: q.invalidRecords,
      lateRecords: agg.lateCount,
      clientKeyFallbacks: q.clientKeyFallbacks,
      clientsEvicted: agg.evictedClients,
      threadsEvicted: q.threadsEvicted,
      fineBinsDropped: agg.fineDropped,
      binMs,
      natSuspected: input.nat.slice(0, 100).map((n) => ({ ...n })),
      partitions: input.partitions ?? 1,
      workerThreads: input.workerThreads ?? 0,
    },
    marks: input.marks.map((m) => ({ ...m })),
    events: input.events.map((e) => ({ ...e })),
  };
}

function clientFindingOf(code: FindingCode, e: ClientEval, bound: number): Finding {
  const c = e.agg;
  const r = e.report;
  const who = `${c.key}${c.userAgent !== null && !c.key.includes(c.userAgent) ? ` (${c.userAgent})` : ''}`;
  const about = (kind: EvidenceKind, extra: { severity?: 'critical' | 'warning' } = {}): { client: string; route?: string; severity?: 'critical' | 'warning' } => {
    const route = c.exampleRoutes[kind];
    return { client: c.key, ...(route === undefined ? {} : { route }), ...extra };
  };
  const ex = (kind: EvidenceKind): string[] => [...(c.examples[kind] ?? [])];
  switch (code) {
    case 'immediate-retries':
      return makeFinding(code, `${who} retried immediately: ${c.immediateGaps} of ${c.gapCount} gaps under 50 ms, ${c.retries} retries for ${c.logical} requests (max ${r.maxAttempts} attempts).`, { immediateGaps: c.immediateGaps, gaps: c.gapCount, retries: c.retries, maxAttempts: r.maxAttempts, examples: ex('immediate') }, about('immediate'));
    case 'unbounded-retries':
      return makeFinding(code, `${who}: ${c.unbounded} request${c.unbounded === 1 ? '' : 's'} took more than ${bound} attempts (up to ${r.maxAttempts}).`, { unboundedChains: c.unbounded, maxAttempts: r.maxAttempts, bound, examples: ex('unbounded') }, about('unbounded'));
    case 'retry-after-violated':
      return makeFinding(code, `${who} came back before Retry-After ${c.raViolates} time${c.raViolates === 1 ? '' : 's'} (${c.raCompliant} compliant, ${c.raLate} late).`, { ...r.retryAfterCounts, examples: ex('raViolation') }, about('raViolation'));
    case 'retry-after-ignored':
      return makeFinding(code, `${who} did not follow Retry-After: ${c.raLate - c.raJittered} of ${c.raLate + c.raCompliant + c.raViolates} waits were longer than asked, beyond any jitter (its own schedule).`, { ...r.retryAfterCounts, examples: ex('raLate') }, about('raLate'));
    case 'unsafe-retry':
      return makeFinding(code, `${who} retried ${c.unsafeRetries} POST/PATCH request${c.unsafeRetries === 1 ? '' : 's'} without an Idempotency-Key${c.exampleRoutes.unsafe !== undefined ? ` (e.g. ${c.exampleRoutes.unsafe})` : ''}.`, { unsafeRetries: c.unsafeRetries, examples: ex('unsafe') }, about('unsafe'));
    case 'retry-after-non-retryable':
      return makeFinding(code, `${who} retried ${c.nonRetryableRetries} time${c.nonRetryableRetries === 1 ? '' : 's'} after a non-retryable answer (4xx other than 408/425/429, or 501/505/508).`, { nonRetryableRetries: c.nonRetryableRetries, examples: ex('nonRetryable') }, about('nonRetryable'));
    case 'duplicate-submission':
      return makeFinding(
        code,
        `${who} re-sent ${c.duplicateSubmissions} request${c.duplicateSubmissions === 1 ? '' : 's'} the upstream had already completed (lost responses)${c.duplicateUnprotected > 0 ? `, ${c.duplicateUnprotected} without an Idempotency-Key` : ''}.`,
        { duplicateSubmissions: c.duplicateSubmissions, withoutIdempotencyKey: c.duplicateUnprotected, examples: ex('duplicate') },
        about('duplicate', { severity: c.duplicateUnprotected > 0 ? 'critical' : 'warning' }),
      );
    case 'retry-budget-exceeded':
      return makeFinding(
        code,
        `${who}: retries were ${round((c.retries / Math.max(1, c.attempts)) * 100, 1)} % of its attempts (${c.retries} of ${c.attempts}), above the 20 % Finagle/Envoy retry budget (Google SRE: 10 % per client).`,
        { retries: c.retries, attempts: c.attempts, retryRatio: round(c.retries / Math.max(1, c.attempts), 4), budgets: { sre: R.budgetSre, finagle: R.budgetFinagle }, examples: ex('retry') },
        about('retry'),
      );
    case 'idempotency-key-reused':
      return makeFinding(code, `${who} reused an earlier request's Idempotency-Key with a different body ${c.idemReuse === 1 ? 'once' : `${c.idemReuse} times`}.`, { reused: c.idemReuse, examples: ex('idemReuse') }, about('idemReuse'));
    default:
      return makeFinding(code, `${who}: ${code}`, { examples: r.examples }, { client: c.key });
  }
}

/** The headers of distinct proxy runs: the same instance and start given twice (a file and its gzip copy) once. */
function uniqueRecordings(headers: readonly HeaderRecord[]): HeaderRecord[] {
  const seen = new Set<string>();
  return headers.filter((h) => {
    const key = `${h.instance ?? ''}\0${h.start ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
