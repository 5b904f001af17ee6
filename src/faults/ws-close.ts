/**
 * `ws-close`: closes an open WebSocket from the proxy's side — `after` a time or `afterMessages`
 * messages (counted in both directions; the Nth is relayed, none after it) — with `code` and
 * `reason`. Code 1006 sends no close frame at all: the TCP connection just drops, as when a load
 * balancer or a NAT forgets the flow. This is the fault behind reconnect storms.
 */
import { z } from 'zod';
import type { FaultInstance, WsFaultContext } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { duration, strict } from './lib/schema.js';

const CODE_HINT = 'must be 1000-1003, 1006 (drop without a close frame), 1007-1014, or 3000-4999';

const options = strict({
  code: z
    .int(CODE_HINT)
    .refine((c) => (c >= 1000 && c <= 1014 && c !== 1004 && c !== 1005) || (c >= 3000 && c <= 4999), CODE_HINT)
    .default(1011),
  reason: z
    .string('must be a string')
    .refine((r) => Buffer.byteLength(r) <= 123, 'must be at most 123 bytes (a close frame limit)')
    .default('closed by aftershock'),
  after: duration().optional(),
  afterMessages: z.int('must be a whole number >= 1').min(1, 'must be >= 1').optional(),
}).superRefine((o, ctx) => {
  if (o.after !== undefined && o.afterMessages !== undefined) {
    ctx.issues.push({ code: 'custom', message: 'give after (a time) or afterMessages (a count), not both', path: ['afterMessages'], input: o.afterMessages });
  }
});

export const wsClose = defineFault({
  type: 'ws-close',
  stage: 'websocket',
  summary: 'Closes an open WebSocket with `code`/`reason` after a time or a number of messages; 1006 drops TCP without a close frame.',
  example: { type: 'ws-close', code: 1006, after: '2s' },
  options,
  create(o): FaultInstance {
    const { code, reason } = o;
    if (o.afterMessages !== undefined) {
      const limit = o.afterMessages;
      const seen = new WeakMap<WsFaultContext, number>();
      return instance({
        onMessage(ctx: WsFaultContext) {
          const n = (seen.get(ctx) ?? 0) + 1;
          seen.set(ctx, n);
          if (n < limit) return undefined;
          // What comes after the limit-th message, before the close is sent, is not relayed: a
          // burst read in one go (or the upstream's answer to the limit-th) would slip through.
          if (n > limit) return 'drop';
          // The limit-th message is still relayed (it is sent after this verdict); the close
          // follows on the next turn.
          void ctx.sleep(0).then((ok) => ok && ctx.closeClient(code, reason));
          return 'acted';
        },
      });
    }
    const after = o.after ?? 0;
    return instance({
      onOpen(ctx: WsFaultContext) {
        if (after === 0) ctx.closeClient(code, reason);
        else void ctx.sleep(after).then((ok) => ok && ctx.closeClient(code, reason));
      },
    });
  },
});
