/**
 * `latency`: adds delay, fixed or drawn from a distribution (Toxiproxy's latency/jitter, Envoy's
 * fixed delay, with the tail shapes real services have). `at: request` (default) waits before
 * forwarding; `at: response` holds the upstream's first response byte, so the upstream has done
 * the work when the client times out. Draws use the exchange's seeded random stream.
 */
import { z } from 'zod';
import type { FaultInstance } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { checkDelay, compileSampler, delayShape } from './lib/distribution.js';
import { strict } from './lib/schema.js';

const options = strict({
  ...delayShape,
  at: z.enum(['request', 'response'], { error: 'must be request or response' }).default('request'),
}).superRefine((o, ctx) => checkDelay(o, ctx.issues));

export const latency = defineFault({
  type: 'latency',
  stage: 'delay',
  summary: 'Delays the request (or, with at: response, the first response byte): fixed, with jitter, or uniform/normal/lognormal/exponential/pareto.',
  example: { type: 'latency', distribution: 'lognormal', median: '120ms', p99: '900ms', max: '5s' },
  options,
  create(o): FaultInstance {
    const sample = compileSampler(o);
    if (o.at === 'response') {
      return instance({
        stage: 'response' as const,
        onResponse(ctx) {
          const ms = sample(ctx.random);
          return ms > 0 ? { delay: ms } : null;
        },
      });
    }
    return instance({
      onRequest(ctx) {
        const ms = sample(ctx.random);
        if (ms <= 0) return undefined;
        return ctx.sleep(ms).then((elapsed) => (elapsed ? undefined : ('handled' as const)));
      },
    });
  },
});
