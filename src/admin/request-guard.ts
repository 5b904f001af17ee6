/**
 * Keeps web pages off the control API. Binding to loopback stops other machines, not the browser
 * on this one: any page it shows can send requests to 127.0.0.1:8081 (cross-site request forgery)
 * or point a name of its own at 127.0.0.1 and read the answers (DNS rebinding). The defences are
 * the ones local dev servers use (Vite's `server.allowedHosts`, webpack-dev-server's
 * `allowedHosts`, Jupyter's `allow_remote_access`), decided here by pure functions of the request
 * head; the server only turns a refusal into an answer.
 *
 *   Host    ──▶ a loopback name/IP, the --admin host, an allowed name?      else 403 host-not-allowed
 *   Origin  ──▶ absent (curl, scripts, ctl) or this API's own origin?       else 403 origin-not-allowed
 *   body    ──▶ POST/PUT/PATCH/DELETE: the route's JSON (or YAML) type?     else 415 unsupported-media-type
 *
 * Browsers send a cross-site POST without asking first (no CORS preflight) only with text/plain,
 * form or multipart bodies, and they always send Origin with it; a rebinding page must use a DNS
 * name in Host. An IP address in Host cannot be a rebinding.
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from './http.js';

/** The body types of a JSON route. */
export const JSON_BODY: readonly string[] = ['application/json'];
/** The body types of a route that reads a profile as YAML or JSON text. */
export const PROFILE_BODY: readonly string[] = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'application/json'];

export interface HostPolicyOptions {
  /** The host the control API listens on, as given to --admin (IPv6 without brackets). */
  readonly listenHost: string;
  /** Whether every route but the probes needs the bearer token. */
  readonly tokenRequired: boolean;
  /**
   * More host names the API answers to (--admin-allow-host): `name`, `.domain` for the domain
   * and its subdomains, `*` for any name.
   */
  readonly allowHosts: readonly string[];
}

/** Which Host headers the control API answers; built once at start. */
export interface HostPolicy {
  /** Any Host is accepted (a token on a non-loopback listener, or `*` allowed). */
  readonly anyHost: boolean;
  /** Whether the listener is reachable from beyond this machine. */
  readonly beyondLoopback: boolean;
  /** null when the Host header is acceptable, else the 403 to answer. */
  check(host: string | undefined): HttpError | null;
}

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * Canonical host name of a Host header or an --admin host: lowercase, IPv6 without brackets, IPv4
 * in dotted form (`127.1` -> `127.0.0.1`), no trailing dot, no port; null when it is not one.
 *
 * @example hostnameOf('[::1]:8081') === '::1'; hostnameOf('LocalHost.:80') === 'localhost'
 */
export function hostnameOf(raw: string): string | null {
  const value = raw.trim();
  // Only what a Host header may hold: a bracketed IPv6 address or a name/IPv4, then a port.
  // This also keeps `user@host` and paths away from the URL parser below.
  if (!/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$/.test(value) && !net.isIPv6(value)) return null;
  let name: string;
  try {
    name = new URL(`http://${net.isIPv6(value) ? `[${value}]` : value}/`).hostname;
  } catch {
    return null;
  }
  if (name.startsWith('[')) name = name.slice(1, -1);
  if (name.endsWith('.')) name = name.slice(0, -1);
  return name === '' ? null : name;
}

/**
 * Whether a host name is this machine's loopback: `localhost`, 127.0.0.0/8, `::1` (also
 * IPv4-mapped). `127.0.0.1.example.com` is a DNS name, not a loopback address.
 *
 * @example isLoopbackHost('127.0.0.2') === true; isLoopbackHost('127.0.0.1.nip.io') === false
 */
export function isLoopbackHost(host: string): boolean {
  const name = hostnameOf(host) ?? host;
  if (name === 'localhost') return true;
  const family = net.isIP(name);
  return family !== 0 && loopback.check(name, family === 4 ? 'ipv4' : 'ipv6');
}

/** Splits `AFTERSHOCK_ADMIN_ALLOW_HOST`-style text: comma or space separated names. */
export function parseAllowHosts(raw: string | undefined): string[] {
  return (raw ?? '').split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
}

/**
 * The Host rule of a control API.
 *
 * @example
 * const policy = createHostPolicy({ listenHost: '127.0.0.1', tokenRequired: false, allowHosts: [] });
 * policy.check('localhost:8081') === null
 * policy.check('rebind.evil.example:8081')?.status === 403
 */
