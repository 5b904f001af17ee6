/**
 * Which attempt of a logical request is this? The engine's live version of RETRY-ANALYSIS.md §3,
 * for `firstAttempts` and `retriesOnly`.
 *
 *   key  = explicit id (amz-sdk-invocation-id; Idempotency-Key + client)
 *          else fingerprint H(client key, method, path, canonical query without t, _, ts, nonce)
 *   attempt n+1 when the chain's previous attempt FAILED (injected fault, 5xx, 429, 408, no
 *          response, reset/timeout/abort) and this one starts within W of its end (default 120 s);
 *   else attempt 1: after a success the same fingerprint is a new logical request (polling is not
 *          retrying); an attempt that starts while the previous one is still in flight is a hedge.
 *   Retry headers raise the count when present: amz-sdk-request `attempt=N`,
 *          x-envoy-attempt-count N, grpc-previous-rpc-attempts N-1.
 *
 * The body is not known when the engine decides (it streams later), so unlike the offline analysis
 * the fingerprint has no body hash: two different POSTs to one path from one client in quick
 * succession after a failure count as one chain.
 *
 * Memory is bounded: at most `cap` chains (least recently touched evicted first), and a chain
 * older than W is dead and swept.
 */
import type { RequestFacts } from '../faults/types.js';
import { hash53 } from './hash.js';

/** Query keys that only bust caches; dropped from the fingerprint. */
export const CACHE_BUSTING_KEYS: ReadonlySet<string> = new Set(['t', '_', 'ts', 'nonce']);
/** A WebSocket's endpoint also drops the keys that are new on every connection (as the analysis does). */
const WS_DROP: ReadonlySet<string> = new Set([...CACHE_BUSTING_KEYS, 'sid', 'id', 'connectiontoken', 'connectionid', 'token', 'access_token', 'jwt', 'auth']);

export interface AttemptTrackerOptions {
  /** W: how long after a failed attempt a new one still continues its chain (ms); default 120 s. */
  windowMs?: number;
  /** Most chains kept; default 100,000. */
  cap?: number;
}

interface Chain {
  /** Attempts so far in the current logical request. */
  attempts: number;
  /** End of the last settled attempt (ms). */
  lastEnd: number;
  lastFailed: boolean;
  inFlight: number;
  /** Last touched, for sweeping. */
  touched: number;
}

/** The attempt number and the chain it belongs to. */
export interface AttemptInfo {
  readonly key: number;
  readonly attempt: number;
}

export class AttemptTracker {
  readonly windowMs: number;
  readonly cap: number;
  private readonly chains = new Map<number, Chain>();

  constructor(opts: AttemptTrackerOptions = {}) {
    this.windowMs = opts.windowMs ?? 120_000;
    this.cap = opts.cap ?? 100_000;
  }

  get size(): number {
    return this.chains.size;
  }

  /** The chain key of a request: explicit ids first, else the fingerprint. */
  static keyOf(facts: RequestFacts): number {
    const h = facts.headers;
    const inv = h['amz-sdk-invocation-id'];
    if (typeof inv === 'string' && inv !== '') return hash53('inv\n' + inv);
    const idem = h['idempotency-key'];
    if (typeof idem === 'string' && idem !== '') return hash53('idem\n' + facts.clientKey + '\n' + idem);
    if (facts.websocket) return hash53('ws\n' + facts.clientKey + '\n' + facts.method + '\n' + facts.path + '\n' + canonicalQuery(facts.query, WS_DROP));
    return hash53(facts.clientKey + '\n' + facts.method + '\n' + facts.path + '\n' + canonicalQuery(facts.query));
  }

  /** The attempt number a retry header announces, or 0. */
  static hinted(facts: RequestFacts): number {
    const h = facts.headers;
    let n = 0;
    const amz = h['amz-sdk-request'];
    if (typeof amz === 'string') {
      const m = /(?:^|;)\s*attempt=(\d+)/.exec(amz);
      if (m !== null) n = Math.max(n, Number(m[1]));
    }
    const envoy = h['x-envoy-attempt-count'];
    if (typeof envoy === 'string' && /^\d+$/.test(envoy)) n = Math.max(n, Number(envoy));
    const grpc = h['grpc-previous-rpc-attempts'];
    if (typeof grpc === 'string' && /^\d+$/.test(grpc)) n = Math.max(n, Number(grpc) + 1);
    return Math.min(n, 1_000_000);
  }

  /** Called when an attempt starts: which attempt of its logical request is it? */
  begin(facts: RequestFacts, now: number): AttemptInfo {
    const key = AttemptTracker.keyOf(facts);
    const chain = this.chains.get(key);
    let attempt = 1;
    if (chain !== undefined && chain.inFlight === 0 && chain.lastFailed && now - chain.lastEnd <= this.windowMs) {
      attempt = chain.attempts + 1;
    }
    const hint = AttemptTracker.hinted(facts);
    if (hint > attempt) attempt = hint;
    this.touch(key, chain, now, attempt);
    return { key, attempt };
  }

  /** Called when the attempt's exchange is over. */
  end(info: AttemptInfo, now: number, failed: boolean): void {
    const chain = this.chains.get(info.key);
    if (chain === undefined) {
      // Evicted while in flight: remember the outcome anyway.
      this.insert(info.key, { attempts: info.attempt, lastEnd: now, lastFailed: failed, inFlight: 0, touched: now }, now);
      return;
    }
    if (chain.inFlight > 0) chain.inFlight--;
    chain.attempts = info.attempt;
    chain.lastEnd = now;
    chain.lastFailed = failed;
    chain.touched = now;
  }

  clear(): void {
    this.chains.clear();
  }

  private touch(key: number, chain: Chain | undefined, now: number, attempt: number): void {
    if (chain === undefined) {
      this.insert(key, { attempts: attempt, lastEnd: now, lastFailed: false, inFlight: 1, touched: now }, now);
      return;
    }
    chain.inFlight++;
    chain.attempts = Math.max(chain.attempts, attempt);
    chain.touched = now;
    // Most recently used last: re-insert.
    this.chains.delete(key);
    this.chains.set(key, chain);
  }

  private insert(key: number, chain: Chain, now: number): void {
    this.sweep(now);
    if (this.chains.size >= this.cap) {
      const oldest = this.chains.keys().next().value as number;
      this.chains.delete(oldest);
    }
    this.chains.set(key, chain);
  }

  /** Drops chains untouched for longer than W (oldest first; stops at the first live one). */
  private sweep(now: number): void {
    let n = 0;
    for (const [k, c] of this.chains) {
      if (n++ >= 64 || now - c.touched <= this.windowMs) break;
      if (c.inFlight === 0) this.chains.delete(k);
    }
  }
}

/**
 * The query, canonical: cache-busting keys dropped, pairs sorted.
 *
 * @example canonicalQuery('b=2&t=123&a=1') === 'a=1&b=2'
 */
export function canonicalQuery(query: string | null, drop: ReadonlySet<string> = CACHE_BUSTING_KEYS): string {
  if (query === null || query === '') return '';
  const parts = query.split('&').filter((p) => {
    if (p === '') return false;
    const eq = p.indexOf('=');
    return !drop.has((eq === -1 ? p : p.slice(0, eq)).toLowerCase());
  });
  return parts.length <= 1 ? (parts[0] ?? '') : parts.sort().join('&');
}
