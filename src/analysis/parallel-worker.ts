/**
 * One thread of a partitioned analysis (see `parallel.ts`): reads the whole file, parses the lines
 * of its partition, runs an engine over them and sends back the engine's partial. The other lines
 * are only skimmed for their exchange's end (and a failure's Retry-After), so the engine's clock
 * and retry window follow the whole recording, as one engine's would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AftershockError } from '../errors.js';
import { type LineFilter, readRecordsTo } from '../record/reader.js';
import type { AnyRecord } from '../record/schema.js';
import { createAnalyzer } from './analyzer.js';
import { clockOfLine, partitionOfLine, type WorkerInput, type WorkerMessage } from './parallel.js';

/** Progress is posted at most this often (ms). */
const PROGRESS_MS = 200;

async function main(input: WorkerInput): Promise<WorkerMessage> {
  const port = parentPort;
  if (port === null) throw new Error('parallel-worker runs as a worker thread');
  const { path, part, parts } = input;
  const engine = createAnalyzer(input.options);
  let records = 0;
  let bytes = 0;
  let badLines = 0;
  let last = 0;
  const sink = {
    push: (r: AnyRecord): void => {
      engine.ingest(r);
      records++;
    },
  };
  // Another thread's line is not parsed here, but its exchange still moves the clock. (One
  // thread alone, with only its heap capped, parses every line.)
  const lineFilter: LineFilter | undefined =
    parts === 1
      ? undefined
      : (buf, start, end) => {
          if (partitionOfLine(buf, start, end, parts) === part) return true;
          const clock = clockOfLine(buf, start, end);
          if (clock !== null) engine.advanceClock(clock.end, clock.retryAfterMs);
          return false;
        };
  await readRecordsTo(path, sink, {
    maxBytes: input.maxBytes,
    ...(lineFilter === undefined ? {} : { lineFilter }),
    onBadLine: (b) => {
      badLines++;
      engine.noteBadLine({ file: path, line: b.line, reason: b.reason, excerpt: b.excerpt });
      if (input.badLines) port.postMessage({ type: 'bad', info: b } satisfies WorkerMessage);
    },
    onBytes: (n) => {
      bytes = n;
      if (!input.progress) return;
      const now = performance.now();
      if (now - last >= PROGRESS_MS) {
        last = now;
        port.postMessage({ type: 'progress', records, bytes, badLines } satisfies WorkerMessage);
      }
    },
  });
  if (input.progress) port.postMessage({ type: 'progress', records, bytes, badLines } satisfies WorkerMessage);
  return { type: 'done', partial: engine.partial() };
}

main(workerData as WorkerInput).then(
  (m) => parentPort?.postMessage(m),
  (err: unknown) => {
    const m: WorkerMessage =
      err instanceof AftershockError
        ? { type: 'failed', code: err.code, message: err.message, exitCode: err.exitCode }
        : { type: 'failed', code: null, message: err instanceof Error ? (err.stack ?? err.message) : String(err), exitCode: 1 };
    parentPort?.postMessage(m);
  },
);
