/**
 * What every exchange shares: the target, the rules engine, the recorder and the proxy's settings,
 * gathered once at start so the per-request code reads fields instead of looking things up.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { RequestFacts } from '../faults/types.js';
import type { Decision, DecideEnv, Settlement } from '../rules/types.js';
import type { Recorder } from '../record/recorder.js';
import type { Redactor } from '../record/redact.js';
import type { Target } from '../upstream/target.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { ClientKeyFn } from './client-key.js';

/** The part of the rules engine the proxy calls on every exchange. */
export interface DecidingEngine {
  decide(facts: RequestFacts, env: DecideEnv): Decision;
  settle(decision: Decision, settlement: Settlement): void;
  readonly random: () => number;
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
  readonly rewriteLocation: ((value: string, req: IncomingMessage) => string) | null;
  readonly rewriteCookie: ((value: string) => string) | null;
  /** The HTTP leg to the target. */
  readonly upstream: UpstreamPool;
  /** Epoch milliseconds with sub-millisecond precision (a shared function, safe to pass around). */
  readonly now: () => number;
  /** The engine's seeded random source (a shared function). */
  readonly random: () => number;
  nextId(): string;
}

