/**
 * The HTTP leg to the upstream: an undici `Pool` of keep-alive connections to the one target,
 * driven through its low-level `dispatch` API so a response streams straight into the client's
 * response with backpressure and no intermediate objects beyond one Readable.
 *
 * Measured against http-proxy's `web()` (which builds a `ClientRequest` per request through
 * Node's agent), this leg forwards 1.4–1.6x the requests per second on the same machine
 * (BENCHMARKS.md). What http-proxy did for us is done here: hop-by-hop request headers dropped,
 * `Host` set to the target's (unless preserved), `X-Forwarded-For/-Port/-Proto/-Host` appended,
 * the target's path prefix prepended.
 *
 * Nothing a client sends can change where a request goes: the pool's origin is fixed at start.
 *
 * A response that does not end as it should reaches the body's taker as an abort (`failed`), never
 * as a clean end: an upstream that breaks off mid-body, one that goes silent mid-body for the idle
 * limit (`timedOut`), and one that resets after a body delimited only by the connection's close,
 * which undici alone would take as the body's end (see `upstreamResetting`).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { buildConnector, Pool } from 'undici';
import { clientConnection, forwardedHeaders } from './forwarded.js';
import { type Target, upstreamServername, upstreamTarget } from './target.js';

/** Who receives what the upstream answers; implemented by the proxy's HTTP exchange. */
export interface UpstreamSink {
  /**
   * The final (non-1xx) response head arrived. Before returning, or later, the sink takes the body
   * with `res.sendTo()` (straight into the client's response), `res.stream()` (a Readable, for
   * transforms and delays) or `res.discard()`.
   */
  onUpstreamResponse(res: UpstreamCall): void;
  /** The request failed before a response head arrived (refused, reset, TLS, not HTTP, ...). */
  onUpstreamError(err: Error): void;
  /** The upstream answered `100 Continue` to a request sent with `Expect: 100-continue`. */
  onUpstreamContinue?(): void;
  /**
   * The upstream sent an informational answer other than `100 Continue` (a `103 Early Hints`)
   * before its final one: `rawHeaders` are name, value, name, value ... as received.
   */
  onUpstreamInformation?(statusCode: number, rawHeaders: string[]): void;
}

/** Where `sendTo` delivers a body. */
export interface BodySink {
  /** A chunk; false when the destination is full (the call waits for its 'drain'). */
  onUpstreamData(chunk: Buffer): boolean;
  /** The whole body arrived; `res.rawTrailers` holds the trailers. */
  onUpstreamEnd(): void;
  /** The upstream broke off mid-body. */
  onUpstreamAbort(): void;
}

export interface UpstreamOptions {
  /** Verify the upstream's TLS certificate (false with --insecure). */
  readonly verifyTls: boolean;
  /** Upper bound on connections to the upstream. */
  readonly maxSockets: number;
  /** Send the client's Host header instead of the target's. */
  readonly preserveHost: boolean;
  /**
   * How long (ms) a response body may go without a byte once its head arrived (`--upstream-timeout`);
   * then the body fails with `timedOut`. Waiting on a slow client (backpressure) does not count.
   * 0 or absent: no limit.
   */
  readonly bodyTimeoutMs?: number;
}

/** The code of the error a body that went silent fails with (undici's own, for both legs). */
const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';

/**
 * True while an upstream socket emits ECONNRESET. undici takes a reset that comes while a body
 * delimited only by the connection's close is arriving as the body's end (macOS sends a reset after
 * a full body, its comment says) and completes the response from its own 'error' listener,
 * synchronously. A handler is never told which socket it is on, so every socket gets a listener
 * before undici's (set) and one after it (clear): `onComplete` runs between the two exactly when
 * a reset ended the body, and nothing else runs there.
 */
let upstreamResetting = false;

function noteResetStart(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ECONNRESET') return;
  upstreamResetting = true;
  // Should a listener in between throw, the clear below never runs: this one does.
  queueMicrotask(noteResetEnd);
}

function noteResetEnd(): void {
  upstreamResetting = false;
}

/** undici's connector, with the reset listeners above around undici's own on every socket it makes. */
function connectorNotingResets(opts: buildConnector.BuildOptions): buildConnector.connector {
  const connect = buildConnector(opts);
  return (options, callback) =>
    connect(options, (...args) => {
      const socket = args[1];
      socket?.on('error', noteResetStart);
      callback(...args); // undici adds its listeners now, synchronously
      socket?.on('error', noteResetEnd);
    });
}

