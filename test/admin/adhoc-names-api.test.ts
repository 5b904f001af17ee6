/**
 * Names of ad-hoc faults through the control API: generated names count only the names really
 * generated (adhoc-1, adhoc-2, ... with no gaps for named or refused faults, and none taken twice);
 * a profile refused because a rule has an ad-hoc fault's name says on which line that rule's name is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecords, request, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';
import { api, captureLog, startAdminProxy } from './admin-helpers.js';

const FAULT = { fault: { type: 'http-error', status: 500 } };

const CLASH = `name: clash
description: a rule named like an ad-hoc fault
rules:
  - name: fine
    fault: { type: http-error, status: 502 }
  - match: { path: /x }
    name: adh
    fault: { type: http-error, status: 503 }
phases:
  - name: p1
    duration: 10s
    rules:
      - fault: { type: reset }
        name: adh2
`;

describe('ad-hoc fault names', () => {
  it('generated names are adhoc-1, adhoc-2, ... whatever was added named or refused in between', async () => {
    const { admin } = await startAdminProxy();
    const names: string[] = [];
    const add = async (body: Record<string, unknown>): Promise<number> => {
      const r = await api(admin, 'POST', '/faults', { body });
      if (r.status === 201) names.push(r.json.name);
      return r.status;
    };
    expect(await add({ name: 'mine', ...FAULT })).toBe(201);
    expect(await add(FAULT)).toBe(201);
    expect(await add({ fault: { type: 'http-error', status: 42 } })).toBe(422);
    expect(await add({ name: 'mine', ...FAULT })).toBe(409);
    expect(await add({ name: 'adhoc-3', ...FAULT })).toBe(201);
    expect(await add(FAULT)).toBe(201);
    expect(await add(FAULT)).toBe(201);
    expect(names).toEqual(['mine', 'adhoc-1', 'adhoc-3', 'adhoc-2', 'adhoc-4']);
  });

  it('PUT /profile refused for a taken name gives the line of that rule\'s name (top-level and phase rules)', async () => {
    const { admin } = await startAdminProxy();
    for (const name of ['adh', 'adh2']) expect((await api(admin, 'POST', '/faults', { body: { name, ...FAULT } })).status).toBe(201);
    const r = await api(admin, 'PUT', '/profile', { body: CLASH });
    expect(r.status).toBe(422);
    expect(r.json.error).toBe('rule-name-taken');
    expect(r.json.problems.map((p: { path: string; line: number | null }) => `${p.line} ${p.path}`)).toEqual(['7 rules[1].name', '14 phases[0].rules[0].name']);
  });

  it('a hot-reloaded file refused for a taken name is logged with the file and the line', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'clash.yaml');
    fs.writeFileSync(file, 'name: v1\nrules: []\n');
    const log = captureLog();
    const { admin, proxy } = await startAdminProxy({ profile: file, logger: log.logger });
    expect((await api(admin, 'POST', '/faults', { body: { name: 'adh', ...FAULT } })).status).toBe(201);
    fs.writeFileSync(file, CLASH);
    await waitFor(() => log.text().includes('profile change rejected'), 4000);
    expect(log.text()).toContain(`${file}:7 rules[1].name: \\"adh\\" is taken by an ad-hoc rule`);
    expect(proxy.profile.name).toBe('v1');
  });

  it('a fault whose TTL ran out is recorded as removed at its expiry (with no request to notice it) and frees its name; fault-added says what it matched and injected', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { admin } = await startAdminProxy({ record: file });
    const body = { name: 'brief', match: { path: '/v1/**', headers: { authorization: 'Bearer s3cret' } }, fault: { type: 'http-error', status: 503 }, ttl: '300ms' };
    expect((await api(admin, 'POST', '/faults', { body })).status).toBe(201);
    const events = (): Array<{ event: string; ts: number; detail: Record<string, unknown> }> =>
      readRecords(file).filter((r) => r.type === 'event') as unknown as Array<{ event: string; ts: number; detail: Record<string, unknown> }>;
    // No request comes: the engine lets it go on its own tick and the recording says so.
    await waitFor(() => {
      return events().some((e) => e.event === 'fault-removed');
    }, 3000);
    const added = events().find((e) => e.event === 'fault-added');
    const removed = events().find((e) => e.event === 'fault-removed');
    expect(added?.detail).toMatchObject({ rule: 'brief', type: 'http-error', ttlMs: 300, match: { path: ['/v1/**'], headers: { authorization: '[redacted]' } }, fault: { type: 'http-error', status: 503 } });
    expect(JSON.stringify(added)).not.toContain('s3cret');
    expect(removed?.detail).toEqual({ rule: 'brief', reason: 'ttl' });
    expect(removed?.ts).toBe(added?.detail.expiresAt);
    // Its name is free again at once (it answered 409, then DELETE answered 404).
    expect((await api(admin, 'POST', '/faults', { body: { name: 'brief', ...FAULT } })).status).toBe(201);
    expect((await api(admin, 'DELETE', '/faults/brief')).status).toBe(200);
    await waitFor(() => {
      return events().filter((e) => e.event === 'fault-removed').length === 2;
    }, 3000);
    expect(events().filter((e) => e.event === 'fault-removed')[1]?.detail).toEqual({ rule: 'brief', reason: 'removed' });
  });

  it("a name the profile's own rule has: 409 says so, with no DELETE hint that would answer 404", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.yaml');
    fs.writeFileSync(file, 'name: p\ndescription: one rule\nrules:\n  - name: errors\n    fault: { type: http-error, status: 502 }\n    probability: 0\n');
    const { admin } = await startAdminProxy({ profile: file });
    const r = await api(admin, 'POST', '/faults', { body: { name: 'errors', ...FAULT } });
    expect(r.status).toBe(409);
    expect(r.json.message).toMatch(/the profile has a rule named "errors"; pick another name/);
    expect(r.json.message).not.toMatch(/DELETE/);
    expect((await api(admin, 'POST', '/faults', { body: { name: 'mine', ...FAULT } })).status).toBe(201);
    const again = await api(admin, 'POST', '/faults', { body: { name: 'mine', ...FAULT } });
    expect(again.json.message).toMatch(/DELETE \/faults\/mine first/);
  });

  it('a TTL running out during the shutdown drain is recorded; engine.addFault called directly records neither its add nor its expiry; times are whole milliseconds', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 900));
    const proxy = await startTestProxy({ target: up.url, record: file, admin: false, drainTimeout: '5s' });
    const added = proxy.addFault({ name: 'brief', fault: { type: 'latency', delay: '1ms' }, match: { path: '/none' } }, 300);
    expect(Number.isInteger(added.expiresAt)).toBe(true);
    proxy.engine.addFault({ name: 'direct', fault: { type: 'latency', delay: '1ms' }, match: { path: '/none' } }, 100);
    const slow = request(`${proxy.url}/slow`);
    await new Promise((r) => setTimeout(r, 100));
    await proxy.close(); // the drain waits for /slow, past brief's expiry
    expect((await slow).status).toBe(200);
    const events = readRecords(file).filter((r) => r.type === 'event') as unknown as Array<{ event: string; detail: Record<string, unknown> }>;
    const faults = events.filter((e) => e.event.startsWith('fault-')).map((e) => `${e.event} ${String(e.detail.rule)} ${String(e.detail.reason ?? '')}`.trim());
    expect(faults).toEqual(['fault-added brief', 'fault-removed brief ttl']);
  });
});
