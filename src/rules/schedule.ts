/**
 * Time in a profile: per-rule schedules (`when:`) and the profile's timeline of phases.
 *
 *   when: { after: 10s, for: 60s }          off ─10s─▶ on ─60s─▶ off
 *   when: { after: 5s, every: 20s, for: 5s } off ─5s─▶ [on 5s, off 15s] [on 5s, off 15s] ...
 *   when: { ramp: { from: 0, to: 1, over: 30s } }   probability x 0 ─▶ x 1 over 30 s, then x 1
 *
 * Times are milliseconds since the clock's origin: the engine's start, or the scenario's start
 * (`startScenario`). A phase rule's schedule counts from its phase's start. All pure arithmetic.
 */
import type { WhenConfig } from './schema.js';

export interface CompiledSchedule {
  readonly after: number;
  readonly for: number | null;
  readonly every: number | null;
  readonly ramp: { readonly from: number; readonly to: number; readonly over: number } | null;
}

export function compileSchedule(w: WhenConfig | undefined): CompiledSchedule | null {
  if (w === undefined) return null;
  if (w.after === 0 && w.for === undefined && w.every === undefined && w.ramp === undefined) return null;
  return Object.freeze({
    after: w.after,
    for: w.for ?? null,
    every: w.every ?? null,
    ramp: w.ramp === undefined ? null : Object.freeze({ ...w.ramp }),
  });
}

/**
 * The schedule's factor at `t`: -1 when the rule is off, else the probability multiplier in
 * [0, 1] (1 without a ramp). With `every`, the ramp runs over the time since `after`.
 *
 * @example scheduleFactor({ after: 0, for: 5000, every: 20000, ramp: null }, 21000) === 1
 */
export function scheduleFactor(s: CompiledSchedule | null, t: number): number {
  if (s === null) return 1;
  const since = t - s.after;
  if (since < 0) return -1;
  if (s.every !== null) {
    if (since % s.every >= (s.for as number)) return -1;
  } else if (s.for !== null && since >= s.for) {
    return -1;
  }
  if (s.ramp === null) return 1;
  const r = s.ramp;
  if (since >= r.over) return r.to;
  return r.from + ((r.to - r.from) * since) / r.over;
}

/** Where the timeline is at `t`: the phase index and its start, or null before/after it. */
export interface PhasePosition {
  readonly index: number;
  /** Start of this phase, relative to the clock's origin (grows with each loop). */
  readonly start: number;
  readonly end: number;
}

export interface CompiledTimeline {
  /** Phase starts relative to the timeline start, and the total length. */
  readonly starts: readonly number[];
  readonly durations: readonly number[];
  readonly total: number;
  readonly loop: boolean;
}

export function compileTimeline(durations: readonly number[], loop: boolean): CompiledTimeline {
  const starts: number[] = [];
  let acc = 0;
  for (const d of durations) {
    starts.push(acc);
    acc += d;
  }
  return Object.freeze({ starts: Object.freeze(starts), durations: Object.freeze([...durations]), total: acc, loop });
}

/**
 * The phase at `t`, or null after the last phase (without `loop`) — or for t < 0.
 *
 * @example phaseAt(compileTimeline([12000, 6000], false), 13000) // { index: 1, start: 12000, end: 18000 }
 */
export function phaseAt(tl: CompiledTimeline, t: number): PhasePosition | null {
  if (t < 0 || tl.total <= 0) return null;
  let base = 0;
  let local = t;
  if (t >= tl.total) {
    if (!tl.loop) return null;
    const cycles = Math.floor(t / tl.total);
    base = cycles * tl.total;
    local = t - base;
  }
  const starts = tl.starts;
  // Phases are few: a linear scan from the end is as fast as a binary search.
  for (let i = starts.length - 1; i >= 0; i--) {
    const s = starts[i] as number;
    if (local >= s) return { index: i, start: base + s, end: base + s + (tl.durations[i] as number) };
  }
  return null;
}
