/**
 * The analysis engine. One instance runs live inside the proxy (the recorder hands it every record
 * in write order) or offline over recordings (`analyzeFiles` feeds it the merged records); both
 * paths are the same calls, so they give the same report for the same records.
 *
 *   ingest(record)
 *     ├─ header / mark / event        ─▶ report metadata
 *     └─ http / ws ─▶ attempt ─┬─▶ raw counts (offered, errors, faults, NAT, fault intervals)
 *                              └─▶ thread ─settle (start order)─▶ chain ─finish─▶ aggregates
 *   sweep (as the recording's clock moves): settle threads, finish chains past their window
 *   report(): copy open threads, finish them virtually into an overlay, merge, build the report
 *
 * Memory is bounded by the caps: clients (LRU), threads (oldest ended early), families, routes,
 * timeline bins. Nothing grows with the number of records. The engine reads time only from the
 * records, never from a clock, so a replay is exact.
 */
import type { AnyRecord, ExchangeRecord, HeaderRecord } from '../record/schema.js';
import { AftershockError } from '../errors.js';
import { parseDurationOption } from '../faults/lib/duration.js';
import { type Attempt, type AttemptContext, clientKeyOf, toAttempt } from './attempt.js';
import { Aggregates, type AggregateLimits } from './aggregates.js';
import { type Chain, type ChainSink, type GroupingParams, Thread } from './chain.js';
import { DEFAULT_CACHE_BUSTING_KEYS, WS_CONNECTION_KEYS } from './normalize.js';
import { FAULT_GAP_MS, type FaultInterval } from './report.js';
import {
  freshQuality,
  type IpSeen,
  MAX_BAD_LINES,
  MAX_EVENTS,
  MAX_HEADERS,
  MAX_INTERVALS_PER_RULE,
  MAX_MARKS,
  MAX_UAS_PER_IP,
  type PartialAnalysis,
  reportOfPartial,
} from './partial.js';
import { BloomCounter, round } from './stats.js';
import type { AnalyzerOptions, BadLine, LiveTotals, QualityCounters, Report, ResolvedOptions } from './types.js';

export type { QualityCounters, ResolvedOptions } from './types.js';

/** The smallest retry window; the window grows with the largest Retry-After seen. */
export const MIN_WINDOW_MS = 120_000;
/** Client keys remembered as already counted by the Bloom filter. */
const MAX_BLOOMED = 65_536;

/** Internal sizes, for tests and the control API: they must stay flat under any load. */
export interface AnalyzerStats {
  /** Live per-client aggregates (at most `maxClients`). */
  clients: number;
  /** Summaries of evicted clients kept as worst offenders. */
  hallOfShame: number;
  /** Threads (logical requests in progress or waiting to settle). */
  threads: number;
  /** Attempts waiting to be put in start order. */
  pendingAttempts: number;
  routes: number;
  clientTypes: number;
  bins: number;
  ipsTracked: number;
  records: number;
}

/**
 * Drops the oldest tenth of an insertion-ordered map in one pass. Deleting the first key one at a
 * time is quadratic in V8 (each `keys().next()` walks over the deleted slots).
 */
function evictTenth<K, V>(map: Map<K, V>, cap: number): void {
  const target = Math.floor(cap * 0.9);
  const it = map.keys();
  while (map.size > target) {
    const next = it.next();
    if (next.done === true) break;
    map.delete(next.value);
  }
}

/** `list.includes(s)` for a few strings, as a plain loop (includes showed up per record). */
function holds(list: readonly string[], s: string): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === s) return true;
  return false;
}

/** The engine's public face (see `createAnalyzer`). */
export interface Analyzer {
  /** Feeds one record; records come in write order (roughly by `end`). */
  ingest(record: AnyRecord): void;
  /** The report so far; read-only (open chains are finished on a copy). */
  report(): Report;
  /**
   * The report's totals (attempts, logical requests, retries, their ratios) without the report:
   * the committed totals plus the open threads finished on a copy, and only the threads with
   * attempts still waiting to be folded are copied. Cheap enough for every metrics scrape.
   */
  liveTotals(): LiveTotals;
  /** What the report is built from (see `PartialAnalysis`); partitions of one file merge these. */
  partial(): PartialAnalysis;
  /**
   * An exchange that another engine handles (a partition of the same recording) ended at `end`,
   * with this Retry-After if it failed: the clock and retry window move as if this engine had
   * seen it, so its own chains settle and close at the same points as in one engine.
   */
  advanceClock(end: number, retryAfterMs: number | null): void;
  /** Forgets everything seen (the recording headers stay). */
  reset(): void;
  /** Notes a line a reader could not parse; it appears in `dataQuality.badLines`. */
  noteBadLine(line: BadLine): void;
  /** An exchange record dropped because another input had given it already. */
  noteDuplicate(): void;
  /** Internal sizes (bounded by the caps). */
  stats(): AnalyzerStats;
}


