/**
 * Offline analysis: stream one or many recordings through the same engine the proxy runs live.
 *
 * Several proxies (sidecars) write several recordings of one test; their records are merged by
 * time with a k-way merge over the files' heads, so only one read chunk per file is in memory.
 * Each file is already roughly ordered by exchange end (the proxy writes a record when its
 * exchange ends), so the merge key is `end` for exchanges and `ts` for marks and events; headers
 * go first. With one file there is no merge: each record goes into the engine as it is parsed, in
 * exactly the write order the engine would have seen live. One large plain file is split by
 * client key among threads when there are cores for them (`parallel.ts`).
 *
 * Merged records travel in batches (the reader's per-chunk arrays, merged into batches of up to
 * `MERGE_BATCH` records), so the async iteration costs one promise per batch, not per record.
 */
import fs from 'node:fs';
import type { AnyRecord } from '../record/schema.js';
import { readRecordBatches, readRecords, readRecordsTo, type BadLineInfo, type ReadRecordsOptions } from '../record/reader.js';
import { AftershockError } from '../errors.js';
import { type Analyzer, createAnalyzer } from './analyzer.js';
import { analyzeInPartitions, autoPartitions, canPartition, oneWorker } from './parallel.js';
import type { AnalyzerOptions, Report } from './types.js';

/** Progress of an offline analysis. */
export interface AnalyzeProgress {
  records: number;
  /** Bytes read so far over all files, and their total size (null for stdin). */
  bytes: number;
  totalBytes: number | null;
  badLines: number;
}

export interface MergeOptions {
  /** Called for each unreadable line, with the file it came from. */
  onBadLine?: (file: string, info: BadLineInfo) => void;
  /** Called at most every `progressEvery` records. */
  onProgress?: (p: AnalyzeProgress) => void;
  progressEvery?: number;
  /**
   * Called for an exchange record dropped because another input already gave the same one (its
   * `id`): a recording given with a copy of itself, or a copy taken mid-run.
   */
  onDuplicate?: (file: string, id: string) => void;
}

export interface AnalyzeFilesOptions extends AnalyzerOptions, MergeOptions {
  /**
   * Threads to analyse one large file with, split by client key (see `parallel.ts`). Default: one
   * per core (at most 4) for a single plain file of 64 MiB or more, else 1. 1 forces one thread.
   */
  threads?: number;
  /**
   * Old-generation heap cap of each analysis thread, MB (default 128, more for a large
   * `maxClients`). One large file analysed by one engine runs in a worker with this cap too; given
   * explicitly, even a small file does.
   */
  workerHeapMb?: number;
}

function mergeKey(r: AnyRecord): number {
  switch (r.type) {
    case 'header':
      return Number.NEGATIVE_INFINITY;
    case 'http':
    case 'ws':
      return r.end;
    default:
      return typeof (r as { ts?: unknown }).ts === 'number' ? (r as { ts: number }).ts : Number.NEGATIVE_INFINITY;
  }
}

/** Records per merged batch when several files are merged. */
const MERGE_BATCH = 4096;

/**
 * Exchange ids recently merged, to drop the same record given by a second input. The copies of
 * one record have the same `end`, so the merge brings them out close together: a window of the
 * last RECENT_IDS exchanges finds them in fixed memory (a repeat further apart than that, in
 * files far out of order, would be counted twice).
 */
const RECENT_IDS = 1 << 16;

class RecentIds {
  private readonly seen = new Set<string>();
  private readonly ring: string[] = new Array<string>(RECENT_IDS);
  private at = 0;
  /** Adds the id; false when it is among the recent ones already. */
  add(id: string): boolean {
    if (this.seen.has(id)) return false;
    const old = this.ring[this.at];
    if (old !== undefined) this.seen.delete(old);
    this.ring[this.at] = id;
    this.at = (this.at + 1) % RECENT_IDS;
    this.seen.add(id);
    return true;
  }
}

/** One file's place in the merge: its current batch and the index of its head record. */
interface Head {
  key: number;
  file: number;
  batch: AnyRecord[];
  at: number;
  it: AsyncIterator<AnyRecord[]>;
}

/** A binary min-heap on (key, file index): ties keep file order, so merging is deterministic. */
class HeadHeap {
  private readonly a: Head[] = [];
  get size(): number {
    return this.a.length;
  }
  private less(x: Head, y: Head): boolean {
    return x.key < y.key || (x.key === y.key && x.file < y.file);
  }
  push(h: Head): void {
    const a = this.a;
    a.push(h);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i] as Head, a[p] as Head)) break;
      [a[i], a[p]] = [a[p] as Head, a[i] as Head];
      i = p;
    }
  }
  pop(): Head | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l] as Head, a[m] as Head)) m = l;
        if (r < a.length && this.less(a[r] as Head, a[m] as Head)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Head, a[i] as Head];
        i = m;
      }
    }
    return top;
  }
}

