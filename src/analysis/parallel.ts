/**
 * One large recording analysed by several threads. Each worker thread reads the whole file but
 * parses only its share of the lines: the lines whose `client` value hashes to it (lines without
 * one, such as headers, marks and events, go to the first). A client's records all land in one
 * thread, so its chains group exactly as in one engine; each thread runs a full engine over its
 * clients and sends back its partial (`partial.ts`), and the partials merge into one report.
 *
 * Skipping a line costs a newline search and a short byte search, against a JSON parse and the
 * analysis for a line that is parsed; so N threads come close to N times one thread's speed
 * when there are N cores. Each worker's heap is capped (the engine's memory is bounded by its
 * caps, so the cap only stops dead objects from piling up between collections): the peak memory
 * of a multi-gigabyte file stays near that of a small one. A worker that runs out of its heap
 * anyway (a very large `maxClients`), or fails for any reason but an unreadable file, makes the
 * analysis start over in one thread, without a cap.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { AftershockError, type ErrorCode } from '../errors.js';
import { isGzip, type BadLineInfo } from '../record/reader.js';
import { resolveOptions } from './analyzer.js';
import { mergePartials, type PartialAnalysis, reportOfPartial, revivePartial } from './partial.js';
import type { AnalyzerOptions, Report } from './types.js';

/** Files smaller than this are analysed in one thread (starting workers would cost more). */
export const PARTITION_MIN_BYTES = 64 * 1024 * 1024;
/** At most this many threads by default. */
export const MAX_AUTO_PARTITIONS = 4;

const CLIENT_KEY = Buffer.from('"client":');
const QUOTE = 0x22;
const SPACE = 0x20;
const TAB = 0x09;

/**
 * The partition (0..parts-1) of one NDJSON line, from the bytes of its first `"client":"..."`
 * value (FNV-1a); 0 for a line without one. The same client written the same way always lands
 * in the same partition.
 */
export function partitionOfLine(buf: Buffer, start: number, end: number, parts: number): number {
  // Searched within the line only: a search from `start` would run on to the next line's client,
  // over and over for a long stretch of lines without one.
  const found = buf.subarray(start, end).indexOf(CLIENT_KEY);
  if (found === -1) return 0;
  let i = start + found + CLIENT_KEY.length;
  while (i < end && (buf[i] === SPACE || buf[i] === TAB)) i++;
  if (buf[i] !== QUOTE) return 0;
  let h = 0x811c9dc5;
  for (i++; i < end; i++) {
    const b = buf[i] as number;
    if (b === QUOTE) break;
    h = Math.imul(h ^ b, 0x01000193);
  }
  return (h >>> 0) % parts;
}

const END_KEY = Buffer.from('"end":');
const TS_KEY = Buffer.from('"ts":');
const STATUS_KEY = Buffer.from('"status":');
const OUTCOME_KEY = Buffer.from('"outcome":');
const RETRY_AFTER_KEY = Buffer.from('"retryAfter":');
const NULL_BYTES = Buffer.from('null');

/** The number written after the first `key` in `line`, or NaN (absent, null, not a number). */
function numberAfter(line: Buffer, key: Buffer): number {
  const at = line.indexOf(key);
  if (at === -1) return Number.NaN;
  let i = at + key.length;
  while (line[i] === SPACE || line[i] === TAB) i++;
  let j = i;
  for (; j < line.length; j++) {
    const b = line[j] as number;
    // digits, '.', '-', '+', 'e', 'E'
    if (!((b >= 0x30 && b <= 0x39) || b === 0x2e || b === 0x2d || b === 0x2b || b === 0x65 || b === 0x45)) break;
  }
  return j === i ? Number.NaN : Number(line.toString('latin1', i, j));
}

/** Is the value after the first `key` in `line` a literal null (or is the key absent)? */
function nullAfter(line: Buffer, key: Buffer): boolean {
  const at = line.indexOf(key);
  if (at === -1) return true;
  let i = at + key.length;
  while (line[i] === SPACE || line[i] === TAB) i++;
  return line.subarray(i, i + 4).equals(NULL_BYTES);
}

/** What an exchange line another thread parses does to the recording's clock. */
export interface LineClock {
  /** max(end, ts), as the engine's watermark takes it. */
  end: number;
  /** The Retry-After (ms) of a failed exchange, which widens the retry window. */
  retryAfterMs: number | null;
}

