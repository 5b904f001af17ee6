/**
 * A broken disk never crashes the proxy and never leaves a silent gap: lost records are counted,
 * reported, and the proxy keeps serving. A record is written exactly once or counted as failed,
 * also when the file is removed under the proxy and when the process exits in the middle of a write.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NdjsonWriter } from '../../src/record/writer.js';
import { analyzeFiles, createAnalyzer, evaluateGates, parseGate } from '../../src/analysis/index.js';
import type { AnyRecord } from '../../src/record/schema.js';
import { readRecords, request, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';

/** A proxy recording into a folder of its own, one exchange written, then the folder removed. */
async function recordingThenFolderRemoved() {
  const sub = path.join(tempDir(), 'recordings');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'rec.ndjson');
  const up = await startUpstream((_req, res) => res.end('ok'));
  const proxy = await startTestProxy({ target: up.url, record: file });
  await request(`${proxy.url}/before`);
  await proxy.recorder.drain();
  fs.rmSync(sub, { recursive: true });
  return { sub, file, proxy };
}

describe('recording failures', () => {
  it('keeps proxying on a full disk and counts every record it could not write', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: '/dev/full' });
    for (let i = 0; i < 10; i++) expect((await request(`${proxy.url}/r${i}`)).status).toBe(200);
    await proxy.recorder.drain();
    const st = proxy.stats().recording;
    // the header line plus ten exchanges, none written
    expect(st.written).toBe(0);
    expect(st.failed).toBe(11);
    expect(st.lastError).toMatch(/ENOSPC|no space/i);
    expect(proxy.ready).toBe(false);
  });

  it('notices a removed recording folder, counts the loss, and resumes when the folder is back', async () => {
    const { sub, file, proxy } = await recordingThenFolderRemoved();
    await waitFor(() => !proxy.ready, 4000);
    expect((await request(`${proxy.url}/while-gone`)).status).toBe(200);
    await proxy.recorder.drain();
    expect(proxy.stats().recording.failed).toBeGreaterThanOrEqual(1);
    fs.mkdirSync(sub);
    await waitFor(() => proxy.ready, 4000);
    await request(`${proxy.url}/after`);
    await proxy.close();
    const recs = readRecords(file);
    expect(recs.some((r) => r.type === 'http' && r.path === '/after')).toBe(true);
    expect(recs.some((r) => r.type === 'http' && r.path === '/while-gone')).toBe(false);
  });
});

describe('a recording file removed under the proxy', () => {
  it('counts records written after the removal as failed, not written, and the re-created file starts with the header', async () => {
    const dir = tempDir();
    const sub = path.join(dir, 'recordings');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'traffic.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file });
    await proxy.recorder.drain();
    const header = proxy.recorder.headerRecord;
    expect(proxy.stats().recording).toMatchObject({ written: 1, failed: 0 });

    fs.rmSync(sub, { recursive: true });
    for (let i = 0; i < 5; i++) expect((await request(`${proxy.url}/gone${i}`)).status).toBe(200);
    await proxy.recorder.drain();
    // the five went into a file without a name: lost, and counted so
    expect(proxy.stats().recording).toMatchObject({ written: 1, failed: 5, pending: 0 });
    expect(proxy.ready).toBe(false);

    fs.mkdirSync(sub);
    await waitFor(() => proxy.ready, 4000);
    await request(`${proxy.url}/after`);
    await proxy.close();
    const recs = readRecords(file);
    expect(recs.map((r) => (r.type === 'http' ? r.path : r.type)).sort()).toEqual(['/after', 'event', 'header']);
    expect(recs[0]).toEqual(header);
    // The file tells of its gap, once writing works again.
    expect(recs.find((r) => r.type === 'event')).toMatchObject({ event: 'records-lost', detail: { records: 5, reason: expect.stringMatching(/removed/) } });
    // header, header again, /after, the records-lost event
    expect(proxy.stats().recording).toMatchObject({ written: 4, failed: 5, pending: 0 });
  });

  it('the file tells of its gap: analyze counts the lost records, says so, lowers its confidence, and a gate can fail on it', async () => {
    const { sub, file, proxy } = await recordingThenFolderRemoved();
    for (let i = 0; i < 3; i++) await request(`${proxy.url}/gone${i}`);
    await proxy.recorder.drain();
    fs.mkdirSync(sub);
    await waitFor(() => proxy.ready, 4000);
    await request(`${proxy.url}/after`);
    await proxy.close();
    const report = await analyzeFiles([file]);
    expect(report.dataQuality.recordsLost).toBe(3);
    expect(report.findings.find((f) => f.code === 'records-lost')).toMatchObject({ severity: 'warning', evidence: { records: 3 } });
    expect(report.confidence.reasons.join(' ')).toMatch(/could not write 3 records/);
    expect(evaluateGates(report, parseGate('recordsLost>0'))).toHaveLength(1);
  });
});