function positiveInt(name: string, v: number | undefined, def: number): number {
  if (v === undefined) return def;
  if (!Number.isInteger(v) || v < 1) throw new AftershockError('ERR_BAD_OPTION', `${name} ${JSON.stringify(v)}: give a positive integer`);
  return v;
}

function workerShare(w: AnalyzerOptions['worker']): ResolvedOptions['worker'] {
  if (w === undefined) return null;
  if (!Number.isInteger(w.of) || w.of < 1 || !Number.isInteger(w.index) || w.index < 1 || w.index > w.of) {
    throw new AftershockError('ERR_BAD_OPTION', `worker ${JSON.stringify(w)}: give { index, of } with 1 <= index <= of`);
  }
  return { index: w.index, of: w.of };
}

/** Validates options and fills defaults; throws ERR_BAD_OPTION on a malformed one. */
export function resolveOptions(o: AnalyzerOptions = {}): ResolvedOptions {
  const maxClients = positiveInt('maxClients', o.maxClients, 50_000);
  let windowMs: number | null = null;
  if (o.window !== undefined) {
    windowMs = parseDurationOption('window', o.window);
    if (!(windowMs > 0)) throw new AftershockError('ERR_BAD_OPTION', `window ${JSON.stringify(o.window)}: must be longer than 0`);
  }
  const binMs = positiveInt('binMs', o.binMs, 1000);
  const reorderLagMs = o.reorderLagMs ?? 5000;
  if (!(reorderLagMs >= 0)) throw new AftershockError('ERR_BAD_OPTION', `reorderLagMs ${JSON.stringify(o.reorderLagMs)}: give 0 or more`);
  return {
    clientKeyHeader: o.clientKeyHeader === undefined || o.clientKeyHeader === '' ? null : o.clientKeyHeader.toLowerCase(),
    worker: workerShare(o.worker),
    cacheBustingKeys: [...(o.cacheBustingKeys ?? DEFAULT_CACHE_BUSTING_KEYS)].map((k) => k.toLowerCase()),
    windowMs,
    maxClients,
    binMs,
    reorderLagMs,
    unboundedAttempts: positiveInt('unboundedAttempts', o.unboundedAttempts, 10),
    maxThreads: positiveInt('maxThreads', o.maxThreads, Math.max(10_000, 4 * maxClients)),
    maxReportedClients: positiveInt('maxReportedClients', o.maxReportedClients, 200),
    maxReportedRoutes: positiveInt('maxReportedRoutes', o.maxReportedRoutes, 100),
    maxFindingsPerCode: positiveInt('maxFindingsPerCode', o.maxFindingsPerCode, 10),
    maxBins: positiveInt('maxBins', o.maxBins, 86_400),
  };
}



function isExchange(r: Record<string, unknown>): boolean {
  return (
    typeof r.id === 'string' &&
    typeof r.ts === 'number' &&
    Number.isFinite(r.ts) &&
    typeof r.end === 'number' &&
    Number.isFinite(r.end) &&
    typeof r.client === 'string' &&
    typeof r.path === 'string' &&
    (r.status === null || typeof r.status === 'number') &&
    typeof r.headers === 'object' &&
    r.headers !== null
  );
}

/**
 * Normalises an exchange record that may come from an older or hand-written file. A record the
 * proxy wrote has every field already and is returned as it is (no copy per record); only a
 * record that lacks one is copied with the defaults filled in.
 */
