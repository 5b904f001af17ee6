/**
 * The NDJSON destination: buffered, asynchronous, one write in flight, flushed synchronously at
 * shutdown.
 *
 * Why not sonic-boom (pino's destination)? It is the model for this file, but the recording has one
 * promise a log does not: every record is either written or *counted* as lost, exactly once. This
 * writer keeps the number of records in each batch, so a failed write (full disk, I/O error) moves
 * exactly that many records to `failed`, and a destination that cannot keep up drops whole records
 * past a bounded buffer instead of growing memory — never a silent gap, never an unbounded heap.
 *
 * Four subtleties, all about a regular file:
 *
 * - Positional writes, not O_APPEND. Each batch is written at the offset where it belongs (the
 *   file's size, read with one fstat before the batch). That makes a batch idempotent: when
 *   `flushSync` runs (a second signal, the process exits at once) while an asynchronous write is
 *   on the thread pool, it writes that batch again at the same offset, then the rest after it.
 *   Whether or not the pooled write lands before the exit, every byte lands once, in order. With
 *   O_APPEND the choice would be a duplicate batch or a lost one. Reading the size before each
 *   batch keeps append semantics when the file is truncated (copytruncate log rotation), and a
 *   file found shorter than what was written starts again with its header.
 * - A removed file (or its folder) still accepts writes through the open descriptor, and those
 *   records are lost without an error. After every batch an fstat of the descriptor says whether
 *   the file still has a name (`nlink > 0`); a batch written into a nameless file is counted as
 *   failed, not written. A timer also compares the path's inode with the descriptor's (a file
 *   moved away or replaced), and a new file is opened at the path as soon as its folder exists.
 * - A re-created file starts with the same header line as the first one, so every file this writer
 *   leaves behind reads as a recording on its own.
 * - A batch that fails part-way (the disk fills up after its first bytes) is cut off where it began
 *   (`cutBack`), so no line is ever left without its end for the next record to be glued to.
 *
 * Stdout (even redirected to a file), pipes and devices are written without offsets and without
 * these checks. One writer per file: two processes recording into the same file would overwrite
 * each other's batches (each proxy gets its own file; `analyze` merges them).
 *
 * A pipe (stdout into `| reader`, a FIFO, a socket) has a reader that may be slow or never read,
 * and a write to a full pipe either blocks or says EAGAIN. A blocked pooled write held its pool
 * thread and the shutdown for ever (and `flushSync`'s blocking write the main thread, so not even a
 * second signal stopped the process); an EAGAIN retried on an unref'd timer let the process exit in
 * the middle of a batch, with half a line in the pipe, nothing counted and exit status 0. So a
 * pipe is written through a non-blocking descriptor, on the main thread, in pieces of whole lines
 * of at most PIPE_BUF bytes (which a pipe takes whole or not at all, so a line is never cut where
 * the writer stops). On EAGAIN the writer waits and tries again, keeping the process alive as a
 * pooled write does (a write is under way); it reports a reader that has taken nothing for
 * `stallMs` (readiness fails, as on a full disk); and `close({ timeoutMs })` and `flushSync` give up
 * on what the reader did not take: counted as lost and said through `onError`, never a silent
 * exit. The cost: a pipe's writes run on the main thread (about 2 µs per 1 KB record).
 */
import fs from 'node:fs';

/** The size up to which a write to a pipe is atomic on Linux (POSIX guarantees 512). */
const PIPE_BUF = 4096;
/** At a second signal (`flushSync`) a full pipe gets this long to take more, then the rest is lost. */
const EXIT_GRACE_MS = 100;

