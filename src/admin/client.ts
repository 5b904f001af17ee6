/**
 * A client of the control API (Toxiproxy's `client/`): one method per endpoint, every failure
 * turned into one clear `ERR_ADMIN` error. `aftershock ctl` is a thin shell over it; scripts and
 * tests that drive a proxy in another process can use it too.
 */
import { AftershockError } from '../errors.js';
import type { RuleStats } from '../rules/types.js';
import type { ProfileView } from './describe-profile.js';
import type { ProfileFileState } from '../proxy/handle.js';

export type { ProfileView };

export interface AdminClientOptions {
  /** Base URL of the control API, e.g. `http://127.0.0.1:8081` (a bare `host:port` works too). */
  readonly url: string;
  /** The proxy's `--admin-token`, sent as `Authorization: Bearer` (trimmed; empty sends none). */
  readonly token?: string;
  /** Per request; default 10 s. */
  readonly timeoutMs?: number;
}

export interface AdminResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** A rule change for `patchRule`. */
export interface RulePatch {
  enabled?: boolean;
  probability?: number;
}

export interface ReadyView {
  status: 'ready' | 'not-ready';
  reasons: string[];
  profile: string;
  /** The profile's file against the profile in force (absent from older proxies). */
  profileFile?: ProfileFileState | null;
  listen: string;
  recording: { path: string | null; healthy: boolean; written: number; failed: number; lastError: string | null };
}

/** Accepts `http://h:p`, `https://h:p/prefix` or `h:p`; returns the URL without a trailing slash. */
export function normalizeAdminUrl(raw: string): string {
  const withScheme = /^https?:\/\//i.test(raw) ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new AftershockError('ERR_BAD_OPTION', `--admin ${JSON.stringify(raw)}: give the control API's URL, e.g. http://127.0.0.1:8081`);
  }
  return u.href.replace(/\/+$/, '');
}

/**
 * Talks to a running proxy's control API.
 *
 * @example
 * const admin = new AdminClient({ url: 'http://127.0.0.1:8081', token: process.env.AFTERSHOCK_ADMIN_TOKEN });
 * await admin.addFault({ name: 'now-503', match: { path: '/v1/**' }, fault: { type: 'http-error', status: 503 } }, '30s');
 * console.log((await admin.rules()).map((r) => `${r.name}: ${r.injected}`));
 */
