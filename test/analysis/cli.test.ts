/**
 * `aftershock analyze` end to end, in-process through commander: format choice, --output,
 * --fail-on exit status, usage errors, HAR, progress only on a TTY.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAnalyzeCommand } from '../../src/cli/analyze.js';
import { AftershockError } from '../../src/errors.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');
const fx = (name: string): string => path.join(DIR, name);
const dirs: string[] = [];

afterEach(() => {
  process.exitCode = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpdir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-cli-'));
  dirs.push(d);
  return d;
}

function sink(tty = false): PassThrough & { isTTY?: boolean; text: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean; text: () => string };
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.text = () => Buffer.concat(chunks).toString('utf8');
  if (tty) s.isTTY = true;
  return s;
}

async function analyze(args: string[], opts: { tty?: boolean; ttyErr?: boolean } = {}): Promise<{ out: string; err: string; code: number | undefined }> {
  const stdout = sink(opts.tty === true);
  const stderr = sink(opts.ttyErr === true);
  const program = new Command('aftershock').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerAnalyzeCommand(program, { stdout, stderr, env: {} });
  await program.parseAsync(['analyze', ...args], { from: 'user' });
  const code = typeof process.exitCode === 'number' ? process.exitCode : undefined;
  return { out: stdout.text(), err: stderr.text(), code };
}

async function usageError(args: string[]): Promise<AftershockError> {
  try {
    await analyze(args);
  } catch (err) {
    expect(err).toBeInstanceOf(AftershockError);
    return err as AftershockError;
  }
  throw new Error(`analyze ${args.join(' ')} did not fail`);
}

describe('aftershock analyze', () => {
  it('writes JSON when stdout is not a terminal, text when it is', async () => {
    const json = await analyze([fx('immediate-storm.ndjson')]);
    expect(JSON.parse(json.out).verdict).toBe('retry-storm');
    expect(json.code).toBeUndefined();
    expect(json.err).toBe('');
    const text = await analyze([fx('immediate-storm.ndjson')], { tty: true });
    expect(text.out.split('\n')[0]).toContain('RETRY STORM');
  });

  it('takes the format from --format or from the --output extension', async () => {
    const d = tmpdir();
    const html = path.join(d, 'report.html');
    const r = await analyze([fx('herd.ndjson'), '--output', html]);
    expect(r.out).toBe('');
    expect(fs.readFileSync(html, 'utf8')).toMatch(/^<!doctype html>/);
    expect(r.err).toMatch(/wrote .*report\.html \(html\): verdict retry-storm/);
    const md = await analyze([fx('herd.ndjson'), '--format', 'markdown']);
    expect(md.out).toMatch(/^## aftershock retry analysis/);
    const junit = path.join(d, 'results.xml');
    await analyze([fx('herd.ndjson'), '-o', junit]);
    expect(fs.readFileSync(junit, 'utf8')).toMatch(/^<\?xml/);
  });

  it('--fail-on sets exit status 1 when a condition holds and says which', async () => {
    const r = await analyze([fx('immediate-storm.ndjson'), '--fail-on', 'retry-storm,unsafe-retry', '--fail-on', 'amplification>1.5']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--fail-on retry-storm held');
    expect(r.err).toContain('--fail-on amplification>1.5 held: amplification is');
    expect(r.err).not.toContain('unsafe-retry held');
  });

  it('--fail-on leaves the exit status alone when nothing holds', async () => {
    const r = await analyze([fx('polling.ndjson'), '--fail-on', 'retry-storm,critical,retryRatio>20%']);
    expect(r.code).toBeUndefined();
    expect(JSON.parse(r.out).verdict).toBe('ok');
  });

  it('usage mistakes are AftershockErrors with exit status 2, raised before any output', async () => {
    const gate = await usageError([fx('polling.ndjson'), '--fail-on', 'amplification>>2']);
    expect(gate.code).toBe('ERR_GATE');
    expect(gate.exitCode).toBe(2);
    expect((await usageError([fx('polling.ndjson'), '--format', 'pdf'])).code).toBe('ERR_BAD_OPTION');
    expect((await usageError([fx('polling.ndjson'), '--max-clients', 'many'])).message).toMatch(/--max-clients/);
    expect((await usageError([fx('polling.ndjson'), '--window', 'soon'])).message).toMatch(/duration/);
    const missing = await usageError([path.join(tmpdir(), 'nope.ndjson')]);
    expect(missing.code).toBe('ERR_RECORDING_READ');
    expect(missing.message).toMatch(/cannot read recording .*nope\.ndjson/);
  });

  it('merges several recordings by time', async () => {
    const r = await analyze([fx('multi-proxy-a.ndjson'), fx('multi-proxy-b.ndjson')]);
    const one = await analyze([fx('constant-no-jitter.ndjson')]);
    expect(JSON.parse(r.out).totals).toEqual(JSON.parse(one.out).totals);
  });

  it('passes analyzer options through', async () => {
    const r = JSON.parse((await analyze([fx('polling.ndjson'), '--window', '90s', '--max-clients', '3', '--client-key-header', 'x-client-id', '--cache-busting-keys', 't,_'])).out);
    expect(r.options).toMatchObject({ windowMs: 90_000, windowAuto: false, maxClients: 3, clientKeyHeader: 'x-client-id', cacheBustingKeys: ['t', '_'] });
    expect(r.dataQuality.clientKeyFallbacks).toBe(0); // the header was never recorded: not a fallback
  });

  it('--format har streams the recording as HAR, and gates still work', async () => {
    const d = tmpdir();
    const har = path.join(d, 'traffic.har');
    const r = await analyze([fx('duplicate-submission.ndjson'), '--output', har, '--fail-on', 'duplicate-submission']);
    const doc = JSON.parse(fs.readFileSync(har, 'utf8'));
    expect(doc.log.version).toBe('1.2');
    expect(doc.log.entries).toHaveLength(118);
    expect(r.code).toBe(1);
    const stdout = await analyze([fx('polling.ndjson'), '--format', 'har']);
    expect(JSON.parse(stdout.out).log.entries).toHaveLength(75);
  });

  it('--format har -o says what it wrote on stderr, as the other formats do (the verdict only when gates made a report)', async () => {
    const d = tmpdir();
    const har = path.join(d, 'x.har');
    const plain = await analyze([fx('polling.ndjson'), '--format', 'har', '-o', har]);
    expect(JSON.parse(fs.readFileSync(har, 'utf8')).log.entries).toHaveLength(75);
    expect(plain.err).toBe(`aftershock: wrote ${har} (har): 75 entries\n`);
    const gated = await analyze([fx('duplicate-submission.ndjson'), '-o', har, '--fail-on', 'duplicate-submission']);
    const report = JSON.parse((await analyze([fx('duplicate-submission.ndjson')])).out);
    const n = report.findings.length;
    expect(gated.err.split('\n')[0]).toBe(`aftershock: wrote ${har} (har): 118 entries; verdict ${report.verdict}, ${n} finding${n === 1 ? '' : 's'}`);
    expect(gated.code).toBe(1);
    const stdout = await analyze([fx('polling.ndjson'), '--format', 'har']);
    expect(stdout.err).toBe(''); // on stdout, as for every format, nothing is said
    // Unreadable lines are said, with -o in its line, on stdout on stderr (they were skipped silently).
    const broken = path.join(d, 'broken.ndjson');
    fs.writeFileSync(broken, fs.readFileSync(fx('polling.ndjson'), 'utf8') + 'not json\n{"type":"http","status":"503"}\n');
    expect((await analyze([broken, '--format', 'har', '-o', har])).err).toBe(`aftershock: wrote ${har} (har): 75 entries; 2 unreadable lines skipped\n`);
    expect((await analyze([broken, '--format', 'har'])).err).toBe('aftershock: 2 unreadable lines skipped\n');
  });

  it('reports bad lines and goes on', async () => {
    const r = JSON.parse((await analyze([fx('corrupt.ndjson')])).out);
    expect(r.dataQuality.badLines.count).toBe(3);
    expect(r.totals.attempts).toBe(74);
  });

  it('shows progress on a TTY stderr only, and clears it', async () => {
    // Three copies (the same file given three times is refused).
    const d = tmpdir();
    const files = [1, 2, 3].map((i) => {
      const f = path.join(d, `copy-${i}.ndjson`);
      fs.copyFileSync(fx('good-client.ndjson'), f);
      return f;
    });
    const quiet = await analyze(files);
    expect(quiet.err).toBe('');
    const tty = await analyze(files, { ttyErr: true });
    expect(tty.err).toMatch(/analysing: [\d,]+ records \([\d,]+\/s\), [\d.]+ (KB|MB)/);
    expect(tty.err.endsWith('\r\u001b[K')).toBe(true);
  });

  it('gates over a recording of no exchange (only its header: the clients never reached the proxy) exit 2, not a green 0; without gates it is reported', async () => {
    const d = tmpdir();
    const rec = path.join(d, 'header-only.ndjson');
    fs.writeFileSync(rec, fs.readFileSync(fx('polling.ndjson'), 'utf8').split('\n')[0] + '\n');
    const e = await usageError([rec, '--fail-on', 'critical', '--fail-on', 'amplification>1.5']);
    expect(e).toMatchObject({ code: 'ERR_RECORDING_READ', exitCode: 2 });
    expect(e.message).toMatch(/holds no exchange, so the --fail-on gates have nothing to judge/);
    expect((await analyze([rec, '--format', 'json'])).code ?? 0).toBe(0);
  });

  it('refuses a recording given twice, an --output that is an input, and inputs with no readable record', async () => {
    const d = tmpdir();
    const rec = path.join(d, 'rec.ndjson');
    fs.copyFileSync(fx('polling.ndjson'), rec);
    const twice = await usageError([rec, path.join(d, '.', 'rec.ndjson')]);
    expect(twice).toMatchObject({ code: 'ERR_BAD_OPTION', exitCode: 2 });
    expect(twice.message).toMatch(/given twice/);
    fs.symlinkSync(rec, path.join(d, 'link.ndjson'));
    expect((await usageError([rec, path.join(d, 'link.ndjson')])).message).toMatch(/given twice \(also as/);
    const over = await usageError([rec, '--format', 'har', '--output', rec]);
    expect(over.message).toMatch(/--output .* is one of the recordings/);
    // A hard link is the same file under another name (it was overwritten with the report).
    fs.linkSync(rec, path.join(d, 'hard.ndjson'));
    expect((await usageError([rec, '--format', 'json', '--output', path.join(d, 'hard.ndjson')])).message).toMatch(/--output .* is one of the recordings/);
    expect((await usageError([rec, path.join(d, 'hard.ndjson')])).message).toMatch(/given twice/);
    expect(fs.readFileSync(rec, 'utf8')).toBe(fs.readFileSync(fx('polling.ndjson'), 'utf8'));
    const empty = path.join(d, 'empty.ndjson');
    fs.writeFileSync(empty, '');
    const junk = path.join(d, 'junk.ndjson');
    fs.writeFileSync(junk, 'not json\n{"type":"http","status":"503"}\n');
    for (const [file, why] of [
      [empty, /it is empty/],
      [junk, /all 2 lines are unreadable/],
    ] as const) {
      for (const format of ['json', 'har']) {
        const e = await usageError([file, '--format', format, '--fail-on', 'retry-storm']);
        expect(e).toMatchObject({ code: 'ERR_RECORDING_READ', exitCode: 2 });
        expect(e.message).toMatch(why);
      }
    }
  });

  it('writes no HAR at all for a recording with nothing to read: no file is created, nothing reaches stdout', async () => {
    const d = tmpdir();
    const empty = path.join(d, 'empty.ndjson');
    fs.writeFileSync(empty, 'not json\n');
    const har = path.join(d, 'out.har');
    await expect(analyze([empty, '--format', 'har', '--output', har])).rejects.toMatchObject({ code: 'ERR_RECORDING_READ', exitCode: 2 });
    expect(fs.existsSync(har)).toBe(false);
    const stdout = sink();
    const program = new Command('aftershock').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerAnalyzeCommand(program, { stdout, stderr: sink(), env: {} });
    await expect(program.parseAsync(['analyze', empty, '--format', 'har'], { from: 'user' })).rejects.toMatchObject({ code: 'ERR_RECORDING_READ' });
    expect(stdout.text()).toBe('');
  });

  it('names a record whose fields have the wrong type as a bad line instead of crashing a format on it', async () => {
    const d = tmpdir();
    const file = path.join(d, 'hostile.ndjson');
    const base = { v: 1, type: 'http', id: 'a', ts: 1736942400000, end: 1736942400010, client: 'c1', path: '/a', status: 200, headers: {} };
    const lines = [
      { ...base, id: 'ok' },
      { ...base, fault: { rule: 7, type: 'status', injected: true } },
      { ...base, query: 5 },
      { ...base, ts: 9e15, end: 9e15 + 10 },
      { ...base, status: '503' },
      { ...base, faults: 'none' },
    ];
    fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    for (const format of ['text', 'html', 'markdown', 'junit', 'json']) {
      const r = await analyze([file, '--format', format]);
      expect(r.out.length, format).toBeGreaterThan(0);
    }
    const har = JSON.parse((await analyze([file, '--format', 'har'])).out);
    expect(har.log.entries).toHaveLength(1);
    const r = JSON.parse((await analyze([file])).out);
    expect(r.totals.attempts).toBe(1);
    expect(r.dataQuality.badLines.lines.map((b: { line: number; reason: string }) => [b.line, b.reason])).toEqual([
      [2, 'http record\'s "fault" must be null or { rule, type, injected } with string rule and type'],
      [3, 'http record\'s "query" must be a string or null'],
      [4, 'http record without a numeric "ts" (milliseconds since 1970)'],
      [5, 'http record\'s "status" must be a whole number or null'],
      [6, 'http record\'s "faults" must be a list of { rule, type, injected }'],
    ]);
  });

  it('reads a gzip recording whatever its name (by its magic bytes)', async () => {
    const d = tmpdir();
    const file = path.join(d, 'saved-from-ci.ndjson');
    const { gzipSync } = await import('node:zlib');
    fs.writeFileSync(file, gzipSync(fs.readFileSync(fx('polling.ndjson'))));
    expect(JSON.parse((await analyze([file])).out).totals.attempts).toBe(75);
  });

  it('reads a gzip recording from stdin (the real CLI, piped)', async () => {
    const { spawn } = await import('node:child_process');
    const { gzipSync } = await import('node:zlib');
    const bin = path.join(import.meta.dirname, '..', '..', 'bin', 'aftershock.js');
    const run = (input: Buffer): Promise<{ code: number | null; out: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [bin, 'analyze', '-', '--format', 'json'], { stdio: ['pipe', 'pipe', 'ignore'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.on('close', (code) => resolve({ code, out }));
        child.stdin.end(input);
      });
    const plain = fs.readFileSync(fx('polling.ndjson'));
    for (const input of [gzipSync(plain), plain]) {
      const r = await run(input);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out).totals.attempts).toBe(75);
    }
    // Cut short and small (under the inflater's first output): read up to the cut, as by name
    // (it read nothing on stdin: what was inflated before the cut was dropped with the error).
    const { gunzipSync, constants } = await import('node:zlib');
    const packed = gzipSync(plain);
    const cut = packed.subarray(0, Math.min(packed.length - 20, 3000));
    const whole = gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8').split('\n').length - 1;
    const byName = path.join(tmpdir(), 'cut.ndjson.gz');
    fs.writeFileSync(byName, cut);
    const [piped, named] = [await run(cut), await analyze([byName])];
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.out).dataQuality.records).toBe(whole);
    expect(JSON.parse(named.out).dataQuality.records).toBe(whole);
  });

  it('reads gzip recordings', async () => {
    const d = tmpdir();
    const gz = path.join(d, 'rec.ndjson.gz');
    const { gzipSync } = await import('node:zlib');
    fs.writeFileSync(gz, gzipSync(fs.readFileSync(fx('polling.ndjson'))));
    expect(JSON.parse((await analyze([gz])).out).totals.attempts).toBe(75);
  });
});
