/**
 * `hang`: the request is accepted and never answered — the fault that tests a client's timeouts.
 * Without `duration` the connection is held until the client gives up; with it, the proxy ends the
 * wait with `then: reset` (RST, the default) or `then: close` (FIN). The wait is cancellable: it
 * ends the moment the client goes away.
 */
import { z } from 'zod';
import { defineFault, instance } from './lib/define.js';
import { duration, strict } from './lib/schema.js';

const options = strict({
  duration: duration({ min: 1 }).optional(),
  then: z.enum(['reset', 'close'], { error: 'must be reset or close' }).default('reset'),
});

export const hang = defineFault({
  type: 'hang',
  stage: 'request',
  summary: 'Holds the request unanswered until the client gives up, or for `duration` and then resets or closes.',
  example: { type: 'hang', duration: '30s', then: 'reset' },
  options,
  create(o) {
    const wait = o.duration ?? Infinity;
    const then = o.then;
    return instance({
      async onRequest(ctx) {
        // The request is never forwarded: its body is read and dropped, so the proxy keeps reading
        // the connection and sees the client give up (an upload left unread stopped that).
        ctx.discardBody();
        const elapsed = await ctx.sleep(wait);
        if (elapsed) {
          if (then === 'reset') ctx.reset();
          else ctx.close();
        }
        return 'handled' as const;
      },
    });
  },
});
