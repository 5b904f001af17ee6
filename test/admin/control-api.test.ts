/**
 * Every control endpoint over real HTTP against a real proxy and upstream: good and bad input,
 * the token on and off, and the same operations through the library API.
 */
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ProfileError } from '../../src/errors.js';
import type { EventRecord, HttpRecord, MarkRecord } from '../../src/record/schema.js';
import { readRecords, request, tempDir } from '../helpers.js';
import { api, captureLog, PROFILE_503, PROFILE_BAD, PROFILE_LATE, startAdminProxy } from './admin-helpers.js';
import { cli } from '../cli/cli-process.js';

describe('control API: routing and errors', () => {
  it('lists its routes at GET /', async () => {
    const { admin } = await startAdminProxy();
    const r = await api(admin, 'GET', '/');
    expect(r.status).toBe(200);
    const routes = (r.json.routes as Array<{ method: string; path: string }>).map((x) => `${x.method} ${x.path}`);
    for (const want of [
      'GET /healthz',
      'GET /readyz',
      'GET /profile',
      'PUT /profile',
      'POST /profile/select',
      'GET /rules',
      'PATCH /rules/:name',
      'POST /faults',
      'DELETE /faults/:name',
      'POST /marks',
      'POST /scenario/start',
      'POST /scenario/stop',
      'POST /reset',
      'GET /report',
      'GET /report.html',
      'GET /stats',
      'GET /metrics',
    ]) {
      expect(routes).toContain(want);
    }
  });

  it('answers unknown routes 404, wrong methods 405 with Allow, bad JSON 400, big bodies 413 — all as JSON', async () => {
    const { admin, proxy } = await startAdminProxy();
    const notFound = await api(admin, 'GET', '/nope');
    expect(notFound.status).toBe(404);
    expect(notFound.json.error).toBe('not-found');

    const wrongMethod = await api(admin, 'DELETE', '/profile');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, HEAD, PUT');
    expect(wrongMethod.json.error).toBe('method-not-allowed');
    // Every method Allow lists is one the resource takes; HEAD, listed with GET, answers 200.
    const stats = await api(admin, 'POST', '/stats');
    expect(stats.headers.allow).toBe('GET, HEAD');
    for (const m of String(stats.headers.allow).split(', ')) if (m !== 'POST') expect((await api(admin, m, '/stats')).status, m).toBe(200);

    const badJson = await api(admin, 'POST', '/marks', { body: '{"label": ', headers: { 'content-type': 'application/json' } });
    expect(badJson.status).toBe(400);
    expect(badJson.json.error).toBe('bad-json');

    const notObject = await api(admin, 'POST', '/marks', { body: '[1,2]' });
    expect(notObject.status).toBe(400);

    const empty = await api(admin, 'POST', '/profile/select', { body: '' });
    expect(empty.status).toBe(400);
    expect(empty.json.error).toBe('body-required');

    const unknownField = await api(admin, 'POST', '/marks', { body: { label: 'x', colour: 'red' } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.json.message).toMatch(/colour/);

    const big = await api(admin, 'PUT', '/profile', { body: 'x'.repeat(1024 * 1024 + 10) });
    expect(big.status).toBe(413);
    expect(big.json.error).toBe('body-too-large');

    const badEscape = await api(admin, 'GET', '/rules/%E0%A4%A');
    expect(badEscape.status).toBe(400);

    // Still alive and unchanged after all that.
    expect((await api(admin, 'GET', '/healthz')).status).toBe(200);
    expect(proxy.profile.name).toBe('passthrough');
  });

  it('answers HEAD like GET without a body', async () => {
    const { admin } = await startAdminProxy();
    const r = await api(admin, 'HEAD', '/stats');
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
  });
});

describe('control API: token', () => {
  it('with a token: 401 without or with a wrong one, 200 with it; probes stay open', async () => {
    const { admin } = await startAdminProxy({ adminToken: 's3cret-token' });
    for (const p of ['/', '/stats', '/rules', '/profile', '/metrics', '/report', '/nope']) {
      const r = await api(admin, 'GET', p);
      expect(r.status, p).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(r.json.error).toBe('unauthorized');
      expect((await api(admin, 'GET', p, { token: 'wrong' })).status, p).toBe(401);
    }
    expect((await api(admin, 'POST', '/marks', { body: { label: 'x' } })).status).toBe(401);
    expect((await api(admin, 'GET', '/stats', { token: 's3cret-token' })).status).toBe(200);
    expect((await api(admin, 'GET', '/metrics', { token: 's3cret-token' })).status).toBe(200);
    expect((await api(admin, 'POST', '/marks', { body: { label: 'x' }, token: 's3cret-token' })).status).toBe(201);
    expect((await api(admin, 'GET', '/healthz')).status).toBe(200);
    expect((await api(admin, 'GET', '/readyz')).status).toBe(200);
  });

  it('without a token every route answers', async () => {
    const { admin } = await startAdminProxy();
    expect((await api(admin, 'GET', '/stats')).status).toBe(200);
    expect((await api(admin, 'GET', '/rules', { token: 'anything' })).status).toBe(200);
  });
});

describe('control API: probes, stats, report', () => {
  it('GET /healthz and /readyz', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { admin } = await startAdminProxy({ record: file });
    expect((await api(admin, 'GET', '/healthz')).json).toEqual({ status: 'ok' });
    const ready = await api(admin, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ status: 'ready', reasons: [], profile: 'passthrough', recording: { path: file, healthy: true } });
  });

  it('GET /readyz is 503 with the reason while the recording fails (and /healthz stays 200)', async () => {
    const { admin, proxy } = await startAdminProxy({ record: '/dev/full' });
    await request(`${proxy.url}/a`);
    await proxy.recorder.drain();
    const r = await api(admin, 'GET', '/readyz');
    expect(r.status).toBe(503);
    expect(r.json.status).toBe('not-ready');
    expect(r.json.reasons).toHaveLength(1);
    expect(r.json.reasons[0]).toMatch(/recording is failing \(.*(ENOSPC|no space)/i);
    expect(r.json.recording).toMatchObject({ healthy: false, failed: 2 });
    expect((await api(admin, 'GET', '/healthz')).status).toBe(200);
  });

  it('GET /stats counts per rule, per status, connections and the recording', async () => {
    const dir = tempDir();
    const { admin, proxy } = await startAdminProxy({ profile: 'passthrough', record: path.join(dir, 'r.ndjson') });
    proxy.setProfile(PROFILE_503);
    await request(`${proxy.url}/api/a`);
    await request(`${proxy.url}/api/b`);
    await request(`${proxy.url}/other`);
    await proxy.recorder.drain();
    const s = await api(admin, 'GET', '/stats');
    expect(s.status).toBe(200);
    expect(s.json.profile.name).toBe('api-down');
    expect(s.json.exchanges).toBe(3);
    expect(s.json.byStatus).toEqual({ '200': 1, '503': 2 });
    expect(s.json.rules.find((r: { name: string }) => r.name === 'api-503')).toMatchObject({ matched: 2, injected: 2 });
    expect(typeof s.json.connections).toBe('number');
    expect(s.json.recording.written).toBeGreaterThan(3);
    expect(s.json.recording.failed).toBe(0);
  });

  it('GET /report (JSON, live), ?format=text, /report.html', async () => {
    const { admin, proxy } = await startAdminProxy();
    proxy.setProfile(PROFILE_503);
    for (let i = 0; i < 3; i++) await request(`${proxy.url}/api/x`, { headers: { 'user-agent': 'retrier/1' } });
    const r = await api(admin, 'GET', '/report');
    expect(r.status).toBe(200);
    expect(r.json.totals.attempts).toBe(3);
    expect(r.json.totals.retries).toBeGreaterThanOrEqual(1);
    const text = await api(admin, 'GET', '/report?format=text');
    expect(text.status).toBe(200);
    expect(text.headers['content-type']).toMatch(/^text\/plain/);
    expect(text.text.length).toBeGreaterThan(20);
    const html = await api(admin, 'GET', '/report.html');
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toMatch(/<html/i);
    expect((await api(admin, 'GET', '/report?format=pdf')).status).toBe(400);
  });

  it('GET /report answers 409 when live analysis is off', async () => {
    const { admin } = await startAdminProxy({ liveAnalysis: false });
    const r = await api(admin, 'GET', '/report');
    expect(r.status).toBe(409);
    expect(r.json.message).toMatch(/live analysis is off/);
    expect((await api(admin, 'GET', '/metrics')).status).toBe(200);
  });
});

