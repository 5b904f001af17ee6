/**
 * Classifying a retry schedule (spec §4): given the gaps between attempts, measured END to START
 * (`g_k = start(k+1) - end(k)`, so the client's own timeout never inflates a gap), say whether
 * the client retried immediately, at a constant, linear or exponential spacing, or irregularly,
 * and whether a gap honoured the Retry-After the failure carried; then, over many chains, which
 * class a client or client type follows (`decideBackoff`).
 *
 * Pure functions of numbers; the thresholds are the spec's and are exported so the docs and the
 * tests quote the same values.
 */

import type { BackoffDetail } from './types.js';
import { cv, linearFit, median, round } from './stats.js';

export type BackoffClass = 'immediate' | 'constant' | 'linear' | 'exponential' | 'irregular' | 'insufficient-data';
export type Confidence = 'high' | 'medium' | 'low';

export const BACKOFF_CLASSES: readonly BackoffClass[] = ['immediate', 'constant', 'linear', 'exponential', 'irregular', 'insufficient-data'];

/** Chains per backoff class. */
export type Votes = Record<BackoffClass, number>;

/** The spec's thresholds for §4, in one place. */
export const BACKOFF_THRESHOLDS = {
  /** Every gap below this is an immediate retry (ms). */
  immediateMs: 50,
  /** Constant: CV of the gaps below this ... */
  constantMaxCv: 0.1,
  /** ... and each successive ratio g(k+1)/g(k) within [min, max]. */
  constantRatioMin: 0.83,
  constantRatioMax: 1.2,
  /** Exponential: median successive ratio above this ... */
  exponentialMinRatio: 1.2,
  /** ... and a log-linear fit with R² at least this. */
  exponentialMinR2: 0.9,
  /** Linear: successive differences positive with CV below this. */
  linearMaxDiffCv: 0.2,
  /** Gaps needed to classify at all, and for high confidence. */
  minGaps: 2,
  highConfidenceGaps: 3,
} as const;

/** What a schedule was classified as, with the fitted parameters when they exist. */
export interface BackoffResult {
  class: BackoffClass;
  confidence: Confidence;
  /** Number of gaps the class was decided from. */
  gaps: number;
  /** Exponential: the fitted first gap (ms) and growth factor; capped schedules report `capMs`. */
  baseMs?: number;
  factor?: number;
  capMs?: number;
  /** Constant: the mean gap (ms). Linear: the first gap and the mean step (ms). */
  intervalMs?: number;
  stepMs?: number;
  /** R² of the fit that decided exponential or linear. */
  r2?: number;
}

const T = BACKOFF_THRESHOLDS;

/**
 * Classifies one schedule of gaps (ms), in attempt order.
 *
 * Order of the tests follows the spec: immediate, constant, exponential (a plateau at a cap is
 * recognised first, so the cap is reported), linear, irregular. Where a series passes both the exponential and the linear test, the fit
 * that explains it better (higher R²) wins: an exactly linear 100, 200, 300, 400 ms schedule also
 * passes a log-linear fit at R² 0.96, and calling it exponential would be wrong.
 *
 * @example
 * classifyBackoff([100, 200, 400, 800]).class === 'exponential'
 * classifyBackoff([1000, 1000, 1000]).class === 'constant'
 * classifyBackoff([3, 1]).class === 'immediate'
 */
export function classifyBackoff(gaps: readonly number[]): BackoffResult {
  const n = gaps.length;
  if (n < T.minGaps) return { class: 'insufficient-data', confidence: 'low', gaps: n };
  const confidence: Confidence = n >= T.highConfidenceGaps ? 'high' : 'medium';
  if (gaps.every((g) => g < T.immediateMs)) return { class: 'immediate', confidence, gaps: n };

  if (isConstant(gaps)) {
    return { class: 'constant', confidence, gaps: n, intervalMs: mean0(gaps) };
  }

  // A capped exponential: a growing prefix, then a plateau at the cap (checked first, so the cap is reported).
  const capped = cappedExponential(gaps);
  if (capped !== null) {
    return { class: 'exponential', confidence, gaps: n, baseMs: capped.base, factor: capped.factor, capMs: capped.cap, r2: capped.r2 };
  }
  const expo = exponentialFit(gaps);
  const lin = linearSchedule(gaps);
  if (expo !== null && (lin === null || expo.r2 >= lin.r2)) {
    return { class: 'exponential', confidence, gaps: n, baseMs: expo.base, factor: expo.factor, r2: expo.r2 };
  }
  if (lin !== null) {
    return { class: 'linear', confidence, gaps: n, intervalMs: lin.first, stepMs: lin.step, r2: lin.r2 };
  }
  return { class: 'irregular', confidence, gaps: n };
}

