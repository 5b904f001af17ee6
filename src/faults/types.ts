/**
 * The one small interface every fault implements (Toxiproxy's `toxics/toxic.go`).
 *
 * A fault file exports a `FaultDefinition`: its zod options schema (the API), a one-line summary
 * and an example for the docs, and `create`, which turns validated options into a
 * `FaultInstance` once, at profile load. The instance's hooks are the *act* half of
 * decide-then-act: the rules engine has already decided that this fault applies to this request
 * (match, schedule, probability, cohort, firstAttempts); the hooks only touch the wire, through
 * the primitives the proxy hands them in a context. Randomness and time come from the context,
 * so a seed reproduces a session.
 *
 * Order when several faults hit one request (documented in the README):
 *   stage 'delay' (latency before forwarding)  ->  stage 'request' (a terminal fault or a gate)
 *   -> forward to the upstream  ->  stage 'response' (response faults, in rule order).
 * WebSocket faults (stage 'websocket') hook the upgrade, the open connection and each message.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Transform } from 'node:stream';
import type { z } from 'zod';

/** What the rules engine knows about a request when it decides (no body: bodies stream). */
export interface RequestFacts {
  readonly method: string;
  /** Path without the query, as the client sent it (before any target prefix). */
  readonly path: string;
  /** Raw query string without the leading `?`, or null. */
  readonly query: string | null;
  readonly headers: IncomingHttpHeaders;
  /** The client key's value (see `--client-key`). */
  readonly clientKey: string;
  readonly websocket: boolean;
}

export type FaultStage = 'delay' | 'request' | 'response' | 'websocket';

/** Primitives shared by every context. */
export interface BaseFaultContext {
  readonly rule: string;
  readonly facts: RequestFacts;
  /**
   * The exchange's own seeded random stream, in [0, 1): seeded at the engine's decision, so what a
   * fault draws depends on the seed and the sequence of requests, not on when it draws.
   */
  readonly random: () => number;
  /** Epoch milliseconds (the proxy's clock). */
  readonly now: () => number;
  /** Aborted when the client goes away (or the proxy shuts down). */
  readonly signal: AbortSignal;
  /** A wait that ends early when `signal` aborts; resolves true if the full time elapsed. */
  sleep(ms: number): Promise<boolean>;
  /** Runs once when the exchange is over, however it ended (release a capacity slot here). */
  onDone(fn: () => void): void;
}

/** The act primitives of an HTTP exchange. Every injected response is labelled by the proxy. */
export interface HttpFaultContext extends BaseFaultContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Sends a complete injected response. `retryAfter` headers are recorded from `headers`. */
  respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void;
  /** Resets the client's TCP connection (RST). */
  reset(): void;
  /** Closes the client's TCP connection (FIN) without a response. */
  close(): void;
  /** Lets what has been written so far reach the client, then resets (RST): truncation. */
  resetAfterFlush(): void;
  /**
   * Reads the request body and throws it away (its hash is still recorded): for a fault that will
   * never forward it. A body left unread stops the proxy reading the connection, and then it does
   * not see the client leave.
   */
  discardBody(): void;
}

/** What a response-stage hook asks the proxy to do with the upstream's response. */
export type ResponseAction =
  | null // nothing: pass the response through untouched
  | { transform: Transform; lazy?: true } // pipe the body through this transform (throttle, corrupt, truncate...)
  | { drop: true } // swallow the upstream's response and reset the client (lost-response)
  | { delay: number }; // hold the first response byte for this many ms (latency at: response)

/**
 * The event a `lazy` transform emits (once, before it pushes the bytes it changed) the first time
 * it changes the body. A fault returns `{ transform, lazy: true }` when only the body can tell
 * whether it will act (a truncate or a corrupt on a body of unknown length): the exchange is then
 * labelled only when this event comes. The response head is written with the first transformed
 * chunk (or at the end), so a fault that acts on that chunk is in its `x-aftershock-fault` header
 * too. A streamed response whose body has not started sends its head at once, as without faults:
 * a fault that acts later in it is in the record only.
 */