/**
 * Request headers not forwarded: those that describe the client's connection, not the message
 * (RFC 9110 §7.6.1); `Trailer`, since request trailers never reach the upstream (neither leg sends
 * any: a body re-framed with a Content-Length has no place for them, a chunked one ends bare); and
 * the proxy's own control header (header-triggered faults, rules/header-faults.ts).
 */
const SKIP_REQUEST = new Set([
  'trailer',
  'x-aftershock-fault',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'upgrade',
  'expect',
  'transfer-encoding',
  'host',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
]);

/** The body as a Readable: for response transforms and delays. */
class UpstreamBody extends Readable {
  private readonly call: UpstreamCall;

  constructor(call: UpstreamCall) {
    super();
    this.call = call;
  }

  override _read(): void {
    this.call.resumeNow();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Destroyed before the end (client gone, a fault cut it): stop the upstream transfer too.
    if (!this.call.complete) this.call.abort();
    cb(err);
  }
}

const enum Mode {
  /** No taker yet: chunks are held (in a Readable) until one comes. */
  Undecided,
  Direct,
  Stream,
  Discard,
}

/**
 * One request to the upstream and, once its head arrived, its response: status, headers in their
 * original case and order, trailers, and the body delivered to whoever takes it. It is undici's
 * handler (legacy interface: raw header buffers, no per-request controller objects), so a request
 * costs one object here.
 */
export class UpstreamCall {
  private readonly sink: UpstreamSink;
  private abortFn: ((err?: Error) => void) | null = null;
  private aborted = false;
  private mode = Mode.Undecided;
  private body: UpstreamBody | null = null;
  private direct: BodySink | null = null;
  private dest: NodeJS.WritableStream | null = null;
  private undiciResume: (() => void) | null = null;
  private paused = false;
  private onDrainBound: (() => void) | null = null;

  statusCode = 0;
  statusMessage = '';
  /** name, value, name, value ... as received. */
  rawHeaders: string[] = EMPTY;
  /** Lower-case names; repeated headers joined with ', ' (set-cookie too: read rawHeaders for it). */
  headers: Record<string, string> = {};
  rawTrailers: string[] = EMPTY;
  /** True once the whole body (and trailers) arrived. */
  complete = false;
  /** True when the upstream broke off after the head (before anyone took the body, too). */
  failed = false;
  /** True when it failed because the body went silent for the idle limit (`failed` is true too). */
  timedOut = false;
  /**
   * True when it failed because the body broke HTTP's framing (a bad chunk-size line, say): the
   * upstream's answer is not valid HTTP, it did not break off (`failed` is true too).
   */
  malformed = false;

  /** The request is a HEAD: its answer has no body, whatever its framing headers say. */
  private readonly head: boolean;

  constructor(sink: UpstreamSink, head: boolean) {
    this.sink = sink;
    this.head = head;
  }

  // ------------------------------------------------------------- for the exchange

