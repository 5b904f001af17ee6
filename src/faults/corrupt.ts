/**
 * `corrupt`: flips bytes of the response body — bit rot, a broken middlebox, a bad proxy. Either
 * each byte with `probability`, or exactly `count` bytes (all of them in a shorter body). New
 * values and positions come from the exchange's seeded random stream (so they are the same
 * whenever the response arrives); the length never changes, and nothing is held back.
 *
 * With a Content-Length, `count` positions are spread over the whole body, drawn when the head
 * arrives. Without one, the body's length is unknown until it ends, so the flips are spent on the
 * bytes as they arrive: each chunk takes as many of the flips still to do as it has bytes, at
 * positions drawn within it (a one-chunk body of 48 bytes gets its 3 flips spread over those 48).
 *
 * Only flipped bytes label a response: a body of known length that no flip would reach is passed
 * untouched (null); one of unknown length is labelled at its first flip (FAULT_ACTED).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { z } from 'zod';
import { FAULT_ACTED } from './types.js';
import { bodyLength } from './lib/body.js';
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

const options = strict({
  probability: z.number('must be a number in (0, 1]').gt(0, 'must be a number in (0, 1]').max(1, 'must be a number in (0, 1]').optional(),
  count: z.int('must be a whole number >= 1').min(1, 'must be >= 1').max(1_000_000, 'must be at most 1000000').optional(),
}).superRefine((o, ctx) => {
  if ((o.probability === undefined) === (o.count === undefined)) {
    ctx.issues.push({ code: 'custom', message: 'give either probability (per byte) or count (bytes), exactly one', path: [], input: o });
  }
});

/** Next corrupted offset after `pos` with per-byte probability p: a geometric gap, one draw. */
function nextGap(p: number, random: () => number): number {
  if (p >= 1) return 0;
  return Math.floor(Math.log(1 - random()) / Math.log(1 - p));
}

/**
 * Flips body bytes at the offsets it is given: the next one in `next`, then either a geometric
 * gap (probability), the next of `positions` (count over a known length), or, with `spread` > 0
 * (count over an unknown length), positions drawn within each chunk until `spread` are done.
 */
class CorruptTransform extends Transform {
  private pos = 0;
  private next: number;
  private idx = 0;
  private acted = false;

  constructor(
    private readonly random: () => number,
    private readonly p: number | null,
    private readonly positions: readonly number[] | null,
    private spread: number,
    first: number,
  ) {
    super();
    this.next = first;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const n = chunk.length;
    const end = this.pos + n;
    if (this.spread > 0 && n > 0) {
      const k = Math.min(this.spread, n);
      this.spread -= k;
      const out = this.copy(chunk);
      for (const i of drawPositions(k, n, this.random)) this.flip(out, i);
      this.pos = end;
      callback(null, out);
      return;
    }
    if (this.next >= end) {
      this.pos = end;
      callback(null, chunk);
      return;
    }
    const out = this.copy(chunk);
    while (this.next < end) {
      this.flip(out, this.next - this.pos);
      if (this.p !== null) this.next += 1 + nextGap(this.p, this.random);
      else this.next = this.positions?.[++this.idx] ?? Infinity;
    }
    this.pos = end;
    callback(null, out);
  }

  /** A copy to write into (never the upstream's buffer); the first one tells the proxy it acted. */
  private copy(chunk: Buffer): Buffer {
    if (!this.acted) {
      this.acted = true;
      this.emit(FAULT_ACTED);
    }
    return Buffer.from(chunk);
  }

  private flip(out: Buffer, i: number): void {
    out[i] = (out[i] as number) ^ (1 + Math.floor(this.random() * 255));
  }
}

export const corrupt = defineFault({
  type: 'corrupt',
  stage: 'response',
  summary: 'Flips bytes of the response body: each with `probability`, or exactly `count` of them.',
  example: { type: 'corrupt', count: 3 },
  options,
  create(o) {
    const p = o.probability ?? null;
    const count = o.count ?? 0;
    return instance({
      onResponse(ctx, upstream) {
        const len = bodyLength(ctx.facts.method, upstream);
        if (len === 0) return null;
        const random = ctx.random;
        if (p !== null) {
          const first = nextGap(p, random);
          if (len === null) return { transform: new CorruptTransform(random, p, null, 0, first), lazy: true };
          return first < len ? { transform: new CorruptTransform(random, p, null, 0, first) } : null;
        }
        if (len === null) return { transform: new CorruptTransform(random, null, null, count, Infinity), lazy: true };
        const positions = drawPositions(count, len, random);
        return { transform: new CorruptTransform(random, null, positions, 0, positions[0] as number) };
      },
    });
  },
});

/** `count` distinct positions in [0, len), ascending (all of them when count >= len). */
export function drawPositions(count: number, len: number, random: () => number): number[] {
  if (count >= len) return Array.from({ length: len }, (_, i) => i);
  const picked = new Set<number>();
  // Floyd's algorithm: exactly `count` draws, no retries, distinct results.
  for (let j = len - count; j < len; j++) {
    const t = Math.floor(random() * (j + 1));
    picked.add(picked.has(t) ? j : t);
  }
  return [...picked].sort((a, b) => a - b);
}