export interface WriterStats {
  /** Records confirmed written to the destination. */
  written: number;
  /** Records that could not be written (I/O error, a removed file, or buffer overflow). */
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
  /**
   * Called once per failure episode (first error after a healthy period), and once more, with the
   * count, when `close` or `flushSync` gives up records a pipe's reader did not take.
   */
  readonly onError?: (err: Error) => void;
  /** Called when writes succeed again after an error. */
  readonly onRecover?: () => void;
  /**
   * Called, once writes succeed again, with the number of lines lost since the last call, why (the
   * first reason seen) and the lines lost in all so far: the caller writes a line saying so, so the
   * file itself tells of its gap. (That line can be lost too; the next one's total covers it.)
   */
  readonly onLost?: (lines: number, reason: string | null, total: number) => void;
  /**
   * Called for trouble that loses no record (a recording file that could not be made owner-only);
   * default: `process.emitWarning`.
   */
  readonly onWarning?: (message: string) => void;
  /** How often (ms) to check that the file is still where it was written; 0 disables. */
  readonly checkPathMs?: number;
  /**
   * Called when the file was moved away or replaced (its lines stay in it: nothing is lost) and the
   * recording goes on in a new file at the path, with the lines written before: the caller writes a
   * line saying so, so the new file tells that it continues another.
   */
  readonly onReopen?: (linesBefore: number) => void;
  /**
   * How long (ms) a pipe's reader may take nothing before the writer reports it through `onError`
   * (and `stats.lastError`, so readiness fails); writing again reports the recovery.
   */
  readonly stallMs?: number;
}

/** Options of {@link NdjsonWriter.close}. */
export interface CloseOptions {
  /**
   * How long (ms) to wait for the destination to take what is queued; then the rest is counted as
   * lost and said through `onError`. Default: no limit.
   */
  readonly timeoutMs?: number;
}

/** One batch handed to the thread pool. */
interface Batch {
  readonly data: Buffer;
  /** Records in the batch. */
  readonly count: number;
  /** File offset of the batch, or null for a stream (stdout, pipe, device). */
  readonly pos: number | null;
  /** Set when `flushSync` wrote the batch itself: its pooled write no longer counts. */
  superseded: boolean;
}

/** The lines being written to a pipe on the main thread (see the module comment). */
interface PipeBatch {
  readonly data: Buffer;
  /** Byte offset just past each line's newline. */
  readonly ends: number[];
  /** Bytes written so far. */
  off: number;
  /** Lines written whole so far. */
  done: number;
}

/** A write to a regular file that has not returned for this long (ms) is reported: a busy thread pool takes a while, a frozen disk for ever. */
const FILE_STALL_MS = 5000;

/**
 * Appends lines to a file descriptor.
 *
 * @example
 * const w = NdjsonWriter.open('/tmp/rec.ndjson');
 * w.setHeader('{"v":1,"type":"header"}');
 * w.writeLine('{"v":1}');
 * await w.close();
 */
export class NdjsonWriter {
  readonly stats: WriterStats = { written: 0, failed: 0, pending: 0, lastError: null };
  private fd: number;
  private readonly ownsFd: boolean;
  /** A regular file: positional writes, orphan checks. */
  private regular: boolean;
  /** A pipe, FIFO or socket through a non-blocking descriptor: written on the main thread. */
  private pipe: boolean;
  private pipeBatch: PipeBatch | null = null;
  private pumping = false;
  /** Set while a pipe's reader takes nothing: cancels the wait before trying again. */
  private retry: (() => void) | null = null;
  /** Tries since the reader last took something (the wait grows with them). */
  private retries = 0;
  /** When a pipe's reader last took nothing after taking something (0 while it takes). */
  private stalledSince = 0;
  private readonly stallMs: number;
  private chunks: string[] = [];
  private bufferedBytes = 0;
  /** The batch whose write is in flight (null when idle). */
  private inFlight: Batch | null = null;
  /** When the write in flight began (Date.now). */
  private inFlightSince = 0;
  /** Where the last batch written to a regular file ended: a file shorter than this was truncated. */
  private endWritten = 0;
  /** Pooled writes not yet called back, superseded ones included: the fd is closed only at 0. */
  private outstanding = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly flushBytes: number;
  private readonly flushIntervalMs: number;
  private readonly maxBufferBytes: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly onRecover: (() => void) | undefined;
  private readonly onReopen: ((linesBefore: number) => void) | undefined;
  private readonly onLost: ((lines: number, reason: string | null, total: number) => void) | undefined;
  /** `stats.failed` as last told to `onLost`, and the first reason of the losses since. */
  private lostNoted = 0;
  private lostReason: string | null = null;
  private readonly onWarning: (message: string) => void;

