/**
 * Ad-hoc rules and profile rules share one name space: a profile whose rule has an ad-hoc rule's
 * name is refused (the running one stays); a TTL rule that ran out is gone for removeFault too;
 * the header pseudo-rule is not patchable.
 */
import { describe, expect, it } from 'vitest';
import { AftershockError } from '../../src/errors.js';
import { createRuleEngine, parseProfile } from '../../src/rules/index.js';
import { RuleNameTakenError } from '../../src/rules/engine.js';

const P1 = 'name: one\nrules:\n  - name: r\n    fault: { type: http-error, status: 503 }\n';
const CLASH = 'name: two\nrules:\n  - name: adh\n    fault: { type: http-error, status: 502 }\n';
const PHASE_CLASH = `name: three
phases:
  - name: p1
    duration: 10s
    rules:
      - name: adh
        fault: { type: http-error, status: 500 }
`;

function setup(): { engine: ReturnType<typeof createRuleEngine>; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const engine = createRuleEngine({ profile: parseProfile(P1, null), now: () => clock.t });
  return { engine, clock };
}

describe('ad-hoc rule names', () => {
  it('refuses a profile (top-level or phase rule) named like an ad-hoc rule and keeps the running one', () => {
    const { engine } = setup();
    engine.addFault({ name: 'adh', fault: { type: 'http-error', status: 500 } });
    for (const text of [CLASH, PHASE_CLASH]) {
      let err: unknown;
      try {
        engine.setProfile(parseProfile(text, null));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RuleNameTakenError);
      expect((err as RuleNameTakenError).names).toEqual(['adh']);
      expect((err as RuleNameTakenError).problems[0]?.message).toMatch(/"adh" is taken by an ad-hoc rule; DELETE \/faults\/adh first/);
      expect(() => engine.checkProfile(parseProfile(text, null))).toThrow(RuleNameTakenError);
      expect(engine.profile.name).toBe('one');
    }
    expect(engine.stats().map((s) => `${s.name}${s.adHoc ? ' (ad-hoc)' : ''}`)).toEqual(['adh (ad-hoc)', 'r']);
    expect(engine.removeFault('adh')).toBe(true);
    engine.setProfile(parseProfile(CLASH, null));
    expect(engine.profile.name).toBe('two');
  });

  it('an expired TTL rule blocks no profile and is not removable', () => {
    const { engine, clock } = setup();
    engine.addFault({ name: 'adh', fault: { type: 'http-error', status: 500 } }, 1000);
    clock.t += 1000;
    expect(engine.removeFault('adh')).toBe(false);
    engine.addFault({ name: 'adh', fault: { type: 'http-error', status: 500 } }, 1000);
    clock.t += 1500;
    engine.setProfile(parseProfile(CLASH, null));
    expect(engine.profile.name).toBe('two');
  });

  it('a TTL rule still running is removed once', () => {
    const { engine, clock } = setup();
    engine.addFault({ name: 't', fault: { type: 'http-error', status: 500 } }, 1000);
    clock.t += 999;
    expect(engine.removeFault('t')).toBe(true);
    expect(engine.removeFault('t')).toBe(false);
  });

  it('the header pseudo-rule cannot be patched', () => {
    const engine = createRuleEngine({ profile: parseProfile('name: h\nheaderFaults: true\nrules: []\n', null) });
    expect(() => engine.patchRule('header', { enabled: false })).toThrow(AftershockError);
    expect(() => engine.patchRule('header', { enabled: false })).toThrow(/cannot be patched; set headerFaults: false/);
    expect(engine.stats().find((s) => s.name === 'header')?.enabled).toBe(true);
  });
});
