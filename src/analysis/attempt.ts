/**
 * One attempt as the analysis sees it: the facts of an `http` or `ws` record that grouping and
 * grading need, decided once (did it fail, was the answer retryable, was the response lost, which
 * chain does it belong to), so the grouping code below never re-reads raw records.
 *
 * Failure (spec §3.2): an injected fault that did not end in a success, 5xx, 429, 408 (and 425,
 * which the spec lists as retryable), or a transport outcome (reset, closed, timeout,
 * upstream-error, client-abort, shutdown). A WebSocket attempt succeeds when the connection
 * stayed open 5 s or more (spec §3.4). A plain 4xx answer the upstream gave (not injected) is not
 * a failure by the spec's list; a re-send of the identical request within `RESEND_MS` is still
 * chained to it, so clients that hammer a 400 are seen (polling a 404 faster than that is one of
 * the known limits).
 */
import type { ExchangeRecord, Outcome } from '../record/schema.js';
import { canonicalQuery, memo, normalizePath, userAgentFamily, WS_CONNECTION_KEYS } from './normalize.js';

const familyOf = memo(userAgentFamily);

/**
 * The route label of a method and path. Paths are many (ids), routes few: the normalised path is
 * computed for every attempt (a cheap scan), and the label is looked up so every attempt of a route
 * shares one string (already hashed for the route table, and no new string kept per attempt).
 */
const routes = new Map<string, Map<string, string>>();
const MAX_ROUTE_LABELS = 10_000;
let routeLabels = 0;
function routeLabel(method: string, path: string): string {
  const norm = normalizePath(path);
  let byPath = routes.get(method);
  if (byPath === undefined) {
    byPath = new Map();
    routes.set(method, byPath);
  }
  let label = byPath.get(norm);
  if (label === undefined) {
    if (routeLabels >= MAX_ROUTE_LABELS) {
      routes.clear();
      routeLabels = 0;
      return routeLabel(method, path);
    }
    label = `${method} ${norm}`;
    byPath.set(norm, label);
    routeLabels++;
  }
  return label;
}

/** How an attempt ended, for chaining. */
export type FailKind = 'ok' | 'fail' | 'fail-4xx';

/** A WebSocket connection open this long (ms) or more was a success and resets its chain. */
export const WS_STABLE_MS = 5000;
/** A non-injected non-retryable 4xx chains to an identical re-send only within this gap (ms). */
export const RESEND_MS = 10_000;

const FAIL_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>(['reset', 'closed', 'client-abort', 'upstream-error', 'timeout', 'shutdown']);
const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PATCH']);
/** Fault types that only delay an exchange: they fail nothing themselves. */
const DELAY_FAULTS: ReadonlySet<string> = new Set(['latency', 'throttle', 'slow-body', 'ws-delay']);
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

export interface Attempt {
  readonly id: string;
  readonly ws: boolean;
  readonly ts: number;
  readonly end: number;
  /** When the answer began, ms after `ts` (null: none, or not recorded). */
  readonly ttfb: number | null;
  readonly client: string;
  readonly ip: string;
  readonly userAgent: string | null;
  readonly family: string;
  readonly method: string;
  readonly route: string;
  /** Which chain thread the attempt belongs to (client + explicit id, fingerprint or socket path). */
  readonly thread: string;
  /** Grouped by an explicit id (high confidence) rather than a fingerprint. */
  readonly explicit: boolean;
  readonly bodyHash: string | null;
  readonly idempotencyKey: string | null;
  /** Attempt number the client itself declared (envoy, gRPC, AWS SDK headers), or null. */
  readonly attemptHint: number | null;
  readonly status: number | null;
  readonly outcome: Outcome | null;
  readonly failKind: FailKind;
  /** The answer says "do not retry" (4xx other than 408/425/429, 501, 505, 508). */
  readonly nonRetryable: boolean;
  readonly injected: boolean;
  /** The failure is the injected fault's own (not an upstream failure a delay-only fault merely delayed). */
  readonly injectedFailure: boolean;
  readonly faultRule: string | null;
  readonly faultType: string | null;
  /** The other rules that injected into this exchange (a latency under the 503 that decided it), or null. */
  readonly otherFaultRules: readonly string[] | null;
  /** Retry-After sent with a failure, in ms. */
  readonly retryAfterMs: number | null;
  /** POST or PATCH without an Idempotency-Key. */
  readonly unsafe: boolean;
  /** Not GET/HEAD/OPTIONS/TRACE: a repeat of it is a submission, not a read. */
  readonly submits: boolean;
  /** The upstream answered 2xx but the client never got the answer (lost response). */
  readonly lostResponse: boolean;
  /** What set off a chain that starts with this failure (for aligning chains, spec §5). */
  readonly trigger: string;
}

