/**
 * One thread of a partitioned analysis (see `parallel.ts`): reads the whole file, parses the lines
 * of its partition, runs an engine over them and sends back the engine's partial. The other lines
 * are only skimmed for their exchange's end (and a failure's Retry-After), so the engine's clock
 * and retry window follow the whole recording, as one engine's would.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AftershockError } from '../errors.js';
import type { LineFilter } from '../record/reader.js';
import { createAnalyzer } from './analyzer.js';
import { analyzeOneFile, type MergeOptions } from './files.js';
import { clockOfLine, partitionOfLine, type WorkerInput, type WorkerMessage } from './parallel.js';

/** Progress is posted every this many records of the worker's own. */
const PROGRESS_EVERY = 20_000;

async function main(input: WorkerInput): Promise<WorkerMessage> {
  const port = parentPort;
  if (port === null) throw new Error('parallel-worker runs as a worker thread');
  const { path, part, parts } = input;
  const engine = createAnalyzer(input.options);
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
  const options: MergeOptions = {};
  if (input.badLines) options.onBadLine = (_file, info) => port.postMessage({ type: 'bad', info } satisfies WorkerMessage);
  if (input.progress) {
    options.onProgress = (p) => port.postMessage({ type: 'progress', records: p.records, bytes: p.bytes, badLines: p.badLines } satisfies WorkerMessage);
    options.progressEvery = PROGRESS_EVERY;
  }
  await analyzeOneFile(path, engine, options, { maxBytes: input.maxBytes, ...(lineFilter === undefined ? {} : { lineFilter }) });
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
