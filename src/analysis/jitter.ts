/**
 * Jitter (spec §5): one chain cannot show jitter, many can. Take the chains a client type started
 * on the same trigger (the same fault, the same Retry-After), line them up by attempt index, and
 * look at how much the k-th gap varies: no jitter means every client comes back at the same
 * instant, which is how a retry wave becomes a herd.
 *
 * The proxy's clock and the network add a few milliseconds of spread to every gap; that noise is
 * removed before the CV is taken (`JITTER_THRESHOLDS.noiseMs`), so a 100 ms constant schedule with
 * 3 ms of network noise is still "none". The spread is read robustly (`spreadCv`) so a few delayed
 * timestamps do not read as jitter either.
 */

import { median, quantile } from './stats.js';

export type JitterClass = 'none' | 'token' | 'proportional' | 'full' | 'per-client' | 'unknown';

/** The spec's bands: none < 0.02 <= token < 0.1 <= proportional < 0.4 <= full (≈0.58). */
export const JITTER_THRESHOLDS = {
  none: 0.02,
  token: 0.1,
  proportional: 0.4,
  /** Samples needed at an attempt index before its CV counts... */
  minSamples: 5,
  /** ... and at least this share of the first index's samples. */
  minShare: 0.25,
  /**
   * Samples an index needs before its low reading is trusted as the type's: with fewer at every
   * index, the least-spread index is mostly sampling noise, and the class is read from the median
   * index instead.
   */
  trustSamples: 10,
  /**
   * Trusted indexes whose CVs lie within this many relative standard errors of each
   * other are one spread, read pooled; further apart, the least-spread index decides.
   */
  agreeWithin: 3,
  /** Measurement noise (ms, one standard deviation) removed from every gap's spread. */
  noiseMs: 5,
  /** Per-client static jitter: clients with 2+ chains needed to call it. */
  perClientMinClients: 3,
  /** ... the spread between clients' first gaps at least this CV ... */
  perClientAcrossCv: 0.1,
  /** ... while each client repeats itself (within-client CV below `none`) and ratios agree. */
  perClientRatioCv: 0.05,
} as const;

const T = JITTER_THRESHOLDS;

/** Aligned gap samples of one client type on one trigger. */
export interface JitterInput {
  /** `gapsByIndex[k]`: the k-th gap (ms) of each chain. */
  gapsByIndex: ReadonlyArray<readonly number[]>;
  /** First gaps grouped by client, for per-client static jitter (drawn once per process). */
  firstGapsByClient?: ReadonlyArray<readonly number[]>;
  /** `g2 / g1` of each chain with two gaps. */
  ratios?: readonly number[];
  /**
   * How many chains reached each index, when `gapsByIndex` holds samples of them (reservoirs):
   * an index's share of the chains is judged by these. Default: the samples' lengths.
   */
  countsByIndex?: readonly number[];
}

export interface JitterResult {
  class: JitterClass;
  /** The CV the class was read from (the least spread attempt index, or the indexes pooled when they agree), noise removed. */
  cv: number | null;
  /** CV per attempt index (null where too few samples). */
  cvByIndex: Array<number | null>;
  /** Chains behind the decision (samples at the first index). */
  samples: number;
}

/**
 * CV with the measurement noise taken out: `sqrt(max(0, var - noise²)) / mean`.
 *
 * @example noiseAdjustedCv([1000, 1003, 998]) === 0
 */
export function noiseAdjustedCv(xs: readonly number[], noiseMs: number = T.noiseMs): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  const m = s / xs.length;
  let v = 0;
  for (const x of xs) v += (x - m) * (x - m);
  v /= xs.length;
  const sd = Math.sqrt(Math.max(0, v - noiseMs * noiseMs));
  if (m <= 0) return sd === 0 ? 0 : Number.POSITIVE_INFINITY;
  return sd / m;
}

/**
 * The spread the jitter class is read from: the CV of the gaps once outliers are set aside (more
 * than 3 robust standard deviations, `1.4826 x MAD`, from the median, and never closer than 3x the
 * measurement noise), when at most a quarter of the gaps are such outliers; otherwise the plain CV.
 * A steady schedule with a few delayed timestamps reads as steady; a uniform spread loses none of
 * its gaps. (The smaller of the CV and its robust counterpart, used before, read a Retry-After plus
 * U(0, 500 ms) fleet's 0.115 as 0.04 now and then: a MAD of 15 gaps is itself a noisy reading.)
 *
 * @example spreadCv([100, 100, 100, 100, 100, 100, 100, 130]) === 0
 */
export function spreadCv(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const med = median(xs);
  const scale = 1.4826 * median(xs.map((x) => Math.abs(x - med)));
  const cut = 3 * Math.max(scale, T.noiseMs);
  const kept = xs.filter((x) => Math.abs(x - med) <= cut);
  return noiseAdjustedCv(kept.length >= 0.75 * xs.length ? kept : xs);
}

