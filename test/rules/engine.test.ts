/**
 * The engine's decisions, driven with injected time: probability within statistical bounds,
 * determinism by seed, sticky cohorts, schedules, phases, ramps, retry-aware options, maxActive,
 * header faults, ad-hoc faults, patches, the combination order.
 */
import { describe, expect, it } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestFacts } from '../../src/faults/types.js';
import { createRuleEngine, EMPTY_DECISION, parseProfile, type RuleEngine } from '../../src/rules/index.js';
import type { Decision } from '../../src/rules/types.js';

const T0 = 1_700_000_000_000;

function facts(over: Partial<RequestFacts> & { headers?: IncomingHttpHeaders } = {}): RequestFacts {
  return { method: 'GET', path: '/v1/things', query: null, headers: {}, clientKey: 'client-1', websocket: false, ...over };
}

function engineFor(yaml: string, opts: { seed?: number; clock?: { t: number } } = {}): { engine: RuleEngine; clock: { t: number } } {
  const clock = opts.clock ?? { t: T0 };
  const engine = createRuleEngine({ profile: parseProfile(yaml, null), ...(opts.seed === undefined ? {} : { seed: opts.seed }), now: () => clock.t });
  return { engine, clock };
}

function types(d: Decision): string[] {
  return d.faults.map((f) => `${f.rule}/${f.type}`);
}

/** decide + settle with the given status, at clock time. */
function run(engine: RuleEngine, clock: { t: number }, f: RequestFacts, status: number | null = 200): Decision {
  const d = engine.decide(f, { now: clock.t });
  engine.settle(d, { status, outcome: null });
  return d;
}

describe('probability and determinism', () => {
  it('injects within 4 sigma of p over 10k decisions', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    probability: 0.2\n    fault: { type: http-error }', { seed: 11 });
    const n = 10_000;
    let hits = 0;
    for (let i = 0; i < n; i++) hits += run(engine, clock, facts()).faults.length;
    const sigma = Math.sqrt(n * 0.2 * 0.8);
    expect(Math.abs(hits - n * 0.2)).toBeLessThan(4 * sigma);
    expect(engine.stats()[0]).toMatchObject({ name: 'r', matched: n, injected: hits });
  });

  it('same seed gives the same sequence; another seed a different one; the profile seed is the default', () => {
    const yaml = 'seed: 5\nrules:\n  - name: r\n    probability: 0.5\n    fault: { type: latency, distribution: exponential, mean: 100ms }';
    const seq = (seed?: number): string => {
      const { engine, clock } = engineFor(yaml, seed === undefined ? {} : { seed });
      let s = '';
      for (let i = 0; i < 200; i++) s += run(engine, clock, facts()).faults.length;
      return s + ':' + engine.random().toFixed(12);
    };
    expect(seq(42)).toBe(seq(42));
    expect(seq(42)).not.toBe(seq(43));
    expect(seq()).toBe(seq(5));
  });

  it('draws nothing for p = 1 or p = 0, and nothing when no rule matches', () => {
    const { engine, clock } = engineFor('rules:\n  - name: a\n    fault: { type: reset }\n  - name: b\n    probability: 0\n    match: { path: /b }\n    fault: { type: close }', { seed: 3 });
    const ref = createRuleEngine({ profile: parseProfile('rules: []', null), seed: 3 });
    run(engine, clock, facts());
    run(engine, clock, facts({ path: '/b' }));
    expect(engine.random()).toBe(ref.random());
  });

  it('returns the one frozen empty decision when nothing applies', () => {
    const { engine, clock } = engineFor('rules:\n  - match: { path: /only }\n    fault: { type: reset }');
    const d = engine.decide(facts(), { now: clock.t });
    expect(d).toBe(EMPTY_DECISION);
    expect(Object.isFrozen(d)).toBe(true);
    engine.settle(d, { status: 200, outcome: null });
  });

  it('startScenario reseeds: a scenario replays the same faults', () => {
    const { engine, clock } = engineFor('rules:\n  - probability: 0.5\n    fault: { type: reset }', { seed: 9 });
    const pattern = (): string => {
      let s = '';
      for (let i = 0; i < 64; i++) s += run(engine, clock, facts()).faults.length;
      return s;
    };
    engine.startScenario(clock.t);
    const a = pattern();
    engine.startScenario(clock.t);
    expect(pattern()).toBe(a);
  });
});

