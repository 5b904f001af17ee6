/**
 * `aftershock demo` options as a user types them, in a child process: every option is checked
 * before anything is printed, and `--duration 30` is 30 seconds (a demo is never milliseconds long).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDemoPaths, defaultHtmlPath } from '../../src/demo/run-demo.js';
import { tempDir } from '../helpers.js';
import { cli } from './cli-process.js';

describe('aftershock demo options', () => {
  it('a bad --duration or --record exits 2 with one line quoting what was typed, and prints nothing else', async () => {
    const sameDir = tempDir();
    const cases: Array<[string[], RegExp]> = [
      [['--duration', '2'], /^aftershock: --duration "2": give 3s to 10m, e\.g\. 30s or 2m \(a bare number is seconds\)$/],
      [['--duration', '30ms'], /^aftershock: --duration "30ms": give 3s to 10m/],
      [['--duration', '11m'], /^aftershock: --duration "11m": give 3s to 10m/],
      [['--duration', 'soon'], /^aftershock: --duration "soon": give 3s to 10m/],
      [['--duration', '5s', '--record', '/nonexistent-dir/x/rec.ndjson'], /^aftershock: cannot write the recording \/nonexistent-dir\/x\/rec\.ndjson: .*give --record a file in an existing, writable folder$/],
      // The report would overwrite the recording the demo then points at; `-` is run's stdout, not a file.
      [['--duration', '5s', '--record', path.join(sameDir, 'x'), '--html', path.join(sameDir, '.', 'x')], /^aftershock: --html and --record name the same file \(.*\/x\): the report would overwrite the recording; give each its own file$/],
      [['--duration', '5s', '--record', '-'], /^aftershock: --record -: the demo prints its own output on stdout; give --record a file$/],
    ];
    const runs = cases.map(([args]) => cli(['demo', '--clients', '1', ...args]));
    for (const [i, r] of runs.entries()) {
      expect(await r.exit, r.stderr()).toBe(2);
      expect(r.stdout()).toBe('');
      const lines = r.stderr().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(cases[i]?.[1] as RegExp);
    }
  });

  it('--duration 3 runs for 3 seconds, and --help says a bare number is seconds', async () => {
    const dir = tempDir();
    const html = path.join(dir, 'report.html');
    const r = cli(['demo', '--duration', '3', '--clients', '2', '--fleet', 'careful', '--json', '--html', html]);
    expect(await r.exit, r.stderr()).toBe(0);
    expect(r.stderr()).toMatch(/replaying the signal-2021 outage in 3 s\./);
    expect((JSON.parse(r.stdout()) as { durationMs: number }).durationMs).toBe(3000);
    expect(fs.existsSync(html)).toBe(true);
    const help = cli(['demo', '--help']);
    expect(await help.exit).toBe(0);
    expect(help.stdout().replace(/\s+/g, ' ')).toMatch(/--duration <duration> run length, 3s to 10m \(a bare number is seconds: 30 is 30s\)/);
  });

  it('--record into a FIFO: the reader gets the whole recording (the option check and the start used to open and close it, ending its stream, and the demo hung)', async () => {
    const dir = tempDir();
    const fifo = path.join(dir, 'rec.fifo');
    execFileSync('mkfifo', [fifo]);
    // The reader opens the FIFO first, as `aftershock analyze <(...)` or a log shipper would.
    const got: Buffer[] = [];
    const reader = fs.createReadStream(fifo);
    reader.on('data', (c) => got.push(c as Buffer));
    const ended = new Promise<void>((resolve) => reader.on('end', () => resolve()));
    const r = cli(['demo', '--duration', '3', '--clients', '2', '--fleet', 'careful', '--json', '--html', path.join(dir, 'r.html'), '--record', fifo]);
    expect(await r.exit, r.stderr()).toBe(0);
    await ended;
    const lines = Buffer.concat(got).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]?.type).toBe('header');
    const summary = JSON.parse(r.stdout()) as { fleets: { careful: { report: { totals: { attempts: number } } } } };
    expect(summary.fleets.careful.report.totals.attempts).toBeGreaterThan(0);
    expect(lines.filter((l) => l.type === 'http').length).toBe(summary.fleets.careful.report.totals.attempts);
  });

  it('a second Ctrl-C stops at once with exit 130 and says so (the first one\'s partial report is not coming)', async () => {
    const dir = tempDir();
    const r = cli(['demo', '--duration', '30', '--json', '--html', path.join(dir, 'r.html')]);
    // The fleets running (a stop before they start ends at once, and a second signal then finds
    // the run over): their first live line, 5 s in off a terminal.
    for (let i = 0; i < 400 && !/organic/.test(r.stderr()); i++) await new Promise((res) => setTimeout(res, 50));
    r.child.kill('SIGINT');
    await new Promise((res) => setTimeout(res, 20));
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(130);
    expect(r.stderr()).toMatch(/aftershock demo: stopped at once \(a second signal\): no report/);
  });

  it('--html and --record through a link to the same folder are the same file, refused', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'real'));
    fs.symlinkSync('real', path.join(dir, 'link'));
    expect(() => checkDemoPaths(path.join(dir, 'link', 'rec.ndjson'), path.join(dir, 'real', 'rec.ndjson'))).toThrow(/--html and --record name the same file/);
    expect(() => checkDemoPaths(path.join(dir, 'real', 'a'), path.join(dir, 'real', 'b'))).not.toThrow();
  });

  it('in a folder it cannot write, the report goes to a new folder of its own in the temp dir (a fixed name there may be another user\'s file or link)', () => {
    const dir = tempDir();
    expect(defaultHtmlPath('r.html', dir)).toBe(path.join(dir, 'r.html'));
    // A folder that cannot be written (here one that is gone: root may write any folder there is).
    const gone = path.join(dir, 'gone');
    const a = defaultHtmlPath('r.html', gone);
    const b = defaultHtmlPath('r.html', gone);
    for (const p of [a, b]) {
      expect(path.dirname(path.dirname(p))).toBe(os.tmpdir());
      expect(path.basename(path.dirname(p))).toMatch(/^aftershock-demo-/);
      fs.rmSync(path.dirname(p), { recursive: true, force: true });
    }
    expect(path.dirname(a)).not.toBe(path.dirname(b));
  });
});
