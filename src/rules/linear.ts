/**
 * Matchers run on what clients send, so no pattern in a profile may take more than linear time on
 * a crafted header or path. V8 can run a regex without backtracking (its experimental linear-time
 * engine) for the regexes that need no backtracking feature (lookaround, backreferences), and can
 * switch to it for one match once the backtracking engine has backtracked too long. Both are
 * turned on here, once, for the process: a match that would have backtracked for minutes or hours
 * ends with the same answer in a time bounded by the pattern's size times the input's length
 * (hence the size limits below), and every other match runs on the fast engine as before.
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
 * @example linearProblem('^[0-9a-f]{32}$') === null; linearProblem('(?<=a)b') !== null
 */
export function linearProblem(source: string): string | null {
  if (!LINEAR_ENGINE) return null;
  // The constructs the engine has no linear form of, judged on the regex as written (its counts
  // read as `*`: they are rewritten below, and must not hide a backreference).
  try {
    new RegExp(source.replace(/\{\d+(,\d*)?\}/g, '*'), 'l');
  } catch {
    return 'uses a lookaround ((?=, (?!, (?<=, (?<!) or a backreference (\\1, \\k<name>), which cannot run in linear time: a client could stall the proxy with one request; rewrite it without them';
  }
  let form: string;
  try {
    form = linearForm(source);
  } catch (err) {
    return (err as Error).message;
  }
  try {
    new RegExp(form, 'l');
    return null;
  } catch {
    return 'cannot run in linear time (V8 takes no linear form of it): a client could stall the proxy with one request; write it with fewer or simpler repetitions';
  }
}

/**
 * The most characters a regex may grow to once its counted repeats are written out. A runaway
 * match finishes on the linear-time engine, whose cost is the regex's size times the input's
 * length: at this size, up to about a second on a 16 KB header (`.{0,64}x` five times: 0.8 s; it
 * was seconds at 16,384).
 */
export const MAX_LINEAR_FORM = 2048;
/**
 * The widest range of counts (`{n,m}`, m - n) written out: each optional copy is a place the
 * backtracking engine may come back to, and the linear engine's cost grows with the regex's size
 * (`.{0,1000}curl` took 1.5 s on a 12 KB header, `.{0,64}curl` 0.5 ms).
 */
export const MAX_OPTIONAL_COPIES = 64;

/**
 * The same regex with every counted repeat written out, so that V8's linear-time engine can run it
 * (it takes no count above about 15 in one quantifier, and none multiplied by an outer count):
 * `X{3}` → `(?:X)(?:X)(?:X)`, `X{2,4}` → `(?:X)(?:X)(?:X(?:X)?)?`, `X{2,}` → `(?:X)(?:X)(?:X)*`,
 * `X{0}` → `(?:)`; each copy in a group of its own, so that none merges with its neighbour. The
 * optional copies nest, so there is one way to match and the backtracking engine does no more
 * work than for `X{2,4}`.
 * Named and capturing groups become non-capturing (no backreference passes `linearProblem`, and
 * only `test` is asked). It matches exactly what the original matches. Throws when it would grow
 * past MAX_LINEAR_FORM characters (a count in the thousands).
 *
 * @example linearForm('^\\d{2}-\\d{1,2}$') === '^(?:\\d)(?:\\d)-(?:\\d)(?:\\d)?$'
 */