function mean0(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return xs.length === 0 ? 0 : s / xs.length;
}

function ratios(gaps: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < gaps.length; i++) out.push(Math.max(gaps[i] as number, 1) / Math.max(gaps[i - 1] as number, 1));
  return out;
}

function isConstant(gaps: readonly number[]): boolean {
  if (!(cv(gaps) < T.constantMaxCv)) return false;
  return ratios(gaps).every((r) => r >= T.constantRatioMin && r <= T.constantRatioMax);
}

function exponentialFit(gaps: readonly number[]): { base: number; factor: number; r2: number } | null {
  if (gaps.length < 2) return null;
  const rs = ratios(gaps);
  if (!(median(rs) > T.exponentialMinRatio)) return null;
  const xs = gaps.map((_, i) => i);
  const ys = gaps.map((g) => Math.log(Math.max(g, 1)));
  const fit = linearFit(xs, ys);
  if (!(fit.r2 >= T.exponentialMinR2)) return null;
  return { base: Math.exp(fit.intercept), factor: Math.exp(fit.slope), r2: fit.r2 };
}

function linearSchedule(gaps: readonly number[]): { first: number; step: number; r2: number } | null {
  if (gaps.length < 3) return null; // one difference says nothing about its constancy
  const diffs: number[] = [];
  for (let i = 1; i < gaps.length; i++) diffs.push((gaps[i] as number) - (gaps[i - 1] as number));
  if (!diffs.every((d) => d > 0)) return null;
  if (!(cv(diffs) < T.linearMaxDiffCv)) return null;
  const fit = linearFit(
    gaps.map((_, i) => i),
    gaps,
  );
  return { first: gaps[0] as number, step: mean0(diffs), r2: Number.isNaN(fit.r2) ? 0 : fit.r2 };
}

/** A plateau value may differ from the last gap by this share (a cap is flat; jitter below it is not). */
const PLATEAU_TOLERANCE = 0.05;

function cappedExponential(gaps: readonly number[]): { base: number; factor: number; cap: number; r2: number } | null {
  if (linearSchedule(gaps) !== null) return null;
  // Longest plateau at the end: values within 5 % of the last gap.
  const last = Math.max(gaps[gaps.length - 1] as number, 1);
  let start = gaps.length - 1;
  while (start > 0) {
    const r = Math.max(gaps[start - 1] as number, 1) / last;
    if (Math.abs(r - 1) > PLATEAU_TOLERANCE) break;
    start--;
  }
  const plateau = gaps.slice(start);
  const prefix = gaps.slice(0, start);
  if (plateau.length < 2 || prefix.length < 2) return null;
  const expo = exponentialFit(prefix);
  if (expo === null) return null;
  const cap = median(plateau);
  if (!(cap > (prefix[prefix.length - 1] as number))) return null;
  return { base: expo.base, factor: expo.factor, cap, r2: expo.r2 };
}

export type RetryAfterVerdict = 'compliant' | 'violates' | 'late';

/**
 * One gap against the Retry-After (seconds) the failure carried (spec §4.1):
 * compliant when `R - 50ms <= g <= R + max(250ms, 10 % of R)`, violates when `g < R - 50ms`,
 * late (the client did not follow the header; its own schedule was slower) above the band.
 *
 * @example checkRetryAfter(2000, 2) === 'compliant'; checkRetryAfter(100, 2) === 'violates'
 */
