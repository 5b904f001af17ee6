/**
 * The control API and rule names: PATCH of the header pseudo-rule is a 409 that says what to do;
 * a profile (PUT, select, hot reload) whose rule has an ad-hoc rule's name is refused with 422
 * naming the clash while the running profile (and its file watch) stays; DELETE of a TTL fault
 * that ran out is a 404.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../helpers.js';
import { api, captureLog, startAdminProxy } from './admin-helpers.js';

const profile = (name: string, rule: string, status: number): string => `name: ${name}\nrules:\n  - name: ${rule}\n    fault: { type: http-error, status: ${status} }\n`;

describe('rule names in the control API', () => {
  it('PATCH /rules/header answers 409 rule-not-patchable, never profile-invalid', async () => {
    const { admin } = await startAdminProxy();
    expect((await api(admin, 'PUT', '/profile', { body: 'name: h\nheaderFaults: true\nrules: []\n' })).status).toBe(200);
    const r = await api(admin, 'PATCH', '/rules/header', { body: { enabled: false } });
    expect(r.status).toBe(409);
    expect(r.json.error).toBe('rule-not-patchable');
    expect(r.json.message).toMatch(/headerFaults: false/);
    expect((await api(admin, 'GET', '/rules/header')).json.enabled).toBe(true);
  });

  it('PUT /profile and POST /profile/select with a rule named like an ad-hoc rule: 422 rule-name-taken, profile stays', async () => {
    const dir = tempDir();
    const { admin, proxy } = await startAdminProxy();
    expect((await api(admin, 'PUT', '/profile', { body: profile('base', 'r', 503) })).status).toBe(200);
    expect((await api(admin, 'POST', '/faults', { body: { name: 'adh', fault: { type: 'http-error', status: 500 } } })).status).toBe(201);

    const put = await api(admin, 'PUT', '/profile', { body: profile('clash', 'adh', 502) });
    expect(put.status).toBe(422);
    expect(put.json.error).toBe('rule-name-taken');
    expect(put.json.message).toMatch(/"adh" is taken by an ad-hoc rule; DELETE \/faults\/adh first/);
    expect(put.json.names).toEqual(['adh']);
    expect(proxy.profile.name).toBe('base');

    const file = path.join(dir, 'clash.yaml');
    fs.writeFileSync(file, profile('clash', 'adh', 502));
    const sel = await api(admin, 'POST', '/profile/select', { body: { name: file } });
    expect(sel.status).toBe(422);
    expect(sel.json.error).toBe('rule-name-taken');
    expect(proxy.profile.name).toBe('base');

    const rules = (await api(admin, 'GET', '/rules')).json.rules as Array<{ name: string; adHoc: boolean }>;
    expect(rules.map((r) => `${r.name}${r.adHoc ? ' (ad-hoc)' : ''}`)).toEqual(['adh (ad-hoc)', 'r']);

    expect((await api(admin, 'DELETE', '/faults/adh')).status).toBe(200);
    expect((await api(admin, 'PUT', '/profile', { body: profile('clash', 'adh', 502) })).status).toBe(200);
  });

  it('a hot reload to a clashing rule name is logged as rejected and the watch goes on', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'chaos.yaml');
    fs.writeFileSync(file, profile('v1', 'r', 501));
    const log = captureLog();
    const { admin, proxy } = await startAdminProxy({ profile: file, logger: log.logger });
    expect((await api(admin, 'POST', '/faults', { body: { name: 'adh', fault: { type: 'http-error', status: 500 } } })).status).toBe(201);
    fs.writeFileSync(file, profile('v2', 'adh', 502));
    await waitFor(() => log.text().includes('profile change rejected'), 4000);
    expect(log.text()).toMatch(/"adh\\" is taken by an ad-hoc rule/);
    expect(proxy.profile.name).toBe('v1');
    fs.writeFileSync(file, profile('v3', 'other', 503));
    await waitFor(() => proxy.profile.name === 'v3', 4000);
  });

  it('PUT /profile refused for a name clash keeps the file profile\'s watch (the library setProfile too)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'chaos.yaml');
    fs.writeFileSync(file, profile('v1', 'r', 501));
    const { admin, proxy } = await startAdminProxy({ profile: file });
    expect((await api(admin, 'POST', '/faults', { body: { name: 'adh', fault: { type: 'http-error', status: 500 } } })).status).toBe(201);
    expect((await api(admin, 'PUT', '/profile', { body: profile('clash', 'adh', 502) })).status).toBe(422);
    expect(() => proxy.setProfile(profile('clash', 'adh', 502))).toThrow(/taken by an ad-hoc rule/);
    // The file is still watched: an edit applies.
    fs.writeFileSync(file, profile('v2', 'other', 503));
    await waitFor(() => proxy.profile.name === 'v2', 4000);
  });

  it('a file version refused for a name clash applies once the ad-hoc fault is gone (deleted or expired)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'chaos.yaml');
    fs.writeFileSync(file, profile('v1', 'r', 501));
    const { admin, proxy } = await startAdminProxy({ profile: file });
    expect((await api(admin, 'POST', '/faults', { body: { name: 'adh', ttl: '1500ms', fault: { type: 'http-error', status: 500 } } })).status).toBe(201);
    fs.writeFileSync(file, profile('v2', 'adh', 503));
    await new Promise((r) => setTimeout(r, 800));
    expect(proxy.profile.name).toBe('v1'); // refused while the name is taken
    await waitFor(() => proxy.profile.name === 'v2', 5000); // the TTL ran out: the file's version applies
  });

  it('DELETE /faults/NAME of a TTL fault that ran out is a 404', async () => {
    const { admin } = await startAdminProxy();
    expect((await api(admin, 'POST', '/faults', { body: { name: 'brief', ttl: '100ms', fault: { type: 'http-error', status: 500 } } })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 250));
    const r = await api(admin, 'DELETE', '/faults/brief');
    expect(r.status).toBe(404);
    expect(r.json.error).toBe('fault-not-found');
  });
});