export const FAULT_ACTED = 'aftershock:acted';

/** Act primitives at a WebSocket upgrade, before the client's socket is accepted. */
export interface WsUpgradeContext extends BaseFaultContext {
  /** Refuses the upgrade with a plain HTTP response. */
  respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void;
}

/** Act primitives on an open, relayed WebSocket connection. */
export interface WsFaultContext extends BaseFaultContext {
  /** Closes the client side with a close frame; code 1006 drops TCP without one. */
  closeClient(code: number, reason: string): void;
  /** Stops relaying in both directions without closing (half-open); pings go unanswered. */
  freeze(): void;
}

export type MessageDirection = 'in' | 'out'; // in: client -> upstream, out: upstream -> client

/** What a message hook gets: the connection, and a seeded stream per direction for per-message draws. */
export interface WsMessageContext extends WsFaultContext {
  /**
   * The connection's stream for messages in `dir`: a message's draws depend only on the messages
   * before it in its direction, however the two directions interleave.
   */
  messageRandom(dir: MessageDirection): () => number;
}

/**
 * A per-message verdict: pass (undefined), drop, delay by ms, or 'acted' — the message passes
 * as it is, but the fault acted on the connection because of it (e.g. scheduled a close), so the
 * connection is labelled with the fault's rule.
 */
export type MessageVerdict = undefined | 'drop' | 'acted' | { delay: number };

/** The upstream's response head, as a response fault sees it. */
export interface UpstreamHead {
  readonly statusCode: number;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | undefined>>;
}

/** A fault compiled from validated options. Only the hooks of its stage are called. */
export interface FaultInstance {
  /**
   * The stage this instance acts in, when its options move it away from the definition's stage
   * (e.g. `latency` with `at: response` acts in 'response'). The engine orders faults by it.
   */
  readonly stage?: FaultStage;
  /**
   * stage 'delay' and 'request': return 'handled' when the fault ended the exchange itself, and
   * 'pass' when it chose not to act on this request at all (a gate such as rate-limit or capacity
   * that had room): the exchange goes on and should not be labelled as injected. 'pass' is an
   * answer given at once: a hook that returns a promise holds the request (a delay, a hang, a
   * queue), which is itself the fault, so the exchange is labelled before the wait — a client
   * that gives up during it still leaves a labelled record.
   */
  onRequest?(ctx: HttpFaultContext): void | 'handled' | 'pass' | Promise<void | 'handled'>;
  /** stage 'response': called when the upstream's response head arrives. */
  onResponse?(ctx: HttpFaultContext, upstream: UpstreamHead): ResponseAction;
  /** stage 'websocket': at the upgrade request; 'handled' when it refused the upgrade. */
  onUpgrade?(ctx: WsUpgradeContext): void | 'handled';
  /** stage 'websocket': once both sockets are open. */
  onOpen?(ctx: WsFaultContext): void;
  /** stage 'websocket': for every message, in either direction. */
  onMessage?(ctx: WsMessageContext, dir: MessageDirection, bytes: number, binary: boolean): MessageVerdict;
}

/** Extra facts a fault may use when compiled (e.g. for header-triggered faults). */
export interface FaultBuildEnv {
  readonly rule: string;
}

/** One fault type: its schema is the API; its TypeScript options type is inferred from it. */
export interface FaultDefinition<S extends z.ZodType = z.ZodType, T extends string = string> {
  readonly type: T;
  readonly stage: FaultStage;
  readonly summary: string;
  /** A valid `fault:` value, shown in the docs and checked by a test. */
  readonly example: Readonly<Record<string, unknown>>;
  /** A strict zod object of the options (without `type`). */
  readonly options: S;
  create(options: z.output<S>, env: FaultBuildEnv): FaultInstance;
}
