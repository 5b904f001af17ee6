/**
 * The aggregates the report is read from: per client, per client type (User-Agent family), per
 * route, per time bin, and totals. Each is a fixed-size summary of the chains that finished, so the
 * memory they take is O(clients + routes + seconds), never O(records):
 *
 *   clients    an LRU map capped at `maxClients`; an evicted client's summary goes to a small
 *              "hall" of the worst offenders (so a storm's culprit is not forgotten under churn),
 *              and its findings are tallied first (so "N clients in all" counts every client)
 *   families   capped; chains of a family beyond the cap are summed under "(other)"
 *   routes     capped the same way
 *   timeline   1 s bins; past `maxBins` the bins are merged pairwise (bin width doubles)
 *
 * Every class can merge and clone: a report merges the committed aggregates with an overlay built
 * from the chains still open, without touching the committed state (`report()` is read-only).
 */
import type { Attempt } from './attempt.js';
import type { BackoffResult, Votes } from './backoff.js';
import { BACKOFF_CLASSES, BACKOFF_THRESHOLDS, classifyBackoff } from './backoff.js';
import type { Chain, ChainSink, EvidenceKind, Role } from './chain.js';
import { MAX_EXAMPLES } from './chain.js';
import { clientFindingCodes } from './findings.js';
import { BloomCounter, CountHistogram, StrideReservoir, Welford } from './stats.js';
import type { FindingCode } from './types.js';

/** Attempt indexes (gap 1..N) summarised per client and per client type. */
export const GAP_INDEXES = 6;
/** Samples kept per attempt index for a client type's median gaps and jitter. */
const RESERVOIR = 256;
/** Jitter trigger groups kept per client type, and clients tracked per group. */
const MAX_TRIGGERS = 8;
const MAX_GROUP_CLIENTS = 64;
const MAX_CLIENT_FIRST_GAPS = 8;
/** A per-index central gap counts only if at least this share of the first index's chains reached it. */
export const SERIES_MIN_SHARE = 0.25;

export { BACKOFF_CLASSES, type Votes } from './backoff.js';

const noVotes = (): Votes => ({ immediate: 0, constant: 0, linear: 0, exponential: 0, irregular: 0, 'insufficient-data': 0 });

function addVotes(a: Votes, b: Votes): void {
  for (const k of BACKOFF_CLASSES) a[k] += b[k];
}

function mergeExamples(into: Partial<Record<EvidenceKind, string[]>>, from: Partial<Record<EvidenceKind, string[]>>): void {
  for (const [k, v] of Object.entries(from)) {
    const list = (into[k as EvidenceKind] ??= []);
    for (const id of v) if (list.length < MAX_EXAMPLES && !list.includes(id)) list.push(id);
  }
}


/** Where client types and routes beyond their caps are summed. */
export const OTHER_FAMILY = '(other)';
export const OTHER_ROUTES = '(other routes)';

/** Counters every level (client, type, route, totals) shares. */
export class Counts {
  attempts = 0;
  logical = 0;
  retries = 0;
  hedges = 0;
  failures = 0;
  /** Logical requests that ended in a success. */
  succeeded = 0;
  gaveUp = 0;
  unbounded = 0;
  unsafeRetries = 0;
  nonRetryableRetries = 0;
  duplicateSubmissions = 0;
  duplicateUnprotected = 0;
  idemReuse = 0;
  raCompliant = 0;
  raViolates = 0;
  raLate = 0;
  raJittered = 0;
  immediateGaps = 0;
  gapCount = 0;
  /** Chains and retries grouped by explicit ids (high confidence) vs fingerprints (medium). */
  chainsHigh = 0;
  retriesHigh = 0;
  hist = new CountHistogram();
  /** Attempts of chains that gave up (the give-up point). */
  giveUp = new CountHistogram();
  votes: Votes = noVotes();
  /** The votes of chains classified from 3+ gaps (only these can make a class `high` confidence). */
  deepVotes: Votes = noVotes();
  examples: Partial<Record<EvidenceKind, string[]>> = {};
  /** Route of the first example of each kind of evidence. */
  exampleRoutes: Partial<Record<EvidenceKind, string>> = {};

