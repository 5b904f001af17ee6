/**
 * No pattern in a profile can stall the proxy: header and query regexes that backtrack too long
 * finish on V8's linear-time engine, those it cannot run (lookaround, backreferences) are refused
 * at load, and path globs compile to regexes it can run. Globs keep picomatch's meaning, checked
 * against it on generated globs and paths.
 */
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { globRegExp, LINEAR_ENGINE, linearProblem, MAX_GLOB_EXPANSIONS } from '../../src/rules/linear.js';
import { compilePaths } from '../../src/rules/match.js';
import { ProfileError } from '../../src/errors.js';
import { createRuleEngine, parseProfile } from '../../src/rules/index.js';
import { prng } from '../fixtures/make-fixtures.js';

describe('globs', () => {
  it('mean what picomatch (dot: true) made them mean, on generated globs and paths', () => {
    const rnd = prng(5);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const segments = ['a', 'b', 'ab', '*', '**', 'a*', '*b', '[ab]', '{a,b}', '{a,bb}*', 'x[0-9]', '*a*', 'a{b,c/d}', '[^a]b'];
    const names = ['a', 'b', 'ab', 'ba', 'bb', 'x1', 'c', 'd', 'aab', 'cb'];
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

  it('refuse more brace expansions than a profile needs', () => {
    expect(() => globRegExp('{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}')).toThrow(new RegExp(`more than ${MAX_GLOB_EXPANSIONS}`));
    expect(() => parseProfile('rules:\n  - name: r\n    match: { path: "/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}/{a,b}" }\n    fault: { type: reset }', 'p.yaml')).toThrow(ProfileError);
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

  it.runIf(LINEAR_ENGINE)('a regex that cannot run in linear time (lookaround, backreference) is refused at load, with why', () => {
    expect(linearProblem('^okhttp/\\d+')).toBeNull();
    for (const src of ['^(?=.*a).*$', '(?<!x)y', '^(a)\\1$', '(?<n>a)\\k<n>']) expect(linearProblem(src)).toMatch(/cannot run in linear time/);
    try {
      parseProfile('rules:\n  - name: r\n    match: { headers: { x-env: { regex: "^(?!prod).*" } } }\n    fault: { type: reset }', 'p.yaml');
      expect.unreachable();
    } catch (err) {
      expect((err as ProfileError).message).toMatch(/p\.yaml:3.*rules\[0\]\.match\.headers\.x-env\.regex.*lookaround/s);
    }
  });
});