/** A batch of merged records; `files[i]` is the index (into the paths) of `records[i]`'s file. */
interface MergedBatch {
  records: AnyRecord[];
  /** null when every record comes from `paths[0]` (a single file). */
  files: number[] | null;
}

/** The merge itself, in batches (see the module comment). */
async function* mergeBatches(paths: readonly string[], options: MergeOptions): AsyncGenerator<MergedBatch> {
  const bytesRead = new Array<number>(paths.length).fill(0);
  let totalBytes: number | null = 0;
  for (const p of paths) {
    if (p === '-') totalBytes = null;
    else if (totalBytes !== null) totalBytes += await fs.promises.stat(p).then((s) => s.size, () => 0);
  }
  let records = 0;
  let badLines = 0;
  const every = options.progressEvery ?? 10_000;
  const progress = (): void => {
    options.onProgress?.({ records, bytes: bytesRead.reduce((a, b) => a + b, 0), totalBytes, badLines });
  };
  /** Counts a batch of n records, reporting progress each time a multiple of `every` is passed. */
  const count = (n: number): void => {
    const before = Math.floor(records / every);
    records += n;
    if (Math.floor(records / every) !== before) progress();
  };
  const its: Array<AsyncGenerator<AnyRecord[]>> = [];
  try {
    for (let i = 0; i < paths.length; i++) {
      const file = paths[i] as string;
      its.push(
        readRecordBatches(file, {
          onBadLine: (b) => {
            badLines++;
            options.onBadLine?.(file, b);
          },
          onBytes: (n) => {
            bytesRead[i] = n;
          },
        }),
      );
    }
    if (its.length === 1) {
      for await (const batch of its[0] as AsyncGenerator<AnyRecord[]>) {
        yield { records: batch, files: null };
        count(batch.length);
      }
    } else {
      const heap = new HeadHeap();
      for (let i = 0; i < its.length; i++) {
        const it = its[i] as AsyncGenerator<AnyRecord[]>;
        const first = await it.next();
        if (first.done !== true) heap.push({ key: mergeKey(first.value[0] as AnyRecord), file: i, batch: first.value, at: 0, it });
      }
      let out: AnyRecord[] = [];
      let files: number[] = [];
      const recent = new RecentIds();
      while (heap.size > 0) {
        const h = heap.pop() as Head;
        const r = h.batch[h.at] as AnyRecord;
        const id = r.type === 'http' || r.type === 'ws' ? r.id : r.type === 'mark' ? `mark\0${r.ts}\0${r.label}` : r.type === 'event' ? `event\0${r.ts}\0${r.event}` : null;
        if (id !== null && !recent.add(id)) {
          if (r.type === 'http' || r.type === 'ws') options.onDuplicate?.(paths[h.file] as string, r.id);
        } else {
          out.push(r);
          files.push(h.file);
        }
        if (++h.at === h.batch.length) {
          const next = await h.it.next();
          if (next.done === true) continue;
          h.batch = next.value;
          h.at = 0;
        }
        h.key = mergeKey(h.batch[h.at] as AnyRecord);
        heap.push(h);
        if (out.length >= MERGE_BATCH) {
          yield { records: out, files };
          count(out.length);
          out = [];
          files = [];
        }
      }
      if (out.length > 0) {
        yield { records: out, files };
        count(out.length);
      }
    }
    progress();
  } finally {
    for (const it of its) await it.return(undefined);
  }
}

/**
 * Streams the records of several recordings merged by time (k-way merge, one read chunk per file
 * in memory). Bad lines are reported and skipped.
 *
 * @example
 * for await (const { record, file } of mergeRecordings(['a.ndjson', 'b.ndjson'])) console.log(file, record.type);
 */
export async function* mergeRecordings(paths: readonly string[], options: MergeOptions = {}): AsyncGenerator<{ record: AnyRecord; file: string }> {
  for await (const { records, files } of mergeBatches(paths, options)) {
    for (let i = 0; i < records.length; i++) yield { record: records[i] as AnyRecord, file: paths[files === null ? 0 : (files[i] as number)] as string };
  }
}

/**
 * Analyses one or many recordings offline (streamed; memory does not grow with file size).
 * Unreadable lines are skipped and listed in `report.dataQuality.badLines`.
 *
 * @example
 * const report = await analyzeFiles(['proxy-a.ndjson', 'proxy-b.ndjson'], { clientKeyHeader: 'x-client-id' });
 * if (report.verdict === 'retry-storm') process.exitCode = 1;
 */
