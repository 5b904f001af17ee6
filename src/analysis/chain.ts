/**
 * Grouping attempts into logical requests (spec §3): a *thread* holds every attempt that could
 * belong to the same logical request (same client and explicit id, same fingerprint, or same
 * socket endpoint); a thread cuts its attempts into *chains*, one per logical request.
 *
 *   record ─▶ attempt ─▶ thread (sorted, unsettled) ─settle─▶ chain (first | retry | hedge)
 *                                                       └─ expire/cut ─▶ finished chain ─▶ aggregates
 *
 * Why settle: the proxy writes a record when its exchange ENDS, so records arrive ordered by end,
 * not by start. Within one chain that order is already right (a retry starts after the attempt it
 * retries has ended), but an overlapping attempt (a hedge) can arrive after a later-starting one.
 * A thread therefore keeps its newest attempts sorted by start and only folds an attempt into its
 * chain once the recording has moved `lag` past its start; the report folds the rest virtually.
 */
import type { Attempt } from './attempt.js';
import { RESEND_MS } from './attempt.js';
import { checkRetryAfter } from './backoff.js';

export type Role = 'first' | 'retry' | 'hedge';

/** Gaps kept per chain for classification (later gaps are counted, not kept). */
export const MAX_KEPT_GAPS = 32;
/** An attempt that starts more than this before the previous one ended overlaps it: a hedge. */
export const HEDGE_TOLERANCE_MS = 25;
/** Example request ids kept per kind of evidence. */
export const MAX_EXAMPLES = 3;

/** Parameters the grouping reads on every decision (the window can grow as Retry-After grows). */
export interface GroupingParams {
  windowMs: number;
  lagMs: number;
}

export type EvidenceKind = 'retry' | 'immediate' | 'unsafe' | 'nonRetryable' | 'duplicate' | 'raViolation' | 'raLate' | 'unbounded' | 'idemReuse' | 'hedge';

// Most chains have one attempt and most threads one pending attempt at a time, and they live a few
// seconds of recording (long enough to be promoted out of V8's young generation): they share these
// frozen empties until they need their own, instead of three empty arrays and an object each.
const NO_GAPS = Object.freeze([]) as readonly number[] as number[];
const NO_EXAMPLES = Object.freeze({}) as Partial<Record<EvidenceKind, string[]>>;
const NO_ATTEMPTS = Object.freeze([]) as readonly Attempt[] as Attempt[];

/**
 * The longest wait after a Retry-After of `raMs` that still honours it with jitter added
 * (`R + max(1 s, 25 %)`): longer than the spec's compliant band (`R + max(250 ms, 10 %)`), so it
 * is counted late, but it does not make the client one that ignored Retry-After.
 */
export function raJitterLimitMs(raMs: number): number {
  return raMs + Math.max(1000, 0.25 * raMs);
}

/** One logical request in progress: counters and the few facts its grading needs. */
export class Chain {
  attempts = 0;
  retries = 0;
  hedges = 0;
  failures = 0;
  firstTs: number;
  firstId: string;
  maxEnd: number;
  last: Attempt;
  /** The end of the first successful attempt, or null. */
  okEnd: number | null = null;
  /** Every gap (end to start), for jitter and immediate-retry detection. */
  gaps: number[] = NO_GAPS;
  /** The gaps the client chose itself (all but those that honoured a Retry-After), for backoff. */
  ownGaps: number[] = NO_GAPS;
  /** Gaps that honoured a Retry-After (the chain's per-index gaps mix server and client schedules). */
  raGaps = 0;
  gapCount = 0;
  immediateGaps = 0;
  raCompliant = 0;
  raViolates = 0;
  raLate = 0;
  /** Late gaps within `raJitterLimitMs` (the wait asked for, plus jitter). */
  raJittered = 0;
  unsafeRetries = 0;
  nonRetryableRetries = 0;
  duplicateSubmissions = 0;
  /** Duplicate submissions of POST/PATCH without an Idempotency-Key (nothing can de-duplicate them). */
  duplicateUnprotected = 0;
  /** This chain reused an Idempotency-Key of an earlier chain with a different body. */
  idemReuse = false;
  /** The trigger of the chain's first failure (for jitter alignment), and when it happened. */
  trigger: string | null = null;
  examples: Partial<Record<EvidenceKind, string[]>> = NO_EXAMPLES;

  constructor(
    readonly first: Attempt,
    readonly explicit: boolean,
  ) {
    this.firstTs = first.ts;
    this.firstId = first.id;
    this.maxEnd = first.end;
    this.last = first;
    this.attempts = 1;
    this.noteOutcome(first);
  }

  private noteOutcome(a: Attempt): void {
    if (a.failKind === 'ok') {
      if (this.okEnd === null) this.okEnd = a.end;
    } else {
      this.failures++;
      if (this.trigger === null) this.trigger = a.trigger;
    }
  }

  example(kind: EvidenceKind, id: string): void {
    if (this.examples === NO_EXAMPLES) this.examples = {};
    const list = (this.examples[kind] ??= []);
    if (list.length < MAX_EXAMPLES) list.push(id);
  }