function fillDefaults(r: ExchangeRecord): ExchangeRecord {
  const x = r as unknown as Record<string, unknown>;
  if (
    typeof x.ip === 'string' &&
    typeof x.method === 'string' &&
    (x.query === null || typeof x.query === 'string') &&
    x.outcome !== undefined &&
    x.fault !== undefined &&
    (x.retryAfter === null || typeof x.retryAfter === 'number') &&
    (x.userAgent === null || typeof x.userAgent === 'string')
  ) {
    return r;
  }
  return {
    ...r,
    ip: typeof x.ip === 'string' ? (x.ip as string) : '',
    method: typeof x.method === 'string' ? (x.method as string) : 'GET',
    query: typeof x.query === 'string' ? (x.query as string) : null,
    outcome: (x.outcome as ExchangeRecord['outcome']) ?? null,
    fault: (x.fault as ExchangeRecord['fault']) ?? null,
    retryAfter: typeof x.retryAfter === 'number' ? (x.retryAfter as number) : null,
    userAgent: typeof x.userAgent === 'string' ? (x.userAgent as string) : null,
  } as ExchangeRecord;
}

/** What a `records-lost` event says (see `Recorder`): lines lost since the last notice, and in all. */
interface RecordsLostDetail {
  records?: unknown;
  total?: unknown;
  instance?: unknown;
}

/** Counts the chains it is given: the totals of open chains finished for `liveTotals`. */
class ChainTotals implements ChainSink {
  attempts = 0;
  logical = 0;
  retries = 0;
  attempt(): void {}
  late(): void {}
  chain(c: Chain): void {
    this.attempts += c.attempts;
    this.logical++;
    this.retries += c.retries;
  }
}

class Engine implements Analyzer {
  private readonly opts: ResolvedOptions;
  private readonly limits: AggregateLimits;
  private readonly ctx: AttemptContext;
  private agg!: Aggregates;
  private threads = new Map<string, Thread>();
  private buckets = new Map<number, Set<Thread>>();
  private lastSwept = Number.NEGATIVE_INFINITY;
  private watermark = Number.NEGATIVE_INFINITY;
  private maxRetryAfterMs = 0;
  private readonly params: GroupingParams;
  private headers: HeaderRecord[] = [];
  private marks: Array<{ t: number; label: string }> = [];
  private events: Array<{ t: number; event: string; detail: Record<string, unknown> }> = [];
  private faultIntervals = new Map<string, FaultInterval[]>();
  /** Per IP: the User-Agents and client keys seen behind it (a few of each), for NAT detection. */
  private ips = new Map<string, IpSeen>();
  private bloom = new BloomCounter();
  /** The largest records-lost total seen per recorder instance. */
  private lostByRecorder = new Map<string, number>();
  /** Client keys recently added to `bloom` (bounded; cleared when full). */
  private bloomed = new Set<string>();
  private quality: QualityCounters = freshQuality();
  private firstTs = Number.POSITIVE_INFINITY;
  private lastEnd = Number.NEGATIVE_INFINITY;
  /** Attempts that carried the configured client key header (fallbacks only count once it is recorded at all). */
  private clientKeyHeaderSeen = 0;
  /** When `reset()` last cleared this engine (a live analysis's POST /reset), or null. */
  private resetAt: number | null = null;

  constructor(options: AnalyzerOptions) {
    this.opts = resolveOptions(options);
    this.limits = {
      maxClients: this.opts.maxClients,
      maxFamilies: 1000,
      maxRoutes: 5000,
      maxBins: this.opts.maxBins,
      maxFineBins: Math.max(10_000, this.opts.maxBins * 2),
      hallSize: this.opts.maxReportedClients,
      unboundedAttempts: this.opts.unboundedAttempts,
    };
    this.ctx = {
      cacheBusting: new Set(this.opts.cacheBustingKeys),
      wsDrop: new Set([...this.opts.cacheBustingKeys, ...WS_CONNECTION_KEYS]),
      clientKeyHeader: this.opts.clientKeyHeader,
    };
    this.params = { windowMs: this.opts.windowMs ?? MIN_WINDOW_MS, lagMs: this.opts.reorderLagMs };
    this.agg = new Aggregates(this.limits, this.opts.binMs);
  }

