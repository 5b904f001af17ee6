/**
 * One HTTP exchange, from the request's arrival to its record: the per-request state, the act
 * primitives faults use (it *is* the HttpFaultContext), the forward to the upstream and the
 * streaming of the response back.
 *
 *   request ──▶ decide (rules) ──▶ delay/request faults ──▶ forward (upstream pool) ──▶ upstream
 *                                        │ terminal                                   │
 *                                        ▼                                            ▼
 *   record ◀── close ◀─────────── injected answer           response faults ──▶ stream to client
 *
 * Hot-path rules: no closure per request, one clock read at start and
 * one at the end, a request body is hashed only when it exists, the fast path (no fault) never
 * touches an AbortController or a promise.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Transform } from 'node:stream';
import { FAULT_ACTED, type HttpFaultContext, type RequestFacts, type ResponseAction } from '../faults/types.js';
import type { ActiveFault } from '../rules/types.js';
import type { FaultTag, HttpRecord, Outcome } from '../record/schema.js';
import { BodyHasher } from '../record/body-hash.js';
import { connectionTokens, UNSUPPORTED_CODING, type BodySink, type UpstreamCall, type UpstreamSink } from '../upstream/pool.js';
import { recordedHeaders, type ProxyCore } from './core.js';
import { parseRetryAfter, remoteIp } from './util.js';
import { EXCHANGE_OVER, FaultContextBase } from './fault-context.js';

/** Response headers that describe the connection, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'transfer-encoding',
  'upgrade',
]);

export const kConnId = Symbol('aftershock.conn');
export const kExchange = Symbol('aftershock.exchange');
/** On a client socket: the exchange whose response is not finished yet. */
export const kActive = Symbol('aftershock.active');
/** On a lazy fault's transform: the fault it belongs to (labelled when it acts). */
const kFault = Symbol('aftershock.fault');

/** Exchanges pipelined on a connection behind the one in flight (see the constructor). */
const kQueued = Symbol('aftershock.queued');
/** On a client socket: the exchange whose end cut the connection (see `onSocketGone`). */
const kCutBy = Symbol('aftershock.cutBy');
type ConnSocket = Socket & {
  [kConnId]?: string;
  [kActive]?: HttpExchange | undefined;
  [kQueued]?: HttpExchange[] | undefined;
  [kCutBy]?: HttpExchange | undefined;
  /** Node's own flag of its pipelining guard: set, Node pauses the parser too and resumes both once an answer goes out. */
  _paused?: boolean;
};

/**
 * Pipelined requests held on one connection before it is read no further (Node reads on once an
 * answer goes out): a held request writes nothing, so Node's own guard (it pauses when answers
 * back up) never acts, and one client writing 300,000 GETs in one go took the proxy out of memory.
 */
const MAX_PIPELINED = 32;

function socketGone(this: ConnSocket): void {
  const queued = this[kQueued];
  if (queued !== undefined) for (const ex of [...queued]) ex.onSocketGone();
}

/** Pause between the last written byte and an RST, so the bytes reach the client first. */
const RESET_AFTER_WRITE_MS = 50;

/** Wait at most this long to read a body before an injected reset/close/answer is sent. */
const BODY_READ_LIMIT_MS = 1000;

export class HttpExchange extends FaultContextBase implements HttpFaultContext, UpstreamSink, BodySink {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly facts: RequestFacts;
  readonly ts: number;
  readonly id: string;
  private readonly socket: Socket;
  private readonly ip: string;
  private readonly rawQuery: string | null;
  private tags: FaultTag[] | null = null;
  private ac: AbortController | null = null;
  private doneFns: Array<() => void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** While the request body streams to the upstream: fires when the client sends nothing for --upstream-timeout. */
  private bodyTimer: NodeJS.Timeout | null = null;
  private hasher: BodyHasher | null = null;
  private bodyEnded = false;
  /** The request to the upstream, from the forward on. */
  private proxyReq: UpstreamCall | null = null;
  /** The same call, once the upstream's response head arrived. */
  private proxyRes: UpstreamCall | null = null;
  private outcome: Outcome | null = null;
  private error: string | null = null;
  private upstreamStatus: number | null = null;
  private retryAfterSeconds: number | null = null;
  private ttfb: number | null = null;
  private bytesOut = 0;
  private resetOnEnd = false;
  private closedUp = false;
  /** A lazy fault (labelled only when it acts) transforms the body: the head waits for its first chunk. */
  private lazyHead = false;
  /** The upstream's head, filtered, not written yet (see `lazyHead`). */
  private pendingHead: string[] | null = null;
  /** The status the server wrote on the socket itself when the body could not be parsed. */
  private rejectedWith: number | null = null;
  /** Set by the server when the request came through 'checkContinue'. */
  expectContinue = false;
  /** How this exchange's end cut its connection (RST or FIN), when it did (see `onSocketGone`). */
  private cutWire: 'reset' | 'closed' | null = null;
  /** The cut was the fault's doing (a reset, a close, a truncation, an answer that closes). */
  private cutInjected = false;
  /** An injected answer to `Expect: 100-continue`: the connection closes after it (see `afterBody`). */
  private closeAfterAnswer = false;
  /**
   * Pipelined behind an exchange still in flight: nothing is decided or forwarded until that one
   * has ended (see `release`).
   */
  private held = false;
  /** Came in behind another request on its connection (held until that one's answer was written). */
  private pipelined = false;
  /** What runs instead of the exchange once it is released, when its body could not be parsed. */
  private onRelease: (() => void) | null = null;

