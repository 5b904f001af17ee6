/**
 * Compiled matchers: `match:` turned, once at load, into plain data and precompiled regexes and
 * globs, tested on the hot path without allocating (the query string is parsed at most once per
 * request, and only when a rule asks about it).
 *
 *   method ─▶ websocket ─▶ clients ─▶ path ─▶ headers ─▶ query ─▶ cohort      (cheapest first)
 */
import type { RequestFacts } from '../faults/types.js';
import { cohortPoint, hash32 } from './hash.js';
import { globRegExp, linearForm } from './linear.js';
import type { MatchConfig, StatusRange, ValueMatch } from './schema.js';

/** A compiled value test for one header or query key. */
export interface ValueTest {
  readonly key: string;
  readonly kind: 'exact' | 'regex' | 'present';
  readonly value: string;
  readonly regex: RegExp | null;
  readonly present: boolean;
}

export interface CompiledMatch {
  /** Upper-case methods, or null for any. */
  readonly methods: readonly string[] | null;
  /** Path test, or null for any path. */
  readonly path: PathTest | null;
  readonly headers: readonly ValueTest[] | null;
  readonly query: readonly ValueTest[] | null;
  readonly clients: ReadonlySet<string> | null;
  /** True: WebSocket upgrades only; false: plain HTTP only. */
  readonly websocket: boolean;
  readonly cohort: number | null;
  readonly cohortSalt: number;
  /** Upstream status ranges for response-stage faults, or null for any. */
  readonly status: readonly StatusRange[] | null;
}

/** Per-request scratch the matchers share: the query, parsed once on first use. */
export class MatchScratch {
  private raw: string | null = null;
  private parsed: Map<string, string[]> | null = null;
  private path: string | null = null;
  private rel: string | null = null;

  reset(query: string | null): void {
    this.raw = query;
    this.parsed = null;
    this.path = null;
    this.rel = null;
  }

  /** The path without its leading "/", sliced once per request. */
  relative(path: string): string {
    if (this.path !== path || this.rel === null) {
      this.path = path;
      this.rel = path.slice(1);
    }
    return this.rel;
  }

  /** Values of a query key (decoded), or undefined when absent. */
  get(key: string): readonly string[] | undefined {
    if (this.raw === null || this.raw === '') return undefined;
    this.parsed ??= parseQuery(this.raw);
    return this.parsed.get(key);
  }
}

/** Parses `a=1&b=2&a=3` into key -> values, decoding `%xx` and `+`; malformed escapes kept as written. */
export function parseQuery(raw: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = decode(eq === -1 ? part : part.slice(0, eq));
    const v = eq === -1 ? '' : decode(part.slice(eq + 1));
    const list = out.get(k);
    if (list === undefined) out.set(k, [v]);
    else list.push(v);
  }
  return out;
}

function decode(s: string): string {
  const t = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!t.includes('%')) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

const ANY_PATH = new Set(['/**', '/**/*']);

/** A compiled path test; `relative` is the path without its leading "/" when the caller has it. */
export type PathTest = (path: string, relative?: string) => boolean;

/**
 * Compiles path globs into one test. `/**` matches everything without a glob engine; globs without
 * glob characters are string comparisons; the rest are regexes that run in linear time on any path
 * (`globRegExp`).
 *
 * @example compilePaths(['/v1/messages/**'])('/v1/messages/42') === true
 */
export function compilePaths(globs: readonly string[]): PathTest | null {
  if (globs.some((g) => ANY_PATH.has(g))) return null;
  const exact = new Set<string>();
  const patterns: Array<(p: string) => boolean> = [];
  for (const g of globs) {
    if (!/[*[\]{}]/.test(g)) {
      exact.add(g);
      // As every glob does, the path with a trailing slash too (`/v1/messages/`).
      if (!g.endsWith('/')) exact.add(g + '/');
      continue;
    }
    // Matched without the leading "/", so a leading "**" spans zero segments too.
    patterns.push(globTest(g.slice(1)));
  }
  const test = (p: string, relative?: string): boolean => {
    if (exact.has(p)) return true;
    if (p.charCodeAt(0) !== 47 /* '/' */) return false;
    const rel = relative ?? p.slice(1);
    for (let i = 0; i < patterns.length; i++) if ((patterns[i] as (p: string) => boolean)(rel)) return true;
    return false;
  };
  if (patterns.length === 0) return (p) => exact.has(p);
  return test;
}

