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