describe('matching', () => {
  const yaml = [
    'rules:',
    '  - name: sends',
    '    match: { method: [post, PUT], path: /v1/messages/** }',
    '    fault: { type: http-error, status: 503 }',
    '  - name: api-key',
    '    match: { headers: { x-api-key: { present: true }, x-env: { regex: "^stag" } }, query: { debug: "1" } }',
    '    fault: { type: close }',
    '  - name: vip',
    '    match: { clients: [alice, bob] }',
    '    fault: { type: latency, delay: 5ms }',
  ].join('\n');

  it('matches method, globs, headers, query and clients', () => {
    const { engine, clock } = engineFor(yaml);
    expect(types(run(engine, clock, facts({ method: 'POST', path: '/v1/messages' })))).toEqual(['sends/http-error']);
    expect(types(run(engine, clock, facts({ method: 'PUT', path: '/v1/messages/a/b' })))).toEqual(['sends/http-error']);
    expect(types(run(engine, clock, facts({ method: 'GET', path: '/v1/messages' })))).toEqual([]);
    expect(types(run(engine, clock, facts({ method: 'POST', path: '/v1/messagesX' })))).toEqual([]);
    const h = { 'x-api-key': 'k', 'x-env': 'staging' };
    expect(types(run(engine, clock, facts({ headers: h, query: 'a=2&debug=1' })))).toEqual(['api-key/close']);
    expect(types(run(engine, clock, facts({ headers: h, query: 'debug=2' })))).toEqual([]);
    expect(types(run(engine, clock, facts({ headers: { 'x-env': 'staging' }, query: 'debug=1' })))).toEqual([]);
    expect(types(run(engine, clock, facts({ headers: { ...h, 'x-env': 'prod' }, query: 'debug=1' })))).toEqual([]);
    expect(types(run(engine, clock, facts({ clientKey: 'bob' })))).toEqual(['vip/latency']);
  });

  it('keeps WebSocket faults for upgrades and HTTP faults for HTTP', () => {
    const { engine, clock } = engineFor('rules:\n  - name: h\n    fault: { type: reset }\n  - name: w\n    fault: { type: ws-drop, fraction: 1 }');
    expect(types(run(engine, clock, facts()))).toEqual(['h/reset']);
    expect(types(run(engine, clock, facts({ websocket: true }), 101))).toEqual(['w/ws-drop']);
  });

  it('cohort is sticky per client and near its fraction', () => {
    const { engine, clock } = engineFor('rules:\n  - name: c\n    match: { cohort: 0.3 }\n    fault: { type: reset }');
    const hit = new Map<string, boolean>();
    for (let i = 0; i < 4000; i++) hit.set(`client-${i}`, run(engine, clock, facts({ clientKey: `client-${i}` })).faults.length === 1);
    const share = [...hit.values()].filter(Boolean).length / hit.size;
    expect(share).toBeGreaterThan(0.3 - 4 * Math.sqrt((0.3 * 0.7) / 4000));
    expect(share).toBeLessThan(0.3 + 4 * Math.sqrt((0.3 * 0.7) / 4000));
    for (let i = 0; i < 500; i++) {
      const key = `client-${i}`;
      expect(run(engine, clock, facts({ clientKey: key })).faults.length === 1).toBe(hit.get(key));
    }
    // A fresh engine, the same profile: the same clients.
    const again = engineFor('rules:\n  - name: c\n    match: { cohort: 0.3 }\n    fault: { type: reset }');
    for (let i = 0; i < 200; i++) expect(run(again.engine, again.clock, facts({ clientKey: `client-${i}` })).faults.length === 1).toBe(hit.get(`client-${i}`));
  });

  it('with a cohortSalt, a smaller cohort is inside a larger one (gated recovery)', () => {
    const { engine, clock } = engineFor('cohortSalt: s\nrules:\n  - name: big\n    match: { cohort: 0.6 }\n    fault: { type: latency, delay: 1 }\n  - name: small\n    match: { cohort: 0.2 }\n    fault: { type: reset }');
    for (let i = 0; i < 1000; i++) {
      const t = types(run(engine, clock, facts({ clientKey: `k${i}` })));
      if (t.includes('small/reset')) expect(t).toContain('big/latency');
    }
  });
});

