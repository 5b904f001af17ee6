/**
 * Who is a "client" for the retry analysis (spec §2): a configured header, else IP + User-Agent,
 * else IP — never the connection, because most HTTP clients open a new socket to retry after a
 * reset. A key taken from a secret header (Authorization, a `--redact` name, or any name the
 * recording's redaction rule calls secret: `x-session-token`, `x-tenant-secret`) is a hash, so
 * the key never carries a secret into the recording, a report or the control API.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { AftershockError } from '../errors.js';
import { isSecretHeaderName } from '../record/redact.js';

export type ClientKeyFn = (headers: IncomingHttpHeaders, ip: string) => string;

/** The default: `header:x-client-id` when the request has it, else `ip+ua`. */
export const DEFAULT_CLIENT_KEY = 'auto';

/**
 * Compiles `--client-key`: `header:<name>`, `ip`, `ip+ua`, or `auto`. `redact` is the `--redact`
 * list: a header named there is as secret as the built-in ones.
 *
 * @example compileClientKey('header:x-client-id')({ 'x-client-id': 'c7' }, '10.0.0.1') === 'c7'
 * @example compileClientKey('header:x-session-token')({ 'x-session-token': 's' }, '10.0.0.1') // 'h:' + 16 hex digits
 */
export function compileClientKey(spec: string, redact: readonly string[] = []): ClientKeyFn {
  const s = spec.trim();
  if (s === 'auto') {
    return (h, ip) => {
      const id = h['x-client-id'];
      return typeof id === 'string' && id !== '' ? id : ipUa(h, ip);
    };
  }
  if (s === 'ip') return (_h, ip) => ip;
  if (s === 'ip+ua') return ipUa;
  if (s.startsWith('header:') && s.length > 'header:'.length) {
    const name = s.slice('header:'.length).toLowerCase();
    const secret = isSecretHeaderName(name, redact);
    return (h, ip) => {
      const v = h[name];
      const value = Array.isArray(v) ? v.join(',') : v;
      if (value === undefined || value === '') return ipUa(h, ip);
      return secret ? `h:${createHash('sha256').update(value).digest('hex').slice(0, 16)}` : value;
    };
  }
  throw new AftershockError('ERR_BAD_OPTION', `--client-key ${JSON.stringify(spec)}: use header:<name>, ip, ip+ua or auto`);
}

function ipUa(h: IncomingHttpHeaders, ip: string): string {
  const ua = h['user-agent'];
  return ua === undefined || ua === '' ? ip : `${ip} ${ua}`;
}