/**
 * Is this status one the client should not retry (spec §6)?
 *
 * @example isNonRetryableStatus(400) === true; isNonRetryableStatus(503) === false
 */
export function isNonRetryableStatus(status: number | null): boolean {
  if (status === null) return false;
  if (status >= 400 && status < 500) return status !== 408 && status !== 425 && status !== 429;
  return status === 501 || status === 505 || status === 508;
}

export interface AttemptContext {
  readonly cacheBusting: ReadonlySet<string>;
  /** `cacheBusting` plus the per-connection keys of WebSocket URLs (`WS_CONNECTION_KEYS`); default: derived. */
  readonly wsDrop?: ReadonlySet<string>;
  readonly clientKeyHeader: string | null;
}

/** Client key: the configured header's recorded value when present, else the recorded key. */
export function clientKeyOf(r: ExchangeRecord, ctx: AttemptContext): { key: string; fallback: boolean } {
  if (ctx.clientKeyHeader === null) return { key: r.client, fallback: false };
  const v = (r.headers as Record<string, string | undefined>)[ctx.clientKeyHeader];
  // A secret header is recorded as [redacted]; the proxy already keyed the client by its hash.
  if (v === '[redacted]') return { key: r.client, fallback: false };
  if (typeof v === 'string' && v !== '') return { key: v, fallback: false };
  return { key: r.client, fallback: true };
}

function parseIntHeader(v: string | undefined): number | null {
  if (v === undefined) return null;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) ? n : null;
}

function attemptHintOf(h: Record<string, string | undefined>): number | null {
  const envoy = parseIntHeader(h['x-envoy-attempt-count']);
  if (envoy !== null && envoy >= 1) return envoy;
  const grpc = parseIntHeader(h['grpc-previous-rpc-attempts']);
  if (grpc !== null && grpc >= 0) return grpc + 1;
  const amz = h['amz-sdk-request'];
  if (amz !== undefined) {
    const m = /attempt\s*=\s*(\d+)/i.exec(amz);
    if (m !== null) return Number(m[1]);
  }
  return null;
}

/** The rules in `faults` that injected, other than the one in `fault` (null when none: the usual case, no array). */
function otherInjectedRules(r: ExchangeRecord): string[] | null {
  const all = (r as { faults?: unknown }).faults;
  if (!Array.isArray(all) || all.length < 2) return null;
  const out: string[] = [];
  for (const f of all as Array<{ rule: string; injected?: boolean }>) {
    if (f.injected === true && f.rule !== r.fault?.rule && !out.includes(f.rule)) out.push(f.rule);
  }
  return out.length === 0 ? null : out;
}