describe('control API: profile', () => {
  it('GET /profile shows name, description, hash, source and rules; PUT replaces it (YAML or JSON)', async () => {
    const { admin, proxy } = await startAdminProxy();
    const before = await api(admin, 'GET', '/profile');
    expect(before.json).toMatchObject({ name: 'passthrough', rules: [] });
    expect(typeof before.json.hash).toBe('string');

    const put = await api(admin, 'PUT', '/profile', { body: PROFILE_503, headers: { 'content-type': 'application/yaml' } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ name: 'api-down', description: 'every /api call fails with 503', source: null });
    expect(put.json.rules).toEqual([expect.objectContaining({ name: 'api-503', type: 'http-error', enabled: true, probability: 1 })]);
    expect((await request(`${proxy.url}/api/x`)).status).toBe(503);

    const asJson = JSON.stringify({ name: 'json-one', rules: [{ name: 'r', match: { path: '/api/**' }, fault: { type: 'http-error', status: 418 } }] });
    const put2 = await api(admin, 'PUT', '/profile', { body: asJson, headers: { 'content-type': 'application/json' } });
    expect(put2.status).toBe(200);
    expect((await request(`${proxy.url}/api/x`)).status).toBe(418);

    // The definition round-trips: GET it, PUT it back, same hash of behaviour.
    const got = await api(admin, 'GET', '/profile');
    expect(got.json.definition).toMatchObject({ name: 'json-one' });
    expect((await api(admin, 'PUT', '/profile', { body: got.json.definition })).status).toBe(200);
  });

  it('PUT /profile with a bad profile answers 422 with every problem (line and path) and keeps the old one', async () => {
    const { admin, proxy } = await startAdminProxy();
    await api(admin, 'PUT', '/profile', { body: PROFILE_503 });
    const hash = proxy.profile.hash;
    const r = await api(admin, 'PUT', '/profile', { body: PROFILE_BAD });
    expect(r.status).toBe(422);
    expect(r.json.error).toBe('profile-invalid');
    const problems = r.json.problems as Array<{ file: string | null; line: number | null; path: string; message: string }>;
    expect(problems.length).toBeGreaterThanOrEqual(2);
    for (const p of problems) expect(Object.keys(p).sort()).toEqual(['file', 'line', 'message', 'path']);
    const status = problems.find((p) => p.path === 'rules[0].fault.status');
    expect(status).toMatchObject({ line: 8 });
    const typo = problems.find((p) => p.path.startsWith('rules[1].match'));
    expect(typo?.line).toBe(11);
    expect(typo?.message).toMatch(/pth|unknown|expected/);

    expect(proxy.profile.hash).toBe(hash);
    expect((await api(admin, 'GET', '/profile')).json.name).toBe('api-down');
    expect((await request(`${proxy.url}/api/x`)).status).toBe(503);

    const notYaml = await api(admin, 'PUT', '/profile', { body: 'rules: [\n  {' });
    expect(notYaml.status).toBe(422);
    expect(notYaml.json.problems.length).toBeGreaterThan(0);
    expect((await api(admin, 'PUT', '/profile', { body: '   ' })).status).toBe(400);
  });

  it('POST /profile/select applies a built-in or a file profile by name; 404 when unknown', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'slow.yaml');
    fs.writeFileSync(file, PROFILE_LATE);
    const { admin, proxy } = await startAdminProxy();
    const builtin = await api(admin, 'POST', '/profile/select', { body: { name: 'passthrough' } });
    expect(builtin.status).toBe(200);
    expect(builtin.json.name).toBe('passthrough');

    const fromFile = await api(admin, 'POST', '/profile/select', { body: { name: file } });
    expect(fromFile.status).toBe(200);
    expect(fromFile.json).toMatchObject({ name: 'api-slow', source: file });
    expect(proxy.profile.name).toBe('api-slow');

    const unknown = await api(admin, 'POST', '/profile/select', { body: { name: 'no-such-profile' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe('profile-not-found');
    expect(proxy.profile.name).toBe('api-slow');

    expect((await api(admin, 'POST', '/profile/select', { body: { name: 3 } })).status).toBe(400);
    expect((await api(admin, 'POST', '/profile/select', { body: {} })).status).toBe(400);
  });
});

describe('control API: rules and ad-hoc faults', () => {
  it('GET /rules; PATCH /rules/:name disables and re-weights; bad patches are 400, unknown rules 404', async () => {
    const { admin, proxy } = await startAdminProxy();
    proxy.setProfile(PROFILE_503);
    const rules = await api(admin, 'GET', '/rules');
    expect(rules.json.rules.map((r: { name: string }) => r.name)).toContain('api-503');

    const off = await api(admin, 'PATCH', '/rules/api-503', { body: { enabled: false } });
    expect(off.status).toBe(200);
    expect(off.json).toMatchObject({ name: 'api-503', enabled: false });
    expect((await request(`${proxy.url}/api/x`)).status).toBe(200);

    const on = await api(admin, 'PATCH', '/rules/api-503', { body: { enabled: true, probability: 0 } });
    expect(on.json).toMatchObject({ enabled: true, probability: 0 });
    expect((await request(`${proxy.url}/api/x`)).status).toBe(200);
    await api(admin, 'PATCH', '/rules/api-503', { body: { probability: 1 } });
    expect((await request(`${proxy.url}/api/x`)).status).toBe(503);
    expect((await api(admin, 'GET', '/rules/api-503')).json.probability).toBe(1);

    // The one-line summary and GET /profile say what runs after a PATCH, not what the file said.
    const patched = await api(admin, 'PATCH', '/rules/api-503', { body: { enabled: false, probability: 0.2 } });
    expect(patched.json).toMatchObject({ enabled: false, probability: 0.2 });
    expect(patched.json.summary).toMatch(/ — disabled, p=0\.2$/);
    expect((await api(admin, 'GET', '/rules')).json.rules.find((r: { name: string }) => r.name === 'api-503').summary).toBe(patched.json.summary);
    const profileRule = (await api(admin, 'GET', '/profile')).json.rules.find((r: { name: string }) => r.name === 'api-503');
    expect(profileRule).toMatchObject({ enabled: false, probability: 0.2, summary: patched.json.summary });
    const back = await api(admin, 'PATCH', '/rules/api-503', { body: { enabled: true, probability: 1 } });
    expect(back.json.summary).not.toMatch(/disabled|p=/);
    // Each PATCH is in the recording.
    const patches: Array<Record<string, unknown>> = [];
    proxy.recorder.addListener((r) => {
      if (r.type === 'event' && r.event === 'rule-patched') patches.push(r.detail);
    });
    await api(admin, 'PATCH', '/rules/api-503', { body: { probability: 0.3 } });
    expect(patches).toEqual([{ rule: 'api-503', probability: 0.3 }]);

    expect((await api(admin, 'PATCH', '/rules/api-503', { body: { probability: 1.5 } })).status).toBe(400);
    expect((await api(admin, 'PATCH', '/rules/api-503', { body: { probability: '0.5' } })).status).toBe(400);
    expect((await api(admin, 'PATCH', '/rules/api-503', { body: { enabled: 'no' } })).status).toBe(400);
    expect((await api(admin, 'PATCH', '/rules/api-503', { body: {} })).status).toBe(400);
    expect((await api(admin, 'PATCH', '/rules/api-503', { body: { enable: false } })).status).toBe(400);
    const missing = await api(admin, 'PATCH', '/rules/nope', { body: { enabled: false } });
    expect(missing.status).toBe(404);
    expect(missing.json.error).toBe('rule-not-found');
    expect((await api(admin, 'GET', '/rules/nope')).status).toBe(404);
  });

  it('POST /faults injects now, DELETE /faults/:name stops it; duplicates 409, bad rules 422, unknown 404', async () => {
    const { admin, proxy } = await startAdminProxy();
    const rule = { name: 'now-503', match: { path: '/v1/messages/**' }, fault: { type: 'http-error', status: 503 } };
    const add = await api(admin, 'POST', '/faults', { body: rule });
    expect(add.status).toBe(201);
    expect(add.json).toMatchObject({ name: 'now-503', type: 'http-error', adHoc: true, expiresAt: null });
    const hit = await request(`${proxy.url}/v1/messages/42`);
    expect(hit.status).toBe(503);
    expect(hit.headers['x-aftershock-fault']).toMatch(/now-503/);
    expect((await request(`${proxy.url}/v1/other`)).status).toBe(200);
    expect((await api(admin, 'GET', '/faults')).json.faults.map((f: { name: string }) => f.name)).toEqual(['now-503']);

    const dup = await api(admin, 'POST', '/faults', { body: rule });
    expect(dup.status).toBe(409);

    const bad = await api(admin, 'POST', '/faults', { body: { name: 'bad', fault: { type: 'http-error', status: 42 } } });
    expect(bad.status).toBe(422);
    expect(bad.json.problems[0].path).toMatch(/fault\.status/);
    const badType = await api(admin, 'POST', '/faults', { body: { name: 'bad2', fault: { type: 'explode' } } });
    expect(badType.status).toBe(422);
    expect((await api(admin, 'POST', '/faults', { body: { ...rule, name: 'x', ttl: 'soon' } })).status).toBe(400);
    expect((await api(admin, 'POST', '/faults', { body: { ...rule, name: 'x', ttl: 0 } })).status).toBe(400);

    const del = await api(admin, 'DELETE', '/faults/now-503');
    expect(del.status).toBe(200);
    expect((await request(`${proxy.url}/v1/messages/42`)).status).toBe(200);
    const again = await api(admin, 'DELETE', '/faults/now-503');
    expect(again.status).toBe(404);
    expect(again.json.error).toBe('fault-not-found');
  });

  it('POST /faults with an invalid rule says "invalid fault", not "invalid profile", with every problem; ctl prints it on one line', async () => {
    const { admin } = await startAdminProxy();
    const bad = await api(admin, 'POST', '/faults', { body: { name: 'bad', match: { pth: '/x' }, fault: { type: 'http-error', status: 42 } } });
    expect(bad.status).toBe(422);
    expect(bad.json.message).toBe('invalid fault: 2 problems');
    expect(bad.json.problems.map((p: { path: string }) => p.path).sort()).toEqual(['fault.status', 'match.pth']);
    const one = await api(admin, 'POST', '/faults', { body: { name: 'bad2', fault: { type: 'explode' } } });
    expect(one.json.message).toBe('invalid fault: 1 problem');
    const ctl = cli(['ctl', '--admin', admin, 'fault', 'add', '--name', 'x', '--path', '/**', '--type', 'http-error', '--status', '42']);
    expect(await ctl.exit).toBe(1);
    expect(ctl.stderr().trim()).toMatch(/^aftershock: POST \/faults: 422 invalid fault: 1 problem — fault\.status: must be 200-599$/);
  });

  it('an ad-hoc fault with a ttl expires on time', async () => {
    const { admin, proxy } = await startAdminProxy();
    const t0 = Date.now();
    const add = await api(admin, 'POST', '/faults', {
      body: { name: 'blip', match: { path: '/v1/**' }, fault: { type: 'http-error', status: 503 }, ttl: '300ms' },
    });
    expect(add.status).toBe(201);
    expect(add.json.expiresAt).toBeGreaterThanOrEqual(t0 + 300 - 5);
    expect(add.json.expiresAt).toBeLessThanOrEqual(Date.now() + 300 + 5);
    expect((await request(`${proxy.url}/v1/a`)).status).toBe(503);

    // Poll until it passes again. The engine decides between a request's send and its answer, on
    // the proxy's clock (this process's): a 503 was sent before the expiry, a 200 answered after it
    // (no wall-clock bound, which a busy machine breaks).
    const expiresAt = add.json.expiresAt as number;
    const clock = (): number => performance.timeOrigin + performance.now();
    for (;;) {
      const sentAt = clock();
      const r = await request(`${proxy.url}/v1/a`);
      const answeredAt = clock();
      if (r.status === 200) {
        expect(answeredAt).toBeGreaterThanOrEqual(expiresAt);
        break;
      }
      expect(r.status).toBe(503);
      expect(sentAt).toBeLessThan(expiresAt);
      await new Promise((res) => setTimeout(res, 20));
    }
    expect((await api(admin, 'GET', '/faults')).json.faults).toEqual([]);
  });
});

describe('control API: marks, scenario, reset', () => {
  it('POST /marks writes a marker into the recording; scenario start/stop and reset are recorded events', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { admin, proxy } = await startAdminProxy({ record: file });
    await request(`${proxy.url}/a`);
    const m = await api(admin, 'POST', '/marks', { body: { label: 'checkout flow starts' } });
    expect(m.status).toBe(201);
    expect(m.json.marked).toBe('checkout flow starts');
    expect((await api(admin, 'POST', '/marks', { body: { label: '' } })).status).toBe(400);
    expect((await api(admin, 'POST', '/marks', { body: { label: 'x'.repeat(501) } })).status).toBe(400);
    expect((await api(admin, 'POST', '/scenario/start')).json).toEqual({ scenario: 'started' });
    expect((await api(admin, 'POST', '/scenario/stop')).json).toEqual({ scenario: 'stopped' });
    await request(`${proxy.url}/b`);
    await proxy.recorder.drain();

    const records = readRecords(file);
    const kinds = records.map((r) => (r.type === 'event' ? `event:${(r as EventRecord).event}` : r.type === 'http' ? `http:${(r as HttpRecord).path}` : r.type));
    expect(kinds).toEqual(['header', 'http:/a', 'mark', 'event:scenario-start', 'event:scenario-stop', 'http:/b']);
    expect((records[2] as MarkRecord).label).toBe('checkout flow starts');

    expect((await api(admin, 'GET', '/stats')).json.exchanges).toBe(2);
    expect((await api(admin, 'GET', '/report')).json.limits.some((l: string) => l.includes('POST /reset'))).toBe(false);
    expect((await api(admin, 'POST', '/reset')).json).toEqual({ reset: true });
    const after = await api(admin, 'GET', '/stats');
    expect(after.json.exchanges).toBe(0);
    expect(after.json.byStatus).toEqual({});
    const cleared = (await api(admin, 'GET', '/report')).json;
    expect(cleared.totals.attempts).toBe(0);
    // The live report says it starts at the reset; before one, it says nothing of the kind.
    expect(cleared.limits.filter((l: string) => l.startsWith('The live analysis was reset (POST /reset)'))).toHaveLength(1);
    await proxy.recorder.drain();
    expect(readRecords(file).some((r) => r.type === 'event' && r.event === 'reset')).toBe(true);
  });
});

