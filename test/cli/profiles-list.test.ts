/**
 * `aftershock profiles list` in a child process: each built-in with the whole first sentence of its
 * description, which a colon does not end.
 */
import { describe, expect, it } from 'vitest';
import { cli } from './cli-process.js';

describe('aftershock profiles list', () => {
  it('prints whole first sentences, not the text up to the first colon', async () => {
    const r = cli(['profiles', 'list']);
    expect(await r.exit).toBe(0);
    const lines = r.stdout().split('\n').filter((l) => /^\S+\s{2,}\S/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(9);
    for (const line of lines) expect(line, line).toMatch(/\.$/);
    expect(r.stdout()).toMatch(/^passthrough\s+No faults: every request and every WebSocket message passes through untouched, and every exchange is recorded\.$/m);
    expect(r.stdout()).toMatch(/^flaky\s+A service that fails now and then, the way real ones do: .* have their connection reset\.$/m);
    expect(r.stdout()).toMatch(/^signal-2021\s+A replay of the January 2021 pattern, in about 60 s\.$/m);
  });
});

describe('aftershock profiles into a pipe that closes early', () => {
  it.each([['show', 'signal-2021'], ['list']])('profiles %s | head -1 exits 0 without a stack trace', async (...args) => {
    const { spawnSync } = await import('node:child_process');
    const path = await import('node:path');
    const bin = path.join(import.meta.dirname, '..', '..', 'bin', 'aftershock.js');
    const st = spawnSync('bash', ['-c', `"${process.execPath}" "${bin}" profiles ${args.join(' ')} | head -c 1 >/dev/null; echo \${PIPESTATUS[0]}`], { encoding: 'utf8' });
    expect(st.stdout.trim()).toBe('0');
    expect(st.stderr).toBe('');
  });
});