describe('the records-lost notices', () => {
  it('carry the running total, so a notice that is itself lost is covered by the next; analyze takes the largest per recorder', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const calls: Array<[number, number]> = [];
    const w = NdjsonWriter.open(file, {
      maxBufferBytes: 1000,
      onLost: (lines, _reason, total) => {
        calls.push([lines, total]);
        w.writeLine(JSON.stringify({ v: 1, type: 'event', ts: 1, event: 'records-lost', detail: { records: lines, total, instance: 'a' } }));
      },
    });
    const line = JSON.stringify({ v: 1, type: 'mark', ts: 1, label: 'x'.repeat(60) });
    for (let i = 0; i < 200; i++) w.writeLine(line);
    await w.drain();
    w.writeLine(line);
    await w.close();
    expect(calls.length).toBeGreaterThan(0);
    for (const [, total] of calls) expect(total).toBeLessThanOrEqual(w.stats.failed);
    expect(calls.at(-1)?.[1]).toBe(calls.reduce((n, [lines]) => n + lines, 0));
    // Two recorders; one notice of 'a' superseded by a larger total, one of 'b' lost and covered.
    const analyzer = createAnalyzer({});
    const ev = (detail: Record<string, unknown>) => ({ v: 1, type: 'event', ts: 1, event: 'records-lost', detail }) as AnyRecord;
    for (const d of [{ records: 5, total: 5, instance: 'a' }, { records: 3, total: 8, instance: 'a' }, { records: 4, total: 6, instance: 'b' }, { records: 2 }]) analyzer.ingest(ev(d));
    expect(analyzer.report().dataQuality.recordsLost).toBe(8 + 6 + 2);
  });
});

describe('NdjsonWriter: records lost to a full buffer, and a file truncated in place', () => {
  it('a full buffer is said once, loud (lastError, onError: readiness fails), and a write that goes through again clears it', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const errors: string[] = [];
    let recovered = 0;
    const w = NdjsonWriter.open(file, { maxBufferBytes: 1000, onError: (e) => errors.push(e.message), onRecover: () => recovered++ });
    const line = JSON.stringify({ v: 1, type: 'mark', ts: 1, label: 'x'.repeat(60) });
    for (let i = 0; i < 200; i++) w.writeLine(line);
    expect(w.stats.failed).toBeGreaterThan(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/the recording cannot keep up: .* records are being lost/);
    expect(w.stats.lastError).toMatch(/cannot keep up/);
    await w.drain();
    w.writeLine(line);
    await w.drain();
    expect(w.stats.lastError).toBeNull();
    expect(recovered).toBe(1);
    await w.close();
  });

  it('a file truncated in place (copytruncate) starts again with its header and a line saying what it continues', async () => {
    const HEADER = '{"v":1,"type":"header"}';
    const file = path.join(tempDir(), 'rec.ndjson');
    const warnings: string[] = [];
    const continued: number[] = [];
    const w = NdjsonWriter.open(file, { checkPathMs: 0, onWarning: (m) => warnings.push(m), onReopen: (n) => continued.push(n) });
    w.setHeader(HEADER);
    w.writeLine('{"n":1}');
    await w.drain();
    fs.copyFileSync(file, file + '.1');
    fs.truncateSync(file, 0);
    w.writeLine('{"n":2}');
    await w.close();
    expect(fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '')).toEqual([HEADER, '{"n":2}']);
    expect(continued).toEqual([2]);
    expect(warnings.join(' ')).toMatch(/was truncated/);
  });
});

