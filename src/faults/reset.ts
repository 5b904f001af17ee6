/**
 * `reset`: the client's TCP connection is reset (RST) instead of answered — what a crashed
 * process, a load balancer killing a connection or a conntrack flush looks like to a client
 * (ECONNRESET). The request is not forwarded.
 */
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

export const reset = defineFault({
  type: 'reset',
  stage: 'request',
  summary: 'Resets the client connection (TCP RST, the client sees ECONNRESET) without forwarding.',
  example: { type: 'reset' },
  options: strict({}),
  create() {
    return instance({
      onRequest(ctx) {
        ctx.reset();
        return 'handled' as const;
      },
    });
  },
});
