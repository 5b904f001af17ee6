/**
 * `slow-body`: the response body dribbles out, `chunkSize` bytes every `interval` — a slow
 * producer or a congested link, the fault that finds clients with a total-time timeout but no
 * idle timeout (or the reverse).
 */
import { z } from 'zod';
import { defineFault, instance } from './lib/define.js';
import { bodyLength } from './lib/body.js';
import { PacedTransform } from './lib/paced.js';
import { duration, strict } from './lib/schema.js';

const options = strict({
  chunkSize: z.int('must be a whole number of bytes >= 1').min(1, 'must be >= 1').max(1024 * 1024, 'must be at most 1 MiB').default(1),
  interval: duration({ min: 1, max: 60_000 }).default(100),
});

export const slowBody = defineFault({
  type: 'slow-body',
  stage: 'response',
  summary: 'Dribbles the response body: `chunkSize` bytes (default 1) every `interval` (default 100ms).',
  example: { type: 'slow-body', chunkSize: 16, interval: '200ms' },
  options,
  create(o) {
    const slice = o.chunkSize;
    const interval = o.interval;
    return instance({
      onResponse(ctx, upstream) {
        // No body (HEAD, 204, 304, Content-Length: 0): nothing to slow, so nothing injected or labelled.
        if (bodyLength(ctx.facts.method, upstream) === 0) return null;
        return { transform: new PacedTransform({ slice, interval, now: ctx.now, signal: ctx.signal }) };
      },
    });
  },
});
