// Shared helpers of the benchmark scripts: child processes with IPC, wrk/autocannon runs, medians.
//
// Every process a bench starts is tracked here and killed (by its own pid) when the bench exits,
// so a crashed run leaves nothing listening.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH_DIR);

const children = new Set();

function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  children.clear();
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * Starts `node script ...args` in its own process with an IPC channel, through bash so the open
 * files limit can be raised first (as far as the hard limit allows).
 *
 * @returns {{ proc: import('node:child_process').ChildProcess, ready: Promise<any>, request: (msg: object) => Promise<any>, stop: () => Promise<void> }}
 */
export function startNode(script, args = [], { execArgv = [], env = {}, stdio = 'inherit', nofile = 65536 } = {}) {
  const proc = spawn(
    'bash',
    ['-c', `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`, process.execPath, ...execArgv, script, ...args],
    { stdio: ['ignore', stdio, 'inherit', 'ipc'], env: { ...process.env, ...env } },
  );
  children.add(proc);
  let seq = 0;
  const pending = new Map();
  let onReady;
  let onFail;
  const ready = new Promise((resolve, reject) => {
    onReady = resolve;
    onFail = reject;
  });
  ready.catch(() => undefined);
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      const err = new Error(`${path.basename(script)} exited (${code ?? signal}) before answering`);
      onFail(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      resolve();
    });
  });
  proc.on('message', (m) => {
    if (m && m.type === 'ready') onReady(m);
    else if (m && m.type === 'error') onFail(new Error(`${path.basename(script)}: ${m.message}`));
    else if (m && m.reqId !== undefined && pending.has(m.reqId)) {
      const p = pending.get(m.reqId);
      pending.delete(m.reqId);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m.result);
    }
  });
  const request = (msg) =>
    new Promise((resolve, reject) => {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        reject(new Error(`${path.basename(script)} is not running`));
        return;
      }
      const reqId = ++seq;
      pending.set(reqId, { resolve, reject });
      proc.send({ ...msg, reqId });
    });
  const stop = async (timeoutMs = 15000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      proc.send({ type: 'stop' });
    } catch {
      proc.kill('SIGTERM');
    }
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(t);
  };
  return { proc, ready, request, stop, exited };
}

/**
 * Child side of `startNode`: answers requests by `type` with the handlers given; 'stop' runs
 * `onStop` then exits 0 (so --cpu-prof writes its profile).
 */