describe('NdjsonWriter and a file replaced by a FIFO mid-run', () => {
  it('does not block in open() waiting for a reader: the lines are lost and counted until one comes', async () => {
    const { execFileSync } = await import('node:child_process');
    const file = path.join(tempDir(), 'rec.ndjson');
    const errors: string[] = [];
    const w = NdjsonWriter.open(file, { checkPathMs: 20, onError: (e) => errors.push(e.message), onWarning: () => undefined });
    w.writeLine('{"n":1}');
    await w.drain();
    fs.renameSync(file, file + '.old');
    execFileSync('mkfifo', [file]);
    // The check runs on the timer: a blocked open would stop this timer too.
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    expect(Date.now() - t0).toBeLessThan(1500);
    w.writeLine('{"n":2}');
    await new Promise((r) => setTimeout(r, 100));
    expect(w.stats.failed).toBeGreaterThan(0);
    await w.close({ timeoutMs: 200 });
  });
});

describe('NdjsonWriter and a removed file', () => {
  const HEADER = '{"v":1,"type":"header"}';
  const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

  it('re-creates a removed file (folder still there) at the next batch, header first, losing nothing', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const w = NdjsonWriter.open(file, { checkPathMs: 0 });
    w.setHeader(HEADER);
    w.writeLine('{"n":1}');
    await w.drain();
    fs.unlinkSync(file);
    w.writeLine('{"n":2}');
    await w.close();
    expect(lines(file)).toEqual([HEADER, '{"n":2}']);
    expect(w.stats).toEqual({ written: 4, failed: 0, pending: 0, lastError: null });
  });

  it('counts a batch that landed in a removed file as failed, and recovers when the folder is back', async () => {
    const sub = path.join(tempDir(), 'recordings');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'rec.ndjson');
    const errors: string[] = [];
    let recovered = 0;
    const w = NdjsonWriter.open(file, { checkPathMs: 20, onError: (e) => errors.push(e.message), onRecover: () => recovered++ });
    w.setHeader(HEADER);
    w.writeLine('{"n":1}');
    await w.drain();
    w.writeLine('{"n":2}');
    w.flush(); // the batch is on the thread pool; its callback cannot run before the removal below
    fs.rmSync(sub, { recursive: true });
    await w.drain();
    expect(w.stats).toMatchObject({ written: 2, failed: 1, pending: 0 });
    expect(errors).toHaveLength(1);
    w.writeLine('{"n":3}');
    await w.drain();
    expect(w.stats).toMatchObject({ written: 2, failed: 2 });

    fs.mkdirSync(sub);
    await waitFor(() => recovered === 1 && w.stats.lastError === null, 4000);
    w.writeLine('{"n":4}');
    await w.close();
    expect(lines(file)).toEqual([HEADER, '{"n":4}']);
    expect(w.stats).toEqual({ written: 4, failed: 2, pending: 0, lastError: null });
  });
});

describe('a recording file moved away mid-run (log rotation, a user\'s mv)', () => {
  const HEADER = '{"v":1,"type":"header"}';
  const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
  it('is no failure: nothing is lost, the recording goes on in a new file at the path that says it continues another', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const moved = path.join(dir, 'moved.ndjson');
    const errors: string[] = [];
    const warnings: string[] = [];
    const reopened: number[] = [];
    const w = NdjsonWriter.open(file, {
      checkPathMs: 20,
      onError: (e) => errors.push(e.message),
      onWarning: (m) => warnings.push(m),
      onReopen: (before) => reopened.push(before),
    });
    w.setHeader(HEADER);
    w.writeLine('{"n":1}');
    await w.drain();
    fs.renameSync(file, moved);
    await waitFor(() => fs.existsSync(file), 4000);
    w.writeLine('{"n":2}');
    await w.close();
    expect(errors).toEqual([]);
    expect(warnings.join(' ')).toMatch(/moved or replaced.*continues in a new file/);
    expect(reopened).toEqual([2]);
    expect(lines(moved)).toEqual([HEADER, '{"n":1}']);
    expect(lines(file)).toEqual([HEADER, '{"n":2}']);
    expect(w.stats).toEqual({ written: 4, failed: 0, pending: 0, lastError: null });
  });

  it('a proxy run: analyze of the new file alone says a part before it is missing; with the moved part it does not', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const moved = path.join(dir, 'moved.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file });
    for (let i = 0; i < 5; i++) await request(`${proxy.url}/a/${i}`);
    await proxy.recorder.drain();
    fs.renameSync(file, moved);
    await waitFor(() => fs.existsSync(file), 4000);
    for (let i = 0; i < 5; i++) await request(`${proxy.url}/b/${i}`);
    await proxy.close();
    const events = readRecords(file).filter((r) => r.type === 'event' && r.event === 'recording-continued');
    expect(events).toHaveLength(1);
    const alone = await analyzeFiles([file]);
    expect(alone.limits.join(' ')).toMatch(/continues a file that was moved away or replaced.*not among the inputs/);
    expect(alone.confidence.reasons.join(' ')).toMatch(/part of the recording is missing/);
    const both = await analyzeFiles([moved, file]);
    expect(both.limits.join(' ')).not.toMatch(/continues a file that was moved away/);
    expect(both.totals.attempts).toBe(10);
  });
});

