/**
 * `startProxy`: the listeners, the composition of one request's path, and a graceful stop.
 *
 *   client ──▶ listener (http/https) ──▶ guard (origin-form only, no CONNECT: never an open proxy)
 *          ──▶ HttpExchange / WsExchange ──▶ rules.decide ──▶ faults (act) ──▶ upstream pool / ws
 *          ──▶ upstream ──▶ response faults ──▶ client
 *          ──▶ record (NDJSON, exactly once) ──▶ live analysis, metrics
 *
 * The CLI (`aftershock run`) is a thin shell over this function; tests start it in-process.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';
import { AftershockError } from '../errors.js';
import { parseTarget } from '../upstream/target.js';
import { connectionTokens, isChunkedOnly, UpstreamPool } from '../upstream/pool.js';
import { Recorder } from '../record/recorder.js';
import { createRedactor } from '../record/redact.js';
import type { AnyRecord, HttpRecord } from '../record/schema.js';
import { silentLogger } from '../log.js';
import { compileClientKey, DEFAULT_CLIENT_KEY } from './client-key.js';
import type { InFlight, ProxyCore } from './core.js';
import { HttpExchange, kActive, kConnId, kExchange } from './http-exchange.js';

/** The methods aftershock forwards, as a 405 to CONNECT lists them: all the standard ones but CONNECT. */
const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH';
/** A Transfer-Encoding value whose last coding is chunked. */
const CHUNKED_LAST = /(?:^|,)[ \t]*chunked[ \t]*$/i;
/** Marks a connection the proxy answered with a refusal (and `connection: close`). */
const kRefused = Symbol('aftershock.refused');
/** Marks a TLS connection whose handshake completed. */
const kSecured = Symbol('aftershock.secured');
/** On a connection: the last request whose head was parsed (see `headBegun`). */
const kLastReq = Symbol('aftershock.lastReq');
import { WsExchange, type WsServers } from './ws-exchange.js';
import { parseDurationOption } from '../faults/lib/duration.js';
import { remoteIp } from './util.js';
import { createRuleEngine, loadProfile, parseProfile, watchProfile, type CompiledProfile } from '../rules/index.js';
import { RuleNameTakenError } from '../errors.js';
import { createAnalyzer } from '../analysis/index.js';
import { startAdmin, type AdminServer } from '../admin/server.js';
import { scopeOf } from '../admin/describe-profile.js';
import type { ProfileFileState, ProxyHandle, ProxyOptions } from './handle.js';
import { checkProxyOptions } from './options.js';
import { listenOn, parseHostPort } from './listen.js';

export type { ProxyHandle, ProxyOptions, ProxyStats } from './handle.js';
export { listenOn, parseHostPort } from './listen.js';
import { VERSION } from '../version.js';

const require = createRequire(import.meta.url);
// http-proxy's own cookie/redirect rewriting, reused for the response path aftershock streams itself.
const proxyCommon = require('http-proxy/lib/http-proxy/common.js') as {
  rewriteCookieProperty(header: string, config: Record<string, string>, property: string): string;
};

/**
 * Starts a proxy in front of `options.target`.
 *
 * @example
 * const proxy = await startProxy({ target: 'http://127.0.0.1:3000', listen: '127.0.0.1:0', profile: 'flaky' });
 * await fetch(`${proxy.url}/v1/messages`);
 * console.log(proxy.report().totals);
 * await proxy.close();
 */
