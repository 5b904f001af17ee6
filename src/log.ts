/**
 * Operational logs (not the recording): pino to stderr, pretty on a TTY, NDJSON otherwise.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface LoggerOptions {
  readonly level?: string;
  /** Force pretty output on or off; default: pretty when stderr is a TTY. */
  readonly pretty?: boolean;
}

/**
 * @example const log = createLogger({ level: 'info' }); log.info({ port }, 'listening');
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? process.env.AFTERSHOCK_LOG_LEVEL ?? 'info';
  const usePretty = opts.pretty ?? process.stderr.isTTY === true;
  if (usePretty) {
    return pino({ level, base: null }, pretty({ destination: 2, sync: true, colorize: true, ignore: 'pid,hostname' }));
  }
  return pino({ level, base: { name: 'aftershock' } }, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (the library default: embedding code chooses its own logging). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
