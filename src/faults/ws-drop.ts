/**
 * `ws-drop`: silently drops a `fraction` of WebSocket messages in one or both directions — the
 * lost update a client only notices if it acknowledges or sequences its messages. Which messages go
 * is drawn from the connection's seeded stream of their direction: the same for the same seed and
 * the same messages, however they interleave with the other direction or other requests.
 */
import { z } from 'zod';
import type { MessageDirection, MessageVerdict, WsMessageContext } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

const options = strict({
  fraction: z.number('must be a number in (0, 1]').gt(0, 'must be a number in (0, 1]').max(1, 'must be a number in (0, 1]'),
  direction: z.enum(['in', 'out', 'both'], { error: 'must be in (client to upstream), out (upstream to client) or both' }).default('both'),
});

export const wsDrop = defineFault({
  type: 'ws-drop',
  stage: 'websocket',
  summary: 'Drops a `fraction` of WebSocket messages, `direction` in (client to upstream), out or both.',
  example: { type: 'ws-drop', fraction: 0.1, direction: 'out' },
  options,
  create(o) {
    const fraction = o.fraction;
    const direction = o.direction;
    return instance({
      onMessage(ctx: WsMessageContext, dir: MessageDirection): MessageVerdict {
        if (direction !== 'both' && dir !== direction) return undefined;
        if (fraction >= 1 || ctx.messageRandom(dir)() < fraction) return 'drop';
        return undefined;
      },
    });
  },
});
