/**
 * The finding catalogue: every code the analysis can emit, its usual severity, a one-line title and
 * the advice that goes with it. One list, so the docs, the gates (which reject unknown codes) and
 * the reports agree. Also which per-client findings a client summary earns (`judgeClient`), so the
 * report and the client table (which tallies the clients it evicts) count by the same rules.
 */
import type { ClientAgg } from './aggregates.js';
import { decideBackoff, type RetryAfterCompliance, summarizeRetryAfter } from './backoff.js';
import type { BackoffDetail, Finding, FindingCode, Severity } from './types.js';

/**
 * Retry budgets (spec reference points): Google SRE allows a client 10 % of its requests as
 * retries, Finagle/Linkerd/Envoy 20 %. A client or client type is held to the 20 % one, and only
 * with this many retries, so a careful client (a 10 % token bucket that lets a burst through) is
 * not flagged; the totals are held to both.
 */
export const RETRY_BUDGET = { sre: 0.1, finagle: 0.2, minRetries: 10 } as const;

/** The share of a client's (or client type's) attempts that were retries is over budget. */
export function overRetryBudget(c: { retries: number; attempts: number }): boolean {
  return c.retries >= RETRY_BUDGET.minRetries && c.attempts > 0 && c.retries / c.attempts > RETRY_BUDGET.finagle;
}

export interface FindingInfo {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly title: string;
  readonly advice: string;
}

/** In report order: the verdict first, then client behaviour, then load effects, then data quality. */
export const FINDINGS: readonly FindingInfo[] = [
  {
    code: 'retry-storm',
    severity: 'critical',
    title: 'The clients turn this failure into a retry storm',
    advice:
      'Fix the findings below before this failure happens in production: back off exponentially with full jitter, cap attempts (3 per request), and add a retry budget (retries <= 10-20 % of requests) so retries cannot multiply load during an outage.',
  },
  {
    code: 'immediate-retries',
    severity: 'critical',
    title: 'Retries with no backoff',
    advice:
      'Wait before retrying: exponential backoff with full jitter, `sleep = random(0, min(cap, base * 2^attempt))` (AWS "Exponential Backoff and Jitter"); immediate retries multiply load exactly when the service can least take it.',
  },
  {
    code: 'no-jitter',
    severity: 'warning',
    title: 'Backoff without jitter: clients come back in lockstep',
    advice:
      'Randomise every wait (full jitter: `random(0, backoff)`), drawn per retry, not once per process. Without jitter every client that failed together retries together, and the retries arrive as a herd.',
  },
  {
    code: 'retry-after-violated',
    severity: 'critical',
    title: 'Retry-After not honoured',
    advice:
      'When a 429 or 503 carries Retry-After, wait at least that long (plus jitter) before the next attempt; the server is telling the client when it can take the request.',
  },
  {
    code: 'retry-after-ignored',
    severity: 'warning',
    title: 'Retry-After ignored (the client kept its own schedule)',
    advice: 'Read Retry-After and use it as the next wait (with jitter) instead of the local backoff schedule; it lets the server spread the returning load.',
  },
  {
    code: 'unsafe-retry',
    severity: 'warning',
    title: 'Non-idempotent requests retried without an Idempotency-Key',
    advice:
      'Send an Idempotency-Key header (IETF draft) on POST/PATCH and keep it across retries, and make the server de-duplicate by it; otherwise a retry after a lost response performs the operation twice.',
  },
  {
    code: 'retry-after-non-retryable',
    severity: 'warning',
    title: 'Retries after answers that say "do not retry"',
    advice:
      'Do not retry 4xx answers other than 408, 425 and 429, nor 501, 505 or 508: the same request will fail the same way. (Signal, January 2021: every rejected request was retried until a "stop retrying" status was added.)',
  },
  {
    code: 'duplicate-submission',
    severity: 'critical',
    title: 'Duplicate submissions after lost responses',
    advice:
      'The upstream completed the request but the client never saw the answer and sent it again. Make the operation idempotent (Idempotency-Key, server-side de-duplication) before retrying it.',
  },
  {
    code: 'unbounded-retries',
    severity: 'critical',
    title: 'Unbounded retries',
    advice: 'Cap attempts per request (Google SRE: at most 3) and give up with an error the caller can handle; a client that never gives up keeps an outage going.',
  },
  {
    code: 'retry-budget-exceeded',
    severity: 'warning',
    title: 'Retry budget exceeded',
    advice:
      'Limit retries to a share of requests: 10 % per client (Google SRE) or 20 % (Finagle, Linkerd and Envoy retry budgets); gRPC clients can use retry throttling (A6).',
  },
  {
    code: 'herd',
    severity: 'warning',
    title: 'Retries arrive as a herd',
    advice: 'Add jitter to every backoff and to Retry-After waits so retries spread out; a herd re-creates the overload the moment the service recovers.',
  },
  {
    code: 'sustained-amplification',
    severity: 'critical',
    title: 'Load stays amplified after the fault ended (metastable signature)',
    advice:
      'Retries keep the offered load above the organic load after the trigger is gone, which is how a metastable failure sustains itself (HotOS \'21, OSDI \'22). Add retry budgets or circuit breakers so the retry load collapses once failures stop.',
  },
  {
    code: 'retries-after-fault',
    severity: 'info',
    title: 'Retries still arriving after the fault window',
    advice: 'Long backoffs are fine; check that the late retries are not stale work the caller no longer needs (cancel retries when the caller gives up).',
  },
  {
    code: 'idempotency-key-reused',
    severity: 'warning',
    title: 'One Idempotency-Key sent with different bodies',
    advice: 'Generate a fresh Idempotency-Key per logical operation and reuse it only for retries of that same operation; a reused key makes the server return the wrong stored answer.',
  },
  {
    code: 'hedged-requests',
    severity: 'info',
    title: 'Hedged (overlapping) requests',
    advice: 'Hedging is fine within a budget (e.g. hedge after the p95 latency, at most one hedge); it is counted in offered load but not as retries.',
  },
  {
    code: 'nat-suspected',
    severity: 'info',
    title: 'Several User-Agents behind one IP (NAT?)',
    advice:
      'Clients behind one address may be merged into one client key, which overstates per-client amplification. Set a client key header (`--client-key header:x-client-id`, `analyze --client-key-header`).',
  },
  {
    code: 'low-confidence-grouping',
    severity: 'info',
    title: 'Most retries were grouped by fingerprint, not by explicit ids',
    advice:
      'Send `Idempotency-Key` or `amz-sdk-invocation-id` (or use a mesh that sets `x-envoy-attempt-count`) so attempts are grouped by explicit ids; polling after a failed poll can look like a retry.',
  },
  {
    code: 'bad-lines',
    severity: 'warning',
    title: 'Corrupt or truncated lines in the recording',
    advice: 'The lines listed were skipped. A truncated last line usually means the proxy was killed before it flushed; the rest of the analysis stands.',
  },
  {
    code: 'records-lost',
    severity: 'warning',
    title: 'The proxy could not write part of the recording',
    advice: 'Exchanges the recording is missing (a full disk, a removed file or folder) are not in any number here: retries among them are unseen. Record to a disk with room and rerun before trusting a pass.',
  },
  {
    code: 'clients-truncated',
    severity: 'info',
    title: 'Client list truncated',
    advice: 'Only the worst clients are listed; totals and client types include every client.',
  },
];

