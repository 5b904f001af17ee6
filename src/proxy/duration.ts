/**
 * Durations as people write them on a command line: `250ms`, `2s`, `1m`, `1h`, or a bare number
 * of milliseconds.
 */
import { AftershockError } from '../errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * @example parseDurationOption('--drain-timeout', '10s') === 10000
 */
export function parseDurationOption(option: string, raw: string | number): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(raw));
  if (m === null) {
    throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: write a duration like 250ms, 10s or 1m`);
  }
  return Number(m[1]) * (UNITS[m[2] ?? 'ms'] as number);
}
