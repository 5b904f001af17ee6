/**
 * GET /metrics: valid Prometheus text, counters that move as traffic flows, bounded route labels,
 * and one registry per proxy (two proxies in one process never mix their numbers).
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createRouteLabeler, normalizeRoute, OTHER_ROUTE } from '../../src/admin/route-label.js';
import { onCleanup, request, startWsUpstream, waitFor } from '../helpers.js';
import { api, ctl, PROFILE_503, startAdminProxy } from './admin-helpers.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

/**
 * A small parser of the Prometheus text format (0.0.4): HELP/TYPE comments and samples with
 * escaped label values. Throws on any line it cannot read, so a malformed scrape fails the test.
 */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m !== null) {
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`line ${i + 1}: bad type ${rest}`);
        if (types.has(name)) throw new Error(`line ${i + 1}: ${name} typed twice`);
        types.set(name, rest);
      } else help.set(name, rest);
      continue;
    }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (m === null) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const [, name, rawLabels, rawValue] = m as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    if (rawLabels !== undefined && rawLabels !== '') {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let pos = 0;
      while (pos < rawLabels.length) {
        re.lastIndex = pos;
        const lm = re.exec(rawLabels);
        if (lm === null) throw new Error(`line ${i + 1}: bad labels ${rawLabels}`);
        labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
    }
    // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes "Nan").
    const lower = rawValue.toLowerCase();
    const value = lower === '+inf' || lower === 'inf' ? Infinity : lower === '-inf' ? -Infinity : lower === 'nan' ? NaN : Number(rawValue);
    if (Number.isNaN(value) && lower !== 'nan') throw new Error(`line ${i + 1}: bad value ${rawValue}`);
    const family = name.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(name) && !(types.get(family) === 'histogram' || types.get(family) === 'summary')) {
      throw new Error(`line ${i + 1}: sample ${name} without a TYPE`);
    }
    samples.push({ name, labels, value });
  }
  return { types, help, samples };
}

