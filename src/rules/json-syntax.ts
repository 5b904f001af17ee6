/**
 * Where and why a JSON profile is not JSON, in JSON's words. A `.json` profile is read with JSON's
 * rules: YAML would accept a trailing comma, single quotes or a comment and, for a real mistake,
 * explain it in YAML's terms a line later. `JSON.parse` decides whether the text is JSON; this
 * scanner only runs when it is not, to say where (line, column and the path of the member being
 * read) in the same words on every Node version. It is iterative, so deep nesting cannot overflow
 * the stack.
 */
import type { PathKey } from './problems.js';

/** A JSON syntax error: where it is and what to do about it. */
export interface JsonSyntaxProblem {
  /** Offset of the character where the text stops being JSON (the text's length at its end). */
  readonly offset: number;
  /** The member being read there: `rules[0].fault.type`, `[]` at the top. */
  readonly path: readonly PathKey[];
  /** What is wrong, without the position. */
  readonly head: string;
  /** What to do, or null. */
  readonly tail: string | null;
  /** True when the text ends early (there is no column to show). */
  readonly atEnd: boolean;
}

interface Frame {
  readonly kind: 'map' | 'list';
  /** The member being read (a key or an index), null between members. */
  member: PathKey | null;
  /** Items read so far (a list's next index). */
  count: number;
}

type State = 'value' | 'after-value' | 'key-or-end' | 'key-after-comma' | 'colon' | 'value-or-end' | 'value-after-comma';

const WS = new Set([' ', '\t', '\n', '\r']);
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD_RE = /[A-Za-z_$][\w$]*/y;
const HEX4_RE = /[0-9A-Fa-f]{4}/y;

/**
 * The first syntax error of `text` read as JSON, or null when there is none.
 *
 * @example findJsonSyntaxError('{ "a": 1, }')?.head === 'a trailing comma before "}"'
 */
