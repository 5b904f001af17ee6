/**
 * Reading profiles: text (YAML or JSON) to a compiled profile, built-in profiles by name, files by
 * path. YAML is parsed safely: no custom tags, unique keys, no merge keys, a cap on aliases (no
 * "billion laughs"), one document, a size cap; JSON files by JSON's rules. Every problem of a file
 * is reported at once, with its line and path, those the parser finds included.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type YAMLError } from 'yaml';
import { AftershockError, ProfileError, type ProfileProblem } from '../errors.js';
import { compileProfile, type CompiledProfile } from './compile.js';
import { findJsonSyntaxError } from './json-syntax.js';
import { formatPath, Locator, MAX_PATH_DEPTH, type PathKey } from './problems.js';

/** Profiles larger than this are refused (a profile is a page of YAML, not a data file). */
export const MAX_PROFILE_BYTES = 1024 * 1024;
const MAX_ALIASES = 100;

/**
 * The package's `profiles/` folder. Relative to this module: `src/rules` under vitest and
 * `dist/rules` after the build both sit two levels below the package root.
 */
export const BUILTIN_DIR: string = fileURLToPath(new URL('../../profiles/', import.meta.url));

/** Options of `parseProfile`. */
export interface ParseOptions {
  /** The built-in profile's name, when the text is one. */
  builtin?: string;
  /** `json` reads the text with JSON's rules; the default is JSON for a source ending in `.json`, else YAML. */
  format?: 'yaml' | 'json';
}

/**
 * Parses and compiles a profile from YAML or JSON text. `source` names the file in problems
 * (null for text from the API). A `.json` source is read with JSON's rules: a trailing comma or a
 * comment is an error there, said in JSON's words at JSON's line.
 *
 * @example
 * const p = parseProfile('name: demo\nrules:\n  - fault: { type: http-error, status: 503 }\n', null);
 * p.rules[0].name === 'http-error-1'
 */
