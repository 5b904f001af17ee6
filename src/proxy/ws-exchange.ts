/**
 * One proxied WebSocket connection: the client's socket is terminated here and a second WebSocket
 * is opened to the upstream with `ws`, so messages are visible as messages (faults can delay, drop,
 * freeze and close them) while frames, subprotocols, compression, pings and close codes pass
 * through.
 *
 *   upgrade ──▶ decide ──▶ onUpgrade faults (may refuse) ──▶ open upstream (same subprotocols)
 *          ──▶ accept client with the upstream's choice ──▶ relay both ways (backpressure, faults)
 *          ──▶ mirror the close ──▶ one record
 *
 * A connection that can never need a message-level fault — its decision (made once, at the
 * upgrade, and kept for the connection's life like any exchange's) holds no fault with a message
 * or open hook — and whose messages are not recorded is relayed raw instead: the proxy does both
 * handshakes itself, then copies bytes between the sockets and only reads frame headers for the
 * record (messages, bytes, close code, who closed first). A client that offers permessage-deflate
 * (and no other extension) is relayed raw too: compression is negotiated end to end between
 * client and upstream, and the record counts the compressed payload as it crossed the wire. Any
 * other extension keeps the message relay.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { type WebSocketServer } from 'ws';
import type { MessageDirection, RequestFacts, WsFaultContext, WsUpgradeContext } from '../faults/types.js';
import type { ActiveFault, Decision } from '../rules/types.js';
import type { FaultTag, Outcome, WsRecord } from '../record/schema.js';
import { redactSubprotocol } from '../record/redact.js';
import { recordedHeaders, type ProxyCore } from './core.js';
import { classifyUpstreamError, hasNoContent, kConnId } from './http-exchange.js';
import { parseRetryAfter, remoteIp } from './util.js';
import { EXCHANGE_OVER, FaultContextBase } from './fault-context.js';
import { FrameCounter, acceptKey, closeFrame, newKey, onlyPermessageDeflate, parseProtocols, validKey } from './ws-raw.js';
import { upstreamServername, upstreamTarget } from '../upstream/target.js';
import { FORWARDED_APPENDED, clientConnection, forwardedHeaders } from '../upstream/forwarded.js';
import { connectionTokens } from '../upstream/pool.js';

/** Pause the sending side when the receiving side has this much queued. */
const HIGH_WATER = 1024 * 1024;
/** Bytes a client may send before its handshake is answered (kept for the relay); more ends it. */
const EARLY_DATA_MAX = 1024 * 1024;
const LOW_WATER = 256 * 1024;
/** How long a closing raw connection waits for the other side before it is dropped (ws's own). */
const CLOSE_TIMEOUT = 30_000;

/**
 * Destroys a socket that has not closed within `ms` (a side that never answers a close); the timer
 * goes with the socket's close, so a closed connection holds no timer (and no closure over it).
 */
function destroyLater(sock: Socket, ms: number): void {
  if (sock.destroyed) return;
  const t = setTimeout(() => sock.destroy(), ms).unref();
  sock.once('close', () => clearTimeout(t));
}
/** At shutdown, how long open WebSockets get to take their 1001 before they are cut. */
const SHUTDOWN_CLOSE_MS = 1000;
/** How long a ws-close 1006 waits for the messages relayed before it to go out. */
const DROP_FLUSH_MS = 1000;

/**
 * Request headers not copied to the upstream handshake: hop-by-hop ones, the handshake's own (ws
 * writes them) and X-Forwarded-For/-Port/-Proto (forwarded.ts appends to them). Those the
 * client's Connection header names are dropped too.
 */
const SKIP_HEADERS = new Set([
  'host',
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'transfer-encoding',
  'content-length',
  // The proxy's own control header (header-triggered faults), as on an HTTP request.
  'x-aftershock-fault',
]);

/** Headers of the upstream's answer to an upgrade that stay on the upstream's hop (and those its Connection names). */
const HOP_BY_HOP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/**
 * Headers of the upstream's 101 the client does not get as the upstream sent them: hop-by-hop
 * ones and the handshake's own, which the proxy writes for the client's handshake (the accept
 * from the client's key, the subprotocol and extensions negotiated with the client).
 */
const SKIP_101 = new Set([...HOP_BY_HOP_RESPONSE, 'content-length', 'sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions']);

export interface WsServers {
  /** Accepts clients with permessage-deflate (used when the upstream accepted it). */
  readonly deflate: WebSocketServer;
  readonly plain: WebSocketServer;
}

/** A message a ws-delay holds until `at` (epoch ms); `ts` and `delay` are for its message record. */
interface HeldMessage {
  at: number;
  ts: number;
  delay: number;
  from: WebSocket;
  to: WebSocket;
  data: Buffer;
  binary: boolean;
}

/** One direction's held messages (a queue read from `head`), the timer for the first, and what waits for them all. */
interface HeldQueue {
  items: HeldMessage[];
  head: number;
  timer: NodeJS.Timeout | null;
  after: Array<() => void> | null;
  /** Bytes held, for backpressure. */
  bytes: number;
}

