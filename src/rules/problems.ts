/**
 * Turns validation findings into `ProfileProblem`s that point at the file: the path as a person
 * writes it (`rules[2].fault.status`) and the line of the YAML/JSON node it names (for a missing
 * key, the line of the object that lacks it; for an unknown key, the line of that key). The other
 * way round too: the path of the node at an offset, for the problems the YAML parser reports by
 * position only.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { z } from 'zod';
import type { ProfileProblem } from '../errors.js';
import { KNOWN_KEYS_PREFIX } from '../faults/lib/schema.js';
import { closestWord } from '../suggest.js';

export type PathKey = string | number;

/** How deep `pathAt` and the loader's node checks go. */
export const MAX_PATH_DEPTH = 64;

/**
 * Formats a path: `rules[2].fault.status`, `match.headers["x y"]`.
 *
 * @example formatPath(['rules', 2, 'fault', 'status']) === 'rules[2].fault.status'
 */
export function formatPath(path: readonly PathKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') s += `[${k}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(k)) s += (s === '' ? '' : '.') + k;
    else s += `[${JSON.stringify(k)}]`;
  }
  return s;
}

/** Finds lines of paths in a parsed YAML (or JSON) document. */
export class Locator {
  constructor(
    private readonly doc: Document.Parsed | null,
    private readonly lines: LineCounter | null,
  ) {}

  /** Line (1-based) of the node at `path`, or of its nearest existing parent; `key` points at the key itself. */
  line(path: readonly PathKey[], key = false): number | null {
    if (this.doc === null || this.lines === null) return null;
    let node: unknown = this.doc.contents;
    let best: number | null = this.offsetLine(node);
    for (let i = 0; i < path.length; i++) {
      const k = path[i] as PathKey;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k));
        if (pair === undefined) return best;
        if (last && key) return this.offsetLine(pair.key) ?? best;
        node = pair.value;
        // `key:` with nothing after it has no value node: the key's line is the answer.
        best = this.offsetLine(node) ?? this.offsetLine(pair.key) ?? best;
      } else if (isSeq(node) && typeof k === 'number') {
        const item = node.items[k];
        if (item === undefined) return best;
        node = item;
        best = this.offsetLine(node) ?? best;
      } else {
        return best;
      }
    }
    return best;
  }

  /**
   * The path of the deepest node at `offset`: inside a map, the last key that starts at or before
   * it (an error between two keys belongs to the first, as a bad indent under it does); inside a
   * list, the item that holds it.
   *
   * @example locator.pathAt(text.indexOf('path: /b')) // ['rules', 0, 'match', 'path']
   */
  pathAt(offset: number): PathKey[] {
    const path: PathKey[] = [];
    let node: unknown = this.doc?.contents;
    if (!this.holds(node, offset, true)) return path;
    // A profile is a few levels deep; a path hundreds of levels deep names nothing useful.
    while (node !== null && node !== undefined && path.length < MAX_PATH_DEPTH) {
      if (isMap(node)) {
        let found: unknown = undefined;
        for (const p of node.items) {
          const start = rangeOf(p.key)?.[0] ?? rangeOf(p.value)?.[0];
          if (start === undefined) continue;
          if (start > offset) break;
          found = p;
        }
        if (!isPair(found) || !isScalar(found.key)) return path;
        path.push(String(found.key.value));
        node = this.holds(found.value, offset, true) ? found.value : null;
      } else if (isSeq(node)) {
        let i = node.items.findIndex((item) => this.holds(item, offset));
        if (i === -1) i = node.items.findIndex((item) => this.holds(item, offset, true));
        if (i === -1) return path;
        path.push(i);
        node = node.items[i];
      } else {
        return path;
      }
    }
    return path;
  }

  /**
   * Is `offset` inside `node`? `lenient` also takes the line right after its end: a node's range
   * ends where the parser stopped reading it, and an error there (the tab that indents the next
   * line) is still about it.
   */
  private holds(node: unknown, offset: number, lenient = false): boolean {
    const r = rangeOf(node);
    if (r === undefined || r[0] > offset) return false;
    if (offset < r[2]) return true;
    if (!lenient) return false;
    const end = this.lineAt(r[2]);
    const at = this.lineAt(offset);
    return offset === r[2] || (end !== null && at !== null && at - end <= 1);
  }

  /** The plain value written at `path` (through aliases), or undefined when it is not a scalar there. */
  value(path: readonly PathKey[]): unknown {
    if (this.doc === null) return undefined;
    const doc = this.doc;
    const resolve = (n: unknown): unknown => (isAlias(n) ? n.resolve(doc) : n);
    let node: unknown = resolve(doc.contents);
    for (const k of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(k));
        node = resolve(pair?.value);
      } else if (isSeq(node) && typeof k === 'number') {
        node = resolve(node.items[k]);
      } else {
        return undefined;
      }
    }
    return isScalar(node) ? node.value : undefined;
  }

  /** Line (1-based) of an offset in the text, or null without a text. */
  lineAt(offset: number): number | null {
    return this.lines === null ? null : this.lines.linePos(offset).line;
  }

  private offsetLine(node: unknown): number | null {
    const range = (node as Node | null | undefined)?.range;
    if (range === undefined || range === null) return null;
    return this.lineAt(range[0]);
  }
}