  /** Stops the request: no more callbacks reach the sink; the connection is not reused. */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fn = this.abortFn;
    if (fn !== null) fn();
    if (this.body !== null && !this.body.destroyed) this.body.destroy();
  }

  /**
   * Delivers the body to `sink`, chunk by chunk, pausing the upstream while `dest` (the client's
   * response) is full: no Readable, no pipe. False (and nothing done) when chunks already went into
   * a Readable: take `stream()` then.
   */
  sendTo(sink: BodySink, dest: NodeJS.WritableStream): boolean {
    // Chunks already held in a Readable (the head waited, e.g. for a delay): take them as a stream.
    if (this.mode !== Mode.Undecided || this.body !== null) return false;
    this.mode = Mode.Direct;
    this.direct = sink;
    this.dest = dest;
    if (this.failed) sink.onUpstreamAbort();
    else if (this.complete) sink.onUpstreamEnd();
    return true;
  }

  /** The body as a Readable (chunks that arrived before this call are in it). */
  stream(): Readable {
    if (this.mode === Mode.Direct || this.mode === Mode.Discard) throw new Error('stream after the body was taken');
    this.mode = Mode.Stream;
    return (this.body ??= new UpstreamBody(this));
  }

  /** Reads and drops the body, so the connection can be reused. */
  discard(): void {
    this.mode = Mode.Discard;
    if (this.body !== null) this.body.resume();
    this.resumeNow();
  }

  /** @internal */
  resumeNow(): void {
    if (!this.paused) return;
    this.paused = false;
    const r = this.undiciResume;
    if (r !== null) r();
  }

  // ------------------------------------------------------------- undici's handler

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort();
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.aborted) return false;
    // 1xx (e.g. 103 Early Hints) are informational: the final answer follows.
    if (statusCode < 200) {
      const info = this.sink.onUpstreamInformation;
      if (info !== undefined) {
        const rawHeaders: string[] = new Array<string>(raw.length);
        for (let i = 0; i < raw.length; i++) rawHeaders[i] = latin1(raw[i]!);
        info.call(this.sink, statusCode, rawHeaders);
      }
      return true;
    }
    const rawHeaders: string[] = new Array<string>(raw.length);
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) {
      const name = latin1(raw[i]!);
      const value = latin1(raw[i + 1]!);
      rawHeaders[i] = name;
      rawHeaders[i + 1] = value;
      const lower = name.toLowerCase();
      const prev = headers[lower];
      headers[lower] = prev === undefined ? value : prev + ', ' + value;
    }
    const te = headers['transfer-encoding'];
    if (te !== undefined && !this.head && statusCode !== 204 && statusCode !== 304 && !isChunkedOnly(te)) {
      // A body in a transfer coding this leg does not decode (gzip, chunked): relayed, its bytes
      // would reach the client still coded and labelled as nothing (RFC 9112 §6.1). Not taken:
      // the connection is dropped and the exchange answers 502.
      this.abort();
      this.sink.onUpstreamError(Object.assign(new Error(`the upstream's answer uses a transfer coding aftershock does not decode (Transfer-Encoding: ${te})`), { code: UNSUPPORTED_CODING }));
      return false;
    }
    this.statusCode = statusCode;
    this.statusMessage = reasonBytes(statusText);
    this.rawHeaders = rawHeaders;
    this.headers = headers;
    this.undiciResume = resume;
    this.sink.onUpstreamResponse(this);
    return !this.aborted;
  }

  onData(chunk: Buffer): boolean {
    if (this.aborted) return false;
    switch (this.mode) {
      case Mode.Direct:
        if ((this.direct as BodySink).onUpstreamData(chunk)) return true;
        this.paused = true;
        (this.dest as NodeJS.WritableStream).once('drain', (this.onDrainBound ??= () => this.resumeNow()));
        return false;
      case Mode.Discard:
        return true;
      default: {
        const body = (this.body ??= new UpstreamBody(this));
        if (body.destroyed) return false;
        if (body.push(chunk)) return true;
        this.paused = true;
        return false;
      }
    }
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    if (this.aborted) return;
    if (upstreamResetting) {
      // A reset, not a close, ended a body delimited by the connection's close: it may be cut short.
      this.onError(Object.assign(new Error('the upstream reset the connection in the middle of the body'), { code: 'ECONNRESET' }));
      return;
    }
    if (trailers !== null && trailers.length > 0) {
      const t: string[] = new Array<string>(trailers.length);
      for (let i = 0; i < trailers.length; i++) t[i] = latin1(trailers[i]!);
      this.rawTrailers = t;
    }
    this.complete = true;
    if (this.mode === Mode.Direct) (this.direct as BodySink).onUpstreamEnd();
    else if (this.mode !== Mode.Discard) (this.body ??= new UpstreamBody(this)).push(null);
  }

  onError(err: Error): void {
    if (this.statusCode !== 0) {
      if (this.complete) return;
      // A 204 or 304 has no body whatever its Content-Length says (RFC 9110 §8.6); undici checks
      // the length anyway and fails the finished response.
      if ((this.statusCode === 204 || this.statusCode === 304) && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
        this.onComplete(null);
        return;
      }
      // Mid-body: the response ends incomplete.
      const wasAborted = this.aborted;
      this.aborted = true;
      if (!this.failed) {
        // The first cause is the one: the close that follows a parse error is no reset of its own.
        if ((err as { code?: string }).code === BODY_TIMEOUT) this.timedOut = true;
        else if (isFramingError(err)) this.malformed = true;
      }
      this.failed = true;
      if (this.mode === Mode.Direct) {
        if (!wasAborted) (this.direct as BodySink).onUpstreamAbort();
      } else if (this.body !== null && !this.body.destroyed) this.body.destroy();
      return;
    }
    if (this.aborted) return;
    this.aborted = true;
    this.sink.onUpstreamError(err);
  }
}

const EMPTY: string[] = [];

/** The code of the error an answer in a transfer coding other than chunked fails with. */
export const UNSUPPORTED_CODING = 'ERR_AFTERSHOCK_UNSUPPORTED_TRANSFER_CODING';