describe('library API: the same operations on the ProxyHandle', () => {
  it('setProfile, selectProfile, engine.patchRule, addFault with ttl, removeFault, mark, scenario, reset, report, stats', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { proxy } = await startAdminProxy({ admin: false, record: file });
    expect(proxy.adminUrl).toBeNull();

    const applied = proxy.setProfile(PROFILE_503);
    expect(applied.name).toBe('api-down');
    expect((await request(`${proxy.url}/api/x`)).status).toBe(503);
    let err: unknown;
    try {
      proxy.setProfile(PROFILE_BAD);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as ProfileError).problems.length).toBeGreaterThanOrEqual(2);
    expect(proxy.profile.name).toBe('api-down');

    proxy.engine.patchRule('api-503', { enabled: false });
    expect((await request(`${proxy.url}/api/x`)).status).toBe(200);

    await proxy.selectProfile('passthrough');
    expect(proxy.profile.name).toBe('passthrough');
    await expect(proxy.selectProfile('no-such-profile')).rejects.toMatchObject({ code: 'ERR_PROFILE_NOT_FOUND' });

    const s = proxy.addFault({ name: 'lib-429', match: { path: '/api/**' }, fault: { type: 'http-error', status: 429 } }, 60_000);
    expect(s.expiresAt).toBeGreaterThan(Date.now());
    expect((await request(`${proxy.url}/api/x`)).status).toBe(429);
    expect(proxy.removeFault('lib-429')).toBe(true);
    expect(proxy.removeFault('lib-429')).toBe(false);
    expect((await request(`${proxy.url}/api/x`)).status).toBe(200);

    proxy.mark('library mark');
    proxy.startScenario();
    proxy.stopScenario();
    expect(proxy.stats().exchanges).toBe(4);
    expect(proxy.report().totals.attempts).toBe(4);
    proxy.reset();
    expect(proxy.stats().exchanges).toBe(0);
    await proxy.recorder.drain();
    const recs = readRecords(file);
    expect(recs.some((r) => r.type === 'mark' && r.label === 'library mark')).toBe(true);
    expect(recs.filter((r) => r.type === 'event').map((r) => (r as EventRecord).event)).toEqual(
      expect.arrayContaining(['profile', 'fault-added', 'fault-removed', 'scenario-start', 'scenario-stop', 'reset']),
    );
  });

  it('the control API refuses to start on a port in use, and the proxy does not start half-way', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startAdminProxy({ admin: `127.0.0.1:${port}` })).rejects.toMatchObject({ code: 'ERR_LISTEN' });
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});