export function parseProfile(text: string, source: string | null, opts: ParseOptions = {}): CompiledProfile {
  const fail = (problems: ProfileProblem[]): never => {
    throw new ProfileError(problems, source);
  };
  if (typeof text !== 'string') fail([{ file: source, line: null, path: '', message: 'a profile is YAML or JSON text' }]);
  if (Buffer.byteLength(text) > MAX_PROFILE_BYTES) {
    fail([{ file: source, line: null, path: '', message: `is larger than ${MAX_PROFILE_BYTES / 1024} KiB; a profile is a page of YAML` }]);
  }
  const json = (opts.format ?? (source !== null && /\.json$/i.test(source) ? 'json' : 'yaml')) === 'json';
  if (json) {
    const problem = jsonSyntaxProblem(text, source);
    if (problem !== null) fail([problem]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    customTags: [],
    schema: 'core',
    merge: false,
    version: '1.2',
  });
  const locator = new Locator(doc, lineCounter);
  const yamlProblems: ProfileProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    // Tags are checked on the parsed nodes below, known ones and unknown ones alike.
    if (e.code === 'TAG_RESOLVE_FAILED') continue;
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    yamlProblems.push({ file: source, line, ...describeYamlError(e, text, locator, line, doc.errors.includes(e as never)) });
  }
  const { tags, merges } = checkNodes(doc, locator, json);
  for (const p of [...tags, ...merges]) yamlProblems.push({ file: source, ...p });
  yamlProblems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  // A duplicated key, a tag or a merge key leaves a readable document: the rest of the profile is
  // still checked, so one run names every problem. Any other YAML error stops here.
  const readable = doc.errors.every((e) => e.code === 'DUPLICATE_KEY');
  if (yamlProblems.length > 0 && !readable) fail(yamlProblems);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const message = firstLine((err as Error).message);
    // An alias used before its anchor (rules reordered): named where it is used.
    const unresolved = /Unresolved alias[^:]*: (\S+)/.exec(message);
    const at = unresolved === null ? -1 : text.search(new RegExp(`\\*${unresolved[1]?.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`));
    if (unresolved !== null && at !== -1) {
      fail([...yamlProblems, { file: source, line: lineCounter.linePos(at).line, path: formatPath(locator.pathAt(at)), message: `YAML: the alias *${unresolved[1]} comes before its anchor &${unresolved[1]}: define the anchor first (YAML reads top to bottom)` }]);
    }
    fail([{ file: source, line: null, path: '', message: `YAML: ${message}${/alias/i.test(message) ? ` (at most ${MAX_ALIASES} alias uses)` : ''}` }]);
  }
  if (data === null || data === undefined) fail([...yamlProblems, { file: source, line: 1, path: '', message: "is empty (an editor's save in progress, or a truncated file?); write `rules: []` for a profile with no faults" }]);
  const compile = (): CompiledProfile =>
    compileProfile({
      data,
      text,
      source,
      builtin: opts.builtin ?? null,
      locator,
      fallbackName: fallbackName(source),
    });
  if (yamlProblems.length === 0) return compile();
  try {
    compile();
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    // What a merge key brought in, or a refused tag made of a value, is already named by its
    // problem: not again as unknown keys or missing fields.
    const named = [...tags, ...merges].map((m) => m.path);
    const under = (p: string): boolean => named.some((m) => p === m || p.startsWith(`${m}.`) || p.startsWith(`${m}[`));
    fail([...yamlProblems, ...err.problems.filter((p) => !under(p.path))].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  return fail(yamlProblems);
}

/** JSON's view of a `.json` profile's syntax: null when it is JSON. */
function jsonSyntaxProblem(raw: string, source: string | null): ProfileProblem | null {
  // An editor's byte-order mark is not the author's mistake; the YAML reader skips it too.
  const text = raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
  // An empty file gets the loader's own "is empty" message.
  if (text.trim() === '') return null;
  try {
    JSON.parse(text);
    return null;
  } catch (err) {
    const found = findJsonSyntaxError(text);
    if (found === null) return { file: source, line: null, path: '', message: `JSON: ${firstLine((err as Error).message)}` };
    const before = text.slice(0, found.offset);
    const line = before.split('\n').length;
    const column = found.offset - (before.lastIndexOf('\n') + 1) + 1;
    const where = found.atEnd ? '' : ` (column ${column})`;
    return { file: source, line, path: formatPath(found.path), message: `JSON: ${found.head}${where}${found.tail === null ? '' : `; ${found.tail}`}` };
  }
}

/** The path and message of a YAML parse error (the parser gives only an offset). */
function describeYamlError(e: YAMLError, text: string, locator: Locator, line: number, isError: boolean): { path: string; message: string } {
  const at = e.pos[0];
  const prefix = isError ? 'YAML' : 'YAML warning';
  if (e.code === 'MULTIPLE_DOCS') {
    const marker = text.startsWith('---', at) ? ' with ---' : '';
    return {
      path: '',
      message: `the file holds several YAML documents (another starts at line ${line}${marker}); a profile is one document: remove the --- line or split the file`,
    };
  }
  // An error at a line's indentation is about what the line holds (a misindented key), except a
  // tab: that line was meant to continue the node above it, which is where pathAt looks.
  let where = at;
  if (e.code !== 'TAB_AS_INDENT' && /^[ \t]*$/.test(text.slice(text.lastIndexOf('\n', at - 1) + 1, at + 1))) {
    while (text[where] === ' ' || text[where] === '\t') where++;
    if (where >= text.length || text[where] === '\n' || text[where] === '\r') where = at;
  }
  const path = locator.pathAt(where);
  if (e.code === 'DUPLICATE_KEY' && path.length > 0) {
    const key = String(path[path.length - 1]);
    // The first pair with that key: where the key was given first.
    const first = locator.line(path, true);
    return { path: formatPath(path), message: `duplicate key ${JSON.stringify(key)}${first === null ? '' : ` (first at line ${first})`}; a key can appear once in a map` };
  }
  if (e.code === 'TAB_AS_INDENT') return { path: formatPath(path), message: `${prefix}: tabs are not allowed as indentation; indent with spaces` };
  // A glob's braces or brackets, unquoted in a { ... } map, are read as YAML's own (a cascade of
  // "flow-map" errors): say what to do.
  const lineText = text.slice(text.lastIndexOf('\n', at - 1) + 1, (text.indexOf('\n', at) + 1 || text.length + 1) - 1);
  const hint = /\{[^}]*:\s*\/[^\s"',]*[{[]/.test(lineText) ? '; a path glob with { } or [ ] inside a { ... } map must be quoted: path: "/a/{x,y}/**"' : '';
  return { path: formatPath(path), message: `${prefix}: ${firstLine(e.message)}${hint}` };
}

/** The tags a profile's values may carry: the core schema's, as plain YAML gives them anyway. */
const CORE_TAGS: ReadonlySet<string> = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`));
const MERGE_MESSAGE = 'YAML merge keys (<<) are not supported: write the keys out (an alias such as *f stands for a whole value, as in fault: *f)';

/**
 * Problems the parser does not report as errors: tags (a custom tag is only a warning to it, and
 * `!!binary` becomes bytes no profile key takes) and YAML merge keys. Merge keys are refused rather
 * than merged: YAML 1.2 has none, and the keys a merge brings in have no line of their own in the
 * rule, so a problem among them could not be pointed at.
 */
function checkNodes(doc: Document.Parsed, locator: Locator, json: boolean): { tags: Omit<ProfileProblem, 'file'>[]; merges: Omit<ProfileProblem, 'file'>[] } {
  const tags: Omit<ProfileProblem, 'file'>[] = [];
  const merges: Omit<ProfileProblem, 'file'>[] = [];
  const known = new Set([...doc.schema.tags.map((t) => t.tag), ...Object.keys(doc.schema.knownTags)]);
  const lineOf = (node: Node): number | null => (node.range === undefined || node.range === null ? null : locator.lineAt(node.range[0]));
  const checkTag = (node: unknown, path: PathKey[]): void => {
    if (!isNode(node) || node.tag === undefined || CORE_TAGS.has(node.tag)) return;
    const shown = node.tag.startsWith('tag:yaml.org,2002:') ? `!!${node.tag.slice('tag:yaml.org,2002:'.length)}` : node.tag;
    const message = known.has(node.tag) ? `YAML: tag ${shown} is not a profile value; write a string, number, boolean, list or map` : `YAML: unknown tag ${shown}; a profile uses no tags`;
    tags.push({ line: lineOf(node), path: formatPath(path), message });
  };
  const visit = (node: unknown, path: PathKey[]): void => {
    // Deeper than any profile: the parser's own limits speak for such a text.
    if (isAlias(node) || path.length > MAX_PATH_DEPTH) return;
    checkTag(node, path);
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isScalar(pair.key)) continue;
        const at = [...path, String(pair.key.value)];
        if (!json && pair.key.value === '<<' && pair.key.type === 'PLAIN') {
          merges.push({ line: lineOf(pair.key), path: formatPath(at), message: MERGE_MESSAGE });
          continue;
        }
        checkTag(pair.key, at);
        visit(pair.value, at);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, [...path, i]));
    }
  };
  visit(doc.contents, []);
  return { tags, merges };
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i === -1 ? s : s.slice(0, i)).trim();
}

function fallbackName(source: string | null): string {
  if (source === null) return 'inline';
  const base = path.basename(source).replace(/\.(ya?ml|json)$/i, '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return base === '' ? 'unnamed' : base.slice(0, 64);
}

/**
 * The built-in profile names (file names in `profiles/` without `.yaml`), sorted.
 *
 * @example listBuiltinProfiles().includes('flaky') === true
 */
export function listBuiltinProfiles(): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(BUILTIN_DIR);
  } catch {
    return [];
  }
  return files
    .filter((f) => /^[a-z0-9][a-z0-9-]*\.yaml$/.test(f))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** The path of a built-in profile, or null when there is no such built-in. */
export function builtinProfilePath(name: string): string | null {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) return null;
  const file = path.join(BUILTIN_DIR, `${name}.yaml`);
  return fs.existsSync(file) ? file : null;
}

/**
 * A profile file's text, checked first for what it is: a regular file (not a FIFO, a device or a
 * folder) of at most MAX_PROFILE_BYTES, refused as a ProfileError before anything is read (a
 * 700 MB file took 1.1 GB of memory to be told it was too large). Errors of the file system
 * (ENOENT, EACCES) go through as they are.
 */
export async function readProfileFile(file: string): Promise<string> {
  const stat = await fs.promises.stat(file);
  if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  if (stat.size > MAX_PROFILE_BYTES) {
    throw new ProfileError([{ file, line: null, path: '', message: `is larger than ${MAX_PROFILE_BYTES / 1024} KiB; a profile is a page of YAML` }], file);
  }
  const buf = await fs.promises.readFile(file);
  // UTF-16 (what Windows PowerShell 5's `>` writes) read as UTF-8 is noise: say what it is.
  if (buf.length >= 2 && ((buf[0] === 0xff && buf[1] === 0xfe) || (buf[0] === 0xfe && buf[1] === 0xff))) {
    throw new ProfileError([{ file, line: null, path: '', message: 'is UTF-16 text (PowerShell 5 writes it with >); save it as UTF-8' }], file);
  }
  return buf.toString('utf8');
}

/**
 * Loads a built-in profile by name, or any other argument as a file path (YAML or JSON).
 *
 * @example const p = await loadProfile('flaky'); const q = await loadProfile('./chaos/checkout.yaml');
 */
export async function loadProfile(nameOrPath: string): Promise<CompiledProfile> {
  const builtin = builtinProfilePath(nameOrPath);
  if (builtin !== null) {
    const text = await fs.promises.readFile(builtin, 'utf8');
    // A built-in has no `source`: it is not the user's file to watch; problems name it by its name.
    return parseProfile(text, null, { builtin: nameOrPath });
  }
  let text: string;
  try {
    text = await readProfileFile(nameOrPath);
  } catch (err) {
    if (err instanceof ProfileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const looksLikeName = !/[/\\.]/.test(nameOrPath);
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'not a file' : (err as Error).message;
    throw new AftershockError(
      'ERR_PROFILE_NOT_FOUND',
      looksLikeName
        ? `no built-in profile "${nameOrPath}" and no file by that name; built-ins: ${listBuiltinProfiles().join(', ')}`
        : `cannot read profile ${nameOrPath}: ${why}; give a YAML/JSON file or a built-in (${listBuiltinProfiles().join(', ')})`,
      { cause: err },
    );
  }
  return parseProfile(text, nameOrPath);
}
