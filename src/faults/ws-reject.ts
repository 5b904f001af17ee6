/**
 * `ws-reject`: refuses the WebSocket upgrade with a plain HTTP answer (default 503, optional
 * Retry-After) — the gateway that sheds new connections during an incident. The upstream never
 * sees the upgrade.
 */
import { defineFault, instance } from './lib/define.js';
import { prepareAnswer } from './lib/respond.js';
import { answerOptions } from './lib/schema.js';

const options = answerOptions(503);

export const wsReject = defineFault({
  type: 'ws-reject',
  stage: 'websocket',
  summary: 'Refuses the WebSocket upgrade with an HTTP status (default 503) and optional Retry-After.',
  example: { type: 'ws-reject', status: 503, retryAfter: '5s' },
  options,
  create(o, env) {
    const answer = prepareAnswer({ status: o.status, rule: env.rule, type: 'ws-reject', headers: o.headers, body: o.body, retryAfter: o.retryAfter });
    return instance({
      onUpgrade(ctx) {
        ctx.respond(answer.status, answer.headers, answer.body);
        return 'handled' as const;
      },
    });
  },
});
