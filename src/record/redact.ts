/**
 * What never reaches a recording, a log or a report: secrets in headers, in query strings and in
 * the userinfo of an absolute-form request target.
 *
 * Bodies are never recorded. Only a fixed set of request headers is recorded (the retry headers
 * of the analysis spec, plus any the user asks for with `--record-headers`); a recorded header that
 * is secret is written as `[redacted]`, and a client key taken from one (`--client-key header:...`)
 * is a hash. Names are matched by *kind*, not by an exact list: credentials travel under many names
 * (`client_secret`, `refresh_token`, `id_token`, `key`, `X-Amz-Signature`, `token[]`,
 * `X-Session-Token`), and a list of exact names always misses the next one. Over-redaction is the
 * cheap mistake here; a leaked secret in a recording that gets shared is not.
 *
 * The rule for a query parameter or header name (decoded, case-insensitive, `name[]` / `name[x]`
 * read as words):
 *
 *   secret when   the letters contain   token, secret, passw, pwd, apikey, credential, signature,
 *                                       session, sessid, jwt, saml, assertion, privatekey, accesskey,
 *                                       bearer, hmac, auth (but not "author", "authors", ...)
 *            or   one of its words is   key, sig, sid, pass, passphrase, passcode, otp
 *            or   the whole name is     code, code_verifier, device_code, ticket (OAuth, PKCE, CAS)
 *            or   the name is one of the extra names (`--redact`)
 *
 * so `page`, `limit`, `id`, `q`, `sort`, `author`, `keyword`, `country_code`, `side` are kept, and
 * `key`, `x-api-key`, `access_key`, `accessKey`, `client_secret`, `token[]`, `connect.sid` are not.
 * A header is also secret when it is one of {@link DEFAULT_REDACTED_HEADERS} (`Cookie` carries
 * secrets under an ordinary name), and the retry headers the analysis reads (`Idempotency-Key`)
 * are not, unless `--redact` names them. Query parameters are separated by `&` and by `;` (the older
 * form some servers still accept), so `a=1;token=x` hides its token too.
 */
import { createHash } from 'node:crypto';
import { RETRY_HEADERS } from './schema.js';

export const REDACTED = '[redacted]';

/** Headers whose values are always secrets. */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-amz-security-token',
];

/** Substrings of a name's letters (lowercase, separators removed) that make it secret. */
const SECRET_PARTS: readonly string[] = [
  'token',
  'secret',
  'passw',
  'pwd',
  'apikey',
  'credential',
  'signature',
  'session',
  'sessid',
  'jwt',
  'saml',
  'assertion',
  'privatekey',
  'accesskey',
  'bearer',
  'hmac',
];
/** Words (split at separators and camelCase humps) that make a name secret. */
const SECRET_WORDS: ReadonlySet<string> = new Set(['key', 'sig', 'sid', 'pass', 'passphrase', 'passcode', 'otp']);
/** Whole names that are secrets although their words are ordinary. */
const SECRET_NAMES: ReadonlySet<string> = new Set(['code', 'code_verifier', 'device_code', 'ticket']);

/**
 * Headers the rule would call secret by their words that are not: the retry headers the analysis
 * reads (`Idempotency-Key` names an attempt, not a caller) stay readable unless `--redact` names them.
 */
const NOT_SECRET_HEADERS: ReadonlySet<string> = new Set<string>(RETRY_HEADERS);

/** Decisions are cached per raw name; past this many distinct names the cache starts over. */
const NAME_CACHE_MAX = 1024;

/** A compiled redaction policy. */
export interface Redactor {
  /**
   * The secret header names (lower case). `has` answers for any name by the rule of the module
   * comment; iterating gives the listed ones (the defaults and `--redact`), which the recording's
   * header shows.
   */
  readonly headers: ReadonlySet<string>;
  /** Returns the query with secret parameter values replaced (unchanged when nothing matched). */
  query(raw: string | null): string | null;
  /** Returns the request path without userinfo (see {@link redactPath}) and with secret path parameters (`;jsessionid=`) redacted. */
  path(raw: string): string;
}

/**
 * Whether a query parameter name looks like it carries a credential (the default rule of the
 * module comment, without extra names). `name` is the raw name as on the wire: percent-decoding,
 * `+`, case and `[...]` suffixes are handled here.
 *
 * @example isSecretQueryName('client_secret') === true; isSecretQueryName('page') === false
 */