export class WsExchange extends FaultContextBase implements WsFaultContext, WsUpgradeContext {
  readonly facts: RequestFacts;
  private readonly servers: WsServers;
  private readonly req: IncomingMessage;
  private readonly socket: Duplex;
  private head: Buffer;
  private readonly ts: number;
  private readonly id: string;
  private readonly ip: string;
  private readonly rawQuery: string | null;
  private tags: FaultTag[] | null = null;
  private readonly ac = new AbortController();
  private doneFns: Array<() => void> | null = null;
  private client: WebSocket | null = null;
  private upstream: WebSocket | null = null;
  private status: number | null = null;
  /** When the client got the handshake's answer (101 or a refusal), for `ttfb`. */
  private answeredAt: number | null = null;
  private outcome: Outcome | null = null;
  private error: string | null = null;
  private retryAfterSeconds: number | null = null;
  private closeCode: number | null = null;
  private closeReason: string | null = null;
  private closedBy: 'client' | 'upstream' | 'proxy' | null = null;
  private messagesIn = 0;
  private messagesOut = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private frozen = false;
  private recorded = false;
  private readonly releaseAt: Record<MessageDirection, number> = { in: 0, out: 0 };
  /** Messages a ws-delay holds, per direction, in the order they came (see `relay`). */
  private readonly held: Record<MessageDirection, HeldQueue | null> = { in: null, out: null };
  // The raw relay (see the header): the upstream handshake, its socket, and the two frame counters.
  private upReq: http.ClientRequest | null = null;
  private upSocket: Socket | null = null;
  private rawIn: FrameCounter | null = null;
  private rawOut: FrameCounter | null = null;
  private rawProtocol: string | null = null;
  /** The upstream's 101 on the message relay, until its headers join the client's 101. */
  private upstream101: IncomingMessage | null = null;
  /** Messages handed to `ws` for each side and not yet written (see `mirror`). */
  private sendsToUpstream = 0;
  private sendsToClient = 0;
  private terminateAfterSends: WebSocket | null = null;
  private shutdownAsked = false;
  /** Shutdown came during the handshake: told 1001 once it opens (within the drain), as HTTP finishes. */
  private shutdownWaiting = false;
  /** The close code the proxy itself sent the client on the raw relay, if it did. */
  private rawCloseSent: number | null = null;
  private rawCloseReason: string | null = null;
  /** The proxy closed a raw connection itself: stop relaying, keep counting. */
  private rawStopped = false;

  constructor(core: ProxyCore, servers: WsServers, req: IncomingMessage, socket: Duplex, head: Buffer) {
    super(core);
    this.servers = servers;
    this.req = req;
    this.socket = socket;
    this.head = head;
    this.ts = core.now();
    this.id = core.nextId();
    this.ip = remoteIp(req.socket);
    const url = req.url as string;
    const q = url.indexOf('?');
    this.rawQuery = q === -1 ? null : url.slice(q + 1);
    this.facts = {
      method: 'GET',
      path: q === -1 ? url : url.slice(0, q),
      query: this.rawQuery,
      headers: req.headers,
      clientKey: core.clientKey(req.headers, this.ip),
      websocket: true,
    };
  }

  start(): void {
    this.core.inflight.add(this);
    this.socket.on('error', () => undefined);
    this.socket.once('close', this.onRawClose);
    const bad = this.handshakeProblem();
    if (bad !== null) {
      this.refuse(bad.status, bad.message);
      return;
    }
    const decision = this.core.engine.decide(this.facts, { now: this.ts });
    this.decision = decision;
    for (const f of decision.faults) {
      if (f.instance.onUpgrade === undefined) continue;
      this.current = f;
      this.tag(f);
      if (f.instance.onUpgrade(this) === 'handled') return;
    }
    this.current = null;
    this.watchClient();
    const protocols = this.rawProtocols(decision);
    if (protocols === null) this.connectUpstream();
    else this.connectRaw(protocols);
  }

  /**
   * While the upstream handshake runs, the client socket is read (an unread socket never reports
   * that its peer left): bytes a client sends early are kept for the relay, and a client that
   * gives up (FIN) is seen at once, so the upstream attempt is dropped and the record says
   * `client-abort` instead of waiting out the upstream timeout. The relay or the answer takes
   * the socket over with `unwatchClient` in the same turn, so no byte can slip between.
   */
  private watchClient(): void {
    this.socket.on('data', this.onEarlyData);
    this.socket.once('end', this.onEarlyEnd);
    this.socket.resume(); // the HTTP server hands an upgraded socket over paused
  }

  private unwatchClient(): void {
    this.socket.off('data', this.onEarlyData);
    this.socket.off('end', this.onEarlyEnd);
  }

  private readonly onEarlyData = (chunk: Buffer): void => {
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    // A client does not send frames before its 101; one that floods here is not a WebSocket client.
    if (this.head.length > EARLY_DATA_MAX) {
      this.error = 'early-data-over-limit';
      this.socket.destroy();
    }
  };

  private readonly onEarlyEnd = (): void => {
    this.socket.destroy(); // 'close' follows: onRawClose records the abandoned handshake
  };

  /**
   * The offered subprotocols when this connection can be relayed raw, else null: no fault with a
   * message or open hook, messages not recorded, no extension offered, and a handshake the `ws`
   * server would accept as is (anything else keeps the `ws` path and its answers).
   */
  private rawProtocols(decision: Decision): string[] | null {
    if (this.core.recordMessages) return null;
    for (const f of decision.faults) {
      if (f.instance.onMessage !== undefined || f.instance.onOpen !== undefined) return null;
    }
    // Method, key and subprotocol list were checked by handshakeProblem before this.
    const h = this.req.headers;
    const ext = h['sec-websocket-extensions'];
    // permessage-deflate passes through unread (negotiated end to end); any other extension
    // needs the message relay, which negotiates its own.
    if ((ext !== undefined && !onlyPermessageDeflate(ext)) || h['sec-websocket-version'] !== '13') return null;
    return parseProtocols(h['sec-websocket-protocol']);
  }

  // ---------------------------------------------------------------- handshake

  /**
   * What `ws` would refuse in the client's handshake, checked before anything reaches the
   * upstream (the upstream must not see an upgrade the proxy then refuses, and the `ws` client
   * throws on a subprotocol list or URL it cannot send).
   */
  private handshakeProblem(): { status: number; message: string } | null {
    const h = this.req.headers;
    if (this.req.method !== 'GET') return { status: 405, message: 'a WebSocket upgrade must be a GET' };
    if ((h.upgrade ?? '').toLowerCase() !== 'websocket') return { status: 400, message: 'invalid Upgrade header' };
    if (!validKey(h['sec-websocket-key'])) return { status: 400, message: 'missing or invalid Sec-WebSocket-Key header' };
    const version = h['sec-websocket-version'];
    if (version !== '13' && version !== '8') return { status: 400, message: 'missing or invalid Sec-WebSocket-Version header' };
    if (parseProtocols(h['sec-websocket-protocol']) === null) return { status: 400, message: 'invalid Sec-WebSocket-Protocol header (bad token or a name given twice)' };
    if ((this.req.url as string).includes('#')) return { status: 400, message: 'the request target contains a fragment (#)' };
    return null;
  }