  constructor(core: ProxyCore, req: IncomingMessage, res: ServerResponse) {
    super(core);
    this.req = req;
    this.res = res;
    this.ts = core.now();
    this.id = core.nextId();
    this.socket = req.socket;
    this.ip = remoteIp(this.socket);
    const url = req.url as string;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    this.rawQuery = q === -1 ? null : url.slice(q + 1);
    this.facts = {
      method: req.method as string,
      path,
      query: this.rawQuery,
      headers: req.headers,
      clientKey: core.clientKey(req.headers, this.ip),
      websocket: false,
    };
    (req as IncomingMessage & { [kExchange]?: HttpExchange })[kExchange] = this;
    (res as Tagged<ServerResponse>)[kExchange] = this;
    const sock = this.socket as ConnSocket;
    // Pipelined behind an exchange still in flight: Node queues this response, and a queued
    // response gets no 'close' if the connection dies first, so the connection's end ends it.
    // It is also held back: pipelined requests reach the upstream one at a time, as nginx sends
    // them, since parallel processing is only allowed when every method is safe (RFC 9112
    // §9.3.2), and a request behind one whose fault cuts the connection must never run at all.
    if (sock[kActive] !== undefined) {
      let queued = sock[kQueued];
      if (queued === undefined) {
        queued = sock[kQueued] = [];
        sock.once('close', socketGone); // once per connection
      }
      queued.push(this);
      this.held = true;
      this.pipelined = true;
      if (queued.length >= MAX_PIPELINED && sock._paused !== true) {
        // As Node's guard does it: the socket now, the parser once this read is parsed.
        sock._paused = true;
        sock.pause();
      }
    }
    sock[kActive] = this;
    res.on('close', resClose);
  }

  /**
   * @internal The connection closed while this exchange's response was still queued behind another.
   * The client left (`client-abort`), the proxy is stopping (`shutdown`), or the exchange ahead cut
   * the connection (see `noteCutAhead`).
   */
  onSocketGone(): void {
    if (this.closedUp) return;
    const ahead = (this.socket as ConnSocket)[kCutBy];
    if (ahead !== undefined && ahead !== this) this.noteCutAhead(ahead);
    else this.outcome ??= this.core.draining ? 'shutdown' : 'client-abort';
    this.onResClose();
  }

  /**
   * This request was pipelined behind `ahead`, whose end cut the connection before this one was
   * answered (queued behind it, or read just after an answer that closes the connection). Its
   * client did not abort: it is recorded as the wire ended for it (`reset` or `closed`, no status),
   * with `error: connection-cut-ahead`, and an injected cut lends it the fault that did it — the
   * analysis then counts it as the injected failure it was (its retry is a retry after a fault, not
   * after a real failure). The rule is not counted again: it acted once, on `ahead`.
   */
  private noteCutAhead(ahead: HttpExchange): void {
    if (ahead.outcome === 'shutdown') {
      this.outcome ??= 'shutdown';
      return;
    }
    this.outcome ??= ahead.cutWire ?? 'closed';
    this.error ??= 'connection-cut-ahead';
    const by = ahead.tags;
    if (!ahead.cutInjected || by === null || by.length === 0) return;
    const fault = by[by.length - 1] as FaultTag;
    const tags = (this.tags ??= []);
    if (!tags.some((t) => t.rule === fault.rule)) tags.push(fault);
  }

  /** This exchange's end cuts its connection (`wire` is how); `injected` when a fault is why. */
  private markCut(wire: 'reset' | 'closed', injected: boolean): void {
    const sock = this.socket as ConnSocket;
    if (!sock.destroyed) sock[kCutBy] ??= this; // (one the client already closed was not cut by us)
    this.cutWire ??= wire;
    if (injected) this.cutInjected = true;
  }

  // ---------------------------------------------------------------- the flow

  /**
   * Decides and acts. Called once by the server for every request; a request pipelined behind one
   * in flight waits until that one has ended (`release`).
   */
  start(): void {
    this.core.inflight.add(this);
    if (this.held) return;
    this.run();
  }

  /**
   * @internal The exchange ahead of this one on the connection has ended and Node handed this
   * response the socket: the connection goes on, so this request runs now. (Had the connection
   * been closed or cut, this one is ended by the connection's close instead and never runs.)
   */
  release(): void {
    if (!this.held || this.closedUp) return;
    this.held = false;
    const fn = this.onRelease;
    if (fn !== null) {
      fn();
      return;
    }
    try {
      this.run();
    } catch (err) {
      this.failInternal(err);
    }
  }

  /**
   * @internal Runs `fn` once the exchanges ahead on the connection have ended (at once when there
   * are none), instead of this exchange: its body could not be parsed and `fn` answers for it.
   */
  whenReleased(fn: () => void): void {
    if (this.held) this.onRelease = fn;
    else fn();
  }

  private run(): void {
    const decision = this.core.engine.decide(this.facts, { now: this.ts });
    this.decision = decision;
    if (decision.faults.length === 0) {
      this.forward();
      return;
    }
    void this.runRequestFaults(decision.faults).catch((err: unknown) => this.failInternal(err));
  }

