#!/usr/bin/env node
// The benchmark runner: aftershock side by side with a direct connection, a bare http-proxy
// baseline and nginx, measured INTERLEAVED in one run (scenarios round-robin, N rounds, medians;
// ratios are computed per round, then their median) so the ratios hold on a noisy shared machine.
//
//   npm run bench                      full run (~10 min), writes BENCHMARKS.md + bench-results/latest.json
//   npm run bench -- --quick           smoke run (~1.5 min): shorter runs, one round, smaller counts
//   node bench/run.js --only http,ws   some sections only (http, paced, latency, ws, memory, analyzer, offline)
//   node bench/run.js --only http --scenarios pass,rec   some HTTP scenarios only (direct and baseline always run)
//   node bench/run.js --autocannon     use autocannon even when wrk is installed
//   node bench/run.js --no-write       print only
//   node bench/run.js --render         rewrite BENCHMARKS.md's table from bench-results/latest.json (no run)
//
// Every process (upstream, each proxy, each load generator) is a separate child on loopback; every
// load is bounded in time and count; temp files are removed at the end.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import {
  BENCH_DIR,
  ROOT,
  childPids,
  cpuMs,
  mainThreadCpuMs,
  fmt,
  fmtBytes,
  freePort,
  median,
  runAutocannon,
  runWrk,
  sleep,
  snapshotBuild,
  startNode,
  tmpDir,
  toolVersion,
  which,
} from './lib.js';
import { PROFILE_20, PROFILE_20_PLUS_10PCT, PROFILE_LATENCY, PROFILE_WS_NEVER } from './configs.js';
import { computeTargets, renderMarkdown, writeBenchmarksMd } from './report.js';

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i === -1 ? def : argv[i + 1];
};
const QUICK = flag('quick');
const ALL_SECTIONS = ['http', 'paced', 'latency', 'ws', 'memory', 'analyzer', 'offline'];
const SECTIONS = new Set((opt('only', ALL_SECTIONS.join(',')) ?? '').split(',').filter(Boolean));

const P = QUICK
  ? { rounds: 1, httpSeconds: 1, rewarmSeconds: 1, warmSeconds: 1, latencyRounds: 1, latencySeconds: 2, pacedSeconds: 1, wsRounds: 1, wsSeconds: 1, wsConnections: 50, idleConns: 1000, wsConns: 1000, analyzerKeys: [10_000, 100_000], offlineRecords: 200_000 }
  : { rounds: 5, httpSeconds: 2, rewarmSeconds: 1, warmSeconds: 2, latencyRounds: 3, latencySeconds: 10, pacedSeconds: 3, wsRounds: 5, wsSeconds: 3, wsConnections: 50, idleConns: 10_000, wsConns: 10_000, analyzerKeys: [100_000, 1_000_000], offlineRecords: 5_000_000 };
if (opt('rounds')) P.rounds = Number(opt('rounds'));

const WRK = !flag('autocannon') && which('wrk') !== null;
const NGINX = which('nginx');
const PATH = '/v1/items/42';
const tmp = tmpDir('aftershock-bench-');
const require = createRequire(import.meta.url);

const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

// ---------------------------------------------------------------- profiles

// ---------------------------------------------------------------- machine

function depVersion(name) {
  try {
    return require(`${name}/package.json`).version;
  } catch {
    return null;
  }
}

function machineFacts() {
  let commit = null;
  let dirty = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
  } catch {
    /* not a git checkout */
  }
  return {
    date: new Date().toISOString(),
    command: process.env.npm_lifecycle_event === 'bench' ? `npm run bench${argv.length ? ' -- ' + argv.join(' ') : ''}` : `node bench/run.js${argv.length ? ' ' + argv.join(' ') : ''}`,
    distBuiltAt: (() => {
      try {
        return fs.statSync(path.join(ROOT, 'dist', 'index.js')).mtime.toISOString();
      } catch {
        return null;
      }
    })(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    aftershock: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version,
    commit,
    srcDirty: dirty,
    deps: {
      'http-proxy': depVersion('http-proxy'),
      ws: depVersion('ws'),
      autocannon: depVersion('autocannon'),
      undici: depVersion('undici'),
      wrk: WRK ? toolVersion('wrk', ['-v'], /wrk (\S+)/) : null,
      nginx: NGINX ? toolVersion('nginx', ['-v'], /nginx\/(\S+)/) : null,
    },
    loadGenerator: WRK ? 'wrk -t1 (one thread)' : 'autocannon (own process)',
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    quick: QUICK,
  };
}

