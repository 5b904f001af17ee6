/**
 * The NDJSON destination: buffered, asynchronous, one write in flight, flushed synchronously at
 * shutdown.
 *
 * Why not sonic-boom (pino's destination)? It is the model for this file, but the recording has one
 * promise a log does not: every record is either written or *counted* as lost. This writer keeps
 * the number of records in each batch, so a failed write (full disk, I/O error) moves exactly that
 * many records to `failed`, and a destination that cannot keep up drops whole records past a
 * bounded buffer instead of growing memory — never a silent gap, never an unbounded heap.
 */
import fs from 'node:fs';

export interface WriterStats {
  /** Records confirmed written to the destination. */
  written: number;
  /** Records that could not be written (I/O error or buffer overflow). */
  failed: number;
  /** Records waiting in memory. */
  pending: number;
  /** The last write error, or null while healthy. */
  lastError: string | null;
}

export interface NdjsonWriterOptions {
  /** Flush when this many bytes are buffered. */
  readonly flushBytes?: number;
  /** Flush at least this often (ms) while anything is buffered. */
  readonly flushIntervalMs?: number;
  /** Past this many buffered bytes new records are dropped and counted as failed. */
  readonly maxBufferBytes?: number;
  /** Called once per failure episode (first error after a healthy period). */
  readonly onError?: (err: Error) => void;
  /** Called when writes succeed again after an error. */
  readonly onRecover?: () => void;
  /** How often (ms) to check that the file is still where it was written; 0 disables. */
  readonly checkPathMs?: number;
}

/**
 * Appends lines to a file descriptor.
 *
 * @example
 * const w = NdjsonWriter.open('/tmp/rec.ndjson');
 * w.writeLine('{"v":1}');
 * await w.close();
 */
export class NdjsonWriter {
  readonly stats: WriterStats = { written: 0, failed: 0, pending: 0, lastError: null };
  private fd: number;
  private readonly ownsFd: boolean;
  private chunks: string[] = [];
  private bufferedBytes = 0;
  private inFlight = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly flushBytes: number;
  private readonly flushIntervalMs: number;
  private readonly maxBufferBytes: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly onRecover: (() => void) | undefined;

  private readonly path: string | null;
  private pathTimer: NodeJS.Timeout | null = null;
  /** Set while the file we write to is no longer reachable at its path (removed, or its folder). */
  private orphaned = false;

  private constructor(fd: number, ownsFd: boolean, path: string | null, opts: NdjsonWriterOptions) {
    this.fd = fd;
    this.ownsFd = ownsFd;
    this.path = path;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.flushIntervalMs = opts.flushIntervalMs ?? 50;
    this.maxBufferBytes = opts.maxBufferBytes ?? 64 * 1024 * 1024;
    this.onError = opts.onError;
    this.onRecover = opts.onRecover;
    const every = opts.checkPathMs ?? 1000;
    if (path !== null && every > 0) {
      this.pathTimer = setInterval(() => this.checkPath(), every);
      this.pathTimer.unref();
    }
  }

  /**
   * A removed file (or folder) still accepts writes through the open descriptor, and those records
   * would be lost without a word. Detect it, count what is written meanwhile as failed, and write
   * to a new file at the same path as soon as the folder exists again.
   */
  private checkPath(): void {
    if (this.path === null || this.closed) return;
    let same = false;
    try {
      const onDisk = fs.statSync(this.path);
      const open = fs.fstatSync(this.fd);
      same = onDisk.ino === open.ino && onDisk.dev === open.dev;
    } catch {
      same = false;
    }
    if (same) return;
    if (!this.orphaned) {
      this.orphaned = true;
      const err = new Error(`the recording file ${this.path} was removed or replaced; records are being lost until it can be recreated`);
      this.stats.lastError = err.message;
      this.onError?.(err);
    }
    try {
      const fd = fs.openSync(this.path, 'a', 0o600);
      if (this.ownsFd) fs.closeSync(this.fd);
      this.fd = fd;
      this.orphaned = false;
      this.stats.lastError = null;
      this.onRecover?.();
    } catch {
      /* the folder is still missing: try again at the next check */
    }
  }

