/**
 * Recording into a pipe whose reader is slow or never reads: `run --record - | slow-reader`, or
 * `--record FIFO` with a reader that holds the FIFO open and reads nothing. The house rules: every
 * record is written once or counted as lost and said so; the shutdown is bounded by the drain
 * timeout; a second signal exits 130 at once; the recording never ends with half a line.
 *
 * The CLI runs in a child process (`npm test` builds first); the pipe is a real FIFO whose read end
 * the test holds, reading only when it says so.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onCleanup, request, startUpstream, tempDir } from '../helpers.js';
import { cli, listening, type CliRun } from '../cli/cli-process.js';

/** A FIFO whose read end is open (so writers do not block in open) but read only by `readAll`. */
function stalledPipe(): { path: string; readAll: () => Promise<string> } {
  const p = path.join(tempDir(), 'pipe');
  execFileSync('mkfifo', [p]);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  let reader: net.Socket | null = null;
  onCleanup(() => {
    if (reader === null) fs.closeSync(fd);
    else reader.destroy();
  });
  return {
    path: p,
    // Everything until every writer has closed its end (the proxy exited).
    readAll: () =>
      new Promise((resolve, reject) => {
        const s = new net.Socket({ fd, readable: true, writable: false });
        reader = s;
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        s.on('error', reject);
      }),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `n` GETs, ten at a time, each recorded with a 2 KB query: far more than a pipe's 64 KiB. */
async function load(proxy: string, n: number): Promise<void> {
  const pad = 'p'.repeat(2000);
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, k) => request(`${proxy}/r${i + k}?pad=${pad}`));
    for (const r of await Promise.all(batch)) expect(r.status).toBe(200);
  }
}

interface RecordingStats {
  written: number;
  failed: number;
  pending: number;
  lastError: string | null;
}

async function recordingStats(control: string): Promise<RecordingStats> {
  const res = await fetch(`${control}/stats`);
  return ((await res.json()) as { recording: RecordingStats }).recording;
}

/** Polls /stats until records wait in memory: the pipe is full. */
async function untilPending(control: string): Promise<RecordingStats> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const st = await recordingStats(control);
    if (st.pending > 0) return st;
    if (Date.now() > deadline) throw new Error(`nothing pending: ${JSON.stringify(st)}`);
    await sleep(20);
  }
}

/** The exit status, or 'running' when the process has not exited within `ms`. */
function exitWithin(run: CliRun, ms: number): Promise<number | null | 'running'> {
  return Promise.race([run.exit, sleep(ms).then(() => 'running' as const)]);
}

/** The NDJSON log lines of the child's stderr (stderr is no terminal: pino writes NDJSON). */
function logLines(run: CliRun): Array<Record<string, unknown>> {
  return run
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The recording as read from the pipe: every line whole and parseable, ending with a newline. */
function parseRecording(text: string): Array<{ type: string; path?: string }> {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; path?: string });
}