  addRetry(a: Attempt, gap: number): void {
    const prev = this.last;
    this.attempts++;
    this.retries++;
    this.gapCount++;
    if (this.gaps.length < MAX_KEPT_GAPS) {
      if (this.gaps === NO_GAPS) this.gaps = [];
      this.gaps.push(gap);
    }
    this.example('retry', a.id);
    if (gap < 50) {
      this.immediateGaps++;
      this.example('immediate', a.id);
    }
    // A gap that honoured a Retry-After follows the server's schedule, not the client's own.
    const v = prev.retryAfterMs === null ? null : checkRetryAfter(gap, prev.retryAfterMs / 1000);
    // Retry-After plus a jitter of up to max(1 s, 25 %) honours it (for the client's verdict).
    const jittered = v === 'late' && gap <= raJitterLimitMs(prev.retryAfterMs as number);
    // Only an exact honouring leaves the client's own schedule: a wait of Retry-After plus up to a
    // second may as well be the client's own fixed wait (every 1.5 s under Retry-After: 1).
    if (v === 'compliant') this.raGaps++;
    else if (this.ownGaps.length < MAX_KEPT_GAPS) {
      if (this.ownGaps === NO_GAPS) this.ownGaps = [];
      this.ownGaps.push(gap);
    }
    if (v !== null) {
      if (v === 'compliant') this.raCompliant++;
      else if (v === 'violates') {
        this.raViolates++;
        this.example('raViolation', a.id);
      } else {
        this.raLate++;
        if (jittered) this.raJittered++;
        else this.example('raLate', a.id);
      }
    }
    if (a.unsafe) {
      this.unsafeRetries++;
      this.example('unsafe', a.id);
    }
    if (prev.nonRetryable) {
      this.nonRetryableRetries++;
      this.example('nonRetryable', a.id);
    }
    if (prev.lostResponse && a.submits) {
      this.duplicateSubmissions++;
      if (a.unsafe) this.duplicateUnprotected++;
      this.example('duplicate', prev.id);
      this.example('duplicate', a.id);
    }
    this.noteOutcome(a);
    this.last = a;
    if (a.end > this.maxEnd) this.maxEnd = a.end;
  }

  addHedge(a: Attempt): void {
    this.attempts++;
    this.hedges++;
    this.example('hedge', a.id);
    this.noteOutcome(a);
    if (a.end >= this.maxEnd) {
      this.maxEnd = a.end;
      this.last = a;
    }
  }

  /** The chain ended without any attempt succeeding. */
  get gaveUp(): boolean {
    return this.okEnd === null;
  }

  clone(): Chain {
    const c = Object.create(Chain.prototype) as Chain;
    Object.assign(c, this);
    c.gaps = [...this.gaps];
    c.ownGaps = [...this.ownGaps];
    const ex: Partial<Record<EvidenceKind, string[]>> = {};
    for (const [k, v] of Object.entries(this.examples)) ex[k as EvidenceKind] = [...v];
    c.examples = ex;
    return c;
  }
}

/** Where folded attempts and finished chains go (the committed aggregates, or a report overlay). */
export interface ChainSink {
  attempt(a: Attempt, role: Role, chain: Chain): void;
  chain(c: Chain): void;
  /** An attempt arrived after a later-starting attempt of its thread had been folded. */
  late(a: Attempt): void;
}

/** All attempts of one client + explicit id / fingerprint / socket endpoint. */
export class Thread {
  /** Attempts not yet folded, sorted by start. */
  pending: Attempt[] = NO_ATTEMPTS;
  /** Index of the first attempt in `pending` not yet folded. */
  private head = 0;
  chain: Chain | null = null;
  /** Start of the newest folded attempt. */
  foldedTs = Number.NEGATIVE_INFINITY;
  /** Expiry bucket (second) the thread is filed under, or null. */
  bucket: number | null = null;
  /** Attempts that arrived after a later-starting attempt of this thread was already folded. */
  late = 0;

  constructor(
    readonly key: string,
    readonly kind: 'f' | 'i' | 'k' | 'w',
  ) {}

  /** Adds an attempt in start order among the pending ones. */
  push(a: Attempt): void {
    const p = this.pending;
    if (p.length === 0) {
      this.pending = [a];
      return;
    }
    let i = p.length;
    while (i > this.head && (p[i - 1] as Attempt).ts > a.ts) i--;
    if (i === p.length) p.push(a);
    else p.splice(i, 0, a);
  }

  /** Attempts waiting to be folded. */
  get pendingCount(): number {
    return this.pending.length - this.head;
  }

