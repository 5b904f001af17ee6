/**
 * Durations as people write them on a command line: `250ms`, `2s`, `1m`, `1h`, or a bare number
 * of milliseconds, spelled as profiles spell them (one parser for both), with an option's error.
 */
import { AftershockError } from '../errors.js';
import { parseDuration } from '../faults/lib/duration.js';

/**
 * @example parseDurationOption('--drain-timeout', '10s') === 10000
 */
export function parseDurationOption(option: string, raw: string | number): number {
  const ms = parseDuration(raw);
  if (ms === null) throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: write a duration like 250ms, 10s or 1m`);
  return ms;
}
