/**
 * One proxied WebSocket connection: the client's socket is terminated here and a second WebSocket
 * is opened to the upstream with `ws`, so messages are visible as messages (faults can delay, drop,
 * freeze and close them) while frames, subprotocols, compression, pings and close codes pass
 * through.
 *
 *   upgrade ──▶ decide ──▶ onUpgrade faults (may refuse) ──▶ open upstream (same subprotocols)
 *          ──▶ accept client with the upstream's choice ──▶ relay both ways (backpressure, faults)
 *          ──▶ mirror the close ──▶ one record
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { type WebSocketServer } from 'ws';
import type { MessageDirection, RequestFacts, WsFaultContext, WsUpgradeContext } from '../faults/types.js';
import type { ActiveFault, Decision } from '../rules/types.js';
import type { FaultTag, Outcome, RetryHeaderName, WsRecord } from '../record/schema.js';
import { RETRY_HEADERS } from '../record/schema.js';
import type { ProxyCore } from './core.js';
import { kConnId } from './http-exchange.js';
import { cancellableSleep, parseRetryAfter, remoteIp } from './util.js';
import { FaultContextBase } from './fault-context.js';

/** Pause the sending side when the receiving side has this much queued. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** Request headers not copied to the upstream handshake (ws writes its own). */
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
]);

export interface WsServers {
  /** Accepts clients with permessage-deflate (used when the upstream accepted it). */
  readonly deflate: WebSocketServer;
  readonly plain: WebSocketServer;
}

