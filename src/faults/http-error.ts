/**
 * `http-error`: answer the request with an injected status instead of forwarding it (Envoy's
 * abort). The upstream never sees the request. With `retryAfter` it tells well-behaved clients when
 * to come back — the answer a careful client should honour and a naive one ignores.
 */
import { defineFault, instance } from './lib/define.js';
import { prepareAnswer } from './lib/respond.js';
import { answerOptions } from './lib/schema.js';

const options = answerOptions(503);

export const httpError = defineFault({
  type: 'http-error',
  stage: 'request',
  summary: 'Answers with an injected status (default 503) without forwarding; optional headers, body and Retry-After.',
  example: { type: 'http-error', status: 503, retryAfter: '2s' },
  options,
  create(o, env) {
    const answer = prepareAnswer({ status: o.status, rule: env.rule, type: 'http-error', headers: o.headers, body: o.body, retryAfter: o.retryAfter });
    return instance({
      onRequest(ctx) {
        ctx.respond(answer.status, answer.headers, answer.body);
        return 'handled' as const;
      },
    });
  },
});