  addChain(c: Chain, cls: BackoffResult, unboundedAttempts: number): void {
    this.attempts += c.attempts;
    this.logical++;
    this.retries += c.retries;
    this.hedges += c.hedges;
    this.failures += c.failures;
    if (c.okEnd !== null) this.succeeded++;
    else {
      this.gaveUp++;
      this.giveUp.add(c.attempts);
    }
    // Hedges run beside an attempt in flight: only the first attempt and the retries count here.
    const unbounded = c.attempts - c.hedges > unboundedAttempts;
    if (unbounded) this.unbounded++;
    this.unsafeRetries += c.unsafeRetries;
    this.nonRetryableRetries += c.nonRetryableRetries;
    this.duplicateSubmissions += c.duplicateSubmissions;
    this.duplicateUnprotected += c.duplicateUnprotected;
    if (c.idemReuse) this.idemReuse++;
    this.raCompliant += c.raCompliant;
    this.raViolates += c.raViolates;
    this.raLate += c.raLate;
    this.raJittered += c.raJittered;
    this.immediateGaps += c.immediateGaps;
    this.gapCount += c.gapCount;
    if (c.explicit) {
      this.chainsHigh++;
      this.retriesHigh += c.retries;
    }
    this.hist.add(c.attempts);
    this.votes[cls.class]++;
    if (cls.gaps >= BACKOFF_THRESHOLDS.highConfidenceGaps) this.deepVotes[cls.class]++;
    const route = c.first.route;
    // for-in, not Object.entries: same (insertion) order, no array per chain when there are none.
    for (const k in c.examples) {
      const kind = k as EvidenceKind;
      const ids = c.examples[kind] as string[];
      const list = (this.examples[kind] ??= []);
      if (list.length === 0) this.exampleRoutes[kind] = route;
      for (const id of ids) if (list.length < MAX_EXAMPLES) list.push(id);
    }
    if (unbounded) {
      const list = (this.examples.unbounded ??= []);
      if (list.length === 0) this.exampleRoutes.unbounded = route;
      if (list.length < MAX_EXAMPLES) list.push(c.firstId);
    }
  }

  mergeCounts(o: Counts): void {
    this.attempts += o.attempts;
    this.logical += o.logical;
    this.retries += o.retries;
    this.hedges += o.hedges;
    this.failures += o.failures;
    this.succeeded += o.succeeded;
    this.gaveUp += o.gaveUp;
    this.unbounded += o.unbounded;
    this.unsafeRetries += o.unsafeRetries;
    this.nonRetryableRetries += o.nonRetryableRetries;
    this.duplicateSubmissions += o.duplicateSubmissions;
    this.duplicateUnprotected += o.duplicateUnprotected;
    this.idemReuse += o.idemReuse;
    this.raCompliant += o.raCompliant;
    this.raViolates += o.raViolates;
    this.raLate += o.raLate;
    this.raJittered += o.raJittered;
    this.immediateGaps += o.immediateGaps;
    this.gapCount += o.gapCount;
    this.chainsHigh += o.chainsHigh;
    this.retriesHigh += o.retriesHigh;
    this.hist.merge(o.hist);
    this.giveUp.merge(o.giveUp);
    addVotes(this.votes, o.votes);
    addVotes(this.deepVotes, o.deepVotes);
    for (const [k, r] of Object.entries(o.exampleRoutes)) this.exampleRoutes[k as EvidenceKind] ??= r;
    mergeExamples(this.examples, o.examples);
  }
}

/** One client (one client key value). */
export class ClientAgg extends Counts {
  /** Geometric mean of the k-th gap over the client's chains (log-space Welford); allocated on the first gap. */
  logGaps: Welford[] | null = null;
  lastTs = 0;
  /** When the client was last used (the table's clock), for least-recently-used eviction. */
  touched = 0;