/**
 * Whether a Transfer-Encoding value names chunked alone, the one transfer coding the proxy handles
 * (RFC 9112 §7: any other, gzip before chunked say, changes the body's bytes).
 */
export function isChunkedOnly(value: string): boolean {
  return value === 'chunked' || value.trim().toLowerCase() === 'chunked';
}

/**
 * An error that says the upstream's bytes are not valid HTTP (llhttp's `HPE_` codes, from undici
 * and from Node's client alike; undici's parser errors do not always carry one), as opposed to a
 * connection that broke off.
 */
function isFramingError(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  // A trailer section too large to take (undici's header limit) is a bad answer too, not a reset.
  if (typeof code === 'string') return code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_HEADERS_OVERFLOW';
  return err.name === 'HTTPParserError';
}

/**
 * undici decodes the reason phrase as UTF-8; the wire has bytes. Give them back one char per byte
 * (latin1), which is what Node writes, so an odd reason passes through unchanged.
 */
function reasonBytes(text: string): string {
  let wide = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A control character (undici lets \x01 through) is no reason phrase Node can write: the
    // standard one for the status goes out instead (the proxy failed with a 500 of its own).
    if (c < 0x20 ? c !== 0x09 : c === 0x7f) return '';
    if (c > 0x7e) wide = true;
  }
  return wide ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

function latin1(b: Buffer | string): string {
  return typeof b === 'string' ? b : b.toString('latin1');
}

/** The pool of connections to the target and the request builder. */
export class UpstreamPool {
  private readonly pool: Pool;
  private readonly target: Target;
  private readonly preserveHost: boolean;
  private readonly verifyTls: boolean;
  private readonly maxSockets: number;
  private readonly bodyTimeoutMs: number;
  /** For `Expect: 100-continue` requests only (see `sendExpecting`); made on first use. */
  private expectAgent: http.Agent | null = null;

  constructor(target: Target, opts: UpstreamOptions) {
    this.target = target;
    this.preserveHost = opts.preserveHost;
    this.verifyTls = opts.verifyTls;
    this.maxSockets = opts.maxSockets;
    this.bodyTimeoutMs = opts.bodyTimeoutMs ?? 0;
    this.pool = new Pool(target.url.origin, {
      connections: opts.maxSockets,
      pipelining: 1,
      // aftershock runs its own upstream timeout (--upstream-timeout) until the head arrives.
      headersTimeout: 0,
      // After it, undici's idle timer per connection: no byte of the body for that long (while
      // nobody is waiting on the client) fails the body. A stream that idles longer between events
      // (server-sent events without keep-alive comments) needs a longer --upstream-timeout.
      bodyTimeout: this.bodyTimeoutMs,
      connect: connectorNotingResets(target.protocol === 'https:' ? { rejectUnauthorized: opts.verifyTls } : {}),
    });
    // A connection error with nothing in flight must not become an unhandled 'error'.
    this.pool.on('connectionError', noop);
  }

  /**
   * Sends `req` (its body streamed when it has one) and reports to `sink`. `remote` is the
   * client's address for X-Forwarded-For.
   */
  send(req: IncomingMessage, remote: string, hasBody: boolean, sink: UpstreamSink): UpstreamCall {
    const call = new UpstreamCall(sink, req.method === 'HEAD');
    const headers = this.requestHeaders(req, remote);
    // The call is the handler: undici invokes its methods, no closures per request.
    this.pool.dispatch(
      {
        method: req.method as string,
        path: this.upstreamPath(req),
        headers,
        body: hasBody ? req : null,
      },
      call as unknown as Parameters<Pool['dispatch']>[1],
    );
    return call;
  }

  /** The request's path on the upstream: the target's prefix, then the client's path and query. */
  private upstreamPath(req: IncomingMessage): string {
    return upstreamTarget(this.target, req.url as string);
  }