describe('time: schedules, ramps, phases', () => {
  it('after/for switches on and off on time', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    when: { after: 10s, for: 5s }\n    fault: { type: reset }');
    const at = (s: number): number => {
      clock.t = T0 + s * 1000;
      return run(engine, clock, facts()).faults.length;
    };
    expect([at(0), at(9.999), at(10), at(14.9), at(15), at(100)]).toEqual([0, 0, 1, 1, 0, 0]);
  });

  it('every/for flaps', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    when: { after: 2s, every: 20s, for: 5s }\n    fault: { type: reset }');
    const on: number[] = [];
    for (let s = 0; s < 60; s++) {
      clock.t = T0 + s * 1000;
      if (run(engine, clock, facts()).faults.length === 1) on.push(s);
    }
    expect(on).toEqual([2, 3, 4, 5, 6, 22, 23, 24, 25, 26, 42, 43, 44, 45, 46]);
    clock.t = T0 + 3000;
    expect(engine.stats()[0]?.active).toBe(true);
    clock.t = T0 + 8000;
    expect(engine.stats()[0]?.active).toBe(false);
  });

  it('ramp raises the probability over time', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    when: { ramp: { from: 0, to: 1, over: 100s } }\n    fault: { type: reset }', { seed: 1 });
    const rate = (s: number): number => {
      clock.t = T0 + s * 1000;
      let n = 0;
      for (let i = 0; i < 2000; i++) n += run(engine, clock, facts()).faults.length;
      return n / 2000;
    };
    expect(rate(0)).toBe(0);
    expect(Math.abs(rate(25) - 0.25)).toBeLessThan(0.05);
    expect(Math.abs(rate(75) - 0.75)).toBeLessThan(0.05);
    expect(rate(100)).toBe(1);
    expect(rate(500)).toBe(1);
  });

  const phased = [
    'rules:',
    '  - name: base',
    '    probability: 0',
    '    fault: { type: http-error, status: 500 }',
    'phases:',
    '  - name: healthy',
    '    duration: 10s',
    '  - name: degrading',
    '    duration: 10s',
    '    rules:',
    '      - name: slow',
    '        when: { after: 5s }',
    '        fault: { type: latency, delay: 100ms }',
    '  - name: outage',
    '    duration: 10s',
    '    overrides: { base: { probability: 1 } }',
  ].join('\n');

  it('phases run in order from the engine start, then stop (the top-level rules as written)', () => {
    const { engine, clock } = engineFor(phased);
    const at = (s: number): string[] => {
      clock.t = T0 + s * 1000;
      return types(run(engine, clock, facts()));
    };
    expect(at(1)).toEqual([]);
    expect(engine.phase(clock.t)?.name).toBe('healthy');
    expect(at(12)).toEqual([]); // phase rule's own schedule counts from its phase start
    expect(at(16)).toEqual(['slow/latency']);
    expect(engine.phase(clock.t)).toMatchObject({ name: 'degrading', startedAt: T0 + 10_000, endsAt: T0 + 20_000 });
    expect(at(21)).toEqual(['base/http-error']);
    expect(engine.stats().find((s) => s.name === 'base')).toMatchObject({ probability: 1, active: true });
    expect(engine.stats().find((s) => s.name === 'slow')).toMatchObject({ active: false });
    expect(at(31)).toEqual([]);
    expect(engine.phase(clock.t)).toBeNull();
  });

  it('rule(name) of a rule retuned per phase is the running phase\'s (GET /rules shows the fault that runs)', () => {
    const { engine, clock } = engineFor(
      ['phases:', '  - name: a', '    duration: 10s', '    rules:', '      - name: shared', '        fault: { type: http-error, status: 501 }', '  - name: b', '    duration: 10s', '  - name: c', '    duration: 10s', '    rules:', '      - name: shared', '        fault: { type: http-error, status: 502 }'].join('\n'),
    );
    clock.t = T0 + 1000;
    expect(engine.rule('shared')?.fault).toMatchObject({ status: 501 });
    clock.t = T0 + 25_000;
    expect(engine.rule('shared')?.fault).toMatchObject({ status: 502 });
    // Between the two (phase b) and after the last phase: the first definition, as before.
    clock.t = T0 + 15_000;
    expect(engine.rule('shared')?.fault).toMatchObject({ status: 501 });
  });

  it('loop repeats the timeline; a scenario restarts it; stopScenario goes back to the engine clock', () => {
    const { engine, clock } = engineFor(phased + '\nloop: true');
    clock.t = T0 + 46_000;
    expect(types(run(engine, clock, facts()))).toEqual(['slow/latency']);
    clock.t = T0 + 51_000;
    expect(types(run(engine, clock, facts()))).toEqual(['base/http-error']);
    engine.startScenario(clock.t);
    expect(engine.scenarioStartedAt).toBe(clock.t);
    expect(engine.phase(clock.t)?.name).toBe('healthy');
    expect(types(run(engine, clock, facts()))).toEqual([]);
    engine.stopScenario();
    expect(engine.phase(clock.t)?.name).toBe('outage');
  });
});