export class AdminClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: AdminClientOptions) {
    this.url = normalizeAdminUrl(opts.url);
    // Trimmed as the server trims its own: a token read from a secret file ends in a newline.
    const token = opts.token?.trim();
    this.token = token === '' ? undefined : token;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /**
   * One request. Objects are sent as JSON; a string is sent as it is, labelled `application/json`
   * unless `contentType` says otherwise (the API reads any body type; JSON is what it expects). Answers outside 2xx
   * (and outside `accept`) throw ERR_ADMIN with the API's message; an unreachable API throws
   * ERR_ADMIN saying so.
   */
  async request(method: string, path: string, body?: unknown, opts: { accept?: readonly number[]; contentType?: string } = {}): Promise<AdminResponse> {
    const headers: Record<string, string> = {};
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      headers['content-type'] = opts.contentType ?? 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(this.url + path, { method, headers, ...(payload === undefined ? {} : { body: payload }), signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new AftershockError('ERR_ADMIN', `the proxy's control API isn't reachable at ${this.url} (${describeFetchError(err)}); is aftershock running with --admin, and is --admin/AFTERSHOCK_ADMIN_URL right?`, {
        cause: err,
        exitCode: 1,
      });
    }
    const text = await res.text();
    if (res.headers.get('x-aftershock-control') === null) {
      throw new AftershockError(
        'ERR_ADMIN',
        `${method} ${path}: the answer (${res.status}) at ${this.url} is not from aftershock's control API; is --admin/AFTERSHOCK_ADMIN_URL the control API's address (run --admin), not the proxy's --listen?`,
        { exitCode: 1 },
      );
    }
    const out: AdminResponse = { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
    if ((res.status >= 200 && res.status < 300) || opts.accept?.includes(res.status) === true) return out;
    const err = new AftershockError('ERR_ADMIN', describeApiError(method, path, out, this.token !== undefined), { exitCode: 1 });
    throw Object.assign(err, { problems: problemsOf(out) });
  }

  private async json<T>(method: string, path: string, body?: unknown, opts: { accept?: readonly number[]; contentType?: string } = {}): Promise<T> {
    const res = await this.request(method, path, body, opts);
    try {
      return JSON.parse(res.text) as T;
    } catch {
      throw new AftershockError('ERR_ADMIN', `${method} ${path}: the answer is not JSON (${res.contentType || 'no content type'}); is ${this.url} aftershock's control API?`, { exitCode: 1 });
    }
  }

  /** GET /readyz: the answer whether ready (200) or not (503). */
  ready(): Promise<ReadyView> {
    return this.json('GET', '/readyz', undefined, { accept: [503] });
  }
  stats(): Promise<Record<string, unknown>> {
    return this.json('GET', '/stats');
  }
  profile(): Promise<ProfileView> {
    return this.json('GET', '/profile');
  }
  /** PUT /profile with YAML text, or JSON with `{ format: 'json' }` (read with JSON's rules, as a .json file is). */
  setProfile(text: string, opts: { format?: 'yaml' | 'json' } = {}): Promise<ProfileView> {
    return this.json('PUT', '/profile', text, { contentType: opts.format === 'json' ? 'application/json; charset=utf-8' : 'application/yaml; charset=utf-8' });
  }
  selectProfile(name: string): Promise<ProfileView> {
    return this.json('POST', '/profile/select', { name });
  }
  async rules(): Promise<RuleStats[]> {
    return (await this.json<{ rules: RuleStats[] }>('GET', '/rules')).rules;
  }
  patchRule(name: string, patch: RulePatch): Promise<RuleStats> {
    return this.json('PATCH', `/rules/${encodeURIComponent(name)}`, patch);
  }
  /** POST /faults; `ttl` like `30s` or milliseconds. */
  addFault(rule: Record<string, unknown>, ttl?: string | number): Promise<RuleStats> {
    return this.json('POST', '/faults', ttl === undefined ? rule : { ...rule, ttl });
  }
  async removeFault(name: string): Promise<void> {
    await this.request('DELETE', `/faults/${encodeURIComponent(name)}`);
  }
  async mark(label: string): Promise<void> {
    await this.request('POST', '/marks', { label });
  }
  async startScenario(): Promise<void> {
    await this.request('POST', '/scenario/start');
  }
  async stopScenario(): Promise<void> {
    await this.request('POST', '/scenario/stop');
  }
  async reset(): Promise<void> {
    await this.request('POST', '/reset');
  }
  /** GET /report in a format: `json` (the raw report), `text`, `markdown` or `html`. */
  async report(format: 'json' | 'text' | 'markdown' | 'html' = 'json'): Promise<string> {
    return (await this.request('GET', `/report?format=${format}`)).text;
  }
  async metrics(): Promise<string> {
    return (await this.request('GET', '/metrics')).text;
  }
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

/** The problems a 422 lists (an invalid profile or fault), or an empty list. */
export interface ApiProblem {
  readonly line: number | null;
  readonly path: string;
  readonly message: string;
}

function problemsOf(res: AdminResponse): ApiProblem[] {
  try {
    const body = JSON.parse(res.text) as { problems?: Array<{ line?: number | null; path?: string; message?: string }> };
    return Array.isArray(body.problems) ? body.problems.map((p) => ({ line: typeof p.line === 'number' ? p.line : null, path: p.path ?? '', message: p.message ?? '?' })) : [];
  } catch {
    return [];
  }
}

/** One line: what failed, the status, the API's message, and for 422 every problem. */
function describeApiError(method: string, path: string, res: AdminResponse, sentToken: boolean): string {
  let body: { error?: string; message?: string; problems?: Array<{ file?: string | null; line?: number | null; path?: string; message?: string }> } = {};
  try {
    body = JSON.parse(res.text) as typeof body;
  } catch {
    /* not JSON: fall back to the status */
  }
  if (res.status === 401) {
    return sentToken
      ? `the control API rejected the token (401): check --token / AFTERSHOCK_ADMIN_TOKEN against the proxy's --admin-token`
      : `the control API needs a token (401): pass --token or set AFTERSHOCK_ADMIN_TOKEN`;
  }
  let msg = `${method} ${path}: ${res.status} ${body.message ?? (res.text.trim().slice(0, 200) || 'no message')}`;
  if (Array.isArray(body.problems) && body.problems.length > 0) {
    msg += ' — ' + body.problems.map((p) => `${p.path === undefined || p.path === '' ? '(root)' : p.path}: ${p.message ?? '?'}${typeof p.line === 'number' ? ` (line ${p.line})` : ''}`).join('; ');
  }
  return msg.replace(/\s*\n\s*/g, ' ');
}
