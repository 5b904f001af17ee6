/**
 * `ws-delay`: holds WebSocket messages before relaying them, fixed or drawn from a distribution
 * (the same keys as `latency`). Order within a direction is kept: a message never overtakes one
 * delayed before it. Delays are drawn from the connection's seeded stream of their direction.
 */
import { z } from 'zod';
import type { MessageDirection, MessageVerdict, WsMessageContext } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { checkDelay, compileSampler, delayShape } from './lib/distribution.js';
import { strict } from './lib/schema.js';

const options = strict({
  ...delayShape,
  direction: z.enum(['in', 'out', 'both'], { error: 'must be in (client to upstream), out (upstream to client) or both' }).default('both'),
}).superRefine((o, ctx) => checkDelay(o, ctx.issues));

export const wsDelay = defineFault({
  type: 'ws-delay',
  stage: 'websocket',
  summary: 'Delays WebSocket messages (fixed or a distribution, like latency) in one or both directions, keeping order.',
  example: { type: 'ws-delay', delay: '200ms', jitter: '50ms', direction: 'out' },
  options,
  create(o) {
    const sample = compileSampler(o);
    const direction = o.direction;
    return instance({
      onMessage(ctx: WsMessageContext, dir: MessageDirection): MessageVerdict {
        if (direction !== 'both' && dir !== direction) return undefined;
        const ms = sample(ctx.messageRandom(dir));
        return ms > 0 ? { delay: ms } : undefined;
      },
    });
  },
});
