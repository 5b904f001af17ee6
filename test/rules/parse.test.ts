/**
 * Profile parsing: every problem at once, each with its path and line; defaults, freezing, hashes;
 * the built-in profiles.
 */
import { describe, expect, it } from 'vitest';
import { ProfileError, type ProfileProblem } from '../../src/errors.js';
import { listBuiltinProfiles, loadProfile, parseProfile } from '../../src/rules/index.js';
import { faultTypes } from '../../src/faults/index.js';

function problemsOf(text: string, source: string | null = 'p.yaml'): ProfileProblem[] {
  try {
    parseProfile(text, source);
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return [...(err as ProfileError).problems];
  }
  throw new Error('expected a ProfileError');
}

function one(text: string, path: string): ProfileProblem {
  const found = problemsOf(text).filter((p) => p.path === path);
  expect(found, `problems at ${path}: ${JSON.stringify(problemsOf(text))}`).toHaveLength(1);
  return found[0] as ProfileProblem;
}

describe('parseProfile: problems with path and line', () => {
  it('puts a bad status at its own line with a clear message', () => {
    const text = [
      'name: t', //                                  1
      'rules:', //                                   2
      '  - name: ok', //                             3
      '    fault: { type: http-error, status: 503 }', // 4
      '  - name: bad', //                            5
      '    match: { path: /v1/** }', //              6
      '    fault:', //                               7
      '      type: http-error', //                   8
      '      status: 700', //                        9
    ].join('\n');
    const p = one(text, 'rules[1].fault.status');
    expect(p).toEqual({ file: 'p.yaml', line: 9, path: 'rules[1].fault.status', message: 'must be 200-599' });
  });

  it('reports every problem in one error, in file order', () => {
    const text = [
      'name: t',
      'seed: -1', // 2
      'rules:',
      '  - name: a',
      '    probability: 2', // 5
      '    fault: { type: nope }', // 6
      '  - name: a', // 7 duplicate
      '    when: { after: soon }', // 8
      '    fault: { type: latency, delay: 10 parsecs }', // 9
      '  - match: { path: "v1/*", methdo: GET }', // 10
      '    fault: { type: reset, extra: 1 }', // 11
    ].join('\n');
    const problems = problemsOf(text);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(byPath['seed']?.line).toBe(2);
    expect(byPath['rules[0].probability']).toMatchObject({ line: 5, message: 'must be a number from 0 to 1 (did you mean 0.02? fractions are written 0 to 1, not as percentages)' });
    expect(byPath['rules[0].fault.type']).toMatchObject({ line: 6 });
    expect(byPath['rules[0].fault.type']?.message).toContain('unknown fault type "nope"');
    for (const t of faultTypes) expect(byPath['rules[0].fault.type']?.message).toContain(t);
    expect(byPath['rules[1].name']).toMatchObject({ line: 7, message: 'duplicate rule name "a" (also rules[0])' });
    expect(byPath['rules[1].when.after']).toMatchObject({ line: 8 });
    expect(byPath['rules[1].when.after']?.message).toMatch(/duration like 250ms/);
    expect(byPath['rules[1].fault.delay']).toMatchObject({ line: 9 });
    expect(byPath['rules[2].match.path']?.message).toMatch(/must start with "\/"/);
    expect(byPath['rules[2].match.methdo']).toMatchObject({ line: 10 });
    expect(byPath['rules[2].match.methdo']?.message).toMatch(/did you mean method\?/);
    expect(byPath['rules[2].fault.extra']).toMatchObject({ line: 11, message: 'unknown key; this fault takes no options' });
    const lines = problems.map((p) => p.line ?? 0);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
    try {
      parseProfile(text, 'p.yaml');
    } catch (err) {
      expect((err as ProfileError).message).toContain('p.yaml:5 rules[0].probability: must be a number from 0 to 1');
      expect((err as ProfileError).code).toBe('ERR_PROFILE_INVALID');
    }
  });

  it('points a missing key at its parent', () => {
    const text = ['name: t', 'rules:', '  - name: no-fault', '    probability: 0.5', '  - name: lognormal', '    fault:', '      type: latency', '      distribution: lognormal', '      median: 100ms'].join('\n');
    expect(one(text, 'rules[0].fault')).toMatchObject({ line: 3 });
    expect(one(text, 'rules[0].fault').message).toMatch(/^required/);
    expect(one(text, 'rules[1].fault.p99')).toMatchObject({ line: 7, message: 'required for distribution: lognormal' });
  });

  it('refuses unknown keys everywhere, naming the known ones', () => {
    expect(one('name: t\ncolour: red\nrules: []', 'colour').message).toMatch(/^unknown key; expected one of: name, description, seed/);
    expect(one('name: t\nrules:\n  - fault: { type: reset }\n    when: { aftr: 1s }', 'rules[0].when.aftr').message).toMatch(/did you mean after/);
    expect(one('name: t\nrules:\n  - fault: { type: reset }\n    match: { headers: { x-a: { regexp: a } } }', 'rules[0].match.headers.x-a.regexp').message).toMatch(/unknown key/);
  });

  it('checks globs, regexes, statuses and durations', () => {
    const bad = (match: string): string => one(`name: t\nrules:\n  - match: ${match}\n    fault: { type: lost-response }`, problemsOf(`name: t\nrules:\n  - match: ${match}\n    fault: { type: lost-response }`)[0]?.path as string).message;
    expect(bad('{ path: "/a/{b" }')).toMatch(/unclosed/);
    expect(bad('{ path: "/search?q=1" }')).toMatch(/without the query/);
    expect(bad('{ path: "!/admin/**" }')).toMatch(/must start with/);
    expect(bad('{ path: [] }')).toMatch(/at least one/);
    expect(bad('{ headers: { x-a: { regex: "(" } } }')).toMatch(/not a valid regular expression/);
    // Nested repetition: one crafted header would stall the proxy (catastrophic backtracking).
    expect(bad('{ headers: { user-agent: { regex: "(a+)+$" } } }')).toMatch(/exponential time/);
    expect(bad('{ query: { q: { regex: "(.*a){12}" } } }')).toMatch(/exponential time/);
    expect(bad('{ status: [6xx] }')).toMatch(/must be a status/);
    expect(bad('{ status: ["510-500"] }')).toMatch(/must be a status/);
    expect(bad('{ cohort: 0 }')).toMatch(/fraction/);
    expect(bad('{ method: "GET POST" }')).toMatch(/HTTP method/);
    expect(one('name: t\nrules:\n  - fault: { type: hang, duration: -1s }', 'rules[0].fault.duration').message).toMatch(/duration/);
    expect(one('name: t\nrules:\n  - fault: { type: hang, duration: 1d }', 'rules[0].fault.duration').message).toMatch(/duration/);
  });

  it('checks cross-field rules: stages, schedules, overrides, names', () => {
    const ps = problemsOf(
      [
        'name: t',
        'loop: true', // 2: no phases... (phases given below, so fine) -> see separate case
        'rules:',
        '  - name: status-on-request', // 4
        '    match: { status: [5xx] }', // 5
        '    fault: { type: http-error }',
        '  - name: ws-on-http', // 7
        '    match: { websocket: false }', // 8
        '    fault: { type: ws-drop, fraction: 0.5 }',
        '  - name: http-on-ws', // 10
        '    match: { websocket: true }', // 11
        '    fault: { type: reset }',
        '  - name: header', // 13
        '    fault: { type: reset }',
        '  - name: never', // 15
        '    firstAttempts: 1',
        '    retriesOnly: true', // 17
        '    fault: { type: reset }',
        '  - name: flap', // 19
        '    when: { every: 10s, for: 10s }', // 20
        '    fault: { type: reset }',
        'phases:',
        '  - name: p1',
        '    duration: 5s',
        '    overrides: { nosuch: { enabled: false } }', // 25
        '    rules:',
        '      - name: flap', // 27
        '        fault: { type: reset }',
        '      - name: x',
        '        fault: { type: reset }',
        '  - name: p1', // 31
        '    duration: 5s',
        '    rules:',
        '      - name: x',
        '        fault: { type: close }', // 35
      ].join('\n'),
    );
    const at = (path: string): ProfileProblem | undefined => ps.find((p) => p.path === path);
    expect(at('rules[0].match.status')).toMatchObject({ line: 5 });
    expect(at('rules[0].match.status')?.message).toMatch(/only for faults that act on the response/);
    expect(at('rules[1].match.websocket')).toMatchObject({ line: 8 });
    expect(at('rules[2].match.websocket')).toMatchObject({ line: 11 });
    expect(at('rules[3].name')?.message).toMatch(/reserved/);
    expect(at('rules[4].retriesOnly')).toMatchObject({ line: 17 });
    expect(at('rules[5].when.for')).toMatchObject({ line: 20, message: 'must be shorter than every' });
    expect(at('phases[0].overrides.nosuch')).toMatchObject({ line: 25 });
    expect(at('phases[0].rules[0].name')?.message).toMatch(/a top-level rule is named "flap"/);
    expect(at('phases[1].name')?.message).toMatch(/duplicate phase name/);
    expect(at('phases[1].rules[0].fault.type')?.message).toMatch(/one name means one fault type/);
    expect(one('name: t\nloop: true\nrules: []', 'loop').message).toMatch(/only with phases/);
  });

  it("reports for >= every even when another key of the same when is wrong (every problem at once)", () => {
    const ps = problemsOf('name: p\nrules:\n  - name: w\n    when: { every: 5s, for: 10s, after: xx, ramp: { from: 2, over: 0 } }\n    fault: { type: reset }\n');
    const paths = ps.map((p) => p.path).sort();
    expect(paths).toEqual(['rules[0].when.after', 'rules[0].when.for', 'rules[0].when.ramp.from', 'rules[0].when.ramp.over']);
    expect(ps.find((p) => p.path === 'rules[0].when.for')).toMatchObject({ line: 4, message: 'must be shorter than every' });
    // A when that is a list is one problem, not also "every needs for" (a list's every is Array.prototype.every).
    expect(problemsOf('name: p\nrules:\n  - name: w\n    when: [1, 2]\n    fault: { type: reset }\n').map((p) => p.path)).toEqual(['rules[0].when']);
    // A for or every that is itself wrong is reported once, for what is wrong with it.
    expect(problemsOf('name: p\nrules:\n  - name: w\n    when: { every: xx, for: 10s }\n    fault: { type: reset }\n').map((p) => p.path)).toEqual(['rules[0].when.every']);
  });

  it('says a missing phase duration is required, and does not list plain latency among the response faults it refuses', () => {
    expect(one('name: p\nphases:\n  - name: a\n    duration: 10s\n  - name: b\n', 'phases[1].duration').message).toMatch(/^required: a duration like 250ms/);
    const status = one('name: p\nrules:\n  - name: r\n    match: { status: 5xx }\n    fault: { type: latency, delay: 1s }\n', 'rules[0].match.status').message;
    expect(status).toMatch(/latency with at: response\); latency acts before the upstream answers/);
    expect(status).not.toMatch(/\(latency,|, latency,/);
    expect(one('name: p\nrules:\n  - name: r\n    match: { query: { q: { regex: "(a+)+" } } }\n    fault: { type: reset }\n', 'rules[0].match.query.q.regex').message).toMatch(/one request/);
  });

  it('reports YAML syntax errors, duplicate keys, tags, alias bombs and multiple documents', () => {
    expect(problemsOf('name: t\nrules: [\n')[0]?.message).toMatch(/^YAML/);
    expect(problemsOf('name: t\nname: u\nrules: []')[0]).toMatchObject({ line: 2 });
    expect(problemsOf('name: t\nrules: !!js/function "x"')[0]?.message).toMatch(/YAML/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]', 'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]'].join('\n');
    expect(problemsOf(bomb)[0]?.message).toMatch(/alias/i);
    expect(problemsOf('name: t\n---\nname: u\n')[0]?.message).toMatch(/YAML/);
    expect(problemsOf('')[0]?.message).toMatch(/empty/);
    // Not 'a profile has at least a name and rules': the name defaults to the file's; `rules: []` is a valid profile.
    expect(problemsOf('')[0]?.message).toMatch(/rules: \[\]/);
    expect(parseProfile('rules: []', 'quiet.yaml').name).toBe('quiet');
    expect(problemsOf('- 1\n- 2')[0]?.message).toMatch(/must be an object/);
  });

  it('a duplicated key does not hide the other problems: every one is named, in line order', () => {
    const text = ['name: dup', 'rules:', '  - name: x', '    fault: { type: latency, delay: abc }', '  - name: y', '    fault: { type: http-error, status: 503, status: 504 }'].join('\n');
    const problems = problemsOf(text);
    expect(problems.map((p) => [p.line, p.path, p.message.slice(0, 20)])).toEqual([
      [4, 'rules[0].fault.delay', 'must be a duration l'],
      [6, 'rules[1].fault.status', 'duplicate key "statu'],
    ]);
    // A profile whose only problem is the duplicate still fails.
    expect(problemsOf('name: t\nname: u\nrules: []')).toHaveLength(1);
  });

  it('accepts JSON, with lines', () => {
    const p = parseProfile(JSON.stringify({ name: 'j', rules: [{ name: 'r', fault: { type: 'http-error', status: 502 } }] }), 'j.json');
    expect(p.rules[0]?.fault).toMatchObject({ type: 'http-error', status: 502 });
    const json = '{\n  "name": "j",\n  "rules": [\n    { "fault": { "type": "http-error", "status": 99 } }\n  ]\n}';
    expect(one(json, 'rules[0].fault.status')).toMatchObject({ line: 4 });
  });

  it('fills defaults, names rules, freezes, hashes the text', () => {
    const text = 'name: d\nrules:\n  - fault: { type: latency, delay: 2s }\n  - fault: { type: http-error, retryAfter: 1500ms }\n';
    const p = parseProfile(text, null);
    expect(p.name).toBe('d');
    expect(p.source).toBeNull();
    expect(p.seed).toBeNull();
    expect(p.hash).toMatch(/^[0-9a-f]{12}$/);
    expect(parseProfile(text + '\n', null).hash).not.toBe(p.hash);
    expect(p.rules.map((r) => r.name)).toEqual(['latency-1', 'http-error-2']);
    expect(p.rules[0]).toMatchObject({ probability: 1, enabled: true, stage: 'delay', firstAttempts: null, retriesOnly: false });
    expect(p.rules[0]?.fault).toEqual({ type: 'latency', delay: 2000, at: 'request' });
    expect(p.rules[1]?.fault).toEqual({ type: 'http-error', status: 503, retryAfter: '2' });
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.rules)).toBe(true);
    expect(Object.isFrozen(p.rules[0]?.config.match)).toBe(true);
    expect(Object.isFrozen(p.config.rules[0])).toBe(true);
    expect(Object.isFrozen(p.raw)).toBe(true);
    expect(() => {
      (p.rules as unknown as unknown[]).push(1);
    }).toThrow();
    // The name falls back to the file name.
    expect(parseProfile('rules: []', '/tmp/my-chaos.yaml').name).toBe('my-chaos');
  });

  it('validates every fault by its own schema', () => {
    const fault = (f: string): ProfileProblem[] => problemsOf(`name: t\nrules:\n  - fault: ${f}`);
    expect(fault('{ type: latency }')[0]?.message).toMatch(/give a fixed delay/);
    expect(fault('{ type: latency, delay: 1s, distribution: uniform }')[0]?.message).toMatch(/not both/);
    expect(fault('{ type: latency, distribution: lognormal, median: 1s, p99: 500ms }')[0]).toMatchObject({ path: 'rules[0].fault.p99', message: 'must be greater than median' });
    expect(fault('{ type: latency, distribution: uniform, min: 1s, max: 2s, mean: 1s }')[0]).toMatchObject({ path: 'rules[0].fault.mean' });
    expect(fault('{ type: latency, distribution: gamma, mean: 1s }')[0]?.message).toMatch(/uniform, normal, lognormal, exponential, pareto/);
    expect(fault('{ type: corrupt }')[0]?.message).toMatch(/exactly one/);
    expect(fault('{ type: capacity, queue: 3 }')[0]?.message).toMatch(/concurrency/);
    expect(fault('{ type: capacity, concurrency: 1, queueTimeout: 1s }')[0]?.path).toBe('rules[0].fault.queueTimeout');
    expect(fault('{ type: ws-close, code: 1005 }')[0]?.path).toBe('rules[0].fault.code');
    expect(fault('{ type: ws-close, after: 1s, afterMessages: 3 }')[0]?.path).toBe('rules[0].fault.afterMessages');
    expect(fault('{ type: rate-limit, rate: 0 }')[0]?.path).toBe('rules[0].fault.rate');
    expect(fault('{ type: http-error, headers: { "bad header": x } }')[0]?.message).toMatch(/header name/);
    expect(fault('{ type: http-error, retryAfter: tomorrow }')[0]?.message).toMatch(/HTTP-date/);
    expect(fault('{ type: hang, then: explode }')[0]?.message).toMatch(/reset or close/);
    expect(fault('[]')[0]?.message).toMatch(/must be an object with a type/);
    expect(fault('{ status: 503 }')[0]).toMatchObject({ path: 'rules[0].fault.type' });
  });

  it('keeps an HTTP-date Retry-After as written and rounds durations up to seconds', () => {
    const p = parseProfile('rules:\n  - fault: { type: http-error, retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT" }\n  - fault: { type: http-error, retryAfter: 1ms }', null);
    expect(p.rules[0]?.fault.retryAfter).toBe('Wed, 21 Oct 2026 07:28:00 GMT');
    expect(p.rules[1]?.fault.retryAfter).toBe('1');
  });

  it('refuses profiles that are too large', () => {
    expect(problemsOf('name: t\n' + '#'.repeat(1024 * 1024 + 1))[0]?.message).toMatch(/larger than/);
  });
});

