/**
 * The report's shape: the JSON contract external checks read. Names are only ever added, never
 * renamed (see the README (Retry analysis)). Times are epoch milliseconds unless a name says otherwise.
 */
import type { BackoffClass, Confidence, RetryAfterCompliance } from './backoff.js';
import type { JitterClass } from './jitter.js';

export type { BackoffClass, Confidence, RetryAfterCompliance, JitterClass };

export type Severity = 'critical' | 'warning' | 'info';

/** Every finding code the analysis emits (stable; documented in the README (Retry analysis)). */
export type FindingCode =
  | 'retry-storm'
  | 'immediate-retries'
  | 'no-jitter'
  | 'retry-after-violated'
  | 'retry-after-ignored'
  | 'unsafe-retry'
  | 'retry-after-non-retryable'
  | 'duplicate-submission'
  | 'unbounded-retries'
  | 'retry-budget-exceeded'
  | 'herd'
  | 'sustained-amplification'
  | 'retries-after-fault'
  | 'idempotency-key-reused'
  | 'hedged-requests'
  | 'nat-suspected'
  | 'low-confidence-grouping'
  | 'bad-lines'
  | 'records-lost'
  | 'clients-truncated';

/** One thing the analysis found, with the numbers behind it and what to do about it. */
export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** What happened, with numbers. */
  message: string;
  /** What to do about it. */
  advice: string;
  /** The client key's value, when the finding is about one client. */
  client?: string;
  /** The route (method + normalised path), when the finding is about one route. */
  route?: string;
  /** The client type (User-Agent family), when the finding is about one. */
  userAgent?: string;
  /** Numbers and example request ids (`examples`). */
  evidence: Record<string, unknown> & { examples?: string[] };
}

/** Attempts per logical request. */
export interface AttemptsPerRequest {
  mean: number;
  p95: number;
  max: number;
  histogram: Array<{ attempts: number | string; count: number }>;
}

export interface RetryAfterCounts {
  /** Gaps that followed a Retry-After and honoured it. */
  compliant: number;
  /** Gaps shorter than the Retry-After (minus 50 ms). */
  violates: number;
  /** Gaps longer than the Retry-After band. */
  late: number;
  /**
   * Of the late gaps, those within `R + max(1 s, 25 %)`: the wait asked for plus jitter, which
   * honours it. Only the other late gaps (the client kept its own, slower schedule) make a
   * client `ignored`.
   */
  lateWithinJitter: number;
}

export interface Totals {
  attempts: number;
  logicalRequests: number;
  retries: number;
  /** Overlapping attempts of one logical request (hedges; not retries). */
  hedges: number;
  /** offered / organic = attempts / logical requests. */
  amplification: number;
  /** retries / attempts. */
  retryRatio: number;
  /** Distinct client keys (counted in fixed memory; may undercount by about 1 % past a million). */
  clients: number;
  failures: number;
  /** Exchanges aftershock injected a fault into (a latency that still succeeded counts too). */
  injectedFaults: number;
  /** Failed attempts whose failure aftershock injected; `failures - injectedFailures` are the upstream's or the network's own. */
  injectedFailures: number;
  /** Logical requests that ended in a success. */
  succeeded: number;
  /** Logical requests that ended in a failure (the client gave up, or never came back). */
  gaveUp: number;
  maxAttempts: number;
  unboundedChains: number;
  unsafeRetries: number;
  duplicateSubmissions: number;
  nonRetryableRetries: number;
  idempotencyKeyReused: number;
  retryAfter: RetryAfterCounts;
  attemptsPerRequest: AttemptsPerRequest;
  /** offered / organic inside fault windows, and at baseline (null when not measurable). */
  amplificationInFaults: number | null;
  amplificationBaseline: number;
}

export interface BackoffDetail {
  class: BackoffClass;
  confidence: Confidence;
  /** How it was decided: the majority of the chains, or the median/geometric-mean gap per attempt index. */
  basis: 'chains' | 'per-index' | 'immediate-gaps' | 'none';
  /** Chains classified (with 2+ gaps) and their classes. */
  chains: number;
  votes: Record<BackoffClass, number>;
  /** Central gap per attempt index (ms): geometric mean per client, median per client type. */
  gapsMs: number[];
  baseMs?: number;
  factor?: number;
  capMs?: number;
  intervalMs?: number;
  stepMs?: number;
}

export interface ClientReport {
  key: string;
  userAgent: string | null;
  /** The User-Agent family (client type). */
  clientType: string;
  ip: string;
  attempts: number;
  logicalRequests: number;
  retries: number;
  hedges: number;
  retryRatio: number;
  maxAttempts: number;
  /** Most common number of attempts of the logical requests that gave up, or null. */
  giveUpAfter: number | null;
  backoff: BackoffClass;
  backoffDetail: BackoffDetail;
  retryAfter: RetryAfterCompliance;
  retryAfterCounts: RetryAfterCounts;
  unsafeRetries: number;
  duplicateSubmissions: number;
  nonRetryableRetries: number;
  unboundedChains: number;
  immediateRetries: number;
  attemptsPerRequest: AttemptsPerRequest;
  /** Finding codes about this client. */
  findings: FindingCode[];
  examples: string[];
}

