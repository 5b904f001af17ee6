/**
 * The built-in ws-reconnect-storm says what its rules do: during a storm half of all WebSocket
 * upgrades are refused, a client's first connection as much as its reconnects (the rule has no
 * retriesOnly: clients that share a client key would look like hedges to it and slip through).
 */
import { describe, expect, it } from 'vitest';
import type { RequestFacts } from '../../src/faults/types.js';
import { createRuleEngine, loadProfile } from '../../src/rules/index.js';

const T0 = 1_700_000_000_000;

describe('ws-reconnect-storm', () => {
  it('refuses about half of the first connections opened during a storm, as its description says', async () => {
    const profile = await loadProfile('ws-reconnect-storm');
    const clock = { t: T0 };
    const engine = createRuleEngine({ profile, now: () => clock.t });
    clock.t = T0 + 12_000; // 2 s into the first storm
    const n = 2000;
    let refused = 0;
    for (let i = 0; i < n; i++) {
      // Every client is new: its first upgrade, not a reconnect.
      const facts: RequestFacts = { method: 'GET', path: '/ws', query: null, headers: {}, clientKey: `client-${i}`, websocket: true };
      const d = engine.decide(facts, { now: clock.t });
      if (d.faults.some((f) => f.type === 'ws-reject')) refused++;
    }
    expect(Math.abs(refused - n / 2)).toBeLessThan(4 * Math.sqrt(n / 4));
    expect(profile.description).toMatch(/half of all upgrade attempts during a storm are refused/);
    expect(profile.description).toMatch(/first connections as much as reconnects/);
    expect(profile.description).not.toMatch(/half of the reconnect attempts are refused/);
  });
});