  private readonly path: string | null;
  private pathTimer: NodeJS.Timeout | null = null;
  /** Set while the file we write to is no longer reachable at its path (removed, or its folder). */
  private orphaned = false;
  /** A path check that found a write in flight runs when the write settles. */
  private checkPending = false;
  /** The first line of every file this writer opens (the recording's header), once set. */
  private headerLine: string | null = null;
  /** Where a failed batch began when cutting its fragment off failed too (see `cutBack`). */
  private tornAt: number | null = null;

  private constructor(dest: Destination, ownsFd: boolean, path: string | null, opts: NdjsonWriterOptions) {
    this.fd = dest.fd;
    this.ownsFd = ownsFd;
    this.path = path;
    // Stdout stays a stream even when redirected to a file: others may write to the same descriptor.
    this.regular = ownsFd && isRegularFile(dest.fd);
    this.pipe = dest.nonBlockingPipe;
    this.stallMs = opts.stallMs ?? 1000;
    this.flushBytes = opts.flushBytes ?? 64 * 1024;
    this.flushIntervalMs = opts.flushIntervalMs ?? 50;
    this.maxBufferBytes = opts.maxBufferBytes ?? 64 * 1024 * 1024;
    this.onError = opts.onError;
    this.onRecover = opts.onRecover;
    this.onReopen = opts.onReopen;
    this.onLost = opts.onLost;
    this.onWarning = opts.onWarning ?? emitWarning;
    const every = opts.checkPathMs ?? 1000;
    if (path !== null && every > 0) {
      this.pathTimer = setInterval(() => this.checkPath(), every);
      this.pathTimer.unref();
    }
  }

  /**
   * Opens (creates, appends) a file with owner-only permissions (an existing file is made
   * owner-only), or stdout for '-'. Throws on failure.
   */
  static open(path: string, opts: NdjsonWriterOptions = {}): NdjsonWriter {
    if (path === '-') return new NdjsonWriter(stdoutDestination(), false, null, opts);
    return new NdjsonWriter(openForRecording(path, opts.onWarning ?? emitWarning), true, path, opts);
  }

  /**
   * Queues the header line: written now, and again first into any file the writer opens later
   * (the recording's file was removed and is re-created).
   */
  setHeader(line: string): void {
    this.headerLine = line;
    this.writeLine(line);
  }