  private async runRequestFaults(faults: readonly ActiveFault[]): Promise<void> {
    for (const f of faults) {
      if (f.stage !== 'delay' && f.stage !== 'request') continue;
      const hook = f.instance.onRequest;
      if (hook === undefined) continue;
      this.current = f;
      let r = hook.call(f.instance, this);
      if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') {
        // A hook that waits has acted: the wait (a delay, a hang, a place in a queue) is the fault.
        // Labelled before the wait, since a client that gives up during it has the record written
        // before the await returns.
        this.tagCurrent();
        r = await r;
      } else if (r !== 'pass') {
        // A gate that let the request through untouched ('pass') injected nothing: no label.
        this.tagCurrent();
      }
      if (r === 'handled' || this.closedUp || this.res.headersSent || this.socket.destroyed) return;
    }
    this.current = null;
    this.forward();
  }

  /** Sends the request to the upstream. */
  private forward(): void {
    if (this.closedUp) return;
    const hasBody = this.hasBody();
    // Before the send: the upstream leg may start reading the body synchronously.
    if (hasBody) this.watchBody();
    // The upstream's time to answer counts from the end of the request body (as Envoy's route
    // timeout does): an upload slower than --upstream-timeout is not the upstream being late.
    // A client that stops sending its body must not hold the exchange and an upstream socket for
    // ever: no byte for --upstream-timeout answers 408 (the wait is the client's, not the upstream's).
    if (!hasBody || this.bodyEnded || this.req.complete) this.startUpstreamTimer();
    else {
      this.req.once('end', reqBodyEnd);
      // With Expect: 100-continue the upstream speaks first (100 Continue or its answer).
      if (this.expectContinue) this.startUpstreamTimer();
      else this.startBodyTimer();
    }
    // `Expect: 100-continue` is passed through: the upstream says whether the body may come.
    this.proxyReq = this.expectContinue ? this.core.upstream.sendExpecting(this.req, this.ip, this) : this.core.upstream.send(this.req, this.ip, hasBody, this);
  }

  private startBodyTimer(): void {
    if (this.bodyTimer === null && !this.req.complete) this.bodyTimer = setTimeout(requestBodyTimeout, this.core.upstreamTimeoutMs, this);
  }

  private clearBodyTimer(): void {
    if (this.bodyTimer !== null) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = null;
    }
  }

  /** @internal */
  noteBodyEnded(): void {
    this.bodyEnded = true;
  }

  /** @internal The request body ended: from now on the upstream owes the answer. */
  onRequestBodyEnd(): void {
    this.bodyEnded = true;
    this.clearBodyTimer();
    this.startUpstreamTimer();
  }

  /** @internal A chunk of the request body was read. */
  onRequestBodyChunk(c: Buffer): void {
    (this.hasher as BodyHasher).update(c);
    if (this.bodyTimer !== null) this.bodyTimer.refresh();
    else if (this.timer !== null && this.expectContinue && this.proxyRes === null) {
      // Expect: 100-continue, and the client sent its body without waiting for a 100 that did not
      // come (curl waits 1 s): the upload is under way, so the wait is the client's again.
      clearTimeout(this.timer);
      this.timer = null;
      this.startBodyTimer();
    }
  }

  onRequestBodyTimeout(): void {
    this.bodyTimer = null;
    if (this.closedUp || this.res.headersSent || this.proxyRes !== null) return;
    // The proxy was not reading (the upstream or the pool held the body back), or the body had all
    // arrived: the wait was the upstream's, not the client's.
    if (this.req.complete || this.req.isPaused()) {
      this.onUpstreamTimeout();
      return;
    }
    this.outcome = 'timeout';
    this.error = 'request-timeout';
    this.proxyReq?.abort();
    this.res.shouldKeepAlive = false; // the rest of the body will never be read
    this.sendProxyError(408, 'request-timeout', `the client sent no byte of its request body for ${this.core.upstreamTimeoutMs} ms`);
  }

  private startUpstreamTimer(): void {
    if (this.timer !== null || this.closedUp || this.res.headersSent || this.proxyRes !== null) return;
    this.timer = setTimeout(upstreamTimeout, this.core.upstreamTimeoutMs, this);
  }

  /** UpstreamSink: the upstream's `100 Continue`, passed on to the client. */
  onUpstreamContinue(): void {
    // The upstream said go on: now the client owes its body (unless it sent it already).
    if (!this.req.complete && !this.bodyEnded) {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      this.startBodyTimer();
    }
    if (!this.closedUp && !this.res.headersSent) this.res.writeContinue();
  }

  /**
   * UpstreamSink: an informational answer before the final one. A `103 Early Hints` reaches the
   * client (through Node's `writeEarlyHints`, which sends it only with a Link it can validate);
   * other 1xx (102 Processing) stay behind, and an HTTP/1.0 client gets none (RFC 9110 §15.2).
   */
  onUpstreamInformation(statusCode: number, raw: string[]): void {
    if (statusCode !== 103 || this.closedUp || this.res.headersSent || this.req.httpVersionMinor === 0) return;
    const hints = Object.create(null) as Record<string, string | string[]>;
    const links: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      const lower = name.toLowerCase();
      if (lower === 'link') {
        // One line may carry several links; Node validates them one by one.
        for (const l of value.split(/,\s*(?=<)/)) links.push(l.trim());
        continue;
      }
      if (HOP_BY_HOP.has(lower) || lower === 'content-length') continue;
      const prev = hints[name];
      hints[name] = prev === undefined ? value : `${prev as string}, ${value}`;
    }
    if (links.length === 0) return;
    hints.link = links;
    try {
      this.res.writeEarlyHints(hints);
    } catch {
      // A Link Node cannot validate: the hint is dropped, as every 1xx used to be.
    }
  }

  /** UpstreamSink: the upstream's head arrived. */
  onUpstreamResponse(proxyRes: UpstreamCall): void {
    try {
      this.takeResponse(proxyRes);
    } catch (err) {
      this.failInternal(err);
    }
  }

  private takeResponse(proxyRes: UpstreamCall): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // The upstream answered: a body the client is still sending is no one's timeout now.
    this.clearBodyTimer();
    this.proxyRes = proxyRes;
    this.upstreamStatus = proxyRes.statusCode;
    if (this.closedUp) {
      proxyRes.discard();
      return;
    }
    const faults = this.decision?.faults;
    let transforms: Transform[] | null = null;
    let delay = 0;
    if (faults !== undefined && faults.length > 0) {
      // Labelled once it is known what acted: a body transform picked before a lost-response never
      // touched a byte (no body goes out), a delay before it still holds the reset back.
      let acting: Array<{ f: ActiveFault; body: boolean }> | null = null;
      let drop: ActiveFault | null = null;
      for (const f of faults) {
        if (f.stage !== 'response' || f.instance.onResponse === undefined) continue;
        this.current = f;
        let action: ResponseAction;
        try {
          action = f.instance.onResponse(this, proxyRes);
        } catch (err) {
          this.failInternal(err);
          return;
        }
        if (action === null) continue;
        if ('transform' in action) {
          (transforms ??= []).push(action.transform);
          if (action.lazy === true) {
            // Only the body tells whether it acts: labelled by its FAULT_ACTED, if that comes.
            const t = action.transform as Tagged<Transform> & { [kFault]: ActiveFault };
            t[kExchange] = this;
            t[kFault] = f;
            t.once(FAULT_ACTED, transformActed);
            this.lazyHead = true;
            continue;
          }
          (acting ??= []).push({ f, body: true });
          continue;
        }
        if ('drop' in action) {
          drop = f;
          break;
        }
        if ('delay' in action) {
          delay += action.delay;
          (acting ??= []).push({ f, body: false });
        }
      }
      if (acting !== null) for (const a of acting) if (drop === null || !a.body) this.tag(a.f);
      if (drop !== null) {
        // lost-response: the upstream did the work; the client never hears of it (after the
        // delays picked before it, which add up as response delays do). Labelled when it acts: a
        // client that leaves during the delay was never reset by it.
        if (delay > 0) {
          void this.sleep(delay).then((ok) => {
            proxyRes.discard();
            if (ok && !this.closedUp) {
              this.tag(drop);
              this.dropResponse();
            }
          });
          return;
        }
        this.tag(drop);
        proxyRes.discard();
        this.dropResponse();
        return;
      }
    }
    if (delay > 0) {
      void this.sleep(delay).then((ok) => {
        if (ok && !this.closedUp) this.writeResponse(proxyRes, transforms);
        else proxyRes.discard();
      });
      return;
    }
    this.writeResponse(proxyRes, transforms);
  }

  /** lost-response acts: the client's connection is reset, no byte of the answer sent. */
  private dropResponse(): void {
    this.outcome = 'reset';
    this.markCut('reset', true);
    this.resetNow();
  }

  private writeResponse(proxyRes: UpstreamCall, transforms: Transform[] | null): void {
    const res = this.res;
    if (proxyRes.failed) {
      // The upstream broke off (or went silent) while a response fault held the head: nothing was sent yet.
      this.failMidBody(proxyRes);
      this.resetNow();
      return;
    }
    // An answer before the whole request body arrived (e.g. an early 413): the rest of the body
    // is not read any more, so this connection cannot carry another request.
    if (!this.req.complete && this.hasBody()) res.shouldKeepAlive = false;
    const raw = proxyRes.rawHeaders;
    const out: string[] = [];
    const core = this.core;
    const connTokens = connectionTokens(proxyRes.headers.connection);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      let value = raw[i + 1] as string;
      const lower = name.toLowerCase();
      if (HOP_BY_HOP.has(lower) || (connTokens !== null && connTokens.has(lower))) continue;
      // An HTTP/1.0 client cannot take trailers (no chunked coding): announcing them would make
      // Node refuse the head.
      if (lower === 'trailer' && this.req.httpVersionMinor === 0) continue;
      if (lower === 'retry-after') this.retryAfterSeconds = parseRetryAfter(value, this.core.now());
      else if (lower === 'location' && core.rewriteLocation !== null) value = core.rewriteLocation(value, this.req);
      else if (lower === 'set-cookie' && core.rewriteCookie !== null) value = core.rewriteCookie(value);
      out.push(name, value);
    }
    // With a lazy fault the head is written with the first transformed chunk (or at the end, or
    // when a streamed head is flushed below), so a fault that acts on that chunk is in its label.
    if (this.lazyHead) this.pendingHead = out;
    else this.sendHead(out);
    // Node holds a head until the first body write. A streamed answer (no Content-Length:
    // server-sent events, long polls) may wait long for its first byte, so its head goes out at the
    // end of this turn unless a chunk already carried it: the client sees the status when the
    // upstream sent it, and a sized answer still leaves in one write with its body.
    if (proxyRes.headers['content-length'] === undefined && !proxyRes.complete) setImmediate(flushHead, this);

    // No transform: chunks go straight from the upstream into the response (no Readable, no pipe).
    if (transforms === null && proxyRes.sendTo(this, res)) return;
    const body = proxyRes.stream();
    let last: Readable = body;
    if (transforms !== null) {
      for (const t of transforms) {
        t.on('error', () => this.onTransformError());
        last = last.pipe(t);
      }
    }
    (body as Tagged<Readable>)[kExchange] = this;
    body.on('close', proxyResClose);
    if (proxyRes.headers['transfer-encoding'] !== undefined) body.once('end', trailersEnd);
    (last as Tagged<Readable>)[kExchange] = this;
    last.on('data', countOut);
    last.once('end', bodyEnd);
    last.pipe(res, { end: false });
  }

  /** Writes the upstream's head (filtered), labelled with the faults known to have acted by now. */
  private sendHead(out: string[]): void {
    const pr = this.proxyRes as UpstreamCall;
    if (this.tags !== null && this.core.labelFaults) out.push('x-aftershock-fault', this.label());
    this.res.writeHead(pr.statusCode, pr.statusMessage === '' ? undefined : pr.statusMessage, out);
    this.ttfb = this.core.now() - this.ts;
  }

  /** Writes a head a lazy fault held back (see `lazyHead`), once. */
  private releaseHead(): void {
    const out = this.pendingHead;
    if (out === null) return;
    this.pendingHead = null;
    // (A proxy error may have answered while the head was held.)
    if (!this.closedUp && !this.res.headersSent) this.sendHead(out);
  }

  /** @internal */
  flushHead(): void {
    this.releaseHead();
    // headersSent is already true after writeHead (the head is stored, not sent): no body byte yet is the test.
    if (!this.closedUp && this.bytesOut === 0 && !this.res.writableEnded && !this.res.destroyed) this.res.flushHeaders();
  }

  /** @internal */
  countOut(chunk: Buffer): void {
    if (this.pendingHead !== null) this.releaseHead();
    this.bytesOut += chunk.length;
  }

  /** @internal A lazy fault's transform changed the body. */
  onFaultActed(f: ActiveFault): void {
    if (!this.closedUp) this.tag(f);
  }

  /** BodySink: a chunk of the upstream's body, straight to the client. */
  onUpstreamData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    return this.res.write(chunk);
  }

  /** BodySink: the upstream's body ended. */
  onUpstreamEnd(): void {
    this.copyTrailers();
    this.onBodyEnd();
  }

  /** BodySink: the upstream broke off mid-body. */
  onUpstreamAbort(): void {
    this.onProxyResClose();
  }

  copyTrailers(): void {
    const t = this.proxyRes?.rawTrailers;
    if (t !== undefined && t.length > 0) {
      const pairs: Array<[string, string]> = [];
      for (let i = 0; i < t.length; i += 2) pairs.push([t[i] as string, t[i + 1] as string]);
      this.res.addTrailers(pairs);
    }
  }

  onBodyEnd(): void {
    if (this.pendingHead !== null) this.releaseHead();
    if (this.resetOnEnd) this.flushThenReset();
    else this.res.end();
  }

  onProxyResClose(): void {
    const pr = this.proxyRes;
    // An outcome already set is the cause: the proxy cut the exchange (shutdown, an injected
    // reset, a fault's transform failing) and aborting the upstream closed its body; the upstream
    // did not break off.
    if (pr !== null && !pr.complete && !this.closedUp && !this.resetOnEnd && this.outcome === null) {
      // The upstream broke off (or went silent) mid-response: never turn that into a silently truncated 200.
      this.failMidBody(pr);
      this.resetSoon();
    }
  }

  /**
   * Why a response body the upstream began did not end: silent for --upstream-timeout, not valid
   * HTTP (bad chunking: the label a broken head gets too), or broken off. The client is reset in
   * each case, its head perhaps already sent.
   */
  private failMidBody(pr: UpstreamCall): void {
    if (pr.timedOut) {
      this.error = 'upstream-timeout';
      this.outcome = 'timeout';
    } else if (pr.malformed) {
      this.error = 'upstream-bad-response';
      this.outcome = 'reset';
    } else {
      this.error = 'upstream-reset';
      this.outcome = 'reset';
    }
  }

  onTransformError(): void {
    if (this.closedUp) return;
    this.outcome = 'reset';
    this.error = this.error ?? 'fault-transform-error';
    this.resetNow();
  }

  onUpstreamTimeout(): void {
    this.timer = null;
    if (this.closedUp || this.res.headersSent) return;
    this.outcome = 'timeout';
    this.error = 'upstream-timeout';
    this.proxyReq?.abort();
    this.sendProxyError(504, 'upstream-timeout', `the upstream did not answer within ${this.core.upstreamTimeoutMs} ms`);
  }

  /** UpstreamSink: the request failed before a response head arrived. */
  onUpstreamError(err: Error): void {
    if (this.closedUp || this.outcome === 'timeout') return;
    // undici's parser errors do not always carry an HPE_ code.
    const code = (err as NodeJS.ErrnoException).code ?? (err.name === 'HTTPParserError' ? 'HPE_INVALID' : '');
    if (this.res.headersSent) {
      this.error = 'upstream-reset';
      this.outcome = 'reset';
      this.resetNow();
      return;
    }
    const [errCode, message] = classifyUpstreamError(code, err.message);
    this.error = errCode;
    this.outcome = 'upstream-error';
    // The body the upstream never took is read (and hashed) before the 502, as before an injected
    // answer: a POST refused while the upstream is down carries the hash its retry will, so the
    // analysis chains the retry to it and does not take every POST to the path for one request.
    this.clearBodyTimer();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.afterBody(() => this.sendProxyError(502, errCode, message));
  }

  /** A 502/504 from aftershock itself: JSON body and `x-aftershock-error`, never mistaken for the upstream's. */
  private sendProxyError(status: number, code: string, message: string): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    const body = JSON.stringify({ error: code, message });
    res.statusMessage = STATUS_CODES[status] ?? ''; // not a reason phrase left from the upstream's head
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-aftershock-error': code,
    });
    res.end(body);
    this.ttfb = this.core.now() - this.ts;
    if (this.facts.method !== 'HEAD') this.bytesOut += Buffer.byteLength(body);
  }

  private failInternal(err: unknown): void {
    this.core.log.error({ err, id: this.id }, 'internal error while handling an exchange');
    this.error = 'internal-error';
    if (!this.res.headersSent && !this.closedUp) this.sendProxyError(500, 'internal-error', 'aftershock failed while handling this exchange; see its log');
    else this.resetNow();
  }

  // ---------------------------------------------------------------- request body

  private hasBody(): boolean {
    const h = this.req.headers;
    return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
  }

  /**
   * Hashes the body as it flows. Attaching a 'data' listener would start the flow at once, before
   * the upstream leg listens (it reads the body only once a connection is ready), so the stream is
   * paused explicitly: whoever consumes it resumes it, and both see every chunk.
   */
  private watchBody(): void {
    if (this.hasher !== null || !this.hasBody()) return;
    const h = new BodyHasher();
    this.hasher = h;
    this.req.on('data', reqBodyChunk);
    this.req.pause();
    this.req.once('end', reqBodyEnded);
  }

  /**
   * Runs `fn` once the request body has been read (bounded in time), so an attempt rejected by a
   * fault carries the same body hash as its retry — the analysis groups attempts by it.
   *
   * Except after `Expect: 100-continue`: that client holds its body back until it hears 100
   * Continue, which an injected answer replaces (RFC 9110 §10.1.1), so `fn` runs at once, no body
   * is read (the attempt has no body hash) and the connection closes after the answer — a body
   * the client may still send must not be read as its next request.
   */
  private afterBody(fn: () => void): void {
    // `complete` is not enough: a body that arrived while the stream was paused is parsed but not
    // yet read (and hashed); only 'end' says it was.
    if (!this.hasBody() || this.bodyEnded || this.req.readableEnded || this.req.destroyed) {
      fn();
      return;
    }
    if (this.expectContinue) {
      this.res.shouldKeepAlive = false;
      this.closeAfterAnswer = true;
      fn();
      return;
    }
    this.watchBody();
    let ran = false;
    const run = (): void => {
      if (ran) return;
      ran = true;
      clearTimeout(t);
      fn();
    };
    const t = setTimeout(run, BODY_READ_LIMIT_MS);
    this.req.once('end', run);
    this.req.once('close', run);
    this.req.resume();
  }

  // ---------------------------------------------------------------- HttpFaultContext

  protected get over(): boolean {
    return this.closedUp;
  }

  get signal(): AbortSignal {
    if (this.ac === null) {
      this.ac = new AbortController();
      if (this.closedUp) this.ac.abort(EXCHANGE_OVER);
    }
    return this.ac.signal;
  }

  onDone(fn: () => void): void {
    if (this.closedUp) {
      fn();
      return;
    }
    (this.doneFns ??= []).push(fn);
  }

  respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void {
    const res = this.res;
    if (res.headersSent || this.closedUp) return;
    this.tagCurrent();
    const h: OutgoingHttpHeaders = { ...headers };
    if (this.core.labelFaults && this.tags !== null) h['x-aftershock-fault'] = this.label();
    const ra = h['retry-after'];
    if (ra !== undefined) this.retryAfterSeconds = parseRetryAfter(String(ra), this.core.now());
    const payload = body ?? '';
    // A 1xx or 204 must not carry a Content-Length (RFC 9110 §8.6), and a 304's would have to be
    // the length of the representation it stands for, which an injected answer has none of.
    if (!hasNoContent(status)) h['content-length'] ??= Buffer.byteLength(payload);
    else if (status !== 304) delete h['content-length'];
    this.afterBody(() => {
      if (res.headersSent || this.closedUp) return;
      if (this.closeAfterAnswer) this.markCut('closed', true);
      res.writeHead(status, h);
      res.end(payload);
      this.ttfb = this.core.now() - this.ts;
      // What the client was sent: no body in an answer to HEAD (or a 204/304, prepared empty).
      if (this.facts.method !== 'HEAD') this.bytesOut += Buffer.byteLength(payload);
    });
  }

  reset(): void {
    this.tagCurrent();
    this.outcome = 'reset';
    this.afterBody(() => {
      this.markCut('reset', true);
      // Pipelined behind an answer just written on this connection: that answer gets a moment to
      // leave first, or the RST can overtake it and the client see a clean end, not a reset.
      if (this.pipelined && !this.socket.destroyed) {
        this.proxyReq?.abort();
        const t = setTimeout(() => this.resetNow(), RESET_AFTER_WRITE_MS);
        t.unref();
        this.socket.once('close', () => clearTimeout(t));
      } else this.resetNow();
    });
  }

  discardBody(): void {
    // With Expect: 100-continue no 100 is sent: a client that sends its body anyway (curl does
    // after 1 s) has it read and dropped, and one that waits is still seen when it leaves.
    if (!this.hasBody() || this.bodyEnded || this.req.complete) return;
    this.watchBody();
    this.req.resume();
  }

  close(): void {
    this.tagCurrent();
    this.outcome = 'closed';
    this.afterBody(() => {
      const s = this.socket;
      if (s.destroyed) return;
      this.markCut('closed', true);
      // FIN without a response: half-close our side; destroy later in case the client never closes.
      s.end();
      setTimeout(() => s.destroy(), 5000).unref();
    });
  }

  resetAfterFlush(): void {
    this.resetOnEnd = true;
    this.outcome = 'reset';
    if (this.proxyRes === null) this.flushThenReset();
  }

  private flushThenReset(): void {
    const s = this.socket;
    if (s.destroyed) return;
    this.markCut('reset', true); // only a fault asks for a reset after the flush (truncate)
    this.releaseHead();
    // A head with no body byte after it may still be held by Node (truncate after: 0): send it.
    if (!this.res.headersSent || this.bytesOut === 0) this.res.flushHeaders();
    s.write('', () => this.resetSoon());
  }

  private resetNow(): void {
    const s = this.socket;
    this.markCut('reset', false);
    this.proxyReq?.abort();
    if (!s.destroyed) s.resetAndDestroy();
  }

  /**
   * A reset after bytes were written: give the kernel a moment to put them on the wire, or the RST
   * discards them and the client may see a clean end instead of a reset.
   */
  private resetSoon(): void {
    this.proxyReq?.abort();
    if (!this.res.headersSent) {
      this.resetNow();
      return;
    }
    const t = setTimeout(() => this.resetNow(), RESET_AFTER_WRITE_MS);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }

  // ---------------------------------------------------------------- end and record

  /** Labels the exchange with a fault that acted on it, once per rule; a rule counted when it acts counts now. */
  private tag(f: ActiveFault): void {
    const tags = (this.tags ??= []);
    for (let i = 0; i < tags.length; i++) if ((tags[i] as FaultTag).rule === f.rule) return;
    tags.push({ rule: f.rule, type: f.type, injected: true });
    f.acted?.();
  }

  private tagCurrent(): void {
    if (this.current !== null) this.tag(this.current);
  }

  private label(): string {
    const tags = this.tags as FaultTag[];
    let s = '';
    for (let i = 0; i < tags.length; i++) s += (i === 0 ? '' : ', ') + tags[i]!.rule + '/' + tags[i]!.type;
    return s;
  }

  /**
   * The request's body could not be parsed (the server answers `status` on the socket, labelled
   * `code`): the upstream request stops and this exchange is recorded as a bad request, with the
   * code its answer carried (`headers-too-large` for a 431 on oversized trailers).
   */
  rejectBody(status: number, code: string): void {
    this.rejectedWith = status;
    this.outcome = 'bad-request';
    this.error = code;
    this.proxyReq?.abort();
  }

  /** Marks an exchange cut short by shutdown (recorded with outcome 'shutdown'). */
  abortForShutdown(): void {
    if (this.closedUp) return;
    if (this.outcome === null) this.outcome = 'shutdown';
    this.resetNow();
  }

  recordNow(): void {
    this.abortForShutdown();
    this.onResClose(); // the close event would come on a later turn, which an exiting process never has
  }

  onResClose(): void {
    if (this.closedUp) return;
    this.closedUp = true;
    const sock = this.socket as ConnSocket;
    if (sock[kActive] === this) sock[kActive] = undefined;
    const queued = sock[kQueued];
    if (queued !== undefined && queued.length > 0) {
      const i = queued.indexOf(this);
      if (i !== -1) queued.splice(i, 1);
    }
    const core = this.core;
    const end = core.now();
    if (this.timer !== null) clearTimeout(this.timer);
    this.clearBodyTimer();
    // The record below takes the body's hash: the rest of a body that still arrives (the answer
    // came before its end, and the kept-alive connection reads on) is not hashed into a digest
    // already taken, which throws.
    if (this.hasher !== null) this.req.off('data', reqBodyChunk);
    if (!this.res.writableFinished && this.outcome === null) {
      const ahead = sock[kCutBy];
      if (ahead !== undefined && ahead !== this) this.noteCutAhead(ahead);
      else this.outcome = 'client-abort';
    }
    // The upstream request goes with the exchange unless both its ends are whole: an answer that
    // did not all reach the client, or a request body that never all came (an early 417 or 413,
    // and the client left without the body, or the connection closes after the answer). Left
    // open, such a request would hold its upstream connection for ever, waiting for the rest.
    if (!this.res.writableFinished || (!this.req.complete && this.hasBody())) {
      this.proxyReq?.abort();
    }
    this.endSleeps();
    this.ac?.abort(EXCHANGE_OVER);
    if (this.doneFns !== null) for (const fn of this.doneFns) safe(fn);
    core.inflight.delete(this);
    // The status the client got: a head Node still held (a sized answer whose body never came, a
    // response queued behind another) never reached it.
    const status = headSent(this.res) ? this.res.statusCode : this.rejectedWith;
    const decision = this.decision;
    if (decision !== null) core.engine.settle(decision, { status, outcome: this.outcome });
    core.recorder.write(this.toRecord(status, end));
    // The next request pipelined on this connection runs once Node gave its response the socket
    // (it does not when this answer closes the connection or the connection is gone).
    const next = queued?.[0];
    if (next !== undefined && next.held && next.res.socket !== null && sock[kCutBy] === undefined && !sock.destroyed) next.release();
  }

  private toRecord(status: number | null, end: number): HttpRecord {
    const req = this.req;
    const tags = this.tags;
    const h = req.headers;
    const headers = recordedHeaders(this.core, h);
    const ua = h['user-agent'];
    return {
      v: 1,
      type: 'http',
      id: this.id,
      ts: this.ts,
      end,
      client: this.facts.clientKey,
      ip: this.ip,
      conn: (this.socket as ConnSocket)[kConnId] ?? '',
      method: this.facts.method,
      path: this.core.redactor.path(this.facts.path),
      query: this.core.redactor.query(this.rawQuery),
      status,
      outcome: this.outcome,
      upstreamStatus: this.upstreamStatus !== null && this.upstreamStatus !== status ? this.upstreamStatus : null,
      bytesIn: this.hasher?.length ?? 0,
      bytesOut: this.bytesOut,
      ttfb: this.ttfb,
      duration: end - this.ts,
      fault: tags === null ? null : (tags[tags.length - 1] as FaultTag),
      faults: tags ?? [],
      retryAfter: this.retryAfterSeconds,
      bodyHash: this.hasher === null || this.hasher.length === 0 ? null : this.hasher.digest(),
      userAgent: ua === undefined ? null : ua,
      headers: headers ?? {},
      error: this.error,
    };
  }
}

