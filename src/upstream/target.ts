/**
 * The one upstream a proxy forwards to, parsed once at start.
 *
 * aftershock is never an open proxy: the target is fixed here and nothing a client sends (Host,
 * absolute-form URIs, CONNECT) can change it.
 */
import { isIP } from 'node:net';
import { AftershockError } from '../errors.js';

export interface Target {
  /** The URL as given, normalised (no trailing slash on the path prefix). */
  readonly href: string;
  readonly url: URL;
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number;
  /** Path prefix prepended to every request path ('' for none). */
  readonly prefix: string;
  /** `host:port` as the upstream expects it in a Host header. */
  readonly host: string;
}

/**
 * Parses `--target`. Throws ERR_BAD_TARGET with a message that says what is wrong.
 *
 * @example parseTarget('https://staging.example/api').prefix === '/api'
 */
export function parseTarget(raw: string | undefined): Target {
  if (raw === undefined || raw.trim() === '') {
    throw new AftershockError('ERR_BAD_TARGET', 'missing --target: give the upstream URL, e.g. --target http://127.0.0.1:3000');
  }
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new AftershockError('ERR_BAD_TARGET', `--target ${JSON.stringify(raw)} is not a URL: write it as http://host:port or https://host/prefix`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AftershockError('ERR_BAD_TARGET', `--target must be an http:// or https:// URL, got ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new AftershockError('ERR_BAD_TARGET', '--target must not carry credentials; send them from the client');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new AftershockError('ERR_BAD_TARGET', '--target must not have a query or fragment');
  }
  const protocol = url.protocol;
  const port = url.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(url.port);
  const prefix = url.pathname.replace(/\/+$/, '');
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return Object.freeze({
    href: `${protocol}//${url.host}${prefix}`,
    url,
    protocol,
    hostname,
    port,
    prefix,
    host: url.host,
  });
}

/**
 * What could make a path climb under a prefix: a `.` or `..` segment however an upstream may read
 * one (plain or `%2e`; after `/`, `\`, `%2f` or `%5c`; ended by one of those, `;` parameters, a
 * query, a fragment or the end), or a fragment. Checked over the whole target: a match in the
 * query only costs the slow path.
 */
const RISKY_RE = /(?:^|[/\\]|%2f|%5c)(?:\.|%2e){1,2}(?:[/\\;?#]|%2f|%5c|$)|#/i;
/** A path segment separator as any upstream may read one. */
const SEPARATORS_RE = /[/\\]|%2f|%5c/gi;

/**
 * The request target the upstream gets: the target's prefix, then the client's path and query.
 * Under a prefix the path is resolved first, so no upstream, however it reads a path, sees it
 * climb out of the prefix: when it holds a dot segment, `\`, `%2f` and `%5c` count as `/`, `%2e`
 * as `.`, a segment is a dot segment also with `;` parameters (`..;/`, as Tomcat reads it), and `.`
 * and `..` segments are removed (RFC 3986 remove_dot_segments); a fragment is dropped. A target
 * without either goes through as sent, as does every target without a prefix.
 *
 * @example upstreamTarget(parseTarget('http://h/api'), '/a/..\\..\\secret?q=1') === '/api/secret?q=1'
 */
export function upstreamTarget(target: Target, url: string): string {
  if (target.prefix === '' || !RISKY_RE.test(url)) return target.prefix + url;
  const hash = url.indexOf('#');
  const whole = hash === -1 ? url : url.slice(0, hash);
  const q = whole.indexOf('?');
  const path = q === -1 ? whole : whole.slice(0, q);
  const segments = path.split(SEPARATORS_RE);
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const raw = segments[i] as string;
    const dots = (raw.split(';')[0] as string).toLowerCase().replaceAll('%2e', '.');
    const last = i === segments.length - 1;
    if (dots === '..') {
      out.pop();
      if (last) out.push('');
    } else if (dots === '.') {
      if (last) out.push('');
    } else out.push(raw);
  }
  return `${target.prefix}/${out.join('/')}${q === -1 ? '' : whole.slice(q)}`;
}

/**
 * The TLS server name (SNI, and the name the certificate is checked against) of an upstream
 * connection that sends `host` as its Host: that host's name when it is a DNS name (with
 * `--host-header preserve`, a staging load balancer that routes by SNI sees the name the Host
 * says, as undici derives it for the HTTP leg); else the target's host name; '' (no SNI, which
 * may not carry an IP address) when that is an IP address too.
 *
 * @example upstreamServername(parseTarget('https://localhost:8443'), 'staging.test:8443') === 'staging.test'
 * @example upstreamServername(parseTarget('https://localhost:8443'), '127.0.0.1:9000') === 'localhost'
 */
export function upstreamServername(target: Target, host: string | undefined): string {
  const fromHost = host === undefined ? '' : hostName(host);
  if (fromHost !== '' && isIP(fromHost) === 0) return fromHost;
  return isIP(target.hostname) === 0 ? target.hostname : '';
}

/** The name part of a Host header value (`[::1]:80` → `::1`, `a.test:8080` → `a.test`). */
function hostName(host: string): string {
  const h = host.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end === -1 ? '' : h.slice(1, end);
  }
  const colon = h.indexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}