const BY_CODE = new Map(FINDINGS.map((f) => [f.code, f]));

/** Every finding code, for validating gates. */
export const FINDING_CODES: readonly FindingCode[] = FINDINGS.map((f) => f.code);

/** Severity order for sorting (critical first). */
export const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** Builds a finding from the catalogue (severity and advice), with the message and evidence given. */
export function makeFinding(
  code: FindingCode,
  message: string,
  evidence: Finding['evidence'],
  about: { client?: string; route?: string; userAgent?: string; severity?: Severity } = {},
): Finding {
  const info = BY_CODE.get(code) as FindingInfo;
  const f: Finding = { code, severity: about.severity ?? info.severity, message, advice: info.advice, evidence };
  if (about.client !== undefined) f.client = about.client;
  if (about.route !== undefined) f.route = about.route;
  if (about.userAgent !== undefined) f.userAgent = about.userAgent;
  return f;
}

/** What one client summary earns: its backoff, its Retry-After behaviour and its finding codes. */
export interface ClientJudgement {
  backoff: BackoffDetail;
  retryAfter: RetryAfterCompliance;
  /** Per-client finding codes. */
  codes: FindingCode[];
  critical: number;
  warning: number;
}

/**
 * The per-client findings of one client summary. The report judges the clients it holds with this,
 * and the client table judges each client it evicts with it (to count every client with a finding,
 * not only the ones still held), so both count by the same rules.
 *
 * @example judgeClient(client).codes // ['unbounded-retries', 'retry-after-violated']
 */
export function judgeClient(c: ClientAgg): ClientJudgement {
  const backoff = decideBackoff(c.votes, c.gapSeries(), c.immediateGaps, c.gapCount, c.deepVotes, c.gapChains, 3);
  const retryAfter = summarizeRetryAfter({ compliant: c.raCompliant, violates: c.raViolates, late: c.raLate, lateWithinJitter: c.raJittered });
  const j: ClientJudgement = { backoff, retryAfter, codes: [], critical: 0, warning: 0 };
  const flag = (code: FindingCode, sev: 'critical' | 'warning'): void => {
    j.codes.push(code);
    if (sev === 'critical') j.critical++;
    else j.warning++;
  };
  if (backoff.class === 'immediate') flag('immediate-retries', 'critical');
  if (c.unbounded > 0) flag('unbounded-retries', 'critical');
  if (retryAfter === 'violates') flag('retry-after-violated', 'critical');
  if (c.duplicateSubmissions > 0) flag('duplicate-submission', c.duplicateUnprotected > 0 ? 'critical' : 'warning');
  if (retryAfter === 'ignored') flag('retry-after-ignored', 'warning');
  if (c.unsafeRetries > 0) flag('unsafe-retry', 'warning');
  if (c.nonRetryableRetries > 0) flag('retry-after-non-retryable', 'warning');
  if (c.idemReuse > 0) flag('idempotency-key-reused', 'warning');
  if (overRetryBudget(c)) flag('retry-budget-exceeded', 'warning');
  return j;
}

/**
 * Only the codes of `judgeClient`, quickly for the many clients that never retried: every
 * per-client finding but `idempotency-key-reused` is about retries.
 */
export function clientFindingCodes(c: ClientAgg): readonly FindingCode[] {
  if (c.retries === 0 && c.idemReuse === 0) return [];
  return judgeClient(c).codes;
}

/**
 * Per-client findings decided by a share of the client's gaps (its backoff class, its Retry-After
 * verdict): a part of a client can earn one that the whole client would not. The others follow
 * from a count above zero, so any part that earns one proves the whole client earns it.
 */
export const SHARE_BASED_FINDINGS: ReadonlySet<FindingCode> = new Set<FindingCode>(['immediate-retries', 'retry-after-violated', 'retry-after-ignored', 'retry-budget-exceeded']);
