/**
 * `close`: the proxy closes the client's connection (FIN) without sending a response — the
 * "socket hang up" / "empty reply from server" a client gets from a server that gave up. The
 * request is not forwarded.
 */
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

export const close = defineFault({
  type: 'close',
  stage: 'request',
  summary: 'Closes the client connection (TCP FIN) with no response, without forwarding.',
  example: { type: 'close' },
  options: strict({}),
  create() {
    return instance({
      onRequest(ctx) {
        ctx.close();
        return 'handled' as const;
      },
    });
  },
});