export interface JitterDetail {
  class: JitterClass;
  /** CV of the k-th gap across aligned chains (the least spread k, or the ks pooled when they agree), noise removed. */
  cv: number | null;
  cvByIndex: Array<number | null>;
  /** Chains and distinct clients behind the decision. */
  chains: number;
  clients: number;
  /** The trigger the chains were aligned on (fault rule or status, and Retry-After). */
  trigger: string | null;
}

export interface ClientTypeReport {
  /** The User-Agent family, e.g. `okhttp`, `python-requests`, `chrome`. */
  userAgent: string;
  /** Example full User-Agent strings. */
  userAgents: string[];
  clients: number;
  attempts: number;
  logicalRequests: number;
  retries: number;
  retryRatio: number;
  maxAttempts: number;
  backoff: BackoffClass;
  backoffDetail: BackoffDetail;
  jitter: JitterClass;
  jitterDetail: JitterDetail;
  retryAfter: RetryAfterCompliance;
  attemptsPerRequest: AttemptsPerRequest;
  exampleClients: string[];
}

export interface RouteReport {
  route: string;
  attempts: number;
  logicalRequests: number;
  retries: number;
  amplification: number;
  retryRatio: number;
  failures: number;
  unsafeRetries: number;
  duplicateSubmissions: number;
  nonRetryableRetries: number;
  attemptsPerRequest: AttemptsPerRequest;
}

export interface TimelineBin {
  /** Bin start (epoch ms). */
  t: number;
  /** Seconds since the report's origin. */
  offset: number;
  /** First attempts (organic load). */
  organic: number;
  /** All attempts (offered load). */
  offered: number;
  /** Logical requests that succeeded (by the end of their successful attempt). */
  goodput: number;
  /** Failed attempts. */
  errors: number;
  /** Attempts an injected fault touched. */
  faults: number;
  retries: number;
  hedges: number;
  /** offered / organic in this bin (null with no organic load). */
  amplification: number | null;
}

export interface HerdReport {
  detected: boolean;
  /** Retries in the window, counted in 100 ms bins. */
  retries: number;
  varianceToMean: number | null;
  peakToMean: number | null;
  /** Why no decision was possible (too few retries or bins; fine bins dropped). */
  note?: string;
}

export interface FaultWindowReport {
  /** Epoch ms. */
  start: number;
  end: number;
  rule: string;
  durationSeconds: number;
  /** Attempts an injected fault of this rule touched. */
  faults: number;
  offered: number;
  organic: number;
  retries: number;
  amplification: number | null;
  retryRatio: number;
  herd: HerdReport;
  /** The first second after the window: offered load against the baseline rate. */
  recoverySpike: { offered: number; baselineRate: number; ratio: number | null };
  /** Retries arriving in the 60 s after the window (before another window starts). */
  retriesAfter: number;
  /** Seconds until amplification is back within 10 % of baseline; null if it never is in the data. */
  recoverySeconds: number | null;
  /**
   * Where the after-window measurements start (epoch ms): the end of the fault episode, i.e. of
   * all windows (of any rule) that overlap this one.
   */
  measuredFrom: number;
  /** Why `recoverySeconds` is null: the data ended, or another fault window began. */
  recoveryNote?: string;
}

export interface BadLine {
  file: string;
  line: number;
  reason: string;
  /** The line's first 80 characters. */
  excerpt: string;
}

export interface DataQuality {
  records: number;
  recordsByType: Record<string, number>;
  badLines: { count: number; lines: BadLine[]; truncated: boolean };
  /** Records the proxy could not write (a full or removed disk), as its `records-lost` events tell. */
  recordsLost: number;
  /** Exchange records given by more than one input (a recording with a copy of itself), counted once. */
  duplicateRecords: number;
  /** Records of a type this version does not know (skipped). */
  unknownRecords: number;
  /** Records with a newer schema version than this analyser (read on a best-effort basis). */
  newerSchemaRecords: number;
  /** Records missing required fields (skipped). */
  invalidRecords: number;
  /** Attempts folded out of start order (arrived later than the reorder lag allowed). */
  lateRecords: number;
  /** Attempts without the configured client key header (fell back to the recorded key). */
  clientKeyFallbacks: number;
  /** Clients evicted from the live table (kept summaries of the worst). */
  clientsEvicted: number;
  /** Open chains ended early because the thread table was full. */
  threadsEvicted: number;
  /** 100 ms retry bins dropped to bound memory (herd detection is partial before them). */
  fineBinsDropped: number;
  /** Timeline bin width in ms (grows past `maxBins` bins). */
  binMs: number;
  natSuspected: Array<{ ip: string; userAgents: number }>;
  /** Threads the records were split among by client key and merged (1: one engine saw them all). */
  partitions: number;
  /** Worker threads the analysis ran in (0: the calling thread; a large file runs in workers with a capped heap). */
  workerThreads: number;
}