  ingest(record: AnyRecord): void {
    const r = record as unknown as Record<string, unknown>;
    if (r === null || typeof r !== 'object') {
      this.quality.invalidRecords++;
      return;
    }
    const type = typeof r.type === 'string' ? r.type : '(none)';
    const q = this.quality;
    q.records++;
    q.recordsByType[type] = (q.recordsByType[type] ?? 0) + 1;
    if (typeof r.v === 'number' && r.v > 1) q.newerSchemaRecords++;
    switch (type) {
      case 'header':
        if (this.headers.length < MAX_HEADERS) this.headers.push(record as HeaderRecord);
        return;
      case 'mark':
        if (typeof r.ts === 'number' && this.marks.length < MAX_MARKS) this.marks.push({ t: r.ts, label: String(r.label ?? '') });
        return;
      case 'event':
        // The proxy's own note of records it could not write: the gap in this data.
        if (r.event === 'records-lost') this.noteRecordsLost(r.detail as RecordsLostDetail | undefined);
        if (typeof r.ts === 'number' && this.events.length < MAX_EVENTS) {
          this.events.push({ t: r.ts, event: String(r.event ?? ''), detail: (r.detail as Record<string, unknown>) ?? {} });
        }
        return;
      case 'ws-message':
        return;
      case 'http':
      case 'ws':
        if (!isExchange(r)) {
          q.invalidRecords++;
          return;
        }
        this.exchange(fillDefaults(record as ExchangeRecord));
        return;
      default:
        q.unknownRecords++;
    }
  }

  private exchange(r: ExchangeRecord): void {
    // Without a client key header (the default) the key is the recorded one: no object per record.
    let key = r.client;
    let fallback = false;
    if (this.ctx.clientKeyHeader !== null) ({ key, fallback } = clientKeyOf(r, this.ctx));
    if (fallback) this.quality.clientKeyFallbacks++;
    const a = toAttempt(r, this.ctx, key);
    if (a.ts < this.firstTs) this.firstTs = a.ts;
    if (a.end > this.lastEnd) this.lastEnd = a.end;
    if (a.retryAfterMs !== null) this.noteRetryAfter(a.retryAfterMs);
    this.raw(a, fallback);
    let t = this.threads.get(a.thread);
    if (t === undefined) {
      t = new Thread(a.thread, a.thread[0] as 'f' | 'i' | 'k' | 'w');
      this.threads.set(a.thread, t);
    }
    t.push(a);
    if (a.end > this.watermark) this.watermark = a.end;
    t.settle(this.watermark - this.params.lagMs, this.params, this.agg);
    this.schedule(t);
    this.sweep();
    if (this.threads.size > this.opts.maxThreads) this.evictOldThreads();
  }

  /**
   * Each recorder's notices carry its running total: the largest one seen per recorder is what it
   * lost (a notice that was itself lost is covered by the next). Without a total, the count adds up.
   */
  private noteRecordsLost(d: RecordsLostDetail | undefined): void {
    if (d === undefined || d === null) return;
    const { total, instance, records } = d;
    if (typeof total === 'number' && Number.isFinite(total) && typeof instance === 'string') {
      const before = this.lostByRecorder.get(instance) ?? 0;
      if (total > before) {
        this.lostByRecorder.set(instance, total);
        this.quality.recordsLost += total - before;
      }
    } else if (typeof records === 'number' && Number.isFinite(records) && records > 0) this.quality.recordsLost += records;
  }

  advanceClock(end: number, retryAfterMs: number | null): void {
    if (retryAfterMs !== null) this.noteRetryAfter(retryAfterMs);
    if (end > this.watermark) this.watermark = end;
    this.sweep();
  }

  /** The retry window grows with the largest Retry-After seen (unless the window was given). */
  private noteRetryAfter(ms: number): void {
    if (ms <= this.maxRetryAfterMs) return;
    this.maxRetryAfterMs = ms;
    if (this.opts.windowMs === null) this.params.windowMs = Math.max(MIN_WINDOW_MS, 1.5 * this.maxRetryAfterMs + 5000);
  }

  /** Counts that do not depend on grouping: offered load, errors, faults, NAT, fault intervals. */
  private raw(a: Attempt, fallbackSeen: boolean): void {
    this.agg.raw(a);
    // A key already added to the Bloom filter is never new again: skip its two hashes.
    if (!this.bloomed.has(a.client)) {
      if (this.bloomed.size >= MAX_BLOOMED) this.bloomed.clear();
      this.bloomed.add(a.client);
      if (this.bloom.add(a.client)) this.agg.family(a.family).clients++;
    }
    // A fault on an open WebSocket acted at the end of the connection, not over its life (a socket
    // open for minutes would otherwise be one long fault window, baseline and aftermath gone).
    const start = a.ws && a.status === 101 ? a.end : a.ts;
    if (a.injected) {
      this.quality.injectedFaults++;
      if (a.injectedFailure) this.quality.injectedFailures++;
      this.addFaultInterval(a.faultRule ?? '(unnamed)', start, a.end);
    }
    // Every rule that injected into the exchange had its window then, not only the deciding one.
    if (a.otherFaultRules !== null) for (const rule of a.otherFaultRules) this.addFaultInterval(rule, start, a.end);
    if (a.userAgent !== null && a.ip !== '') {
      let seen = this.ips.get(a.ip);
      if (seen === undefined) {
        if (this.ips.size >= this.opts.maxClients) evictTenth(this.ips, this.opts.maxClients);
        seen = { uas: [], keys: [] };
        this.ips.set(a.ip, seen);
      }
      if (seen.uas.length < MAX_UAS_PER_IP && !holds(seen.uas, a.userAgent)) seen.uas.push(a.userAgent);
      if (seen.keys.length <= MAX_UAS_PER_IP && !holds(seen.keys, a.client)) seen.keys.push(a.client);
    }
    if (this.opts.clientKeyHeader !== null && !fallbackSeen) this.clientKeyHeaderSeen++;
  }

