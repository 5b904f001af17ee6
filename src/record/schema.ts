/**
 * The traffic recording's record shapes: one NDJSON line per record.
 *
 * Recording is cheap and dumb (pino's lesson): the proxy writes these fixed-shape objects and
 * nothing else; every interpretation lives in `src/analysis`. Every record carries `v`, the schema
 * version, so old recordings stay readable when fields are added. Fields are only ever added.
 *
 * Times (`ts`, `end`, `startMs`) are milliseconds since the Unix epoch, with sub-millisecond
 * precision where the clock gives it. Durations (`ttfb`, `duration`) are milliseconds.
 */

export const RECORD_SCHEMA_VERSION = 1 as const;

/** The request headers kept on every record because the retry analysis needs them (spec §1). */
export const RETRY_HEADERS = [
  'idempotency-key',
  'amz-sdk-invocation-id',
  'amz-sdk-request',
  'x-envoy-attempt-count',
  'grpc-previous-rpc-attempts',
] as const;
export type RetryHeaderName = (typeof RETRY_HEADERS)[number];

/** Which rule injected what. Present on every record that a fault touched; `injected` is always true. */
export interface FaultTag {
  rule: string;
  type: string;
  injected: true;
}

/** How an exchange ended when it did not end with a complete response. */
export type Outcome =
  | 'reset' // the connection to the client was reset (injected or because the upstream reset)
  | 'closed' // the client's connection was closed (FIN) without a response
  | 'client-abort' // the client went away before the response was complete
  | 'upstream-error' // the upstream refused, reset or broke the exchange (the proxy answered 502)
  | 'timeout' // the upstream did not answer in time (the proxy answered 504)
  | 'bad-request' // malformed HTTP from the client (the proxy answered 400/431)
  | 'shutdown'; // the proxy stopped before the exchange finished

/** The first line of every recording. */
export interface HeaderRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'header';
  aftershock: string;
  /** ISO-8601 start time of the recording. */
  start: string;
  startMs: number;
  target: string;
  profile: { name: string; hash: string } | null;
  seed: number;
  clientKey: string;
  session: string | null;
  /** Header names whose values are replaced by `[redacted]`. */
  redacted: string[];
  /** Identifies the proxy process (several sidecars write several recordings; `analyze` merges them). */
  instance: string;
}

/** One HTTP exchange: exactly one per request that reached the proxy. */
export interface HttpRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'http';
  id: string;
  ts: number;
  end: number;
  client: string;
  ip: string;
  conn: string;
  method: string;
  path: string;
  query: string | null;
  /** Status sent to the client; null when no response was sent (see `outcome`). */
  status: number | null;
  outcome: Outcome | null;
  /** Status the upstream answered, when it differs from what the client saw (e.g. lost-response). */
  upstreamStatus: number | null;
  bytesIn: number;
  bytesOut: number;
  ttfb: number | null;
  duration: number;
  /** The fault that decided the exchange's fate (the last one applied), or null. */
  fault: FaultTag | null;
  /** Every fault applied, in order (latency then a terminal fault then response faults). */
  faults: FaultTag[];
  /** Retry-After as sent to the client, in seconds (an HTTP-date as the wait it asked for from the moment the answer went out, to the ms). */
  retryAfter: number | null;
  /** `sha256:<hex of first 64 KiB>:<length>` when the request had a body. */
  bodyHash: string | null;
  userAgent: string | null;
  /** The retry-relevant request headers present on the request (lower-case names). */
  headers: Partial<Record<RetryHeaderName, string>> & Readonly<Record<string, string>>;
  /** The proxy's own error code when the proxy answered (502/504/400...). */
  error: string | null;
}

/** One WebSocket connection (or refused upgrade): exactly one per upgrade request. */
export interface WsRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'ws';
  id: string;
  ts: number;
  end: number;
  client: string;
  ip: string;
  conn: string;
  method: 'GET';
  path: string;
  query: string | null;
  /** 101 when the upgrade succeeded, else the status the client got (e.g. 503 from ws-reject). */
  status: number | null;
  outcome: Outcome | null;
  /** Always null: the client sees the upstream's own answer to an upgrade (kept so every exchange record has the same keys). */
  upstreamStatus: null;
  protocol: string | null;
  messagesIn: number;
  messagesOut: number;
  /** Payload bytes client -> upstream. */
  bytesIn: number;
  /** Payload bytes upstream -> client. */
  bytesOut: number;
  /** Milliseconds until the client got the handshake's answer (101 or a refusal); null if it never did. */
  ttfb: number | null;
  duration: number;
  closeCode: number | null;
  closeReason: string | null;
  closedBy: 'client' | 'upstream' | 'proxy' | null;
  fault: FaultTag | null;
  faults: FaultTag[];
  retryAfter: number | null;
  /** Always null: an upgrade request has no body (kept so every exchange record has the same keys). */
  bodyHash: null;
  userAgent: string | null;
  headers: Partial<Record<RetryHeaderName, string>> & Readonly<Record<string, string>>;
  error: string | null;
}

/** A per-message event, only with `--record-messages`. */
export interface WsMessageRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'ws-message';
  ws: string;
  ts: number;
  dir: 'in' | 'out';
  bytes: number;
  binary: boolean;
  /** What a fault did to it: dropped, delayed (ms) or null. */
  dropped: boolean;
  delayed: number | null;
}

/** A marker written through the control API (`POST /marks`). */
export interface MarkRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'mark';
  ts: number;
  label: string;
}

/** A change of the active profile or scenario (hot reload, control API). */
export interface EventRecord {
  v: typeof RECORD_SCHEMA_VERSION;
  type: 'event';
  ts: number;
  /**
   * `records-lost`: `detail.records` lines the recording could not write (`detail.reason`), told once
   * writing worked again. `recording-continued`: the file was moved away or replaced, and this file
   * continues it (`detail.linesBefore` lines, header included, are in that other file).
   */
  event: 'profile' | 'phase' | 'scenario-start' | 'scenario-stop' | 'fault-added' | 'fault-removed' | 'rule-patched' | 'reset' | 'records-lost' | 'recording-continued';
  detail: Record<string, unknown>;
}

export type ExchangeRecord = HttpRecord | WsRecord;
export type AnyRecord = HeaderRecord | HttpRecord | WsRecord | WsMessageRecord | MarkRecord | EventRecord;