/**
 * One relative glob as a test: its literal head (`v1/messages/` of `v1/messages/**`) is compared
 * with `startsWith` first, so the paths a rule is not about — most of them, in a profile of many
 * targeted rules — never reach the regex.
 */
function globTest(rel: string): (p: string) => boolean {
  const re = globRegExp(rel);
  const special = rel.search(/[*[\]{}]/);
  // Without its last "/": a trailing "/**" matches its base too (`v1/messages` for `v1/messages/**`).
  const head = special === -1 ? rel : rel.slice(0, special).replace(/\/$/, '');
  if (head === '') return (p) => re.test(p);
  return (p) => p.startsWith(head) && re.test(p);
}

function compileValues(map: Readonly<Record<string, ValueMatch>> | undefined, lowerKeys: boolean): ValueTest[] | null {
  if (map === undefined) return null;
  const out: ValueTest[] = [];
  for (const [k, m] of Object.entries(map)) {
    out.push(
      Object.freeze({
        key: lowerKeys ? k.toLowerCase() : k,
        kind: m.kind,
        value: m.kind === 'exact' ? m.value : '',
        // In the form V8's linear-time engine can take over when a match backtracks too long.
        regex: m.kind === 'regex' ? new RegExp(linearForm(m.source)) : null,
        present: m.kind === 'present' ? m.present : true,
      }),
    );
  }
  return out.length === 0 ? null : out;
}

/** Compiles a validated `match:`. `websocket` defaults to the fault's stage. */
export function compileMatch(m: MatchConfig, opts: { websocketStage: boolean; salt: string }): CompiledMatch {
  return Object.freeze({
    methods: m.method === undefined ? null : Object.freeze([...new Set(m.method.map((x) => x.toUpperCase()))]),
    path: m.path === undefined ? null : compilePaths(m.path),
    headers: compileValues(m.headers, true),
    query: compileValues(m.query, false),
    clients: m.clients === undefined ? null : new Set(m.clients),
    websocket: m.websocket ?? opts.websocketStage,
    cohort: m.cohort === undefined || m.cohort >= 1 ? null : m.cohort,
    cohortSalt: hash32(opts.salt),
    status: m.status === undefined ? null : Object.freeze(m.status),
  });
}

function testValue(t: ValueTest, v: string | undefined): boolean {
  if (t.kind === 'present') return (v !== undefined) === t.present;
  if (v === undefined) return false;
  if (t.kind === 'exact') return v === t.value;
  return (t.regex as RegExp).test(v);
}

/**
 * Does a request match? Pure; no allocation unless a header arrives as a list or the query is
 * consulted for the first time in this request.
 */
export function matches(m: CompiledMatch, facts: RequestFacts, scratch: MatchScratch): boolean {
  if (m.websocket !== facts.websocket) return false;
  if (m.methods !== null) {
    const methods = m.methods;
    let ok = false;
    for (let i = 0; i < methods.length; i++) {
      if (methods[i] === facts.method) {
        ok = true;
        break;
      }
    }
    if (!ok) return false;
  }
  if (m.clients !== null && !m.clients.has(facts.clientKey)) return false;
  if (m.path !== null && !m.path(facts.path, scratch.relative(facts.path))) return false;
  if (m.headers !== null) {
    const h = facts.headers;
    for (let i = 0; i < m.headers.length; i++) {
      const t = m.headers[i] as ValueTest;
      const raw = h[t.key];
      if (!testValue(t, raw === undefined ? undefined : typeof raw === 'string' ? raw : raw.join(', '))) return false;
    }
  }
  if (m.query !== null) {
    for (let i = 0; i < m.query.length; i++) {
      const t = m.query[i] as ValueTest;
      const values = scratch.get(t.key);
      if (values === undefined) {
        if (!testValue(t, undefined)) return false;
        continue;
      }
      let ok = false;
      for (let j = 0; j < values.length; j++) {
        if (testValue(t, values[j])) {
          ok = true;
          break;
        }
      }
      if (!ok) return false;
    }
  }
  if (m.cohort !== null && cohortPoint(facts.clientKey, m.cohortSalt) >= m.cohort) return false;
  return true;
}

/** Is an upstream status selected by `match.status`? */
export function statusSelected(ranges: readonly StatusRange[], status: number): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i] as StatusRange;
    if (status >= r[0] && status <= r[1]) return true;
  }
  return false;
}
