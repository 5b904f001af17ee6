/**
 * Turning raw request facts into the keys the analysis groups by: a route (method + path with ids
 * folded to `:id`), a canonical query without cache-busting keys, a User-Agent family, and the
 * attempt fingerprint of spec §3.2 (client key, method, path, canonical query, body hash).
 */

/**
 * Is `p[from, to)` an id segment? One pass over its characters, no substring and no regex (route
 * normalisation runs for every record offline). Exactly these, case-insensitive (the test checks
 * the equivalence against the regexes):
 *
 *   numeric  /^\d+$/
 *   uuid     /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
 *   hex id   /^(?=[0-9a-f]*\d)[0-9a-f]{8,}$/
 *   opaque   /^(?=.*\d)(?=.*[a-z])[0-9a-z_-]{16,}$/   (long tokens: ULIDs, base64 ids, Mongo ids)
 */
function isIdSegment(p: string, from: number, to: number): boolean {
  const len = to - from;
  // A token the recorder hid (`[redacted:3f9c…]`, a JWT in the path) stands for one of many.
  if (p.charCodeAt(from) === 91 /* [ */ && p.startsWith('[redacted', from)) return true;
  let digits = 0;
  let letters = 0;
  let nonHexLetters = 0;
  let dashes = 0;
  let other = 0;
  for (let i = from; i < to; i++) {
    const c = p.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) {
      letters++;
      if ((c | 32) > 102) nonHexLetters++;
    } else if (c === 45) dashes++;
    else if (c !== 95) other++;
  }
  if (other > 0) return false;
  // NUMERIC
  if (digits === len) return true;
  const hexOnly = nonHexLetters === 0 && dashes === 0 && digits + letters === len;
  // HEX_ID: hex digits only, at least one decimal digit, 8 or more
  if (hexOnly && len >= 8 && digits > 0) return true;
  // OPAQUE: [0-9a-z_-] only (checked above), a digit and a letter, 16 or more
  if (len >= 16 && digits > 0 && letters > 0) return true;
  // UUID: 8-4-4-4-12 hex digits (no underscore)
  if (len === 36 && dashes === 4 && nonHexLetters === 0 && digits + letters === 32) {
    return p.charCodeAt(from + 8) === 45 && p.charCodeAt(from + 13) === 45 && p.charCodeAt(from + 18) === 45 && p.charCodeAt(from + 23) === 45;
  }
  return false;
}

/**
 * Folds the id-like segments of a path to `:id` so `/users/42` and `/users/7` are one route.
 *
 * @example normalizePath('/users/42/orders/3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6') === '/users/:id/orders/:id'
 */
export function normalizePath(path: string): string {
  const q = path.indexOf('?');
  const end = q === -1 ? path.length : q;
  let out = '';
  /** Characters of `path` before `copied` are already in `out`. */
  let copied = 0;
  let from = 0;
  while (from <= end) {
    let to = path.indexOf('/', from);
    if (to === -1 || to > end) to = end;
    if (to > from && isIdSegment(path, from, to)) {
      out += `${path.slice(copied, from)}:id`;
      copied = to;
    }
    from = to + 1;
  }
  if (copied === 0) return end === 0 ? '/' : end === path.length ? path : path.slice(0, end);
  out += path.slice(copied, end);
  return out;
}

/**
 * The route label: method and normalised path; WebSocket upgrades are labelled `WS`.
 *
 * @example routeOf('GET', '/items/17', false) === 'GET /items/:id'
 */
export function routeOf(method: string, path: string, websocket: boolean): string {
  return `${websocket ? 'WS' : method.toUpperCase()} ${normalizePath(path)}`;
}

/** The query keys dropped from a fingerprint by default (cache busters). */
export const DEFAULT_CACHE_BUSTING_KEYS: readonly string[] = ['t', '_', 'ts', 'nonce'];

