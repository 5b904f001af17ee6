/**
 * What every exchange shares: the target, the rules engine, the recorder and the proxy's settings,
 * gathered once at start so the per-request code reads fields instead of looking things up.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RequestFacts } from '../faults/types.js';
import type { Decision, DecideEnv, Settlement } from '../rules/types.js';
import type { Recorder } from '../record/recorder.js';
import { redactSubprotocols, type Redactor } from '../record/redact.js';
import { RETRY_HEADERS, type RetryHeaderName } from '../record/schema.js';
import type { Target } from '../upstream/target.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { ClientKeyFn } from './client-key.js';

/** The part of the rules engine the proxy calls on every exchange. */
export interface DecidingEngine {
  decide(facts: RequestFacts, env: DecideEnv): Decision;
  settle(decision: Decision, settlement: Settlement): void;
}

/** Anything that can be aborted when the proxy shuts down. */
export interface InFlight {
  abortForShutdown(): void;
  /** Ends the exchange now and writes its record synchronously (the process is about to exit). */
  recordNow(): void;
}

export interface ProxyCore {
  readonly target: Target;
  engine: DecidingEngine;
  readonly recorder: Recorder;
  readonly clientKey: ClientKeyFn;
  readonly redactor: Redactor;
  readonly log: Logger;
  readonly labelFaults: boolean;
  /** Verify the upstream's TLS certificate (false with --insecure). */
  readonly verifyTls: boolean;
  /** Keep the client's Host header (--host-header preserve) instead of the target's. */
  readonly preserveHost: boolean;
  readonly upstreamTimeoutMs: number;
  readonly recordHeaders: readonly string[];
  readonly recordMessages: boolean;
  readonly inflight: Set<InFlight>;
  /** Shutdown has begun: connections closing now are the proxy's doing. */
  draining: boolean;
  readonly rewriteLocation: ((value: string, req: IncomingMessage) => string) | null;
  readonly rewriteCookie: ((value: string) => string) | null;
  /** The HTTP leg to the target. */
  readonly upstream: UpstreamPool;
  /** Epoch milliseconds with sub-millisecond precision (a shared function, safe to pass around). */
  readonly now: () => number;
  nextId(): string;
}

/**
 * The request headers a record carries: the retry headers the analysis reads, then the
 * `--record-headers` ones (redacted when secret), for HTTP and WebSocket records alike (a client
 * keyed by such a header is the same client on both kinds of record). Null when there are none.
 */
export function recordedHeaders(core: ProxyCore, h: IncomingHttpHeaders): Partial<Record<RetryHeaderName, string>> | null {
  let headers: Record<string, string> | null = null;
  for (const name of RETRY_HEADERS) {
    const v = h[name];
    if (typeof v === 'string') (headers ??= {})[name] = v;
  }
  for (const name of core.recordHeaders) {
    const v = h[name];
    if (v === undefined) continue;
    // A subprotocol can carry a token (WebSocket clients cannot send Authorization): kept, but hidden.
    (headers ??= {})[name] = core.redactor.headers.has(name) ? '[redacted]' : name === 'sec-websocket-protocol' ? redactSubprotocols(String(v)) : String(v);
  }
  return headers;
}
