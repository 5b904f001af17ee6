/**
 * Reading profiles: text (YAML or JSON) to a compiled profile, built-in profiles by name, files by
 * path. YAML is parsed safely: no custom tags, unique keys, a cap on aliases (no "billion laughs"),
 * one document, a size cap. Every problem of a file is reported at once, with its line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { AftershockError, ProfileError, type ProfileProblem } from '../errors.js';
import { compileProfile, type CompiledProfile } from './compile.js';
import { Locator } from './problems.js';

/** Profiles larger than this are refused (a profile is a page of YAML, not a data file). */
export const MAX_PROFILE_BYTES = 1024 * 1024;
const MAX_ALIASES = 100;

/**
 * The package's `profiles/` folder. Relative to this module: `src/rules` under vitest and
 * `dist/rules` after the build both sit two levels below the package root.
 */
export const BUILTIN_DIR: string = fileURLToPath(new URL('../../profiles/', import.meta.url));

/**
 * Parses and compiles a profile from YAML or JSON text. `source` names the file in problems
 * (null for text from the API).
 *
 * @example
 * const p = parseProfile('name: demo\nrules:\n  - fault: { type: http-error, status: 503 }\n', null);
 * p.rules[0].name === 'http-error-1'
 */
export function parseProfile(text: string, source: string | null, opts: { builtin?: string } = {}): CompiledProfile {
  const fail = (problems: ProfileProblem[]): never => {
    throw new ProfileError(problems, source);
  };
  if (typeof text !== 'string') fail([{ file: source, line: null, path: '', message: 'a profile is YAML or JSON text' }]);
  if (Buffer.byteLength(text) > MAX_PROFILE_BYTES) {
    fail([{ file: source, line: null, path: '', message: `is larger than ${MAX_PROFILE_BYTES / 1024} KiB; a profile is a page of YAML` }]);
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
  const yamlProblems: ProfileProblem[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    yamlProblems.push({ file: source, line, path: '', message: `${doc.errors.includes(e as never) ? 'YAML' : 'YAML warning'}: ${firstLine(e.message)}` });
  }
  // A duplicated key leaves a readable document: the rest of the profile is still checked, so one
  // run names every problem. Any other YAML error stops here.
  const readable = doc.errors.every((e) => e.code === 'DUPLICATE_KEY');
  if (yamlProblems.length > 0 && !readable) fail(yamlProblems);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    fail([{ file: source, line: null, path: '', message: `YAML: ${firstLine((err as Error).message)} (at most ${MAX_ALIASES} alias uses)` }]);
  }
  if (data === null || data === undefined) fail([...yamlProblems, { file: source, line: 1, path: '', message: "is empty (an editor's save in progress, or a truncated file?); write `rules: []` for a profile with no faults" }]);
  const compile = (): CompiledProfile =>
    compileProfile({
      data,
      text,
      source,
      builtin: opts.builtin ?? null,
      locator: new Locator(doc, lineCounter),
      fallbackName: fallbackName(source),
    });
  if (yamlProblems.length === 0) return compile();
  try {
    compile();
  } catch (err) {
    if (err instanceof ProfileError) fail([...yamlProblems, ...err.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
    throw err;
  }
  return fail(yamlProblems);
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
    const stat = await fs.promises.stat(nameOrPath);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
    if (stat.size > MAX_PROFILE_BYTES) {
      throw new ProfileError([{ file: nameOrPath, line: null, path: '', message: `is larger than ${MAX_PROFILE_BYTES / 1024} KiB; a profile is a page of YAML` }], nameOrPath);
    }
    text = await fs.promises.readFile(nameOrPath, 'utf8');
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