// Module-level listeners find their exchange through a symbol on the emitter, so the hot path
// allocates no closure per request for them.
type Tagged<T> = T & { [kExchange]: HttpExchange };

function resClose(this: Tagged<ServerResponse>): void {
  this[kExchange].onResClose();
}

function upstreamTimeout(ex: HttpExchange): void {
  ex.onUpstreamTimeout();
}

/** A status whose answer has no content (RFC 9110 §6.4.1): 1xx, 204, 304. */
export function hasNoContent(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** Whether the response head reached the socket (`headersSent` is already true while Node holds it). */
function headSent(res: ServerResponse): boolean {
  if (res.writableFinished) return true;
  const flushed = (res as ServerResponse & { _headerSent?: boolean })._headerSent;
  // A response queued behind another (no socket yet) keeps what it "sent" in its own buffer.
  return (flushed === undefined ? res.headersSent : flushed) && res.socket !== null;
}

function requestBodyTimeout(ex: HttpExchange): void {
  ex.onRequestBodyTimeout();
}

function reqBodyChunk(this: Tagged<IncomingMessage>, c: Buffer): void {
  this[kExchange].onRequestBodyChunk(c);
}

function reqBodyEnded(this: Tagged<IncomingMessage>): void {
  this[kExchange].noteBodyEnded();
}

function reqBodyEnd(this: Tagged<IncomingMessage>): void {
  this[kExchange].onRequestBodyEnd();
}

function flushHead(ex: HttpExchange): void {
  ex.flushHead();
}

function proxyResClose(this: Tagged<Readable>): void {
  this[kExchange].onProxyResClose();
}

function countOut(this: Tagged<Readable>, chunk: Buffer): void {
  this[kExchange].countOut(chunk);
}

function transformActed(this: Tagged<Transform> & { [kFault]: ActiveFault }): void {
  this[kExchange].onFaultActed(this[kFault]);
}

function trailersEnd(this: Tagged<Readable>): void {
  this[kExchange].copyTrailers();
}

function bodyEnd(this: Tagged<Readable>): void {
  this[kExchange].onBodyEnd();
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    /* a fault's cleanup must not break the record */
  }
}