const RUN = ['run', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--no-summary'];

describe('recording to stdout through a pipe whose reader is slow', () => {
  it('waits at shutdown for the reader, then writes every record once (no half line, no early exit)', { timeout: 15_000 }, async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const pipe = stalledPipe();
    const wfd = fs.openSync(pipe.path, 'w');
    const run = cli([...RUN, '--target', up.url, '--record', '-', '--drain-timeout', '8s'], { AFTERSHOCK_LOG_LEVEL: 'info' }, { stdout: wfd });
    fs.closeSync(wfd);
    const { proxy, control } = await listening(run);
    await load(proxy, 200);
    await untilPending(control as string);
    run.child.kill('SIGTERM');
    // Still writing: the reader has not read yet, and the drain timeout (8 s) is far off.
    expect(await exitWithin(run, 1000)).toBe('running');
    const text = await pipe.readAll();
    expect(await run.exit).toBe(0);
    const recs = parseRecording(text);
    expect(recs[0]?.type).toBe('header');
    const paths = recs.filter((r) => r.type === 'http').map((r) => r.path);
    expect(new Set(paths).size).toBe(200);
    expect(paths).toHaveLength(200);
    const stopped = logLines(run).find((l) => l.msg === 'stopped');
    expect(stopped).toMatchObject({ records: 200, written: recs.length, failed: 0 });
  });

  it('gives up once the drain timeout is spent, counts and says what it could not write, and leaves whole lines', { timeout: 15_000 }, async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const pipe = stalledPipe();
    const wfd = fs.openSync(pipe.path, 'w');
    const run = cli([...RUN, '--target', up.url, '--record', '-', '--drain-timeout', '1s'], { AFTERSHOCK_LOG_LEVEL: 'info' }, { stdout: wfd });
    fs.closeSync(wfd);
    const { proxy, control } = await listening(run);
    await load(proxy, 200);
    await untilPending(control as string);
    const sent = Date.now();
    run.child.kill('SIGTERM');
    // Bounded: the drain timeout, plus the recording's own second at least, plus start-up slack.
    expect(await exitWithin(run, 6000)).toBe(0);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(900);
    const recs = parseRecording(await pipe.readAll());
    const logs = logLines(run);
    const stopped = logs.find((l) => l.msg === 'stopped') as { records: number; written: number; failed: number } | undefined;
    expect(stopped).toBeDefined();
    const st = stopped as { records: number; written: number; failed: number };
    // Every line is in the pipe or counted as lost, once: the header, 200 exchanges.
    expect(st.records).toBe(200);
    expect(st.written).toBe(recs.length);
    expect(st.failed).toBeGreaterThan(0);
    expect(st.written + st.failed).toBe(1 + 200);
    // ... and said at error level, with the number.
    const said = logs.filter((l) => (l.level as number) >= 50).map((l) => String(l.err ?? ''));
    expect(said.join('\n')).toContain(`${st.failed} records were not written`);
  });
});

describe('recording to a FIFO whose reader never reads', () => {
  it('/readyz says the recording is stuck; SIGTERM stops within the drain timeout, counting what was not written', { timeout: 15_000 }, async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const pipe = stalledPipe();
    const run = cli([...RUN, '--target', up.url, '--record', pipe.path, '--drain-timeout', '1s'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const { proxy, control } = await listening(run);
    await load(proxy, 200);
    await untilPending(control as string);
    // Not ready while records pile up behind a reader that does not read (as on a full disk).
    const deadline = Date.now() + 5000;
    let ready: { status: number; reasons: string[] } = { status: 0, reasons: [] };
    while (Date.now() < deadline) {
      const res = await fetch(`${control as string}/readyz`);
      ready = { status: res.status, reasons: ((await res.json()) as { reasons: string[] }).reasons };
      if (res.status === 503) break;
      await sleep(50);
    }
    expect(ready.status).toBe(503);
    expect(ready.reasons.join(' ')).toMatch(/recording/);
    run.child.kill('SIGTERM');
    expect(await exitWithin(run, 6000)).toBe(0);
    const recs = parseRecording(await pipe.readAll());
    const stopped = logLines(run).find((l) => l.msg === 'stopped') as { records: number; written: number; failed: number } | undefined;
    expect(stopped).toMatchObject({ records: 200, written: recs.length });
    expect((stopped?.failed ?? 0) + recs.length).toBe(1 + 200);
    expect(stopped?.failed).toBeGreaterThan(0);
  });

  it('a second signal exits 130 at once and says how many records it could not write', { timeout: 15_000 }, async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const pipe = stalledPipe();
    // A long drain timeout: only the second signal can end this shutdown soon.
    const run = cli([...RUN, '--target', up.url, '--record', pipe.path, '--drain-timeout', '30s']);
    const { proxy, control } = await listening(run);
    await load(proxy, 200);
    await untilPending(control as string);
    run.child.kill('SIGTERM');
    await sleep(300);
    expect(run.child.exitCode).toBeNull();
    run.child.kill('SIGINT');
    expect(await exitWithin(run, 3000)).toBe(130);
    const recs = parseRecording(await pipe.readAll());
    const said = logLines(run)
      .filter((l) => (l.level as number) >= 50)
      .map((l) => String(l.err ?? ''))
      .join('\n');
    const m = /(\d+) records were not written/.exec(said);
    expect(m, said).not.toBeNull();
    // Every record is in the pipe or in that count: the header and 200 exchanges.
    expect(Number(m?.[1]) + recs.length).toBe(1 + 200);
  });
});