describe('combination order', () => {
  it('delay first, one request fault (the first), then every response fault in rule order', () => {
    const { engine, clock } = engineFor(
      [
        'rules:',
        '  - name: throttle',
        '    fault: { type: throttle, bytesPerSecond: 1000 }',
        '  - name: limit',
        '    fault: { type: rate-limit, rate: 1000 }',
        '  - name: err',
        '    fault: { type: http-error }',
        '  - name: slow',
        '    fault: { type: latency, delay: 10ms }',
        '  - name: stall',
        '    fault: { type: latency, delay: 10ms, at: response }',
        '  - name: lose',
        '    fault: { type: lost-response }',
      ].join('\n'),
    );
    const d = run(engine, clock, facts());
    expect(types(d)).toEqual(['slow/latency', 'limit/rate-limit', 'throttle/throttle', 'stall/latency', 'lose/lost-response']);
    expect(d.faults.map((f) => f.stage)).toEqual(['delay', 'request', 'response', 'response', 'response']);
    expect(engine.stats().find((s) => s.name === 'err')).toMatchObject({ matched: 1, injected: 0 });
  });

  it('match.status gates a response fault on the upstream status; it counts when the exchange labels it (acted), not when picked', () => {
    const { engine, clock } = engineFor('rules:\n  - name: lose-ok\n    match: { status: [2xx, 304] }\n    fault: { type: lost-response }');
    const d = run(engine, clock, facts());
    const inst = d.faults[0]?.instance;
    const ctx = {} as never;
    expect(inst?.onResponse?.(ctx, { statusCode: 500, headers: {} })).toBeNull();
    expect(engine.stats()[0]?.injected).toBe(0);
    expect(inst?.onResponse?.(ctx, { statusCode: 201, headers: {} })).toEqual({ drop: true });
    expect(inst?.onResponse?.(ctx, { statusCode: 304, headers: {} })).toEqual({ drop: true });
    expect(engine.stats()[0]).toMatchObject({ matched: 1, injected: 0 });
    d.faults[0]?.acted?.();
    expect(engine.stats()[0]).toMatchObject({ matched: 1, injected: 1 });
  });

  it('maxActive caps concurrently active faults until they are settled', () => {
    const { engine, clock } = engineFor('maxActive: 2\nrules:\n  - name: h\n    fault: { type: hang }');
    const a = engine.decide(facts(), { now: clock.t });
    const b = engine.decide(facts(), { now: clock.t });
    const c = engine.decide(facts(), { now: clock.t });
    expect([a, b, c].map((d) => d.faults.length)).toEqual([1, 1, 0]);
    engine.settle(a, { status: null, outcome: 'client-abort' });
    engine.settle(a, { status: null, outcome: 'client-abort' }); // twice: counted once
    expect(engine.decide(facts(), { now: clock.t }).faults.length).toBe(1);
    expect(engine.decide(facts(), { now: clock.t }).faults.length).toBe(0);
  });
});