// ---------------------------------------------------------------- processes

async function startUpstream() {
  const up = startNode(path.join(BENCH_DIR, 'upstream.js'));
  const m = await up.ready;
  return { ...up, url: m.url, port: m.port };
}

async function startProxyChild(config, execArgv = []) {
  const c = startNode(path.join(BENCH_DIR, 'proxy-child.js'), [JSON.stringify(config)], { execArgv });
  const m = await c.ready;
  return { ...c, url: m.url };
}

async function startNginx(upstreamPort) {
  const dir = tmpDir('aftershock-bench-nginx-');
  const port = await freePort();
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, d));
  const conf = `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const { spawn } = await import('node:child_process');
  const proc = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (c) => (stderr += c));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      const r = await fetch(`${url}/`);
      await r.arrayBuffer();
      if (r.ok) break;
    } catch {
      /* not yet listening */
    }
    await sleep(50);
  }
  return {
    url,
    pids: [proc.pid, ...childPids(proc.pid)],
    stop: async () => {
      if (proc.exitCode === null) {
        const done = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function load(url, connections, seconds) {
  return WRK ? runWrk(url, { connections, seconds }) : runAutocannon(url, { connections, seconds });
}

/** A load run that also reads the CPU time the target's processes and the upstream spent on it. */
async function measuredLoad(t, up, connections, seconds) {
  const p0 = cpuMs(t.pids);
  const m0 = mainThreadCpuMs(t.pids[0]);
  const u0 = cpuMs([up.proc.pid]);
  const r = await load(t.url + PATH, connections, seconds);
  const p1 = cpuMs(t.pids);
  const m1 = mainThreadCpuMs(t.pids[0]);
  const u1 = cpuMs([up.proc.pid]);
  r.mainCpuUsPerReq = m0 === null || m1 === null || r.requests === 0 ? null : ((m1 - m0) * 1000) / r.requests;
  r.cpuUsPerReq = p0 === null || p1 === null || r.requests === 0 ? null : ((p1 - p0) * 1000) / r.requests;
  r.cpuCores = p0 === null || p1 === null ? null : (p1 - p0) / (seconds * 1000);
  r.upstreamCpuUsPerReq = u0 === null || u1 === null || r.requests === 0 ? null : ((u1 - u0) * 1000) / r.requests;
  return r;
}

async function paced(url, connections, seconds) {
  const c = startNode(path.join(BENCH_DIR, 'load-paced.js'), [JSON.stringify({ url, connections, ratePerConn: 100, seconds })]);
  try {
    await c.ready;
    return await c.request({ type: 'run' });
  } finally {
    await c.stop();
  }
}

async function wsLoad(url, connections, seconds) {
  const c = startNode(path.join(BENCH_DIR, 'load-ws.js'), [JSON.stringify({ url, connections, seconds })]);
  try {
    await c.ready;
    return await c.request({ type: 'run' });
  } finally {
    await c.stop();
  }
}

/** Rotates the list by `k` so no scenario always runs first (or right after the same neighbour). */
function rotate(list, k) {
  const n = list.length;
  return list.map((_, i) => list[(i + k) % n]);
}

function summarize(runs, key = 'rps') {
  return median(runs.map((r) => r[key]));
}

// ---------------------------------------------------------------- sections

async function httpSection(up, results) {
  const rec = (name) => path.join(tmp, `${name}.ndjson`);
  const defs = [
    { id: 'direct', label: 'direct to the upstream', url: up.url },
    { id: 'baseline', label: 'bare http-proxy (baseline, keep-alive agent)', config: { kind: 'baseline', target: up.url } },
    { id: 'pass', label: 'aftershock passthrough (no recording, no live analysis)', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: false } } },
    { id: 'rec', label: 'aftershock + recording', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: false, record: rec('rec') } } },
    { id: 'rec-live-20', label: 'aftershock + recording + live analysis + 20 rules (none fire)', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: rec('rec-live-20') }, profileYaml: PROFILE_20 } },
    { id: 'fault-10', label: 'same + http-error 503 on 10 % of requests', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: rec('fault-10') }, profileYaml: PROFILE_20_PLUS_10PCT } },
  ];
  if (NGINX) defs.push({ id: 'nginx', label: 'nginx reverse proxy (1 worker, keepalive upstream)', nginx: true });
  const only = opt('scenarios', null)?.split(',');
  const targets = [];
  for (const d of defs) {
    if (only && !only.includes(d.id) && d.id !== 'direct' && d.id !== 'baseline') continue;
    if (d.url) targets.push({ ...d, pids: [up.proc.pid], stop: async () => undefined });
    else if (d.nginx) {
      const n = await startNginx(up.port);
      targets.push({ ...d, url: n.url, pids: n.pids, stop: n.stop });
    } else {
      const c = await startProxyChild(d.config);
      targets.push({ ...d, url: c.url, pids: [c.proc.pid], stop: c.stop, child: c });
    }
  }
  try {
    log(`http: warming ${targets.length} targets (${P.warmSeconds} s each)`);
    for (const t of targets) await load(t.url + PATH, 50, P.warmSeconds);
    const conns = [10, 100];
    const cells = [];
    for (const c of conns) for (const t of targets) cells.push({ t, c });
    const runs = new Map(); // `${id}@${c}` -> [run per round]
    for (let round = 0; round < P.rounds; round++) {
      for (const { t, c } of rotate(cells, round * 3)) {
        // A process idle for the ~20 s the other scenarios take loses warm state (V8 shrinks the
        // young generation and may flush bytecode): re-warm it, unmeasured, right before its run.
        await load(t.url + PATH, c, P.rewarmSeconds);
        const r = await measuredLoad(t, up, c, P.httpSeconds);
        const key = `${t.id}@${c}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key)[round] = r;
      }
      log(`http: round ${round + 1}/${P.rounds} done`);
    }
    const rows = [];
    for (const c of conns) {
      for (const t of targets) {
        const rs = runs.get(`${t.id}@${c}`);
        const direct = runs.get(`direct@${c}`);
        const base = runs.get(`baseline@${c}`);
        const nginx = runs.get(`nginx@${c}`);
        const ratio = (other) => (other ? median(rs.map((r, i) => r.rps / other[i].rps)) : null);
        rows.push({
          id: t.id,
          label: t.label,
          connections: c,
          rps: summarize(rs),
          p50: summarize(rs, 'p50'),
          p99: summarize(rs, 'p99'),
          vsDirect: ratio(direct),
          vsBaseline: ratio(base),
          vsNginx: ratio(nginx),
          // Added p50 latency vs direct, per round, then the median.
          addedP50: median(rs.map((r, i) => r.p50 - direct[i].p50)),
          // CPU per request of the process(es) under test (for direct: the upstream's), and the
          // median per-round ratio baseline-CPU / this-CPU: >1 means cheaper than the baseline.
          cpuUsPerReq: summarize(rs, 'cpuUsPerReq'),
          cpuCores: summarize(rs, 'cpuCores'),
          cpuEffVsBaseline: base ? median(rs.map((r, i) => (r.cpuUsPerReq && base[i].cpuUsPerReq ? base[i].cpuUsPerReq / r.cpuUsPerReq : null))) : null,
          cpuEffVsNginx: nginx ? median(rs.map((r, i) => (r.cpuUsPerReq && nginx[i].cpuUsPerReq ? nginx[i].cpuUsPerReq / r.cpuUsPerReq : null))) : null,
          upstreamCpuUsPerReq: summarize(rs, 'upstreamCpuUsPerReq'),
          non2xxPct: (100 * rs.reduce((a, r) => a + r.non2xx, 0)) / Math.max(1, rs.reduce((a, r) => a + r.requests, 0)),
          errors: rs.reduce((a, r) => a + r.errors, 0),
          mainCpuUsPerReq: summarize(rs, 'mainCpuUsPerReq'),
          rounds: rs.map((r) => ({ rps: r.rps, p50: r.p50, p99: r.p99, non2xx: r.non2xx, errors: r.errors, cpuUsPerReq: r.cpuUsPerReq, mainCpuUsPerReq: r.mainCpuUsPerReq, cpuCores: r.cpuCores })),
        });
      }
    }
    results.http = { seconds: P.httpSeconds, rounds: P.rounds, path: PATH, rows };
    for (const t of targets) {
      if (t.child) {
        const s = await t.child.request({ type: 'stats' }).catch(() => null);
        if (s) t.stats = { exchanges: s.exchanges, recording: s.recording, byStatus: s.byStatus };
      }
    }
    results.httpChildStats = Object.fromEntries(targets.filter((t) => t.stats).map((t) => [t.id, t.stats]));
  } finally {
    for (const t of targets) await t.stop();
  }
}

