/**
 * Property-based tests (fast-check): path globs against a small reference implementation, header
 * and query matching against a direct reading of the rules, and the parser — junk never throws
 * anything but a ProfileError, and valid generated profiles round-trip through YAML and JSON.
 */
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ProfileError } from '../../src/errors.js';
import { faults } from '../../src/faults/index.js';
import { parseProfile } from '../../src/rules/index.js';
import { compileMatch, compilePaths, matches, MatchScratch, parseQuery } from '../../src/rules/match.js';
import { matchSchema } from '../../src/rules/schema.js';

// ---------------------------------------------------------------- globs

/** Reference: `**` spans zero or more whole segments; `*` matches any run of characters within one. */
function refGlob(glob: string, path: string): boolean {
  const g = glob.split('/').slice(1);
  const p = path.split('/').slice(1);
  const seg = (pat: string, s: string): boolean => new RegExp('^' + pat.split('*').map((x) => x.replace(/[.+^${}()|[\]\\-]/g, '\\$&')).join('[^/]*') + '$').test(s);
  const go = (i: number, j: number): boolean => {
    if (i === g.length) return j === p.length;
    if (g[i] === '**') {
      for (let k = j; k <= p.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < p.length && seg(g[i] as string, p[j] as string) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

const letters = fc.constantFrom('a', 'b', 'c', '-', '_');
const word = fc.array(letters, { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
const globSegment = fc.oneof(word, fc.constant('*'), fc.constant('**'), word.map((w) => w + '*'), word.map((w) => '*' + w));
const globArb = fc
  .array(globSegment, { minLength: 1, maxLength: 4 })
  // `**` next to `**` is the same as one; keep the reference simple.
  .filter((segs) => !segs.some((s, i) => s === '**' && segs[i + 1] === '**'))
  .map((segs) => '/' + segs.join('/'));
const pathArb = fc.array(word, { minLength: 1, maxLength: 5 }).map((segs) => '/' + segs.join('/'));

describe('path globs (property)', () => {
  it('agree with the reference on * and **', () => {
    fc.assert(
      fc.property(globArb, pathArb, (glob, path) => {
        const test = compilePaths([glob]);
        const got = test === null ? true : test(path);
        expect(got).toBe(refGlob(glob, path));
      }),
      { numRuns: 3000 },
    );
  });

  it('a list matches when any glob matches; a glob without wildcards is an exact path', () => {
    fc.assert(
      fc.property(fc.array(globArb, { minLength: 1, maxLength: 3 }), pathArb, (globs, path) => {
        const test = compilePaths(globs);
        expect(test === null ? true : test(path)).toBe(globs.some((g) => refGlob(g, path)));
        expect(compilePaths([path])?.(path)).toBe(true);
        // A trailing slash matches a literal path as it matches a glob; nothing longer does.
        expect(compilePaths([path])?.(path + '/')).toBe(true);
        expect(compilePaths([path])?.(path + '/x')).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------- headers and query

type Spec = string | { regex: string } | { present: boolean };
const valueArb = fc.constantFrom('x', 'y', 'xy', '', 'x y');
const specArb: fc.Arbitrary<Spec> = fc.oneof(valueArb, fc.constantFrom({ regex: '^x' }, { regex: 'y$' }, { regex: '^$' }), fc.boolean().map((present) => ({ present })));
const nameArb = fc.constantFrom('x-a', 'x-b', 'x-c');

function refValue(spec: Spec, values: readonly string[] | undefined): boolean {
  if (typeof spec === 'object' && 'present' in spec) return (values !== undefined) === spec.present;
  if (values === undefined) return false;
  if (typeof spec === 'string') return values.some((v) => v === spec);
  return values.some((v) => new RegExp(spec.regex).test(v));
}

describe('header and query matching (property)', () => {
  it('headers: every listed header must satisfy its matcher; lists are joined with ", "', () => {
    fc.assert(
      fc.property(fc.dictionary(nameArb, specArb, { maxKeys: 3 }), fc.dictionary(nameArb, fc.oneof(valueArb, fc.array(valueArb, { minLength: 2, maxLength: 2 })), { maxKeys: 3 }), (spec, headers) => {
        const m = compileMatch(matchSchema.parse({ headers: spec }), { websocketStage: false, salt: 's' });
        const f = { method: 'GET', path: '/', query: null, headers, clientKey: 'c', websocket: false };
        const expected = Object.entries(spec).every(([k, s]) => {
          const v = headers[k];
          return refValue(s, v === undefined ? undefined : [Array.isArray(v) ? v.join(', ') : v]);
        });
        expect(matches(m, f, new MatchScratch())).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('query: a key matches when any of its values does; values are URL-decoded', () => {
    const keyArb = fc.constantFrom('a', 'b', 'c d');
    fc.assert(
      fc.property(fc.dictionary(keyArb, specArb, { maxKeys: 3 }), fc.array(fc.tuple(keyArb, valueArb), { maxLength: 5 }), (spec, pairs) => {
        const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/%20/g, '+')}`).join('&');
        const m = compileMatch(matchSchema.parse({ query: spec }), { websocketStage: false, salt: 's' });
        const scratch = new MatchScratch();
        scratch.reset(query === '' ? null : query);
        const f = { method: 'GET', path: '/', query, headers: {}, clientKey: 'c', websocket: false };
        const expected = Object.entries(spec).every(([k, s]) => {
          const values = pairs.filter(([pk]) => pk === k).map(([, v]) => v);
          return refValue(s, values.length === 0 ? undefined : values);
        });
        expect(matches(m, f, scratch)).toBe(expected);
        expect([...parseQuery(query || 'z').keys()].length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------- parser

function onlyProfileErrors(text: string): void {
  try {
    parseProfile(text, 'junk.yaml');
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    expect(err.problems.length).toBeGreaterThan(0);
    for (const p of err.problems) {
      expect(typeof p.message).toBe('string');
      expect(p.message.length).toBeGreaterThan(0);
      expect(p.line === null || (Number.isInteger(p.line) && p.line >= 1)).toBe(true);
    }
  }
}

const keys = ['name', 'rules', 'fault', 'type', 'match', 'path', 'method', 'when', 'every', 'for', 'after', 'phases', 'duration', 'probability', 'status', 'headers', 'cohort', 'overrides', 'seed', 'firstAttempts', 'ramp'];
const types = faults.map((f) => f.type);
const junkValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(...types, '/v1/**', '2s', '10 parsecs', 503, -1, 1.5, null, true, '', '5xx', '{', '*'),
    fc.string(),
    fc.double(),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 5 })), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('parseProfile (property)', () => {
  it('never throws anything but a ProfileError on junk text', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), onlyProfileErrors), { numRuns: 1500 });
  });

  it('never throws anything but a ProfileError on junk structures, as YAML or JSON', () => {
    fc.assert(
      fc.property(junkValue, (v) => {
        onlyProfileErrors(JSON.stringify(v) ?? 'null');
        onlyProfileErrors(stringify(v));
      }),
      { numRuns: 1500 },
    );
  });

  it('never throws anything but a ProfileError on near-valid profiles', () => {
    const nearRule = fc.record({ name: fc.option(fc.constantFrom('a', 'b', 'bad name', 'header'), { nil: undefined }), match: fc.option(junkValue, { nil: undefined }), fault: fc.oneof(junkValue, fc.constantFrom(...faults.map((f) => f.example))), when: fc.option(junkValue, { nil: undefined }) }, { requiredKeys: ['fault'] });
    fc.assert(
      fc.property(fc.record({ name: fc.constant('n'), rules: fc.array(nearRule, { maxLength: 4 }), phases: fc.option(fc.array(fc.record({ name: fc.constantFrom('p', 'q'), duration: fc.constantFrom('1s', 0, 'x'), rules: fc.array(nearRule, { maxLength: 2 }) }), { maxLength: 2 }), { nil: undefined }) }), (p) => {
        onlyProfileErrors(stringify(p));
      }),
      { numRuns: 1500 },
    );
  });

  const ruleArb = fc.record({
    fault: fc.constantFrom(...faults.map((f) => f.example)),
    probability: fc.double({ min: 0, max: 1, noNaN: true }),
    method: fc.subarray(['GET', 'POST', 'PUT', 'DELETE'], { minLength: 1 }),
    path: fc.subarray(['/v1/**', '/health', '/a/*/b', '/x/{y,z}'], { minLength: 1 }),
    after: fc.integer({ min: 0, max: 100_000 }),
  });

  it('valid generated profiles parse, and YAML and JSON give the same compiled config', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 6 }), fc.integer({ min: 0, max: 2 ** 31 }), (rules, seed) => {
        const profile = {
          name: 'generated',
          seed,
          rules: rules.map((r, i) => {
            const ws = faults.find((f) => f.type === r.fault.type)?.stage === 'websocket';
            return {
              name: `r${i}`,
              probability: r.probability,
              match: ws ? { path: r.path } : { method: r.method, path: r.path },
              when: { after: `${r.after}ms` },
              fault: r.fault,
            };
          }),
        };
        const fromYaml = parseProfile(stringify(profile), 'g.yaml');
        const fromJson = parseProfile(JSON.stringify(profile, null, 2), 'g.json');
        expect(fromYaml.config).toEqual(fromJson.config);
        expect(fromYaml.seed).toBe(seed);
        expect(fromYaml.rules.map((r) => [r.name, r.type, r.probability])).toEqual(profile.rules.map((r) => [r.name, r.fault.type, r.probability]));
        expect(fromYaml.rules.map((r) => r.schedule?.after ?? 0)).toEqual(rules.map((r) => r.after));
        // Re-serialising the compiled config and parsing it again is stable.
        const again = parseProfile(stringify(fromYaml.config), 'again.yaml');
        expect(again.config).toEqual(fromYaml.config);
      }),
      { numRuns: 300 },
    );
  });
});
