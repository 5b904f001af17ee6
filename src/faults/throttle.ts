/**
 * `throttle`: the response body flows at `bytesPerSecond` (Toxiproxy's bandwidth). Headers go out
 * at once; the body is paced in slices of about 50 ms worth of bytes. Backpressure is respected
 * and the pacing timer dies with the exchange.
 */
import { z } from 'zod';
import { defineFault, instance } from './lib/define.js';
import { bodyLength } from './lib/body.js';
import { PacedTransform } from './lib/paced.js';
import { strict } from './lib/schema.js';

const options = strict({
  bytesPerSecond: z.int('must be a whole number of bytes per second >= 1').min(1, 'must be >= 1').max(1024 * 1024 * 1024, 'must be at most 1 GiB/s'),
});

export const throttle = defineFault({
  type: 'throttle',
  stage: 'response',
  summary: 'Limits the response body to `bytesPerSecond`, streaming with backpressure.',
  example: { type: 'throttle', bytesPerSecond: 16384 },
  options,
  create(o) {
    const bps = o.bytesPerSecond;
    // ~50 ms per slice keeps the rate smooth without a timer per byte.
    const slice = Math.max(1, Math.min(64 * 1024, Math.ceil(bps / 20)));
    const interval = (slice * 1000) / bps;
    return instance({
      onResponse(ctx, upstream) {
        // No body (HEAD, 204, 304, Content-Length: 0): nothing to slow, so nothing injected or labelled.
        if (bodyLength(ctx.facts.method, upstream) === 0) return null;
        return { transform: new PacedTransform({ slice, interval, now: ctx.now, signal: ctx.signal }) };
      },
    });
  },
});