async function pacedSection(up, results) {
  const rec = path.join(tmp, 'paced.ndjson');
  const defs = [
    { id: 'direct', label: 'direct', url: up.url },
    { id: 'baseline', label: 'bare http-proxy', config: { kind: 'baseline', target: up.url } },
    { id: 'rec', label: 'aftershock + recording', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: false, record: path.join(tmp, 'paced-rec.ndjson') } } },
    { id: 'rec-live-20', label: 'aftershock + recording + live analysis + 20 rules', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: rec }, profileYaml: PROFILE_20 } },
  ];
  const targets = [];
  for (const d of defs) {
    if (d.url) targets.push({ ...d, stop: async () => undefined });
    else {
      const c = await startProxyChild(d.config);
      targets.push({ ...d, url: c.url, stop: c.stop });
    }
  }
  try {
    for (const t of targets) await load(t.url + PATH, 20, 1);
    const runs = new Map();
    const rounds = Math.max(1, Math.min(3, P.rounds));
    for (let round = 0; round < rounds; round++) {
      for (const t of rotate(targets, round)) {
        const r = await paced(t.url + PATH, 10, P.pacedSeconds);
        if (!runs.has(t.id)) runs.set(t.id, []);
        runs.get(t.id)[round] = r;
      }
    }
    log(`paced: ${rounds} rounds done`);
    const direct = runs.get('direct');
    results.paced = {
      connections: 10,
      ratePerConnection: 100,
      seconds: P.pacedSeconds,
      rounds,
      rows: targets.map((t) => {
        const rs = runs.get(t.id);
        return {
          id: t.id,
          label: t.label,
          rps: summarize(rs),
          p50: summarize(rs, 'p50'),
          p99: summarize(rs, 'p99'),
          addedP50: median(rs.map((r, i) => r.p50 - direct[i].p50)),
          addedP99: median(rs.map((r, i) => r.p99 - direct[i].p99)),
          errors: rs.reduce((a, r) => a + r.errors, 0),
        };
      }),
    };
  } finally {
    for (const t of targets) await t.stop();
  }
}

