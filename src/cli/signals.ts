/**
 * How the long-running commands (`run`, `demo`) stop: the signals that stop them gracefully, and
 * what a write to a terminal that hung up must not do.
 */

/**
 * Signals that stop a command gracefully, each as SIGTERM does (a second one of any of them: at
 * once). SIGHUP is a stop like the others: it is what a closed terminal or a dropped ssh session
 * sends.
 */
export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** The errors a write to stdout or stderr gives once nothing reads it: a closed pipe, a hung-up terminal. */
export function readerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'EIO';
}

/**
 * After SIGHUP the terminal may be gone: every write to it fails (EIO), and a write error nobody
 * listens for would kill the process in the middle of its drain. Logs and the summary are then
 * best effort; a recording (a file) is not affected.
 */
export function outliveTerminal(signal: string): void {
  if (signal !== 'SIGHUP') return;
  for (const out of [process.stdout, process.stderr]) if (out.listenerCount('error') === 0) out.on('error', () => undefined);
}