function value(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = e.samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

function sum(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return e.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
}

async function scrape(admin: string, token?: string): Promise<Exposition> {
  const r = await api(admin, 'GET', '/metrics', token === undefined ? {} : { token });
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(r.text);
}

describe('route labels', () => {
  it('folds numeric, UUID and hex segments into :id and leaves words alone', () => {
    expect(normalizeRoute('/')).toBe('/');
    expect(normalizeRoute('/v1/users/42/orders/7')).toBe('/v1/users/:id/orders/:id');
    expect(normalizeRoute('/files/3f2504e0-4f89-11d3-9a0c-0305e82c3301')).toBe('/files/:id');
    expect(normalizeRoute('/commits/9fceb02d0ae598e95dc970b74767f19372d61af8')).toBe('/commits/:id');
    expect(normalizeRoute('/objects/507f1f77bcf86cd799439011/x')).toBe('/objects/:id/x');
    expect(normalizeRoute('/cafe/feed/decade')).toBe('/cafe/feed/decade');
    expect(normalizeRoute('/v2/health')).toBe('/v2/health');
    expect(normalizeRoute('/a?b=1')).toBe('/a');
    expect(normalizeRoute('/' + 'x'.repeat(500)).length).toBe(200);
  });

  it('caps distinct routes and sends the rest to other', () => {
    const routes = createRouteLabeler(3);
    expect(['/a', '/b/1', '/b/2', '/c'].map((p) => routes.label(p))).toEqual(['/a', '/b/:id', '/b/:id', '/c']);
    expect(routes.label('/d')).toBe(OTHER_ROUTE);
    expect(routes.label('/a')).toBe('/a');
    expect(routes.size).toBe(3);
  });
});

describe('GET /metrics', () => {
  it('parses as Prometheus text and its counters move as traffic flows', async () => {
    const { admin, proxy } = await startAdminProxy();
    const before = await scrape(admin);
    expect(before.types.get('aftershock_requests_total')).toBe('counter');
    expect(before.types.get('aftershock_request_duration_seconds')).toBe('histogram');
    expect(before.types.get('aftershock_amplification')).toBe('gauge');
    expect(sum(before, 'aftershock_requests_total')).toBe(0);
    // process metrics from prom-client's default collectors
    expect(before.types.has('process_cpu_user_seconds_total')).toBe(true);
    expect(before.types.has('nodejs_heap_size_total_bytes')).toBe(true);
    expect(value(before, 'aftershock_ready')).toBe(1);
    expect(value(before, 'aftershock_info', { profile: 'passthrough' })).toBe(1);

    proxy.setProfile(PROFILE_503);
    for (const id of [1, 2, 3]) await request(`${proxy.url}/users/${id}`);
    for (let i = 0; i < 4; i++) await request(`${proxy.url}/api/orders/${i}`, { method: 'POST', headers: { 'user-agent': 'retrier/1' } });

    const after = await scrape(admin);
    expect(value(after, 'aftershock_requests_total', { route: '/users/:id', method: 'GET', status: '200' })).toBe(3);
    expect(value(after, 'aftershock_requests_total', { route: '/api/orders/:id', method: 'POST', status: '503' })).toBe(4);
    expect(value(after, 'aftershock_faults_injected_total', { rule: 'api-503', type: 'http-error' })).toBe(4);
    expect(value(after, 'aftershock_rule_injected', { rule: 'api-503' })).toBe(4);
    expect(value(after, 'aftershock_rule_enabled', { rule: 'api-503' })).toBe(1);
    expect(value(after, 'aftershock_request_duration_seconds_count', { injected: 'true' })).toBe(4);
    expect(value(after, 'aftershock_request_duration_seconds_count', { injected: 'false' })).toBe(3);
    expect(value(after, 'aftershock_request_duration_seconds_bucket', { injected: 'false', le: '+Inf' })).toBe(3);
    expect(value(after, 'aftershock_response_ttfb_seconds_count', { injected: 'false' })).toBe(3);
    // The live analysis sees the POST /api/orders/* attempts (distinct paths: no retries there).
    expect(value(after, 'aftershock_attempts')).toBe(7);
    expect(value(after, 'aftershock_amplification')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'aftershock_info', { profile: 'api-down' })).toBe(1);
    expect(value(after, 'aftershock_info', { profile: 'passthrough' })).toBeUndefined();

    // Retries of one request move the retry gauges.
    for (let i = 0; i < 3; i++) await request(`${proxy.url}/api/pay`, { method: 'PUT', headers: { 'user-agent': 'retrier/1' } });
    const retried = await scrape(admin);
    expect(value(retried, 'aftershock_retries')).toBeGreaterThanOrEqual(2);
    expect(value(retried, 'aftershock_retry_ratio')).toBeGreaterThan(0);
  });

  it('counts recording written/failed and marks', async () => {
    const { admin, proxy } = await startAdminProxy({ record: '/dev/full' });
    await request(`${proxy.url}/x`);
    await api(admin, 'POST', '/marks', { body: { label: 'm' } });
    await proxy.recorder.drain();
    const e = await scrape(admin);
    expect(value(e, 'aftershock_recording_written_total')).toBe(0);
    expect(value(e, 'aftershock_recording_failed_total')).toBe(3);
    expect(value(e, 'aftershock_marks_total')).toBe(1);
    expect(value(e, 'aftershock_ready')).toBe(0);
  });

  it('caps route labels: 250 distinct routes give at most 200 labels plus other', async () => {
    const { admin, proxy } = await startAdminProxy();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    onCleanup(() => agent.destroy());
    await Promise.all(Array.from({ length: 250 }, (_, i) => request(`${proxy.url}/route-${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}x`, { agent })));
    const e = await scrape(admin);
    const routes = new Set(e.samples.filter((s) => s.name === 'aftershock_requests_total').map((s) => s.labels.route));
    expect(routes.size).toBe(201);
    expect(routes.has('other')).toBe(true);
    expect(value(e, 'aftershock_requests_total', { route: 'other' })).toBe(50);
    expect(sum(e, 'aftershock_requests_total')).toBe(250);
  });

  it('keeps each proxy\'s numbers in its own registry', async () => {
    const a = await startAdminProxy();
    const b = await startAdminProxy();
    await request(`${a.proxy.url}/only-a`);
    await request(`${a.proxy.url}/only-a`);
    const ea = await scrape(a.admin);
    const eb = await scrape(b.admin);
    expect(value(ea, 'aftershock_requests_total', { route: '/only-a' })).toBe(2);
    expect(sum(eb, 'aftershock_requests_total')).toBe(0);
    expect(value(eb, 'aftershock_requests_total', { route: '/only-a' })).toBeUndefined();
  });

  it('counts WebSocket connections and quick reconnects', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (m) => ws.send(m)));
    const { admin, proxy } = await startAdminProxy({ target: upstream });
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/live/feed', { headers: { 'user-agent': 'ws-client/1' } });
      onCleanup(() => ws.terminate());
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const closed = new Promise<void>((r) => ws.once('close', () => r()));
      ws.close(1000);
      await closed;
    }
    await waitFor(() => proxy.stats().inFlight === 0);
    await waitFor(() => proxy.stats().byStatus['101'] === 3);
    const e = await scrape(admin);
    expect(value(e, 'aftershock_websocket_connections_total', { status: '101' })).toBe(3);
    expect(value(e, 'aftershock_websocket_reconnects_total')).toBe(2);
    expect(value(e, 'aftershock_websocket_duration_seconds_count')).toBe(3);
  });

  it('needs the token when one is set', async () => {
    const { admin } = await startAdminProxy({ adminToken: 't0ken' });
    expect((await api(admin, 'GET', '/metrics')).status).toBe(401);
    const e = await scrape(admin, 't0ken');
    expect(e.types.get('aftershock_requests_total')).toBe('counter');
  });
});

describe('a worker of run --workers says so', () => {
  it('in /stats, in ctl status and as a worker label on every series of its /metrics', async () => {
    const { admin, proxy } = await startAdminProxy({ worker: { index: 2, of: 3 } });
    expect((await request(`${proxy.url}/x`)).status).toBe(200);
    expect((await api(admin, 'GET', '/stats')).json.worker).toEqual({ index: 2, of: 3 });
    const status = await ctl('--admin', admin, 'status');
    expect(status.stdout).toMatch(/worker\s+2 of 3 \(run --workers\): the counts below are this worker's connections only/);
    const text = (await api(admin, 'GET', '/metrics')).text;
    const series = text.split('\n').filter((l) => l.startsWith('aftershock_'));
    expect(series.length).toBeGreaterThan(5);
    for (const l of series) expect(l).toContain('worker="2"');
    // One proxy on its own: no worker, no label.
    const one = await startAdminProxy();
    expect((await api(one.admin, 'GET', '/stats')).json.worker).toBeNull();
    expect((await api(one.admin, 'GET', '/metrics')).text).not.toContain('worker=');
  });
});
