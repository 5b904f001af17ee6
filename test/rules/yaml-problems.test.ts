/**
 * Problems the parser itself finds (before the schema sees the data) name the place, as schema
 * problems do: the path of the node at the error and its line. Duplicate keys name the key, JSON
 * files are read with JSON's rules and JSON's words, and the messages say what to do, not which
 * library function to call. Profile files live in a temp dir and are loaded as a user's are.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProfileError, type ProfileProblem } from '../../src/errors.js';
import { loadProfile } from '../../src/rules/index.js';
import { tempDir } from '../helpers.js';

async function problemsOfFile(name: string, text: string): Promise<ProfileProblem[]> {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, text);
  try {
    await loadProfile(file);
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return [...(err as ProfileError).problems];
  }
  throw new Error(`expected ${name} to be refused`);
}

/** `line path: message`, the way `profiles validate` prints a problem (without the file). */
const lines = (ps: readonly ProfileProblem[]): string[] => ps.map((p) => `${p.line ?? '-'} ${p.path === '' ? '(root)' : p.path}: ${p.message}`);

describe('YAML problems carry the path of the node at the error', () => {
  it('a duplicate key names the key, its path and where it first appeared', async () => {
    const ps = await problemsOfFile('dupdeep.yaml', ['name: dupdeep', 'rules:', '  - name: a', '    match:', '      path: /a', '      path: /b', '    fault: { type: reset }'].join('\n'));
    expect(lines(ps)).toEqual(['6 rules[0].match.path: duplicate key "path" (first at line 5); a key can appear once in a map']);
  });

  it('duplicates at the top, in a list item and in a flow map, next to the other problems', async () => {
    const ps = await problemsOfFile(
      'dup.yaml',
      ['name: dup', 'name: dup2', 'rules:', '  - name: a', '    fault: { type: reset }', '    fault: { type: close }', '  - name: b', '    fault: { type: http-error, status: 503, status: 504 }', '  - fault: { type: nope }'].join('\n'),
    );
    expect(ps.map((p) => [p.line, p.path])).toEqual([
      [2, 'name'],
      [6, 'rules[0].fault'],
      [8, 'rules[1].fault.status'],
      [9, 'rules[2].fault.type'],
    ]);
    expect(ps[0]?.message).toBe('duplicate key "name" (first at line 1); a key can appear once in a map');
    expect(ps[2]?.message).toBe('duplicate key "status" (first at line 8); a key can appear once in a map');
  });

  it('a tab used as indentation names the key it is under', async () => {
    const ps = await problemsOfFile('tabs.yaml', 'name: tabs\nrules:\n\t- fault: { type: reset }\n');
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ line: 3, path: 'rules' });
    expect(ps[0]?.message).toMatch(/^YAML: tabs are not allowed as indentation; indent with spaces/);
    const deeper = await problemsOfFile('tabs2.yaml', 'name: tabs2\nrules:\n  - fault:\n\t  type: reset\n');
    expect(deeper[0]).toMatchObject({ line: 4, path: 'rules[0].fault' });
  });

  it('an unknown tag names the value that carries it; a standard tag that is no profile value is refused too', async () => {
    const ps = await problemsOfFile('tag.yaml', 'name: tag\nrules:\n  - fault: !custom { type: reset }\n  - fault: !!binary aGVsbG8=\n');
    expect(lines(ps)).toEqual([
      '3 rules[0].fault: YAML: unknown tag !custom; a profile uses no tags',
      '4 rules[1].fault: YAML: tag !!binary is not a profile value; write a string, number, boolean, list or map',
    ]);
  });

  it('a syntax error inside a rule names the rule', async () => {
    const ps = await problemsOfFile('unclosed.yaml', 'name: x\nrules:\n  - fault: { type: http-error, status: 503\n  - fault: {type: reset}\n');
    expect(ps[0]?.line).toBe(4);
    expect(ps[0]?.path).toMatch(/^rules/);
    expect(ps[0]?.message).toMatch(/^YAML: /);
    // A misindented key is named, not the key above it.
    const indent = await problemsOfFile('indent.yaml', 'name: x\nrules:\n- fault:\n    type: reset\n   match: {}\n');
    expect(indent[0]).toMatchObject({ line: 5, path: 'rules[0].match' });
  });
});

