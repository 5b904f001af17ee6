/**
 * `rate-limit`: a token bucket in front of the service, per client key or global. A request that
 * finds a token passes; one that finds the bucket empty is answered 429 with a Retry-After
 * computed from the bucket (seconds until the next token, rounded up, at least 1) — an honest
 * Retry-After a careful client can follow to the letter.
 *
 * Buckets live in a bounded map (least recently used first out): an evicted bucket had refilled
 * long ago, so forgetting it changes nothing for its client.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { FaultInstance, HttpFaultContext } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { prepareAnswer } from './lib/respond.js';
import { status, strict } from './lib/schema.js';

/** Buckets kept at most (per rule). */
export const MAX_BUCKETS = 10_000;

const options = strict({
  rate: z.number('must be a number of requests per second > 0').positive('must be > 0').max(1_000_000, 'must be at most 1000000'),
  burst: z.int('must be a whole number >= 1').min(1, 'must be >= 1').max(1_000_000, 'must be at most 1000000').optional(),
  per: z.enum(['client', 'global'], { error: 'must be client or global' }).default('client'),
  status: status(429),
});

interface Bucket {
  tokens: number;
  at: number;
}

/** A token bucket map with a size cap; exported for unit tests. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly cap = MAX_BUCKETS,
  ) {}

  /** Takes a token for `key` at `now`; returns 0 when taken, else the seconds until one is available (>= 1). */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.cap) {
        const oldest = this.buckets.keys().next().value as string;
        this.buckets.delete(oldest);
      }
    } else {
      this.buckets.delete(key); // re-insert below: most recently used last
      const elapsed = Math.max(0, now - b.at) / 1000;
      b.tokens = Math.min(this.burst, b.tokens + elapsed * this.rate);
      b.at = now;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }

  get size(): number {
    return this.buckets.size;
  }
}

export const rateLimit = defineFault({
  type: 'rate-limit',
  stage: 'request',
  summary: 'Token bucket (`rate`/s, `burst`) per client or global; when empty answers 429 with an exact Retry-After.',
  example: { type: 'rate-limit', rate: 5, burst: 10, per: 'client' },
  options,
  create(o, env): FaultInstance {
    const buckets = new TokenBuckets(o.rate, o.burst ?? Math.max(1, Math.ceil(o.rate)));
    const perClient = o.per === 'client';
    const base = prepareAnswer({ status: o.status, rule: env.rule, type: 'rate-limit' });
    // Retry-After varies per answer; the body does not.
    const answers = new Map<number, OutgoingHttpHeaders>();
    const headersFor = (seconds: number): OutgoingHttpHeaders => {
      let h = answers.get(seconds);
      if (h === undefined) {
        h = Object.freeze({ ...base.headers, 'retry-after': String(seconds) });
        if (answers.size < 4096) answers.set(seconds, h);
      }
      return h;
    };
    return instance({
      onRequest(ctx: HttpFaultContext) {
        const wait = buckets.take(perClient ? ctx.facts.clientKey : '', ctx.now());
        if (wait === 0) return 'pass' as const;
        ctx.respond(base.status, headersFor(wait), base.body);
        return 'handled' as const;
      },
    });
  },
});
