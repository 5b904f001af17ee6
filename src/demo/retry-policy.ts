/**
 * The two retry policies the demo's client fleets follow, as pure code (time and randomness are
 * passed in, so the schedules are unit-testable without clocks or sockets).
 *
 * - naive: the January 2021 pattern. Any failure (any non-2xx, a timeout, a reset) is retried at
 *   once, up to a large cap, and Retry-After is ignored. Every rejection becomes more load.
 * - careful: what the SRE book, AWS's "Exponential Backoff and Jitter" and gRPC A6 recommend.
 *   Only transient failures are retried, at most `maxAttempts` attempts in all, after a capped
 *   exponential backoff with full jitter (`rand(0, min(cap, base × 2^n))`); a Retry-After is
 *   honoured (and one longer than the client will wait means "give up now"); and a per-client
 *   token bucket keeps retries to about `budgetRatio` of requests, so a long outage cannot
 *   multiply the load however many requests fail.
 */
import { SeededRandom } from '../rules/random.js';

/** Why an attempt failed, as the client saw it. */
export type Failure =
  | { readonly kind: 'status'; readonly status: number; readonly retryAfterMs: number | null }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'network'; readonly code: string };

/** A client's retry policy: one instance per client (it may keep a budget). */
export interface RetryPolicy {
  readonly name: 'naive' | 'careful';
  /** Called once per logical request, before its first attempt. */
  onRequest(): void;
  /**
   * After the `attempts`-th attempt failed with `failure`: the delay in ms before the next
   * attempt, or null to give up.
   */
  nextDelay(attempts: number, failure: Failure): number | null;
  /** Whether the client sends an Idempotency-Key with non-idempotent requests. */
  readonly idempotencyKeys: boolean;
}

/** Options of the naive policy. */
export interface NaivePolicyOptions {
  /** Retries after the first attempt; default 10 ("a large cap"). */
  maxRetries?: number;
}

/**
 * Retries everything, immediately, up to `maxRetries` times; never reads Retry-After.
 *
 * @example
 * const p = createNaivePolicy({ maxRetries: 10 });
 * p.nextDelay(1, { kind: 'status', status: 503, retryAfterMs: 30_000 }) === 0;
 */
export function createNaivePolicy(options: NaivePolicyOptions = {}): RetryPolicy {
  const maxRetries = options.maxRetries ?? 10;
  return {
    name: 'naive',
    idempotencyKeys: false,
    onRequest: () => undefined,
    nextDelay: (attempts) => (attempts <= maxRetries ? 0 : null),
  };
}

/** Options of the careful policy. */
export interface CarefulPolicyOptions {
  /** Attempts in all, the first included; default 3 (the SRE book's limit). */
  maxAttempts?: number;
  /** Backoff base in ms; default 100. */
  baseMs?: number;
  /** Backoff cap in ms; default 2000. */
  capMs?: number;
  /** A Retry-After longer than this means "give up"; default 5000 ms. */
  maxRetryAfterMs?: number;
  /** Tokens earned per logical request (a retry costs one); default 0.1 = retries ≤ 10 %. */
  budgetRatio?: number;
  /** Bucket size; default 1 (at most one retry per 1 / budgetRatio requests, however bursty). */
  budgetBurst?: number;
  /** Tokens at start; default a random share of the bucket, so clients do not refill in step. */
  initialTokens?: number;
  /** Random source in [0, 1); default Math.random. */
  random?: () => number;
}

/** Statuses worth retrying: the request may succeed later without any change. */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Whether a failure is transient (worth a retry at all).
 *
 * @example isTransient({ kind: 'status', status: 404, retryAfterMs: null }) === false
 */
export function isTransient(failure: Failure): boolean {
  return failure.kind !== 'status' || TRANSIENT_STATUSES.has(failure.status);
}

/**
 * Full-jitter backoff for the retry after the `attempts`-th attempt: `rand(0, min(cap, base × 2^(attempts-1)))`.
 *
 * @example fullJitterDelay(3, 100, 2000, () => 0.5) === 200 // half of min(2000, 400)
 */
export function fullJitterDelay(attempts: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempts - 1));
  return random() * ceiling;
}

/**
 * Capped exponential backoff with full jitter, Retry-After honoured, and a retry budget.
 *
 * @example
 * const p = createCarefulPolicy({ random: () => 0.5, budgetBurst: 3, initialTokens: 3 });
 * p.nextDelay(1, { kind: 'timeout' }) === 50; // rand × min(2000, 100 × 2^0)
 * p.nextDelay(1, { kind: 'status', status: 503, retryAfterMs: 1000 }) >= 1000; // waits as told
 * p.nextDelay(1, { kind: 'status', status: 400, retryAfterMs: null }) === null; // not transient
 */
export function createCarefulPolicy(options: CarefulPolicyOptions = {}): RetryPolicy {
  const maxAttempts = options.maxAttempts ?? 3;
  const baseMs = options.baseMs ?? 100;
  const capMs = options.capMs ?? 2000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 5000;
  const ratio = options.budgetRatio ?? 0.1;
  const burst = options.budgetBurst ?? 1;
  const random = options.random ?? Math.random;
  let tokens = Math.min(burst, options.initialTokens ?? random() * burst);
  return {
    name: 'careful',
    idempotencyKeys: true,
    onRequest: () => {
      tokens = Math.min(burst, tokens + ratio);
    },
    nextDelay: (attempts, failure) => {
      if (!isTransient(failure) || attempts >= maxAttempts) return null;
      const retryAfterMs = failure.kind === 'status' ? failure.retryAfterMs : null;
      if (retryAfterMs !== null && retryAfterMs > maxRetryAfterMs) return null;
      if (tokens < 1 - 1e-9) return null; // ten deposits of 0.1 make one token despite rounding
      tokens = Math.max(0, tokens - 1);
      if (retryAfterMs !== null) {
        // As told, plus a spread so clients told the same thing do not return as a herd; kept
        // inside what counts as honouring it (R + max(250 ms, 10 % of R)), with a margin.
        return retryAfterMs + random() * 0.8 * Math.max(250, retryAfterMs * 0.1);
      }
      return fullJitterDelay(attempts, baseMs, capMs, random);
    },
  };
}

/**
 * Parses a Retry-After header (delta-seconds or an HTTP-date) into milliseconds, or null.
 *
 * @example parseRetryAfter('2', Date.now()) === 2000
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | null {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || raw.trim() === '') return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(raw)) return Math.round(Number(raw) * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same fleet schedule.
 *
 * @example const r = createRandom(42); r() === createRandom(42)();
 */
export function createRandom(seed: number): () => number {
  return new SeededRandom(seed).next;
}