describe('messages say what to do', () => {
  it('a file of several YAML documents is one profile too many, not a library call to make', async () => {
    const ps = await problemsOfFile('multi.yaml', '---\nname: a\n---\nname: b\n');
    expect(ps).toHaveLength(1);
    expect(ps[0]?.line).toBe(3);
    expect(ps[0]?.message).toBe('the file holds several YAML documents (another starts at line 3 with ---); a profile is one document: remove the --- line or split the file');
    expect(ps[0]?.message).not.toMatch(/parseAllDocuments/);
  });

  it('a phase without a name says the name is required', async () => {
    const ps = await problemsOfFile('miss.yaml', 'name: miss\nphases:\n  - name: p1\n    duration: 5s\n  - duration: 5s\n');
    expect(lines(ps)).toEqual(['5 phases[1].name: required: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit']);
  });

  it('a YAML merge key (<<) is named as such, with what to write instead, and not as an unknown key', async () => {
    const text = [
      'name: anchors', // 1
      'rules:', // 2
      '  - name: a', // 3
      '    match: &m { path: /v1/** }', // 4
      '    fault: &f { type: http-error, status: 503 }', // 5
      '  - name: b', // 6
      '    match: *m', // 7
      '    fault: *f', // 8
      '  - name: c', // 9
      '    <<: *f', // 10
      '    match:', // 11
      '      query: { <<: { a: "1" } }', // 12
      '    fault: { type: reset }', // 13
    ].join('\n');
    const ps = await problemsOfFile('anchors.yaml', text);
    const msg = 'YAML merge keys (<<) are not supported: write the keys out (an alias such as *f stands for a whole value, as in fault: *f)';
    expect(lines(ps)).toEqual([`10 rules[2]["<<"]: ${msg}`, `12 rules[2].match.query["<<"]: ${msg}`]);
  });

  it('a percentage where a fraction belongs gets a hint with the fraction', async () => {
    const text = [
      'name: pct', // 1
      'rules:', // 2
      '  - probability: 30', // 3
      '    match: { cohort: 25% }', // 4
      '    fault: { type: ws-drop, fraction: 50 }', // 5
      '  - probability: "30%"', // 6
      '    when: { ramp: { from: 0, to: 50, over: 10s } }', // 7
      '    fault: { type: corrupt, probability: 5 }', // 8
      '  - name: r', // 9
      '    probability: 1.5', // 10
      '    fault: { type: reset }', // 11
      'phases:',
      '  - name: p',
      '    duration: 1s',
      '    overrides: { r: { probability: 100 } }', // 15
    ].join('\n');
    const ps = await problemsOfFile('pct.yaml', text);
    expect(lines(ps)).toEqual([
      '3 rules[0].probability: must be a number from 0 to 1 (did you mean 0.3? fractions are written 0 to 1, not as percentages)',
      '4 rules[0].match.cohort: must be a fraction in (0, 1] (did you mean 0.25? fractions are written 0 to 1, not as percentages)',
      '5 rules[0].fault.fraction: must be a number in (0, 1] (did you mean 0.5? fractions are written 0 to 1, not as percentages)',
      '6 rules[1].probability: must be a number from 0 to 1 (did you mean 0.3? fractions are written 0 to 1, not as percentages)',
      '7 rules[1].when.ramp.to: must be a number from 0 to 1 (did you mean 0.5? fractions are written 0 to 1, not as percentages)',
      '8 rules[1].fault.probability: must be a number in (0, 1] (did you mean 0.05? fractions are written 0 to 1, not as percentages)',
      // 1.5 is no percentage anyone means: no guess.
      '10 rules[2].probability: must be a number from 0 to 1',
      '15 phases[0].overrides.r.probability: must be a number from 0 to 1 (did you mean 1? fractions are written 0 to 1, not as percentages)',
    ]);
  });
});

describe('JSON profiles are read as JSON', () => {
  it('a syntax error is described in JSON terms, at the line and column where JSON finds it, with the path', async () => {
    const ps = await problemsOfFile('syntax.json', ['{', '  "name": "x",', '  "rules": [', '    { "fault": { "type": "reset" } ', '  ]', '}'].join('\n'));
    expect(lines(ps)).toEqual(['5 rules[0]: JSON: expected "," or "}" after a value, found "]" (column 3); is a "}" missing?']);
  });

  it('what YAML would accept but JSON does not is refused: trailing commas, single quotes, comments, bare words', async () => {
    expect(lines(await problemsOfFile('trailing.json', '{ "name": "j2", "rules": [ { "fault": { "type": "reset" }, } ] }'))).toEqual([
      '1 rules[0]: JSON: a trailing comma before "}" (column 60); JSON allows none',
    ]);
    expect(lines(await problemsOfFile('quotes.json', "{\n  'name': 'j'\n}"))).toEqual(['2 (root): JSON: strings and keys are written in double quotes, found "\'" (column 3)']);
    expect(lines(await problemsOfFile('comment.json', '{\n  "name": "j", // mine\n  "rules": []\n}'))).toEqual(['2 (root): JSON: comments are not allowed in JSON (column 16)']);
    expect(lines(await problemsOfFile('bare.json', '{\n  "name": "j",\n  "rules": [ { "fault": { "type": reset } } ]\n}'))).toEqual([
      '3 rules[0].fault.type: JSON: unexpected reset (column 35); strings are written in double quotes, and true, false and null are the only bare words',
    ]);
    expect(lines(await problemsOfFile('short.json', '{\n  "name": "j",\n  "rules": ['))).toEqual(['3 rules: JSON: the text ends inside a list (an unclosed "["?)']);
  });

  it('a valid JSON profile still gets its schema problems with lines, duplicate keys included, and a BOM is fine', async () => {
    const text = ['\ufeff{', '  "name": "j",', '  "rules": [', '    { "name": "a", "fault": { "type": "http-error", "status": 900 } }', '  ],', '  "name": "k"', '}'].join('\n');
    expect(lines(await problemsOfFile('j.json', text))).toEqual([
      '4 rules[0].fault.status: must be 200-599',
      '6 name: duplicate key "name" (first at line 2); a key can appear once in a map',
    ]);
  });

  it('a .json file that is fine loads', async () => {
    const file = path.join(tempDir(), 'ok.json');
    fs.writeFileSync(file, '{\n\t"name": "ok",\n\t"rules": [ { "fault": { "type": "http-error", "status": 502 } } ]\n}\n');
    expect((await loadProfile(file)).rules[0]?.fault).toMatchObject({ status: 502 });
  });
});
