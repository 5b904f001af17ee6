/**
 * An operator can see what an ad-hoc rule targets: `ctl fault add` will not guess a scope (without
 * --path it adds nothing, rather than a fault on all traffic; `--path '/**'` says "everything" out
 * loud and the answer repeats it), and GET /faults, GET /rules and GET /rules/:name show each rule's
 * `match` and `fault`, with the values of secret-looking header and query matchers hidden as the
 * recording hides them.
 */
import { describe, expect, it } from 'vitest';
import { request } from '../helpers.js';
import { api, ctl, PROFILE_503, startAdminProxy } from './admin-helpers.js';

describe('ctl fault add needs a scope', () => {
  it('without --path it adds nothing and says how to target everything', async () => {
    const { admin, proxy } = await startAdminProxy();
    const r = await ctl('--admin', admin, 'fault', 'add', '--name', 'oops', '--type', 'reset');
    expect(r.error?.code).toBe('ERR_BAD_OPTION');
    expect(r.error?.message).toBe("fault add: give --path GLOB, the requests to hit (--path '/**' for all traffic), or \"match\": {\"path\": ...} in --json");
    const viaJson = await ctl('--admin', admin, 'fault', 'add', '--json', '{"name":"j","match":{"method":"GET"},"fault":{"type":"reset"}}');
    expect(viaJson.error?.message).toMatch(/^fault add: give --path GLOB/);
    expect((await api(admin, 'GET', '/faults')).json.faults).toEqual([]);
    expect((await request(`${proxy.url}/anything`)).status).toBe(200);
  });

  it("--path '/**' targets all traffic, and the answer says what it targets", async () => {
    const { admin, proxy } = await startAdminProxy();
    const all = await ctl('--admin', admin, 'fault', 'add', '--name', 'all', '--path', '/**', '--type', 'http-error', '--status', '503');
    expect(all.error).toBeNull();
    expect(all.stdout).toBe('fault all added: http-error status=503 — /**\n');
    expect((await request(`${proxy.url}/anything`)).status).toBe(503);
    const json = await ctl('--admin', admin, 'fault', 'add', '--json', '{"name":"j","match":{"path":"/j/**"},"fault":{"type":"http-error","status":429}}', '--method', 'post', '--ttl', '30s');
    expect(json.stdout).toMatch(/^fault j added: http-error status=429 — POST \/j\/\*\*, expires in (29|30)s\n$/);
  });
});

describe('the control API shows what a rule targets', () => {
  it('GET /faults, GET /rules and GET /rules/:name give match and fault; secret matcher values stay hidden', async () => {
    const { admin, proxy } = await startAdminProxy();
    proxy.setProfile(PROFILE_503);
    const rule = {
      name: 'scoped',
      match: {
        method: 'POST',
        path: ['/v1/**', '/v2/**'],
        headers: { authorization: 'Bearer s3cret-token', 'x-env': 'staging', 'x-api-key': { regex: '^key-' }, 'x-trace': { present: true } },
        query: { access_token: 'qs3cret', page: '2' },
        cohort: 0.5,
      },
      fault: { type: 'http-error', status: 503, retryAfter: '2s' },
    };
    const add = await api(admin, 'POST', '/faults', { body: rule });
    expect(add.status).toBe(201);
    const expected = {
      name: 'scoped',
      type: 'http-error',
      adHoc: true,
      match: {
        method: ['POST'],
        path: ['/v1/**', '/v2/**'],
        headers: { authorization: '[redacted]', 'x-env': 'staging', 'x-api-key': { regex: '[redacted]' }, 'x-trace': { present: true } },
        query: { access_token: '[redacted]', page: '2' },
        cohort: 0.5,
      },
      fault: { type: 'http-error', status: 503, retryAfter: '2s' },
    };
    expect(add.json).toMatchObject(expected);
    const faults = await api(admin, 'GET', '/faults');
    expect(faults.json.faults).toEqual([expect.objectContaining(expected)]);
    const one = await api(admin, 'GET', '/rules/scoped');
    expect(one.json).toMatchObject(expected);
    expect(one.json.summary).toMatch(/^scoped: http-error status=503 retryAfter=2s — POST \/v1\/\*\* \/v2\/\*\* headers\(/);
    const all = await api(admin, 'GET', '/rules');
    expect(all.json.rules.find((r: { name: string }) => r.name === 'api-503')).toMatchObject({ match: { path: ['/api/**'] }, fault: { type: 'http-error', status: 503 } });
    for (const text of [add.text, faults.text, one.text, all.text]) {
      expect(text).not.toMatch(/s3cret|qs3cret|key-/);
    }
    // A rule with no match targets everything, and says so.
    await api(admin, 'POST', '/faults', { body: { name: 'everything', fault: { type: 'reset' } } });
    expect((await api(admin, 'GET', '/rules/everything')).json).toMatchObject({ match: {}, summary: 'everything: reset — /**' });
  });
});

describe('GET /profile hides secret matcher values as GET /rules does', () => {
  it('in the profile as written (definition), top-level and phase rules, for PUT /profile\'s answer and GET /profile', async () => {
    const { admin } = await startAdminProxy();
    const yaml = [
      'name: secretive',
      'rules:',
      '  - name: bearer',
      '    match: { headers: { Authorization: "Bearer PROFMATCHSECRET", x-env: staging, x-api-key: { regex: "^key-SECRET" }, cookie: { present: true } }, query: { access_token: QSECRET, page: "2" } }',
      '    fault: { type: http-error, status: 503 }',
      'phases:',
      '  - name: one',
      '    duration: 1m',
      '    rules:',
      '      - name: in-phase',
      '        match: { headers: { x-auth-token: PHASESECRET } }',
      '        fault: { type: reset }',
    ].join('\n');
    const put = await api(admin, 'PUT', '/profile', { body: yaml });
    expect(put.status).toBe(200);
    const got = await api(admin, 'GET', '/profile');
    for (const r of [put, got]) {
      expect(r.text).not.toMatch(/PROFMATCHSECRET|key-SECRET|QSECRET|PHASESECRET/);
      const def = r.json.definition;
      expect(def.rules[0].match).toEqual({
        headers: { Authorization: '[redacted]', 'x-env': 'staging', 'x-api-key': { regex: '[redacted]' }, cookie: { present: true } },
        query: { access_token: '[redacted]', page: '2' },
      });
      expect(def.phases[0].rules[0].match.headers).toEqual({ 'x-auth-token': '[redacted]' });
      expect(def.rules[0].fault).toEqual({ type: 'http-error', status: 503 });
    }
  });
});