describe('NdjsonWriter.flushSync (a second signal: write and exit at once)', () => {
  const ids = (file: string): number[] =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { i: number }).i);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

  it('writes the batch of a write in flight and everything buffered behind it, and counts them once', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const w = NdjsonWriter.open(file, { flushBytes: 1 << 30, checkPathMs: 0 });
    for (let i = 0; i < 1000; i++) w.writeLine(JSON.stringify({ i, pad: 'x'.repeat(100) }));
    w.flush();
    for (let i = 1000; i < 2000; i++) w.writeLine(JSON.stringify({ i, pad: 'x'.repeat(100) }));
    w.flushSync();
    expect(w.stats).toEqual({ written: 2000, failed: 0, pending: 0, lastError: null });
    expect(ids(file)).toEqual(range(0, 2000));
    // the pooled write of the first batch calls back later: same bytes, same place, not counted again
    await w.drain();
    expect(w.stats.written).toBe(2000);
    for (let i = 2000; i < 2100; i++) w.writeLine(JSON.stringify({ i }));
    await w.close();
    expect(ids(file)).toEqual(range(0, 2100));
    expect(w.stats).toEqual({ written: 2100, failed: 0, pending: 0, lastError: null });
  });

  // A child process with one pool thread held busy, so the pooled write has certainly not run when
  // flushSync does: it runs the compiled writer (npm test builds first), as the CLI test does.
  const WRITER = new URL('../../dist/record/writer.js', import.meta.url).href;
  const CHILD = `
    import crypto from 'node:crypto';
    const { NdjsonWriter } = await import(${JSON.stringify(WRITER)});
    const [file, mode] = process.argv.slice(1);
    const w = NdjsonWriter.open(file, { flushBytes: 1 << 30, checkPathMs: 0 });
    for (let i = 0; i < 1000; i++) w.writeLine(JSON.stringify({ i }));
    crypto.pbkdf2('x', 'y', 200000, 32, 'sha256', () => {}); // holds the only pool thread
    w.flush();
    for (let i = 1000; i < 2000; i++) w.writeLine(JSON.stringify({ i }));
    w.flushSync();
    if (mode === 'exit') process.exit(130);
    await w.drain(); // the pooled write lands now, after flushSync wrote its batch
    for (let i = 2000; i < 2100; i++) w.writeLine(JSON.stringify({ i }));
    await w.close();
    process.stdout.write(JSON.stringify(w.stats));
  `;
  const runChild = (file: string, mode: 'exit' | 'stay'): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, file, mode], {
        env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });

  it('loses nothing when the process exits before the pooled write has run', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const { code } = await runChild(file, 'exit');
    expect(code).toBe(130);
    expect(ids(file)).toEqual(range(0, 2000));
  });

  it('duplicates nothing when the pooled write lands after flushSync', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const { code, out } = await runChild(file, 'stay');
    expect(code).toBe(0);
    expect(ids(file)).toEqual(range(0, 2100));
    expect(JSON.parse(out)).toEqual({ written: 2100, failed: 0, pending: 0, lastError: null });
  });
});

