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
 * the nested-repetition check of the profile schema is then the only guard). Counted repeats are
 * judged in their `linearForm` (the engine refuses a count above 16 as written).
 *
 * @example linearProblem('^[0-9a-f]{32}$') === null; linearProblem('(?<=a)b') !== null
 */
export function linearProblem(source: string): string | null {
  if (!LINEAR_ENGINE) return null;
  try {
    new RegExp(linearForm(source), 'l');
    return null;
  } catch {
    return 'uses a lookaround ((?=, (?!, (?<=, (?<!) or a backreference (\\1, \\k<name>), which cannot run in linear time: a client could stall the proxy with one request; rewrite it without them';
  }
}

/** The largest count V8's linear engine takes in one quantifier. */
const MAX_LINEAR_COUNT = 15;

/**
 * The same regex with every counted repeat above what V8's linear engine takes in one quantifier
 * split into quantifiers it takes: `X{32}` → `X{15}X{15}X{2}`, `X{20,}` → `X{15}X{5}X*`,
 * `X{0,64}` → `X{0,15}X{0,15}X{0,15}X{0,15}X{0,4}`. It matches exactly what the original matches
 * (a repeated capturing group is repeated as a non-capturing one: only `test` is ever asked);
 * lazy repeats become greedy (the same strings match). What it cannot parse it returns as is.
 *
 * @example linearForm('^[0-9a-f]{32}$') === '^[0-9a-f]{15}[0-9a-f]{15}[0-9a-f]{2}$'
 */
export function linearForm(src: string): string {
  if (!/\{\d/.test(src)) return src;
  let out = '';
  /** Where in `out` the atom a quantifier would apply to begins (-1: none). */
  let atom = -1;
  const groups: number[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === '\\') {
      const esc = /^\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|c[A-Za-z]|k<[^>]*>|\d+|[^])/.exec(src.slice(i));
      const len = esc === null ? 1 : esc[0].length;
      atom = out.length;
      out += src.slice(i, i + len);
      i += len;
    } else if (c === '[') {
      let j = i + 1;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      atom = out.length;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (c === '(') {
      groups.push(out.length);
      atom = -1;
      out += c;
      i++;
    } else if (c === ')') {
      atom = groups.pop() ?? -1;
      out += c;
      i++;
    } else if (c === '{') {
      const q = /^\{(\d+)(,(\d*))?\}\??/.exec(src.slice(i));
      if (q === null || atom === -1) {
        atom = out.length;
        out += c;
        i++;
        continue;
      }
      const min = Number(q[1]);
      const max = q[2] === undefined ? min : q[3] === '' ? Number.POSITIVE_INFINITY : Number(q[3]);
      if (min <= MAX_LINEAR_COUNT && (max === Number.POSITIVE_INFINITY ? min < MAX_LINEAR_COUNT : max <= MAX_LINEAR_COUNT)) {
        out += q[0];
      } else {
        const a = out.slice(atom);
        out = out.slice(0, atom) + splitCount(repeatable(a), min, max);
      }
      atom = -1;
      i += q[0].length;
    } else if (c === '*' || c === '+' || c === '?') {
      out += c;
      if (src[i + 1] === '?') {
        out += '?';
        i++;
      }
      atom = -1;
      i++;
    } else if (c === '|' || c === '^' || c === '$') {
      atom = -1;
      out += c;
      i++;
    } else {
      atom = out.length;
      out += c;
      i++;
    }
  }
  return out;
}

/** An atom that may be written several times: a capturing or named group as a non-capturing one. */
function repeatable(a: string): string {
  if (a.startsWith('(?<') && !a.startsWith('(?<=') && !a.startsWith('(?<!')) return `(?:${a.slice(a.indexOf('>') + 1)}`;
  if (a.startsWith('(') && !a.startsWith('(?')) return `(?:${a.slice(1)}`;
  return a;
}

function splitCount(a: string, min: number, max: number): string {
  let out = '';
  let need = min;
  while (need > MAX_LINEAR_COUNT) {
    out += `${a}{${MAX_LINEAR_COUNT}}`;
    need -= MAX_LINEAR_COUNT;
  }
  if (need > 0) out += `${a}{${need}}`;
  if (max === Number.POSITIVE_INFINITY) return `${out}${a}*`;
  let optional = max - min;
  while (optional > MAX_LINEAR_COUNT) {
    out += `${a}{0,${MAX_LINEAR_COUNT}}`;
    optional -= MAX_LINEAR_COUNT;
  }
  if (optional > 0) out += `${a}{0,${optional}}`;
  return out;
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

/** All the expansions of a glob together may hold at most this many characters (the regex's size bounds a match's cost). */
export const MAX_GLOB_CHARS = 4096;

/**
 * `a{b,c{d,e}}` → `ab`, `acd`, `ace`; `{1..3}` → `1`, `2`, `3` (also `{01..10}`, `{a..e}`,
 * `{0..10..5}`, as bash and picomatch expand them); a `{` without a comma or range at its level
 * stays as text.
 */
function expandBraces(glob: string): string[] {
  const out = expandBracesRaw(glob);
  let chars = 0;
  for (const g of out) chars += g.length;
  if (chars > MAX_GLOB_CHARS) throw new Error(`expands to ${chars} characters of paths, more than ${MAX_GLOB_CHARS} ({a,b} lists and ranges multiply)`);
  return out;
}

function expandBracesRaw(glob: string): string[] {
  const open = findBrace(glob);
  if (open === null) return [glob];
  const [start, end, parts] = open;
  const head = glob.slice(0, start);
  const tails = expandBracesRaw(glob.slice(end + 1));
  const out: string[] = [];
  for (const part of parts) {
    for (const mid of expandBracesRaw(part)) {
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
      if (c === '[') {
        // A class's commas are its own (`{a,[,b]}` has two alternatives).
        const close = glob.indexOf(']', j + 2);
        if (close !== -1) j = close;
        continue;
      }
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          if (cuts.length === 0) {
            const range = braceRange(glob.slice(i + 1, j));
            if (range !== null) return [i, j, range];
            break; // `{x}`: text
          }
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

/**
 * The values of a range inside braces (`1..3`, `01..10`, `a..e`, `10..0..5`), or null when the
 * text is no range. Numbers keep the width of a zero-padded bound, as bash does.
 */
function braceRange(body: string): string[] | null {
  const m = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(body) ?? /^([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?$/.exec(body);
  if (m === null) return null;
  const numeric = /\d/.test(m[1] as string);
  const from = numeric ? Number(m[1]) : (m[1] as string).charCodeAt(0);
  const to = numeric ? Number(m[2]) : (m[2] as string).charCodeAt(0);
  const step = Math.abs(Number(m[3] ?? '1')) || 1;
  const count = Math.floor(Math.abs(to - from) / step) + 1;
  if (count > MAX_GLOB_EXPANSIONS) throw new Error(`expands to more than ${MAX_GLOB_EXPANSIONS} paths ({a,b} lists multiply)`);
  const pad = numeric && (/^-?0\d/.test(m[1] as string) || /^-?0\d/.test(m[2] as string)) ? Math.max((m[1] as string).replace('-', '').length, (m[2] as string).replace('-', '').length) : 0;
  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const v = from + (to >= from ? 1 : -1) * k * step;
    out.push(numeric ? (v < 0 ? '-' + String(-v).padStart(pad, '0') : String(v).padStart(pad, '0')) : String.fromCharCode(v));
  }
  return out;
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