export function isSecretQueryName(name: string): boolean {
  return classify(decodeName(name), EMPTY);
}

/**
 * Whether a header's value is a secret: one of {@link DEFAULT_REDACTED_HEADERS}, one of `extra`
 * (the `--redact` names), or a name the rule of the module comment calls secret. `name` is
 * case-insensitive.
 *
 * @example isSecretHeaderName('x-session-token') === true; isSecretHeaderName('x-client-id') === false
 */
export function isSecretHeaderName(name: string, extra: readonly string[] = []): boolean {
  // The recording's own rule (one rule for the client key and the recorded headers).
  return createRedactor(extra).headers.has(name.toLowerCase());
}

/**
 * Removes the userinfo (`user:password@`) of an absolute-form request target, the only place a
 * request path can carry one: `http://alice:pw@example.com/x` becomes `http://[redacted]@example.com/x`.
 * An origin-form path (`/x`, the usual case) is returned as is without being scanned.
 *
 * @example redactPath('http://alice:pw@example.com/') === 'http://[redacted]@example.com/'
 */
export function redactPath(path: string): string {
  // Fast path: "/..." (but not "//host", a network-path reference) cannot hold userinfo.
  if (path.charCodeAt(0) === 47 /* / */ && path.charCodeAt(1) !== 47) return path;
  const at = path.indexOf('@');
  if (at === -1) return path;
  // The authority starts after "scheme://" or "//" (or at 0 for an authority-form target) and
  // ends at the first "/", "?" or "#".
  const sep = path.indexOf('//');
  const start = sep === -1 ? 0 : sep + 2;
  let end = path.length;
  for (let i = start; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  const lastAt = path.lastIndexOf('@', end - 1);
  if (lastAt < start) return path;
  return `${path.slice(0, start)}${REDACTED}${path.slice(lastAt)}`;
}

/** Kubernetes' bearer-token subprotocol: `base64url.bearer.authorization.k8s.io.<token>`. */
const K8S_BEARER = 'base64url.bearer.authorization.k8s.io.';
/** Whole words (lower case) that mark a credential in a subprotocol; what follows them is the secret. */
const SUBPROTOCOL_MARKERS: ReadonlySet<string> = new Set([
  'token', 'bearer', 'auth', 'authorization', 'jwt', 'apikey', 'key', 'secret', 'session', 'password', 'passwd',
  'credential', 'credentials', 'signature', 'sig', 'hmac', 'accesstoken', 'authtoken', 'idtoken', 'refreshtoken',
  'sessiontoken',
]);
/** A JWT (base64url of `{"`), the token most often sent as a subprotocol of its own. */
const JWT_LIKE = /^eyJ[\w-]{8,}/;

/**
 * Hides the credentials WebSocket clients send as subprotocols (a browser cannot set an
 * Authorization header on a WebSocket, so the token rides in `Sec-WebSocket-Protocol`), keeping
 * the marker that says what was there:
 *
 *   base64url.bearer.authorization.k8s.io.<token>   the Kubernetes prefix is kept
 *   access_token.<secret>, x-auth-token.<secret>     what follows the marker words is hidden
 *   access_token, <secret>   /   Bearer, <secret>     an entry that is only a marker hides the next
 *   eyJ...                                            a JWT on its own is hidden
 *
 * A word of an entry the name rule calls secret that is not a plain marker (`chat.abcTOKEN9`)
 * is hidden with what follows it: it may be the secret itself.
 *
 * @example redactSubprotocols('chat, base64url.bearer.authorization.k8s.io.eyJhb') === 'chat, base64url.bearer.authorization.k8s.io.[redacted]'
 */
export function redactSubprotocols(header: string): string {
  return subprotocolEntries(header)
    .map((e) => e.lead + e.value)
    .join(',');
}

/**
 * The chosen subprotocol as {@link redactSubprotocols} writes it in the offered list (the entry
 * after a bare marker is hidden whole), or on its own when the offer is not known.
 *
 * @example redactSubprotocol('opaque1', 'Bearer, opaque1') === '[redacted]'
 */
export function redactSubprotocol(chosen: string, offered?: string): string {
  if (offered !== undefined) {
    for (const e of subprotocolEntries(offered)) if (e.raw === chosen) return e.value;
  }
  return redactSubprotocolEntry(chosen, false).value;
}

function subprotocolEntries(header: string): Array<{ raw: string; lead: string; value: string }> {
  const out: Array<{ raw: string; lead: string; value: string }> = [];
  let afterMarker = false;
  for (const part of header.split(',')) {
    const raw = part.trim();
    const lead = part.slice(0, part.indexOf(raw));
    const r = redactSubprotocolEntry(raw, afterMarker);
    afterMarker = r.bare;
    out.push({ raw, lead, value: r.value + part.slice(lead.length + raw.length) });
  }
  return out;
}

/** One entry; `bare` when it is nothing but marker words (the next entry is then the secret). */
function redactSubprotocolEntry(entry: string, afterMarker: boolean): { value: string; bare: boolean } {
  if (afterMarker && entry !== '') return { value: REDACTED, bare: false };
  if (entry.length > K8S_BEARER.length && entry.toLowerCase().startsWith(K8S_BEARER)) return { value: entry.slice(0, K8S_BEARER.length) + REDACTED, bare: false };
  const words = [...entry.matchAll(/[A-Za-z0-9]+/g)].map((m) => ({ at: m.index, word: m[0] }));
  const first = words.findIndex((w) => SUBPROTOCOL_MARKERS.has(w.word.toLowerCase()) || classify(w.word, EMPTY));
  if (first === -1) return { value: JWT_LIKE.test(entry) ? REDACTED : entry, bare: false };
  // The marker words from the first on are kept; the rest, from the first word that is not one, is the secret.
  let next = first;
  while (next < words.length && SUBPROTOCOL_MARKERS.has((words[next] as { word: string }).word.toLowerCase())) next++;
  if (next === words.length) return { value: entry, bare: true };
  return { value: entry.slice(0, (words[next] as { at: number }).at) + REDACTED, bare: false };
}

/**
 * Builds a redactor from the defaults plus extra names (case-insensitive). Extra names are secret
 * wherever they appear: an extra header name is also redacted as a query parameter name.
 *
 * @example createRedactor(['x-tenant-pin']).query('a=1&x-tenant-pin=7&client_secret=s') === 'a=1&x-tenant-pin=[redacted]&client_secret=[redacted]'
 */
export function createRedactor(extraHeaders: readonly string[] = []): Redactor {
  const extraNames = new Set<string>();
  for (const n of extraHeaders) {
    const lower = n.toLowerCase();
    extraNames.add(lower);
    extraNames.add(stripBrackets(lower));
  }
  // Names repeat (page, limit, token): the decision per raw name is computed once.
  let cache = new Map<string, boolean>();
  const isSecret = (raw: string): boolean => {
    let secret = cache.get(raw);
    if (secret === undefined) {
      secret = classify(decodeName(raw), extraNames);
      if (cache.size >= NAME_CACHE_MAX) cache = new Map();
      cache.set(raw, secret);
    }
    return secret;
  };
  const headers = new SecretHeaderNames([...DEFAULT_REDACTED_HEADERS, ...extraHeaders.map((h) => h.toLowerCase())], isSecret);
  const redactor: Redactor = {
    headers,
    query(raw) {
      if (raw === null || raw === '') return raw;
      // One pass over the parts between `&` / `;`; the copy is built only once a value is hidden.
      let out: string | null = null;
      let copied = 0;
      const n = raw.length;
      for (let start = 0; start <= n; ) {
        let end = start;
        let eq = -1;
        for (; end < n; end++) {
          const c = raw.charCodeAt(end);
          if (c === 38 /* & */ || c === 59 /* ; */) break;
          if (c === 61 /* = */ && eq === -1) eq = end;
        }
        if (eq !== -1 && isSecret(raw.slice(start, eq))) {
          out = (out ?? '') + raw.slice(copied, eq + 1) + REDACTED;
          copied = end;
        }
        start = end + 1;
      }
      return out === null ? raw : out + raw.slice(copied);
    },
    path(raw) {
      let p = redactPath(raw);
      // A JWT as a path segment (`/reset/eyJhbGci…`, a magic link): the token itself is hidden, a
      // hash of it kept (`[redacted:3f9c…]`, as a secret client key is), so two links stay two
      // requests for the analysis. Checked only when the path holds its marker.
      if (p.indexOf('eyJ') !== -1) p = p.split('/').map((seg) => (JWT_LIKE.test(seg) ? `[redacted:${createHash('sha256').update(seg).digest('hex').slice(0, 16)}]` : seg)).join('/');
      // Path parameters (`/cart;jsessionid=...`) are named like query parameters and redacted alike.
      if (p.indexOf(';') === -1) return p;
      return p
        .split('/')
        .map((seg) => {
          const i = seg.indexOf(';');
          return i === -1 ? seg : seg.slice(0, i + 1) + (redactor.query(seg.slice(i + 1)) ?? '');
        })
        .join('/');
    },
  };
  return redactor;
}

/**
 * The listed secret header names, whose `has` also says yes to any name the rule calls secret:
 * `--record-headers x-access-token` is recorded as `[redacted]` without being listed in `--redact`.
 */
class SecretHeaderNames extends Set<string> {
  private readonly bySecretRule: (name: string) => boolean;

  constructor(listed: readonly string[], bySecretRule: (name: string) => boolean) {
    super(listed);
    this.bySecretRule = bySecretRule;
  }

  override has(name: string): boolean {
    return super.has(name) || (!NOT_SECRET_HEADERS.has(name) && this.bySecretRule(name));
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** A run of valid percent-escapes (`%74%6F`): the unit `decodeName` decodes. */
const ESCAPES = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * Percent- and `+`-decodes a parameter name, leniently: an invalid escape (`%ZZ`, a lone `%`) is
 * kept as written and the valid ones around it are still decoded, so `%74oken%ZZ` reads as
 * `token%ZZ` (decodeURIComponent refuses the whole name, which hid the secret name behind one bad
 * escape). Bytes that are not valid UTF-8 become U+FFFD, a separator like any other.
 */
function decodeName(raw: string): string {
  const name = raw.indexOf('+') === -1 ? raw : raw.replaceAll('+', ' ');
  if (name.indexOf('%') === -1) return name;
  try {
    return decodeURIComponent(name);
  } catch {
    return name.replace(ESCAPES, (run) => Buffer.from(run.replaceAll('%', ''), 'hex').toString('utf8'));
  }
}

/** `token[]` -> `token`, `user[password]` -> `user`. */
function stripBrackets(name: string): string {
  const b = name.indexOf('[');
  return b > 0 ? name.slice(0, b) : name;
}

/**
 * The rule of the module comment, on a decoded name. One pass splits the name into lowercase
 * words (at any non-alphanumeric character and at a lower-to-upper camelCase hump) and collects
 * its letters without separators; the checks are then set look-ups and `includes`.
 */
function classify(name: string, extra: ReadonlySet<string>): boolean {
  const lower = name.toLowerCase();
  if (extra.size > 0 && (extra.has(lower) || extra.has(stripBrackets(lower)))) return true;
  if (SECRET_NAMES.has(stripBrackets(lower))) return true;
  let flat = '';
  let word = '';
  let prevLower = false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const isUpper = c >= 65 && c <= 90;
    const isLowerOrDigit = (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
    if (!isUpper && !isLowerOrDigit) {
      if (SECRET_WORDS.has(word)) return true;
      word = '';
      prevLower = false;
      continue;
    }
    if (isUpper && prevLower) {
      if (SECRET_WORDS.has(word)) return true;
      word = '';
    }
    const ch = String.fromCharCode(isUpper ? c + 32 : c);
    word += ch;
    flat += ch;
    prevLower = !isUpper;
  }
  if (SECRET_WORDS.has(word)) return true;
  for (let i = 0; i < SECRET_PARTS.length; i++) if (flat.includes(SECRET_PARTS[i] as string)) return true;
  return hasAuth(flat);
}

/** "auth" anywhere (oauth, authcode, authorization) except as the start of "author", "authors", ... */
function hasAuth(flat: string): boolean {
  for (let at = flat.indexOf('auth'); at !== -1; at = flat.indexOf('auth', at + 4)) {
    if (!flat.startsWith('or', at + 4)) return true;
    // "authoriz"/"authoris" (authorization) is a credential; "author", "authority" are not.
    if (flat.startsWith('oriz', at + 4) || flat.startsWith('oris', at + 4)) return true;
  }
  return false;
}
