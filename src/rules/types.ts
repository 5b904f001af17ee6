/**
 * The contract between the proxy and the rules: what the proxy asks (`decide`), what it reports
 * back (`settle`), and the compiled, frozen profile the engine runs.
 *
 * `decide` is the pure half of decide-then-act: a function of (profile, request facts, seeded
 * random streams, clock, the attempt history it keeps). The proxy then calls the returned faults'
 * hooks in order and reports the exchange's end through `settle`, which feeds `firstAttempts`,
 * `retriesOnly`, `maxActive` and the per-rule counters.
 */
import type { FaultInstance, FaultStage, RequestFacts } from '../faults/types.js';
import type { Outcome } from '../record/schema.js';

/** A fault chosen for one exchange. */
export interface ActiveFault {
  readonly rule: string;
  readonly type: string;
  readonly stage: FaultStage;
  readonly instance: FaultInstance;
  /**
   * Counts the rule as injected, for faults counted when they act rather than when picked (the
   * WebSocket faults: a message delayed or dropped, a close or a freeze that happened). The exchange
   * calls it once, the first time it labels the connection with the rule.
   */
  readonly acted?: () => void;
}

/** The engine's answer for one exchange: faults in application order (delay, request, response). */
export interface Decision {
  readonly faults: readonly ActiveFault[];
  /** Opaque per-exchange state the engine needs back in `settle`. */
  readonly token: unknown;
  /**
   * The seed of the exchange's own random stream (`SeededRandom`), drawn at the decision: every
   * draw its faults make later (a latency, corrupted positions, per-message drops and delays)
   * comes from that stream, never from the engine's, so it depends only on the engine's seed and
   * the sequence of decisions, not on when responses or messages arrive. 0 without faults.
   */
  readonly seed: number;
}

/** How an exchange ended, as the engine needs to know it. */
export interface Settlement {
  readonly status: number | null;
  readonly outcome: Outcome | null;
  /**
   * A WebSocket's: when it opened (the 101 went out, epoch ms). Its open time counts from here, not
   * from the decision, so a slow handshake is not time the socket stayed open.
   */
  readonly openedAt?: number | null;
}

/** Counters per rule, for the control API and metrics. */
export interface RuleStats {
  readonly name: string;
  readonly type: string;
  readonly enabled: boolean;
  readonly probability: number;
  readonly matched: number;
  readonly injected: number;
  readonly active: boolean;
  /** Ad-hoc rules added at run time carry their expiry (epoch ms) or null. */
  readonly expiresAt: number | null;
  readonly adHoc: boolean;
}

/** What `decide` is called with besides the facts. */
export interface DecideEnv {
  /** Epoch milliseconds. */
  readonly now: number;
}