/**
 * The clock of an exchange line, read from its bytes without parsing it (null for a line
 * without a numeric `end`: not an exchange). A failure, as the engine counts one for the
 * retry window: no status, a status of 400 or more, or an outcome.
 */
export function clockOfLine(buf: Buffer, start: number, end: number): LineClock | null {
  const line = buf.subarray(start, end);
  const e = numberAfter(line, END_KEY);
  if (!Number.isFinite(e)) return null;
  const ts = numberAfter(line, TS_KEY);
  const at = Number.isFinite(ts) && ts > e ? ts : e;
  const ra = numberAfter(line, RETRY_AFTER_KEY);
  if (!(ra >= 0)) return { end: at, retryAfterMs: null };
  const status = numberAfter(line, STATUS_KEY);
  const failed = !Number.isFinite(status) || status >= 400 || !nullAfter(line, OUTCOME_KEY);
  return { end: at, retryAfterMs: failed ? ra * 1000 : null };
}

/** What `analyzeFiles` passes on; the callbacks stay in this thread. */
export interface PartitionedOptions extends AnalyzerOptions {
  /** Old-generation heap cap per worker thread, MB (default: 128, more for a large `maxClients`). */
  workerHeapMb?: number;
  onBadLine?: (file: string, info: BadLineInfo) => void;
  onProgress?: (p: { records: number; bytes: number; totalBytes: number | null; badLines: number }) => void;
  progressEvery?: number;
}

/** What a worker is told (structured-cloneable). */
export interface WorkerInput {
  path: string;
  /** The file's size when the analysis started: every worker reads exactly this far. */
  maxBytes: number;
  part: number;
  parts: number;
  options: AnalyzerOptions;
  progress: boolean;
  badLines: boolean;
}

/** What a worker says. */
export type WorkerMessage =
  | { type: 'progress'; records: number; bytes: number; badLines: number }
  | { type: 'bad'; info: BadLineInfo }
  | { type: 'done'; partial: PartialAnalysis }
  /** code null: not an AftershockError (an unexpected failure of the thread itself). */
  | { type: 'failed'; code: ErrorCode | null; message: string; exitCode: number };

/**
 * How many threads `analyzeFiles` uses for these inputs by default: one unless there is a single
 * plain file of at least PARTITION_MIN_BYTES, several cores, and clients keyed by the recorded key
 * (a client key header re-keys records, so a partition by the recorded key could split a client).
 */
export function autoPartitions(paths: readonly string[], options: AnalyzerOptions): number {
  if (!canPartition(paths, options)) return 1;
  const cores = os.availableParallelism();
  if (cores < 2) return 1;
  return fileSize(paths[0] as string) >= PARTITION_MIN_BYTES ? Math.min(cores, MAX_AUTO_PARTITIONS) : 1;
}

/**
 * Can these inputs be split among threads at all? One plain file (not stdin, not gzip: every
 * thread would decompress all of it), clients keyed by the recorded key.
 */
export function canPartition(paths: readonly string[], options: AnalyzerOptions): boolean {
  if (paths.length !== 1) return false;
  const file = paths[0] as string;
  if (file === '-' || isGzip(file)) return false;
  if (options.clientKeyHeader !== undefined && options.clientKeyHeader !== '') return false;
  return fileSize(file) >= 0;
}

/**
 * Should this input, analysed by one engine, run in a worker thread? Yes for one file (plain or
 * gzip, not stdin) of at least PARTITION_MIN_BYTES, or when a heap cap was asked for: the worker's
 * capped heap keeps the peak memory of a large file down.
 */
export function oneWorker(paths: readonly string[], workerHeapMb: number | undefined): boolean {
  if (paths.length !== 1 || paths[0] === '-') return false;
  const size = fileSize(paths[0] as string);
  return size >= 0 && (workerHeapMb !== undefined || size >= PARTITION_MIN_BYTES);
}

