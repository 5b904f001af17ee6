/**
 * A Transform that lets bytes through in slices on a schedule: the engine of `throttle`
 * (bytes per second) and `slow-body` (a chunk every interval).
 *
 * Slice k may leave once `start + k * interval` has passed, measured from the first byte, so the
 * average rate holds however coarse the timers are. Backpressure is Node's: the next upstream
 * chunk is taken only after this one is pushed and the readable side has room. The one timer is
 * cleared when the stream is destroyed or the exchange's signal aborts — nothing outlives the
 * exchange. No byte is lost or reordered.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface PaceOptions {
  /** Bytes per slice (>= 1). */
  readonly slice: number;
  /** Milliseconds between slices. */
  readonly interval: number;
  readonly now: () => number;
  readonly signal: AbortSignal;
}

export class PacedTransform extends Transform {
  private readonly slice: number;
  private readonly interval: number;
  private readonly now: () => number;
  private start = -1;
  private sent = 0;
  private chunk: Buffer | null = null;
  private offset = 0;
  private callback: TransformCallback | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: PaceOptions) {
    super();
    this.slice = Math.max(1, Math.floor(opts.slice));
    this.interval = opts.interval;
    this.now = opts.now;
    if (opts.signal.aborted) this.destroy();
    else opts.signal.addEventListener('abort', () => this.destroy(), { once: true });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.start < 0) this.start = this.now();
    this.chunk = chunk;
    this.offset = 0;
    this.callback = callback;
    this.pump();
  }

  private readonly pump = (): void => {
    this.timer = null;
    const chunk = this.chunk;
    if (chunk === null || this.destroyed) return;
    while (this.offset < chunk.length) {
      const due = this.start + Math.floor(this.sent / this.slice) * this.interval;
      const wait = due - this.now();
      if (wait > 0.5) {
        this.timer = setTimeout(this.pump, Math.ceil(wait));
        return;
      }
      // Complete the current slice first, even across upstream chunk boundaries.
      const room = this.slice - (this.sent % this.slice);
      const end = Math.min(chunk.length, this.offset + room);
      const piece = chunk.subarray(this.offset, end);
      this.offset = end;
      this.sent += piece.length;
      this.push(piece);
    }
    const cb = this.callback;
    this.chunk = null;
    this.callback = null;
    cb?.();
  };

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.chunk = null;
    this.callback = null;
    callback(err);
  }
}