describe('built-in profiles', () => {
  const names = listBuiltinProfiles();

  it('include the documented set', () => {
    for (const n of ['passthrough', 'flaky', 'slow-network', 'brownout', 'overload', 'partial-outage', 'flapping', 'ws-reconnect-storm', 'signal-2021']) {
      expect(names).toContain(n);
    }
  });

  it.each(names)('%s validates, is named after its file and describes itself', async (name) => {
    const p = await loadProfile(name);
    expect(p.name).toBe(name);
    expect(p.builtin).toBe(name);
    expect(p.source).toBeNull();
    expect(p.description.length).toBeGreaterThan(60);
  });

  it('signal-2021 fits the demo: fixed seed, about 60 s, outage on every /v1 route and WebSocket', async () => {
    const p = await loadProfile('signal-2021');
    expect(p.seed).not.toBeNull();
    const total = p.phases.reduce((a, ph) => a + ph.duration, 0);
    expect(total).toBeGreaterThanOrEqual(55_000);
    expect(total).toBeLessThanOrEqual(65_000);
    expect(p.loop).toBe(false);
    const outage = p.phases.find((ph) => ph.name === 'outage');
    expect(outage).toBeDefined();
    const http = outage?.rules.find((r) => !r.match.websocket);
    for (const path of ['/v1/messages', '/v1/messages/abc', '/v1/profile']) expect(http?.match.path?.(path)).toBe(true);
    expect(outage?.rules.some((r) => r.match.websocket && r.type === 'ws-reject')).toBe(true);
  });

  it('loadProfile says what to do for an unknown name or a missing file', async () => {
    await expect(loadProfile('no-such-profile')).rejects.toMatchObject({ code: 'ERR_PROFILE_NOT_FOUND', message: expect.stringContaining('built-ins: ') });
    await expect(loadProfile('./missing/file.yaml')).rejects.toMatchObject({ code: 'ERR_PROFILE_NOT_FOUND', message: expect.stringContaining('no such file') });
  });
});