  constructor(
    readonly key: string,
    public userAgent: string | null,
    public ip: string,
    public family: string,
  ) {
    super();
  }

  addClientChain(c: Chain, cls: BackoffResult, unboundedAttempts: number): void {
    this.addChain(c, cls, unboundedAttempts);
    if (c.raGaps === 0 && c.gaps.length > 0) {
      const lg = (this.logGaps ??= Array.from({ length: GAP_INDEXES }, () => new Welford()));
      for (let k = 0; k < Math.min(GAP_INDEXES, c.gaps.length); k++) (lg[k] as Welford).add(Math.log(Math.max(c.gaps[k] as number, 1)));
    }
    if (c.maxEnd > this.lastTs) this.lastTs = c.maxEnd;
  }

  merge(o: ClientAgg): void {
    this.mergeCounts(o);
    if (o.logGaps !== null) {
      const lg = (this.logGaps ??= Array.from({ length: GAP_INDEXES }, () => new Welford()));
      for (let k = 0; k < GAP_INDEXES; k++) (lg[k] as Welford).merge(o.logGaps[k] as Welford);
    }
    if (o.lastTs > this.lastTs) this.lastTs = o.lastTs;
  }

  clone(): ClientAgg {
    const c = new ClientAgg(this.key, this.userAgent, this.ip, this.family);
    c.merge(this);
    return c;
  }

  /** Chains with at least one gap: the chains behind the series' first index. */
  get gapChains(): number {
    return this.logGaps === null ? 0 : (this.logGaps[0] as Welford).n;
  }

  /**
   * The central gap per attempt index (geometric mean), for indexes seen in `min` chains (in all of
   * them when the client has fewer: one chain's own gaps are its schedule, base and factor included).
   */
  gapSeries(min = 3): number[] {
    const out: number[] = [];
    if (this.logGaps === null) return out;
    const n0 = (this.logGaps[0] as Welford).n;
    min = Math.min(min, n0);
    if (min === 0) return out;
    for (const w of this.logGaps) {
      // Indexes only a few long chains reach (often two logical requests joined) would skew the series.
      if (w.n < Math.max(min, SERIES_MIN_SHARE * n0)) break;
      out.push(Math.exp(w.mean));
    }
    return out;
  }

  /** How badly this client behaves, for keeping the worst when clients must be dropped. */
  get badness(): number {
    return this.unbounded * 1000 + this.duplicateSubmissions * 100 + this.raViolates * 20 + this.unsafeRetries * 10 + this.immediateGaps * 5 + this.nonRetryableRetries * 5 + this.retries * 2 + this.attempts;
  }
}

/** Chains of one client type started by one trigger, lined up by attempt index (spec §5). */
export class JitterGroup {
  byIndex: StrideReservoir[] = Array.from({ length: GAP_INDEXES }, () => new StrideReservoir(RESERVOIR));
  ratios = new StrideReservoir(RESERVOIR);
  clients = new Map<string, number[]>();

  add(c: Chain): void {
    const g = c.gaps;
    for (let k = 0; k < Math.min(GAP_INDEXES, g.length); k++) (this.byIndex[k] as StrideReservoir).add(g[k] as number);
    if (g.length >= 2 && (g[0] as number) > 0) this.ratios.add((g[1] as number) / (g[0] as number));
    if (g.length === 0) return;
    const key = c.first.client;
    let mine = this.clients.get(key);
    if (mine === undefined) {
      if (this.clients.size >= MAX_GROUP_CLIENTS) return;
      mine = [];
      this.clients.set(key, mine);
    }
    if (mine.length < MAX_CLIENT_FIRST_GAPS) mine.push(g[0] as number);
  }