export function createHostPolicy(opts: HostPolicyOptions): HostPolicy {
  const listen = hostnameOf(opts.listenHost);
  const wildcard = listen === null || listen === '0.0.0.0' || listen === '::';
  const beyondLoopback = wildcard || !isLoopbackHost(listen);
  const names = new Set<string>();
  const suffixes: string[] = [];
  let star = false;
  for (const raw of opts.allowHosts) {
    const entry = raw.trim().toLowerCase();
    if (entry === '*') star = true;
    else if (entry.startsWith('.')) suffixes.push(entry.replace(/\.$/, ''));
    else names.add(hostnameOf(entry) ?? entry);
  }
  // On a listener other machines reach, the token is the lock and any name may lead to it (a
  // Compose service name, a pod's DNS name); on loopback the token does not open names.
  const anyHost = star || (beyondLoopback && opts.tokenRequired);

  const allows = (name: string): boolean =>
    isLoopbackHost(name) ||
    (!wildcard && name === listen) ||
    names.has(name) ||
    suffixes.some((s) => name.endsWith(s) || name === s.slice(1)) ||
    // Kubelet probes and Prometheus ask by pod IP; a rebinding page cannot use an IP address.
    (beyondLoopback && net.isIP(name) !== 0);

  return {
    anyHost,
    beyondLoopback,
    check(host) {
      // HTTP/1.0 without Host: not a browser (Node answers 400 itself to HTTP/1.1 without one).
      if (host === undefined || anyHost) return null;
      const name = hostnameOf(host);
      if (name !== null && allows(name)) return null;
      const known = ['localhost', 'loopback addresses', ...(beyondLoopback ? ['IP addresses'] : []), ...(listen !== null && !wildcard && !isLoopbackHost(listen) ? [listen] : []), ...names, ...suffixes];
      const fix = `add it with --admin-allow-host (AFTERSHOCK_ADMIN_ALLOW_HOST)${beyondLoopback && !opts.tokenRequired ? ' or set --admin-token' : ''}`;
      return new HttpError(
        403,
        'host-not-allowed',
        `Host ${JSON.stringify(host)} is not a name of this control API (it answers to ${known.join(', ')}); other names are refused because a web page can point a name of its own at this address (DNS rebinding). To reach it by this name on purpose, ${fix}`,
      );
    },
  };
}

/**
 * The Origin rule: no Origin (not a browser, or a same-origin GET), or the control API's own
 * origin (a page it served itself, same host and port).
 *
 * @example checkOrigin('https://evil.example', '127.0.0.1:8081')?.code === 'origin-not-allowed'
 */
export function checkOrigin(origin: string | undefined, host: string | undefined): HttpError | null {
  if (origin === undefined) return null;
  let own = false;
  if (host !== undefined && origin !== 'null') {
    try {
      const o = new URL(origin);
      // Scheme aside (a TLS proxy in front serves it as https): same host and port.
      own = (o.protocol === 'http:' || o.protocol === 'https:') && o.host === new URL(`http://${host}/`).host;
    } catch {
      own = false;
    }
  }
  if (own) return null;
  return new HttpError(
    403,
    'origin-not-allowed',
    `requests from web pages are refused: Origin ${JSON.stringify(origin)} is not this control API's own origin. Browsers send Origin on cross-site requests; curl, scripts and aftershock ctl send none`,
  );
}

/** The media type of a Content-Type header, lowercase, without parameters; null when absent. */
export function mediaTypeOf(contentType: string | undefined): string | null {
  if (contentType === undefined) return null;
  const type = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return type === '' ? null : type;
}

/** Whether the request carries a body (a non-zero Content-Length or any Transfer-Encoding). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = Number(headers['content-length'] ?? 0);
  return length !== 0;
}

/**
 * The body rule of a state-changing request: a body, or a Content-Type even with an empty body (an
 * HTML form sends one), must be one of the route's types. GET and HEAD change nothing and pass.
 *
 * @example checkBodyType('POST', { 'content-type': 'text/plain', 'content-length': '2' }, JSON_BODY)?.status === 415
 */
export function checkBodyType(method: string, headers: IncomingHttpHeaders, accepts: readonly string[] = JSON_BODY): HttpError | null {
  if (method === 'GET' || method === 'HEAD') return null;
  const type = mediaTypeOf(headers['content-type']);
  if (type === null ? !hasBody(headers) : accepts.includes(type)) return null;
  const want = accepts.length === 1 ? (accepts[0] as string) : `${accepts.slice(0, -1).join(', ')} or ${accepts.at(-1) as string}`;
  return new HttpError(
    415,
    'unsupported-media-type',
    `send the body with Content-Type: ${want} (${type === null ? 'none was given' : `not ${type}`}; with curl, add -H 'content-type: ${accepts[0] ?? 'application/json'}'); text/plain and form bodies are refused because any web page can send those`,
    { accepts },
  );
}