/** The size of a regular file; -1 for anything else (missing, a directory, a pipe). */
function fileSize(file: string): number {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

/**
 * The worker's script: next to this module in the build. (Run from the TypeScript sources, as the
 * tests do, it is the built copy: a worker thread cannot load TypeScript.) Null when missing.
 */
function workerScript(): URL | null {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../../dist/analysis/parallel-worker.js', here) : new URL('./parallel-worker.js', here);
  return fs.existsSync(url) ? url : null;
}

/** Old-generation heap cap per worker (MB): room for its share of the client and thread tables. */
function heapCapMb(maxClientsPerPart: number): number {
  return Math.max(128, Math.ceil(maxClientsPerPart / 1000) * 4);
}

/** A worker that cannot finish for a reason of its own (out of its heap, or an unexpected error). */
class ThreadFailed extends Error {}

/**
 * Analyses one file in `parts` threads (one: a single engine in a worker with a capped heap; more:
 * a plain file split by client key). Resolves to null when the threads cannot be used
 * (no worker script, a worker ran out of its heap or failed unexpectedly): the caller then
 * analyses in one thread. A recording that cannot be read rejects as in one thread.
 */
export async function analyzeInPartitions(path: string, options: PartitionedOptions, parts: number): Promise<Report | null> {
  const script = workerScript();
  if (script === null) return null;
  const { onBadLine, onProgress, progressEvery, workerHeapMb, ...analyzerOptions } = options;
  const opts = resolveOptions(analyzerOptions);
  if (workerHeapMb !== undefined && (!Number.isInteger(workerHeapMb) || workerHeapMb < 1)) {
    throw new AftershockError('ERR_BAD_OPTION', `workerHeapMb ${JSON.stringify(workerHeapMb)}: give a positive integer`);
  }
  // Each worker gets its share of the caps with a quarter of headroom: the hash does not split
  // clients exactly evenly, and a worker should not evict where one engine would not.
  const share = (cap: number): number => Math.min(cap, Math.ceil((cap / parts) * 1.25) + 16);
  const perPart: AnalyzerOptions = {
    ...analyzerOptions,
    maxClients: share(opts.maxClients),
    maxThreads: share(opts.maxThreads),
  };
  const totalBytes = fileSize(path);
  if (totalBytes < 0) return null;
  const state = Array.from({ length: parts }, () => ({ records: 0, bytes: 0, badLines: 0 }));
  const every = progressEvery ?? 10_000;
  let reported = 0;
  const progress = (force: boolean): void => {
    if (onProgress === undefined) return;
    const records = state.reduce((n, s) => n + s.records, 0);
    if (!force && Math.floor(records / every) === Math.floor(reported / every)) return;
    reported = records;
    onProgress({ records, bytes: Math.min(...state.map((s) => s.bytes)), totalBytes, badLines: state.reduce((n, s) => n + s.badLines, 0) });
  };
  const workers: Worker[] = [];
  const bad: BadLineInfo[] = [];
  let failed = false;
  const run = (part: number): Promise<PartialAnalysis> =>
    new Promise((resolve, reject) => {
      const input: WorkerInput = { path, maxBytes: totalBytes, part, parts, options: perPart, progress: onProgress !== undefined, badLines: onBadLine !== undefined };
      const w = new Worker(script, { workerData: input, resourceLimits: { maxOldGenerationSizeMb: workerHeapMb ?? heapCapMb(perPart.maxClients as number) } });
      workers.push(w);
      let settled = false;
      w.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'progress':
            if (failed) return;
            state[part] = { records: m.records, bytes: m.bytes, badLines: m.badLines };
            progress(false);
            return;
          case 'bad':
            // Handed on once every thread has finished: after a failed thread, the one-thread
            // analysis that follows reports them itself.
            bad.push(m.info);
            return;
          case 'done':
            settled = true;
            resolve(revivePartial(m.partial));
            return;
          case 'failed':
            settled = true;
            reject(m.code === null ? new ThreadFailed(m.message) : new AftershockError(m.code, m.message, { exitCode: m.exitCode }));
        }
      });
      w.on('error', (err: Error & { code?: string }) => {
        settled = true;
        reject(new ThreadFailed(err.message));
      });
      w.on('exit', (code) => {
        if (!settled) reject(new ThreadFailed(`analysis thread ${part + 1} of ${parts} exited with code ${code}`));
      });
    });
  try {
    const partials = await Promise.all(Array.from({ length: parts }, (_, i) => run(i)));
    if (onBadLine !== undefined) for (const b of bad.sort((x, y) => x.line - y.line)) onBadLine(path, b);
    progress(true);
    return reportOfPartial(mergePartials(partials), opts, parts, parts);
  } catch (err) {
    failed = true;
    if (err instanceof ThreadFailed) return null;
    throw err;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
