/**
 * `truncate`: the first `after` bytes of the response body reach the client, then the connection
 * is reset — a response cut off mid-body (Toxiproxy's limit_data, but with a RST so the client
 * cannot mistake it for a complete body). `after: 0` sends the head alone. A body no longer than
 * `after` passes untouched and unlabelled: with a Content-Length that is known from the head; for a
 * body of unknown length the fault is labelled when (if) it cuts (see FAULT_ACTED).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { z } from 'zod';
import { FAULT_ACTED, type HttpFaultContext } from './types.js';
import { bodyLength } from './lib/body.js';
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

const options = strict({
  after: z.int('must be a whole number of bytes >= 0').min(0, 'must be >= 0'),
});

class TruncateTransform extends Transform {
  private left: number;
  private cut = false;
  private readonly ctx: HttpFaultContext;

  constructor(after: number, ctx: HttpFaultContext) {
    super();
    this.left = after;
    this.ctx = ctx;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (this.cut) {
      callback(); // discarded: the client is being reset
      return;
    }
    if (chunk.length <= this.left) {
      this.left -= chunk.length;
      callback(null, chunk);
      return;
    }
    const head = chunk.subarray(0, this.left);
    this.left = 0;
    this.cut = true;
    this.emit(FAULT_ACTED);
    // Ask for the reset before ending our side: the proxy flushes what was written, then resets.
    this.ctx.resetAfterFlush();
    if (head.length > 0) this.push(head);
    this.push(null);
    callback();
  }
}

export const truncate = defineFault({
  type: 'truncate',
  stage: 'response',
  summary: 'Passes the first `after` bytes of the response body, then resets the connection.',
  example: { type: 'truncate', after: 1024 },
  options,
  create(o) {
    const after = o.after;
    return instance({
      onResponse(ctx, upstream) {
        const len = bodyLength(ctx.facts.method, upstream);
        if (len === null) return { transform: new TruncateTransform(after, ctx), lazy: true };
        return len > after ? { transform: new TruncateTransform(after, ctx) } : null;
      },
    });
  },
});