describe('retry-aware rules', () => {
  it('firstAttempts fails exactly N attempts of each logical request, then lets it through', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    firstAttempts: 2\n    fault: { type: http-error, status: 503 }');
    const attempt = (f: RequestFacts): boolean => {
      clock.t += 100;
      const d = engine.decide(f, { now: clock.t });
      const injected = d.faults.length === 1;
      engine.settle(d, { status: injected ? 503 : 200, outcome: null });
      return injected;
    };
    const send = facts({ method: 'POST', path: '/v1/messages' });
    expect([attempt(send), attempt(send), attempt(send)]).toEqual([true, true, false]);
    // After a success, the same fingerprint is a new logical request.
    expect([attempt(send), attempt(send), attempt(send)]).toEqual([true, true, false]);
    // Another client or another path is its own logical request.
    expect(attempt({ ...send, clientKey: 'other' })).toBe(true);
    expect(attempt({ ...send, path: '/v1/other' })).toBe(true);
    // Cache-busting query keys do not make a new request; other keys do.
    const q = (query: string): RequestFacts => ({ ...send, path: '/v1/q', query });
    expect([attempt(q('a=1&t=1')), attempt(q('t=2&a=1')), attempt(q('a=1&_=3'))]).toEqual([true, true, false]);
  });

  it('a failure older than the window starts a new logical request', () => {
    const clock = { t: T0 };
    const engine = createRuleEngine({ profile: parseProfile('rules:\n  - firstAttempts: 1\n    fault: { type: http-error }', null), now: () => clock.t, attemptWindowMs: 1000 });
    const try1 = engine.decide(facts(), { now: clock.t });
    engine.settle(try1, { status: 503, outcome: null });
    clock.t += 500;
    const retry = engine.decide(facts(), { now: clock.t });
    expect(retry.faults).toHaveLength(0);
    engine.settle(retry, { status: 502, outcome: null });
    clock.t += 5000;
    expect(engine.decide(facts(), { now: clock.t }).faults).toHaveLength(1);
  });

  it('groups by explicit ids and honours retry-count headers', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    firstAttempts: 1\n    fault: { type: http-error }');
    const a = engine.decide(facts({ headers: { 'idempotency-key': 'k1' }, query: 'nonce=1' }), { now: clock.t });
    engine.settle(a, { status: 503, outcome: null });
    const b = engine.decide(facts({ headers: { 'idempotency-key': 'k1' }, query: 'page=2' }), { now: clock.t });
    expect(b.faults).toHaveLength(0);
    engine.settle(b, { status: 200, outcome: null });
    expect(run(engine, clock, facts({ path: '/fresh', headers: { 'amz-sdk-request': 'attempt=2; max=3' } })).faults).toHaveLength(0);
    expect(run(engine, clock, facts({ path: '/fresh2', headers: { 'x-envoy-attempt-count': '2' } })).faults).toHaveLength(0);
    expect(run(engine, clock, facts({ path: '/fresh3', headers: { 'grpc-previous-rpc-attempts': '0' } })).faults).toHaveLength(1);
  });

  it('retriesOnly injects only on attempts that are retries', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    retriesOnly: true\n    fault: { type: reset }');
    const first = engine.decide(facts(), { now: clock.t });
    expect(first.faults).toHaveLength(0);
    engine.settle(first, { status: 503, outcome: null }); // a real 503 from the upstream
    clock.t += 1000;
    const retry = engine.decide(facts(), { now: clock.t });
    expect(retry.faults).toHaveLength(1);
    engine.settle(retry, { status: null, outcome: 'reset' });
    clock.t += 1000;
    expect(run(engine, clock, facts()).faults).toHaveLength(1);
    // A success ends the chain: the next attempt is a first attempt again.
    expect(run(engine, clock, facts()).faults).toHaveLength(0);
  });

  it('the attempt tracker stays bounded', () => {
    const clock = { t: T0 };
    const engine = createRuleEngine({ profile: parseProfile('rules:\n  - firstAttempts: 1\n    fault: { type: http-error }', null), now: () => clock.t, maxChains: 500 });
    for (let i = 0; i < 5000; i++) run(engine, clock, facts({ path: `/p/${i}` }), 503);
    expect(engine.trackedChains).toBeLessThanOrEqual(500);
  });
});

describe('header-triggered faults', () => {
  it('apply when the profile opts in, validated by the fault schema; invalid ones are counted', () => {
    const { engine, clock } = engineFor('headerFaults: true\nrules: []');
    const d = run(engine, clock, facts({ headers: { 'x-aftershock-fault': 'http-error;status=429;retryAfter=2s' } }));
    expect(types(d)).toEqual(['header/http-error']);
    const responded: unknown[] = [];
    void d.faults[0]?.instance.onRequest?.({ respond: (...a: unknown[]) => responded.push(a) } as never);
    const [status, headers] = responded[0] as [number, Record<string, string>];
    expect(status).toBe(429);
    expect(headers['retry-after']).toBe('2');
    expect(types(run(engine, clock, facts({ headers: { 'x-aftershock-fault': 'latency;delay=50ms' } })))).toEqual(['header/latency']);
    for (const bad of ['nope', 'http-error;status=99', 'http-error;status', 'ws-drop;fraction=1', '']) {
      expect(types(run(engine, clock, facts({ headers: { 'x-aftershock-fault': bad } })))).toEqual([]);
    }
    expect(engine.invalidHeaderFaults).toBe(5);
    expect(engine.stats()[0]).toMatchObject({ name: 'header', matched: 7, injected: 2 });
  });

  it('are ignored when the profile does not opt in', () => {
    const { engine, clock } = engineFor('rules: []');
    expect(run(engine, clock, facts({ headers: { 'x-aftershock-fault': 'reset' } }))).toBe(EMPTY_DECISION);
  });
});

