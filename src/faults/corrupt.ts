/**
 * `corrupt`: flips bytes of the response body — bit rot, a broken middlebox, a bad proxy. Either
 * each byte with `probability`, or exactly `count` bytes at positions spread over the body
 * (over the Content-Length when the upstream sends one, else over the first 1 KiB). Positions and
 * new values come from the engine's seeded random source; the length never changes.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { z } from 'zod';
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

/** Positions for `count` when the length is unknown are drawn in the first this-many bytes. */
const UNKNOWN_LENGTH_WINDOW = 1024;

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

class CorruptTransform extends Transform {
  private pos = 0;
  private next: number;
  private idx = 0;

  constructor(
    private readonly random: () => number,
    private readonly p: number | null,
    private readonly positions: readonly number[] | null,
  ) {
    super();
    this.next = p !== null ? nextGap(p, random) : (positions?.[0] ?? Infinity);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    const end = this.pos + chunk.length;
    if (this.next >= end) {
      this.pos = end;
      callback(null, chunk);
      return;
    }
    const out = Buffer.from(chunk); // never write into the upstream's buffer
    while (this.next < end) {
      const i = this.next - this.pos;
      out[i] = (out[i] as number) ^ (1 + Math.floor(this.random() * 255));
      if (this.p !== null) this.next += 1 + nextGap(this.p, this.random);
      else this.next = this.positions?.[++this.idx] ?? Infinity;
    }
    this.pos = end;
    callback(null, out);
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
        if (p !== null) return { transform: new CorruptTransform(ctx.random, p, null) };
        const declared = Number(upstream.headers['content-length']);
        const len = Number.isInteger(declared) && declared >= 0 ? declared : UNKNOWN_LENGTH_WINDOW;
        if (len === 0) return null;
        return { transform: new CorruptTransform(ctx.random, null, drawPositions(count, len, ctx.random)) };
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
