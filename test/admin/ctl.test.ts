/**
 * `aftershock ctl` end to end, in-process: the real CLI program against a real proxy's control
 * API, stdout captured, errors as the main CLI would print them.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRecords, request, tempDir } from '../helpers.js';
import { ctl, PROFILE_503, PROFILE_BAD, startAdminProxy } from './admin-helpers.js';

const savedEnv = { url: process.env.AFTERSHOCK_ADMIN_URL, token: process.env.AFTERSHOCK_ADMIN_TOKEN };
afterEach(() => {
  for (const [k, v] of [
    ['AFTERSHOCK_ADMIN_URL', savedEnv.url],
    ['AFTERSHOCK_ADMIN_TOKEN', savedEnv.token],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('aftershock ctl', () => {
  it('status, rules, rule, fault add/remove, mark, scenario, reset, stats against a live proxy', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const { admin, proxy } = await startAdminProxy({ record: file });
    proxy.setProfile(PROFILE_503);
    await request(`${proxy.url}/api/x`);

    const status = await ctl('--admin', admin, 'status');
    expect(status.error).toBeNull();
    expect(status.stdout).toMatch(/ready/);
    expect(status.stdout).toMatch(/profile\s+api-down/);
    expect(status.stdout).toMatch(/503: 1/);

    // --admin after the subcommand works too
    const rules = await ctl('rules', '--admin', admin);
    expect(rules.stdout).toMatch(/^NAME\s+TYPE/m);
    expect(rules.stdout).toMatch(/api-503\s+http-error\s+yes\s+1\s+1\s+1/);
    const rulesJson = JSON.parse((await ctl('--admin', admin, 'rules', '--json')).stdout) as Array<{ name: string }>;
    expect(rulesJson.map((r) => r.name)).toEqual(['api-503']);

    expect((await ctl('--admin', admin, 'rule', 'api-503', '--disable')).stdout).toMatch(/api-503: disabled/);
    expect((await request(`${proxy.url}/api/x`)).status).toBe(200);
    expect((await ctl('--admin', admin, 'rule', 'api-503', '--enable', '--probability', '0.5')).stdout).toMatch(/enabled, probability 0.5/);
    expect(proxy.engine.stats()[0]).toMatchObject({ enabled: true, probability: 0.5 });

    const add = await ctl('--admin', admin, 'fault', 'add', '--name', 'now-503', '--path', '/v1/messages/**', '--type', 'http-error', '--status', '503', '--retry-after', '2s', '--ttl', '30s');
    expect(add.error).toBeNull();
    expect(add.stdout).toMatch(/^fault now-503 added: http-error status=503 retryAfter=2s — \/v1\/messages\/\*\*, expires in (29|30)s$/m);
    const hit = await request(`${proxy.url}/v1/messages/1`);
    expect(hit.status).toBe(503);
    expect(hit.headers['retry-after']).toBe('2');
    expect((await ctl('--admin', admin, 'fault', 'add', '--json', '{"name":"j429","match":{"path":"/j/**"},"fault":{"type":"http-error","status":429}}')).error).toBeNull();
    expect((await request(`${proxy.url}/j/1`)).status).toBe(429);
    expect((await ctl('--admin', admin, 'fault', 'remove', 'now-503')).stdout).toMatch(/removed/);
    expect((await request(`${proxy.url}/v1/messages/1`)).status).toBe(200);

    expect((await ctl('--admin', admin, 'mark', 'checkout', 'flow', 'starts')).stdout).toMatch(/marked: checkout flow starts/);
    expect((await ctl('--admin', admin, 'scenario', 'start')).stdout).toMatch(/scenario started/);
    expect((await ctl('--admin', admin, 'scenario', 'stop')).stdout).toMatch(/scenario stopped/);

    const stats = JSON.parse((await ctl('--admin', admin, 'stats')).stdout) as { exchanges: number };
    expect(stats.exchanges).toBe(5);
    expect((await ctl('--admin', admin, 'reset')).stdout).toMatch(/reset/);
    expect(proxy.stats().exchanges).toBe(0);

    await proxy.recorder.drain();
    expect(readRecords(file).some((r) => r.type === 'mark' && r.label === 'checkout flow starts')).toBe(true);
  });

  it('profile show / set FILE / select NAME, and a bad profile file fails with every problem as file:line path: message', async () => {
    const dir = tempDir();
    const good = path.join(dir, 'good.yaml');
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(good, PROFILE_503);
    fs.writeFileSync(bad, PROFILE_BAD);
    const { admin, proxy } = await startAdminProxy();
    process.env.AFTERSHOCK_ADMIN_URL = admin;

    expect((await ctl('profile')).stdout).toMatch(/^profile passthrough/);
    const set = await ctl('profile', 'set', good);
    expect(set.stdout).toMatch(/profile api-down applied \(1 rule,/);
    const show = await ctl('profile', 'show');
    expect(show.stdout).toMatch(/rule\s+api-503: http-error/);
    expect(JSON.parse((await ctl('profile', 'show', '--json')).stdout)).toMatchObject({ name: 'api-down' });

    const rejected = await ctl('profile', 'set', bad);
    expect(rejected.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    const lines = rejected.error?.message.split('\n') ?? [];
    expect(lines[0]).toMatch(/^profile .*bad\.yaml not applied \(the running profile stays\): \d+ problems$/);
    expect(lines).toContainEqual(expect.stringMatching(/bad\.yaml:8 rules\[0\]\.fault\.status: /));
    expect(lines).toContainEqual(expect.stringMatching(/bad\.yaml:11 rules\[1\]\.match/));
    expect(proxy.profile.name).toBe('api-down');

    // A description written as a YAML block: its first paragraph, on one line, not cut mid-sentence.
    fs.writeFileSync(good, PROFILE_503.replace('description: every /api call fails with 503', 'description: |\n  every /api call fails\n  with 503, the rest passes.\n\n  Second paragraph.'));
    await ctl('profile', 'set', good);
    expect((await ctl('profile')).stdout.split('\n')[0]).toBe('profile api-down — every /api call fails with 503, the rest passes.');

    expect((await ctl('profile', 'select', 'passthrough')).stdout).toMatch(/profile passthrough applied/);
    const unknown = await ctl('profile', 'select', 'nope');
    expect(unknown.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    expect(unknown.error?.message).toMatch(/404/);

    const missingFile = await ctl('profile', 'set', path.join(dir, 'missing.yaml'));
    expect(missingFile.error).toMatchObject({ code: 'ERR_BAD_OPTION' });
    expect(missingFile.error?.message).toMatch(/cannot read .*ENOENT/);
  });

  it('profile set of a .json file reads it with JSON\'s rules, as validate does (a trailing comma was applied as YAML)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.json');
    fs.writeFileSync(file, '{ "name": "json-profile", "rules": [ { "fault": { "type": "reset" } }, ] }');
    const { admin, proxy } = await startAdminProxy();
    process.env.AFTERSHOCK_ADMIN_URL = admin;
    const r = await ctl('profile', 'set', file);
    expect(r.error).toMatchObject({ code: 'ERR_ADMIN' });
    expect(r.error?.message).toMatch(/p\.json:1 .*JSON/);
    expect(proxy.profile.name).toBe('passthrough');
  });

  it('profile shows what each phase changes and which phase runs now', async () => {
    const dir = tempDir();
    const phased = path.join(dir, 'phased.yaml');
    fs.writeFileSync(
      phased,
      ['name: phased', 'rules:', '  - name: errors', '    enabled: false', '    fault: { type: http-error, status: 503 }', 'phases:', '  - name: outage', '    duration: 10m', '    overrides: { errors: { enabled: true, probability: 0.4 } }', '  - name: calm', '    duration: 10m', ''].join('\n'),
    );
    const { admin } = await startAdminProxy();
    process.env.AFTERSHOCK_ADMIN_URL = admin;
    const setPhased = await ctl('profile', 'set', phased);
    expect(setPhased.error).toBeNull();
    expect(setPhased.stdout).toMatch(/profile phased applied \(1 rule in 2 phases,/);
    const show = (await ctl('profile')).stdout;
    expect(show).toMatch(/phase\s+outage \(600000 ms\) ← now: errors on p=0\.4/);
    expect(show).toMatch(/phase\s+calm \(600000 ms\): no changes/);
    const json = JSON.parse((await ctl('profile', 'show', '--json')).stdout) as { phase: { name: string } | null; phases: Array<{ overrides: unknown }> };
    expect(json.phase?.name).toBe('outage');
    expect(json.phases[0]?.overrides).toEqual({ errors: { enabled: true, probability: 0.4 } });
  });

  it('report in text, json and html; metrics', async () => {
    const { admin, proxy } = await startAdminProxy();
    proxy.setProfile(PROFILE_503);
    for (let i = 0; i < 3; i++) await request(`${proxy.url}/api/pay`, { method: 'PUT' });
    const text = await ctl('--admin', admin, 'report');
    expect(text.error).toBeNull();
    expect(text.stdout.length).toBeGreaterThan(20);
    expect(text.stdout.trimStart().startsWith('{')).toBe(false);
    const json = JSON.parse((await ctl('--admin', admin, 'report', '--format', 'json')).stdout) as { totals: { attempts: number } };
    expect(json.totals.attempts).toBe(3);
    expect((await ctl('--admin', admin, 'report', '--format', 'html')).stdout).toMatch(/<html/i);
    const metrics = await ctl('--admin', admin, 'metrics');
    expect(metrics.stdout).toMatch(/^aftershock_requests_total\{route="\/api\/pay",method="PUT",status="503"\} 3$/m);
  });

  it('uses the token from --token or AFTERSHOCK_ADMIN_TOKEN and says clearly when it is missing or wrong', async () => {
    const { admin } = await startAdminProxy({ adminToken: 'tkn-123' });
    const none = await ctl('--admin', admin, 'rules');
    expect(none.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    expect(none.error?.message).toMatch(/needs a token \(401\).*AFTERSHOCK_ADMIN_TOKEN/);
    const wrong = await ctl('--admin', admin, '--token', 'nope', 'rules');
    expect(wrong.error?.message).toMatch(/rejected the token/);
    expect((await ctl('--admin', admin, '--token', 'tkn-123', 'rules')).error).toBeNull();
    process.env.AFTERSHOCK_ADMIN_TOKEN = 'tkn-123';
    expect((await ctl('--admin', admin, 'stats')).error).toBeNull();
  });

  it('says the control API is not reachable when nothing listens', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const r = await ctl('--admin', `127.0.0.1:${port}`, 'status');
    expect(r.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    expect(r.error?.message).toBe(
      `the proxy's control API isn't reachable at http://127.0.0.1:${port} (ECONNREFUSED); is aftershock running with --admin, and is --admin/AFTERSHOCK_ADMIN_URL right?`,
    );
  });

  it('pointed at the proxy\'s own listener (the service answers 2xx to anything), every command fails and says which address it needs', async () => {
    const { proxy } = await startAdminProxy();
    const listener = proxy.url.replace('http://', '');
    for (const args of [['reset'], ['mark', 'x'], ['scenario', 'start'], ['fault', 'remove', 'x'], ['metrics'], ['report'], ['status']]) {
      const r = await ctl('--admin', listener, ...args);
      expect(r.error, args.join(' ')).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
      expect(r.error?.message).toMatch(/is not from aftershock's control API; is --admin\/AFTERSHOCK_ADMIN_URL the control API's address \(run --admin\), not the proxy's --listen\?$/);
      expect(r.stdout).toBe('');
    }
  });

  it('rejects bad usage before calling the API', async () => {
    const { admin } = await startAdminProxy();
    expect((await ctl('--admin', admin, 'rule', 'x')).error?.message).toMatch(/--enable, --disable or --probability/);
    expect((await ctl('--admin', admin, 'rule', 'x', '--probability', '2')).error?.message).toMatch(/from 0 to 1/);
    expect((await ctl('--admin', admin, 'fault', 'add', '--type', 'reset')).error?.message).toMatch(/--name/);
    expect((await ctl('--admin', admin, 'fault', 'add', '--json', '{nope')).error?.message).toMatch(/not valid JSON/);
    const missingRule = await ctl('--admin', admin, 'rule', 'ghost', '--disable');
    expect(missingRule.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    expect(missingRule.error?.message).toMatch(/404 no rule "ghost"/);
  });

  it('status exits 1 when the proxy is not ready', async () => {
    const { admin, proxy } = await startAdminProxy({ record: '/dev/full' });
    await request(`${proxy.url}/a`);
    await proxy.recorder.drain();
    const r = await ctl('--admin', admin, 'status');
    expect(r.stdout).toMatch(/not-ready/);
    expect(r.error).toMatchObject({ code: 'ERR_ADMIN', exitCode: 1 });
    expect(r.error?.message).toMatch(/not ready: the recording is failing/);
  });
});