  merge(o: JitterGroup): void {
    for (let k = 0; k < GAP_INDEXES; k++) (this.byIndex[k] as StrideReservoir).merge(o.byIndex[k] as StrideReservoir);
    this.ratios.merge(o.ratios);
    for (const [key, gaps] of o.clients) {
      let mine = this.clients.get(key);
      if (mine === undefined) {
        if (this.clients.size >= MAX_GROUP_CLIENTS) continue;
        mine = [];
        this.clients.set(key, mine);
      }
      for (const x of gaps) if (mine.length < MAX_CLIENT_FIRST_GAPS) mine.push(x);
    }
  }

  clone(): JitterGroup {
    const j = new JitterGroup();
    j.merge(this);
    return j;
  }

  get samples(): number {
    return (this.byIndex[0] as StrideReservoir).count;
  }
}

/** One client type (User-Agent family). */
export class FamilyAgg extends Counts {
  /** Distinct clients seen with this family (counted at ingest, Bloom-filtered). */
  clients = 0;
  gapsByIndex: StrideReservoir[] = Array.from({ length: GAP_INDEXES }, () => new StrideReservoir(RESERVOIR));
  groups = new Map<string, JitterGroup>();
  exampleClients: string[] = [];
  userAgents: string[] = [];

  constructor(readonly family: string) {
    super();
  }

  addFamilyChain(c: Chain, cls: BackoffResult, unboundedAttempts: number): void {
    this.addChain(c, cls, unboundedAttempts);
    if (c.raGaps === 0) for (let k = 0; k < Math.min(GAP_INDEXES, c.gaps.length); k++) (this.gapsByIndex[k] as StrideReservoir).add(c.gaps[k] as number);
    if (c.gaps.length > 0 && c.trigger !== null) {
      let g = this.groups.get(c.trigger);
      if (g === undefined && this.groups.size < MAX_TRIGGERS) {
        g = new JitterGroup();
        this.groups.set(c.trigger, g);
      }
      g?.add(c);
    }
    if (this.exampleClients.length < MAX_EXAMPLES && !this.exampleClients.includes(c.first.client)) this.exampleClients.push(c.first.client);
    const ua = c.first.userAgent;
    if (ua !== null && this.userAgents.length < MAX_EXAMPLES && !this.userAgents.includes(ua)) this.userAgents.push(ua);
  }

  merge(o: FamilyAgg): void {
    this.mergeCounts(o);
    this.clients += o.clients;
    for (let k = 0; k < GAP_INDEXES; k++) (this.gapsByIndex[k] as StrideReservoir).merge(o.gapsByIndex[k] as StrideReservoir);
    for (const [t, g] of o.groups) {
      const mine = this.groups.get(t);
      if (mine !== undefined) mine.merge(g);
      else if (this.groups.size < MAX_TRIGGERS) this.groups.set(t, g.clone());
    }
    for (const c of o.exampleClients) if (this.exampleClients.length < MAX_EXAMPLES && !this.exampleClients.includes(c)) this.exampleClients.push(c);
    for (const u of o.userAgents) if (this.userAgents.length < MAX_EXAMPLES && !this.userAgents.includes(u)) this.userAgents.push(u);
  }

  clone(): FamilyAgg {
    const f = new FamilyAgg(this.family);
    f.merge(this);
    return f;
  }
}

/** One route (method + normalised path). */
export class RouteAgg extends Counts {
  constructor(readonly route: string) {
    super();
  }

  merge(o: RouteAgg): void {
    this.mergeCounts(o);
  }

  clone(): RouteAgg {
    const r = new RouteAgg(this.route);
    r.merge(this);
    return r;
  }
}

/** One time bin. */
export interface Bin {
  offered: number;
  organic: number;
  retries: number;
  hedges: number;
  goodput: number;
  errors: number;
  faults: number;
}

const emptyBin = (): Bin => ({ offered: 0, organic: 0, retries: 0, hedges: 0, goodput: 0, errors: 0, faults: 0 });

export function addBin(a: Bin, b: Bin): void {
  a.offered += b.offered;
  a.organic += b.organic;
  a.retries += b.retries;
  a.hedges += b.hedges;
  a.goodput += b.goodput;
  a.errors += b.errors;
  a.faults += b.faults;
}

