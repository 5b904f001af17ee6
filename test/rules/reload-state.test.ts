/**
 * A reload keeps the state of a rule whose name and fault definition did not change: a
 * rate-limit's buckets and a capacity's slots and queue carry over (an edited description must not
 * refill a bucket, nor let a second request into a capacity of one). A rule whose fault definition
 * changed starts with fresh state.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseProfile } from '../../src/rules/index.js';
import { request, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';

const rateLimit = (description: string, rate = 0.05): string =>
  `name: rl\ndescription: ${description}\nrules:\n  - name: rl\n    fault: { type: rate-limit, rate: ${rate}, burst: 1, per: global }\n`;

const capacity = (description: string, concurrency = 1): string =>
  `name: cap\ndescription: ${description}\nrules:\n  - name: cap\n    match: { path: /work/** }\n    fault: { type: capacity, concurrency: ${concurrency} }\n`;

describe('fault state across reloads', () => {
  it('hot reload of a description: the rate-limit bucket stays empty; a changed rate starts a fresh one', async () => {
    const upstream = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const file = path.join(dir, 'rl.yaml');
    fs.writeFileSync(file, rateLimit('v1'));
    const proxy = await startTestProxy({ target: upstream.url, profile: file });
    expect((await request(`${proxy.url}/a`)).status).toBe(200);
    expect((await request(`${proxy.url}/a`)).status).toBe(429);

    fs.writeFileSync(file, rateLimit('v2'));
    await waitFor(() => proxy.profile.description === 'v2', 4000);
    expect((await request(`${proxy.url}/a`)).status).toBe(429);

    fs.writeFileSync(file, rateLimit('v3', 0.06));
    await waitFor(() => proxy.profile.description === 'v3', 4000);
    expect((await request(`${proxy.url}/a`)).status).toBe(200);
    expect((await request(`${proxy.url}/a`)).status).toBe(429);
  });

  it('a capacity of one held by a request in flight stays held across a reload; its end frees the slot', async () => {
    const held: ServerResponse[] = [];
    let arrived = 0;
    const upstream = await startUpstream((req, res) => {
      if (req.url === '/work/hold') {
        arrived++;
        held.push(res);
        return;
      }
      res.end('ok');
    });
    const proxy = await startTestProxy({ target: upstream.url, profile: parseProfile(capacity('v1'), null) });
    const first = request(`${proxy.url}/work/hold`);
    await waitFor(() => arrived === 1);

    proxy.setProfile(capacity('v2'));
    expect(proxy.profile.description).toBe('v2');
    expect((await request(`${proxy.url}/work/b`)).status).toBe(503);

    (held.shift() as ServerResponse).end('done');
    expect((await first).status).toBe(200);
    expect((await request(`${proxy.url}/work/c`)).status).toBe(200);
    expect(proxy.engine.stats().find((s) => s.name === 'cap')).toMatchObject({ matched: 3 });
  });

  it('the engine keeps a rule\'s instance while its name and fault stay; a changed fault or name gets a new one', () => {
    const instanceOf = (e: ReturnType<typeof createRuleEngine>, name: string): unknown => {
      const d = e.decide({ method: 'GET', path: `/work/x`, query: null, headers: {}, clientKey: 'c', websocket: false }, { now: 0 });
      e.settle(d, { status: 200, outcome: null });
      return d.faults.find((f) => f.rule === name)?.instance;
    };
    const e = createRuleEngine({ profile: parseProfile(capacity('v1'), null), now: () => 0 });
    const a = instanceOf(e, 'cap');
    expect(a).toBeDefined();
    e.setProfile(parseProfile(capacity('v2').replace('match: { path: /work/** }', 'match: { path: /work/** }\n    probability: 1'), null));
    expect(instanceOf(e, 'cap')).toBe(a);
    e.setProfile(parseProfile(capacity('v3', 2), null));
    const b = instanceOf(e, 'cap');
    expect(b).not.toBe(a);
    e.setProfile(parseProfile(capacity('v4', 2).replace('name: cap\n    match', 'name: cap2\n    match'), null));
    expect(instanceOf(e, 'cap2')).not.toBe(b);
  });

  it('one phase rule in two phases with the same fault is one instance; with another fault, two', () => {
    const phases = (second: number): string => `name: ph
phases:
  - name: p1
    duration: 10s
    rules:
      - name: lim
        fault: { type: rate-limit, rate: 1, per: global }
  - name: p2
    duration: 10s
    rules:
      - name: lim
        probability: 1
        fault: { per: global, type: rate-limit, rate: ${second} }
`;
    for (const [second, same] of [[1, true], [2, false]] as const) {
      const e = createRuleEngine({ profile: parseProfile(phases(second), null), now: () => 0 });
      const at = (t: number): unknown => {
        const d = e.decide({ method: 'GET', path: '/', query: null, headers: {}, clientKey: 'c', websocket: false }, { now: t });
        e.settle(d, { status: 200, outcome: null });
        return d.faults[0]?.instance;
      };
      const p1 = at(1000);
      expect(p1).toBeDefined();
      expect(at(15_000) === p1).toBe(same);
    }
  });
});
