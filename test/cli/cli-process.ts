/**
 * The CLI as a user runs it, for tests of flags and environment variables: the compiled
 * `bin/aftershock.js` in a child process (`npm test` builds first) with an environment that holds no
 * AFTERSHOCK_* variable but the ones a test gives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onCleanup } from '../helpers.js';

export const BIN = fileURLToPath(new URL('../../bin/aftershock.js', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

/** Starts `aftershock ...args`; killed after the test if still running. `stdout()` is empty when `opts.stdout` is given. */
export function cli(args: string[], env: Record<string, string> = {}, opts: { cwd?: string; group?: boolean; stdout?: number } = {}): CliRun {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AFTERSHOCK_')));
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...base, AFTERSHOCK_LOG_LEVEL: 'warn', ...env },
    // `stdout`: a descriptor the child writes to instead (a pipe whose reader the test controls).
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    // Its own process group, so a test can signal the whole group as a terminal's Ctrl-C does.
    detached: opts.group === true,
  });
  let err = '';
  let out = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => err, stdout: () => out, exit };
}

/** The proxy and control API URLs `run` prints once it listens (control is null when off). */
export async function listening(run: CliRun): Promise<{ proxy: string; control: string | null }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /proxying (http:\/\/[\d.]+:\d+) .* control ([^\s"]+)/.exec(run.stderr());
    if (m !== null) return { proxy: m[1] as string, control: m[2] === 'off' ? null : (m[2] as string) };
    if (run.child.exitCode !== null) throw new Error(`exited early: ${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`not listening: ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Stops a `run` with SIGTERM and resolves with its exit status. */
export async function stop(run: CliRun): Promise<number | null> {
  run.child.kill('SIGTERM');
  return run.exit;
}
