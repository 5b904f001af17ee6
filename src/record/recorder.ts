/**
 * The recording: a header line, then exactly one record per exchange, written through the
 * buffered NDJSON writer. Listeners (live analysis, metrics) see every record as it is written,
 * whether or not a file is being recorded.
 *
 * It is also the one place every exchange record passes, so the last redaction step happens here:
 * the userinfo of an absolute-form request target (`GET http://user:pw@host/`) never reaches the
 * file or a listener, whichever part of the proxy built the record.
 */
import { randomBytes } from 'node:crypto';
import type { AnyRecord, HeaderRecord } from './schema.js';
import { NdjsonWriter, type CloseOptions, type WriterStats } from './writer.js';
import { AftershockError } from '../errors.js';

export type RecordListener = (record: AnyRecord) => void;

export interface RecorderOptions {
  /** File path, '-' for stdout, or null to record nothing (listeners still run). */
  readonly path: string | null;
  readonly header: Omit<HeaderRecord, 'v' | 'type' | 'instance'>;
  readonly onError?: (err: Error) => void;
  readonly onRecover?: () => void;
  /** Trouble that loses no record (a recording file that stays readable by others); default: `process.emitWarning`. */
  readonly onWarning?: (message: string) => void;
}

/**
 * Writes records and fans them out to listeners.
 *
 * @example
 * const rec = Recorder.open({ path: 'traffic.ndjson', header });
 * rec.write(httpRecord);
 * await rec.close();
 */
export class Recorder {
  readonly instance = randomBytes(4).toString('hex');
  readonly path: string | null;
  private readonly writer: NdjsonWriter | null;
  private readonly listeners: RecordListener[] = [];
  private header: HeaderRecord;
  /** Records seen (written to the file or not). */
  count = 0;

  private constructor(opts: RecorderOptions, writer: NdjsonWriter | null) {
    this.path = opts.path;
    this.writer = writer;
    this.header = { v: 1, type: 'header', ...opts.header, instance: this.instance };
    // The writer starts every file it opens with this line, a re-created one too.
    if (writer !== null) writer.setHeader(JSON.stringify(this.header));
  }

  /** Opens the destination; throws ERR_RECORD_PATH when it cannot be written. */
  static open(opts: RecorderOptions): Recorder {
    if (opts.path === null) return new Recorder(opts, null);
    let writer: NdjsonWriter;
    let self: Recorder | null = null;
    try {
      writer = NdjsonWriter.open(opts.path, {
        // Lines lost to the disk leave a gap the file itself must tell of: `analyze` counts it.
        // `total` (all lost so far by this recorder, `instance`) survives a notice that is itself lost.
        onLost: (records, reason, total) => self?.write({ v: 1, type: 'event', ts: Date.now(), event: 'records-lost', detail: { records, total, reason, instance: self.instance } }),
        // A file moved away (rotation, mv) keeps its lines; the new one says what it continues.
        onReopen: (linesBefore) => self?.write({ v: 1, type: 'event', ts: Date.now(), event: 'recording-continued', detail: { linesBefore, instance: self.instance, path: opts.path } }),
        ...(opts.onError === undefined ? {} : { onError: opts.onError }),
        ...(opts.onRecover === undefined ? {} : { onRecover: opts.onRecover }),
        ...(opts.onWarning === undefined ? {} : { onWarning: opts.onWarning }),
      });
    } catch (err) {
      throw new AftershockError(
        'ERR_RECORD_PATH',
        `cannot write the recording to ${opts.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check that the folder exists and is writable`,
        { cause: err },
      );
    }
    self = new Recorder(opts, writer);
    return self;
  }

  get headerRecord(): HeaderRecord {
    return this.header;
  }

  /** Stats of the file writer (all zero when not recording to a file). */
  get stats(): WriterStats {
    return this.writer?.stats ?? { written: 0, failed: 0, pending: 0, lastError: null };
  }

  get healthy(): boolean {
    return this.writer === null || this.writer.stats.lastError === null;
  }

  addListener(fn: RecordListener): void {
    this.listeners.push(fn);
  }

  /** Writes one record and tells the listeners. Never throws. */
  write(record: AnyRecord): void {
    this.count++;
    if (this.writer !== null) this.writer.writeLine(JSON.stringify(record));
    for (let i = 0; i < this.listeners.length; i++) {
      try {
        (this.listeners[i] as RecordListener)(record);
      } catch {
        /* a listener's bug must never cost a record or the proxy */
      }
    }
  }

  /** Waits until everything written so far is on disk (or counted as failed). */
  async drain(): Promise<void> {
    await this.writer?.drain();
  }

  flushSync(): void {
    this.writer?.flushSync();
  }

  /**
   * For a start that failed: drops the header (and anything else queued) when none of it has been
   * written yet, so an existing recording does not gain a header for a run that never happened.
   */
  discardUnwritten(): boolean {
    if (this.count > 0) return false; // a record of a real exchange or event is never dropped
    return this.writer?.discardUnwritten() ?? true;
  }

  /**
   * Writes what is queued and closes the file. With `timeoutMs`, what the destination has not
   * taken by then (a pipe nobody reads) is counted as lost and said through `onError`.
   */
  async close(opts: CloseOptions = {}): Promise<void> {
    await this.writer?.close(opts);
  }
}