  private addFaultInterval(rule: string, start: number, end: number): void {
    let list = this.faultIntervals.get(rule);
    if (list === undefined) {
      list = [];
      this.faultIntervals.set(rule, list);
    }
    // Find the first interval that ends at or after start - gap (lists are short and mostly appended to).
    let i = list.length;
    while (i > 0 && (list[i - 1] as FaultInterval).end >= start - FAULT_GAP_MS) i--;
    const cur: FaultInterval = { start, end, faults: 1 };
    let j = i;
    while (j < list.length && (list[j] as FaultInterval).start <= end + FAULT_GAP_MS) {
      const o = list[j] as FaultInterval;
      cur.start = Math.min(cur.start, o.start);
      cur.end = Math.max(cur.end, o.end);
      cur.faults += o.faults;
      j++;
    }
    if (j === i && list.length >= MAX_INTERVALS_PER_RULE) return;
    list.splice(i, j - i, cur);
  }

  /** Files the thread under the second at which it next needs attention. */
  private schedule(t: Thread): void {
    const due =
      t.pendingCount > 0 ? (t.pending[t.pending.length - 1] as Attempt).ts + this.params.lagMs : t.chainExpiry(this.params);
    let s = Math.floor(due / 1000) + 1;
    if (s <= this.lastSwept) s = this.lastSwept + 1;
    if (t.bucket === s) return;
    if (t.bucket !== null) this.buckets.get(t.bucket)?.delete(t);
    let set = this.buckets.get(s);
    if (set === undefined) {
      set = new Set();
      this.buckets.set(s, set);
    }
    set.add(t);
    t.bucket = s;
  }

  /** Processes every bucket the recording's clock has passed. */
  private sweep(): void {
    const now = Math.floor(this.watermark / 1000);
    if (now <= this.lastSwept) return;
    if (this.lastSwept === Number.NEGATIVE_INFINITY || now - this.lastSwept > 4096) {
      const due = [...this.buckets.keys()].filter((s) => s <= now).sort((a, b) => a - b);
      this.lastSwept = now;
      for (const s of due) this.runBucket(s);
      return;
    }
    const from = this.lastSwept + 1;
    this.lastSwept = now;
    for (let s = from; s <= now; s++) this.runBucket(s);
  }

  private runBucket(s: number): void {
    const set = this.buckets.get(s);
    if (set === undefined) return;
    this.buckets.delete(s);
    for (const t of set) {
      t.bucket = null;
      t.settle(this.watermark - this.params.lagMs, this.params, this.agg);
      if (t.pendingCount === 0 && t.chainExpiry(this.params) < this.watermark) {
        t.finish(this.agg);
        this.threads.delete(t.key);
      } else {
        this.schedule(t);
      }
    }
  }

  /** Ends the oldest tenth of the threads early (one pass; see `evictTenth`). */
  private evictOldThreads(): void {
    const target = Math.floor(this.opts.maxThreads * 0.9);
    const it = this.threads.values();
    while (this.threads.size > target) {
      const next = it.next();
      if (next.done === true) break;
      const t = next.value;
      this.threads.delete(t.key);
      if (t.bucket !== null) this.buckets.get(t.bucket)?.delete(t);
      t.bucket = null;
      t.settleAll(this.params, this.agg);
      t.finish(this.agg);
      this.quality.threadsEvicted++;
    }
  }