  /** Folds the pending attempts that started at or before `cutoff`. */
  settle(cutoff: number, params: GroupingParams, sink: ChainSink): void {
    // `pending[head..]` is the queue: settling moves the head instead of copying the rest, and the
    // array is compacted only when the settled part outweighs it (amortised O(1) per attempt; a
    // copy per settle made one busy client O(n^2) once the reorder lag held thousands).
    const p = this.pending;
    const from = this.head;
    let n = from;
    while (n < p.length && (p[n] as Attempt).ts <= cutoff) n++;
    if (n === from) return;
    if (n === p.length) {
      this.pending = NO_ATTEMPTS;
      this.head = 0;
    } else if (n >= 1024 && n * 2 >= p.length) {
      this.pending = p.slice(n);
      this.head = 0;
    } else {
      this.head = n;
    }
    for (let i = from; i < n; i++) this.fold(p[i] as Attempt, params, sink);
  }

  /** Folds every pending attempt. */
  settleAll(params: GroupingParams, sink: ChainSink): void {
    const ready = this.pending;
    const from = this.head;
    this.pending = NO_ATTEMPTS;
    this.head = 0;
    for (let i = from; i < ready.length; i++) this.fold(ready[i] as Attempt, params, sink);
  }

  /** Finishes the open chain. */
  finish(sink: ChainSink): void {
    if (this.chain !== null) {
      sink.chain(this.chain);
      this.chain = null;
    }
  }

  /** When the open chain can no longer grow (ms), given the window. */
  chainExpiry(params: GroupingParams): number {
    const c = this.chain;
    if (c === null) return Number.NEGATIVE_INFINITY;
    const last = c.last.failKind;
    if (last === 'ok' && this.kind !== 'i' && this.kind !== 'k') return c.maxEnd + params.lagMs;
    if (last === 'fail-4xx') return c.maxEnd + Math.min(RESEND_MS, params.windowMs);
    return c.maxEnd + params.windowMs;
  }

  private start(a: Attempt, sink: ChainSink, idemReuse = false): void {
    this.finish(sink);
    const c = new Chain(a, a.explicit || this.kind === 'i' || this.kind === 'k');
    if (idemReuse) {
      c.idemReuse = true;
      c.example('idemReuse', a.id);
    }
    this.chain = c;
    sink.attempt(a, 'first', c);
  }

  /** A logical request of one attempt, finished at once; the open chain is left as it is. */
  private alone(a: Attempt, sink: ChainSink): void {
    const c = new Chain(a, a.explicit || this.kind === 'i' || this.kind === 'k');
    sink.attempt(a, 'first', c);
    sink.chain(c);
  }

  private fold(a: Attempt, params: GroupingParams, sink: ChainSink): void {
    if (a.ts < this.foldedTs) {
      this.late++;
      sink.late(a);
    } else this.foldedTs = a.ts;
    const c = this.chain;
    if (c === null) return this.start(a, sink);
    // A late attempt that ended before the open chain began (e.g. an older session's record read
    // after a newer one's) overlaps nothing: it is no hedge, and it must not end the open chain.
    // (An attempt in start order never starts before the open chain.)
    if (a.ts < c.firstTs && a.end <= c.firstTs) return this.alone(a, sink);
    if (a.attemptHint === 1) return this.start(a, sink);
    const rawGap = a.ts - c.maxEnd;
    // A hedge overlaps the chain in time: it starts before the chain's last end and (given the
    // test above) ends after the chain's first start. The tolerance absorbs timestamps of a retry
    // sent as the answer arrived (and clocks of two proxies a little apart); an attempt that starts
    // before the previous one's answer began (its ttfb; without one, its first half) was sent
    // before any answer could have come: parallel copies, however short the attempt.
    const prev = c.last;
    const answered = prev.ts + (prev.ttfb ?? (prev.end - prev.ts) / 2);
    if (rawGap < -HEDGE_TOLERANCE_MS || (rawGap < 0 && a.ts < answered)) {
      c.addHedge(a);
      sink.attempt(a, 'hedge', c);
      return;
    }
    const gap = Math.max(0, rawGap);
    let retry: boolean;
    if (a.attemptHint !== null && a.attemptHint > 1) {
      retry = gap <= params.windowMs;
    } else if (this.kind === 'i' || this.kind === 'k') {
      // A null hash means the body was never read (the client left during an injected delay, or the
      // fault answered first): unknown, not different.
      if (this.kind === 'k' && a.bodyHash !== null && c.first.bodyHash !== null && a.bodyHash !== c.first.bodyHash) return this.start(a, sink, true);
      retry = gap <= params.windowMs;
    } else if (c.last.failKind === 'fail') {
      retry = gap <= params.windowMs;
    } else if (c.last.failKind === 'fail-4xx') {
      retry = gap <= Math.min(RESEND_MS, params.windowMs);
    } else {
      retry = false; // after a success, the same request again is a new logical request
    }
    if (!retry) return this.start(a, sink);
    c.addRetry(a, gap);
    sink.attempt(a, 'retry', c);
  }

  /** A copy for a virtual report (the original keeps its pending attempts and open chain). */
  clone(): Thread {
    const t = new Thread(this.key, this.kind);
    t.pending = this.pending.slice(this.head);
    t.chain = this.chain === null ? null : this.chain.clone();
    t.foldedTs = this.foldedTs;
    t.late = this.late;
    return t;
  }
}
