/**
 * The one upstream a proxy forwards to, parsed once at start.
 *
 * aftershock is never an open proxy: the target is fixed here and nothing a client sends (Host,
 * absolute-form URIs, CONNECT) can change it.
 */
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

/** A `.` or `..` path segment, plain or percent-encoded (`%2e`), before `/`, `?` or the end. */
const DOT_SEGMENT_RE = /(^|\/)(\.|%2e){1,2}(?=\/|\?|$)/i;

/**
 * The request target the upstream gets: the target's prefix, then the client's path and query.
 * Under a prefix, dot segments are resolved first (RFC 3986 remove_dot_segments, `%2e` read as
 * `.`), so `/../secret` cannot climb out of `/api` on an upstream that normalises paths; without a
 * prefix the client's target goes through as it is.
 *
 * @example upstreamTarget(parseTarget('http://h/api'), '/a/../../secret?q=1') === '/api/secret?q=1'
 */
export function upstreamTarget(target: Target, url: string): string {
  if (target.prefix === '') return url;
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  if (!DOT_SEGMENT_RE.test(path)) return target.prefix + url;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = (segments[i] as string).toLowerCase().replaceAll('%2e', '.');
    const last = i === segments.length - 1;
    if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else if (seg === '.') {
      if (last) out.push('');
    } else out.push(segments[i] as string);
  }
  return `${target.prefix}/${out.join('/')}${q === -1 ? '' : url.slice(q)}`;
}
