/**
 * `aftershock demo` stopped by a signal, as a user stops it: the compiled CLI in a child process.
 * Each stop signal ends the run early and still prints the comparison of what ran.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './cli-process.js';

async function waitFor(test: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('aftershock demo stopped by a signal', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s stops the run early, prints the comparison and exits 0', async (signal) => {
    const r = cli(['demo', '--duration', '60s', '--clients', '4', '--fleet', 'naive', '--json']);
    // The live view (stderr with --json) shows the fleet under way before the signal.
    await waitFor(() => /Ctrl-C stops early/.test(r.stderr()), 'the demo to start');
    await new Promise((res) => setTimeout(res, 1500));
    r.child.kill(signal);
    expect(await r.exit).toBe(0);
    expect(r.child.signalCode).toBeNull();
    const json = JSON.parse(r.stdout()) as { fleets?: Array<{ aborted?: boolean }> } & Record<string, unknown>;
    expect(JSON.stringify(json)).toMatch(/"aborted":true/);
  }, 40_000);

  it('after SIGHUP with the terminal gone (stdout and stderr closed) still stops cleanly with status 0', async () => {
    const r = cli(['demo', '--duration', '60s', '--clients', '4', '--fleet', 'naive']);
    await waitFor(() => /Ctrl-C stops early/.test(r.stdout()), 'the demo to start');
    await new Promise((res) => setTimeout(res, 1000));
    r.child.stdout?.destroy();
    r.child.stderr?.destroy();
    r.child.kill('SIGHUP');
    expect(await r.exit).toBe(0);
    expect(r.child.signalCode).toBeNull();
  }, 40_000);
});
