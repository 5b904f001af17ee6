/**
 * What never reaches a recording, a log or a report: secrets in headers and in query strings.
 *
 * Bodies are never recorded. Only a fixed set of request headers is recorded (the retry headers
 * of the analysis spec, plus any the user asks for with `--record-headers`); a recorded header on
 * the redaction list is written as `[redacted]`. Query parameters that commonly carry credentials
 * have their values replaced the same way.
 */

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

/** Query parameters whose values are replaced in recorded queries. */
export const DEFAULT_REDACTED_QUERY: readonly string[] = [
  'api_key',
  'apikey',
  'api-key',
  'access_token',
  'token',
  'auth',
  'password',
  'secret',
  'signature',
  'sig',
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
];

/** A compiled redaction policy. */
export interface Redactor {
  readonly headers: ReadonlySet<string>;
  /** Returns the query with secret parameter values replaced (unchanged when nothing matched). */
  query(raw: string | null): string | null;
}

/**
 * Builds a redactor from the defaults plus extra names (case-insensitive).
 *
 * @example createRedactor(['x-session']).query('a=1&token=abc') === 'a=1&token=[redacted]'
 */
export function createRedactor(extraHeaders: readonly string[] = [], extraQuery: readonly string[] = []): Redactor {
  const headers = new Set([...DEFAULT_REDACTED_HEADERS, ...extraHeaders.map((h) => h.toLowerCase())]);
  const queryKeys = new Set([...DEFAULT_REDACTED_QUERY, ...extraQuery.map((q) => q.toLowerCase())]);
  return {
    headers,
    query(raw) {
      if (raw === null || raw === '') return raw;
      let changed = false;
      const parts = raw.split('&');
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i] as string;
        const eq = part.indexOf('=');
        const key = (eq === -1 ? part : part.slice(0, eq)).toLowerCase();
        let decoded = key;
        try {
          decoded = decodeURIComponent(key);
        } catch {
          /* keep the raw key */
        }
        if (queryKeys.has(decoded) && eq !== -1) {
          parts[i] = `${part.slice(0, eq)}=${REDACTED}`;
          changed = true;
        }
      }
      return changed ? parts.join('&') : raw;
    },
  };
}
