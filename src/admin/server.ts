/**
 * The control API: a small JSON HTTP server beside the proxy (Toxiproxy's `api.go`).
 * Loopback by default; with a token every route but the probes needs `Authorization: Bearer`.
 * Web pages are kept off it by the Host, Origin and Sec-Fetch-Site rules of `request-guard.ts`;
 * bodies are read whatever their Content-Type, so `curl -d` works.
 *
 *   request ──▶ Host, Origin, Sec-Fetch-Site (403) ──▶ auth (constant-time token check; probes open)
 *           ──▶ route table (404 / 405)
 *           ──▶ handler (reads a capped body, calls the ProxyHandle) ──▶ Reply ──▶ JSON / text
 *           └─ any thrown error ──▶ toHttpError ──▶ JSON error (400/403/404/409/413/422), 500 for bugs
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ProxyHandle } from '../proxy/handle.js';
import { listenOn } from '../proxy/listen.js';
import { AftershockError } from '../errors.js';
import { forgetReport, routes, type AdminContext } from './routes.js';
import { HttpError, sendError, sendJson, sendReply, toHttpError } from './http.js';
import { createAdminMetrics } from './metrics.js';
import { checkFetchSite, checkOrigin, createHostPolicy, parseAllowHosts } from './request-guard.js';

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  /** Bearer token; surrounding whitespace (a secret file's newline) is dropped; empty is refused. */
  readonly token?: string;
  /**
   * More names the API answers to in Host besides loopback ones and `host` (`name`, `.domain`,
   * `*`); default: the comma-separated AFTERSHOCK_ADMIN_ALLOW_HOST.
   */
  readonly allowHosts?: readonly string[];
  readonly log: Logger;
}

export interface AdminServer {
  readonly url: string;
  /** The Prometheus registry behind GET /metrics (this proxy's own, never prom-client's global one). */
  readonly registry: Registry;
  close(): Promise<void>;
}

/** Routes a probe must reach without a token. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz']);

/**
 * Starts the control API for a running proxy.
 *
 * @example
 * const admin = await startAdmin(proxy, { host: '127.0.0.1', port: 0, log });
 * await fetch(`${admin.url}/rules`);
 * await admin.close();
 */
