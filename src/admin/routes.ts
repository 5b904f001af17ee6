/**
 * The control API's routes, one table: path pattern, then a handler per method.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ProxyHandle } from '../proxy/server.js';
import { sendJson } from './server.js';

export interface AdminContext {
  readonly proxy: ProxyHandle;
  readonly log: Logger;
}

export interface RouteArgs {
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
}

export type Handler = (ctx: AdminContext, req: IncomingMessage, res: ServerResponse, args: RouteArgs) => void | Promise<void>;

export interface Route {
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, Handler>>;
}

export const routes: readonly Route[] = [
  {
    pattern: /^\/healthz$/,
    methods: { GET: (_c, _q, res) => sendJson(res, 200, { status: 'ok' }) },
  },
  {
    pattern: /^\/readyz$/,
    methods: {
      GET: ({ proxy }, _q, res) => {
        const rec = proxy.recorder.stats;
        const ok = proxy.ready;
        sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ready' : 'not-ready',
          profile: proxy.profile.name,
          recording: { path: proxy.recorder.path, healthy: rec.lastError === null, failed: rec.failed, lastError: rec.lastError },
        });
      },
    },
  },
  {
    pattern: /^\/stats$/,
    methods: { GET: ({ proxy }, _q, res) => sendJson(res, 200, proxy.stats()) },
  },
  {
    pattern: /^\/report$/,
    methods: { GET: ({ proxy }, _q, res) => sendJson(res, 200, proxy.report()) },
  },
];
