/**
 * Offline analysis: stream one or many recordings through the same engine the proxy runs live.
 *
 * Several proxies (sidecars) write several recordings of one test; their records are merged by
 * time with a k-way merge over the files' heads, so only one record per file is in memory. Each
 * file is already roughly ordered by exchange end (the proxy writes a record when its exchange
 * ends), so the merge key is `end` for exchanges and `ts` for marks and events; headers go first.
 * With one file the merge is the identity: the engine sees exactly the write order it would have
 * seen live.
 */
import fs from 'node:fs';
import type { AnyRecord } from '../record/schema.js';
import { readRecords, type BadLineInfo } from '../record/reader.js';
import { createAnalyzer } from './analyzer.js';
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
}

export interface AnalyzeFilesOptions extends AnalyzerOptions, MergeOptions {}

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

interface Head {
  key: number;
  file: number;
  record: AnyRecord;
  it: AsyncIterator<AnyRecord>;
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

/**
 * Streams the records of several recordings merged by time (k-way merge, one record per file in
 * memory). Bad lines are reported and skipped.
 *
 * @example
 * for await (const { record, file } of mergeRecordings(['a.ndjson', 'b.ndjson'])) console.log(file, record.type);
 */
export async function* mergeRecordings(paths: readonly string[], options: MergeOptions = {}): AsyncGenerator<{ record: AnyRecord; file: string }> {
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
  const heap = new HeadHeap();
  const its: Array<AsyncGenerator<AnyRecord>> = [];
  try {
    for (let i = 0; i < paths.length; i++) {
      const file = paths[i] as string;
      const it = readRecords(file, {
        onBadLine: (b) => {
          badLines++;
          options.onBadLine?.(file, b);
        },
        onBytes: (n) => {
          bytesRead[i] = n;
        },
      });
      its.push(it);
      const first = await it.next();
      if (first.done !== true) heap.push({ key: mergeKey(first.value), file: i, record: first.value, it });
    }
    while (heap.size > 0) {
      const h = heap.pop() as Head;
      yield { record: h.record, file: paths[h.file] as string };
      if (++records % every === 0) progress();
      const next = await h.it.next();
      if (next.done !== true) heap.push({ key: mergeKey(next.value), file: h.file, record: next.value, it: h.it });
    }
    progress();
  } finally {
    for (const it of its) await it.return(undefined);
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
export async function analyzeFiles(paths: readonly string[], options: AnalyzeFilesOptions = {}): Promise<Report> {
  const analyzer = createAnalyzer(options);
  const merge: MergeOptions = {
    onBadLine: (file, b) => {
      analyzer.noteBadLine({ file, line: b.line, reason: b.reason, excerpt: b.excerpt });
      options.onBadLine?.(file, b);
    },
  };
  if (options.onProgress !== undefined) merge.onProgress = options.onProgress;
  if (options.progressEvery !== undefined) merge.progressEvery = options.progressEvery;
  for await (const { record } of mergeRecordings(paths, merge)) analyzer.ingest(record);
  return analyzer.report();
}