describe('control plane', () => {
  it('patchRule changes enabled and probability; an unknown name is ERR_RULE_NOT_FOUND, a bad value ERR_BAD_OPTION (not "invalid profile")', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    fault: { type: reset }');
    expect(engine.patchRule('r', { enabled: false })).toMatchObject({ name: 'r', enabled: false });
    expect(run(engine, clock, facts()).faults).toHaveLength(0);
    engine.patchRule('r', { enabled: true, probability: 0 });
    expect(run(engine, clock, facts()).faults).toHaveLength(0);
    expect(() => engine.patchRule('nope', { enabled: true })).toThrow(expect.objectContaining({ code: 'ERR_RULE_NOT_FOUND', message: expect.stringMatching(/no rule named "nope"/) }));
    expect(() => engine.patchRule('r', { probability: 3 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_OPTION', message: expect.stringMatching(/probability must be a number from 0 to 1/) }));
    // addFault: a taken name and a bad ttl say so, and an invalid rule is an invalid fault.
    expect(() => engine.addFault({ name: 'r', fault: { type: 'reset' } })).toThrow(expect.objectContaining({ code: 'ERR_RULE_EXISTS' }));
    expect(() => engine.addFault({ fault: { type: 'reset' } }, -1)).toThrow(expect.objectContaining({ code: 'ERR_BAD_OPTION' }));
    expect(() => engine.addFault({ fault: { type: 'http-error', status: 99 } })).toThrow(/^invalid fault: 1 problem/);
    // A new profile clears patches.
    engine.setProfile(parseProfile('rules:\n  - name: r\n    fault: { type: reset }', null));
    expect(run(engine, clock, facts()).faults).toHaveLength(1);
  });

  it('addFault adds a validated ad-hoc rule that expires after its TTL', () => {
    const { engine, clock } = engineFor('rules:\n  - name: base\n    fault: { type: latency, delay: 1ms }');
    const s = engine.addFault({ name: 'now', match: { path: '/v1/**' }, fault: { type: 'http-error', status: 502 } }, 5000);
    expect(s).toMatchObject({ name: 'now', type: 'http-error', adHoc: true, expiresAt: T0 + 5000, active: true });
    // Ad-hoc rules come before the profile's rules.
    expect(types(run(engine, clock, facts()))).toEqual(['base/latency', 'now/http-error']);
    expect(engine.stats().map((x) => x.name)).toEqual(['now', 'base']);
    clock.t = T0 + 5000;
    expect(types(run(engine, clock, facts()))).toEqual(['base/latency']);
    expect(engine.stats().map((x) => x.name)).toEqual(['base']);
    expect(() => engine.addFault({ fault: { type: 'http-error', status: 99 } })).toThrow(/fault.status: must be 200-599/);
    expect(() => engine.addFault({ name: 'base', fault: { type: 'reset' } })).toThrow(/exists/);
    expect(() => engine.addFault({ fault: { type: 'reset' } }, -1)).toThrow(/ttl/);
    const anon = engine.addFault({ fault: { type: 'reset' }, match: { path: '/x' } });
    expect(anon.name).toMatch(/^adhoc-/);
    expect(engine.removeFault(anon.name)).toBe(true);
    expect(engine.removeFault(anon.name)).toBe(false);
    expect(engine.removeFault('base')).toBe(false);
  });

  it('setProfile swaps atomically; in-flight decisions keep their instances; counters survive by name', () => {
    const { engine, clock } = engineFor('rules:\n  - name: r\n    fault: { type: http-error, status: 500 }');
    const before = engine.decide(facts(), { now: clock.t });
    engine.setProfile(parseProfile('name: next\nrules:\n  - name: r\n    fault: { type: http-error, status: 502 }', null));
    expect(engine.profile.name).toBe('next');
    const after = engine.decide(facts(), { now: clock.t });
    expect(before.faults[0]?.instance).not.toBe(after.faults[0]?.instance);
    const status: number[] = [];
    const ctx = { respond: (s: number) => status.push(s) } as never;
    void before.faults[0]?.instance.onRequest?.(ctx);
    void after.faults[0]?.instance.onRequest?.(ctx);
    expect(status).toEqual([500, 502]);
    engine.settle(before, { status: 500, outcome: null });
    engine.settle(after, { status: 502, outcome: null });
    expect(engine.stats()[0]).toMatchObject({ matched: 2, injected: 2 });
    engine.resetCounters();
    expect(engine.stats()[0]).toMatchObject({ matched: 0, injected: 0 });
  });
});