export function serveParent(handlers, onStop = async () => undefined) {
  process.on('message', async (m) => {
    if (m.type === 'stop') {
      try {
        await onStop();
      } finally {
        process.exit(0);
      }
      return;
    }
    const h = handlers[m.type];
    if (h === undefined) {
      process.send({ reqId: m.reqId, error: `unknown request ${m.type}` });
      return;
    }
    try {
      process.send({ reqId: m.reqId, result: await h(m) });
    } catch (err) {
      process.send({ reqId: m.reqId, error: String(err?.stack ?? err) });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

/** Memory and file-descriptor facts of this process (Linux /proc). */
export function processFacts() {
  const mu = process.memoryUsage();
  let hwm = null;
  let rss = mu.rss;
  let fds = null;
  let nofile = null;
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    if (m) hwm = Number(m[1]) * 1024;
    fds = fs.readdirSync('/proc/self/fd').length;
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const l = /Max open files\s+(\d+)/.exec(limits);
    if (l) nofile = Number(l[1]);
  } catch {
    /* not Linux */
  }
  return { rss, peakRss: hwm, heapUsed: mu.heapUsed, heapTotal: mu.heapTotal, external: mu.external, arrayBuffers: mu.arrayBuffers, fds, nofile };
}

/** A free loopback TCP port (for servers that cannot listen on port 0 and report, e.g. nginx). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function which(cmd) {
  try {
    return execFileSync('bash', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

export function toolVersion(cmd, args, re) {
  // Some tools print their version on stderr (nginx -v) or exit non-zero (wrk -v): read both.
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  return (re.exec(out)?.[1] ?? out.split('\n')[0] ?? '').trim() || null;
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const WRK_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
`;
let wrkScriptPath = null;

/**
 * One closed-loop load run with wrk (one thread): req/s and latency percentiles in ms.
 * `non2xx` counts answers outside 200-399 (wrk's "status" errors).
 */
export function runWrk(url, { connections, seconds, timeoutS = 10 }) {
  if (wrkScriptPath === null) {
    const dir = tmpDir('aftershock-wrk-');
    wrkScriptPath = path.join(dir, 'report.lua');
    fs.writeFileSync(wrkScriptPath, WRK_SCRIPT);
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, `--timeout`, `${timeoutS}s`, '-s', wrkScriptPath, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    const kill = setTimeout(() => p.kill('SIGKILL'), (seconds + timeoutS + 20) * 1000);
    p.once('exit', () => {
      clearTimeout(kill);
      children.delete(p);
      const m = /WRKJSON (\{.*\})/.exec(out);
      if (!m) {
        reject(new Error(`wrk gave no result: ${out.slice(0, 500)}`));
        return;
      }
      const j = JSON.parse(m[1]);
      const secs = j.duration_us / 1e6;
      resolve({
        tool: 'wrk',
        requests: j.requests,
        rps: j.requests / secs,
        p50: j.p50_us / 1000,
        p90: j.p90_us / 1000,
        p99: j.p99_us / 1000,
        max: j.max_us / 1000,
        mean: j.mean_us / 1000,
        errors: j.connect + j.read + j.write + j.timeout,
        non2xx: j.status,
      });
    });
  });
}

/** The same run with autocannon, in its own process (used when wrk is not installed). */
export async function runAutocannon(url, { connections, seconds }) {
  const c = startNode(path.join(BENCH_DIR, 'load-autocannon.js'), [JSON.stringify({ url, connections, seconds })]);
  try {
    await c.ready;
    return await c.request({ type: 'run' });
  } finally {
    await c.stop();
  }
}

export function fmt(n, digits = 0) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

let clkTck = null;
/**
 * CPU time (ms, user + system) used so far by the processes `pids` (Linux /proc; null elsewhere).
 * CPU per request is the benchmark's noise-resistant figure: a process that waits for a core on a
 * busy machine loses throughput, but not CPU time per request.
 */
export function cpuMs(pids) {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command: state(0) ppid(1) ... utime(11) stime(12).
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      return null;
    }
  }
  return (ticks * 1000) / clkTck;
}

/** The pids whose parent is `pid` (e.g. nginx's workers). */
export function childPids(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Copies the build under test (dist/) to a private folder and points every child at it through
 * AFTERSHOCK_DIST, so a rebuild by someone else in the same working tree during a long run does
 * not change the code half-way through. Returns the folder (or the one already set).
 */
export function snapshotBuild(tmp) {
  if (process.env.AFTERSHOCK_DIST) return path.resolve(process.env.AFTERSHOCK_DIST);
  const root = path.join(tmp, 'build');
  fs.mkdirSync(root, { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(root, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  fs.symlinkSync(path.join(ROOT, 'profiles'), path.join(root, 'profiles'));
  process.env.AFTERSHOCK_DIST = path.join(root, 'dist');
  return process.env.AFTERSHOCK_DIST;
}

/** The URL of a module of the build under test (AFTERSHOCK_DIST, else this checkout's dist/). */
export function distModule(rel) {
  const dist = process.env.AFTERSHOCK_DIST ? path.resolve(process.env.AFTERSHOCK_DIST) : path.join(ROOT, 'dist');
  return pathToFileURL(path.join(dist, rel)).href;
}

/** CPU time (ms) of a process's main thread alone (the JS thread for node; /proc/<pid>/task/<pid>). */
export function mainThreadCpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / (clkTck ?? 100);
  } catch {
    return null;
  }
}
