/**
 * The fleets' retry policies, as pure schedules: the careful one backs off exponentially with full
 * jitter inside its cap, honours Retry-After, retries only transient failures and spends a budget;
 * the naive one retries everything at once up to its cap.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  createCarefulPolicy,
  createNaivePolicy,
  createRandom,
  fullJitterDelay,
  isTransient,
  parseRetryAfter,
  type Failure,
} from '../../src/demo/retry-policy.js';

const timeout: Failure = { kind: 'timeout' };
const status = (s: number, retryAfterMs: number | null = null): Failure => ({ kind: 'status', status: s, retryAfterMs });

describe('full jitter', () => {
  it('stays within [0, min(cap, base x 2^(n-1))] for any attempt, base, cap and draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, base, cap, r) => {
        const d = fullJitterDelay(n, base, cap, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(cap, base * 2 ** (n - 1)));
      }),
    );
  });

  it('draws uniformly under the ceiling: mean about half of it, CV about 0.58 (the analysis\'s "full" jitter)', () => {
    const random = createRandom(7);
    const draws = Array.from({ length: 4000 }, () => fullJitterDelay(4, 100, 2000, random));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    const sd = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / draws.length);
    expect(mean).toBeGreaterThan(380);
    expect(mean).toBeLessThan(420); // ceiling 800 ms
    expect(sd / mean).toBeGreaterThan(0.52);
    expect(sd / mean).toBeLessThan(0.64);
    expect(Math.max(...draws)).toBeLessThanOrEqual(800);
  });
});

describe('careful policy', () => {
  const generous = { budgetBurst: 1e9, initialTokens: 1e9 };

  it('backs off exponentially (capped) and gives up after maxAttempts', () => {
    const p = createCarefulPolicy({ ...generous, maxAttempts: 6, baseMs: 100, capMs: 500, random: () => 0.999999 });
    p.onRequest();
    const delays = [1, 2, 3, 4, 5].map((n) => p.nextDelay(n, timeout) as number);
    expect(delays.map((d) => Math.round(d))).toEqual([100, 200, 400, 500, 500]);
    expect(p.nextDelay(6, timeout)).toBeNull();
  });

  it('jitters every wait fully: the same attempt waits differently each time', () => {
    const p = createCarefulPolicy({ ...generous, random: createRandom(3) });
    const waits = Array.from({ length: 50 }, () => p.nextDelay(2, timeout) as number);
    expect(new Set(waits.map((w) => Math.round(w))).size).toBeGreaterThan(40);
    for (const w of waits) expect(w).toBeLessThanOrEqual(200);
  });

  it('honours Retry-After (within the analysis\'s compliance band) and gives up when it is longer than it will wait', () => {
    const p = createCarefulPolicy({ ...generous, maxRetryAfterMs: 5000, random: createRandom(11) });
    for (let i = 0; i < 200; i++) {
      const d = p.nextDelay(1, status(503, 1000)) as number;
      expect(d).toBeGreaterThanOrEqual(1000);
      expect(d).toBeLessThanOrEqual(1000 + 250); // R + max(250 ms, 10 % of R)
      const long = p.nextDelay(1, status(429, 5000)) as number;
      expect(long).toBeGreaterThanOrEqual(5000);
      expect(long).toBeLessThanOrEqual(5500);
    }
    expect(p.nextDelay(1, status(503, 30_000))).toBeNull();
  });

  it('retries only transient failures', () => {
    const p = createCarefulPolicy(generous);
    for (const s of [408, 429, 500, 502, 503, 504]) expect(p.nextDelay(1, status(s))).not.toBeNull();
    for (const s of [400, 401, 404, 409, 501]) expect(p.nextDelay(1, status(s))).toBeNull();
    expect(p.nextDelay(1, { kind: 'network', code: 'ECONNRESET' })).not.toBeNull();
    expect(isTransient(timeout)).toBe(true);
    expect(isTransient(status(404))).toBe(false);
  });

  it('spends a retry budget: one retry per ten requests once the bucket is empty', () => {
    const p = createCarefulPolicy({ budgetRatio: 0.1, budgetBurst: 1, initialTokens: 1, random: () => 0.5 });
    p.onRequest();
    expect(p.nextDelay(1, timeout)).not.toBeNull(); // the one token
    expect(p.nextDelay(1, timeout)).toBeNull();
    for (let i = 0; i < 9; i++) p.onRequest();
    expect(p.nextDelay(1, timeout)).toBeNull(); // 0.9 tokens
    p.onRequest();
    expect(p.nextDelay(1, timeout)).not.toBeNull();
    // A long run of failures: retries stay at about 10 % of requests.
    let retries = 0;
    for (let i = 0; i < 1000; i++) {
      p.onRequest();
      if (p.nextDelay(1, timeout) !== null) retries++;
    }
    expect(retries).toBeGreaterThanOrEqual(99);
    expect(retries).toBeLessThanOrEqual(101);
  });
});

describe('naive policy', () => {
  it('retries any failure at once, ignoring Retry-After, up to its cap', () => {
    const p = createNaivePolicy({ maxRetries: 10 });
    for (let n = 1; n <= 10; n++) {
      expect(p.nextDelay(n, status(503, 30_000))).toBe(0);
      expect(p.nextDelay(n, status(404))).toBe(0);
      expect(p.nextDelay(n, timeout)).toBe(0);
    }
    expect(p.nextDelay(11, timeout)).toBeNull();
    expect(p.idempotencyKeys).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP-dates, and nothing else', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter(['5'], now)).toBe(5000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });
});