describe('control API: hostile clients', () => {
  it('survives a client that sends half a body and leaves, and one that never finishes its headers', async () => {
    const { admin } = await startAdminProxy();
    const port = Number(new URL(admin).port);
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('PUT /profile HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/yaml\r\ncontent-length: 100000\r\n\r\nname: half');
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 50);
      });
    });
    const dangling = net.connect(port, '127.0.0.1', () => dangling.write('GET /stats HTTP/1.1\r\nhost: 127.0.0.1\r\n'));
    try {
      expect((await api(admin, 'GET', '/healthz')).status).toBe(200);
      expect((await api(admin, 'GET', '/profile')).json.name).toBe('passthrough');
    } finally {
      dangling.destroy();
    }
  });
});

describe('GET /report under polling', () => {
  it('serves a report built less than a second ago again, and builds a new one after any change made through the API', async () => {
    const { admin, proxy } = await startAdminProxy();
    expect((await request(`${proxy.url}/a`)).status).toBe(200);
    const first = (await api(admin, 'GET', '/report')).json;
    expect(first.totals.attempts).toBe(1);
    // Traffic within the second: the same report (a dashboard polling 5 times a second costs one build a second).
    expect((await request(`${proxy.url}/b`)).status).toBe(200);
    expect((await api(admin, 'GET', '/report')).json.totals.attempts).toBe(1);
    // A change through the API: built again at once.
    expect((await api(admin, 'POST', '/marks', { body: { label: 'step' } })).status).toBe(201);
    const after = (await api(admin, 'GET', '/report')).json;
    expect(after.totals.attempts).toBe(2);
    expect(after.marks.map((m: { label: string }) => m.label)).toEqual(['step']);
    expect((await request(`${proxy.url}/c`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await api(admin, 'GET', '/report?format=text')).text).toMatch(/\b3 attempts\b|attempts\s+3\b/);
  });
});

describe('control API changes are logged', () => {
  it('each change (not a read) is an info line with method, path and status, without the body', async () => {
    const log = captureLog();
    const { admin } = await startAdminProxy({ logger: log.logger });
    expect((await api(admin, 'GET', '/faults')).status).toBe(200);
    expect((await api(admin, 'POST', '/faults', { body: { name: 'secret-match', match: { path: '/x', headers: { authorization: 'Bearer s3cr3t' } }, fault: { type: 'reset' } } })).status).toBe(201);
    expect((await api(admin, 'POST', '/marks', { body: { label: 'step 2' } })).status).toBe(201);
    expect((await api(admin, 'DELETE', '/faults/nope')).status).toBe(404);
    expect((await api(admin, 'DELETE', '/faults/secret-match')).status).toBe(200);
    const lines = log
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; method?: string; path?: string; status?: number; level: number })
      .filter((l) => l.msg.startsWith('control API: '));
    expect(lines.map((l) => [l.level, l.method, l.path, l.status])).toEqual([
      [30, 'POST', '/faults', 201],
      [30, 'POST', '/marks', 201],
      [30, 'DELETE', '/faults/secret-match', 200],
    ]);
    expect(log.text()).not.toContain('s3cr3t');
  });

  it('refused requests (no or a wrong token, a foreign Host, a cross-site page) are warn lines, one per reason per 10 s with a count, never the token', async () => {
    const log = captureLog();
    const { admin } = await startAdminProxy({ logger: log.logger, adminToken: 'right-token' });
    for (let i = 0; i < 3; i++) expect((await api(admin, 'POST', '/reset', { token: `guess-${i}` })).status).toBe(401);
    expect((await api(admin, 'GET', '/stats')).status).toBe(401);
    expect((await api(admin, 'GET', '/stats', { token: 'right-token', headers: { host: 'evil.example' } })).status).toBe(403);
    expect((await api(admin, 'POST', '/reset', { token: 'right-token', headers: { origin: 'https://evil.example' } })).status).toBe(403);
    const lines = log
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; level: number; status?: number; reason?: string; path?: string })
      .filter((l) => l.msg.startsWith('control API refused'));
    expect(lines.map((l) => [l.level, l.status, l.reason, l.path])).toEqual([
      [40, 401, 'wrong-token', '/reset'],
      [40, 401, 'no-token', '/stats'],
      [40, 403, 'host-not-allowed', '/stats'],
      [40, 403, 'origin-not-allowed', '/reset'],
    ]);
    expect(log.text()).not.toMatch(/guess-|right-token/);
  });
});