  report(): Report {
    const report = reportOfPartial(this.partial(), this.opts);
    if (this.resetAt === null) return report;
    // A live analysis cleared by POST /reset: the shutdown summary and /report cover what came
    // after it, which nothing else in them says.
    return {
      ...report,
      limits: [
        ...report.limits,
        `The live analysis was reset (POST /reset) after the exchange that ended at ${new Date(this.resetAt).toISOString()}: this report covers only what came after. The recording holds the whole run (aftershock analyze).`,
      ],
    };
  }

  liveTotals(): LiveTotals {
    const open = new ChainTotals();
    for (const t of this.threads.values()) {
      if (t.pendingCount === 0) {
        if (t.chain !== null) open.chain(t.chain);
        continue;
      }
      const c = t.clone();
      c.settleAll(this.params, open);
      c.finish(open);
    }
    const done = this.agg.totals;
    const attempts = done.attempts + open.attempts;
    const logicalRequests = done.logical + open.logical;
    const retries = done.retries + open.retries;
    return {
      attempts,
      logicalRequests,
      retries,
      retryRatio: round(attempts === 0 ? 0 : retries / attempts, 4),
      amplification: round(logicalRequests === 0 ? 0 : attempts / logicalRequests, 4),
    };
  }

  /**
   * Everything the report is built from, with the open chains finished on a copy (the engine's
   * state does not change). Arrays and maps are the engine's own: read them, do not keep them.
   */
  partial(): PartialAnalysis {
    const overlay = new Aggregates({ ...this.limits, maxClients: Number.MAX_SAFE_INTEGER }, this.agg.binMs);
    for (const t of this.threads.values()) {
      const c = t.clone();
      c.settleAll(this.params, overlay);
      c.finish(overlay);
    }
    return {
      agg: this.agg.mergedWith(overlay),
      windowMs: this.params.windowMs,
      faultIntervals: this.faultIntervals,
      headers: this.headers,
      marks: this.marks,
      events: this.events,
      quality: this.quality,
      distinctClients: this.bloom.distinct,
      ips: this.ips,
      firstTs: Number.isFinite(this.firstTs) ? this.firstTs : null,
      lastEnd: Number.isFinite(this.lastEnd) ? this.lastEnd : null,
      clientKeyHeaderSeen: this.clientKeyHeaderSeen,
    };
  }

  reset(): void {
    // Record time, as everything here: the end of the last exchange before the reset.
    if (Number.isFinite(this.lastEnd)) this.resetAt = this.lastEnd; // nothing seen yet: nothing was dropped
    this.agg = new Aggregates(this.limits, this.opts.binMs);
    this.threads = new Map();
    this.buckets = new Map();
    this.lastSwept = Number.NEGATIVE_INFINITY;
    this.watermark = Number.NEGATIVE_INFINITY;
    this.maxRetryAfterMs = 0;
    this.params.windowMs = this.opts.windowMs ?? MIN_WINDOW_MS;
    this.marks = [];
    this.events = [];
    this.faultIntervals = new Map();
    this.ips = new Map();
    this.bloom.clear();
    this.bloomed.clear();
    this.quality = freshQuality();
    this.firstTs = Number.POSITIVE_INFINITY;
    this.lastEnd = Number.NEGATIVE_INFINITY;
    this.clientKeyHeaderSeen = 0;
  }

  noteDuplicate(): void {
    this.quality.duplicateRecords++;
  }

  noteBadLine(line: BadLine): void {
    this.quality.badLines++;
    if (this.quality.badLineList.length < MAX_BAD_LINES) this.quality.badLineList.push(line);
  }

  stats(): AnalyzerStats {
    let pending = 0;
    for (const t of this.threads.values()) pending += t.pendingCount;
    return {
      clients: this.agg.clients.size,
      hallOfShame: this.agg.hall.size,
      threads: this.threads.size,
      pendingAttempts: pending,
      routes: this.agg.routes.size,
      clientTypes: this.agg.families.size,
      bins: this.agg.bins.size,
      ipsTracked: this.ips.size,
      records: this.quality.records,
    };
  }
}

/**
 * Creates an analysis engine.
 *
 * @example
 * const analyzer = createAnalyzer({ maxClients: 10_000 });
 * recorder.addListener((r) => analyzer.ingest(r));
 * // ... later, any number of times:
 * const report = analyzer.report();
 * console.log(report.verdict, report.totals.amplification);
 */
export function createAnalyzer(options: AnalyzerOptions = {}): Analyzer {
  return new Engine(options);
}