export async function startProxy(options: ProxyOptions): Promise<ProxyHandle> {
  checkProxyOptions(options);
  const log = options.logger ?? silentLogger();
  const target = parseTarget(options.target);
  const listen = parseHostPort('--listen', options.listen ?? '127.0.0.1:8080');
  // In-process (tests, scripts) the control API takes a free loopback port unless told which
  // (`proxy.adminUrl`): two proxies in parallel test files must not fight over 8081. The CLI
  // passes its documented default, 127.0.0.1:8081.
  const adminAddr = options.admin === false ? null : parseHostPort('--admin', options.admin ?? '127.0.0.1:0');
  const upstreamTimeoutMs = parseDurationOption('--upstream-timeout', options.upstreamTimeout ?? 30_000);
  if (!(upstreamTimeoutMs > 0)) {
    throw new AftershockError('ERR_BAD_OPTION', `--upstream-timeout ${JSON.stringify(options.upstreamTimeout)}: must be longer than 0 (it is how long the upstream may take to answer)`);
  }
  const upstreamIdleTimeoutMs = parseDurationOption('--upstream-idle-timeout', options.upstreamIdleTimeout ?? 300_000);
  if (!(upstreamIdleTimeoutMs > 0)) {
    throw new AftershockError('ERR_BAD_OPTION', `--upstream-idle-timeout ${JSON.stringify(options.upstreamIdleTimeout)}: must be longer than 0`);
  }
  const drainTimeoutMs = parseDurationOption('--drain-timeout', options.drainTimeout ?? 10_000);
  const clientKeySpec = options.clientKey ?? DEFAULT_CLIENT_KEY;
  const clientKey = compileClientKey(clientKeySpec, options.redact ?? []);
  const redactor = createRedactor(options.redact ?? []);
  const recordHeaders = (options.recordHeaders ?? []).map((h) => h.toLowerCase());
  // With --client-key header:<name> the header is recorded too (redacted when secret), so an
  // offline analysis can tell a keyed client from one that fell back to ip+ua.
  if (clientKeySpec.startsWith('header:')) {
    const keyHeader = clientKeySpec.slice('header:'.length).toLowerCase();
    if (!recordHeaders.includes(keyHeader)) recordHeaders.push(keyHeader);
  }
  let tls: { cert: Buffer; key: Buffer } | null = null;
  if (options.tlsCert !== undefined || options.tlsKey !== undefined) {
    if (options.tlsCert === undefined || options.tlsKey === undefined) {
      throw new AftershockError('ERR_BAD_OPTION', '--tls-cert and --tls-key go together: give both PEM files');
    }
    // Each error starts with the flag and its value, as the other option errors do (the CLI then
    // names the variable instead when the value came from AFTERSHOCK_TLS_CERT / _KEY).
    const read = (flag: string, file: string, what: string, check: (pem: Buffer) => unknown): Buffer => {
      let pem: Buffer;
      try {
        pem = fs.readFileSync(file);
      } catch (err) {
        throw new AftershockError('ERR_BAD_OPTION', `${flag} ${JSON.stringify(file)}: cannot read the TLS ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      try {
        check(pem);
      } catch (err) {
        throw new AftershockError('ERR_BAD_OPTION', `${flag} ${JSON.stringify(file)}: ${file} is not a PEM ${what} (${firstLineOf((err as Error).message)})`, { cause: err });
      }
      return pem;
    };
    tls = {
      cert: read('--tls-cert', options.tlsCert, 'certificate', (pem) => new X509Certificate(pem)),
      key: read('--tls-key', options.tlsKey, 'private key', (pem) => createPrivateKey(pem)),
    };
  }

  const profileArg = options.profile ?? 'passthrough';
  let profile: CompiledProfile = typeof profileArg === 'string' ? await loadProfile(profileArg) : profileArg;
  const seed = options.seed ?? profile.seed ?? 1;
  // An ad-hoc rule whose TTL ran out is written to the recording as removed, at its expiry: the
  // recorder is opened below, and the engine lets a rule go only once the proxy runs.
  let faultExpired = (_name: string, _expiresAt: number): void => undefined;
  /** Ad-hoc faults added through the handle (so recorded as added), until recorded as removed. */
  const recordedFaults = new Set<string>();
  const onFaultExpired = (name: string, expiresAt: number): void => faultExpired(name, expiresAt);
  // One clock for the proxy and its engine: TTLs, phases and the records' times all read the same
  // (decisions get the proxy's time; the engine's own clock had been Date.now, which can step).
  const timeOrigin = performance.timeOrigin;
  const clock = (): number => timeOrigin + performance.now();
  // Whole milliseconds for the engine, as Date.now gave: its times (expiresAt, a phase's startedAt)
  // reach the control API, where clients read them as integers.
  const engineOptions = { profile, onFaultExpired, now: (): number => Math.floor(clock()) };
  const engine = createRuleEngine(options.seed === undefined ? engineOptions : { ...engineOptions, seed: options.seed });

  let recorderHealthy = true;
  // A recording this start creates is removed again if the start fails: a header-only file left
  // behind reads as a run that saw no traffic (and passed every check). An existing one does not
  // gain the header of a run that never happened (`recorder.discardUnwritten`).
  const recordPath = options.record ?? null;
  const createsRecording = recordPath !== null && recordPath !== '-' && !fs.existsSync(recordPath);
  const discardRecording = (): void => {
    if (createsRecording) fs.rmSync(recordPath, { force: true });
  };
  const recorder = Recorder.open({
    path: options.record ?? null,
    header: {
      aftershock: VERSION,
      start: new Date().toISOString(),
      startMs: Date.now(),
      target: target.href,
      profile: { name: profile.name, hash: profile.hash },
      seed,
      clientKey: clientKeySpec,
      session: options.session ?? null,
      redacted: [...redactor.headers],
    },
    onError: (err) => {
      recorderHealthy = false;
      log.error({ err: err.message, path: options.record }, 'RECORDING FAILED: records are being lost; see /readyz and /stats');
    },
    onRecover: () => {
      recorderHealthy = true;
      log.warn({ path: options.record }, 'recording recovered');
    },
    onWarning: (message) => log.warn({ path: options.record }, message),
  });
  const analyzer =
    options.liveAnalysis === false
      ? null
      : createAnalyzer({
          ...(options.clientKey?.startsWith('header:') ? { clientKeyHeader: options.clientKey.slice(7) } : {}),
          ...(options.worker === undefined ? {} : { worker: options.worker }),
        });
  if (analyzer !== null) {
    recorder.addListener((r) => analyzer.ingest(r));
    analyzer.ingest(recorder.headerRecord);
  }
  const byStatus: Record<string, number> = {};
  const byOutcome: Record<string, number> = {};
  let exchanges = 0;
  recorder.addListener((r: AnyRecord) => {
    if (r.type !== 'http' && r.type !== 'ws') return;
    exchanges++;
    const s = String(r.status ?? 'none');
    byStatus[s] = (byStatus[s] ?? 0) + 1;
    if (r.outcome !== null) byOutcome[r.outcome] = (byOutcome[r.outcome] ?? 0) + 1;
  });
  // With --log-level debug (or trace), one line per exchange, an access log: the recording's
  // record in short, its path already redacted, no query and no headers. Off the hot path otherwise.
  if (typeof log.isLevelEnabled === 'function' && log.isLevelEnabled('debug')) {
    recorder.addListener((r: AnyRecord) => {
      if (r.type !== 'http' && r.type !== 'ws') return;
      const fault = r.fault !== null && r.fault.injected ? `${r.fault.rule}/${r.fault.type}` : undefined;
      log.debug(
        { id: r.id, type: r.type, client: r.client, method: r.method, path: r.path, status: r.status, outcome: r.outcome, ms: Math.round((r.end - r.ts) * 10) / 10, ...(fault === undefined ? {} : { fault }), ...(r.error === null ? {} : { error: r.error }) },
        `${r.method} ${r.path} ${r.status ?? r.outcome ?? '-'}${fault === undefined ? '' : ` (injected: ${fault})`}`,
      );
    });
  }

  const upstream = new UpstreamPool(target, {
    verifyTls: options.insecure !== true,
    maxSockets: options.upstreamSockets ?? 512,
    preserveHost: options.hostHeader === 'preserve',
    bodyTimeoutMs: upstreamIdleTimeoutMs,
  });

  let listenAddr = listen;
  const targetHost = target.host;
  const rewriteLocation =
    options.rewriteRedirects === true
      ? (value: string, req: IncomingMessage): string => {
          // A path-relative Location (`other`, `?q=1`, `../x`) resolves against the URL the client
          // asked, the proxy's, and stays as sent. A path-absolute one names an upstream path: with
          // a target prefix it loses the prefix (`/api/next` is the proxy's `/next`). An absolute URL
          // to the target's host is rewritten to the proxy. One outside the prefix has no address
          // on the proxy, and stays as sent.
          const absolute = /^[a-z][a-z0-9+.-]*:/i.test(value) || value.startsWith('//');
          if (!absolute && !value.startsWith('/')) return value;
          try {
            const u = new URL(value, target.url);
            if (u.host !== targetHost) return value;
            const p = target.prefix;
            const inside = p === '' || u.pathname === p || u.pathname.startsWith(p + '/');
            if (!inside) return value;
            const path = u.pathname.slice(p.length) || '/';
            if (!absolute) return `${path}${u.search}${u.hash}`;
            const host = req.headers.host ?? `${listenAddr.host}:${listenAddr.port}`;
            return `${tls === null ? 'http' : 'https'}://${host}${path}${u.search}${u.hash}`;
          } catch {
            return value;
          }
        }
      : null;
  const cookieDomain = options.cookieDomain;
  const rewriteCookie =
    cookieDomain === undefined ? null : (value: string): string => proxyCommon.rewriteCookieProperty(value, { '*': cookieDomain }, 'domain');

  let seq = 0;
  const idPrefix = recorder.instance + '-';
  const inflight = new Set<InFlight>();
  const core: ProxyCore = {
    target,
    engine,
    recorder,
    clientKey,
    redactor,
    log,
    labelFaults: options.labelFaults !== false,
    verifyTls: options.insecure !== true,
    preserveHost: options.hostHeader === 'preserve',
    upstreamTimeoutMs,
    recordHeaders,
    recordMessages: options.recordMessages === true,
    inflight,
    draining: false,
    rewriteLocation,
    rewriteCookie,
    upstream,
    now: clock,
    nextId: () => idPrefix + (++seq).toString(36),
  };

  const wsCommon = {
    noServer: true,
    maxPayload: 100 * 1024 * 1024,
    autoPong: false,
    handleProtocols: (_protocols: Set<string>, req: IncomingMessage) => (req as IncomingMessage & { aftershockProtocol?: string }).aftershockProtocol || false,
  };
  const wsServers: WsServers = {
    deflate: new WebSocketServer({ ...wsCommon, perMessageDeflate: true }),
    plain: new WebSocketServer({ ...wsCommon, perMessageDeflate: false }),
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
    (req.socket as Socket & { [kLastReq]?: IncomingMessage })[kLastReq] = req;
    // A request pipelined behind one the proxy refused: that answer closes the connection, so this
    // one is neither forwarded nor answered (the client sends it again on a new connection).
    if ((req.socket as Socket & { [kRefused]?: true })[kRefused] === true) return;
    const url = req.url ?? '';
    if (url.charCodeAt(0) !== 47 /* '/' */) {
      if (url === '*') refuse(req, res, 400, 'asterisk-form-refused', 'OPTIONS * asks about the server as a whole; aftershock forwards origin-form request targets only (send OPTIONS /path)');
      else refuse(req, res, 400, 'absolute-form-refused', 'aftershock forwards only to its configured target; send origin-form request targets (/path)');
      return;
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2). Node's own check would answer a bare 400 that is
    // neither labelled nor recorded; HTTP/1.0 may leave it out (the upstream gets the target's).
    if (req.headers.host === undefined && req.httpVersionMinor >= 1) {
      refuse(req, res, 400, 'missing-host', 'an HTTP/1.1 request must carry a Host header');
      return;
    }
    // More header lines than a request may carry: 431. (Node's own cap dropped the lines past it
    // without a word, and a second Host or a Transfer-Encoding behind them passed every check.)
    if (req.rawHeaders.length > 2 * MAX_HEADER_LINES) {
      refuse(req, res, 431, 'too-many-headers', `a request may carry at most ${MAX_HEADER_LINES} header lines; this one has ${req.rawHeaders.length / 2}`);
      return;
    }
    // More than one Host line: 400 (RFC 9112 §3.2). Node keeps the first and drops the others,
    // so the upstream would be told a Host the client may not have meant.
    if (hostLines(req.rawHeaders) > 1) {
      refuse(req, res, 400, 'duplicate-host', 'a request must carry exactly one Host header line (RFC 9112 §3.2)');
      return;
    }
    // A transfer coding before chunked (gzip, chunked): Node's parser takes the chunks off and
    // leaves the coded bytes, which would reach the upstream as if they were the body. 501 (RFC
    // 9112 §6.1); the connection closes, its body unread. (Without chunked last, the parser
    // refuses the request itself right after this event: 400, through 'clientError'.)
    const te = req.headers['transfer-encoding'];
    if (te !== undefined && !isChunkedOnly(te) && CHUNKED_LAST.test(te)) {
      refuse(req, res, 501, 'unsupported-transfer-coding', `aftershock forwards request bodies with Transfer-Encoding: chunked only, not ${te.slice(0, 200)}`);
      return;
    }
    // Shutdown has begun: answers sent from now on close their connection.
    if (core.draining) res.shouldKeepAlive = false;
    const ex = new HttpExchange(core, req, res);
    ex.expectContinue = expectContinue;
    ex.start();
  };
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string): void => {
    (req.socket as Socket & { [kRefused]?: true })[kRefused] = true;
    const body = JSON.stringify({ error: code, message });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-aftershock-error': code, connection: 'close' });
    res.end(body);
    writeBadRequest(req.socket, status, code, req.method ?? '-', req.url ?? '-', req.headers['user-agent'] ?? null, 'bad-request', req.method === 'HEAD' ? 0 : Buffer.byteLength(body));
  };

  /** Records a request the proxy answered itself (or that left mid-head); `bytesOut`: the body bytes of that answer. */
  const writeBadRequest = (socket: Socket, status: number | null, code: string, method: string, url: string, ua: string | null, outcome: 'bad-request' | 'client-abort' = 'bad-request', bytesOut = 0): void => {
    const now = core.now();
    const ip = remoteIp(socket);
    const q = url.indexOf('?');
    const rec: HttpRecord = {
      v: 1,
      type: 'http',
      id: core.nextId(),
      ts: now,
      end: now,
      client: ua === null ? ip : `${ip} ${ua}`,
      ip,
      conn: (socket as Socket & { [kConnId]?: string })[kConnId] ?? '',
      method,
      // A refused absolute-form target may carry userinfo (user:password@host): never recorded.
      path: redactor.path((q === -1 ? url : url.slice(0, q)).slice(0, 2048)),
      query: q === -1 ? null : redactor.query(url.slice(q + 1, 2048)),
      status,
      outcome,
      upstreamStatus: null,
      bytesIn: 0,
      bytesOut,
      ttfb: 0,
      duration: 0,
      fault: null,
      faults: [],
      retryAfter: null,
      bodyHash: null,
      userAgent: ua,
      headers: {},
      error: outcome === 'client-abort' ? null : code,
    };
    recorder.write(rec);
  };

  const headersTimeoutMs = parseDurationOption('--headers-timeout', options.headersTimeout ?? 20_000);
  const serverOpts = { maxHeaderSize: 16 * 1024, connectionsCheckingInterval: Math.max(100, Math.min(5000, headersTimeoutMs / 4)), requireHostHeader: false };
  // A TLS handshake gets as long as a request head: a client that connects and never finishes it
  // must not hold a connection (Node's default is 120 s).
  const server: http.Server = tls === null ? http.createServer(serverOpts) : https.createServer({ ...tls, ...serverOpts, handshakeTimeout: headersTimeoutMs });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = headersTimeoutMs;
  server.requestTimeout = 0;
  server.maxConnections = options.maxConnections ?? 10_000;
  // Every header line is parsed (the 16 KiB head limit bounds them) so that none is dropped unseen;
  // more than MAX_HEADER_LINES are refused with 431.
  server.maxHeadersCount = 0;
  let connSeq = 0;
  let connections = 0;
  let dropped = 0;
  server.on('drop', () => {
    if (dropped++ % 1000 === 0) log.warn({ maxConnections: server.maxConnections, dropped }, 'connection cap reached: new connections are being refused');
  });
  server.on('connection', (socket: Socket) => {
    if ((socket as Socket & { [kConnId]?: string })[kConnId] !== undefined) return; // handed back by asPlainHttp
    // Read the peer address now: Node caches it, so a record written after the client has gone
    // (a refused request, a parse error) still names the client instead of ''.
    void socket.remoteAddress;
    (socket as Socket & { [kConnId]?: string })[kConnId] = (++connSeq).toString(36);
    connections++;
    socket.once('close', () => connections--);
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, false));
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => onRequest(req, res, true));
  // Any other expectation: Node would answer 417 itself, unlabelled and unrecorded.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    (req.socket as Socket & { [kLastReq]?: IncomingMessage })[kLastReq] = req;
    refuse(req, res, 417, 'expectation-failed', 'aftershock passes on Expect: 100-continue only');
  });
  if (tls !== null) {
    server.on('secureConnection', (socket: Socket) => {
      void socket.remoteAddress;
      // Records read the TLS socket: it carries the TCP connection's id.
      const tcp = (socket as Socket & { _parent?: Socket & { [kConnId]?: string } })._parent;
      (socket as Socket & { [kConnId]?: string; [kSecured]?: true })[kConnId] = tcp?.[kConnId] ?? (++connSeq).toString(36);
      (socket as Socket & { [kSecured]?: true })[kSecured] = true;
    });
  }
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined); // a client that resets after its CONNECT must not take the process down
    writeBadRequest(req.socket, 405, 'connect-refused', 'CONNECT', req.url ?? '-', req.headers['user-agent'] ?? null);
    // A 405 names what is allowed (RFC 9110 §15.5.6): every method but CONNECT is forwarded.
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: ${ALLOWED_METHODS}\r\nx-aftershock-error: connect-refused\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
  /**
   * An upgrade to something other than WebSocket (`curl --http2` asks for h2c on every plain
   * request) is answered as the HTTP/1.1 request it also is: a server may ignore Upgrade (RFC 9110
   * §7.8). Node has already taken the socket from the HTTP server, so the request head is written
   * back without the upgrade headers and the socket is handed to the server again.
   */
  const asPlainHttp = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const raw = req.rawHeaders;
    let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const lower = name.toLowerCase();
      if (lower === 'upgrade' || lower === 'http2-settings') continue;
      if (lower === 'connection') {
        const keep = [...(connectionTokens(raw[i + 1] as string) ?? [(raw[i + 1] as string).toLowerCase()])].filter((t) => t !== '' && t !== 'upgrade' && t !== 'http2-settings');
        if (keep.length > 0) text += `${name}: ${keep.join(', ')}\r\n`;
        continue;
      }
      text += `${name}: ${raw[i + 1] as string}\r\n`;
    }
    socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]));
    server.emit('connection', socket);
  };
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const url = req.url ?? '';
    const proto = (req.headers.upgrade ?? '').toLowerCase();
    if (tls === null && url.charCodeAt(0) === 47 && !proto.includes('websocket')) {
      asPlainHttp(req, socket as Socket, head);
      return;
    }
    // Pipelined behind a request the proxy refused: that answer closes the connection.
    if ((req.socket as Socket & { [kRefused]?: true })[kRefused] === true) {
      socket.end(); // after the refusal's bytes, not over them
      return;
    }
    if (req.rawHeaders.length > 2 * MAX_HEADER_LINES) {
      writeBadRequest(req.socket, 431, 'too-many-headers', req.method ?? '-', url, req.headers['user-agent'] ?? null);
      socket.end(`HTTP/1.1 431 Request Header Fields Too Large\r\nx-aftershock-error: too-many-headers\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    const duplicateHost = hostLines(req.rawHeaders) > 1;
    if (url.charCodeAt(0) !== 47 || proto !== 'websocket' || req.headers.host === undefined || duplicateHost) {
      const code = req.headers.host === undefined ? 'missing-host' : duplicateHost ? 'duplicate-host' : 'upgrade-refused';
      writeBadRequest(req.socket, 400, code, req.method ?? '-', url, req.headers['user-agent'] ?? null);
      socket.end(`HTTP/1.1 400 Bad Request\r\nx-aftershock-error: ${code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    new WsExchange(core, wsServers, req, socket, head).start();
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const sock = socket as Socket & { [kActive]?: HttpExchange; [kSecured]?: true; [kRefused]?: true };
    // Before its TLS handshake finished (a stalled or broken handshake) a connection carried no
    // request: nothing to answer in HTTP (the write would wait for the handshake) and nothing to record.
    if (tls !== null && sock[kSecured] !== true) {
      sock.destroy();
      return;
    }
    // Behind a refusal, which closes the connection, nothing more is answered or recorded (a
    // request pipelined after it is not either): bytes that do not parse there, the refused
    // request's own body or what follows it, are not a request of their own. Node closes the
    // connection once the refusal is written.
    if (sock[kRefused] === true) {
      if (err.code === 'ECONNRESET') sock.destroy();
      return;
    }
    // A request whose body broke off (the client went away or sent bad chunking mid-body) is the
    // exchange in flight, or one already answered: it records itself (client-abort, or the answer
    // it got). Only a request that never became an exchange is recorded here, once.
    const active = sock[kActive];
    const midBody = active !== undefined && !active.req.complete;
    const inBody = bodyUnfinished(sock);
    if (err.code === 'ECONNRESET') {
      // A reset in the middle of a request head is the client leaving there, as a FIN is (below):
      // recorded once, client-abort. A reset between requests, or in a body, records nothing.
      if (!inBody && headBegun(sock)) writeBadRequest(sock, null, 'bad-request', '-', '-', null, 'client-abort');
      sock.destroy();
      return;
    }
    if (!sock.writable || (inBody && err.code === 'HPE_INVALID_EOF_STATE') || (midBody && active.res.headersSent)) {
      sock.destroy();
      return;
    }
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = tooLarge ? 431 : timedOut ? 408 : 400;
    const code = tooLarge ? 'headers-too-large' : timedOut ? 'request-timeout' : 'bad-request';
    const body = JSON.stringify({ error: code, message: `aftershock could not parse the request (${err.code ?? err.message})` });
    const answer = (): void => {
      if (!sock.writable) {
        sock.destroy();
        return;
      }
      sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nx-aftershock-error: ${code}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (midBody) {
      // Bad framing inside the body of the exchange in flight (e.g. broken chunking): that
      // exchange records the 400; the upstream request is stopped. One pipelined behind another
      // still in flight answers once that one has (answers go in request order).
      active.rejectBody(status, code);
      active.whenReleased(answer);
    } else if (active !== undefined) {
      // A bad request pipelined behind one still in flight: that one gets its answer first (the
      // answers of a connection go in request order), then the 400 closes the connection. The raw
      // packet may begin with the good request, so the bad one's line is not read from it.
      writeBadRequest(sock, status, code, '-', '-', null, 'bad-request', body.length);
      active.onDone(answer);
    } else {
      const firstLine = /^([A-Z]{1,20}) (\S{1,4096})/.exec((err as { rawPacket?: Buffer }).rawPacket?.subarray(0, 4200).toString('latin1') ?? '');
      if (err.code === 'HPE_INVALID_EOF_STATE') {
        // The client ended (FIN) in the middle of its request head: it left; it was not refused.
        writeBadRequest(sock, null, code, firstLine?.[1] ?? '-', firstLine?.[2] ?? '-', null, 'client-abort');
        sock.destroy();
        return;
      }
      writeBadRequest(sock, status, code, firstLine?.[1] ?? '-', firstLine?.[2] ?? '-', null, 'bad-request', body.length);
      answer();
    }
  });

  try {
    await listenOn(server, listen, '--listen');
  } catch (err) {
    // Nothing was served: what was opened for it is closed again (a failed start leaves no
    // recording descriptor, no path-checking timer, no upstream sockets).
    for (const s of [wsServers.deflate, wsServers.plain]) s.close();
    await upstream.destroy();
    recorder.discardUnwritten();
    await recorder.close({ timeoutMs: 1000 });
    discardRecording();
    throw err;
  }
  const bound = server.address() as AddressInfo;
  listenAddr = { host: bound.address, port: bound.port };
  const urlHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  const url = `${tls === null ? 'http' : 'https'}://${urlHost}:${bound.port}`;

  let watcher: { close(): void } | null = null;
  let fileState: ProfileFileState | null = null;
  const fileIs = (status: ProfileFileState['status'], message: string | null = null): void => {
    if (fileState !== null && (fileState.status !== status || fileState.message !== message)) fileState = { ...fileState, status, since: Date.now(), message };
  };
  const applyProfile = (p: CompiledProfile, why: string): CompiledProfile => {
    engine.setProfile(p);
    profile = p;
    recorder.write({ v: 1, type: 'event', ts: core.now(), event: 'profile', detail: { name: p.name, hash: p.hash, seed: engine.seed, why } });
    log.info({ profile: p.name, hash: p.hash, why }, 'profile applied');
    return p;
  };
  // A file version refused only because a rule takes the name of an ad-hoc fault applies once that
  // name is free again (the fault deleted or expired), checked every second, unless the file
  // changes again or another profile is set first.
  let waiting: { profile: CompiledProfile; timer: NodeJS.Timeout } | null = null;
  const stopWaiting = (): void => {
    if (waiting !== null) clearInterval(waiting.timer);
    waiting = null;
  };
  const applyWhenFree = (next: CompiledProfile): void => {
    stopWaiting();
    const timer = setInterval(() => {
      // The file moved on (reverted, edited, removed): the watcher deals with what it holds now.
      let text: string;
      try {
        text = fs.readFileSync(next.source as string, 'utf8');
      } catch {
        return; // gone for now (deleted, mid-replace): the same content may come back
      }
      let current: string | null;
      try {
        current = parseProfile(text, next.source).hash;
      } catch {
        current = null;
      }
      if (current !== next.hash) {
        stopWaiting();
        return;
      }
      try {
        engine.checkProfile(next);
      } catch {
        return; // still taken
      }
      stopWaiting();
      applyProfile(next, 'file changed (its rule names were taken by ad-hoc faults until now)');
      watchFile(next); // a fresh watch: the file's content is the profile in force again
    }, 1000);
    timer.unref();
    waiting = { profile: next, timer };
  };
  const watchFile = (p: CompiledProfile): void => {
    watcher?.close();
    watcher = null;
    stopWaiting();
    fileState = p.source === null ? null : { path: p.source, watching: options.watch !== false, status: 'in-force', since: Date.now(), message: null };
    if (options.watch === false || p.source === null) return;
    watcher = watchProfile(
      p.source,
      (next) => {
        stopWaiting();
        try {
          const applied = applyProfile(next, 'file changed');
          fileIs('in-force');
          return applied;
        } catch (err) {
          if (err instanceof RuleNameTakenError) {
            applyWhenFree(next);
            fileIs('waiting', err.message);
          }
          throw err;
        }
      },
      (err) => {
        const gone = err instanceof AftershockError && err.code === 'ERR_PROFILE_NOT_FOUND';
        if (fileState?.status !== 'waiting' || !(err instanceof RuleNameTakenError)) fileIs(gone ? 'missing' : 'rejected', err.message);
        if (gone) log.warn({ file: p.source }, err.message);
        else log.error({ file: p.source }, `profile change rejected, the previous profile stays active:\n${err.message}`);
      },
      {
        onRestored: () => {
          stopWaiting();
          fileIs('in-force');
          log.info({ file: p.source }, 'the profile file holds the profile in force again');
        },
        onPollOnly: (err) => {
          const code = (err as NodeJS.ErrnoException).code ?? err.message;
          log.warn({ file: p.source, err: code }, `cannot watch the profile's folder for changes (${code}); the file is checked every second instead`);
        },
      },
    );
  };
  watchFile(profile);

  let closing: Promise<void> | null = null;
  let admin: AdminServer | null = null;
  let phaseTimer: NodeJS.Timeout | null = null;
  /** Set once close() has finished: the handle then takes no more changes. */
  let closed = false;
  const live = (what: string): void => {
    if (closed) throw new AftershockError('ERR_CLOSED', `${what}: the proxy is closed`);
  };
  const handle: ProxyHandle = {
    url,
    address: listenAddr,
    get adminUrl() {
      return admin?.url ?? null;
    },
    engine,
    recorder,
    analyzer,
    get profile() {
      return profile;
    },
    get profileFile() {
      return fileState;
    },
    startedAt: Date.now(),
    get ready() {
      return closing === null && recorderHealthy;
    },
    setProfile(p) {
      live('setProfile');
      const compiled = typeof p === 'string' ? parseProfile(p, null) : p;
      // Applied first: a profile the engine refuses (a rule named like an ad-hoc one) leaves the
      // running profile and its file watch as they were.
      const applied = applyProfile(compiled, 'set through the API');
      watcher?.close();
      watcher = null;
      stopWaiting();
      fileState = null; // no file holds it
      return applied;
    },
    async selectProfile(nameOrPath) {
      live('selectProfile');
      const p = await loadProfile(nameOrPath);
      live('selectProfile');
      applyProfile(p, 'selected through the API');
      watchFile(p);
      return p;
    },
    addFault(rule, ttlMs) {
      live('addFault');
      const now = core.now();
      const s = engine.addFault(rule, ttlMs);
      // What it matches and injects, secret matcher values hidden as GET /rules hides them: a QA
      // reader of the recording sees which fault came and went, not only its type.
      const compiled = engine.rule(s.name);
      const scope = compiled === null ? {} : scopeOf(compiled, recorder.headerRecord.redacted, s);
      recorder.write({ v: 1, type: 'event', ts: now, event: 'fault-added', detail: { rule: s.name, type: s.type, ttlMs: ttlMs ?? null, expiresAt: s.expiresAt, ...scope } });
      recordedFaults.add(s.name);
      return s;
    },
    removeFault(name) {
      live('removeFault');
      const ok = engine.removeFault(name);
      if (ok && recordedFaults.delete(name)) recorder.write({ v: 1, type: 'event', ts: core.now(), event: 'fault-removed', detail: { rule: name, reason: 'removed' } });
      return ok;
    },
    mark(label) {
      live('mark');
      // As POST /marks checks it: a mark nobody can tell apart from another is no mark.
      if (typeof label !== 'string' || label.trim() === '' || label.length > 500) {
        throw new AftershockError('ERR_BAD_OPTION', `mark label ${JSON.stringify(label)}: give a non-empty string of at most 500 characters`);
      }
      recorder.write({ v: 1, type: 'mark', ts: core.now(), label });
    },
    startScenario() {
      live('startScenario');
      const now = core.now();
      engine.startScenario(now);
      recorder.write({ v: 1, type: 'event', ts: now, event: 'scenario-start', detail: {} });
    },
    stopScenario() {
      live('stopScenario');
      engine.stopScenario();
      recorder.write({ v: 1, type: 'event', ts: core.now(), event: 'scenario-stop', detail: {} });
    },
    reset() {
      live('reset');
      engine.resetCounters();
      analyzer?.reset();
      for (const k of Object.keys(byStatus)) delete byStatus[k];
      for (const k of Object.keys(byOutcome)) delete byOutcome[k];
      exchanges = 0;
      recorder.write({ v: 1, type: 'event', ts: core.now(), event: 'reset', detail: {} });
    },
    report() {
      if (analyzer === null) throw new AftershockError('ERR_BAD_OPTION', 'live analysis is off (liveAnalysis: false); analyse the recording offline');
      return analyzer.report();
    },
    stats() {
      return {
        profile: { name: profile.name, hash: profile.hash },
        ready: handle.ready,
        uptimeSeconds: Math.round((Date.now() - handle.startedAt) / 1000),
        rules: engine.stats(),
        exchanges,
        inFlight: inflight.size,
        connections,
        droppedConnections: dropped,
        byStatus: { ...byStatus },
        byOutcome: { ...byOutcome },
        recording: { path: recorder.path, ...recorder.stats },
        worker: options.worker ?? null,
      };
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
    abortNow() {
      for (const ex of [...inflight]) {
        try {
          ex.recordNow();
        } catch (err) {
          log.error({ err }, 'could not record an exchange at exit');
        }
      }
      recorder.flushSync();
    },
  };

  const shutdown = async (): Promise<void> => {
    if (phaseTimer !== null) clearInterval(phaseTimer);
    watcher?.close();
    stopWaiting();
    core.draining = true;
    server.close();
    server.closeIdleConnections();
    for (const ex of [...inflight]) {
      // A WebSocket has no end of its own to wait for: it is told now (1001 going away) instead of
      // at the end of the drain, which a container's stop timeout may not leave.
      if (ex instanceof WsExchange) ex.abortForShutdown();
      // A keep-alive client would send its next request on a connection about to close.
      else if (ex instanceof HttpExchange && !ex.res.headersSent) ex.res.shouldKeepAlive = false;
    }
    const deadline = Date.now() + drainTimeoutMs;
    while (inflight.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      server.closeIdleConnections();
      engine.expireFaults(); // the phase tick that records expiries has stopped
    }
    engine.expireFaults();
    for (const ex of [...inflight]) ex.abortForShutdown();
    // Give the aborted exchanges' close events a turn to write their records.
    for (let i = 0; i < 50 && inflight.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    server.closeAllConnections();
    for (const s of [wsServers.deflate, wsServers.plain]) s.close();
    await upstream.destroy();
    await admin?.close();
    // What is left of the drain timeout, and at least 1 s: a pipe nobody reads cannot hold the
    // shutdown; what it did not take is counted as lost and logged.
    await recorder.close({ timeoutMs: Math.max(deadline - Date.now(), 1000) });
    closed = true;
    engine.close();
  };

  if (adminAddr !== null) {
    try {
      admin = await startAdmin(handle, {
        ...adminAddr,
        ...(options.adminToken === undefined ? {} : { token: options.adminToken }),
        ...(options.adminAllowHosts === undefined ? {} : { allowHosts: options.adminAllowHosts }),
        log,
      });
    } catch (err) {
      recorder.discardUnwritten();
      await handle.close();
      discardRecording();
      throw err;
    }
  }
  // The recording says when each phase of the timeline began, at the phase's own start: a QA
  // session reads its outage from the recording, not only from the faults the records carry.
  let phaseSeen = '';
  const notePhase = (): void => {
    const p = engine.phase();
    const key = p === null ? '' : `${p.index}@${p.startedAt}`;
    if (key === phaseSeen) return;
    phaseSeen = key;
    if (p !== null) recorder.write({ v: 1, type: 'event', ts: p.startedAt, event: 'phase', detail: { phase: p.name, index: p.index, endsAt: p.endsAt } });
  };
  // Only for the faults this handle recorded as added (engine.addFault called directly records neither).
  faultExpired = (name, expiresAt) => {
    if (recordedFaults.delete(name)) recorder.write({ v: 1, type: 'event', ts: expiresAt, event: 'fault-removed', detail: { rule: name, reason: 'ttl' } });
  };
  notePhase();
  // The same tick lets expired ad-hoc rules go (and so records them) when no request comes.
  phaseTimer = setInterval(() => {
    notePhase();
    engine.expireFaults();
  }, 250);
  phaseTimer.unref();
  log.info({ listen: url, target: target.href, admin: admin?.url ?? 'off', record: options.record ?? 'off', profile: profile.name }, 'aftershock is proxying');
  return handle;
}

/**
 * Whether the body of the connection's last request has not all arrived: the exchange in flight,
 * or one answered before its body ended (an injected answer after the body-read limit, say).
 */
function bodyUnfinished(sock: Socket & { [kLastReq]?: IncomingMessage }): boolean {
  const last = sock[kLastReq];
  return last !== undefined && !last.complete;
}

/**
 * Whether the connection's parser holds part of a message (outside a body: a request head). It
 * asks Node's parser what Node asks it when the client ends (FIN): `finish()` fails with
 * HPE_INVALID_EOF_STATE in the middle of a message. The parser is no public API: without it the
 * answer is no, and the reset is recorded as before (not at all).
 */
function headBegun(sock: Socket): boolean {
  const parser = (sock as Socket & { parser?: { finish?: () => unknown } | null }).parser;
  if (parser === null || parser === undefined || typeof parser.finish !== 'function') return false;
  try {
    const r = parser.finish();
    return r instanceof Error && (r as NodeJS.ErrnoException).code === 'HPE_INVALID_EOF_STATE';
  } catch {
    return false;
  }
}

/** Header lines a request may carry (Envoy's default is 100; browsers send 10-30). */
const MAX_HEADER_LINES = 1000;

/** How many Host header lines a request head carried (`rawHeaders` keeps every line, in any case). */
function hostLines(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

function firstLineOf(message: string): string {
  return message.split('\n')[0] ?? message;
}