/** An upstream failure before any answer: the error code the record carries and what the client's 502 says. */
export function classifyUpstreamError(code: string, message: string): [string, string] {
  switch (code) {
    case 'ECONNREFUSED':
      return ['upstream-refused', 'the upstream refused the connection'];
    case UNSUPPORTED_CODING:
      return ['upstream-bad-response', message];
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return ['upstream-dns', `the upstream's host name did not resolve (${code})`];
    case 'UND_ERR_SOCKET':
      // undici's name for an answer it could not take (e.g. an unasked 100 Continue).
      if (message === 'bad response') return ['upstream-bad-response', "the upstream's answer could not be taken (bad response, e.g. an unasked 100 Continue)"];
      return ['upstream-reset', 'the upstream reset the connection before answering'];
    case 'ECONNRESET':
    case 'EPIPE':
      return ['upstream-reset', 'the upstream reset the connection before answering'];
    case 'ETIMEDOUT':
    case 'ECONNABORTED':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['upstream-unreachable', `the upstream could not be reached (${code})`];
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_VERSION':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return ['upstream-bad-response', `the upstream's answer is not valid HTTP (${code})`];
    default:
      if (code.startsWith('HPE_')) return ['upstream-bad-response', `the upstream's answer is not valid HTTP (${code})`];
      if (/certificate|SSL|TLS|self[- ]signed|EPROTO|ERR_TLS/i.test(code + ' ' + message)) {
        return ['upstream-tls', `TLS to the upstream failed (${code || message}); use --insecure for a self-signed staging certificate`];
      }
      return ['upstream-error', `the upstream failed: ${code || message}`];
  }
}