export interface ReportConfidence {
  level: Confidence;
  reasons: string[];
  /** Chains grouped by explicit ids (high) and by fingerprints (medium). */
  grouping: { high: number; medium: number; highRetries: number; mediumRetries: number };
}

export interface RecordingInfo {
  instance: string | null;
  session: string | null;
  target: string | null;
  start: string | null;
  aftershock: string | null;
}

export interface Report {
  schemaVersion: 1;
  generatedBy: string;
  verdict: 'retry-storm' | 'ok';
  verdictReasons: string[];
  session: string | null;
  target: string | null;
  profile: { name: string; hash: string } | null;
  recordings: RecordingInfo[];
  /** First attempt start and last attempt end (epoch ms), and the origin of `timeline.offset`. */
  range: { start: number | null; end: number | null; origin: number | null; seconds: number };
  options: {
    windowMs: number;
    windowAuto: boolean;
    binMs: number;
    maxClients: number;
    clientKeyHeader: string | null;
    /** Set for the live analysis of one worker of several (`run --workers`). */
    worker?: WorkerShare;
    cacheBustingKeys: string[];
    reorderLagMs: number;
    unboundedAttempts: number;
  };
  totals: Totals;
  clients: ClientReport[];
  /** All clients seen, and how many were left out of `clients` (bounded list). */
  clientsTotal: number;
  clientsOmitted: number;
  clientTypes: ClientTypeReport[];
  routes: RouteReport[];
  routesOmitted: number;
  timeline: TimelineBin[];
  faultWindows: FaultWindowReport[];
  findings: Finding[];
  confidence: ReportConfidence;
  /** The known limits of this analysis (spec §7), stated in every report. */
  limits: string[];
  dataQuality: DataQuality;
  marks: Array<{ t: number; label: string }>;
  events: Array<{ t: number; event: string; detail: Record<string, unknown> }>;
}

/** Options of `createAnalyzer` and `analyzeFiles`. */
export interface AnalyzerOptions {
  /** Re-key clients by this recorded request header when present (else the recorded `client`). */
  clientKeyHeader?: string;
  /** Query keys dropped from fingerprints. Default `t`, `_`, `ts`, `nonce`. */
  cacheBustingKeys?: readonly string[];
  /** Retry window W: ms or a duration (`90s`). Default `max(120s, 1.5 x largest Retry-After + 5s)`. */
  window?: number | string;
  /** Client table cap (LRU). Default 50,000. */
  maxClients?: number;
  /** Timeline bin width (ms). Default 1000. */
  binMs?: number;
  /** How long (ms) attempts wait to be put in start order. Default 5000. */
  reorderLagMs?: number;
  /** A logical request with more attempts than this is unbounded. Default 10. */
  unboundedAttempts?: number;
  /** Open threads (logical requests in progress) cap. Default 4 x maxClients. */
  maxThreads?: number;
  /** Clients listed in the report (worst first). Default 200. */
  maxReportedClients?: number;
  /** Routes listed in the report. Default 100. */
  maxReportedRoutes?: number;
  /** Per-client findings listed per code before one summary finding. Default 10. */
  maxFindingsPerCode?: number;
  /** Timeline bins kept before bins are merged. Default 86,400 (a day of 1 s bins). */
  maxBins?: number;
  /**
   * The live analysis of one of several worker processes (`run --workers N`): it sees only the
   * exchanges on that worker's connections, and its report says so.
   */
  worker?: WorkerShare;
}

/** Which worker of how many a live analysis runs in. */
export interface WorkerShare {
  index: number;
  of: number;
}

/** Options after defaults. */
export interface ResolvedOptions {
  clientKeyHeader: string | null;
  worker: WorkerShare | null;
  cacheBustingKeys: string[];
  windowMs: number | null;
  maxClients: number;
  binMs: number;
  reorderLagMs: number;
  unboundedAttempts: number;
  maxThreads: number;
  maxReportedClients: number;
  maxReportedRoutes: number;
  maxFindingsPerCode: number;
  maxBins: number;
}

/** Counters about the input itself. */
export interface QualityCounters {
  records: number;
  recordsByType: Record<string, number>;
  badLines: number;
  badLineList: BadLine[];
  recordsLost: number;
  unknownRecords: number;
  newerSchemaRecords: number;
  invalidRecords: number;
  clientKeyFallbacks: number;
  threadsEvicted: number;
  injectedFaults: number;
  injectedFailures: number;
  /** Exchange records dropped because another input had given them already (see `MergeOptions.onDuplicate`). */
  duplicateRecords: number;
}

/** The live report's headline numbers, without the report (what /metrics exports). */
export interface LiveTotals {
  readonly attempts: number;
  readonly logicalRequests: number;
  readonly retries: number;
  /** retries / attempts. */
  readonly retryRatio: number;
  /** offered / organic load: attempts / logical requests (0 before any). */
  readonly amplification: number;
}