/** Retry arrivals are also counted in 100 ms bins for herd detection. */
export const FINE_BIN_MS = 100;

export interface AggregateLimits {
  maxClients: number;
  maxFamilies: number;
  maxRoutes: number;
  maxBins: number;
  maxFineBins: number;
  hallSize: number;
  unboundedAttempts: number;
}

/** Everything a report is built from; receives folded attempts and finished chains. */
export class Aggregates implements ChainSink {
  totals = new Counts();
  clients = new Map<string, ClientAgg>();
  /** The worst clients evicted from `clients` (bounded by `hallSize`). */
  hall = new Map<string, ClientAgg>();
  hallMin = 0;
  evictedClients = 0;
  families = new Map<string, FamilyAgg>();
  routes = new Map<string, RouteAgg>();
  bins = new Map<number, Bin>();
  fine = new Map<number, number>();
  fineDropped = 0;
  /** Attempts folded out of start order (arrived after a later-starting attempt of their thread). */
  lateCount = 0;
  /**
   * Per finding code, the distinct evicted clients that earned it, each judged on its summary when
   * it was first evicted. The report adds the clients it still holds, so a finding's "N clients in
   * all" counts every client, not only the ones the capped table kept.
   */
  evictedFindings: Partial<Record<FindingCode, number>> = {};
  /** Keys of every evicted client (a 1 MiB filter, allocated at the first eviction). */
  evictedKeys: BloomCounter | null = null;
  /** Evictions of a client evicted before: that later part is not in `evictedFindings`. */
  reEvicted = 0;
  /**
   * Set by `mergedWith`, for the report: clients held only as an evicted summary (already in
   * `evictedFindings`), and clients seen again after an eviction (judged on a part, so left out of
   * the tally: with any of them, or any re-eviction, the counts are lower bounds).
   */
  tallied = new Set<string>();
  returned = new Set<string>();
  /** Clock of the client table's recency stamps. */
  private clock = 0;

  constructor(
    readonly limits: AggregateLimits,
    public binMs: number,
  ) {}

  // ---- ingest-time counts (independent of grouping) ----

  private bin(ts: number): Bin {
    const k = Math.floor(ts / this.binMs);
    let b = this.bins.get(k);
    if (b === undefined) {
      b = emptyBin();
      this.bins.set(k, b);
      // Coarsening copies the bins into a new map: count into the merged bin, not the old one.
      if (this.bins.size > this.limits.maxBins) {
        this.coarsen();
        return this.bin(ts);
      }
    }
    return b;
  }

  /** Doubles the bin width, merging bins pairwise (keeps a long live run's timeline bounded). */
  coarsen(): void {
    const old = this.bins;
    this.binMs *= 2;
    this.bins = new Map();
    for (const [k, b] of old) {
      const nk = Math.floor(k / 2);
      const into = this.bins.get(nk);
      if (into === undefined) this.bins.set(nk, { ...b });
      else addBin(into, b);
    }
  }

  /** Offered load, errors and faults: counted for every attempt as it arrives. */
  raw(a: Attempt): void {
    const b = this.bin(a.ts);
    b.offered++;
    if (a.failKind !== 'ok') b.errors++;
    if (a.injected) b.faults++;
  }

  // ---- ChainSink ----

  attempt(a: Attempt, role: Role): void {
    const b = this.bin(a.ts);
    if (role === 'first') b.organic++;
    else if (role === 'retry') {
      b.retries++;
      const k = Math.floor(a.ts / FINE_BIN_MS);
      this.fine.set(k, (this.fine.get(k) ?? 0) + 1);
      if (this.fine.size > this.limits.maxFineBins) this.trimFine();
    } else b.hedges++;
  }

  late(): void {
    this.lateCount++;
  }

  chain(c: Chain): void {
    const cls = classifyChain(c);
    const u = this.limits.unboundedAttempts;
    this.totals.addChain(c, cls, u);
    if (c.okEnd !== null) this.bin(c.okEnd).goodput++;
    this.client(c.first).addClientChain(c, cls, u);
    this.family(c.first.family).addFamilyChain(c, cls, u);
    this.route(c.first.route).addChain(c, cls, u);
  }