  /** Answers a handshake the proxy itself refuses (not injected): recorded as a bad request. */
  private refuse(status: number, message: string): void {
    this.error = 'bad-request';
    this.outcome = 'bad-request';
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'x-aftershock-error': 'bad-request' };
    if (status === 400 && message.includes('Version')) headers['sec-websocket-version'] = '13, 8';
    this.writeRawResponse(status, headers, Buffer.from(JSON.stringify({ error: 'bad-request', message })), false);
  }

  /** The client's headers for the upstream handshake, with X-Forwarded-* as an HTTP request gets them. */
  private upstreamHeaders(): Record<string, string> {
    const headers: Record<string, string> = {};
    const raw = this.req.headers;
    const named = connectionTokens(raw.connection);
    for (const k in raw) {
      if (SKIP_HEADERS.has(k) || FORWARDED_APPENDED.has(k) || (named !== null && named.has(k))) continue;
      const v = raw[k];
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    Object.assign(headers, forwardedHeaders(raw, clientConnection(this.req.socket, this.ip)));
    if (this.core.preserveHost && raw.host !== undefined) headers.host = raw.host;
    return headers;
  }

  /**
   * The upstream's answer headers the client gets, in the upstream's spelling and order: without
   * those in `skip` or named in the answer's Connection header, Set-Cookie lines kept apart, and
   * Location and Set-Cookie rewritten as on the HTTP leg (--rewrite-redirects, --cookie-domain).
   */
  private relayedHeaders(res: IncomingMessage, skip: ReadonlySet<string>): Array<[string, string]> {
    const raw = res.rawHeaders;
    const named = connectionTokens(res.headers.connection);
    const core = this.core;
    const out: Array<[string, string]> = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const lower = name.toLowerCase();
      if (skip.has(lower) || (named !== null && named.has(lower))) continue;
      let value = raw[i + 1] as string;
      if (lower === 'set-cookie' && core.rewriteCookie !== null) value = core.rewriteCookie(value);
      else if (lower === 'location' && core.rewriteLocation !== null) value = core.rewriteLocation(value, this.req);
      out.push([name, value]);
    }
    return out;
  }

  private upstreamUrl(): string {
    const t = this.core.target;
    const scheme = t.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${t.host}${upstreamTarget(t, this.req.url as string)}`;
  }

  private connectUpstream(): void {
    const url = this.upstreamUrl();
    const rawTarget = upstreamTarget(this.core.target, this.req.url as string);
    const headers = this.upstreamHeaders();
    const raw = this.req.headers;
    const protoHeader = raw['sec-websocket-protocol'];
    const protocols = protoHeader === undefined ? [] : protoHeader.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const wantsDeflate = /permessage-deflate/i.test(raw['sec-websocket-extensions'] ?? '');
    let upstream: WebSocket;
    try {
      upstream = new WebSocket(url, protocols, {
        headers,
        perMessageDeflate: wantsDeflate,
        autoPong: false,
        handshakeTimeout: this.core.upstreamTimeoutMs,
        rejectUnauthorized: this.core.verifyTls,
        maxPayload: 100 * 1024 * 1024,
        // Passed on to tls.connect by `ws` (its types leave it out).
        ...({ servername: upstreamServername(this.core.target, headers.host) } as object),
        // The request target as the client sent it, as an HTTP request gets it: `ws` would send the
        // WHATWG URL's form (`/a/../b` resolved, `{` escaped), which rules and the record never saw.
        finishRequest: (request: http.ClientRequest) => {
          request.path = rawTarget;
          request.end();
        },
      });
    } catch (err) {
      // `ws` throws on what it cannot send (checked above; this is the backstop): never the process.
      this.refuse(400, `cannot relay this upgrade: ${(err as Error).message}`);
      return;
    }
    this.upstream = upstream;
    upstream.once('upgrade', (res: IncomingMessage) => {
      this.upstream101 = res;
    });
    upstream.on('unexpected-response', this.onUnexpectedResponse);
    upstream.on('error', this.onUpstreamError);
    upstream.once('open', this.onUpstreamOpen);
  }

  private readonly onUnexpectedResponse = (_req: unknown, res: IncomingMessage): void => {
    // The upstream refused the upgrade: the client gets the upstream's answer as is.
    const status = res.statusCode ?? 502;
    const ra = res.headers['retry-after'];
    if (typeof ra === 'string') this.retryAfterSeconds = parseRetryAfter(ra, this.core.now());
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size < 64 * 1024) chunks.push(c);
      size += c.length;
    });
    res.on('error', () => undefined);
    res.once('end', () => {
      const headers: OutgoingHttpHeaders = {};
      for (const [name, value] of this.relayedHeaders(res, HOP_BY_HOP_RESPONSE)) {
        const k = name.toLowerCase();
        const prev = headers[k];
        // Repeated lines stay apart (two Set-Cookie are two cookies).
        headers[k] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
      }
      this.writeRawResponse(status, headers, Buffer.concat(chunks).subarray(0, 64 * 1024));
    });
  };

  private readonly onUpstreamError = (err: Error): void => {
    if (this.client !== null) return; // after open, 'close' follows and is mirrored
    if (this.status !== null || this.socket.destroyed) return;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // The codes an HTTP request gets for the same failure (upstream-tls with its hint, -dns, -reset).
    const [errCode, said] = /timed out/i.test(err.message) ? ['upstream-timeout', ''] : classifyUpstreamError(code, err.message);
    this.error = errCode;
    this.outcome = this.error === 'upstream-timeout' ? 'timeout' : 'upstream-error';
    const message = errCode === 'upstream-error' || errCode === 'upstream-timeout' ? `the upstream WebSocket failed: ${code || err.message}` : `the upstream WebSocket failed: ${said}`;
    const body = JSON.stringify({ error: this.error, message });
    this.writeRawResponse(this.error === 'upstream-timeout' ? 504 : 502, { 'content-type': 'application/json', 'x-aftershock-error': this.error }, Buffer.from(body), false);
  };

  private readonly onUpstreamOpen = (): void => {
    const upstream = this.upstream as WebSocket;
    if (this.socket.destroyed) {
      upstream.terminate();
      return;
    }
    this.unwatchClient();
    const server = /permessage-deflate/i.test(upstream.extensions) ? this.servers.deflate : this.servers.plain;
    const chosen = upstream.protocol;
    (this.req as IncomingMessage & { aftershockProtocol?: string }).aftershockProtocol = chosen;
    // The upstream's 101 headers (a session cookie, say) join the head `ws` writes for the client,
    // after its own handshake headers. handleUpgrade writes that head synchronously (no
    // verifyClient), so the listener is there for this upgrade only.
    const extra = this.upstream101 === null ? [] : this.relayedHeaders(this.upstream101, SKIP_101);
    this.upstream101 = null;
    const addHeaders = (lines: string[], req: IncomingMessage): void => {
      if (req === this.req) for (const [name, value] of extra) lines.push(`${name}: ${value}`);
    };
    if (extra.length > 0) server.on('headers', addHeaders);
    try {
      this.handleUpgrade(server);
    } finally {
      if (extra.length > 0) server.off('headers', addHeaders);
    }
  };

  private handleUpgrade(server: WebSocketServer): void {
    const upstream = this.upstream as WebSocket;
    server.handleUpgrade(this.req, this.socket, this.head, (client) => {
      this.client = client;
      this.status = 101;
      this.answeredAt = this.core.now();
      this.wire(client, upstream);
      const faults = this.decision?.faults ?? [];
      for (const f of faults) {
        if (f.instance.onOpen === undefined) continue;
        // Labelled when it acts (a ws-close after 3 s on a connection the client ends at 1 s never does).
        this.current = f;
        f.instance.onOpen(this.actingAs(f));
      }
      this.current = null;
      if (this.shutdownWaiting) this.abortForShutdown();
    });
  }

  /** This exchange as one fault sees it from `onOpen`: its close or freeze labels the connection with its rule. */
  private actingAs(f: ActiveFault): WsFaultContext {
    const x = this as WsExchange;
    return {
      rule: f.rule,
      facts: x.facts,
      random: x.random,
      now: x.now,
      get signal() {
        return x.signal;
      },
      sleep: (ms) => x.sleep(ms),
      onDone: (fn) => x.onDone(fn),
      closeClient: (code, reason) => {
        if (!x.recorded) x.tag(f);
        x.closeClient(code, reason);
      },
      freeze: () => {
        if (!x.recorded) x.tag(f);
        x.freeze();
      },
    };
  }

  // ---------------------------------------------------------------- raw relay

  /** The upstream handshake without `ws`, checked as `ws` checks it; failures answer as `ws`'s do. */
  private connectRaw(protocols: string[]): void {
    const u = new URL(this.upstreamUrl());
    const key = newKey();
    const headers = this.upstreamHeaders();
    headers['sec-websocket-version'] = '13';
    headers['sec-websocket-key'] = key;
    headers.connection = 'Upgrade';
    headers.upgrade = 'websocket';
    if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(',');
    const ext = this.req.headers['sec-websocket-extensions'];
    if (ext !== undefined) headers['sec-websocket-extensions'] = ext;
    const secure = u.protocol === 'wss:';
    const opts: https.RequestOptions = {
      hostname: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
      port: u.port === '' ? (secure ? 443 : 80) : Number(u.port),
      // As the client sent it (see connectUpstream), not the URL's resolved form.
      path: upstreamTarget(this.core.target, this.req.url as string),
      method: 'GET',
      headers,
      agent: false,
      timeout: this.core.upstreamTimeoutMs,
    };
    if (secure) {
      opts.rejectUnauthorized = this.core.verifyTls;
      opts.servername = upstreamServername(this.core.target, headers.host);
    }
    let req: http.ClientRequest;
    try {
      req = secure ? https.request(opts) : http.request(opts);
    } catch (err) {
      // Node refuses a target it cannot send (a character it does not allow): never the process.
      this.refuse(400, `cannot relay this upgrade: ${(err as Error).message}`);
      return;
    }
    this.upReq = req;
    req.on('error', this.onUpstreamError);
    req.on('timeout', () => {
      this.onUpstreamError(new Error('Opening handshake has timed out'));
      req.destroy();
    });
    req.on('response', (res: IncomingMessage) => this.onUnexpectedResponse(req, res));
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => this.onRawUpgrade(res, socket, head, key, protocols));
    req.end();
  }

  private onRawUpgrade(res: IncomingMessage, up: Socket, upHead: Buffer, key: string, protocols: string[]): void {
    up.on('error', () => undefined);
    if (this.socket.destroyed || this.status !== null) {
      up.destroy();
      return;
    }
    const h = res.headers;
    const chosen = h['sec-websocket-protocol'];
    const problem =
      (h.upgrade ?? '').toLowerCase() !== 'websocket'
        ? 'Invalid Upgrade header'
        : h['sec-websocket-accept'] !== acceptKey(key)
          ? 'Invalid Sec-WebSocket-Accept header'
          : chosen !== undefined && !protocols.includes(chosen)
            ? 'Server sent an invalid subprotocol'
            : h['sec-websocket-extensions'] !== undefined && this.req.headers['sec-websocket-extensions'] === undefined
              ? 'Server sent a Sec-WebSocket-Extensions header but no extension was requested'
              : h['sec-websocket-extensions'] !== undefined && !onlyPermessageDeflate(h['sec-websocket-extensions'])
                ? 'Server indicated an extension that was not requested'
                : null;
    // (An upstream that picks none of the offered subprotocols answers without the header, and
    // the client gets that answer as it is: a browser opens the socket with protocol "".)
    if (problem !== null) {
      up.destroy();
      this.onUpstreamError(new Error(problem));
      return;
    }
    this.unwatchClient();
    this.answeredAt = this.core.now();
    const client = this.socket as Socket;
    // The handshake's headers as `ws` writes them, then the upstream's others (a session cookie, say).
    let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(this.req.headers['sec-websocket-key'] as string)}\r\n`;
    if (chosen) head += `Sec-WebSocket-Protocol: ${chosen}\r\n`;
    const accepted = h['sec-websocket-extensions'];
    if (accepted !== undefined) head += `Sec-WebSocket-Extensions: ${accepted}\r\n`;
    for (const [name, value] of this.relayedHeaders(res, SKIP_101)) head += `${name}: ${value}\r\n`;
    client.write(head + '\r\n');
    this.status = 101;
    this.rawProtocol = chosen || null;
    this.upReq = null;
    this.upSocket = up;
    this.pipeRaw(client, up, upHead, accepted !== undefined);
    if (this.shutdownWaiting) this.abortForShutdown();
  }

  /**
   * Copies bytes both ways with backpressure, counting frames on the way. An end (FIN) is passed
   * on as an end; a reset or a side that closes without ending takes the other side down at once,
   * as `ws`'s terminate() would; a side left open after the other closed gets CLOSE_TIMEOUT.
   */
  private pipeRaw(client: Socket, up: Socket, upHead: Buffer, deflate: boolean): void {
    // An upstream that sends its close and then its FIN still gets the client's close echo
    // (Node's client socket would end the write side at the FIN).
    up.allowHalfOpen = true;
    const cin = (this.rawIn = new FrameCounter(true));
    const cout = (this.rawOut = new FrameCounter(false));
    cin.deflate = cout.deflate = deflate;
    cin.onClose = () => {
      this.closedBy ??= 'client';
    };
    cout.onClose = () => {
      this.closedBy ??= 'upstream';
    };
    for (const s of [client, up]) {
      s.setTimeout(0);
      s.setNoDelay(true);
    }
    const fromClient = (chunk: Buffer): void => {
      const bad = cin.push(chunk);
      if (this.rawStopped) return;
      if (bad === -1) {
        if (!up.write(chunk)) client.pause();
      } else this.failRaw('in', chunk, bad);
    };
    const fromUpstream = (chunk: Buffer): void => {
      const bad = cout.push(chunk);
      if (this.rawStopped) return;
      if (bad === -1) {
        if (!client.write(chunk)) up.pause();
      } else this.failRaw('out', chunk, bad);
    };
    client.on('data', fromClient);
    up.on('data', fromUpstream);
    up.on('drain', () => client.resume());
    client.on('drain', () => up.resume());
    let open = 2;
    const onEnd = (by: 'client' | 'upstream', other: Socket) => (): void => {
      this.closedBy ??= by;
      if (!other.destroyed) other.end();
    };
    const onClose = (by: 'client' | 'upstream', self: Socket, other: Socket) => (): void => {
      this.closedBy ??= by;
      // (Once the proxy closes or fails the connection itself, closeRaw/failRaw own both sides.)
      if (!other.destroyed && !this.rawStopped) {
        // Closed without its end having been read: a reset or a destroy, passed on as one.
        if (self.readableEnded) other.end();
        else other.destroy();
        destroyLater(other, CLOSE_TIMEOUT);
      }
      if (--open === 0) this.finish();
    };
    client.on('end', onEnd('client', up));
    up.on('end', onEnd('upstream', client));
    client.on('close', onClose('client', client, up));
    up.on('close', onClose('upstream', up, client));
    if (this.head.length > 0) fromClient(this.head);
    if (upHead.length > 0) fromUpstream(upHead);
  }

  /**
   * A frame broke the protocol: pass on what came before it, then do what `ws` does — the side
   * that sent it gets a close frame with the error's code (1002, 1007, 1009) and its socket ended,
   * the other side is dropped. The record reads as the message relay's: closed by the sender,
   * close code 1006 (no valid close frame came back).
   */
  private failRaw(dir: MessageDirection, chunk: Buffer, good: number): void {
    const client = this.socket as Socket;
    const up = this.upSocket as Socket;
    const [from, to, fromOut, code] =
      dir === 'in' ? [client, up, this.rawOut as FrameCounter, (this.rawIn as FrameCounter).error] : [up, client, this.rawIn as FrameCounter, (this.rawOut as FrameCounter).error];
    this.rawStopped = true;
    this.closedBy ??= dir === 'in' ? 'client' : 'upstream';
    if (good > 0) {
      to.end(chunk.subarray(0, good));
      destroyLater(to, 1000);
    } else to.destroy();
    if (fromOut.atBoundary) {
      from.end(closeFrame(code ?? 1002, '', dir === 'out'));
      destroyLater(from, CLOSE_TIMEOUT);
    } else from.destroy();
  }

  /** closeClient for a raw connection: close frames where a frame boundary allows, else drop. */
  private closeRaw(code: number, reason: string): void {
    const client = this.socket as Socket;
    const up = this.upSocket as Socket;
    this.rawStopped = true;
    if (code === 1006 || !(this.rawOut as FrameCounter).atBoundary) client.destroy();
    else {
      this.rawCloseSent = code;
      this.rawCloseReason = reason === '' ? null : reason;
      client.end(closeFrame(code, reason, false));
      destroyLater(client, CLOSE_TIMEOUT);
    }
    if (up.destroyed) return;
    if ((this.rawIn as FrameCounter).atBoundary && (this.rawIn as FrameCounter).closeCode === null && (this.rawOut as FrameCounter).closeCode === null) {
      up.end(closeFrame(1001, 'client connection closed by aftershock', true));
      destroyLater(up, CLOSE_TIMEOUT);
    } else up.destroy();
  }

  // ---------------------------------------------------------------- relay

  private wire(client: WebSocket, upstream: WebSocket): void {
    client.on('message', (data: Buffer, binary: boolean) => this.relay('in', client, upstream, data, binary));
    upstream.on('message', (data: Buffer, binary: boolean) => this.relay('out', upstream, client, data, binary));
    client.on('ping', (d: Buffer) => {
      if (!this.frozen && upstream.readyState === WebSocket.OPEN) upstream.ping(d);
    });
    client.on('pong', (d: Buffer) => {
      if (!this.frozen && upstream.readyState === WebSocket.OPEN) upstream.pong(d);
    });
    upstream.on('ping', (d: Buffer) => {
      if (!this.frozen && client.readyState === WebSocket.OPEN) client.ping(d);
    });
    upstream.on('pong', (d: Buffer) => {
      if (!this.frozen && client.readyState === WebSocket.OPEN) client.pong(d);
    });
    client.on('error', () => undefined);
    client.once('close', (code: number, reason: Buffer) => {
      this.closedBy ??= 'client';
      // A close the proxy began keeps the code it sent, even when the client's echo never came.
      if (this.closedBy !== 'proxy' || this.closeCode === null) {
        this.closeCode = code;
        this.closeReason = reason.length > 0 ? reason.toString('utf8') : null;
      }
      // Messages a ws-delay still holds go first: a close never overtakes them.
      this.afterHeld('in', () => {
        this.mirror(upstream, code, reason);
        this.finish();
      });
    });
    upstream.once('close', (code: number, reason: Buffer) => {
      this.closedBy ??= 'upstream';
      this.afterHeld('out', () => this.mirror(client, code, reason));
    });
  }

  /**
   * Runs `fn` once the messages held in `dir` are sent: at once when none are held, or when they
   * can no longer be sent (frozen, shutting down, their receiver closing), which drops them now
   * rather than when their delay would have ended.
   */
  private afterHeld(dir: MessageDirection, fn: () => void): void {
    const q = this.held[dir];
    if (q === null || q.head >= q.items.length) fn();
    else if (this.shutdownAsked || !this.canTake((q.items[q.head] as HeldMessage).to)) {
      this.dropHeld(dir);
      fn();
    } else (q.after ??= []).push(fn);
  }

  /** Drops the messages held in `dir` (recorded as dropped) and runs what waited for them. */
  private dropHeld(dir: MessageDirection): void {
    const q = this.discardHeld(dir);
    if (q !== null && q.after !== null) for (const fn of q.after) fn();
  }

  /**
   * Ends a direction's held messages without sending them (shutdown, or the connection's end
   * came first): each is recorded as dropped, once, before the connection's record.
   */
  private discardHeld(dir: MessageDirection): HeldQueue | null {
    const q = this.held[dir];
    if (q === null) return null;
    if (q.timer !== null) clearTimeout(q.timer);
    this.held[dir] = null;
    for (let i = q.head; i < q.items.length; i++) {
      const m = q.items[i] as HeldMessage;
      this.recordMessage(dir, m.ts, m.data.length, m.binary, true, m.delay);
    }
    return q;
  }

  /**
   * The `--record-messages` record of one message, written once its fate is known: when it is
   * sent or dropped, never while a ws-delay holds it (a held message may yet be dropped). `ts`
   * is when it reached the proxy; `delay` how long it was held (what the faults gave it, or more
   * behind an earlier delayed message).
   */
  private recordMessage(dir: MessageDirection, ts: number, bytes: number, binary: boolean, dropped: boolean, delay: number): void {
    if (!this.core.recordMessages) return;
    this.core.recorder.write({ v: 1, type: 'ws-message', ws: this.id, ts, dir, bytes, binary, dropped, delayed: delay > 0 ? delay : null });
  }

  private relay(dir: MessageDirection, from: WebSocket, to: WebSocket, data: Buffer, binary: boolean): void {
    // The record is written (the client side closed, the upstream's close still on its way): a
    // message now goes nowhere, and neither a count nor a message record may follow the record.
    if (this.recorded) return;
    const bytes = data.length;
    if (dir === 'in') {
      this.messagesIn++;
      this.bytesIn += bytes;
    } else {
      this.messagesOut++;
      this.bytesOut += bytes;
    }
    let dropped = this.frozen;
    let delay = 0;
    const faults = this.decision?.faults;
    if (!dropped && faults !== undefined && faults.length > 0) {
      for (const f of faults) {
        const hook = f.instance.onMessage;
        if (hook === undefined) continue;
        this.current = f;
        const v = hook.call(f.instance, this, dir, bytes, binary);
        if (v === undefined) continue;
        this.tag(f);
        if (v === 'drop') {
          dropped = true;
          break;
        }
        if (v !== 'acted') delay += v.delay;
      }
      if (this.frozen) dropped = true;
    }
    const now = this.core.now();
    if (dropped) {
      this.recordMessage(dir, now, bytes, binary, true, delay);
      return;
    }
    const at = Math.max(now + delay, this.releaseAt[dir]);
    const held = this.held[dir];
    // Behind held messages even when its own time has come: the queue is sent in order.
    if (at > now || (held !== null && held.head < held.items.length)) {
      // Keep order within a direction: a message never overtakes one delayed before it. The held
      // messages wait in one queue per direction behind one timer (a timer each fired in any order
      // when their times met: jittered delays reordered messages).
      this.releaseAt[dir] = at;
      const q = (this.held[dir] ??= { items: [], head: 0, timer: null, after: null, bytes: 0 });
      q.items.push({ at, ts: now, delay, from, to, data, binary });
      q.bytes += data.length;
      // Held bytes count as the receiver's backlog: past the high-water mark the sender waits (a
      // 5 s delay on a fast sender held gigabytes).
      if (q.bytes > HIGH_WATER && !from.isPaused) from.pause();
      if (q.timer === null) this.armHeld(dir, q, now);
      return;
    }
    this.recordMessage(dir, now, bytes, binary, !this.send(from, to, data, binary), delay);
  }

  private armHeld(dir: MessageDirection, q: HeldQueue, now: number): void {
    const first = q.items[q.head] as HeldMessage;
    q.timer = setTimeout(this.releaseHeld, Math.max(0, Math.ceil(first.at - now)), dir);
  }

  /** Sends, in order, every held message of `dir` whose time has come; waits for the next. */
  private readonly releaseHeld = (dir: MessageDirection): void => {
    const q = this.held[dir];
    if (q === null) return;
    q.timer = null;
    if (this.recorded) return;
    // A timer fires up to a millisecond early or late on the clock's fractions: within 1 ms is due.
    const now = this.core.now();
    let last: HeldMessage | null = null;
    while (q.head < q.items.length && (q.items[q.head] as HeldMessage).at <= now + 1) {
      const m = q.items[q.head] as HeldMessage;
      q.items[q.head++] = undefined as unknown as HeldMessage;
      q.bytes -= m.data.length;
      // How long it was held, not only the delay it drew: behind an earlier, longer delay (order is
      // kept) it was due when that one was.
      this.recordMessage(dir, m.ts, m.data.length, m.binary, !this.send(m.from, m.to, m.data, m.binary), Math.max(m.delay, m.at - m.ts));
      last = m;
    }
    if (last !== null && q.bytes < LOW_WATER && last.from.isPaused && last.to.bufferedAmount < LOW_WATER) last.from.resume();
    if (q.head === q.items.length) {
      q.items = [];
      q.head = 0;
      // What waited for the queue (a close that must not overtake the messages).
      const after = q.after;
      q.after = null;
      if (after !== null) for (const fn of after) fn();
    } else {
      if (q.head > 1024 && q.head * 2 > q.items.length) {
        q.items = q.items.slice(q.head);
        q.head = 0;
      }
      this.armHeld(dir, q, now);
    }
  };

  /** Whether `to` takes messages: open, not frozen, and not being dropped once its pending sends are out. */
  private canTake(to: WebSocket): boolean {
    return to.readyState === WebSocket.OPEN && !this.frozen && to !== this.terminateAfterSends;
  }

  /** Hands a message to `to`; false when it cannot take it (see `canTake`): the message is dropped. */
  private send(from: WebSocket, to: WebSocket, data: Buffer, binary: boolean): boolean {
    if (!this.canTake(to)) return false;
    const toUpstream = to === this.upstream;
    if (toUpstream) this.sendsToUpstream++;
    else this.sendsToClient++;
    to.send(data, { binary }, () => {
      const left = toUpstream ? --this.sendsToUpstream : --this.sendsToClient;
      if (left === 0 && this.terminateAfterSends === to) to.terminate();
      // (Not while a ws-delay still holds much of this direction: releasing it resumes the sender.)
      const held = this.held[toUpstream ? 'in' : 'out'];
      if (to.bufferedAmount < LOW_WATER && from.isPaused && (held === null || held.bytes < LOW_WATER)) from.resume();
    });
    if (to.bufferedAmount > HIGH_WATER && !from.isPaused) from.pause();
    return true;
  }

  /**
   * Passes one side's close on to the other. A side that dropped without a close frame (1006) is
   * mirrored by dropping the other too, but only once the messages it sent before are out: with
   * compression a send is queued, and terminating at once lost a client's last messages.
   */
  private mirror(to: WebSocket, code: number, reason: Buffer): void {
    if (to === this.terminateAfterSends) return; // already being dropped: no close frame now
    const pending = to === this.upstream ? this.sendsToUpstream : this.sendsToClient;
    if (code === 1006 && pending > 0 && to.readyState === WebSocket.OPEN) {
      this.terminateAfterSends = to;
      const t = setTimeout(() => to.terminate(), CLOSE_TIMEOUT).unref();
      to.once('close', () => clearTimeout(t));
      return;
    }
    mirrorClose(to, code, reason);
  }

  // ---------------------------------------------------------------- fault primitives

  protected get over(): boolean {
    return this.recorded;
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  onDone(fn: () => void): void {
    if (this.recorded) fn();
    else (this.doneFns ??= []).push(fn);
  }

  respond(status: number, headers: OutgoingHttpHeaders, body?: string | Buffer): void {
    const h: OutgoingHttpHeaders = { ...headers };
    const ra = h['retry-after'];
    if (ra !== undefined) this.retryAfterSeconds = parseRetryAfter(String(ra), this.core.now());
    this.writeRawResponse(status, h, body === undefined ? Buffer.alloc(0) : Buffer.from(body));
  }

  closeClient(code: number, reason: string): void {
    const client = this.client;
    this.closedBy ??= 'proxy';
    if (this.upSocket !== null) {
      this.closeRaw(code, reason);
      return;
    }
    if (client === null) {
      this.socket.destroy();
      return;
    }
    if (code === 1006) {
      // The messages relayed before the drop still go out (a compressed send is queued): the
      // fault drops the connection, not them. Nothing new is sent meanwhile (see `send`), and a
      // client that does not read holds the drop for a second at most: it is the fault's moment.
      if (this.sendsToClient > 0 && client.readyState === WebSocket.OPEN) {
        this.terminateAfterSends = client;
        setTimeout(() => client.terminate(), DROP_FLUSH_MS).unref();
      } else client.terminate();
    } else {
      this.closeCode ??= code;
      this.closeReason ??= reason === '' ? null : reason;
      client.close(code, reason);
    }
    const up = this.upstream;
    if (up !== null && up.readyState === WebSocket.OPEN) up.close(1001, 'client connection closed by aftershock');
  }

  freeze(): void {
    this.frozen = true;
  }

  // ---------------------------------------------------------------- end and record

  private writeRawResponse(status: number, headers: OutgoingHttpHeaders, body: Buffer, label = true): void {
    this.unwatchClient();
    this.status = status;
    this.answeredAt = this.core.now();
    const s = this.socket;
    if (s.destroyed) {
      this.finish();
      return;
    }
    if (label && this.tags !== null && this.core.labelFaults) headers['x-aftershock-fault'] = this.label();
    // (None on a 1xx, 204 or 304: RFC 9110 §8.6; their body is empty.)
    if (hasNoContent(status)) delete headers['content-length'];
    else headers['content-length'] = body.length;
    headers.connection = 'close';
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (const k in headers) {
      const v = headers[k];
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) head += `${k}: ${String(one)}\r\n`;
    }
    s.end(Buffer.concat([Buffer.from(head + '\r\n'), body]));
    this.finish();
  }

  private readonly onRawClose = (): void => {
    if (this.client === null && this.status === null) {
      // The client left before the upgrade completed.
      this.outcome ??= 'client-abort';
      this.upstream?.terminate();
      this.upReq?.destroy();
      this.finish();
    }
  };

  recordNow(): void {
    this.shutdownWaiting = true; // at exit, a handshake has no drain left to finish in
    this.abortForShutdown();
    this.finish(); // the close events would come on a later turn, which an exiting process never has
  }

  abortForShutdown(): void {
    if (!this.shutdownAsked && !this.shutdownWaiting && this.client === null && this.upSocket === null) {
      // Still in its handshake: let it finish within the drain (an HTTP request in flight is
      // answered too); once open it is told 1001, and the drain's end cuts it if it never opens.
      this.shutdownWaiting = true;
      return;
    }
    this.outcome ??= 'shutdown';
    if (this.shutdownAsked) {
      // Asked again (the drain ran out): cut what is left, so the close events record it.
      this.client?.terminate();
      this.upstream?.terminate();
      this.socket.destroy();
      this.upSocket?.destroy();
      this.upReq?.destroy();
      return;
    }
    this.shutdownAsked = true;
    // Held messages are dropped at shutdown: the sockets close with 1001 at once.
    this.dropHeld('in');
    this.dropHeld('out');
    if (this.client !== null || this.upSocket !== null) this.closeClient(1001, 'aftershock is shutting down');
    else this.socket.destroy();
    // The 1001 close frames are queued (behind compression, buffered writes): a terminate now
    // would cut them off, so both sides get a moment to take them.
    const up = this.upstream;
    if (up !== null) {
      if (this.client === null) up.terminate();
      else setTimeout(() => up.terminate(), SHUTDOWN_CLOSE_MS).unref();
    }
    this.upReq?.destroy();
  }

  /** Labels the connection with a fault that acted on it: once per rule, however many messages it touched. */
  private tag(f: ActiveFault): void {
    const tags = (this.tags ??= []);
    for (let i = 0; i < tags.length; i++) if ((tags[i] as FaultTag).rule === f.rule) return;
    tags.push({ rule: f.rule, type: f.type, injected: true });
    f.acted?.();
  }

  private label(): string {
    return (this.tags as FaultTag[]).map((t) => `${t.rule}/${t.type}`).join(', ');
  }

  /** The chosen subprotocol, with a credential in it hidden as in the offered list (see `redactSubprotocol`). */
  private recordedProtocol(): string | null {
    const chosen = this.client?.protocol || this.rawProtocol;
    if (chosen === null || chosen === '') return null;
    return redactSubprotocol(chosen, this.req.headers['sec-websocket-protocol']);
  }

  private finish(): void {
    if (this.recorded) return;
    this.recorded = true;
    const core = this.core;
    const end = core.now();
    this.endSleeps();
    this.ac.abort(EXCHANGE_OVER);
    // Messages still held never go out now (the close that waited for them is not coming).
    this.discardHeld('in');
    this.discardHeld('out');
    if (this.doneFns !== null) {
      for (const fn of this.doneFns) {
        try {
          fn();
        } catch {
          /* ignore */
        }
      }
    }
    core.inflight.delete(this);
    if (this.decision !== null) core.engine.settle(this.decision, { status: this.status, outcome: this.outcome, openedAt: this.status === 101 ? this.answeredAt : null });
    const h = this.req.headers;
    const headers = recordedHeaders(core, h) ?? {};
    const rin = this.rawIn;
    const rout = this.rawOut;
    if (rin !== null && rout !== null) {
      this.messagesIn = rin.messages;
      this.bytesIn = rin.bytes;
      this.messagesOut = rout.messages;
      this.bytesOut = rout.bytes;
      // As with `ws`: the code of the client's close frame (its echo, when the other side began), 1006 without one.
      this.closeCode = rin.closeCode ?? this.rawCloseSent ?? 1006;
      this.closeReason = rin.closeCode !== null ? rin.closeReason : this.rawCloseReason;
    }
    const tags = this.tags;
    const rec: WsRecord = {
      v: 1,
      type: 'ws',
      id: this.id,
      ts: this.ts,
      end,
      client: this.facts.clientKey,
      ip: this.ip,
      conn: (this.req.socket as { [kConnId]?: string })[kConnId] ?? '',
      method: 'GET',
      path: core.redactor.path(this.facts.path),
      query: core.redactor.query(this.rawQuery),
      status: this.status,
      outcome: this.outcome,
      upstreamStatus: null,
      protocol: this.recordedProtocol(),
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      ttfb: this.answeredAt === null ? null : this.answeredAt - this.ts,
      duration: end - this.ts,
      closeCode: this.closeCode,
      closeReason: this.closeReason,
      closedBy: this.closedBy,
      fault: tags === null ? null : (tags[tags.length - 1] as FaultTag),
      faults: tags ?? [],
      retryAfter: this.retryAfterSeconds,
      bodyHash: null,
      userAgent: h['user-agent'] ?? null,
      headers,
      error: this.error,
    };
    core.recorder.write(rec);
  }
}

/** Mirrors a close from one side to the other; 1005/1006 cannot be sent, so they map to close()/terminate(). */
function mirrorClose(ws: WebSocket, code: number, reason: Buffer): void {
  if (ws.readyState === WebSocket.CLOSED) return;
  if (ws.readyState === WebSocket.CONNECTING) {
    ws.terminate();
    return;
  }
  if (code === 1006) ws.terminate();
  else if (code === 1005) ws.close();
  else if ((code >= 1000 && code <= 1014 && code !== 1004) || (code >= 3000 && code <= 4999)) ws.close(code, reason);
  else ws.close(1011);
}
