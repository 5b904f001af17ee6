/**
 * `aftershock demo --html`: a path that cannot be written fails at once, in one line, before any
 * service or fleet starts; a path that breaks during the run still gets the comparison printed,
 * then the error (exit 2). The real CLI in-process, real services on loopback.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';
import { tempDir } from '../helpers.js';


afterEach(() => {
  process.exitCode = undefined;
});

describe('aftershock demo --html', () => {
  it('a folder that does not exist, or a folder as the file: exit 2 at once with one line', async () => {
    const dir = tempDir();
    for (const html of [path.join(dir, 'nonexistent', 'x.html'), dir]) {
      const started = Date.now();
      const run = await cli(['demo', '--html', html]);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(new RegExp(`^aftershock: cannot write the HTML report ${html.replaceAll('/', '\\/')}: E[A-Z]+: .*\\n$`));
    }
    // The check leaves nothing behind.
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a folder removed during the run: the comparison is printed, then the error, exit 2', { timeout: 30_000 }, async () => {
    const dir = tempDir();
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const html = path.join(out, 'demo.html');
    const removed = new Promise<void>((resolve) =>
      setTimeout(() => {
        fs.rmSync(out, { recursive: true, force: true });
        resolve();
      }, 1000),
    );
    const run = await cli(['demo', '--duration', '3s', '--clients', '3', '--html', html]);
    await removed;
    expect(run.code).toBe(2);
    expect(run.stdout).toContain('The same outage, two kinds of clients');
    expect(run.stdout).not.toContain('HTML report:');
    expect(run.stderr.trimEnd().split('\n').at(-1)).toMatch(/^aftershock: cannot write the HTML report .*demo\.html: ENOENT/);
  });
});