describe('header names ignore case', () => {
  it('a header given twice in a matcher or in an answer (X-Env and x-env) is refused at the second, with its line', () => {
    const problems = problemsOf(
      [
        'name: twins',
        'rules:',
        '  - match:',
        '      headers: { X-Env: staging, x-env: prod }',
        '    fault:',
        '      type: http-error',
        '      status: 503',
        '      headers: { X-A: one, x-a: two }',
      ].join('\n'),
    );
    expect(problems.map((p) => `${p.line} ${p.path}: ${p.message}`)).toEqual([
      '4 rules[0].match.headers.x-env: is X-Env again (header names ignore case): give it once',
      '8 rules[0].fault.headers.x-a: is X-A again (header names ignore case): give it once',
    ]);
  });
});

describe('a glob unquoted in a flow map', () => {
  it('says to quote it', () => {
    const problems = problemsOf(['name: g', 'rules:', '  - match: { path: /a/{x,y}/** }', '    fault: { type: reset }'].join('\n'));
    expect(problems[0]?.message).toMatch(/a path glob with \{ \} or \[ \] inside a \{ \.\.\. \} map must be quoted: path: "\/a\/\{x,y\}\/\*\*"/);
    expect(problems[0]?.line).toBe(3);
  });
});

describe('a misspelled fault type', () => {
  it('names the misspelled key, and suggests the type a near miss meant', () => {
    const at = (fault: string) => problemsOf(['name: t', 'rules:', `  - fault: ${fault}`].join('\n')).map((p) => `${p.path}: ${p.message}`);
    expect(at('{ tpye: http-error, status: 503 }')).toEqual(['rules[0].fault.tpye: unknown key "tpye" (did you mean type?)']);
    expect(at('{ Type: reset }')[0]).toMatch(/rules\[0\]\.fault\.Type: unknown key "Type" \(did you mean type\?\)/);
    expect(at('{ type: http-eror, status: 503 }')[0]).toMatch(/unknown fault type "http-eror" \(did you mean http-error\?\)/);
    expect(at('{ type: http_error, status: 503 }')[0]).toMatch(/\(did you mean http-error\?\)/);
    expect(at('{ status: 503 }')[0]).toMatch(/rules\[0\]\.fault\.type: required: one of/);
  });
});

describe('an alias before its anchor', () => {
  it('is named with its line and path', () => {
    const problems = problemsOf(
      ['name: a', 'rules:', '  - name: one', '    fault: { type: reset }', '  - name: two', '    match: { path: /x }', '    fault: *f', '  - name: three', '    fault: &f { type: http-error, status: 503 }'].join('\n'),
    );
    expect(problems.map((p) => `${p.line} ${p.path}: ${p.message}`)).toEqual(['7 rules[1].fault: YAML: the alias *f comes before its anchor &f: define the anchor first (YAML reads top to bottom)']);
  });
});