export function checkRetryAfter(gapMs: number, retryAfterSeconds: number): RetryAfterVerdict {
  const r = retryAfterSeconds * 1000;
  if (gapMs < r - 50) return 'violates';
  if (gapMs <= r + Math.max(250, 0.1 * r)) return 'compliant';
  return 'late';
}

/** A client's Retry-After behaviour over all its gaps that followed a Retry-After. */
export type RetryAfterCompliance = 'compliant' | 'violates' | 'ignored' | 'not-applicable';

/** Thresholds that turn per-gap verdicts into one per client (documented in the README (Retry analysis)). */
export const RETRY_AFTER_THRESHOLDS = {
  /** Violates when at least this share of the checked gaps came too early. */
  violationShare: 0.1,
  /** Ignored when more than this share came late (the client kept its own, slower schedule). */
  lateShare: 0.5,
} as const;

/**
 * Summarises per-gap verdicts.
 *
 * @example summarizeRetryAfter({ compliant: 9, violates: 0, late: 1 }) === 'compliant'
 */
export function summarizeRetryAfter(c: { compliant: number; violates: number; late: number; lateWithinJitter?: number }): RetryAfterCompliance {
  const n = c.compliant + c.violates + c.late;
  if (n === 0) return 'not-applicable';
  if (c.violates > 0 && c.violates / n >= RETRY_AFTER_THRESHOLDS.violationShare) return 'violates';
  if ((c.late - (c.lateWithinJitter ?? 0)) / n > RETRY_AFTER_THRESHOLDS.lateShare) return 'ignored';
  return 'compliant';
}

/**
 * Backoff of many chains: the majority class of the chains with 2+ gaps, unless that majority is
 * "irregular" (or there is none), in which case the central gap per attempt index is classified
 * (spec §4.6: full-jitter clients look irregular one by one).
 *
 * `deep` holds the votes of the chains classified from 3 or more gaps (spec §4: "needs 2 gaps; 3
 * for high confidence"): a majority is only `high` when at least 3 such chains make it, because
 * two gaps cannot tell linear from exponential. Without `deep`, every chain counts as deep.
 *
 * @example decideBackoff({ ...none, exponential: 3 }, [100, 200], 0, 6, none).confidence === 'medium'
 */