  /** Queues one line (without its newline). Never throws. */
  writeLine(line: string): void {
    if (this.closed || this.bufferedBytes > this.maxBufferBytes) {
      this.lost(1, this.closed ? 'written after the recording was closed' : 'the destination could not keep up (the buffer was full)');
      // Said once, loud (readiness fails), as a failed write is: records are being lost.
      if (!this.closed && this.stats.lastError === null) this.fail(new Error(`the recording cannot keep up: ${Math.round(this.maxBufferBytes / 1048576)} MiB wait to be written and records are being lost (a stalled or slow disk?)`));
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
    if (this.pipe) {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      // While the reader takes nothing, its retry timer writes next; a line queued from inside
      // `pump` (a records-lost notice) is written by the loop already running.
      if (this.retry === null && !this.pumping) this.pump();
      return;
    }
    if (this.inFlight !== null) {
      // A write to a file that does not come back (a frozen or hung disk) is reported, as a pipe
      // nobody reads is: the records wait in memory meanwhile.
      if (this.regular && this.stats.lastError === null && Date.now() - this.inFlightSince >= Math.max(this.stallMs, FILE_STALL_MS)) {
        this.fail(new Error(`a write to the recording ${this.path} has not returned for ${Math.round((Date.now() - this.inFlightSince) / 100) / 10} s (a stalled disk?): records wait in memory, and past ${Math.round(this.maxBufferBytes / 1048576)} MiB they are lost`));
      }
      return;
    }
    if (this.chunks.length === 0) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let pos: number | null = null;
    if (this.regular && !this.orphaned) {
      const st = fstatOrNull(this.fd);
      if (st !== null && st.nlink === 0) {
        // Removed since the last batch: try a new file first, so the queue is not lost with it.
        this.orphan();
      } else {
        pos = st?.size ?? 0;
        if (this.tornAt !== null && this.tornAt < pos && this.cutBack(this.tornAt)) pos = this.tornAt;
        // Shorter than what was written: truncated in place (copytruncate rotation). The file
        // starts again like a new one: header first, then a line saying what it continues.
        if (pos < this.endWritten && this.headerLine !== null) {
          this.chunks.unshift(this.headerLine);
          this.stats.pending++;
          this.onWarning(`the recording file ${this.path} was truncated (copied and emptied by a log rotation?); its records so far are wherever they were copied, and the recording continues in it from the start`);
          this.endWritten = 0;
          this.onReopen?.(this.stats.written);
        }
      }
    }
    if (this.orphaned) {
      // Writing into a removed file loses the records just the same: count them as lost.
      const count = this.chunks.length;
      this.chunks = [];
      this.bufferedBytes = 0;
      this.stats.pending -= count;
      this.lost(count, this.stats.lastError);
      this.wakeDrainers();
      return;
    }
    if (this.regular && pos === null) pos = fstatOrNull(this.fd)?.size ?? 0;
    const { data, count } = this.takeChunks();
    const batch: Batch = { data, count, pos, superseded: false };
    this.inFlight = batch;
    this.inFlightSince = Date.now();
    this.writeAll(batch, 0);
  }

  private takeChunks(): { data: Buffer; count: number } {
    const count = this.chunks.length;
    const data = count === 0 ? Buffer.alloc(0) : Buffer.from(this.chunks.join('\n') + '\n');
    this.chunks = [];
    this.bufferedBytes = 0;
    return { data, count };
  }

  private writeAll(batch: Batch, offset: number): void {
    if (batch.superseded) return;
    this.outstanding++;
    const { data } = batch;
    fs.write(this.fd, data, offset, data.length - offset, batch.pos === null ? null : batch.pos + offset, (err, n) => {
      this.outstanding--;
      if (batch.superseded) {
        // flushSync wrote (and counted) this batch; only the descriptor's bookkeeping is left.
        this.afterWrite();
        return;
      }
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          // A descriptor someone else made non-blocking (a terminal). The write is still under
          // way: the timer keeps the process alive as the pooled write did.
          setTimeout(() => this.writeAll(batch, offset), 5);
          return;
        }
        // Part of the batch is in the file (the disk filled up after its first bytes): cut it off.
        if (offset > 0 && batch.pos !== null) this.cutBack(batch.pos);
        this.settle(batch, err);
        return;
      }
      if (offset + n < data.length) {
        this.writeAll(batch, offset + n);
        return;
      }
      this.settle(batch, null);
    });
  }

  private settle(batch: Batch, err: Error | null): void {
    this.inFlight = null;
    this.stats.pending -= batch.count;
    if (err === null && this.regular && fstatOrNull(this.fd)?.nlink === 0) {
      // The file lost its name while (or before) the batch was written: the records are gone.
      this.lost(batch.count, `the recording file ${this.path} was removed`);
      this.orphan();
    } else if (err === null) {
      this.stats.written += batch.count;
      if (batch.pos !== null) this.endWritten = batch.pos + batch.data.length;
      if (this.stats.lastError !== null && !this.orphaned) {
        this.stats.lastError = null;
        this.onRecover?.();
      }
      this.noteLoss();
    } else {
      this.lost(batch.count, err.message);
      this.fail(err);
    }
    this.afterWrite();
  }

  /** The recording is failing: said once (stats.lastError, so readiness fails) until a write succeeds. */
  private fail(err: Error): void {
    const first = this.stats.lastError === null;
    this.stats.lastError = err.message;
    if (first) this.onError?.(err);
  }

  /**
   * Writes to a pipe what its reader takes now, in pieces of whole lines of at most PIPE_BUF
   * bytes (one longer line is a piece of its own), until the queue is empty or the pipe is full.
   * True when the queue is empty.
   */
  private pump(): boolean {
    this.pumping = true;
    try {
      return this.pumpLines();
    } finally {
      this.pumping = false;
    }
  }

  private pumpLines(): boolean {
    for (;;) {
      let b = this.pipeBatch;
      if (b === null) {
        if (this.chunks.length === 0) break;
        b = this.pipeBatch = this.takePipeBatch();
      }
      while (b.done < b.ends.length) {
        let last = b.done;
        while (last + 1 < b.ends.length && (b.ends[last + 1] as number) - b.off <= PIPE_BUF) last++;
        let n: number;
        try {
          n = fs.writeSync(this.fd, b.data, b.off, (b.ends[last] as number) - b.off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
            this.waitForReader();
            return false;
          }
          // The reader is gone (EPIPE) or the descriptor broke: the batch's other lines are lost.
          const count = b.ends.length - b.done;
          this.pipeBatch = null;
          this.stats.pending -= count;
          this.lost(count, (err as Error).message);
          this.fail(err as Error);
          break;
        }
        b.off += n;
        const before = b.done;
        while (b.done < b.ends.length && (b.ends[b.done] as number) <= b.off) b.done++;
        this.tookLines(b.done - before);
      }
      if (this.pipeBatch === b) this.pipeBatch = null;
    }
    this.wakeDrainers();
    return true;
  }

  private takePipeBatch(): PipeBatch {
    const ends: number[] = new Array<number>(this.chunks.length);
    let at = 0;
    for (let i = 0; i < this.chunks.length; i++) {
      at += Buffer.byteLength(this.chunks[i] as string) + 1;
      ends[i] = at;
    }
    return { data: this.takeChunks().data, ends, off: 0, done: 0 };
  }

  /** The pipe's reader took `lines` whole lines (maybe 0, the start of a long one): it reads. */
  private tookLines(lines: number): void {
    this.stalledSince = 0;
    this.retries = 0;
    if (lines === 0) return;
    this.stats.pending -= lines;
    this.stats.written += lines;
    if (this.stats.lastError !== null) {
      this.stats.lastError = null;
      this.onRecover?.();
    }
    this.noteLoss();
  }

  /**
   * The pipe is full: try again at the next turn of the event loop (a reader that reads has made
   * room by then), then after 1, 2, 4 ... 50 ms. There is no readiness event for a descriptor
   * outside libuv's own streams, so this polls, cheaply once the wait is long. The waits keep the
   * process alive: a write is under way. A reader that has taken nothing for `stallMs` is reported
   * once.
   */
  private waitForReader(): void {
    const now = Date.now();
    if (this.stalledSince === 0) this.stalledSince = now;
    else if (now - this.stalledSince >= this.stallMs && this.stats.lastError === null) {
      const err = new Error(
        `the recording's reader has taken nothing for ${Math.round((now - this.stalledSince) / 100) / 10} s (a pipe that is not read): records wait in memory, and past ${Math.round(this.maxBufferBytes / 1048576)} MiB they are lost`,
      );
      this.fail(err);
    }
    const again = (): void => {
      this.retry = null;
      this.pump();
    };
    if (this.retries++ === 0) {
      const immediate = setImmediate(again);
      this.retry = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(again, Math.min(2 ** (this.retries - 2), 50));
      this.retry = () => clearTimeout(timer);
    }
  }

  private cancelRetry(): void {
    if (this.retry === null) return;
    this.retry();
    this.retry = null;
  }

  /**
   * Gives up on everything not yet written (a pipe's reader that did not take it in time, a pooled
   * write that never returned): counted as lost, and said through `onError` with the count, since
   * the recording itself cannot tell of this gap. Returns the count.
   */
  private giveUp(why: string): number {
    this.cancelRetry();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    let count = this.chunks.length;
    let cut = false;
    const b = this.pipeBatch;
    if (b !== null) {
      count += b.ends.length - b.done;
      cut = b.off > (b.done === 0 ? 0 : (b.ends[b.done - 1] as number));
      this.pipeBatch = null;
    }
    if (this.inFlight !== null) {
      // Its pooled write may still land; counted lost now, it is never counted again.
      this.inFlight.superseded = true;
      count += this.inFlight.count;
      this.inFlight = null;
    }
    this.chunks = [];
    this.bufferedBytes = 0;
    if (count === 0) return 0;
    this.stats.pending -= count;
    this.lost(count, why);
    // (A records-lost line still joins the file if a later write succeeds: it is not marked told.)
    const untold = this.stats.failed - this.lostNoted;
    const err = new Error(
      `${count} records were not written: ${why}${cut ? '; the last line in the recording is cut off' : ''}${untold > count ? `; ${untold} records lost in all since the recording last said so` : ''}`,
    );
    this.stats.lastError = err.message;
    this.onError?.(err);
    return count;
  }

  /**
   * A batch failed after part of it was written (a full disk takes the bytes that fit, then says
   * ENOSPC; a file size limit says EFBIG): cuts the file back to where the batch began, so the
   * next batch starts a line of its own there. Left in place, the fragment is a line without its
   * end, and the next record written after it (once space is free again) is glued to it: two
   * records lost on one unreadable line, one of them counted as written. The batch's records are
   * counted as failed either way. True when the file now ends at `pos`; when the cut itself fails,
   * the next batch tries it again before writing.
   */
  private cutBack(pos: number): boolean {
    try {
      fs.ftruncateSync(this.fd, pos);
      this.tornAt = null;
      return true;
    } catch {
      this.tornAt = pos;
      return false;
    }
  }

  /** After a pooled write called back: a deferred path check, the next batch, or the drainers. */
  private afterWrite(): void {
    if (this.checkPending && this.inFlight === null) {
      this.checkPending = false;
      this.checkPath();
    }
    if (this.inFlight !== null) return;
    if (this.chunks.length > 0) this.flush();
    else this.wakeDrainers();
  }

  /**
   * The timer's check: is the file we write to still the one at the path? A file moved away or
   * replaced keeps its records (they are in that file) but the recording continues at the path.
   */
  private checkPath(): void {
    // A FIFO's name does not matter once it is open: its reader holds the other end.
    if (this.path === null || this.closed || this.pipe) return;
    if (this.inFlight !== null || this.outstanding > 0) {
      this.checkPending = true;
      return;
    }
    let same = false;
    try {
      const onDisk = fs.statSync(this.path);
      const open = fs.fstatSync(this.fd);
      same = onDisk.ino === open.ino && onDisk.dev === open.dev;
    } catch {
      same = false;
    }
    if (!same) this.orphan();
  }

  /**
   * The file is no longer at its path: report it once, and open a new file there if its folder
   * exists (else the next path check tries again). Only called with no write in flight, so the
   * descriptor swap never races a pooled write.
   */
  private orphan(): void {
    if (this.path === null) return;
    // A file moved away or replaced still holds what was written to it (it has a name): until the
    // new file is opened, lines go on landing there, and nothing is lost. A removed one loses them.
    const moved = !this.orphaned && (!this.regular || (fstatOrNull(this.fd)?.nlink ?? 0) > 0);
    const fail = (): void => {
      if (this.orphaned) return;
      this.orphaned = true;
      const err = new Error(`the recording file ${this.path} was removed or replaced; records are being lost until it can be recreated`);
      this.stats.lastError = err.message;
      this.onError?.(err);
    };
    if (!moved) fail();
    if (this.inFlight !== null || this.outstanding > 0) {
      this.checkPending = true;
      return;
    }
    let dest: Destination;
    try {
      dest = openForRecording(this.path, this.onWarning, false);
    } catch {
      fail(); // the folder is missing: lines are lost from here on; the next check tries again
      return;
    }
    if (this.ownsFd) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already unusable */
      }
    }
    this.fd = dest.fd;
    this.endWritten = 0; // a new file: nothing of it written yet
    this.regular = this.ownsFd && isRegularFile(dest.fd);
    this.pipe = dest.nonBlockingPipe;
    this.tornAt = null;
    this.orphaned = false;
    this.stats.lastError = null;
    if (this.headerLine !== null) {
      // The new file starts like the first one: header, then whatever is queued.
      this.chunks.unshift(this.headerLine);
      this.bufferedBytes += this.headerLine.length + 1;
      this.stats.pending++;
      if (this.timer === null) {
        this.timer = setTimeout(this.onTimer, this.flushIntervalMs);
        this.timer.unref();
      }
    }
    if (moved) {
      this.onWarning(`the recording file ${this.path} was moved or replaced; its records so far stay in that file, and the recording continues in a new file at ${this.path}`);
      this.onReopen?.(this.stats.written);
    } else this.onRecover?.();
  }

  /** Counts lines as lost (failed), keeping the first reason until it is told. */
  private lost(lines: number, reason: string | null): void {
    this.stats.failed += lines;
    this.lostReason ??= reason;
  }

  /**
   * After a batch landed: lines lost since the last notice are told to `onLost`, whose line joins
   * the queue (written with the next batch; lost in turn, it is counted and told again).
   */
  private noteLoss(): void {
    const lines = this.stats.failed - this.lostNoted;
    if (lines <= 0 || this.onLost === undefined || this.closed) return;
    this.lostNoted = this.stats.failed;
    const reason = this.lostReason;
    this.lostReason = null;
    this.onLost(lines, reason, this.stats.failed);
  }

  private wakeDrainers(): void {
    if (this.drainWaiters.length === 0 || this.outstanding > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private get idle(): boolean {
    return this.inFlight === null && this.pipeBatch === null && this.chunks.length === 0 && this.outstanding === 0;
  }

  /** Resolves when everything queued so far has been written (or counted as failed). */
  drain(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiters.push(resolve);
      this.flush();
    });
  }

  /**
   * Writes everything still buffered synchronously (for process exit paths), including the batch
   * of an asynchronous write that may not have landed yet: on a regular file it is written again
   * at its own offset (the same bytes in the same place, so never twice in the file), and counted
   * once. On a pipe or stdout that batch cannot be rewritten without duplicating it; it is left to
   * its pooled write.
   */
  flushSync(): void {
    if (this.closed) return;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pipe) {
      // A full pipe gets a moment (its reader may be just slow), never the main thread for ever.
      this.cancelRetry();
      const until = Date.now() + EXIT_GRACE_MS;
      const nap = new Int32Array(new SharedArrayBuffer(4));
      for (;;) {
        const empty = this.pump();
        this.cancelRetry();
        if (empty || Date.now() >= until) break;
        Atomics.wait(nap, 0, 0, 5);
      }
      this.giveUp(`the reader of the recording took no more when the process was told to stop at once (${EXIT_GRACE_MS} ms)`);
      return;
    }
    // A file removed under us: a last chance to start a new one (header first) before exiting.
    if (this.orphaned && this.inFlight === null && this.outstanding === 0) this.orphan();
    const batch = this.inFlight;
    let count = 0;
    let data: Buffer;
    let pos: number | null = null;
    if (batch !== null && batch.pos !== null) {
      batch.superseded = true;
      this.inFlight = null;
      const rest = this.takeChunks();
      count = batch.count + rest.count;
      data = rest.count === 0 ? batch.data : Buffer.concat([batch.data, rest.data]);
      pos = batch.pos;
    } else {
      if (this.chunks.length === 0) return;
      const rest = this.takeChunks();
      count = rest.count;
      data = rest.data;
      // (a batch still in flight here is on a stream: it is left to its pooled write)
      if (this.regular && !this.orphaned) pos = fstatOrNull(this.fd)?.size ?? 0;
    }
    this.stats.pending -= count;
    if (this.orphaned) {
      this.lost(count, this.stats.lastError);
      return;
    }
    let off = 0;
    try {
      while (off < data.length) off += fs.writeSync(this.fd, data, off, data.length - off, pos === null ? null : pos + off);
      if (this.regular && fstatOrNull(this.fd)?.nlink === 0) {
        this.lost(count, `the recording file ${this.path} was removed`);
        this.orphaned = true;
      } else {
        this.stats.written += count;
      }
    } catch (err) {
      if (off > 0 && pos !== null) this.cutBack(pos);
      this.lost(count, (err as Error).message);
      this.stats.lastError = (err as Error).message;
    }
  }

  /**
   * Drains, then closes the file. Later lines are counted as failed. With `timeoutMs`, what the
   * destination has not taken by then (a pipe nobody reads) is counted as lost and said.
   */
  /**
   * Drops the queued lines when nothing has reached the destination yet (no write done or in
   * flight), so a `close` after it writes nothing: a start that failed before any exchange leaves
   * an existing recording as it was. Returns whether it dropped them; once something was written
   * it does nothing (what is in the file stays, and what is queued is written).
   */
  discardUnwritten(): boolean {
    if (this.closed || this.inFlight !== null || this.outstanding > 0 || this.pipeBatch !== null || this.stats.written > 0 || this.stats.failed > 0) return false;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.chunks = [];
    this.bufferedBytes = 0;
    this.stats.pending = 0;
    return true;
  }

  async close(opts: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    if (opts.timeoutMs === undefined) await this.drain();
    else if (!(await this.drainWithin(opts.timeoutMs))) {
      const who = this.pipe ? "the recording's reader" : "the recording's destination";
      this.giveUp(`${who} did not take them within ${Math.round(opts.timeoutMs / 100) / 10} s of the shutdown`);
    }
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.cancelRetry();
    if (this.pathTimer !== null) clearInterval(this.pathTimer);
    // A pooled write given up on may still use the descriptor: it is left open then.
    if (this.ownsFd && this.outstanding === 0) {
      try {
        fs.fsyncSync(this.fd);
      } catch {
        /* a pipe or special file cannot be synced */
      }
      fs.closeSync(this.fd);
    }
  }

  /** Drains; false when `ms` passed first. */
  private async drainWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, ms));
    });
    try {
      return await Promise.race([this.drain().then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A descriptor to write to, and whether it is a pipe (or socket) that never blocks. */
interface Destination {
  readonly fd: number;
  readonly nonBlockingPipe: boolean;
}

/**
 * Stdout. When it is a pipe or a socket, Node's own stdout handle (libuv) has already put it in
 * non-blocking mode, or does so now that it is touched: a full pipe says EAGAIN instead of holding
 * a thread (see the module comment).
 */
function stdoutDestination(): Destination {
  const st = fstatOrNull(1);
  const pipe = st !== null && (st.isFIFO() || st.isSocket());
  if (pipe) void process.stdout;
  return { fd: 1, nonBlockingPipe: pipe };
}

/**
 * Opens for writing, creating with owner-only permissions, without truncating and without O_APPEND
 * (see the module comment). A regular file that was already there with a looser mode (0644 from
 * `touch`, a previous run under another umask) is made owner-only too: records hold client
 * addresses, paths and user agents. A refused chmod (a file someone else owns) is reported through
 * `warn` and the recording goes on; devices and pipes (`/dev/full`, a FIFO) are never touched.
 */
function openForRecording(path: string, warn: (message: string) => void, waitForReader = true): Destination {
  if (!waitForReader) {
    // Mid-run (the file was replaced): a FIFO without a reader must not block the proxy's thread
    // in open(). Opened non-blocking, it fails (ENXIO) until a reader comes; the next check retries.
    let st: fs.Stats | null = null;
    try {
      st = fs.statSync(path);
    } catch {
      /* not there: created below */
    }
    if (st?.isFIFO() === true) return { fd: fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK), nonBlockingPipe: true };
  }
  const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o600);
  const st = fstatOrNull(fd);
  if (st !== null && st.isFIFO()) {
    // The first open waited for a reader; a second one, non-blocking, is the one written to: a
    // reader that stops reading must not hold a thread, the shutdown or a second signal.
    try {
      const nb = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.closeSync(fd);
      return { fd: nb, nonBlockingPipe: true };
    } catch {
      return { fd, nonBlockingPipe: false }; // the reader left in between: writes fail (EPIPE)
    }
  }
  if (st !== null && st.isFile() && (st.mode & 0o077) !== 0) {
    try {
      fs.fchmodSync(fd, 0o600);
    } catch (err) {
      warn(
        `the recording file ${path} stays readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod 0600 was refused (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); make it owner-only or record to a new file`,
      );
    }
  }
  return { fd, nonBlockingPipe: false };
}

/** Where a warning goes when the caller gave no `onWarning`: Node's warning channel (stderr). */
function emitWarning(message: string): void {
  process.emitWarning(message, { code: 'AFTERSHOCK_RECORDING_MODE' });
}

/**
 * A path that names a FIFO, socket or character device (`/dev/stdout`): written to as it is. Opening
 * one only to check it, or to truncate it, would end a FIFO reader's stream before the first line.
 */
export function isPipeLike(path: string): boolean {
  try {
    const st = fs.statSync(path);
    return st.isFIFO() || st.isSocket() || st.isCharacterDevice();
  } catch {
    return false;
  }
}

function isRegularFile(fd: number): boolean {
  return fstatOrNull(fd)?.isFile() ?? false;
}

function fstatOrNull(fd: number): fs.Stats | null {
  try {
    return fs.fstatSync(fd);
  } catch {
    return null;
  }
}