  trimFine(): void {
    const drop = Math.ceil(this.fine.size / 10);
    let i = 0;
    for (const k of this.fine.keys()) {
      if (i++ >= drop) break;
      this.fine.delete(k);
    }
    this.fineDropped += drop;
  }

  /**
   * The client's aggregate, stamped as most recently used; evicts past the cap. (The stamp, not a
   * delete and re-insert per chain: that churned the table into a rehash every few thousand
   * chains, a large dead table each time.)
   */
  client(a: Attempt): ClientAgg {
    let c = this.clients.get(a.client);
    if (c !== undefined) {
      c.touched = ++this.clock;
      return c;
    }
    if (this.clients.size >= this.limits.maxClients) this.evictClients();
    c = new ClientAgg(a.client, a.userAgent, a.ip, a.family);
    c.touched = ++this.clock;
    this.clients.set(a.client, c);
    return c;
  }

  /** Evicts the least recently used tenth of the table, least recent first, in one pass. */
  private evictClients(): void {
    const target = Math.max(0, Math.floor(this.limits.maxClients * 0.9) - 1);
    if (this.clients.size <= target) return;
    const byAge = [...this.clients.values()].sort((x, y) => x.touched - y.touched);
    for (let i = 0; this.clients.size > target && i < byAge.length; i++) {
      const evicted = byAge[i] as ClientAgg;
      this.clients.delete(evicted.key);
      this.evictedClients++;
      this.tallyEvicted(evicted);
      this.keepInHall(evicted);
    }
  }

  /** Counts the findings of a client leaving the table, once per client. */
  private tallyEvicted(c: ClientAgg): void {
    const keys = (this.evictedKeys ??= new BloomCounter());
    if (!keys.add(c.key)) {
      this.reEvicted++;
      return;
    }
    for (const code of clientFindingCodes(c)) this.evictedFindings[code] = (this.evictedFindings[code] ?? 0) + 1;
  }

  private keepInHall(c: ClientAgg): void {
    const prior = this.hall.get(c.key);
    if (prior !== undefined) {
      prior.merge(c);
      return;
    }
    const score = c.badness;
    if (this.hall.size >= this.limits.hallSize) {
      if (score <= this.hallMin) return;
      let minKey: string | null = null;
      let min = Number.POSITIVE_INFINITY;
      for (const [k, v] of this.hall) {
        const b = v.badness;
        if (b < min) {
          min = b;
          minKey = k;
        }
      }
      if (minKey !== null) this.hall.delete(minKey);
    }
    this.hall.set(c.key, c);
    if (this.hall.size >= this.limits.hallSize) {
      let min = Number.POSITIVE_INFINITY;
      for (const v of this.hall.values()) min = Math.min(min, v.badness);
      this.hallMin = min;
    }
  }

  family(name: string): FamilyAgg {
    let f = this.families.get(name);
    if (f === undefined) {
      // '(other)' itself is created even in a full table (asking for it again would never end).
      if (this.families.size >= this.limits.maxFamilies && name !== OTHER_FAMILY) return this.family(OTHER_FAMILY);
      f = new FamilyAgg(name);
      this.families.set(name, f);
    }
    return f;
  }

  route(name: string): RouteAgg {
    let r = this.routes.get(name);
    if (r === undefined) {
      if (this.routes.size >= this.limits.maxRoutes && name !== OTHER_ROUTES) return this.route(OTHER_ROUTES);
      r = new RouteAgg(name);
      this.routes.set(name, r);
    }
    return r;
  }

  /** A shallow copy whose timeline is re-cut into bins of `binMs` (a multiple of this width). */
  rebinned(binMs: number): Aggregates {
    const r = Object.assign(new Aggregates(this.limits, binMs), this, { binMs, bins: new Map<number, Bin>() });
    for (const [k, b] of this.bins) {
      const nk = Math.floor((k * this.binMs) / binMs);
      const into = r.bins.get(nk);
      if (into === undefined) r.bins.set(nk, { ...b });
      else addBin(into, b);
    }
    return r;
  }