function rangeOf(node: unknown): readonly [number, number, number] | undefined {
  return (node as Node | null | undefined)?.range ?? undefined;
}


/** Messages of the fraction options (`fraction()`, cohort, ws-drop's `fraction`, corrupt's `probability`). */
const FRACTION_MESSAGE_RE = /(?:0 to 1|\(0, 1\])$/;

/**
 * The fraction a person who wrote a percentage meant, as a hint, or null: `30` or `"30%"` where 0
 * to 1 belongs is 0.3. Only numbers from 2 to 100 (a 1.5 is nobody's percentage) and strings that
 * end in `%`.
 *
 * @example percentHint(30) === 'did you mean 0.3? fractions are written 0 to 1, not as percentages'
 */
export function percentHint(value: unknown): string | null {
  let n: number | null = null;
  if (typeof value === 'number' && value >= 2) n = value;
  else if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
    if (m !== null) n = Number(m[1]);
  }
  if (n === null || n > 100) return null;
  return `did you mean ${Number((n / 100).toPrecision(12))}? fractions are written 0 to 1, not as percentages`;
}

/** Collects problems for one file. */
export class Problems {
  readonly list: ProfileProblem[] = [];
  constructor(
    readonly file: string | null,
    private readonly locator: Locator,
  ) {}

  add(path: readonly PathKey[], message: string, opts: { key?: boolean; line?: number | null } = {}): void {
    const line = opts.line !== undefined ? opts.line : this.locator.line(path, opts.key === true);
    this.list.push({ file: this.file, line, path: formatPath(path), message });
  }

  /** Adds zod issues found at `base` (the path of the validated value inside the file). */
  addZod(base: readonly PathKey[], issues: readonly z.core.$ZodIssue[]): void {
    for (const iss of issues) {
      const path = [...base, ...(iss.path as PathKey[])];
      if (iss.code === 'unrecognized_keys') {
        const known = iss.message.startsWith(KNOWN_KEYS_PREFIX) ? iss.message.slice(KNOWN_KEYS_PREFIX.length).split(', ') : [];
        for (const k of iss.keys) {
          const hint = suggest(k, known);
          const tail = known.length === 0 ? iss.message : `expected one of: ${known.join(', ')}`;
          this.add([...path, k], `unknown key${hint === null ? '' : ` (did you mean ${hint}?)`}; ${tail}`, { key: true });
        }
        continue;
      }
      if (iss.code === 'invalid_key') {
        this.add(path, `bad key: ${iss.issues[0]?.message ?? iss.message}`, { key: true });
        continue;
      }
      if (iss.code === 'invalid_union' && iss.message === 'Invalid input') {
        this.add(path, 'has the wrong form');
        continue;
      }
      const hint = FRACTION_MESSAGE_RE.test(iss.message) ? percentHint(this.locator.value(path)) : null;
      this.add(path, hint === null ? iss.message : `${iss.message} (${hint})`);
    }
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Problems in file order. */
  sorted(): ProfileProblem[] {
    return [...this.list].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || a.path.localeCompare(b.path));
  }
}

/** Messages for zod's generic issues, so they read like the rest (`must be a number`). */
export function zodMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.expected === 'nonoptional' || iss.input === undefined) return 'required';
      return `must be ${article(String(iss.expected))}, not ${describe(iss.input)}`;
    case 'too_small':
      return `must be >= ${String(iss.minimum)}`;
    case 'too_big':
      return `must be <= ${String(iss.maximum)}`;
    case 'invalid_value':
      return `must be one of: ${iss.values.map((v) => String(v)).join(', ')}`;
    default:
      return undefined;
  }
}

function article(t: string): string {
  if (t === 'array') return 'a list';
  if (t === 'object') return 'an object';
  if (t === 'int') return 'a whole number';
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return String(v);
}

/** The closest known key within edit distance 2, for "did you mean". */
export function suggest(word: string, known: readonly string[]): string | null {
  return closestWord(word, known, 2);
}