  /**
   * Sends a request whose client asked `Expect: 100-continue`, with that header, so the upstream
   * decides: its `100 Continue` reaches the client (`onUpstreamContinue`), and an answer it gives
   * first (413, 401, 417) reaches the client before the body is sent. undici refuses the header
   * on HTTP/1.1, so these requests, rare, go through Node's http client on a keep-alive agent of
   * their own; the response is delivered through the same `UpstreamCall` as every other.
   */
  sendExpecting(req: IncomingMessage, remote: string, sink: UpstreamSink): UpstreamCall {
    const call = new UpstreamCall(sink, req.method === 'HEAD');
    const headers = this.requestHeaders(req, remote);
    headers.push('expect', '100-continue');
    const secure = this.target.protocol === 'https:';
    const agent = (this.expectAgent ??= secure
      ? new https.Agent({ keepAlive: true, maxSockets: this.maxSockets, rejectUnauthorized: this.verifyTls })
      : new http.Agent({ keepAlive: true, maxSockets: this.maxSockets }));
    const u = this.target.url;
    const creq = (secure ? https : http).request({
      hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: u.port === '' ? (secure ? 443 : 80) : Number(u.port),
      method: req.method as string,
      path: this.upstreamPath(req),
      headers,
      setHost: false,
      agent,
      // The same server name undici gives the pooled leg for the Host this request sends.
      ...(secure ? { servername: upstreamServername(this.target, this.preserveHost ? req.headers.host : undefined) } : {}),
    });
    call.onConnect((err?: Error) => creq.destroy(err));
    creq.on('continue', () => sink.onUpstreamContinue?.());
    // Other 1xx (103 Early Hints); Node's client reports the 100 here too, and as 'continue' above.
    creq.on('information', (info: { statusCode: number; rawHeaders: string[] }) => {
      if (info.statusCode !== 100) call.onHeaders(info.statusCode, info.rawHeaders as unknown as Buffer[], noop, '');
    });
    creq.on('error', (err: Error) => call.onError(err));
    creq.on('response', (res: IncomingMessage) => {
      // The body's idle limit, as undici keeps it for the pooled leg: restarted by every chunk,
      // not spent while the client holds the body back (the response is paused then).
      let idle: NodeJS.Timeout | null = null;
      if (this.bodyTimeoutMs > 0) {
        idle = setTimeout(() => {
          if (res.isPaused()) {
            idle?.refresh();
            return;
          }
          call.onError(Object.assign(new Error(`the upstream sent no body byte for ${this.bodyTimeoutMs} ms`), { code: BODY_TIMEOUT }));
          creq.destroy();
        }, this.bodyTimeoutMs);
        idle.unref();
      }
      res.on('error', (err: Error) => call.onError(err));
      res.on('close', () => {
        if (idle !== null) clearTimeout(idle);
        if (!res.complete) call.onError(Object.assign(new Error('the upstream broke off the response'), { code: 'ECONNRESET' }));
      });
      if (!call.onHeaders(res.statusCode ?? 0, res.rawHeaders as unknown as Buffer[], () => res.resume(), res.statusMessage ?? '')) {
        res.destroy();
        return;
      }
      res.on('data', (chunk: Buffer) => {
        idle?.refresh();
        if (!call.onData(chunk)) res.pause();
      });
      res.on('end', () => call.onComplete(res.rawTrailers));
    });
    // The body's bytes flow when the client sends them: after the 100 it got, or its own timeout.
    req.pipe(creq);
    return call;
  }

  /**
   * The client's headers in their original case and order, minus hop-by-hop ones (and those the
   * Connection header names), with Host and X-Forwarded-* set the way a reverse proxy sets them.
   */
  private requestHeaders(req: IncomingMessage, remote: string): string[] {
    const raw = req.rawHeaders;
    const out: string[] = [];
    const h = req.headers;
    const named = connectionTokens(h.connection);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const lower = name.toLowerCase();
      if (SKIP_REQUEST.has(lower) || (named !== null && named.has(lower))) continue;
      if (lower === 'te') {
        // Only "trailers" may travel past a proxy.
        if (/\btrailers\b/i.test(raw[i + 1] as string)) out.push(name, 'trailers');
        continue;
      }
      out.push(name, raw[i + 1] as string);
    }
    const host = h.host;
    out.push('host', this.preserveHost && host !== undefined ? host : this.target.host);
    // The same X-Forwarded-* a WebSocket upgrade gets (forwarded.ts).
    for (const [name, value] of Object.entries(forwardedHeaders(h, clientConnection(req.socket, remote)))) out.push(name, value);
    return out;
  }

  /** Closes every connection now; in-flight requests fail. */
  async destroy(): Promise<void> {
    this.expectAgent?.destroy();
    await this.pool.destroy().catch(noop);
  }
}

/**
 * Header names a Connection header lists beyond its own options (hop-by-hop for this message, in
 * either direction); null for none, the usual case.
 */
export function connectionTokens(value: string | undefined): Set<string> | null {
  if (value === undefined) return null;
  const v = value.toLowerCase();
  if (v === 'keep-alive' || v === 'close') return null;
  const s = new Set<string>();
  for (const t of v.split(',')) s.add(t.trim());
  return s;
}

function noop(): void {}