  /**
   * This aggregate plus an overlay (the chains a report finishes virtually), as new maps; neither
   * input changes. Evicted clients from the hall are merged back by key.
   */
  mergedWith(overlay: Aggregates): Aggregates {
    const m = new Aggregates(this.limits, this.binMs);
    m.totals.mergeCounts(this.totals);
    m.totals.mergeCounts(overlay.totals);
    m.clients = new Map(this.clients);
    for (const [k, h] of this.hall) {
      const live = m.clients.get(k);
      if (live === undefined) m.clients.set(k, h);
      else {
        const c = h.clone();
        c.merge(live);
        m.clients.set(k, c);
      }
    }
    for (const [k, o] of overlay.clients) {
      const base = m.clients.get(k);
      if (base === undefined) m.clients.set(k, o);
      else {
        const c = base.clone();
        c.merge(o);
        m.clients.set(k, c);
      }
    }
    m.evictedClients = this.evictedClients;
    m.evictedFindings = { ...this.evictedFindings };
    for (const [k, n] of Object.entries(overlay.evictedFindings)) m.evictedFindings[k as FindingCode] = (m.evictedFindings[k as FindingCode] ?? 0) + n;
    m.evictedKeys = this.evictedKeys ?? overlay.evictedKeys;
    m.reEvicted = this.reEvicted + overlay.reEvicted;
    m.tallied = new Set([...this.tallied, ...overlay.tallied]);
    m.returned = new Set([...this.returned, ...overlay.returned]);
    for (const k of this.hall.keys()) if (!this.clients.has(k) && !overlay.clients.has(k)) m.tallied.add(k);
    // A client held live whose key was evicted before came back. (An overlay of the same engine has
    // no filter of its own; a partition's overlay, in `combineAggregates`, has.)
    const wasEvicted = (keys: BloomCounter | null, k: string): boolean => keys !== null && !m.tallied.has(k) && keys.has(k);
    for (const k of this.clients.keys()) if (wasEvicted(this.evictedKeys, k)) m.returned.add(k);
    for (const k of overlay.clients.keys()) if (wasEvicted(overlay.evictedKeys ?? this.evictedKeys, k)) m.returned.add(k);
    m.families = mergeMaps(this.families, overlay.families);
    m.routes = mergeMaps(this.routes, overlay.routes);
    m.bins = new Map();
    for (const [k, b] of this.bins) m.bins.set(k, { ...b });
    for (const [k, b] of overlay.bins) {
      const into = m.bins.get(k);
      if (into === undefined) m.bins.set(k, { ...b });
      else addBin(into, b);
    }
    m.fine = new Map(this.fine);
    for (const [k, n] of overlay.fine) m.fine.set(k, (m.fine.get(k) ?? 0) + n);
    m.fineDropped = this.fineDropped;
    m.lateCount = this.lateCount + overlay.lateCount;
    return m;
  }
}

/**
 * Several partitions' aggregates as one (the partitions hold disjoint clients, as when one file is
 * split by client key among threads). Timelines of different bin widths are brought to the
 * widest first. The inputs are not changed.
 */
