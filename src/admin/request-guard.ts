/**
 * Keeps web pages off the control API. Binding to loopback stops other machines, not the browser
 * on this one: any page it shows can send requests to 127.0.0.1:8081 (cross-site request forgery)
 * or point a name of its own at 127.0.0.1 and read the answers (DNS rebinding). The Host rule is
 * the one local dev servers use (Vite's `server.allowedHosts`, webpack-dev-server's
 * `allowedHosts`); the cross-origin rules are those of Go's `http.CrossOriginProtection` and the
 * Fetch Metadata resource isolation policy (web.dev/fetch-metadata). Pure functions of the request
 * head, checked in this order; the server only turns a refusal into an answer.
 *
 *   Host            ──▶ a loopback name/IP, the --admin host, an allowed name?   else 403 host-not-allowed
 *   Origin          ──▶ absent (curl, scripts, ctl) or this API's own origin?    else 403 origin-not-allowed
 *   Sec-Fetch-Site  ──▶ absent, same-origin, none (a typed URL or bookmark),
 *                       or a link followed to open a page (GET navigation)?      else 403 cross-site-request
 *
 * Browsers mark every request with Sec-Fetch-Site and send Origin with every cross-origin POST,
 * PUT, PATCH and DELETE — the text/plain, form and multipart ones they send without a CORS
 * preflight included. Curl, scripts and `aftershock ctl` send neither, so a body is read whatever
 * its Content-Type: `curl -d '{"label":"x"}'` (a form type) works, and a page cannot get in by
 * choosing a type. `same-site` is refused too: sites ignore ports, so a dev server on
 * localhost:3000 is the same site as this API. A rebinding page must use a DNS name in Host; an IP
 * address in Host cannot be a rebinding.
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { AftershockError } from '../errors.js';
import { HttpError } from './http.js';

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
  const hosts = (raw ?? '').split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  for (const h of hosts) {
    const problem = allowHostProblem(h);
    if (problem !== null) throw new AftershockError('ERR_BAD_OPTION', `--admin-allow-host ${JSON.stringify(raw)}: ${JSON.stringify(h)} is ${problem}`);
  }
  return hosts;
}

/**
 * What is wrong with one `--admin-allow-host` entry, or null: a host name (with or without a port),
 * an IP address, `.domain` for a domain and its subdomains, or `*`.
 *
 * @example allowHostProblem('host!') // 'not a host name: give name, name:port, an IP address, .domain or *'
 */
export function allowHostProblem(entry: string): string | null {
  const e = entry.trim().toLowerCase();
  if (e === '*') return null;
  const name = e.startsWith('.') ? e.slice(1) : e;
  return name !== '' && hostnameOf(name) !== null ? null : 'not a host name: give name, name:port, an IP address, .domain or *';
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

/** One header as a trimmed lowercase string; a header given twice reads as Node joins it. */
function headerOf(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(', ') : (v ?? '')).trim().toLowerCase();
}

/**
 * The Sec-Fetch-Site rule: a request a browser marks as sent by a page of another origin is
 * refused, on every method, unless it is a link the user follows to open a page (a top-level GET
 * navigation, which the page cannot read). Absent (not a browser, or one from before 2023) and
 * empty pass, as in Go's `CrossOriginProtection`; a value a browser never sends is refused.
 *
 * @example
 * checkFetchSite('POST', { 'sec-fetch-site': 'cross-site' })?.code === 'cross-site-request'
 * checkFetchSite('POST', { 'sec-fetch-site': 'same-origin' }) === null
 * checkFetchSite('POST', {}) === null // curl
 */
export function checkFetchSite(method: string, headers: IncomingHttpHeaders): HttpError | null {
  const site = headerOf(headers, 'sec-fetch-site');
  if (site === '' || site === 'same-origin' || site === 'none') return null;
  const followedLink = method === 'GET' && headerOf(headers, 'sec-fetch-mode') === 'navigate' && headerOf(headers, 'sec-fetch-dest') === 'document';
  if (followedLink) return null;
  const who = site === 'same-site' ? 'a page of the same site on another port or subdomain (a dev server on localhost:3000 is one)' : site === 'cross-site' ? 'a page of another site' : 'a page elsewhere';
  return new HttpError(
    403,
    'cross-site-request',
    `requests from web pages are refused: Sec-Fetch-Site ${JSON.stringify(site)} says ${who} sent this one. Browsers mark every request with Sec-Fetch-Site; curl, scripts and aftershock ctl send none. To look at the API in a browser, type its URL`,
  );
}
