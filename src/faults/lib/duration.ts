/**
 * Durations as profiles write them (k6, Chaos Mesh): `250ms`, `2s`, `1.5m`, `1h`, or a plain
 * number of milliseconds. One parser for every fault option and schedule key, so `2s` means the
 * same thing everywhere.
 */
import { AftershockError } from '../../errors.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$/;

/** The message every duration problem carries, so users learn one spelling. */
export const DURATION_HINT = 'must be a duration like 250ms, 2s or 1m (a plain number means milliseconds)';

/**
 * Milliseconds, or null when `value` is not a duration.
 *
 * @example parseDuration('2s') === 2000; parseDuration(250) === 250; parseDuration('soon') === null
 */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = DURATION_RE.exec(value);
  if (m === null) return null;
  const ms = Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] as number);
  return Number.isFinite(ms) ? ms : null;
}

const BARE_NUMBER_RE = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*$/;

/**
 * Milliseconds from a value whose bare number counts seconds (Retry-After, the demo's
 * `--duration`): `30` and `'30'` are 30 s; with a unit it is a duration as above. Null when it is
 * neither.
 *
 * @example parseSecondsOrDuration('30') === 30_000; parseSecondsOrDuration('1500ms') === 1500
 */
export function parseSecondsOrDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : null;
  if (typeof value === 'string' && BARE_NUMBER_RE.test(value)) return Number(value) * 1000;
  return parseDuration(value);
}

/**
 * The shortest exact spelling of a duration, for summaries: 1500 -> `1.5s`, 60000 -> `1m`.
 *
 * @example formatDuration(120) === '120ms'
 */
export function formatDuration(ms: number): string {
  if (ms === Infinity) return 'forever';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && Number.isInteger((ms / size) * 1000)) return `${+(ms / size).toFixed(3)}${unit}`;
  }
  return `${+ms.toFixed(3)}ms`;
}

/**
 * A duration given as an option (a CLI flag, a library option), spelled as profiles spell them (one
 * parser for both), or the option's error.
 *
 * @example parseDurationOption('--drain-timeout', '10s') === 10000
 */
export function parseDurationOption(option: string, raw: string | number): number {
  const ms = parseDuration(raw);
  if (ms === null) throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: write a duration like 250ms, 10s or 1m`);
  return ms;
}