/**
 * Maps a CV to the spec's band.
 *
 * @example jitterBand(0.58) === 'full'; jitterBand(0.01) === 'none'
 */
export function jitterBand(c: number): Exclude<JitterClass, 'per-client' | 'unknown'> {
  if (c < T.none) return 'none';
  if (c < T.token) return 'token';
  if (c < T.proportional) return 'proportional';
  return 'full';
}

/**
 * Classifies the jitter of aligned chains.
 *
 * @example
 * classifyJitter({ gapsByIndex: [[1000, 1000, 1000, 1000, 1000]] }).class === 'none'
 */
export function classifyJitter(input: JitterInput): JitterResult {
  const samples = input.gapsByIndex[0]?.length ?? 0;
  // An index only a few of the chains reached (the clients that retried longest) speaks for them,
  // not for the type: its CV counts once a quarter of the chains at the first index reached it.
  const counts = input.countsByIndex;
  const reached = (k: number): number => counts?.[k] ?? (input.gapsByIndex[k] as readonly number[]).length;
  const first = reached(0);
  const cvByIndex: Array<number | null> = input.gapsByIndex.map((xs, k) => (xs.length >= T.minSamples && reached(k) >= T.minShare * first ? spreadCv(xs) : null));
  const usable = cvByIndex.filter((c): c is number => c !== null && Number.isFinite(c));
  if (usable.length === 0) return { class: 'unknown', cv: null, cvByIndex, samples };

  // Immediate retries have no spread worth measuring: they all come back at once.
  const all = input.gapsByIndex.flat();
  // (No CV is quoted for them: the spread of a few milliseconds is no schedule.)
  if (all.length > 0 && quantile(all, 0.9) < 50) return { class: 'none', cv: null, cvByIndex, samples };

  // Real jitter spreads every attempt index; noise (a late timer, a busy proxy) spreads some. The
  // class is read from the index that spreads least, among the indexes with samples enough to trust
  // a low reading; with none, from the median index (the least of a few noisy readings of a fully
  // jittered fleet's five indexes came out below 0.1).
  const trusted: Array<{ cv: number; n: number }> = [];
  cvByIndex.forEach((cv, k) => {
    const n = (input.gapsByIndex[k] as readonly number[]).length;
    if (cv !== null && Number.isFinite(cv) && n >= T.trustSamples) trusted.push({ cv, n });
  });
  const c = trusted.length > 0 ? leastSpread(trusted) : median(usable);
  if (c >= T.none && isPerClient(input)) return { class: 'per-client', cv: c, cvByIndex, samples };
  return { class: jitterBand(c), cv: c, cvByIndex, samples };
}

/**
 * The spread of the index that spreads least, unless the indexes agree: when every trusted index
 * reads the same spread within sampling error, they are readings of one spread and their pooled
 * value is the measurement (the least of several noisy readings of the same thing is biased low:
 * a Retry-After plus U(0, 500 ms) fleet, CV 0.115, read 0.07-0.09 at its least index).
 *
 * @example leastSpread([{ cv: 0.01, n: 40 }, { cv: 0.3, n: 40 }]) === 0.01 // noise spread one index
 */
export function leastSpread(readings: ReadonlyArray<{ readonly cv: number; readonly n: number }>): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  let nMin = Number.POSITIVE_INFINITY;
  let sq = 0;
  let n = 0;
  for (const r of readings) {
    lo = Math.min(lo, r.cv);
    hi = Math.max(hi, r.cv);
    nMin = Math.min(nMin, r.n);
    sq += r.n * r.cv * r.cv;
    n += r.n;
  }
  if (readings.length < 2 || lo <= 0) return lo;
  // A sample CV's relative standard error is about sqrt((1 + 2 CV²) / 2n); readings agree when the
  // largest is within `agreeWithin` of those (at the smallest sample) of the least.
  const pooled = Math.sqrt(sq / n);
  if (hi / lo > 1 + T.agreeWithin * Math.sqrt((1 + 2 * pooled * pooled) / (2 * nMin))) return lo;
  return pooled;
}

/** Each client repeats its own first gap; clients differ; the growth ratio is shared. */
function isPerClient(input: JitterInput): boolean {
  const groups = (input.firstGapsByClient ?? []).filter((g) => g.length >= 2);
  if (groups.length < T.perClientMinClients) return false;
  const within = groups.map((g) => noiseAdjustedCv(g));
  if (!(median(within) < T.none)) return false;
  const means = groups.map((g) => g.reduce((a, b) => a + b, 0) / g.length);
  if (!(noiseAdjustedCv(means) >= T.perClientAcrossCv)) return false;
  const ratios = input.ratios ?? [];
  if (ratios.length >= 3 && !(noiseAdjustedCv(ratios, 0) < T.perClientRatioCv)) return false;
  return true;
}
