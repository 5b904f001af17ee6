/**
 * `lost-response`: the request reaches the upstream and is done there, but the answer never
 * reaches the client — its connection is reset when the response head arrives. This is the fault
 * that turns a retry into a duplicate submission: a client that retries a non-idempotent POST
 * without an idempotency key sends the message twice.
 */
import { defineFault, instance } from './lib/define.js';
import { strict } from './lib/schema.js';

export const lostResponse = defineFault({
  type: 'lost-response',
  stage: 'response',
  summary: 'Forwards the request, swallows the upstream\'s answer and resets the client: the work is done, the client never hears.',
  example: { type: 'lost-response' },
  options: strict({}),
  create() {
    return instance({
      onResponse() {
        return { drop: true as const };
      },
    });
  },
});
