/**
 * The zod building blocks every fault schema (and the profile schema) shares: strict objects whose
 * unknown-key message lists the known keys, durations, Retry-After, header maps and bodies.
 * Messages read as the second half of `rules[2].fault.status: must be 200-599`.
 */
import { z } from 'zod';
import { DURATION_HINT, parseDuration, parseSecondsOrDuration } from './duration.js';

/** Marker the problem formatter looks for to name the known keys of an object. */
export const KNOWN_KEYS_PREFIX = 'expected one of: ';

/**
 * A strict object: unknown keys are problems, and the problem names the keys that are allowed.
 *
 * @example strict({ status: z.int() }).safeParse({ stauts: 503 }) // unknown key "stauts"; expected one of: status
 */
export function strict<T extends z.ZodRawShape>(shape: T): z.ZodObject<T, z.core.$strict> {
  const known = Object.keys(shape);
  const message = known.length === 0 ? 'this fault takes no options' : KNOWN_KEYS_PREFIX + known.join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? message : undefined) });
}

export interface DurationBounds {
  /** Smallest allowed value in ms (inclusive); default 0. */
  min?: number;
  /** Largest allowed value in ms (inclusive); default 24 h. */
  max?: number;
}

const DAY_MS = 24 * 3_600_000;

/**
 * A duration option: `250ms`, `2s`, `1m` or a number of ms; parses to milliseconds.
 *
 * @example duration().parse('1.5s') === 1500
 */
export function duration(bounds: DurationBounds = {}) {
  const min = bounds.min ?? 0;
  const max = bounds.max ?? DAY_MS;
  // A missing duration (a phase without one) is "required", not a badly written one.
  const error = (iss: { input?: unknown }): string => (iss.input === undefined ? `required: ${DURATION_HINT.replace(/^must be /, '')}` : DURATION_HINT);
  return z.union([z.number(), z.string()], { error }).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.issues.push({ code: 'custom', message: DURATION_HINT, input: v });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.issues.push({ code: 'custom', message: `must be between ${min}ms and ${max}ms`, input: v });
      return z.NEVER;
    }
    return ms;
  });
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
const HTTP_DATE_RE = new RegExp(`^(${DAYS.join('|')}), (\\d{2}) (${MONTHS.join('|')}) (\\d{4}) (\\d{2}):(\\d{2}):(\\d{2}) GMT$`);

/**
 * Why text written like an HTTP-date (IMF-fixdate, RFC 9110 §5.6.7) is not one: null when it is
 * one, undefined when it is not even written like one. `Date.parse` is no judge: it ignores the
 * weekday and rolls 31 Feb over into March, where a client's parser may refuse the header.
 *
 * @example httpDateProblem('Mon, 21 Oct 2026 07:28:00 GMT') === '21 Oct 2026 is a Wednesday (Wed, 21 Oct 2026 07:28:00 GMT)'
 */
export function httpDateProblem(v: string): string | null | undefined {
  const m = HTTP_DATE_RE.exec(v.trim());
  if (m === null) return undefined;
  const [, weekday, dd, mon, yyyy, hh, mi, ss] = m as unknown as [string, string, string, string, string, string, string, string];
  if (Number(hh) > 23 || Number(mi) > 59 || Number(ss) > 59) return `${hh}:${mi}:${ss} is not a time of day (00:00:00 to 23:59:59)`;
  const month = MONTHS.indexOf(mon as (typeof MONTHS)[number]);
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(Number(yyyy), month, Number(dd));
  if (d.getUTCDate() !== Number(dd) || d.getUTCMonth() !== month) return `${mon} ${yyyy} has no day ${dd}`;
  const day = d.getUTCDay();
  if (DAYS[day] !== weekday) return `${dd} ${mon} ${yyyy} is a ${DAY_NAMES[day]} (${DAYS[day]}, ${dd} ${mon} ${yyyy} ${hh}:${mi}:${ss} GMT)`;
  return null;
}

/**
 * Is this an HTTP-date (IMF-fixdate, as Retry-After carries one): written as one, a day that
 * exists, and the weekday that day's?
 *
 * @example isHttpDate('Wed, 21 Oct 2026 07:28:00 GMT') === true; isHttpDate('Mon, 21 Oct 2026 07:28:00 GMT') === false
 */
export function isHttpDate(v: string): boolean {
  return httpDateProblem(v) === null;
}

/**
 * `retryAfter`: seconds or an HTTP-date, as the Retry-After header counts. A bare number (or a
 * numeric string) is seconds; a duration with a unit (`2s`, `1500ms`) is sent as delta-seconds,
 * rounded up; an HTTP-date is sent as written. Parses to the header value.
 *
 * @example retryAfter().parse(120) === '120'; retryAfter().parse('1500ms') === '2'
 */