export function combineAggregates(parts: readonly Aggregates[]): Aggregates {
  if (parts.length === 0) throw new Error('combineAggregates: no partitions');
  const binMs = Math.max(...parts.map((p) => p.binMs));
  let m: Aggregates | null = null;
  let evicted = 0;
  let fineDropped = 0;
  for (const p of parts) {
    const q = p.binMs === binMs ? p : p.rebinned(binMs);
    m = m === null ? q : m.mergedWith(q);
    evicted += p.evictedClients;
    fineDropped += p.fineDropped;
  }
  const out = m as Aggregates;
  out.evictedClients = evicted;
  out.fineDropped = fineDropped;
  // The union can pass a cap no part reached alone: hold it to the caps one engine keeps.
  while (out.bins.size > out.limits.maxBins) out.coarsen();
  if (out.fine.size > out.limits.maxFineBins) {
    const keys = [...out.fine.keys()].sort((a, b) => a - b);
    const drop = out.fine.size - out.limits.maxFineBins;
    for (let i = 0; i < drop; i++) out.fine.delete(keys[i] as number);
    out.fineDropped += drop;
  }
  out.families = capMap(out.families, out.limits.maxFamilies, OTHER_FAMILY, (n) => new FamilyAgg(n));
  out.routes = capMap(out.routes, out.limits.maxRoutes, OTHER_ROUTES, (n) => new RouteAgg(n));
  return out;
}

/** A map held to `cap` entries: the first ones kept, the rest summed under `other`. */
function capMap<T extends { merge(o: T): void; clone(): T }>(map: Map<string, T>, cap: number, other: string, make: (name: string) => T): Map<string, T> {
  if (map.size <= cap) return map;
  const out = new Map<string, T>();
  let rest: T | null = null;
  for (const [k, v] of map) {
    if (k !== other && out.size < cap - 1) out.set(k, v);
    else {
      rest ??= make(other);
      rest.merge(v);
    }
  }
  if (rest !== null) out.set(other, rest);
  return out;
}

/**
 * Gives aggregates that crossed a thread boundary (a structured clone: the same fields, plain
 * objects) their classes back, in place.
 */
export function reviveAggregates(o: Aggregates): Aggregates {
  Object.setPrototypeOf(o, Aggregates.prototype);
  if (o.evictedKeys !== null) Object.setPrototypeOf(o.evictedKeys, BloomCounter.prototype);
  reviveCounts(o.totals, Counts.prototype);
  for (const c of o.clients.values()) reviveClient(c);
  for (const c of o.hall.values()) reviveClient(c);
  for (const f of o.families.values()) {
    reviveCounts(f, FamilyAgg.prototype);
    for (const r of f.gapsByIndex) Object.setPrototypeOf(r, StrideReservoir.prototype);
    for (const g of f.groups.values()) {
      Object.setPrototypeOf(g, JitterGroup.prototype);
      for (const r of g.byIndex) Object.setPrototypeOf(r, StrideReservoir.prototype);
      Object.setPrototypeOf(g.ratios, StrideReservoir.prototype);
    }
  }
  for (const r of o.routes.values()) reviveCounts(r, RouteAgg.prototype);
  return o;
}

function reviveCounts(c: Counts, proto: object): void {
  Object.setPrototypeOf(c, proto);
  Object.setPrototypeOf(c.hist, CountHistogram.prototype);
  Object.setPrototypeOf(c.giveUp, CountHistogram.prototype);
}

function reviveClient(c: ClientAgg): void {
  reviveCounts(c, ClientAgg.prototype);
  if (c.logGaps !== null) for (const w of c.logGaps) Object.setPrototypeOf(w, Welford.prototype);
}

/**
 * One chain's backoff: immediate when every gap (Retry-After ones included) was under 50 ms, else
 * the class of the gaps the client chose itself (gaps after a Retry-After follow the server).
 */
export function classifyChain(c: Chain): BackoffResult {
  if (c.gaps.length >= BACKOFF_THRESHOLDS.minGaps && c.gaps.every((g) => g < BACKOFF_THRESHOLDS.immediateMs)) {
    return classifyBackoff(c.gaps);
  }
  return classifyBackoff(c.ownGaps);
}

function mergeMaps<T extends { merge(o: T): void; clone(): T }>(a: Map<string, T>, b: Map<string, T>): Map<string, T> {
  const out = new Map(a);
  for (const [k, v] of b) {
    const base = out.get(k);
    if (base === undefined) out.set(k, v);
    else {
      const c = base.clone();
      c.merge(v);
      out.set(k, c);
    }
  }
  return out;
}
