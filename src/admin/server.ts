/**
 * The control API: a small JSON HTTP server beside the proxy (Toxiproxy's `api.go`).
 * Loopback by default; with a token every route but the probes needs `Authorization: Bearer`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { ProxyHandle } from '../proxy/server.js';
import { listenOn } from '../proxy/server.js';
import { routes, type AdminContext } from './routes.js';

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  readonly log: Logger;
}

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Routes a probe must reach without a token. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz']);

/**
 * Starts the control API for a running proxy.
 *
 * @example const admin = await startAdmin(proxy, { host: '127.0.0.1', port: 0, log });
 */
export async function startAdmin(proxy: ProxyHandle, opts: AdminOptions): Promise<AdminServer> {
  const tokenHash = opts.token === undefined || opts.token === '' ? null : sha(opts.token);
  if (tokenHash === null && !isLoopback(opts.host)) {
    opts.log.warn({ admin: `${opts.host}:${opts.port}` }, 'THE CONTROL API LISTENS BEYOND LOOPBACK WITHOUT A TOKEN: anyone who reaches it can change faults; set --admin-token');
  }
  const ctx: AdminContext = { proxy, log: opts.log };
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      opts.log.error({ err }, 'control API error');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal-error', message: 'the control API failed; see the log' });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (tokenHash !== null && !OPEN_ROUTES.has(url.pathname)) {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!timingSafeEqual(sha(given), tokenHash)) {
        res.setHeader('www-authenticate', 'Bearer');
        sendJson(res, 401, { error: 'unauthorized', message: 'send Authorization: Bearer <token> (the --admin-token)' });
        return;
      }
    }
    for (const r of routes) {
      const m = r.pattern.exec(url.pathname);
      if (m === null) continue;
      const handler = r.methods[req.method ?? 'GET'];
      if (handler === undefined) {
        res.setHeader('allow', Object.keys(r.methods).join(', '));
        sendJson(res, 405, { error: 'method-not-allowed', message: `${req.method} is not allowed on ${url.pathname}` });
        return;
      }
      await handler(ctx, req, res, { params: m.groups ?? {}, query: url.searchParams });
      return;
    }
    sendJson(res, 404, { error: 'not-found', message: `no route ${req.method} ${url.pathname}; see GET / for the list` });
  }

  await listenOn(server, { host: opts.host, port: opts.port }, '--admin');
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}