/** Normalises one exchange record. */
export function toAttempt(r: ExchangeRecord, ctx: AttemptContext, key: string): Attempt {
  const ws = r.type === 'ws';
  const h = r.headers as Record<string, string | undefined>;
  const method = (r.method ?? 'GET').toUpperCase();
  const injected = r.fault !== null && r.fault.injected;
  // A fault that only delays (latency, throttle, slow-body, ws-delay) fails nothing itself: the
  // failure of an exchange it delayed is the upstream's or the network's, unless the client gave up.
  const faultFails = injected && (!DELAY_FAULTS.has(r.fault?.type ?? '') || r.outcome === 'client-abort');
  let failKind: FailKind;
  if (ws) {
    // Open from its 101 (the handshake's time, `ttfb`, is not time the socket stayed open).
    const openedAt = r.ts + (typeof r.ttfb === 'number' && r.ttfb > 0 ? r.ttfb : 0);
    failKind = r.status === 101 && r.end - openedAt >= WS_STABLE_MS ? 'ok' : 'fail';
  } else if (r.outcome !== null && FAIL_OUTCOMES.has(r.outcome)) {
    failKind = 'fail';
  } else if (r.status === null) {
    failKind = 'fail';
  } else if (r.status < 400) {
    failKind = 'ok';
  } else if (r.status >= 500 || r.status === 408 || r.status === 425 || r.status === 429 || faultFails) {
    failKind = 'fail';
  } else {
    failKind = 'fail-4xx';
  }
  const idem = h['idempotency-key'] ?? null;
  const invocation = h['amz-sdk-invocation-id'] ?? null;
  const bodyHash = 'bodyHash' in r ? r.bodyHash : null;
  let thread: string;
  let explicit = false;
  if (ws) {
    // Per endpoint: path and canonical query without per-connection keys, as the live attempt
    // tracker keys a socket (a chat and a presence socket on one path are two chains; a resume
    // cursor in the query is a cache-busting key to name).
    thread = `w\0${key}\0${r.path}?${r.query === null ? '' : canonicalQuery(r.query, ctx.wsDrop ?? new Set([...ctx.cacheBusting, ...WS_CONNECTION_KEYS]))}`;
  } else if (invocation !== null && invocation !== '') {
    thread = `i\0${key}\0${invocation}`;
    explicit = true;
  } else if (idem !== null && idem !== '' && idem !== '[redacted]') {
    thread = `k\0${key}\0${idem}`;
    explicit = true;
  } else {
    // `f\0` + fingerprint(...), joined in one go: one flat string instead of a chain of
    // concatenations that the thread table would flatten into a second copy.
    const query = r.query === null ? '' : canonicalQuery(r.query, ctx.cacheBusting);
    thread = ['f', key, method, `${r.path}?${query}`, bodyHash ?? ''].join('\0');
  }
  const upstream = 'upstreamStatus' in r ? r.upstreamStatus : null;
  const lostResponse = upstream !== null && upstream >= 200 && upstream < 300 && failKind !== 'ok';
  const retryAfterMs = failKind !== 'ok' && r.retryAfter !== null && Number.isFinite(r.retryAfter) && r.retryAfter >= 0 ? r.retryAfter * 1000 : null;
  const hint = attemptHintOf(h);
  const cause = failKind === 'ok' ? '' : faultFails ? `fault:${r.fault?.rule ?? ''}` : r.status !== null ? `status:${r.status}` : `outcome:${r.outcome ?? 'none'}`;
  return {
    id: r.id,
    ws,
    ts: r.ts,
    end: Math.max(r.end, r.ts),
    ttfb: typeof r.ttfb === 'number' && r.ttfb >= 0 ? r.ttfb : null,
    client: key,
    ip: r.ip,
    userAgent: r.userAgent,
    family: r.userAgent === null ? '(none)' : familyOf(r.userAgent),
    method: ws ? 'GET' : method,
    route: routeLabel(ws ? 'WS' : method, r.path),
    thread,
    explicit: explicit || hint !== null,
    bodyHash,
    idempotencyKey: idem,
    attemptHint: hint,
    status: r.status,
    outcome: r.outcome,
    failKind,
    nonRetryable: failKind !== 'ok' && isNonRetryableStatus(r.status),
    injected,
    injectedFailure: faultFails && failKind !== 'ok',
    faultRule: r.fault?.rule ?? null,
    faultType: r.fault?.type ?? null,
    otherFaultRules: otherInjectedRules(r),
    retryAfterMs,
    unsafe: !ws && UNSAFE_METHODS.has(method) && (idem === null || idem === ''),
    submits: !ws && !SAFE_METHODS.has(method),
    lostResponse,
    trigger: retryAfterMs === null || cause === '' ? cause : `${cause}|ra:${retryAfterMs / 1000}`,
  };
}
