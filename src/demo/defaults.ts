/**
 * The demo's tuning, in one place: the message service's capacity, the clients' pace and
 * timeouts, and the naive app's outbox. Chosen together (see the README (The demo)): the organic load is a
 * quarter of the service's healthy capacity, so both fleets are fine before the outage; a backlog
 * of a hundred or so requests pushes the queue past the clients' timeout, and from there only the
 * naive fleet's retries can keep it full.
 */
import type { MessageServiceOptions } from './message-service.js';

/** The message service: 4 workers, 10-30 ms of work (about 200 requests/s), 128 queue places. */
export const DEMO_SERVICE = Object.freeze({
  concurrency: 4,
  queueLimit: 128,
  workMs: Object.freeze([10, 30] as const),
  overloadSlowdown: 2,
  retryAfterSeconds: 1,
}) satisfies Readonly<MessageServiceOptions>;

/** Clients per fleet. */
export const DEMO_CLIENTS = 20;
/** Mean time between two logical requests of one client (20 clients: 50 requests/s per fleet). */
export const DEMO_INTERVAL_MS = 400;
/** Per-attempt client timeout. */
export const DEMO_TIMEOUT_MS = 1000;
/** The naive app keeps up to `max` unsent messages and re-sends them all when a request succeeds. */
export const NAIVE_OUTBOX = Object.freeze({ max: 32, flushEveryMs: 1000 });
/** The naive client's retries per request (11 attempts in all: "a large cap"). */
export const NAIVE_MAX_RETRIES = 10;

/**
 * Healthy capacity of a message service in requests per second: workers / mean work time.
 *
 * @example serviceCapacity(DEMO_SERVICE) === 200
 */
export function serviceCapacity(o: MessageServiceOptions): number {
  const [min, max] = o.workMs ?? DEMO_SERVICE.workMs;
  return (1000 * (o.concurrency ?? DEMO_SERVICE.concurrency)) / Math.max(0.001, (min + max) / 2);
}