describe('phases in the recording', () => {
  it('each phase of the timeline is a phase event at its own start, a restart of the scenario too', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const { admin, proxy } = await startAdminProxy({ record: file });
    proxy.setProfile('name: timed\nphases:\n  - name: calm\n    duration: 300ms\n  - name: outage\n    duration: 10s\n    rules:\n      - name: down\n        fault: { type: http-error, status: 503 }\n');
    await new Promise((r) => setTimeout(r, 800));
    expect((await api(admin, 'POST', '/scenario/start')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    await proxy.close();
    const phases = readRecords(file)
      .filter((r): r is EventRecord => r.type === 'event' && r.event === 'phase')
      .map((r) => ({ phase: (r.detail as { phase: string }).phase, ts: r.ts }));
    // calm, outage; then the scenario restarts the clock: calm again.
    expect(phases.map((p) => p.phase).slice(-3)).toEqual(['calm', 'outage', 'calm']);
    const [calm, outage] = phases.slice(-3);
    expect((outage?.ts ?? 0) - (calm?.ts ?? 0)).toBe(300);
  });
});

describe('GET /profile and reset edges', () => {
  it("GET /profile gives the engine's values for the running phase only; another phase shows its own", async () => {
    const { admin, proxy } = await startAdminProxy();
    proxy.setProfile('name: ph\nphases:\n  - name: a\n    duration: 60s\n    rules:\n      - name: e\n        probability: 0.2\n        fault: { type: reset }\n  - name: b\n    duration: 60s\n    rules:\n      - name: e\n        probability: 0.9\n        fault: { type: reset }\n');
    const view = (await api(admin, 'GET', '/profile')).json as { phases: Array<{ name: string; rules: Array<{ name: string; probability: number }> }> };
    expect(view.phases.map((p) => [p.name, p.rules[0]?.probability])).toEqual([
      ['a', 0.2],
      ['b', 0.9],
    ]);
  });

  it('a reset before any exchange adds no limit to the report (nothing was dropped)', async () => {
    const { admin, proxy } = await startAdminProxy();
    expect((await api(admin, 'POST', '/reset')).status).toBe(200);
    expect((await request(`${proxy.url}/x`)).status).toBe(200);
    const report = (await api(admin, 'GET', '/report')).json as { limits: string[] };
    expect(report.limits.filter((l) => l.includes('POST /reset'))).toEqual([]);
  });
});
