/**
 * A profile swapped through PUT /profile under load: every request is answered, each one sees
 * exactly one profile (never rules of both), and the recording has one record per request.
 */
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HttpRecord } from '../../src/record/schema.js';
import { onCleanup, readRecords, request, tempDir } from '../helpers.js';
import { api, startAdminProxy } from './admin-helpers.js';

/** Two rules per profile: a delay, then an error; all of A's names start with `a-`, B's with `b-`. */
const profile = (p: 'a' | 'b', status: number): string => `
name: profile-${p}
rules:
  - name: ${p}-delay
    fault:
      type: latency
      delay: 1ms
  - name: ${p}-err
    fault:
      type: http-error
      status: ${status}
`;
const A = profile('a', 503);
const B = profile('b', 429);

describe('PUT /profile under load', () => {
  it('50 clients looping while the profile flips 20 times: all-A or all-B, nothing lost', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { admin, proxy } = await startAdminProxy({ record: file });
    expect((await api(admin, 'PUT', '/profile', { body: A })).status).toBe(200);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    onCleanup(() => agent.destroy());
    let swapping = true;
    const seen = { a: 0, b: 0 };
    const problems: string[] = [];
    let sent = 0;
    const client = async (c: number): Promise<void> => {
      for (let i = 0; swapping || i < 3; i++) {
        sent++;
        const r = await request(`${proxy.url}/c${c}/r${i}`, { agent });
        const label = String(r.headers['x-aftershock-fault'] ?? '');
        if (r.status === 503 && /a-err/.test(label) && !/b-/.test(label)) seen.a++;
        else if (r.status === 429 && /b-err/.test(label) && !/a-/.test(label)) seen.b++;
        else problems.push(`${r.status} ${label}`);
      }
    };
    const clients = Array.from({ length: 50 }, (_, c) => client(c));

    const swaps: number[] = [];
    for (let s = 0; s < 20; s++) {
      await new Promise((r) => setTimeout(r, 10));
      const r = await api(admin, 'PUT', '/profile', { body: s % 2 === 0 ? B : A });
      swaps.push(r.status);
    }
    swapping = false;
    await Promise.all(clients);

    expect(swaps.every((s) => s === 200)).toBe(true);
    expect(problems).toEqual([]);
    expect(seen.a + seen.b).toBe(sent);
    expect(seen.a).toBeGreaterThan(0);
    expect(seen.b).toBeGreaterThan(0);
    expect(proxy.profile.name).toBe('profile-a');

    await proxy.close();
    const records = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(records).toHaveLength(sent);
    for (const r of records) {
      const prefixes = new Set(r.faults.map((f) => f.rule.slice(0, 2)));
      expect(prefixes.size, JSON.stringify(r.faults)).toBe(1);
      expect(r.faults.map((f) => f.type)).toEqual(['latency', 'http-error']);
      expect(r.status).toBe(prefixes.has('a-') ? 503 : 429);
    }
    const profileEvents = readRecords(file).filter((r) => r.type === 'event' && r.event === 'profile');
    expect(profileEvents).toHaveLength(21);
  });

  it('a rejected swap under load changes nothing', async () => {
    const { admin, proxy } = await startAdminProxy();
    await api(admin, 'PUT', '/profile', { body: A });
    const bad = B.replace('status: 429', 'status: 1000');
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => request(`${proxy.url}/x`)),
      api(admin, 'PUT', '/profile', { body: bad }),
      ...Array.from({ length: 20 }, () => request(`${proxy.url}/y`)),
    ]);
    expect(results[20]?.status).toBe(422);
    expect(results.filter((_, i) => i !== 20).every((r) => r.status === 503)).toBe(true);
    expect(proxy.profile.name).toBe('profile-a');
  });
});
