/**
 * A profile whose seed changed (hot reload, PUT /profile, setProfile) starts that seed's stream, as
 * a fresh start with it would; one with the same seed goes on with the stream in use; a --seed
 * keeps its stream whatever the profiles say. The recording's `profile` events carry the seed in
 * use, so a recording says which stream decided what came after.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../src/record/schema.js';
import { createRuleEngine, parseProfile, type RuleEngine } from '../../src/rules/index.js';
import { readRecords, request, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';
import { api, startAdminProxy } from '../admin/admin-helpers.js';

const T0 = 1_700_000_000_000;

const profile = (seed: number | null, description = 'coin'): string =>
  `name: seedy\ndescription: ${description}\n${seed === null ? '' : `seed: ${seed}\n`}rules:\n  - name: coin\n    probability: 0.5\n    fault: { type: http-error, status: 503 }\n`;

const FACTS = { method: 'GET', path: '/x', query: null, headers: {}, clientKey: 'c', websocket: false } as const;

function pattern(engine: RuleEngine, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) {
    const d = engine.decide(FACTS, { now: T0 });
    engine.settle(d, { status: 200, outcome: null });
    s += d.faults.length > 0 ? 'E' : '.';
  }
  return s;
}

const engineFor = (text: string, seed?: number): RuleEngine =>
  createRuleEngine({ profile: parseProfile(text, null), now: () => T0, ...(seed === undefined ? {} : { seed }) });

describe('the seed of a new profile', () => {
  it('a changed seed starts that seed\'s stream, as a fresh start with it would', () => {
    const e = engineFor(profile(1));
    pattern(e, 10);
    e.setProfile(parseProfile(profile(999), null));
    expect(e.seed).toBe(999);
    expect(pattern(e, 64)).toBe(pattern(engineFor(profile(999)), 64));
    // And back: seed 1's stream from its start.
    e.setProfile(parseProfile(profile(1), null));
    expect(pattern(e, 64)).toBe(pattern(engineFor(profile(1)), 64));
  });

  it('the same seed (or none, meaning 1, after 1) goes on with the stream in use', () => {
    const e = engineFor(profile(1));
    const first = pattern(e, 10);
    e.setProfile(parseProfile(profile(1, 'edited'), null));
    const rest = pattern(e, 54);
    e.setProfile(parseProfile(profile(null, 'no seed'), null));
    const more = pattern(e, 10);
    expect(first + rest + more).toBe(pattern(engineFor(profile(1)), 74));
  });

  it('--seed wins: a profile\'s seed changing does not restart its stream', () => {
    const e = engineFor(profile(1), 42);
    const first = pattern(e, 10);
    e.setProfile(parseProfile(profile(999), null));
    expect(e.seed).toBe(42);
    expect(first + pattern(e, 54)).toBe(pattern(engineFor(profile(3), 42), 64));
  });
});

describe('the seed through the proxy', () => {
  const statuses = async (url: string, n: number): Promise<string> => {
    let s = '';
    for (let i = 0; i < n; i++) s += (await request(`${url}/x${i}`)).status === 503 ? 'E' : '.';
    return s;
  };

  it('a hot reload from seed 1 to 999: the next requests get seed 999\'s faults and the recording says 999', async () => {
    const upstream = await startUpstream((_req, res) => res.end('ok'));
    const fresh = await startTestProxy({ target: upstream.url, profile: parseProfile(profile(999), null) });
    const want = await statuses(fresh.url, 24);

    const dir = tempDir();
    const file = path.join(dir, 'seedy.yaml');
    const rec = path.join(dir, 'rec.ndjson');
    fs.writeFileSync(file, profile(1));
    const proxy = await startTestProxy({ target: upstream.url, profile: file, record: rec });
    await statuses(proxy.url, 7);
    fs.writeFileSync(file, profile(999));
    await waitFor(() => proxy.profile.seed === 999, 4000);
    expect(proxy.engine.seed).toBe(999);
    expect(await statuses(proxy.url, 24)).toBe(want);

    await proxy.close();
    const events = readRecords(rec).filter((r): r is EventRecord => r.type === 'event' && r.event === 'profile');
    expect(events.map((e) => e.detail.seed)).toEqual([999]);
  });

  it('PUT /profile with another seed: GET /profile and the decisions agree', async () => {
    const { proxy: freshProxy } = await startAdminProxy({ profile: parseProfile(profile(999), null) });
    const want = await statuses(freshProxy.url, 24);
    const { admin, proxy } = await startAdminProxy({ profile: parseProfile(profile(1), null) });
    await statuses(proxy.url, 5);
    expect((await api(admin, 'PUT', '/profile', { body: profile(999) })).json).toMatchObject({ seed: 999 });
    expect((await api(admin, 'GET', '/profile')).json).toMatchObject({ seed: 999 });
    expect(await statuses(proxy.url, 24)).toBe(want);
  });
});