export function linearForm(src: string): string {
  if (!/\{\d|\(\?</.test(src)) return src;
  let out = '';
  /** Where in `out` the atom a quantifier would apply to begins (-1: none). */
  let atom = -1;
  const groups: number[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (c === '\\' && src[i + 1] === 'c' && !/[A-Za-z]/.test(src[i + 2] ?? '')) {
      // `\c` without a letter is a backslash, then `c` (Annex B): a quantifier after it repeats the `c`.
      atom = out.length;
      out += '\\\\';
      i++;
    } else if (c === '\\') {
      // With no backreference (checked first), a digit escape is an octal one as JavaScript reads it.
      const esc = /^\\(?:u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|c[A-Za-z]|[0-3][0-7]{0,2}|[4-7][0-7]?|[^])/.exec(src.slice(i, i + 6));
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
      const named = /^\(\?<(?![=!])[^>]*>/.exec(src.slice(i));
      if (named !== null) {
        out += '(?:';
        i += named[0].length;
      } else if (src[i + 1] === '?') {
        // (?: (?= (?! (?<= (?<!: copied with their marker.
        const marker = /^\(\?(?:<[=!]|[:=!])/.exec(src.slice(i, i + 4));
        const len = marker === null ? 1 : marker[0].length;
        out += src.slice(i, i + len);
        i += len;
      } else {
        out += '(?:';
        i++;
      }
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
      const a = out.slice(atom);
      const copies = Number.isFinite(max) ? max : min + 1;
      if (Number.isFinite(max) && max - min > MAX_OPTIONAL_COPIES) {
        throw new Error(`repeats ${a.length > 40 ? 'a group' : JSON.stringify(a)} ${q[0]}: a range of more than ${MAX_OPTIONAL_COPIES} counts cannot be matched in bounded time here; use * or + (.{0,1000}curl as .*curl), or a narrower range`);
      }
      if (atom + copies * (a.length + 4) > MAX_LINEAR_FORM) {
        throw new Error(`repeats ${a.length > 40 ? 'a group' : JSON.stringify(a)} ${q[0]}: written out for the linear-time engine it would be more than ${MAX_LINEAR_FORM} characters; use * or + or a smaller count`);
      }
      out = out.slice(0, atom) + writeOut(a, min, max);
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
    } else if (c === '|') {
      atom = -1;
      out += c;
      i++;
    } else {
      atom = c === '^' || c === '$' ? -1 : out.length;
      out += c;
      i++;
    }
  }
  if (out.length > MAX_LINEAR_FORM && out !== src) {
    throw new Error(`has counted repeats that, written out for the linear-time engine, are more than ${MAX_LINEAR_FORM} characters (a runaway match costs the regex's size times the header's length); use * or + or smaller counts`);
  }
  return out;
}

/** `a` `min` times, then up to `max - min` more as nested optionals (or `a*` when unbounded). */
function writeOut(a: string, min: number, max: number): string {
  // Each copy in a group of its own, so that no copy merges with its neighbour (`\x4{2}` is `x44`,
  // not the `\x44` that `D` is); `X{0}` matches the empty string.
  const one = a.startsWith('(') ? a : `(?:${a})`;
  let out = min === 0 && max === 0 ? '(?:)' : one.repeat(min);
  if (max === Number.POSITIVE_INFINITY) return `${out}${one}*`;
  let tail = '';
  for (let k = 0; k < max - min; k++) tail = `(?:${a}${tail})?`;
  return out + tail;
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
  const sources = alts.map(globSource);
  const source = `^(?:${sources.join('|')})$`;
  // A runaway match costs the regex's size times the path's length on the linear-time engine:
  // bounded where a wildcard can make one backtrack (not a plain list, not a final `/**`).
  const wild = alts.some((g) => g.replace(/\/\*\*$/, '').includes('*'));
  const cap = wild ? MAX_GLOB_CHARS : MAX_GLOB_LIST_CHARS;
  if (source.length > cap) {
    throw new Error(
      `compiles to a ${source.length}-character pattern, more than ${cap}${wild ? ' for a glob with wildcards (a runaway match costs the pattern\'s size times the path\'s length)' : ''}: {a,b} lists and ranges multiply; split it into several globs`,
    );
  }
  return new RegExp(source);
}

/**
 * The longest pattern a glob may compile to when a wildcard could make a match backtrack (a `*`
 * anywhere but a final `/**`): a runaway match then finishes on the linear-time engine, whose cost
 * is the pattern's size times the path's length (up to about a second at this size on a
 * 16 KB path). Lists of plain paths may compile to MAX_GLOB_LIST_CHARS.
 */
export const MAX_GLOB_CHARS = 1024;
/** The longest pattern of a glob without such a wildcard (`/v1/{a,b,c}/x`, `/c/{001..200}/**`). */
export const MAX_GLOB_LIST_CHARS = 16_384;

/**
 * `a{b,c{d,e}}` → `ab`, `acd`, `ace`; `{1..3}` → `1`, `2`, `3` (also `{01..10}`, `{a..e}`,
 * `{0..10..5}`, as bash and picomatch expand them); a `{` without a comma or range at its level
 * stays as text.
 */
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
  const m = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/.exec(body) ?? /^([a-z])\.\.([a-z])(?:\.\.(-?\d+))?$/.exec(body) ?? /^([A-Z])\.\.([A-Z])(?:\.\.(-?\d+))?$/.exec(body);
  if (m === null) {
    if (/^[A-Za-z]\.\.[A-Za-z](\.\.-?\d+)?$/.test(body)) throw new Error(`has the letter range {${body}}, which mixes cases (it would run through [ \\ ] ^ _ \`): write {{a..z},{A..Z}} or list the letters`);
    return null;
  }
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