export class WsExchange extends FaultContextBase implements WsFaultContext, WsUpgradeContext {
  readonly facts: RequestFacts;
  private readonly servers: WsServers;
  private readonly req: IncomingMessage;
  private readonly socket: Duplex;
  private readonly head: Buffer;
  private readonly ts: number;
  private readonly id: string;
  private readonly ip: string;
  private readonly rawQuery: string | null;
  private decision: Decision | null = null;
  private tags: FaultTag[] | null = null;
  private readonly ac = new AbortController();
  private doneFns: Array<() => void> | null = null;
  private client: WebSocket | null = null;
  private upstream: WebSocket | null = null;
  private status: number | null = null;
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
    const decision = this.core.engine.decide(this.facts, { now: this.ts });
    this.decision = decision;
    for (const f of decision.faults) {
      if (f.instance.onUpgrade === undefined) continue;
      this.current = f;
      this.tag(f);
      if (f.instance.onUpgrade(this) === 'handled') return;
    }
    this.current = null;
    this.connectUpstream();
  }

  // ---------------------------------------------------------------- handshake

  private connectUpstream(): void {
    const t = this.core.target;
    const scheme = t.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${t.host}${t.prefix}${this.req.url as string}`;
    const headers: Record<string, string> = {};
    const raw = this.req.headers;
    for (const k in raw) {
      if (SKIP_HEADERS.has(k)) continue;
      const v = raw[k];
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const xff = raw['x-forwarded-for'];
    headers['x-forwarded-for'] = xff === undefined ? this.ip : `${String(xff)}, ${this.ip}`;
    headers['x-forwarded-proto'] = (this.req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
    if (raw.host !== undefined) headers['x-forwarded-host'] = raw.host;
    if (this.core.preserveHost && raw.host !== undefined) headers.host = raw.host;
    const protoHeader = raw['sec-websocket-protocol'];
    const protocols = protoHeader === undefined ? [] : protoHeader.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const wantsDeflate = /permessage-deflate/i.test(raw['sec-websocket-extensions'] ?? '');
    const upstream = new WebSocket(url, protocols, {
      headers,
      perMessageDeflate: wantsDeflate,
      autoPong: false,
      handshakeTimeout: this.core.upstreamTimeoutMs,
      rejectUnauthorized: this.core.verifyTls,
      maxPayload: 100 * 1024 * 1024,
    });
    this.upstream = upstream;
    upstream.on('unexpected-response', this.onUnexpectedResponse);
    upstream.on('error', this.onUpstreamError);
    upstream.once('open', this.onUpstreamOpen);
  }

  private readonly onUnexpectedResponse = (_req: unknown, res: IncomingMessage): void => {
    // The upstream refused the upgrade: the client gets the upstream's answer as is.
    const status = res.statusCode ?? 502;
    const ra = res.headers['retry-after'];
    if (typeof ra === 'string') this.retryAfterSeconds = parseRetryAfter(ra, this.ts);
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      if (size < 64 * 1024) chunks.push(c);
      size += c.length;
    });
    res.on('error', () => undefined);
    res.once('end', () => {
      const headers: OutgoingHttpHeaders = {};
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const k = (res.rawHeaders[i] as string).toLowerCase();
        if (k === 'connection' || k === 'transfer-encoding' || k === 'keep-alive') continue;
        headers[k] = res.rawHeaders[i + 1] as string;
      }
      this.writeRawResponse(status, headers, Buffer.concat(chunks).subarray(0, 64 * 1024));
    });
  };

  private readonly onUpstreamError = (err: Error): void => {
    if (this.client !== null) return; // after open, 'close' follows and is mirrored
    if (this.status !== null || this.socket.destroyed) return;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    this.error = code === 'ECONNREFUSED' ? 'upstream-refused' : /timed out/i.test(err.message) ? 'upstream-timeout' : 'upstream-error';
    this.outcome = this.error === 'upstream-timeout' ? 'timeout' : 'upstream-error';
    const body = JSON.stringify({ error: this.error, message: `the upstream WebSocket failed: ${code || err.message}` });
    this.writeRawResponse(this.error === 'upstream-timeout' ? 504 : 502, { 'content-type': 'application/json', 'x-aftershock-error': this.error }, Buffer.from(body), false);
  };

  private readonly onUpstreamOpen = (): void => {
    const upstream = this.upstream as WebSocket;
    if (this.socket.destroyed) {
      upstream.terminate();
      return;
    }
    const server = /permessage-deflate/i.test(upstream.extensions) ? this.servers.deflate : this.servers.plain;
    const chosen = upstream.protocol;
    (this.req as IncomingMessage & { aftershockProtocol?: string }).aftershockProtocol = chosen;
    server.handleUpgrade(this.req, this.socket, this.head, (client) => {
      this.client = client;
      this.status = 101;
      this.wire(client, upstream);
      const faults = this.decision?.faults ?? [];
      for (const f of faults) {
        if (f.instance.onOpen === undefined) continue;
        this.current = f;
        this.tag(f);
        f.instance.onOpen(this);
      }
    });
  };

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
      this.closeCode = code;
      this.closeReason = reason.length > 0 ? reason.toString('utf8') : null;
      mirrorClose(upstream, code, reason);
      this.finish();
    });
    upstream.once('close', (code: number, reason: Buffer) => {
      this.closedBy ??= 'upstream';
      mirrorClose(client, code, reason);
    });
  }

  private relay(dir: MessageDirection, from: WebSocket, to: WebSocket, data: Buffer, binary: boolean): void {
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
        delay += v.delay;
      }
      if (this.frozen) dropped = true;
    }
    if (this.core.recordMessages) {
      this.core.recorder.write({ v: 1, type: 'ws-message', ws: this.id, ts: this.core.now(), dir, bytes, binary, dropped, delayed: delay > 0 ? delay : null });
    }
    if (dropped) return;
    const now = this.core.now();
    const at = Math.max(now + delay, this.releaseAt[dir]);
    if (at > now) {
      // Keep order within a direction: a message never overtakes one delayed before it.
      this.releaseAt[dir] = at;
      void cancellableSleep(at - now, this.ac.signal).then((ok) => {
        if (ok) this.send(from, to, data, binary);
      });
      return;
    }
    this.send(from, to, data, binary);
  }

  private send(from: WebSocket, to: WebSocket, data: Buffer, binary: boolean): void {
    if (to.readyState !== WebSocket.OPEN || this.frozen) return;
    to.send(data, { binary }, () => {
      if (to.bufferedAmount < LOW_WATER && from.isPaused) from.resume();
    });
    if (to.bufferedAmount > HIGH_WATER && !from.isPaused) from.pause();
  }

  // ---------------------------------------------------------------- fault primitives

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
    if (ra !== undefined) this.retryAfterSeconds = parseRetryAfter(String(ra), this.ts);
    this.writeRawResponse(status, h, body === undefined ? Buffer.alloc(0) : Buffer.from(body));
  }

  closeClient(code: number, reason: string): void {
    const client = this.client;
    this.closedBy ??= 'proxy';
    if (client === null) {
      this.socket.destroy();
      return;
    }
    if (code === 1006) {
      client.terminate();
    } else {
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
    this.status = status;
    const s = this.socket;
    if (s.destroyed) {
      this.finish();
      return;
    }
    if (label && this.tags !== null && this.core.labelFaults) headers['x-aftershock-fault'] = this.label();
    headers['content-length'] = body.length;
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
      this.finish();
    }
  };

  abortForShutdown(): void {
    this.outcome ??= 'shutdown';
    if (this.client !== null) this.closeClient(1001, 'aftershock is shutting down');
    else this.socket.destroy();
    this.upstream?.terminate();
  }

  private tag(f: ActiveFault): void {
    const tags = (this.tags ??= []);
    if (tags.length > 0 && tags[tags.length - 1]!.rule === f.rule) return;
    tags.push({ rule: f.rule, type: f.type, injected: true });
  }

  private label(): string {
    return (this.tags as FaultTag[]).map((t) => `${t.rule}/${t.type}`).join(', ');
  }

  private finish(): void {
    if (this.recorded) return;
    this.recorded = true;
    const core = this.core;
    const end = core.now();
    this.ac.abort();
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
    if (this.decision !== null) core.engine.settle(this.decision, { status: this.status, outcome: this.outcome });
    const h = this.req.headers;
    const headers: Partial<Record<RetryHeaderName, string>> = {};
    for (const name of RETRY_HEADERS) {
      const v = h[name];
      if (typeof v === 'string') headers[name] = v;
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
      path: this.facts.path,
      query: core.redactor.query(this.rawQuery),
      status: this.status,
      outcome: this.outcome,
      protocol: this.client?.protocol || null,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      duration: end - this.ts,
      closeCode: this.closeCode,
      closeReason: this.closeReason,
      closedBy: this.closedBy,
      fault: tags === null ? null : (tags[tags.length - 1] as FaultTag),
      faults: tags ?? [],
      retryAfter: this.retryAfterSeconds,
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
