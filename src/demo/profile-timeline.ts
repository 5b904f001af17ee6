/**
 * The demo's fault timeline: a built-in profile (by default `signal-2021`), optionally compressed
 * to a shorter run, and its phases as the live view draws them.
 *
 * The rule engine has no time-scale option, so a shorter `--duration` is made by rewriting the
 * profile itself: parse the YAML, multiply every *timeline* duration (phase lengths, `when:`
 * schedules and ramps) and every Retry-After (the server's advice of when to come back is part of
 * the outage's shape), then compile the copy with `parseProfile(text, null)`. What a fault does to
 * one request (latency, capacity queue timeouts) describes the service, not the timeline, and is
 * left alone; so are the clients and the message service.
 */
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { AftershockError } from '../errors.js';
import { loadProfile, parseProfile, type CompiledProfile } from '../rules/index.js';
import { parseDuration, parseSecondsOrDuration } from '../faults/lib/duration.js';
import { isHttpDate } from '../faults/lib/schema.js';
import type { Phase } from './live-view.js';

/** A profile ready to run, and where its phases fall. */
export interface DemoTimeline {
  readonly profile: CompiledProfile;
  readonly phases: readonly Phase[];
  /** Length of the whole timeline, in ms. */
  readonly totalMs: number;
  /** Factor applied to the profile's own durations (1 = as written). */
  readonly scale: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Multiplies a duration field in place (kept as a number of ms, at least 1). */
function scaleField(o: Json, key: string, factor: number): void {
  if (!(key in o)) return;
  const ms = parseDuration(o[key]);
  if (ms !== null) o[key] = Math.max(1, Math.round(ms * factor));
}

function scaleRule(rule: unknown, factor: number): void {
  if (!isObject(rule)) return;
  const when = rule.when;
  if (isObject(when)) {
    for (const k of ['after', 'for', 'every']) scaleField(when, k, factor);
    if (isObject(when.ramp)) scaleField(when.ramp, 'over', factor);
  }
  const fault = rule.fault;
  if (isObject(fault) && 'retryAfter' in fault && !(typeof fault.retryAfter === 'string' && isHttpDate(fault.retryAfter))) {
    // A bare Retry-After counts seconds, so the scaled value carries its unit.
    const ms = parseSecondsOrDuration(fault.retryAfter);
    if (ms !== null) fault.retryAfter = `${Math.max(1, Math.round(ms * factor))}ms`;
  }
}

/**
 * Rewrites a profile's YAML/JSON text with every timeline duration multiplied by `factor`.
 *
 * @example scaleProfileText('phases: [{name: a, duration: 60s}]', 0.5) // phases: [{name: a, duration: 30000}]
 */
export function scaleProfileText(text: string, factor: number): string {
  const doc = parseYaml(text) as unknown;
  if (!isObject(doc)) throw new AftershockError('ERR_PROFILE_INVALID', 'the demo profile is not a YAML mapping');
  for (const r of Array.isArray(doc.rules) ? doc.rules : []) scaleRule(r, factor);
  // Phase lengths scale by their cumulative ends, so rounding never drifts the total.
  let naturalEnd = 0;
  for (const p of Array.isArray(doc.phases) ? doc.phases : []) {
    if (!isObject(p)) continue;
    const ms = parseDuration(p.duration);
    if (ms !== null) {
      const start = Math.round(naturalEnd * factor);
      naturalEnd += ms;
      p.duration = Math.max(1, Math.round(naturalEnd * factor) - start);
    }
    for (const r of Array.isArray(p.rules) ? p.rules : []) scaleRule(r, factor);
  }
  if (typeof doc.description === 'string') {
    doc.description = `${doc.description.trimEnd()}\n(timeline scaled x${factor.toFixed(3)} by aftershock demo)`.slice(0, 4000);
  }
  return stringifyYaml(doc);
}

/**
 * The phases of a compiled profile, in ms since the scenario started.
 *
 * @example phasesOf(await loadProfile('signal-2021'))[2] // { name: 'outage', startMs: 18000, endMs: 33000, ... }
 */
export function phasesOf(profile: CompiledProfile): Phase[] {
  const out: Phase[] = [];
  let at = 0;
  for (const p of profile.phases) {
    out.push({ name: p.name, startMs: at, endMs: at + p.duration, ...(p.description === null ? {} : { description: p.description }) });
    at += p.duration;
  }
  return out;
}

/**
 * Loads a built-in profile with phases and, when `durationMs` is given and differs from its
 * natural length, compresses (or stretches) its timeline to that length.
 *
 * @example
 * const t = await loadDemoTimeline('signal-2021', 10_000);
 * t.totalMs === 10_000; t.phases[2].name === 'outage';
 */
export async function loadDemoTimeline(name: string, durationMs?: number): Promise<DemoTimeline> {
  const natural = await loadProfile(name);
  const total = natural.timeline?.total ?? 0;
  if (total <= 0 || natural.loop) {
    throw new AftershockError('ERR_BAD_OPTION', `profile ${name} has no finite timeline of phases; the demo needs one (e.g. signal-2021)`);
  }
  if (durationMs === undefined || Math.abs(durationMs - total) < 1) {
    return { profile: natural, phases: phasesOf(natural), totalMs: total, scale: 1 };
  }
  const factor = durationMs / total;
  const profile = parseProfile(scaleProfileText(natural.text, factor), null);
  return { profile, phases: phasesOf(profile), totalMs: profile.timeline?.total ?? durationMs, scale: factor };
}