export async function analyzeFiles(files: readonly string[] | string, options: AnalyzeFilesOptions = {}): Promise<Report> {
  // One path as a string is one recording (it was read as a list of one-character paths).
  const paths = typeof files === 'string' ? [files] : files;
  if (paths.length === 0) throw new AftershockError('ERR_BAD_OPTION', 'analyzeFiles: give at least one recording (an NDJSON file written with --record)');
  const { threads, workerHeapMb, ...given } = options;
  // Clients keyed as the proxy keyed them: a recording made with `--client-key header:NAME` says so
  // in its header, and its live analysis keyed by that header.
  const recorded = given.clientKeyHeader === undefined ? await recordedClientKeyHeader(paths) : null;
  const rest = recorded === null ? given : { ...given, clientKeyHeader: recorded };
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new AftershockError('ERR_BAD_OPTION', `threads ${JSON.stringify(threads)}: give a positive integer, or leave it out for one thread per core`);
  }
  const parts = threads === undefined ? autoPartitions(paths, rest) : canPartition(paths, rest) ? threads : 1;
  if (parts > 1 || oneWorker(paths, workerHeapMb)) {
    const report = await analyzeInPartitions(paths[0] as string, workerHeapMb === undefined ? rest : { ...rest, workerHeapMb }, parts);
    if (report !== null) return report;
  }
  return analyzeInOneThread(paths, rest);
}

/**
 * The header every input's recording header names (`clientKey: "header:NAME"`), or null: inputs
 * keyed otherwise, or by different headers, or without a header line, and stdin (read once, it
 * cannot be looked at first: the flag is needed there).
 */
async function recordedClientKeyHeader(paths: readonly string[]): Promise<string | null> {
  let named: string | null = null;
  for (const file of paths) {
    if (file === '-') return null;
    const spec = await firstHeaderClientKey(file);
    const name = spec !== null && spec.startsWith('header:') && spec.length > 7 ? spec.slice(7).toLowerCase() : null;
    if (name === null || (named !== null && name !== named)) return null;
    named = name;
  }
  return named;
}

/** The `clientKey` of a recording's first line when it is a header, else null. */
async function firstHeaderClientKey(file: string): Promise<string | null> {
  try {
    for await (const r of readRecords(file)) {
      const spec = r.type === 'header' ? (r as { clientKey?: unknown }).clientKey : null;
      return typeof spec === 'string' ? spec : null;
    }
  } catch {
    // Unreadable: the analysis itself says why.
  }
  return null;
}

async function analyzeInOneThread(paths: readonly string[], options: AnalyzerOptions & MergeOptions): Promise<Report> {
  const analyzer = createAnalyzer(options);
  if (paths.length === 1) {
    await analyzeOneFile(paths[0] as string, analyzer, options);
    return analyzer.report();
  }
  const merge: MergeOptions = {
    onBadLine: noteBadLines(analyzer, options.onBadLine),
    onDuplicate: (file, id) => {
      analyzer.noteDuplicate();
      options.onDuplicate?.(file, id);
    },
  };
  if (options.onProgress !== undefined) merge.onProgress = options.onProgress;
  if (options.progressEvery !== undefined) merge.progressEvery = options.progressEvery;
  for await (const { records } of mergeBatches(paths, merge)) for (const r of records) analyzer.ingest(r);
  return analyzer.report();
}

/** A bad line goes into the engine's data quality, then to the caller's callback. */
function noteBadLines(analyzer: Analyzer, onBadLine: MergeOptions['onBadLine']): (file: string, b: BadLineInfo) => void {
  return (file, b) => {
    analyzer.noteBadLine({ file, line: b.line, reason: b.reason, excerpt: b.excerpt });
    onBadLine?.(file, b);
  };
}

/**
 * One file straight into the engine, each record as it is parsed (no batches: a record the
 * engine does not keep dies young). Progress as `mergeBatches` reports it. `read` narrows what is
 * read (a thread's share of the lines, a fixed length); a worker thread of `parallel.ts` runs this.
 */
export async function analyzeOneFile(
  file: string,
  analyzer: Analyzer,
  options: MergeOptions,
  read: Pick<ReadRecordsOptions, 'lineFilter' | 'maxBytes'> = {},
): Promise<void> {
  const noteBad = noteBadLines(analyzer, options.onBadLine);
  const totalBytes = file === '-' ? null : await fs.promises.stat(file).then((s) => s.size, () => 0);
  const every = options.progressEvery ?? 10_000;
  const onProgress = options.onProgress;
  let records = 0;
  let bytes = 0;
  let badLines = 0;
  const sink =
    onProgress === undefined
      ? { push: (r: AnyRecord): void => analyzer.ingest(r) }
      : {
          push: (r: AnyRecord): void => {
            analyzer.ingest(r);
            if (++records % every === 0) onProgress({ records, bytes, totalBytes, badLines });
          },
        };
  await readRecordsTo(file, sink, {
    ...read,
    onBadLine: (b) => {
      badLines++;
      noteBad(file, b);
    },
    onBytes: (n) => {
      bytes = n;
    },
  });
  onProgress?.({ records, bytes, totalBytes, badLines });
}