export function findJsonSyntaxError(text: string): JsonSyntaxProblem | null {
  const stack: Frame[] = [];
  let state = 'value' as State;
  let i = 0;
  let key = '';
  const n = text.length;
  const path = (): PathKey[] => stack.flatMap((f) => (f.member === null ? [] : [f.member]));
  const fail = (head: string, tail: string | null = null): JsonSyntaxProblem => ({ offset: i, path: path(), head, tail, atEnd: i >= n });
  const found = (): string => JSON.stringify(text[i]);
  const endInside = (): JsonSyntaxProblem => {
    const top = stack[stack.length - 1];
    if (top === undefined) return fail('the text ends where a value should start');
    return fail(top.kind === 'map' ? 'the text ends inside a map (an unclosed "{"?)' : 'the text ends inside a list (an unclosed "["?)');
  };
  /** A value ended: its member is done. */
  const valueDone = (): void => {
    const top = stack[stack.length - 1];
    if (top !== undefined) {
      top.member = null;
      top.count++;
    }
    state = 'after-value';
  };
  /** Reads a string starting at the quote; returns its contents, or a problem. */
  const readString = (): string | JsonSyntaxProblem => {
    i++;
    let out = '';
    while (i < n) {
      const c = text[i] as string;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === undefined) break;
        if (e === 'u') {
          HEX4_RE.lastIndex = i + 2;
          if (!HEX4_RE.test(text)) return fail(`a bad escape "\\u${text.slice(i + 2, i + 6)}" in a string`, 'write \\u and four hex digits');
          i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(e)) return fail(`a bad escape "\\${e}" in a string`, 'JSON knows \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX');
        out += e;
        i += 2;
        continue;
      }
      if (c.charCodeAt(0) < 0x20) {
        return c === '\n' || c === '\r' ? fail('a line break inside a string (an unclosed quote?)', 'write a line break as \\n') : fail('a control character inside a string', 'write it as an escape such as \\t');
      }
      out += c;
      i++;
    }
    i = n;
    return fail('the text ends inside a string (a missing closing quote?)');
  };
  /** Problems common to a place where a key or a value should start. */
  const notAStart = (what: 'key' | 'value'): JsonSyntaxProblem => {
    const c = text[i] as string;
    if (c === "'") return fail(`strings and keys are written in double quotes, found ${found()}`);
    if (c === '/' && (text[i + 1] === '/' || text[i + 1] === '*')) return fail('comments are not allowed in JSON');
    WORD_RE.lastIndex = i;
    const word = WORD_RE.exec(text)?.[0];
    if (word !== undefined) {
      return what === 'key' ? fail(`keys are written in double quotes, found ${word}`) : fail(`unexpected ${word}`, 'strings are written in double quotes, and true, false and null are the only bare words');
    }
    return fail(what === 'key' ? `expected a key in double quotes, found ${found()}` : `expected a value, found ${found()}`);
  };

  for (;;) {
    while (i < n && WS.has(text[i] as string)) i++;
    const c = text[i];
    const top = stack[stack.length - 1];
    switch (state) {
      case 'value': {
        if (c === undefined) return endInside();
        if (c === '{') {
          stack.push({ kind: 'map', member: null, count: 0 });
          state = 'key-or-end';
          i++;
        } else if (c === '[') {
          stack.push({ kind: 'list', member: null, count: 0 });
          state = 'value-or-end';
          i++;
        } else if (c === '"') {
          const s = readString();
          if (typeof s !== 'string') return s;
          valueDone();
        } else if (c === '-' || (c >= '0' && c <= '9')) {
          NUMBER_RE.lastIndex = i;
          const m = NUMBER_RE.exec(text);
          const end = m === null ? i + 1 : i + m[0].length;
          if (m === null || /[\w.+-]/.test(text[end] ?? '')) return fail('a bad number', 'JSON numbers look like 3, -0.5 or 1e3 (no leading zeros, no trailing dot)');
          i = end;
          valueDone();
        } else {
          const word = ['true', 'false', 'null'].find((w) => text.startsWith(w, i) && !/[\w$]/.test(text[i + w.length] ?? ''));
          if (word === undefined) return notAStart('value');
          i += word.length;
          valueDone();
        }
        break;
      }
      case 'after-value': {
        if (top === undefined) {
          if (c === undefined) return null;
          return fail(`unexpected ${found()} after the end of the JSON value`, 'a profile is one JSON object');
        }
        const close = top.kind === 'map' ? '}' : ']';
        if (c === undefined) return endInside();
        if (c === ',') {
          state = top.kind === 'map' ? 'key-after-comma' : 'value-after-comma';
          i++;
        } else if (c === close) {
          stack.pop();
          i++;
          valueDone();
        } else {
          const other = close === '}' ? ']' : '}';
          const tail = c === other ? `is a "${close}" missing?` : c === '"' || c === '{' || c === '[' || /[\w-]/.test(c) ? 'is a "," missing?' : c === '/' ? 'comments are not allowed in JSON' : null;
          return fail(`expected "," or "${close}" after a value, found ${found()}`, tail);
        }
        break;
      }
      case 'key-or-end':
      case 'key-after-comma': {
        if (c === undefined) return endInside();
        if (c === '}') {
          if (state === 'key-after-comma') return fail('a trailing comma before "}"', 'JSON allows none');
          stack.pop();
          i++;
          valueDone();
        } else if (c === '"') {
          const s = readString();
          if (typeof s !== 'string') return s;
          key = s;
          (top as Frame).member = s;
          state = 'colon';
        } else {
          return notAStart('key');
        }
        break;
      }
      case 'colon': {
        if (c === undefined) return endInside();
        if (c !== ':') return fail(`expected ":" after the key ${JSON.stringify(key)}, found ${found()}`);
        i++;
        state = 'value';
        break;
      }
      case 'value-or-end':
      case 'value-after-comma': {
        if (c === undefined) return endInside();
        if (c === ']') {
          if (state === 'value-after-comma') return fail('a trailing comma before "]"', 'JSON allows none');
          stack.pop();
          i++;
          valueDone();
        } else {
          (top as Frame).member = (top as Frame).count;
          state = 'value';
        }
        break;
      }
    }
  }
}