  /** Opens (creates, appends) a file with owner-only permissions, or stdout for '-'. Throws on failure. */
  static open(path: string, opts: NdjsonWriterOptions = {}): NdjsonWriter {
    if (path === '-') return new NdjsonWriter(1, false, null, opts);
    const fd = fs.openSync(path, 'a', 0o600);
    return new NdjsonWriter(fd, true, path, opts);
  }

  /** Queues one line (without its newline). Never throws. */
  writeLine(line: string): void {
    if (this.closed || this.bufferedBytes > this.maxBufferBytes) {
      this.stats.failed++;
      return;
    }
    this.chunks.push(line);
    this.bufferedBytes += line.length + 1;
    this.stats.pending++;
    if (this.bufferedBytes >= this.flushBytes) this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(this.onTimer, this.flushIntervalMs);
      this.timer.unref();
    }
  }

  private readonly onTimer = (): void => {
    this.timer = null;
    this.flush();
  };

  /** Starts writing what is buffered (asynchronously) unless a write is already in flight. */
  flush(): void {
    if (this.inFlight || this.chunks.length === 0) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const count = this.chunks.length;
    const data = Buffer.from(this.chunks.join('\n') + '\n');
    this.chunks = [];
    this.bufferedBytes = 0;
    if (this.orphaned) {
      // Writing into a removed file loses the records just the same: count them as lost.
      this.stats.pending -= count;
      this.stats.failed += count;
      this.wakeDrainers();
      return;
    }
    this.inFlight = true;
    this.writeAll(data, 0, count);
  }

  private writeAll(data: Buffer, offset: number, count: number): void {
    fs.write(this.fd, data, offset, data.length - offset, null, (err, n) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.writeAll(data, offset, count), 5).unref();
          return;
        }
        this.settle(count, err);
        return;
      }
      if (offset + n < data.length) {
        this.writeAll(data, offset + n, count);
        return;
      }
      this.settle(count, null);
    });
  }

  private settle(count: number, err: Error | null): void {
    this.inFlight = false;
    this.stats.pending -= count;
    if (err === null) {
      this.stats.written += count;
      if (this.stats.lastError !== null && !this.orphaned) {
        this.stats.lastError = null;
        this.onRecover?.();
      }
    } else {
      this.stats.failed += count;
      const first = this.stats.lastError === null;
      this.stats.lastError = err.message;
      if (first) this.onError?.(err);
    }
    if (this.chunks.length > 0) this.flush();
    else this.wakeDrainers();
  }

  private wakeDrainers(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when everything queued so far has been written (or counted as failed). */
  drain(): Promise<void> {
    if (!this.inFlight && this.chunks.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.flush();
    });
  }

  /** Writes everything still buffered synchronously (for process exit paths). */
  flushSync(): void {
    if (this.inFlight || this.chunks.length === 0) return;
    const count = this.chunks.length;
    const data = Buffer.from(this.chunks.join('\n') + '\n');
    this.chunks = [];
    this.bufferedBytes = 0;
    this.stats.pending -= count;
    try {
      let off = 0;
      while (off < data.length) off += fs.writeSync(this.fd, data, off);
      this.stats.written += count;
    } catch (err) {
      this.stats.failed += count;
      this.stats.lastError = (err as Error).message;
    }
  }

  /** Drains, then closes the file. Later lines are counted as failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.drain();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.pathTimer !== null) clearInterval(this.pathTimer);
    if (this.ownsFd) {
      try {
        fs.fsyncSync(this.fd);
      } catch {
        /* a pipe or special file cannot be synced */
      }
      fs.closeSync(this.fd);
    }
  }
}