export async function startAdmin(proxy: ProxyHandle, opts: AdminOptions): Promise<AdminServer> {
  const tokenHash = opts.token === undefined ? null : sha(checkToken(opts.token));
  const hostPolicy = createHostPolicy({
    listenHost: opts.host,
    tokenRequired: tokenHash !== null,
    allowHosts: opts.allowHosts ?? parseAllowHosts(process.env.AFTERSHOCK_ADMIN_ALLOW_HOST),
  });
  if (tokenHash === null && hostPolicy.beyondLoopback) {
    opts.log.warn({ admin: `${opts.host}:${opts.port}` }, 'THE CONTROL API LISTENS BEYOND LOOPBACK WITHOUT A TOKEN: anyone who reaches it can change faults; set --admin-token');
  }
  if (tokenHash === null && hostPolicy.anyHost) {
    opts.log.warn({ admin: `${opts.host}:${opts.port}` }, 'the control API answers to any Host name without a token: a web page can reach it by DNS rebinding; set --admin-token');
  }
  const metrics = createAdminMetrics(proxy);
  const ctx: AdminContext = { proxy, log: opts.log, metrics };
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      // The client went away mid-body: nobody to answer, nothing to log.
      if (req.destroyed && (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        res.destroy();
        return;
      }
      const known = toHttpError(err);
      if (known === null) opts.log.error({ err, method: req.method, url: req.url }, 'control API error');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, known ?? new HttpError(500, 'internal-error', 'the control API failed; see the proxy log'));
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;

  /**
   * Refused requests (no or a wrong token, a foreign Host, a web page's request) are logged at warn,
   * so a guessing client or a page probing the API leaves a trace: one line per reason at most
   * every 10 s, counting the ones it stood for (a flood does not flood the log). Never the token.
   */
  const refusals = new Map<string, { at: number; more: number }>();
  function noteRefusal(status: number, reason: string, req: IncomingMessage, path: string): void {
    const now = Date.now();
    const seen = refusals.get(reason);
    if (seen !== undefined && now - seen.at < 10_000) {
      seen.more++;
      return;
    }
    const more = seen?.more ?? 0;
    refusals.set(reason, { at: now, more: 0 });
    opts.log.warn(
      { status, reason, method: req.method, path, from: req.socket.remoteAddress, host: req.headers.host, origin: req.headers.origin, ...(more > 0 ? { alsoRefusedBefore: more } : {}) },
      `control API refused ${req.method} ${path}: ${status} ${reason}${more > 0 ? ` (and ${more} more like it since the last such line)` : ''}`,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      throw new HttpError(400, 'bad-url', 'the request target is not a valid path');
    }
    const refused = hostPolicy.check(req.headers.host) ?? checkOrigin(req.headers.origin, req.headers.host) ?? checkFetchSite(req.method ?? 'GET', req.headers);
    if (refused !== null) {
      noteRefusal(refused.status, refused.code, req, url.pathname);
      throw refused;
    }
    if (tokenHash !== null && !OPEN_ROUTES.has(url.pathname)) {
      const auth = req.headers.authorization ?? '';
      const given = /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
      if (!timingSafeEqual(sha(given), tokenHash)) {
        noteRefusal(401, given === '' ? 'no-token' : 'wrong-token', req, url.pathname);
        res.setHeader('www-authenticate', 'Bearer realm="aftershock"');
        sendJson(res, 401, { error: 'unauthorized', message: 'send Authorization: Bearer <token> (the --admin-token)' });
        return;
      }
    }
    // HEAD is GET without the body (Node drops the body of a HEAD answer itself).
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    for (const r of routes) {
      const m = r.pattern.exec(url.pathname);
      if (m === null) continue;
      const endpoint = r.methods[method];
      if (endpoint === undefined) {
        // HEAD is served wherever GET is (RFC 9110 §10.2.1: Allow lists every method the resource takes).
        const allowed = Object.keys(r.methods).flatMap((x) => (x === 'GET' ? ['GET', 'HEAD'] : [x])).join(', ');
        res.setHeader('allow', allowed);
        throw new HttpError(405, 'method-not-allowed', `${req.method} is not allowed on ${url.pathname}; allowed: ${allowed}`);
      }
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) {
        try {
          params[k] = decodeURIComponent(v);
        } catch {
          throw new HttpError(400, 'bad-url', `the path segment ${JSON.stringify(v)} is not valid percent-encoding`);
        }
      }
      const reply = await endpoint.handler(ctx, req, { params, query: url.searchParams });
      if (method !== 'GET') forgetReport(proxy);
      sendReply(res, reply);
      // Every change through the API is in the log, for whoever reads it later to tell why the
      // faults changed (the request body is not: a rule may match on a secret header value).
      if (method !== 'GET' && reply.status < 400) ctx.log.info({ method, path: url.pathname, status: reply.status, from: req.socket.remoteAddress }, `control API: ${method} ${url.pathname}`);
      return;
    }
    throw new HttpError(404, 'not-found', `no route ${req.method} ${url.pathname}; GET / lists the routes`);
  }

  await listenOn(server, { host: opts.host, port: opts.port }, '--admin');
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}`,
    registry: metrics.registry,
    close: () =>
      new Promise<void>((resolve) => {
        metrics.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The configured token, trimmed as the header's is: a Secret made with `--from-file` ends in a
 * newline, and untrimmed it matched no client. Empty after trimming is refused, not read as "no
 * token": an unset secret must not leave the API open.
 */
function checkToken(token: string): string {
  const t = token.trim();
  if (t === '') {
    throw new AftershockError('ERR_BAD_OPTION', '--admin-token (AFTERSHOCK_ADMIN_TOKEN) is empty or only whitespace: give a token, or leave it unset to run the control API without one');
  }
  return t;
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