/**
 * Query keys that are new on every WebSocket connection (Socket.IO's `sid`, SignalR's `id`, a
 * per-connection token), also dropped from a socket's endpoint: kept, every reconnect would be an
 * endpoint of its own and a reconnect storm no chain at all. Only for sockets: on a request an
 * `id` names what is asked for.
 */
export const WS_CONNECTION_KEYS: readonly string[] = ['sid', 'id', 'connectiontoken', 'connectionid', 'token', 'access_token', 'jwt', 'auth'];

/**
 * The query with cache-busting keys removed and the rest sorted, so `?b=2&a=1&_=123` and
 * `?a=1&b=2&_=456` fingerprint the same.
 *
 * @example canonicalQuery('b=2&a=1&_=99', new Set(['_'])) === 'a=1&b=2'
 */
export function canonicalQuery(query: string | null, drop: ReadonlySet<string>): string {
  if (query === null || query === '') return '';
  const parts = query.split('&').filter((p) => {
    if (p === '') return false;
    const eq = p.indexOf('=');
    let key = eq === -1 ? p : p.slice(0, eq);
    try {
      key = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      /* keep the raw key */
    }
    return !drop.has(key.toLowerCase());
  });
  parts.sort();
  return parts.join('&');
}

/**
 * The fingerprint of an attempt: equal for the attempts of one logical request. Per-attempt
 * headers (Authorization, Date, trace ids) never enter it; only the recorded facts below do.
 * A plain joined string: it lives only while its thread does, and hashing it (sha1) per record
 * cost more than the rest of the grouping. (`toAttempt` builds the same string prefixed with `f\0`
 * in one join; a test holds the two equal.)
 */
export function fingerprint(client: string, method: string, path: string, query: string, bodyHash: string | null): string {
  return `${client}\0${method}\0${path}?${query}\0${bodyHash ?? ''}`;
}

/**
 * A small memo for pure string functions on the hot path (route and User-Agent family): most
 * records repeat a few paths and agents. Cleared when full, so it stays bounded.
 */
export function memo(fn: (s: string) => string, max = 10_000): (s: string) => string {
  let cache = new Map<string, string>();
  return (s) => {
    let v = cache.get(s);
    if (v === undefined) {
      v = fn(s);
      if (cache.size >= max) cache = new Map();
      cache.set(s, v);
    }
    return v;
  };
}

/** Browser names, tested in this order (Edge and Opera say "Chrome" too; Chrome says "Safari"). */
const BROWSERS: Array<[RegExp, string]> = [
  [/\bEdg(?:e|A|iOS)?\//, 'edge'],
  [/\bOPR\/|\bOpera\b/, 'opera'],
  [/\bSamsungBrowser\//, 'samsung-internet'],
  [/\bFirefox\/|\bFxiOS\//, 'firefox'],
  [/\bChrom(?:e|ium)\/|\bCriOS\//, 'chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'safari'],
];

/**
 * The User-Agent family: the product without its version (`okhttp/4.9.0` -> `okhttp`,
 * `python-requests/2.31` -> `python-requests`), a browser name for browsers, `(none)` when absent.
 *
 * @example userAgentFamily('okhttp/4.9.0') === 'okhttp'
 * @example userAgentFamily('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36') === 'chrome'
 */
export function userAgentFamily(ua: string | null): string {
  if (ua === null) return '(none)';
  const s = ua.trim();
  if (s === '') return '(none)';
  if (/^Mozilla\//.test(s)) {
    for (const [re, name] of BROWSERS) if (re.test(s)) return name;
    if (/\bbot\b|crawler|spider/i.test(s)) return 'bot';
    return 'mozilla';
  }
  const m = /^([A-Za-z][A-Za-z0-9._+-]*?)(?:[/ ]v?\d|\/|\s|$)/.exec(s);
  const name = (m?.[1] ?? s.split(/[\s/]/)[0] ?? s).toLowerCase();
  return name.length > 40 ? name.slice(0, 40) : name;
}