describe('NdjsonWriter and a write that fails part-way (the disk fills up mid-batch)', () => {
  // A real partial write, no root needed: the child runs under a file size limit (`ulimit -f 8`,
  // 8 KiB), so the kernel writes the part of a batch that fits, and the next write says EFBIG —
  // what a full disk does with ENOSPC. The child runs the compiled writer, as the test above does.
  const WRITER = new URL('../../dist/record/writer.js', import.meta.url).href;
  const CHILD = `
    const { NdjsonWriter } = await import(${JSON.stringify(WRITER)});
    const [file, mode] = process.argv.slice(1);
    const w = NdjsonWriter.open(file, { flushBytes: 1 << 30, checkPathMs: 0 });
    const line = (i) => JSON.stringify({ i, pad: 'x'.repeat(90) }); // 107 bytes with its newline
    w.setHeader('{"v":1,"type":"header"}');
    for (let i = 0; i < 50; i++) w.writeLine(line(i)); // about 5.4 KB: fits
    await w.drain();
    for (let i = 50; i < 80; i++) w.writeLine(line(i)); // 3.2 KB more: crosses the 8 KiB limit
    if (mode === 'sync') w.flushSync();
    else await w.drain();
    const failedAt = { ...w.stats };
    w.writeLine(line(80)); // fits again where the failed batch began
    await w.close();
    process.stdout.write(JSON.stringify({ failedAt, end: w.stats }));
  `;
  const runLimited = (file: string, mode: 'async' | 'sync'): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', 'ulimit -f 8 && exec "$0" "$@"', process.execPath, '--input-type=module', '-e', CHILD, file, mode], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });

  it.each(['async', 'sync'] as const)('cuts the failed batch off, so the next record starts its own line (%s write)', async (mode) => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const { code, out } = await runLimited(file, mode);
    expect(code).toBe(0);
    const { failedAt, end } = JSON.parse(out) as { failedAt: Record<string, unknown>; end: Record<string, unknown> };
    // the header and 50 records written; the 30 of the batch that hit the limit counted as failed
    expect(failedAt).toMatchObject({ written: 51, failed: 30, pending: 0 });
    expect(failedAt.lastError).toMatch(/EFBIG|too large/i);
    // the fragment the failed batch left is gone: every line parses, and the record after the
    // failure is on a line of its own, counted as written
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    const ids = lines.slice(1).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(ids).toEqual([...Array.from({ length: 50 }, (_, i) => i), 80]);
    expect(end).toEqual({ written: 52, failed: 30, pending: 0, lastError: null });
  });
});

describe('recording file permissions', () => {
  it('makes a recording file that was already there owner-only, and appends to it', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    fs.writeFileSync(file, '{"v":1,"type":"header","earlier":true}\n');
    fs.chmodSync(file, 0o644);
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file });
    expect((await request(`${proxy.url}/x`)).status).toBe(200);
    await proxy.close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const recs = readRecords(file);
    expect(recs[0]).toMatchObject({ type: 'header', earlier: true });
    expect(recs.some((r) => r.type === 'http' && r.path === '/x')).toBe(true);
  });

  // Only root can hand a process a file it may write but not chmod (someone else's, mode 0666):
  // the child runs as nobody, the file belongs to root.
  const asRoot = process.getuid?.() === 0;
  it.skipIf(!asRoot)('goes on recording when the chmod is refused, and says why', async () => {
    const dir = tempDir();
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, 'rec.ndjson');
    fs.writeFileSync(file, '');
    fs.chmodSync(file, 0o666);
    const writer = new URL('../../dist/record/writer.js', import.meta.url).href;
    const child = `
      const { NdjsonWriter } = await import(${JSON.stringify(writer)});
      const w = NdjsonWriter.open(process.argv[1], { checkPathMs: 0 });
      w.writeLine('{"n":1}');
      await w.close();
      process.stdout.write(JSON.stringify(w.stats));
    `;
    const { code, out, err } = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', child, file], { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('error', reject);
      c.on('exit', (code) => resolve({ code, out, err }));
    });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ written: 1, failed: 0, pending: 0, lastError: null });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"n":1}\n');
    expect(fs.statSync(file).mode & 0o777).toBe(0o666);
    expect(err).toMatch(/AFTERSHOCK_RECORDING_MODE.*stays readable by others \(mode 0666\).*EPERM/);
  });
});
