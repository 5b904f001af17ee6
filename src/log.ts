/**
 * Operational logs (not the recording): pino to stderr, pretty on a TTY, NDJSON otherwise.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { AftershockError } from './errors.js';

export type { Logger };

/** The levels pino knows, most to least severe, and `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Reads a log level as people write it (case and surrounding spaces ignored). Anything else is a
 * usage error naming `option` and the levels, never pino's own exception (which the CLI took for a
 * bug of its own: status 3 and a stack trace).
 *
 * @example parseLogLevel('--log-level', ' DEBUG ') === 'debug'
 * @example parseLogLevel('--log-level', 'verbose') // throws ERR_BAD_OPTION: --log-level "verbose": give one of fatal, error, ...
 */
export function parseLogLevel(option: string, raw: string): LogLevel {
  const v = raw.trim().toLowerCase();
  const level = LOG_LEVELS.find((l) => l === v);
  if (level === undefined) {
    // A variable reads NAME="value", as the CLI's other errors about variables do.
    const what = /^[A-Z][A-Z0-9_]*$/.test(option) ? `${option}=${JSON.stringify(raw)}` : `${option} ${JSON.stringify(raw)}`;
    throw new AftershockError('ERR_BAD_OPTION', `${what}: give one of ${LOG_LEVELS.join(', ')}`);
  }
  return level;
}

export interface LoggerOptions {
  readonly level?: string;
  /** Force pretty output on or off; default: pretty when stderr is a TTY. */
  readonly pretty?: boolean;
}

/**
 * A logger at `opts.level`, else AFTERSHOCK_LOG_LEVEL (empty counts as unset), else `info`. A level
 * pino does not know throws ERR_BAD_OPTION naming where it came from (see `parseLogLevel`).
 *
 * @example const log = createLogger({ level: 'info' }); log.info({ port }, 'listening');
 */
/**
 * May output be coloured? Not when NO_COLOR is set to anything but the empty string (no-color.org:
 * an empty value counts as unset).
 *
 * @example colorAllowed({ NO_COLOR: '1' }) === false; colorAllowed({ NO_COLOR: '' }) === true
 */
export function colorAllowed(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.NO_COLOR ?? '') === '';
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const fromEnv = process.env.AFTERSHOCK_LOG_LEVEL;
  const level =
    opts.level !== undefined
      ? parseLogLevel('level', opts.level)
      : fromEnv !== undefined && fromEnv.trim() !== ''
        ? parseLogLevel('AFTERSHOCK_LOG_LEVEL', fromEnv)
        : 'info';
  const usePretty = opts.pretty ?? process.stderr.isTTY === true;
  if (usePretty) {
    return pino({ level, base: null }, pretty({ destination: 2, sync: true, colorize: colorAllowed(), ignore: 'pid,hostname' }));
  }
  return pino({ level, base: { name: 'aftershock' } }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (the library default: embedding code chooses its own logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
