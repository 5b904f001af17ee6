/**
 * `ws-freeze`: after `after` (default at once), the proxy stops relaying in both directions but
 * keeps both connections open: messages vanish and pings go unanswered. A half-open connection —
 * only a client with a heartbeat timeout notices.
 */
import { defineFault, instance } from './lib/define.js';
import { duration, strict } from './lib/schema.js';

const options = strict({
  after: duration().default(0),
});

export const wsFreeze = defineFault({
  type: 'ws-freeze',
  stage: 'websocket',
  summary: 'Stops relaying an open WebSocket (both ways, pings too) after `after`, leaving it half-open.',
  example: { type: 'ws-freeze', after: '5s' },
  options,
  create(o) {
    const after = o.after;
    return instance({
      onOpen(ctx) {
        if (after === 0) ctx.freeze();
        else void ctx.sleep(after).then((ok) => ok && ctx.freeze());
      },
    });
  },
});