/** [ts, end - ts] of every http record of a recording, sorted by ts. */
function recordedDurations(file) {
  const out = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{"v":1,"type":"http"')) continue;
    const r = JSON.parse(line);
    out.push([r.ts, r.end - r.ts]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

/** p50/p99 (ms) of the durations of the exchanges that started within [from, to]. */
function percentilesWithin(durations, [from, to]) {
  const d = durations.filter(([ts]) => ts >= from && ts <= to).map(([, ms]) => ms).sort((a, b) => a - b);
  if (d.length === 0) return null;
  const q = (p) => d[Math.min(d.length - 1, Math.floor(p * d.length))];
  return { p50: q(0.5), p99: q(0.99), n: d.length };
}

async function latencySection(up, results) {
  const defs = [
    { id: 'aftershock', label: 'aftershock, latency fault 100ms (+ recording, live analysis)', record: path.join(tmp, 'latency.ndjson'), config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: path.join(tmp, 'latency.ndjson') }, profileYaml: PROFILE_LATENCY } },
    { id: 'naive', label: 'http-proxy + setTimeout(100) (naive)', config: { kind: 'baseline', target: up.url, delayMs: 100 } },
    // No proxy at all: the upstream itself answers after setTimeout(100). What this machine, wrk and
    // one Node timer give: the floor under any proxy's figure.
    { id: 'floor', label: 'no proxy: the upstream answers after setTimeout(100) (floor)', url: up.url, path: '/sleep/100' },
  ];
  const targets = [];
  for (const d of defs) {
    if (d.url !== undefined) {
      targets.push({ ...d, stop: async () => undefined, child: { request: async () => undefined } });
      continue;
    }
    const c = await startProxyChild(d.config);
    targets.push({ ...d, path: PATH, url: c.url, stop: c.stop, child: c });
  }
  try {
    for (const t of targets) await load(t.url + t.path, 100, 1);
    const cells = [];
    for (const c of [10, 100]) for (const t of targets) cells.push({ t, c });
    const runs = new Map();
    for (let round = 0; round < P.latencyRounds; round++) {
      for (const { t, c } of rotate(cells, round)) {
        // Same as the throughput runs: a short run at the same concurrency right before the measured
        // one, so both proxies are measured warm (connections to the upstream open, code optimised)
        // and not on the first 100 ms cycle after ~20 s of idling.
        await load(t.url + t.path, c, P.rewarmSeconds);
        await t.child.request({ type: 'eldStart' });
        const from = Date.now();
        const r = await load(t.url + t.path, c, P.latencySeconds);
        r.window = [from, Date.now()];
        r.eld = await t.child.request({ type: 'eldStop' });
        const key = `${t.id}@${c}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key)[round] = r;
      }
    }
    log(`latency: ${P.latencyRounds} rounds done`);
    // The proxy's own view of each run: its recorded exchanges' duration (end - ts), from the
    // request's head to the response's end, without the time a request waited to be read.
    for (const t of targets) {
      if (t.record === undefined) continue;
      await t.stop();
      t.stop = async () => undefined;
      const durations = recordedDurations(t.record);
      for (const [key, rs] of runs) {
        if (!key.startsWith(`${t.id}@`)) continue;
        for (const r of rs) r.inside = percentilesWithin(durations, r.window);
      }
    }
    results.latency = {
      delayMs: 100,
      seconds: P.latencySeconds,
      rounds: P.latencyRounds,
      rows: cells.map(({ t, c }) => {
        const rs = runs.get(`${t.id}@${c}`);
        return {
          id: t.id,
          label: t.label,
          connections: c,
          rps: summarize(rs),
          p50: summarize(rs, 'p50'),
          p99: summarize(rs, 'p99'),
          max: summarize(rs, 'max'),
          p50Error: summarize(rs, 'p50') - 100,
          p99Error: summarize(rs, 'p99') - 100,
          // The proxy's own event-loop delay during the run (ms): what the proxy adds by blocking.
          loopDelayP99: median(rs.map((r) => r.eld?.p99)),
          loopDelayMax: median(rs.map((r) => r.eld?.max)),
          insideP50: median(rs.map((r) => r.inside?.p50)),
          insideP99: median(rs.map((r) => r.inside?.p99)),
          errors: rs.reduce((a, r) => a + r.errors + r.non2xx, 0),
        };
      }),
    };
  } finally {
    for (const t of targets) await t.stop();
  }
}

async function wsSection(up, results) {
  const defs = [
    { id: 'direct', label: 'direct to the upstream echo', url: up.url },
    { id: 'aftershock', label: 'through aftershock (+ recording, live analysis)', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: path.join(tmp, 'ws.ndjson') } } },
    { id: 'ws-fault', label: 'through aftershock, ws-delay rule that does not fire', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: path.join(tmp, 'ws-fault.ndjson') }, profileYaml: PROFILE_WS_NEVER } },
  ];
  const targets = [];
  for (const d of defs) {
    if (d.url) targets.push({ ...d, pids: [up.proc.pid], stop: async () => undefined });
    else {
      const c = await startProxyChild(d.config);
      targets.push({ ...d, url: c.url, pids: [c.proc.pid], stop: c.stop });
    }
  }
  const wsUrl = (u) => u.replace(/^http/, 'ws') + '/ws/echo';
  try {
    for (const t of targets) await wsLoad(wsUrl(t.url), P.wsConnections, 1);
    const runs = new Map();
    for (let round = 0; round < P.wsRounds; round++) {
      for (const t of rotate(targets, round)) {
        const c0 = cpuMs(t.pids);
        const r = await wsLoad(wsUrl(t.url), P.wsConnections, P.wsSeconds);
        const c1 = cpuMs(t.pids);
        r.cpuUsPerTrip = c0 === null || c1 === null || r.trips === 0 ? null : ((c1 - c0) * 1000) / r.trips;
        if (!runs.has(t.id)) runs.set(t.id, []);
        runs.get(t.id)[round] = r;
      }
    }
    log(`ws: ${P.wsRounds} rounds done`);
    const direct = runs.get('direct');
    results.ws = {
      connections: P.wsConnections,
      seconds: P.wsSeconds,
      rounds: P.wsRounds,
      rows: targets.map((t) => {
        const rs = runs.get(t.id);
        return {
          id: t.id,
          label: t.label,
          rps: summarize(rs),
          p50: summarize(rs, 'p50'),
          p99: summarize(rs, 'p99'),
          vsDirect: median(rs.map((r, i) => r.rps / direct[i].rps)),
          // CPU per round trip of the process under test (direct: the echo server's).
          cpuUsPerTrip: summarize(rs, 'cpuUsPerTrip'),
          errors: rs.reduce((a, r) => a + r.errors, 0),
        };
      }),
    };
  } finally {
    for (const t of targets) await t.stop();
  }
}

async function memorySection(up, results) {
  const upFacts = await up.request({ type: 'facts' });
  const rows = [];
  const cases = [
    { id: 'aftershock-idle-http', label: 'aftershock (+ recording, live analysis), idle keep-alive connections', kind: 'http', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: path.join(tmp, 'mem-http.ndjson'), maxConnections: 50_000 } }, want: P.idleConns },
    { id: 'baseline-idle-http', label: 'bare http-proxy, idle keep-alive connections', kind: 'http', config: { kind: 'baseline', target: up.url }, want: P.idleConns },
    { id: 'aftershock-ws', label: 'aftershock (+ recording, live analysis), open WebSockets', kind: 'ws', config: { kind: 'aftershock', target: up.url, options: { liveAnalysis: true, record: path.join(tmp, 'mem-ws.ndjson'), maxConnections: 50_000 } }, want: P.wsConns },
  ];
  for (const m of cases) {
    const proxy = await startProxyChild(m.config, ['--expose-gc']);
    let holder = null;
    try {
      await load(proxy.url + PATH, 20, 1);
      const before = await proxy.request({ type: 'gc' });
      // Each held connection costs the proxy one fd (two for a WebSocket: client + upstream), the
      // upstream one per WebSocket and the holder one: stay under every process's limit.
      const perConn = m.kind === 'ws' ? 2 : 1;
      const limits = [Math.floor((before.nofile - 200) / perConn), upFacts.nofile - 200];
      const count = Math.min(m.want, ...limits.filter((x) => Number.isFinite(x)));
      holder = startNode(path.join(BENCH_DIR, 'hold-connections.js'), [JSON.stringify({ url: m.kind === 'ws' ? proxy.url.replace(/^http/, 'ws') + '/ws/idle' : proxy.url + PATH, count, kind: m.kind })]);
      await holder.ready;
      const opened = await holder.request({ type: 'open' });
      await sleep(1000);
      const after = await proxy.request({ type: 'facts' });
      const afterGc = await proxy.request({ type: 'gc' });
      rows.push({
        id: m.id,
        label: m.label,
        wanted: m.want,
        attempted: count,
        held: opened.held,
        failed: opened.failed,
        firstError: opened.firstError,
        openSeconds: opened.seconds,
        limitedBy: count < m.want ? `open files limit ${before.nofile} (hard limit; cannot be raised in this sandbox)` : null,
        rssBefore: before.rss,
        rssAfter: after.rss,
        rssAfterGc: afterGc.rss,
        heapAfterGc: afterGc.heapUsed,
        fds: after.fds,
        perConnKiB: opened.held > 0 ? (after.rss - before.rss) / opened.held / 1024 : null,
      });
      log(`memory: ${m.id}: ${opened.held} held, rss ${fmtBytes(before.rss)} -> ${fmtBytes(after.rss)}`);
    } finally {
      await holder?.stop();
      await proxy.stop();
    }
    await sleep(500);
  }
  results.memory = { rows };
}

async function analyzerSection(results) {
  const c = startNode(path.join(BENCH_DIR, 'analyzer-memory.js'), [JSON.stringify({ checkpoints: P.analyzerKeys })], { execArgv: ['--expose-gc'] });
  try {
    await c.ready;
    results.analyzer = await c.request({ type: 'run' });
    log(`analyzer: ${JSON.stringify(results.analyzer.points.map((p) => [p.keys, fmtBytes(p.heapUsed)]))}`);
  } finally {
    await c.stop();
  }
}

async function offlineSection(results) {
  const file = path.join(tmp, 'offline.ndjson');
  try {
    const gen = startNode(path.join(BENCH_DIR, 'gen-recording.js'), [file, String(P.offlineRecords)]);
    const g = await gen.ready;
    await gen.exited;
    log(`offline: generated ${fmt(g.records)} records (${fmtBytes(g.bytes)}) in ${g.seconds.toFixed(1)} s`);
    // Each in its own process (its own peak RSS): the default (threads by core count, split by
    // client key) and one thread, side by side.
    const runOnce = async (threads) => {
      const c = startNode(path.join(BENCH_DIR, 'offline-analysis.js'), threads === null ? [file] : [file, String(threads)]);
      await c.ready;
      const r = await c.request({ type: 'run' });
      await c.stop();
      return { ...r, recordsPerSecond: g.records / r.seconds };
    };
    const def = await runOnce(null);
    log(`offline: ${fmt(def.recordsPerSecond)} records/s in ${def.partitions} thread(s), peak RSS ${fmtBytes(def.peakRss)}`);
    const one = await runOnce(1);
    log(`offline: ${fmt(one.recordsPerSecond)} records/s in 1 thread, peak RSS ${fmtBytes(one.peakRss)}`);
    results.offline = { records: g.records, fileBytes: g.bytes, generateSeconds: g.seconds, ...def, oneThread: one };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------- main

async function main() {
  const started = Date.now();
  const results = { machine: machineFacts(), params: P, sections: [...SECTIONS] };
  results.machine.build = snapshotBuild(tmp) === path.join(tmp, 'build', 'dist') ? 'dist/ (copied at the start of the run)' : process.env.AFTERSHOCK_DIST;
  log(`machine: ${results.machine.cpu}, ${results.machine.cores} cores, node ${results.machine.node}; load: ${results.machine.loadGenerator}${NGINX ? '' : '; nginx not installed: its rows are skipped'}`);
  if (!WRK) log('wrk not installed (or --autocannon): using autocannon in its own process');
  const needsUpstream = ['http', 'paced', 'latency', 'ws', 'memory'].some((s) => SECTIONS.has(s));
  const up = needsUpstream ? await startUpstream() : null;
  const sections = [
    ['http', () => httpSection(up, results)],
    ['paced', () => pacedSection(up, results)],
    ['latency', () => latencySection(up, results)],
    ['ws', () => wsSection(up, results)],
    ['memory', () => memorySection(up, results)],
    ['analyzer', () => analyzerSection(results)],
    ['offline', () => offlineSection(results)],
  ];
  results.failures = {};
  try {
    for (const [name, fn] of sections) {
      if (!SECTIONS.has(name)) continue;
      const t0 = Date.now();
      log(`section ${name}...`);
      try {
        await fn();
      } catch (err) {
        results.failures[name] = String(err?.message ?? err);
        log(`section ${name} FAILED: ${err?.stack ?? err}`);
      }
      log(`section ${name}: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    await up?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  results.elapsedSeconds = (Date.now() - started) / 1000;
  results.machine.loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  results.targets = computeTargets(results);
  const md = renderMarkdown(results);
  console.log(md);
  if (!flag('no-write')) {
    fs.mkdirSync(path.join(ROOT, 'bench-results'), { recursive: true });
    const out = opt('json', path.join(ROOT, 'bench-results', QUICK ? 'quick.json' : 'latest.json'));
    fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    // Only a full run of every section replaces the table in BENCHMARKS.md.
    const full = !QUICK && ALL_SECTIONS.every((s) => SECTIONS.has(s)) && !opt('scenarios') && !opt('json');
    if (full) writeBenchmarksMd(path.join(ROOT, 'BENCHMARKS.md'), md);
    log(`wrote ${path.relative(ROOT, out)}${full ? ' and BENCHMARKS.md' : ' (only a full run touches BENCHMARKS.md)'}`);
  }
  log(`done in ${results.elapsedSeconds.toFixed(0)} s`);
  process.exit(Object.keys(results.failures).length === 0 ? 0 : 1);
}

if (flag('render')) {
  // The table again from the last full run's numbers (after a change to the report's layout).
  const results = JSON.parse(fs.readFileSync(opt('json', path.join(ROOT, 'bench-results', 'latest.json')), 'utf8'));
  results.targets = computeTargets(results);
  writeBenchmarksMd(path.join(ROOT, 'BENCHMARKS.md'), renderMarkdown(results));
  log('rewrote the table in BENCHMARKS.md from the saved numbers');
} else {
  await main();
}
