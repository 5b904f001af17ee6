/**
 * Matchers run on what clients send, so no pattern in a profile may take more than linear time on
 * a crafted header or path. V8 can run a regex without backtracking (its experimental linear-time
 * engine) for the regexes that need no backtracking feature (lookaround, backreferences), and can
 * switch to it for one match once the backtracking engine has backtracked too long. Both are
 * turned on here, once, for the process: a match that would have backtracked for minutes ends in
 * milliseconds with the same answer, and every other match runs on the fast engine as before.
 *
 * Patterns that the linear engine cannot run (a lookaround, a backreference) are refused at load
 * (`linearProblem`), as Envoy's `safe_regex` (RE2) refuses them. Path globs are compiled here into
 * such regexes (`globRegExp`): picomatch's own regexes rely on lookaheads for `.` segments, which
 * left a glob like `/**\/a/**\/a/**\/b` backtracking for seconds on one long path.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--enable-experimental-regexp-engine');
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

/** Whether this V8 has the linear-time engine (the `l` flag compiles). */
export const LINEAR_ENGINE: boolean = (() => {
  try {
    new RegExp('a', 'l');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Why a regex cannot run in linear time, or null (also null when this V8 has no linear engine:
 * the nested-repetition check of the profile schema is then the only guard).
 *
 * @example linearProblem('^okhttp/') === null; linearProblem('(?<=a)b') !== null
 */
export function linearProblem(source: string): string | null {
  if (!LINEAR_ENGINE) return null;
  try {
    new RegExp(source, 'l');
    return null;
  } catch {
    return 'uses a lookaround ((?=, (?!, (?<=, (?<!) or a backreference (\\1, \\k<name>), which cannot run in linear time: a client could stall the proxy with one request; rewrite it without them';
  }
}

/** Brace expansions a glob may produce (`{a,b}/{c,d}` is 4). */
export const MAX_GLOB_EXPANSIONS = 256;

/**
 * The regex of a path glob, matched against the path without its leading `/` (a relative path,
 * so a leading `**` spans zero segments too): `*` is any run of characters but `/` (a segment
 * that is only `*` is not empty), `**` as a whole segment is any number of segments (zero
 * included), `[...]` one character of a class (never `/`; `[!...]` negates), `{a,b}` either
 * alternative (nested too), a trailing `/` is optional, and every other character is itself.
 * The regex has no lookaround and no backreference, so V8 runs it in linear time when it has to.
 * Throws on more than MAX_GLOB_EXPANSIONS brace expansions or an unclosed `[`.
 *
 * @example globRegExp('v1/*\/items').test('v1/42/items/') === true
 */
export function globRegExp(relGlob: string): RegExp {
  const alts = expandBraces(relGlob);
  return new RegExp(`^(?:${alts.map(globSource).join('|')})$`);
}

/** `a{b,c{d,e}}` → `ab`, `acd`, `ace`; a `{` without a comma at its level stays as text. */
function expandBraces(glob: string): string[] {
  const open = findBrace(glob);
  if (open === null) return [glob];
  const [start, end, parts] = open;
  const head = glob.slice(0, start);
  const tails = expandBraces(glob.slice(end + 1));
  const out: string[] = [];
  for (const part of parts) {
    for (const mid of expandBraces(part)) {
      for (const tail of tails) {
        out.push(head + mid + tail);
        if (out.length > MAX_GLOB_EXPANSIONS) throw new Error(`expands to more than ${MAX_GLOB_EXPANSIONS} paths ({a,b} lists multiply)`);
      }
    }
  }
  return out;
}

/** The first `{...}` with a top-level comma: its bounds and its alternatives; null when none. */
function findBrace(glob: string): [number, number, string[]] | null {
  for (let i = 0; i < glob.length; i++) {
    if (glob[i] === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close !== -1) i = close;
      continue;
    }
    if (glob[i] !== '{') continue;
    let depth = 0;
    const cuts: number[] = [];
    for (let j = i; j < glob.length; j++) {
      const c = glob[j];
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          if (cuts.length === 0) break; // `{x}`: text
          const parts: string[] = [];
          let from = i + 1;
          for (const k of cuts) {
            parts.push(glob.slice(from, k));
            from = k + 1;
          }
          parts.push(glob.slice(from, j));
          return [i, j, parts];
        }
      } else if (c === ',' && depth === 1) cuts.push(j);
    }
  }
  return null;
}

const SPECIAL = /[.+^${}()|\\]/g;

/** One brace-free glob as a regex source. */
function globSource(glob: string): string {
  // `**/**` is `**`.
  const segs = glob.split('/').filter((s, i, all) => !(s === '**' && all[i - 1] === '**'));
  let out = '';
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const last = i === segs.length - 1;
    if (seg === '**') {
      if (segs.length === 1) return '.*';
      // Leading: any segments before the next one. Middle and trailing: `/` and any segments, or none.
      out += i === 0 ? '(?:.*/)?' : last ? '(?:/.*)?' : '(?:/.*)?/';
      continue;
    }
    out += segmentSource(seg);
    if (!last && segs[i + 1] !== '**') out += '/';
  }
  // A trailing slash matches too (`/v1/items/*` matches `/v1/items/42/`).
  return segs[segs.length - 1] === '**' ? out : `${out}/?`;
}

/** One segment: literals, `*` runs and `[...]` classes. */
function segmentSource(seg: string): string {
  if (seg !== '' && /^\*+$/.test(seg)) return '[^/]+';
  let out = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i] as string;
    if (c === '*') {
      while (seg[i + 1] === '*') i++;
      out += '[^/]*';
    } else if (c === '[') {
      const close = seg.indexOf(']', i + 2);
      if (close === -1) throw new Error('has an unclosed [');
      let body = seg.slice(i + 1, close);
      const negated = body[0] === '!' || body[0] === '^';
      if (negated) body = body.slice(1);
      // Inside a class only `\`, `]` and `^` are special (no `/` can be in a segment).
      body = body.replace(/[\\\]^]/g, '\\$&');
      out += negated ? `[^/${body}]` : `[${body}]`;
      i = close;
    } else if (c === '?') out += '\\?';
    else out += c.replace(SPECIAL, '\\$&');
  }
  return out;
}
