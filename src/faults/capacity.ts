/**
 * `capacity`: emulates a service that can only do so much — `concurrency` requests at once and/or
 * `rate` request starts per second. Excess requests wait in a FIFO queue of `queue` places (for at
 * most `queueTimeout`); when the queue is full, or the wait times out, they are answered 503 (with
 * an optional Retry-After). This is the overload that makes a retry storm sustain itself: every
 * retry takes a queue place a first attempt needed.
 *
 * `rate` is a token bucket holding `rate` starts (rounded up, at least 1), refilled at `rate` per
 * second: a service that "does N per second" takes N requests arriving together, then one every
 * 1/N s — not one, then a rejection for every request closer than 1/N s to the last.
 *
 *   request ──▶ slot free and nobody waiting? ──yes──▶ forward (slot held until the exchange ends)
 *                 │ no
 *                 ▼
 *             queue full? ──yes──▶ 503 (+ Retry-After)
 *                 │ no
 *                 ▼
 *             wait (FIFO) ──▶ granted ──▶ forward
 *                 ├─ queueTimeout ──▶ 503
 *                 └─ client left ──▶ leave the queue
 *
 * The state belongs to the rule's instance: every request that hits the rule shares it. A reload
 * that leaves the rule's name and fault as they were keeps the instance, slots held and queue
 * included (the engine's `instanceKey`); a changed fault gets a new instance with fresh state,
 * and requests in flight finish on the old one.
 */
import { z } from 'zod';
import type { FaultInstance, HttpFaultContext } from './types.js';
import { defineFault, instance } from './lib/define.js';
import { prepareAnswer } from './lib/respond.js';
import { duration, retryAfter, status, strict } from './lib/schema.js';

const options = strict({
  concurrency: z.int('must be a whole number >= 1').min(1, 'must be >= 1').max(1_000_000, 'must be at most 1000000').optional(),
  rate: z.number('must be a number of requests per second > 0').positive('must be > 0').max(1_000_000, 'must be at most 1000000').optional(),
  queue: z.int('must be a whole number >= 0').min(0, 'must be >= 0').max(1_000_000, 'must be at most 1000000').default(0),
  queueTimeout: duration({ min: 1 }).optional(),
  status: status(503),
  retryAfter: retryAfter().optional(),
}).superRefine((o, ctx) => {
  if (o.concurrency === undefined && o.rate === undefined) {
    ctx.issues.push({ code: 'custom', message: 'give concurrency (requests at once) and/or rate (starts per second)', path: [], input: o });
  }
  if (o.queueTimeout !== undefined && o.queue === 0) {
    ctx.issues.push({ code: 'custom', message: 'only with a queue (queue: N > 0)', path: ['queueTimeout'], input: o.queueTimeout });
  }
});

interface Waiter {
  grant: (granted: boolean) => void;
  done: boolean;
}

export interface CapacityOptions {
  concurrency?: number | undefined;
  rate?: number | undefined;
  queue: number;
}

/**
 * The pure bookkeeping of a capacity: slots, a start-rate token bucket and a FIFO of waiters.
 * Exported for unit tests; time comes from the caller.
 */
export class CapacityGate {
  private readonly concurrency: number;
  private readonly perMs: number; // starts per ms; 0 without a rate
  private readonly burst: number;
  private readonly queueMax: number;
  private readonly queue: Waiter[] = [];
  private head = 0;
  /** Starts the rate allows now (a fraction refills over time), as of `at`. */
  private tokens: number;
  private at = 0;
  private timer: NodeJS.Timeout | null = null;
  active = 0;
  waiting = 0;

  constructor(
    o: CapacityOptions,
    private readonly now: () => number,
  ) {
    this.concurrency = o.concurrency ?? Infinity;
    this.perMs = o.rate === undefined ? 0 : o.rate / 1000;
    this.burst = o.rate === undefined ? Infinity : Math.max(1, Math.ceil(o.rate));
    this.tokens = this.burst;
    this.queueMax = o.queue;
  }

  /** Takes a slot now if one is free and nobody is waiting. */
  tryAcquire(): boolean {
    if (this.waiting > 0 || this.active >= this.concurrency) return false;
    if (this.msUntilStart(this.now()) > 0) return false;
    this.start();
    return true;
  }

  /** Joins the queue; null when it is full. `cancel()` leaves it (client gone, timed out). */
  enqueue(grant: (granted: boolean) => void): { cancel(): boolean } | null {
    if (this.waiting >= this.queueMax) return null;
    const w: Waiter = { grant, done: false };
    this.queue.push(w);
    this.waiting++;
    this.pump();
    return {
      cancel: () => {
        if (w.done) return false;
        w.done = true;
        this.waiting--;
        this.pump();
        return true;
      },
    };
  }

  release(): void {
    this.active--;
    this.pump();
  }

  /** Refills the bucket to `now`; 0 when the rate allows a start now, else the ms until it does. */
  private msUntilStart(now: number): number {
    if (this.perMs === 0) return 0;
    if (now > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.at) * this.perMs);
      this.at = now;
    }
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.perMs;
  }

  private start(): void {
    this.active++;
    if (this.perMs > 0) this.tokens -= 1;
  }

  /** Grants waiting requests while there is room; arms one timer when only the rate blocks. */
  private pump(): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head] as Waiter;
      if (w.done) {
        this.head++;
        continue;
      }
      if (this.active >= this.concurrency) break;
      const wait = this.msUntilStart(this.now());
      if (wait > 0) {
        if (this.timer === null) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.pump();
          }, Math.ceil(wait));
          this.timer.unref();
        }
        break;
      }
      this.head++;
      w.done = true;
      this.waiting--;
      this.start();
      w.grant(true);
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.waiting === 0 && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

export const capacity = defineFault({
  type: 'capacity',
  stage: 'request',
  summary: 'A service with `concurrency` slots and/or `rate` starts per second, a FIFO `queue` (and `queueTimeout`); beyond that 503.',
  example: { type: 'capacity', concurrency: 8, queue: 32, queueTimeout: '2s', retryAfter: '1s' },
  options,
  create(o, env): FaultInstance {
    let clock: () => number = Date.now;
    const gate = new CapacityGate(o, () => clock());
    const answer = prepareAnswer({ status: o.status, rule: env.rule, type: 'capacity', retryAfter: o.retryAfter, detail: { reason: 'over capacity' } });
    const queueTimeout = o.queueTimeout ?? Infinity;
    const release = (): void => gate.release();
    const reject = (ctx: HttpFaultContext): 'handled' => {
      ctx.respond(answer.status, answer.headers, answer.body);
      return 'handled';
    };
    return instance({
      onRequest(ctx: HttpFaultContext) {
        clock = ctx.now;
        if (gate.tryAcquire()) {
          ctx.onDone(release);
          return 'pass' as const; // room at once: nothing was done to this request
        }
        let settle: ((granted: boolean) => void) | null = null;
        const result = new Promise<boolean>((resolve) => {
          settle = resolve;
        });
        const ticket = gate.enqueue((granted) => settle?.(granted));
        if (ticket === null) return reject(ctx);
        // Leave the queue when the client goes away or the wait times out.
        void ctx.sleep(queueTimeout).then(() => {
          if (ticket.cancel()) settle?.(false);
        });
        return result.then((granted): 'handled' | undefined => {
          if (granted) {
            ctx.onDone(release); // it waited in the queue: that delay was the fault
            return undefined;
          }
          return ctx.signal.aborted ? ('handled' as const) : reject(ctx);
        });
      },
    });
  },
});
