/**
 * Plumbing for the control API tests: a proxy with its control API on a free loopback port in
 * front of a real upstream, and one-call HTTP helpers that parse JSON answers.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { ProxyHandle, ProxyOptions } from '../../src/index.js';
import { request, startTestProxy, startUpstream, type Upstream } from '../helpers.js';
import { createProgram } from '../../src/cli/main.js';
import { isAftershockError } from '../../src/errors.js';

export interface AdminProxy {
  proxy: ProxyHandle;
  upstream: Upstream;
  /** Base URL of the control API ('' with `admin: false`). */
  admin: string;
  /** Upstream hits by path. */
  hits: Map<string, number>;
}

/** A pino logger that keeps what it writes: `text()` is every NDJSON line so far. */
export function captureLog(): { logger: Logger; text: () => string } {
  let logs = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs += chunk.toString();
      cb();
    },
  });
  return { logger: pino(sink), text: () => logs };
}

/** A proxy with the control API on 127.0.0.1:0 in front of an upstream that answers `200 ok <path>`. */
export async function startAdminProxy(opts: Partial<ProxyOptions> = {}): Promise<AdminProxy> {
  const hits = new Map<string, number>();
  const upstream = await startUpstream((req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`ok ${req.url}`);
  });
  const proxy = await startTestProxy({ target: upstream.url, admin: '127.0.0.1:0', ...opts });
  if (proxy.adminUrl === null && opts.admin !== false) throw new Error('control API did not start');
  return { proxy, upstream, admin: proxy.adminUrl ?? '', hits };
}

export interface ApiReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers loosely
  json: any;
}

/**
 * One call to the control API; `body` objects are sent as JSON, strings as they are, labelled as
 * the project's client labels them (YAML for PUT /profile, else JSON) unless `headers` say otherwise.
 */
export async function api(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
): Promise<ApiReply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= typeof opts.body === 'string' && method === 'PUT' && path === '/profile' ? 'application/yaml' : 'application/json';
  }
  const r = await request(base + path, { method, headers, ...(body === undefined ? {} : { body }) });
  let json: unknown = null;
  if ((r.headers['content-type'] ?? '').startsWith('application/json') && r.text !== '') json = JSON.parse(r.text);
  return { status: r.status, headers: r.headers, text: r.text, json };
}

export const PROFILE_503 = `
name: api-down
description: every /api call fails with 503
rules:
  - name: api-503
    match:
      path: /api/**
    fault:
      type: http-error
      status: 503
      retryAfter: 1s
`;

export const PROFILE_LATE = `
name: api-slow
description: /api calls wait 5 ms
rules:
  - name: api-slow
    match:
      path: /api/**
    fault:
      type: latency
      delay: 5ms
`;

/** Two problems at known lines: a bad status (line 8) and an unknown key (line 11). */
export const PROFILE_BAD = `name: broken
rules:
  - name: bad-status
    match:
      path: /api/**
    fault:
      type: http-error
      status: 99
  - name: typo
    match:
      pth: /x
    fault:
      type: reset
`;

export interface CtlResult {
  stdout: string;
  /** The error the main CLI would print as `aftershock: <message>` and its exit status, or null. */
  error: { message: string; exitCode: number; code: string } | null;
}

/** Runs `aftershock ctl ...args` in-process and captures what it prints. */
export async function ctl(...args: string[]): Promise<CtlResult> {
  let stdout = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array): boolean => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    await createProgram().parseAsync(['node', 'aftershock', 'ctl', ...args]);
    return { stdout, error: null };
  } catch (err) {
    if (!isAftershockError(err)) throw err;
    return { stdout, error: { message: err.message, exitCode: err.exitCode, code: err.code } };
  } finally {
    process.stdout.write = write;
  }
}