export function decideBackoff(given: Votes, series: number[], immediateGaps: number, gapCount: number, deep: Votes = given, seriesChains = Number.POSITIVE_INFINITY, minSeriesChains = 3): BackoffDetail {
  // The per-index series reads a schedule only from several chains (README: 3+ per client, 8+ per
  // type): from fewer it is those chains' own gaps, which their votes have already read, and
  // dropping its last point would overrule them (one irregular chain read as exponential).
  const perIndex = seriesChains >= minSeriesChains;
  // Two gaps cannot tell linear from exponential (100, 200 is both): a chain of two growing gaps
  // votes for growth, and which growth it is, the chains of 3+ gaps say when at least 3 of them
  // agree, 4 to 1 or better. (A linear fleet under partial faults has most chains at two gaps;
  // they outvoted the chains that could tell, and it read as exponential with factor 2.) Deep
  // chains that split are jitter: the per-index series below settles that.
  let votes = given;
  const deepGrowing = deep.linear + deep.exponential;
  if (deepGrowing >= 3 && Math.max(deep.linear, deep.exponential) >= 0.8 * deepGrowing) {
    const growing = given.linear + given.exponential;
    const linear = deep.linear > deep.exponential;
    votes = { ...given, linear: linear ? growing : 0, exponential: linear ? 0 : growing };
  }
  let classified = 0;
  let top: BackoffClass = 'insufficient-data';
  for (const k of BACKOFF_CLASSES) {
    if (k === 'insufficient-data') continue;
    classified += votes[k];
    if (votes[k] > (top === 'insufficient-data' ? 0 : votes[top])) top = k;
  }
  const base = { chains: classified, votes: { ...given }, gapsMs: series.map((g) => round(g, 1)) };
  if (classified === 0) {
    // No chain had 2 gaps: lone gaps, each from its own chain. A full-jitter wait drawn from
    // [0, 100 ms) falls under 50 ms half the time, so two or three such gaps prove nothing; it
    // takes IMMEDIATE_MIN_LONE_GAPS of them, all under 50 ms, to call the client immediate.
    if (gapCount >= IMMEDIATE_MIN_LONE_GAPS && immediateGaps === gapCount) {
      return { class: 'immediate', confidence: 'medium', basis: 'immediate-gaps', ...base };
    }
    if (perIndex && series.length >= 2) {
      const r = classifySeries(series);
      if (r.class !== 'irregular' && r.class !== 'insufficient-data') return { ...fitParams(r), class: r.class, confidence: 'low', basis: 'per-index', ...base };
    }
    return { class: 'insufficient-data', confidence: 'low', basis: 'none', ...base };
  }
  // Jittered schedules now and then draw two tiny gaps in a row; "immediate" needs nearly all gaps under 50 ms.
  if (top === 'immediate' && immediateGaps < IMMEDIATE_SHARE * gapCount) {
    const rest = { ...given, immediate: 0 };
    return decideBackoff(rest, series, 0, gapCount, { ...deep, immediate: 0 }, seriesChains, minSeriesChains);
  }
  const share = votes[top] / classified;
  // Jittered growing schedules split their chains between "linear" and "exponential" (three jittered
  // gaps cannot tell them apart); the central gap per attempt index can.
  const growing = votes.linear + votes.exponential;
  if (perIndex && (top === 'linear' || top === 'exponential') && share < 0.8 && growing / classified >= 0.5 && series.length >= 3) {
    const r = classifySeries(series);
    if (r.class === 'linear' || r.class === 'exponential') {
      return { ...fitParams(r), class: r.class, confidence: 'medium', basis: 'per-index', ...base };
    }
  }
  if (top !== 'irregular' && share >= 0.5) {
    let deepClassified = 0;
    for (const k of BACKOFF_CLASSES) if (k !== 'insufficient-data') deepClassified += deep[k];
    const deepTop = deep[top];
    const confidence: Confidence = share >= 0.8 && classified >= 3 && deepTop >= 3 && deepTop >= 0.8 * deepClassified ? 'high' : 'medium';
    const fit = series.length >= 2 ? classifySeries(series) : null;
    return { ...(fit !== null && fit.class === top ? fitParams(fit) : {}), class: top, confidence, basis: 'chains', ...base };
  }
  if (perIndex && series.length >= 2) {
    const r = classifySeries(series);
    if (r.class !== 'irregular' && r.class !== 'insufficient-data') {
      return { ...fitParams(r), class: r.class, confidence: 'medium', basis: 'per-index', ...base };
    }
  }
  return { class: top, confidence: share >= 0.8 ? 'medium' : 'low', basis: 'chains', ...base };
}

/** Single-gap chains needed (all gaps under 50 ms) to call a client immediate without a chain of 2+ gaps. */
export const IMMEDIATE_MIN_LONE_GAPS = 5;

/** Share of all gaps under 50 ms needed to call a client (or client type) immediate. */
export const IMMEDIATE_SHARE = 0.9;

/**
 * Classifies a per-index series; the deepest index has the fewest chains behind it, so when the
 * whole series is irregular but it is regular without its last point, that reading is used.
 */
function classifySeries(series: number[]): ReturnType<typeof classifyBackoff> {
  const r = classifyBackoff(series);
  if (r.class === 'irregular' && series.length >= 4) {
    const shorter = classifyBackoff(series.slice(0, -1));
    if (shorter.class !== 'irregular' && shorter.class !== 'insufficient-data') return shorter;
  }
  return r;
}

function fitParams(r: ReturnType<typeof classifyBackoff>): Partial<BackoffDetail> {
  const out: Partial<BackoffDetail> = {};
  if (r.baseMs !== undefined) out.baseMs = round(r.baseMs, 1);
  if (r.factor !== undefined) out.factor = round(r.factor, 3);
  if (r.capMs !== undefined) out.capMs = round(r.capMs, 1);
  if (r.intervalMs !== undefined) out.intervalMs = round(r.intervalMs, 1);
  if (r.stepMs !== undefined) out.stepMs = round(r.stepMs, 1);
  return out;
}