export function retryAfter() {
  const hint = 'must be seconds (2), a duration like 2s or 1500ms (sent as whole seconds, rounded up) or an HTTP-date like "Wed, 21 Oct 2026 07:28:00 GMT"';
  return z.union([z.number(), z.string()], { error: hint }).transform((v, ctx) => {
    if (typeof v === 'string') {
      const problem = httpDateProblem(v);
      if (problem === null) return v.trim();
      if (problem !== undefined) {
        ctx.issues.push({ code: 'custom', message: `${JSON.stringify(v)} is not an HTTP-date: ${problem}`, input: v });
        return z.NEVER;
      }
    }
    // A bare number counts seconds, as the header does; only a unit makes it a duration.
    const ms = parseSecondsOrDuration(v);
    if (ms === null || ms > DAY_MS) {
      ctx.issues.push({ code: 'custom', message: hint, input: v });
      return z.NEVER;
    }
    return String(Math.ceil(ms / 1000));
  });
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

const FRAMING = 'frames the response: the proxy sets it from the body, and a second one would make the answer malformed (a client reads garbage, and so does the next request on the connection); leave it out';
const HOP_BY_HOP = 'is a hop-by-hop header (RFC 9110 §7.6.1): the proxy manages the connection, an injected answer does not; leave it out';

/**
 * Why an injected answer cannot carry this header (lower-case name), or undefined. The headers that
 * frame the message or belong to one connection are the proxy's to write: set by a profile, they
 * came out next to the proxy's own (a Content-Length and chunked encoding in one response).
 */
const REFUSED_HEADERS: ReadonlyMap<string, string> = new Map([
  ['content-length', FRAMING],
  ['transfer-encoding', FRAMING],
  ['connection', HOP_BY_HOP],
  ['keep-alive', HOP_BY_HOP],
  ['proxy-connection', HOP_BY_HOP],
  ['te', HOP_BY_HOP],
  ['upgrade', HOP_BY_HOP],
  ['trailer', 'announces trailer fields, and an injected answer has none (its body has a fixed length); leave it out'],
  ['host', 'is a request header; it has no meaning in a response'],
]);

/**
 * Header names ignore case: one given twice in a map (`X-Env` and `x-env`) is refused at the
 * second, since only one of the two could ever act (a matcher that wants both never matches; an
 * answer sends only the last).
 */
export function refuseCaseTwins(rec: Readonly<Record<string, unknown>>, ctx: { addIssue(issue: { code: 'custom'; message: string; path: PropertyKey[]; input: unknown }): void }): void {
  const seen = new Map<string, string>();
  for (const name of Object.keys(rec)) {
    const lower = name.toLowerCase();
    const first = seen.get(lower);
    if (first !== undefined) ctx.addIssue({ code: 'custom', message: `is ${first} again (header names ignore case): give it once`, path: [name], input: rec[name] });
    else seen.set(lower, name);
  }
}

/**
 * A map of response header name -> value; names are lower-cased. The headers that frame the
 * message or belong to the connection (Content-Length, Transfer-Encoding, Connection, Upgrade, ...)
 * are refused: the proxy writes those.
 *
 * @example headerMap().safeParse({ 'Content-Length': 3 }).success === false
 */
export function headerMap() {
  return z
    .record(
      z.string().regex(TOKEN_RE, 'must be a header name (letters, digits and !#$%&\'*+.^_`|~-)'),
      z.union([z.string().regex(HEADER_VALUE_RE, 'must be a header value without line breaks'), z.number()], {
        error: 'must be a string or a number',
      }),
    )
    .superRefine((rec, ctx) => {
      refuseCaseTwins(rec, ctx);
      for (const name of Object.keys(rec)) {
        const why = REFUSED_HEADERS.get(name.toLowerCase());
        if (why !== undefined) ctx.addIssue({ code: 'custom', message: `${name} ${why}`, path: [name], input: rec[name] });
      }
    })
    .transform((rec) => {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(rec)) out[k.toLowerCase()] = String(v);
      return out;
    });
}

/** A response body: a string sent as is, or an object sent as JSON. */
export function body() {
  return z.union([z.string().max(1024 * 1024, 'must be at most 1 MiB'), z.record(z.string(), z.unknown())], {
    error: 'must be a string or an object (sent as JSON)',
  });
}

/** An HTTP status for an injected answer. */
export function status(def: number) {
  return z.int('must be an integer 200-599').min(200, 'must be 200-599').max(599, 'must be 200-599').default(def);
}

/** A fraction in [0, 1]. */
export function fraction(what = 'a number from 0 to 1') {
  return z.number(`must be ${what}`).min(0, `must be ${what}`).max(1, `must be ${what}`);
}

/**
 * The options of an injected answer (`http-error`, `ws-reject`): a status, headers, a body and a
 * Retry-After given once (`retryAfter` writes the header; the same header in `headers` too would
 * leave one of the two silently unused).
 */
export function answerOptions(defaultStatus: number) {
  return strict({
    status: status(defaultStatus),
    headers: headerMap().optional(),
    body: body().optional(),
    retryAfter: retryAfter().optional(),
  }).superRefine((o, ctx) => {
    if (o.retryAfter !== undefined && o.headers?.['retry-after'] !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'Retry-After is given twice, here and in headers: give it once, with retryAfter', path: ['retryAfter'], input: o.retryAfter });
    }
  });
}
