/**
 * What the upstream is told about the client's connection to the proxy: `X-Forwarded-For`,
 * `-Port`, `-Proto` and `-Host`, computed here once for both legs (the HTTP pool and the WebSocket
 * handshake), so a request and an upgrade from the same client say the same thing.
 *
 * For, Port and Proto are appended to any the client sent (comma-separated, the client's first);
 * Host is set from the client's `Host` only when the client sent none. Port and Proto describe the
 * connection the client opened to the proxy: the port it reached (the socket's local port, never
 * the `Host` header, which the client writes as it likes) and whether that listener speaks TLS.
 * A client's `X-Forwarded-*` that its `Connection` header names is hop-by-hop (RFC 9110 §7.6.1):
 * the leg drops it, and it counts here as not sent.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** The client's connection to the proxy, as the forwarded headers describe it. */
export interface ClientConnection {
  /** The client's address (X-Forwarded-For). */
  readonly remote: string;
  /** The proxy's port the client connected to; undefined when the socket no longer says. */
  readonly localPort: number | undefined;
  /** The connection came in over TLS (X-Forwarded-Proto https). */
  readonly encrypted: boolean;
}

/** The headers this module adds; the client's For, Port and Proto are folded into them. */
export interface ForwardedHeaders {
  'x-forwarded-for': string;
  'x-forwarded-port': string;
  'x-forwarded-proto': string;
  /** Only when the client sent none (its own then travels with its other headers). */
  'x-forwarded-host'?: string;
}

/**
 * Client request headers a leg must not copy as they are: `forwardedHeaders` returns them with
 * the proxy's entry appended. (The client's X-Forwarded-Host, when it sent one, travels as sent.)
 */
export const FORWARDED_APPENDED: ReadonlySet<string> = new Set(['x-forwarded-for', 'x-forwarded-port', 'x-forwarded-proto']);

/**
 * The client's connection as `forwardedHeaders` needs it: the socket's TLS flag and local port.
 *
 * @example
 * const fwd = forwardedHeaders(req.headers, clientConnection(req.socket, remoteIp(req.socket)));
 */
export function clientConnection(socket: { readonly localPort?: number | undefined; readonly encrypted?: boolean }, remote: string): ClientConnection {
  return { remote, localPort: socket.localPort, encrypted: socket.encrypted === true };
}

/**
 * The X-Forwarded-* headers for the upstream, from the client's headers (lower-case names, as
 * Node parses them) and its connection.
 *
 * @example
 * forwardedHeaders({ host: 'shop:8080', 'x-forwarded-for': '10.0.0.1' }, { remote: '127.0.0.1', localPort: 8080, encrypted: false });
 * // { 'x-forwarded-for': '10.0.0.1,127.0.0.1', 'x-forwarded-port': '8080',
 * //   'x-forwarded-proto': 'http', 'x-forwarded-host': 'shop:8080' }
 */
export function forwardedHeaders(h: IncomingHttpHeaders, conn: ClientConnection): ForwardedHeaders {
  const named = namedInConnection(h.connection);
  const sent = (name: string): string | string[] | undefined => (named !== null && named.has(name) ? undefined : h[name]);
  // A socket that no longer reports its port (gone before its request was forwarded): the
  // scheme's default, the port a client without one in its URL reached.
  const port = conn.localPort ?? (conn.encrypted ? 443 : 80);
  const out: ForwardedHeaders = {
    'x-forwarded-for': append(sent('x-forwarded-for'), conn.remote),
    'x-forwarded-port': append(sent('x-forwarded-port'), String(port)),
    'x-forwarded-proto': append(sent('x-forwarded-proto'), conn.encrypted ? 'https' : 'http'),
  };
  if (sent('x-forwarded-host') === undefined && h.host !== undefined) out['x-forwarded-host'] = h.host;
  return out;
}

function append(prev: string | string[] | undefined, value: string): string {
  if (prev === undefined) return value;
  return (Array.isArray(prev) ? prev.join(',') : prev) + ',' + value;
}

/** The header names a Connection header lists (lower case); null for none. */
function namedInConnection(value: string | undefined): Set<string> | null {
  if (value === undefined) return null;
  const s = new Set<string>();
  for (const t of value.toLowerCase().split(',')) s.add(t.trim());
  return s;
}
