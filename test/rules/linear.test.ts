/**
 * No pattern in a profile can stall the proxy: header and query regexes that backtrack too long
 * finish on V8's linear-time engine, those it cannot run (lookaround, backreferences) are refused
 * at load, and path globs compile to regexes it can run. Globs keep picomatch's meaning, checked
 * against it on generated globs and paths.
 */
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { globRegExp, LINEAR_ENGINE, linearForm, linearProblem, MAX_GLOB_CHARS, MAX_GLOB_EXPANSIONS, MAX_LINEAR_FORM } from '../../src/rules/linear.js';
import { compilePaths } from '../../src/rules/match.js';
import { ProfileError } from '../../src/errors.js';
import { createRuleEngine, parseProfile } from '../../src/rules/index.js';
import { prng } from '../fixtures/make-fixtures.js';

describe('globs', () => {
  it('mean what picomatch (dot: true) made them mean, on generated globs and paths', () => {
    const rnd = prng(5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const segments = ['a', 'b', 'ab', '*', '**', 'a*', '*b', '[ab]', '{a,b}', '{a,bb}*', 'x[0-9]', '*a*', 'a{b,c/d}', '[^a]b', 'x{1..3}', '{a..c}b', '{a,[,b]}'];
    const names = ['a', 'b', 'ab', 'ba', 'bb', 'x1', 'c', 'd', 'aab', 'cb', 'x2', 'x4', 'cb', ','];
    let compared = 0;
    for (let n = 0; n < 5000; n++) {
      const glob = `/${Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(segments)).join('/')}`;
      const test = compilePaths([glob]);
      const rel = glob.slice(1);
      // picomatch lets a trailing "/**" match its base only after a literal segment: aftershock always did.
      const pm = (p: string): boolean => picomatch.makeRe(rel, { dot: true }).test(p) || (rel.endsWith('/**') && picomatch.makeRe(rel.slice(0, -3), { dot: true }).test(p));
      for (let k = 0; k < 4; k++) {
        const path = Array.from({ length: Math.floor(rnd() * 5) }, () => pick(names)).join('/');
        if (test === null) continue; // `/**`, `/**/*`: everything, without a regex
        expect(test(`/${path}`), `${glob} on /${path}`).toBe(pm(path));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(15_000);
  });

  it('match a trailing slash too, and take every other character, ( ) + @ included, as itself', () => {
    const t = compilePaths(['/wiki/Foo_(bar)/*', '/@user/+x/*']);
    expect(t?.('/wiki/Foo_(bar)/1')).toBe(true);
    expect(t?.('/wiki/Foo_bar/1')).toBe(false);
    expect(t?.('/@user/+x/2/')).toBe(true);
    expect(t?.('/user/x/2')).toBe(false);
    expect(compilePaths(['/v1/*/items'])?.('/v1/7/items/')).toBe(true);
    expect(globRegExp('a/**/b').source).not.toMatch(/\(\?[=!<]/);
  });

  it('expand ranges in braces as picomatch and bash do, and keep a class\'s commas inside braces its own', () => {
    const t = compilePaths(['/a/{1..3}', '/z/{01..10..3}', '/l/{a..c}', '/x/{a,[,b]}']);
    expect(['/a/1', '/a/2', '/a/3', '/a/4', '/a/{1..3}'].map((p) => t?.(p))).toEqual([true, true, true, false, false]);
    expect(['/z/01', '/z/04', '/z/10', '/z/02', '/z/4'].map((p) => t?.(p))).toEqual([true, true, true, false, false]);
    expect(['/l/b', '/l/d'].map((p) => t?.(p))).toEqual([true, false]);
    expect(['/x/a', '/x/,', '/x/b', '/x/[,b]'].map((p) => t?.(p))).toEqual([true, true, true, false]);
  });

  it('refuse more brace expansions than a profile needs', () => {
    expect(() => globRegExp('{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}')).toThrow(new RegExp(`more than ${MAX_GLOB_EXPANSIONS}`));
    expect(() => parseProfile('rules:\n  - name: r\n    match: { path: "/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}" }\n    fault: { type: reset }', 'p.yaml')).toThrow(ProfileError);
    expect(() => globRegExp('{0..999}')).toThrow(new RegExp(`more than ${MAX_GLOB_EXPANSIONS}`));
    // The regex's size bounds what one match can cost: 256 expansions of a long glob are too many characters.
    expect(() => globRegExp(`{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/${'*a'.repeat(100)}b`)).toThrow(new RegExp(`more than ${MAX_GLOB_CHARS} for a glob with wildcards`));
    expect(() => globRegExp('**/*{1..250}*/**/y')).toThrow(/with wildcards/);
    // Lists of plain paths (a trailing /** is no wildcard to backtrack on) may be longer.
    expect(globRegExp('{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/customers/orders').test('a/b/a/b/a/b/a/b/customers/orders')).toBe(true);
    expect(compilePaths(['/api/v1/customers/{001..200}/orders/**'])?.('/api/v1/customers/137/orders/9')).toBe(true);
    expect(() => globRegExp('files/{A..z}/*')).toThrow(/mixes cases .* \{\{a\.\.z\},\{A\.\.Z\}\}/);
    expect(compilePaths(['/f/{{a..b},{Y..Z}}'])?.('/f/Y')).toBe(true);
  });
});

describe('patterns a crafted request would make backtrack for minutes', () => {
  it.runIf(LINEAR_ENGINE)('finish at once: globs with many wildcards, header and query regexes with overlapping repetition', () => {
    // Each of these backtracked for 6 to 20 s or more on these inputs (the ways a client could
    // stall every other request); the linear-time engine takes milliseconds.
    const yaml = [
      'rules:',
      '  - name: globs',
      '    match: { path: ["/**/a/**/a/**/a/**/b", "/*a*a*a*a*a*a*b"] }',
      '    fault: { type: reset }',
      '  - name: by-header',
      '    match: { headers: { x-env: { regex: "^(\\\\w|\\\\d)*$" } } }',
      '    fault: { type: reset }',
      '  - name: query',
      '    match: { query: { q: { regex: "^(a|aa)*$" } } }',
      '    fault: { type: reset }',
    ].join('\n');
    const engine = createRuleEngine({ profile: parseProfile(yaml, null) });
    const facts = { method: 'GET', query: null, headers: {}, clientKey: 'c', websocket: false };
    const now = { now: Date.now() };
    const t0 = performance.now();
    expect(engine.decide({ ...facts, path: `/${'a/'.repeat(2000)}c` }, now).faults).toEqual([]);
    expect(engine.decide({ ...facts, path: `/${'a'.repeat(3000)}c` }, now).faults).toEqual([]);
    expect(engine.decide({ ...facts, path: '/x', headers: { 'x-env': `${'1'.repeat(5000)}!` } }, now).faults).toEqual([]);
    expect(engine.decide({ ...facts, path: '/x', query: `q=${'a'.repeat(5000)}b` }, now).faults).toEqual([]);
    // Still matching what they should.
    expect(engine.decide({ ...facts, path: '/x/a/y/a/a/b' }, now).faults.map((f) => f.rule)).toEqual(['globs']);
    expect(engine.decide({ ...facts, path: '/x', headers: { 'x-env': 'abc123' } }, now).faults.map((f) => f.rule)).toEqual(['by-header']);
    // Seconds to minutes each before; a wide bound for a busy machine.
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it.runIf(LINEAR_ENGINE)('counted repeats above what the engine takes in one quantifier are split, matching exactly the same strings', () => {
    const cases = ['^[0-9a-f]{32}$', '^.{0,64}$', '^Bearer [A-Za-z0-9._-]{20,}$', '(ab){17}', '^(?<n>ab){20}x', 'x{3}(?:y|z){16,40}?q', '\\u0041{20}', '[\\]{}]{18}', 'a{2}{', '^\\d{3}-\\d{4}$', '\\18{16}', '\\08{3}x', '^(?:(?<byte>[0-9a-f]{2}):){16}$', '^(?:[a-z0-9]{1,20}\\.){1,4}example\\.com$', 'a{,3}'];
    const rnd = prng(9);
    for (const src of cases) {
      expect(linearProblem(src), src).toBeNull();
      const a = new RegExp(src);
      const b = new RegExp(linearForm(src));
      const alphabet = ['a', 'b', 'x', 'y', 'z', 'q', '0', '9', 'f', 'A', ']', '{', '}', '-', '.', 'Bearer ', 'ab'];
      for (let k = 0; k < 400; k++) {
        const s = Array.from({ length: Math.floor(rnd() * 60) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
        expect(b.test(s), `${src} on ${s}`).toBe(a.test(s));
      }
      for (const s of ['a'.repeat(32), 'f'.repeat(32), `Bearer ${'x'.repeat(25)}`, 'ab'.repeat(17), `${'ab'.repeat(20)}x`, `xxx${'y'.repeat(20)}q`, 'A'.repeat(20), ']'.repeat(18), '123-4567']) {
        expect(b.test(s), `${src} on ${s}`).toBe(a.test(s));
      }
    }
    expect(linearForm('^\\d{3}-\\d{2,3}$')).toBe('^(?:\\d)(?:\\d)(?:\\d)-(?:\\d)(?:\\d)(?:\\d)?$');
    // Copies never merge with their neighbours; {0} is the empty string; \c without a letter is a backslash, then c.
    for (const [src, yes, no] of [['\\x4{2}', 'x44', 'D'], ['\\0{1}1', '\u00001', '\u0001'], ['\\x4z{0}1', 'x41', 'A'], ['\\c{2}', '\\cc', '\\c\\c']] as const) {
      expect(new RegExp(src).test(yes), src).toBe(true);
      expect(new RegExp(linearForm(src)).test(yes), src).toBe(true);
      expect(new RegExp(linearForm(src)).test(no), src).toBe(new RegExp(src).test(no));
    }
    // And a runaway match in such a regex is bounded too.
    const engine = createRuleEngine({ profile: parseProfile('rules:\n  - name: r\n    match: { headers: { x-id: { regex: "^(\\\\w|\\\\d){0,60}$" } } }\n    fault: { type: reset }', null) });
    const t0 = performance.now();
    expect(engine.decide({ method: 'GET', path: '/', query: null, headers: { 'x-id': `${'1'.repeat(60)}!` }, clientKey: 'c', websocket: false }, { now: Date.now() }).faults).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it.runIf(LINEAR_ENGINE)('a regex that cannot run in linear time (lookaround, backreference) is refused at load, with why', () => {
    expect(linearProblem('^okhttp/\\d+')).toBeNull();
    for (const src of ['^(?=.*a).*$', '(?<!x)y', '^(a)\\1$', '(?<n>a)\\k<n>', '^(a){16}\\1$', '(?<n>a){16}\\k<n>']) expect(linearProblem(src), src).toMatch(/lookaround .* or a backreference/);
    // A count in the thousands would be written out past any sensible size: refused at once, not built.
    const t0 = performance.now();
    expect(linearProblem('^a{4294967295}$')).toMatch(new RegExp(`more than ${MAX_LINEAR_FORM} characters; use \\* or \\+ or a smaller count`));
    expect(linearProblem('a{0,10000000}')).toMatch(/a range of more than 64 counts .* use \* or \+/);
    expect(linearProblem('.{0,1000}curl')).toMatch(/\.\{0,1000\}curl as \.\*curl/);
    expect(linearProblem('.{0,64}curl')).toBeNull();
    expect(linearProblem('[0-9a-f]{2000}')).toMatch(new RegExp(`more than ${MAX_LINEAR_FORM} characters`));
    // Ranges that each pass but together would make the linear engine's pass slow.
    expect(linearProblem(`${'.{0,64}x'.repeat(24)}z`)).toMatch(/more than \d+ characters/);
    expect(performance.now() - t0).toBeLessThan(1000);
    try {
      parseProfile('rules:\n  - name: r\n    match: { headers: { x-env: { regex: "^(?!prod).*" } } }\n    fault: { type: reset }', 'p.yaml');
      expect.unreachable();
    } catch (err) {
      expect((err as ProfileError).message).toMatch(/p\.yaml:3.*rules\[0\]\.match\.headers\.x-env\.regex.*lookaround/s);
    }
  });
});
