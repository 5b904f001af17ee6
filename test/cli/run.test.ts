/**
 * The CLI as a user runs it: the compiled `bin/aftershock.js` in a child process (`npm test`
 * builds first), real signals, real exit statuses.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onCleanup, readRecords, request, startUpstream, startWsUpstream, tempDir, wsClient } from '../helpers.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { BIN, cli, type CliRun as Run } from './cli-process.js';


async function listeningUrl(run: Run): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /proxying (http:\/\/[\d.]+:\d+)/.exec(run.stderr());
    if (m !== null) return m[1] as string;
    if (run.child.exitCode !== null) throw new Error(`exited early: ${run.stderr()}`);
    if (Date.now() > deadline) throw new Error(`not listening: ${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('aftershock run (CLI)', () => {
  it('prints help and exits 0', async () => {
    const r = cli(['--help']);
    expect(await r.exit).toBe(0);
    expect(r.stdout()).toContain('run');
    expect(r.stdout()).toContain('analyze');
  });

  it.each([
    [['run'], /--target/],
    [['run', '--target', 'not a url'], /not a URL/],
    [['run', '--target', 'ftp://x'], /http:\/\/ or https:\/\//],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', 'nonsense'], /HOST:PORT/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--record', '/nonexistent-dir/x/rec.ndjson'], /cannot write the recording/],
    [['run', '--target', 'http://127.0.0.1:9', '--client-key', 'bogus'], /--client-key/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--upstream-timeout', '0'], /--upstream-timeout "0": must be longer than 0/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', BIN, '--tls-key', BIN], /^aftershock: --tls-cert ".*aftershock\.js": .*aftershock\.js is not a PEM certificate/m],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--tls-cert', '/nonexistent.pem', '--tls-key', BIN], /--tls-cert "\/nonexistent\.pem": cannot read the TLS certificate \/nonexistent\.pem: ENOENT/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--headers-timeout', 'abc'], /^aftershock: --headers-timeout "abc": write a duration/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--headers-timeout', '0'], /^aftershock: --headers-timeout "0": must be longer than 0/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--cookie-domain', 'bad domain'], /^aftershock: --cookie-domain "bad domain": give a domain name/],
    [['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--admin-allow-host', 'ok.example,bad host!'], /^aftershock: --admin-allow-host "ok\.example,bad host!": "host!" is not a host name/],
  ])('rejects bad input %j with one line on stderr and status 2', async (args, message) => {
    const r = cli(args);
    expect(await r.exit).toBe(2);
    const lines = r.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  it.each([
    [{ AFTERSHOCK_HEADERS_TIMEOUT: 'abc' }, /^aftershock: AFTERSHOCK_HEADERS_TIMEOUT="abc": write a duration .*\(from the environment; flag --headers-timeout\)$/],
    [{ AFTERSHOCK_TLS_CERT: '/nonexistent.pem', AFTERSHOCK_TLS_KEY: '/nonexistent.key' }, /^aftershock: AFTERSHOCK_TLS_CERT="\/nonexistent\.pem": cannot read .*\(from the environment; flag --tls-cert\)$/],
  ])('a bad value from %j names its variable and flag', async (env, message) => {
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off'], env);
    expect(await r.exit).toBe(2);
    expect(r.stderr().trim()).toMatch(message);
  });

  it('exits 2 on a bad profile, naming every problem with file and line, before anything listens', async () => {
    const file = path.join(tempDir(), 'bad.yaml');
    fs.writeFileSync(file, 'name: bad\nrules:\n  - fault: { type: http-error, status: 99 }\n  - fault: { type: nope }\n');
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--profile', file]);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/invalid profile .*bad\.yaml: 2 problems/);
    expect(r.stderr()).toContain('bad.yaml:3 rules[0].fault.status');
    expect(r.stderr()).toContain('bad.yaml:4 rules[1].fault.type');
    expect(r.stderr()).not.toContain('proxying');
  });

  it('exits 2 when the port is in use', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => blocker.close(() => r())));
    const port = (blocker.address() as net.AddressInfo).port;
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', `127.0.0.1:${port}`, '--admin', 'off']);
    expect(await r.exit).toBe(2);
    expect(r.stderr()).toMatch(/port is in use/);
  });

  it('reads its configuration from AFTERSHOCK_* variables and serves /healthz on the admin listener', async () => {
    const up = await startUpstream((_req, res) => res.end('hi'));
    const r = cli(['run'], { AFTERSHOCK_TARGET: up.url, AFTERSHOCK_LISTEN: '127.0.0.1:0', AFTERSHOCK_ADMIN: '127.0.0.1:0' });
    const url = await listeningUrl(r);
    expect((await request(`${url}/`)).text).toBe('hi');
    const admin = /control (http:\/\/[\d.]+:\d+)/.exec(r.stderr())?.[1] as string;
    expect((await request(`${admin}/healthz`)).status).toBe(200);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });

  it('on SIGTERM lets in-flight exchanges finish, flushes every record and exits 0', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('done'), 300));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file]);
    const url = await listeningUrl(r);
    const pending = Array.from({ length: 25 }, (_, i) => request(`${url}/inflight/${i}`));
    await new Promise((res) => setTimeout(res, 100));
    r.child.kill('SIGTERM');
    const replies = await Promise.all(pending);
    expect(replies.map((x) => x.status)).toEqual(Array(25).fill(200));
    expect(await r.exit).toBe(0);
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs).toHaveLength(25);
    expect(recs.every((x) => x.status === 200 && x.outcome === null)).toBe(true);
  });

  it('on SIGHUP (a closed terminal, an ssh session that drops) drains like SIGTERM: every exchange answered and recorded once, exit 0', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('done'), 300));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--no-summary'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const url = await listeningUrl(r);
    const pending = Array.from({ length: 10 }, (_, i) => request(`${url}/hup/${i}`));
    await new Promise((res) => setTimeout(res, 100));
    r.child.kill('SIGHUP');
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual(Array(10).fill(200));
    expect(await r.exit).toBe(0);
    expect(r.stderr()).toMatch(/"signal":"SIGHUP".*stopping: draining/);
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.map((x) => x.path).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `/hup/${i}`).sort());
    expect(recs.every((x) => x.status === 200 && x.outcome === null)).toBe(true);
  });

  it('on SIGHUP after the terminal is gone (nothing reads stderr or stdout any more) still drains, records, and exits 0', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('done'), 300));
    // The retry summary and the info logs are written after the signal: into the closed pipe (EPIPE, as a hung-up terminal gives EIO).
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const url = await listeningUrl(r);
    const pending = Array.from({ length: 5 }, (_, i) => request(`${url}/gone/${i}`));
    await new Promise((res) => setTimeout(res, 100));
    r.child.stderr?.destroy();
    r.child.stdout?.destroy();
    r.child.kill('SIGHUP');
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual(Array(5).fill(200));
    expect(await r.exit).toBe(0);
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.map((x) => x.path).sort()).toEqual(Array.from({ length: 5 }, (_, i) => `/gone/${i}`));
  });

  it('--admin-allow-host lets the control API answer to a named Host; other names stay refused', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--admin-allow-host', 'devbox.lan,.corp.example', '--no-summary']);
    await listeningUrl(r);
    const admin = /control (http:\/\/[\d.]+:\d+)/.exec(r.stderr())?.[1] as string;
    const port = Number(new URL(admin).port);
    const status = (host: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/rules', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status(`devbox.lan:${port}`)).toBe(200);
    expect(await status(`ci.corp.example:${port}`)).toBe(200);
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
    expect(await status(`rebind.evil.example:${port}`)).toBe(403);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });

  it('a second SIGINT exits at once (130) and still records every exchange in flight as shutdown', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    // /slow is never answered: the first signal's drain would wait for it.
    const up = await startUpstream((req, res) => {
      if (req.url !== '/slow') res.end('ok');
    });
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--no-summary']);
    const url = await listeningUrl(r);
    expect((await request(`${url}/fast`)).status).toBe(200);
    const slow = Array.from({ length: 3 }, () => request(`${url}/slow`).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code ?? 'error'));
    await new Promise((res) => setTimeout(res, 300));
    r.child.kill('SIGINT');
    await new Promise((res) => setTimeout(res, 200));
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(130);
    expect(await Promise.all(slow)).not.toContain('answered');
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.map((x) => [x.path, x.status, x.outcome]).sort()).toEqual([
      ['/fast', 200, null],
      ['/slow', null, 'shutdown'],
      ['/slow', null, 'shutdown'],
      ['/slow', null, 'shutdown'],
    ]);
    // It says so, as the last line: not a silent exit.
    const last = JSON.parse(r.stderr().trim().split('\n').at(-1) as string) as { level: number; msg: string; cutAtShutdown: number };
    expect(last).toMatchObject({ level: 40, cutAtShutdown: 3, msg: 'stopped at once (a second signal): 3 exchanges cut and recorded as shutdown' });
  });

  it('the stop line says how many requests the drain timeout cut, and counts the WebSockets it closed apart', async () => {
    // A WebSocket echo whose HTTP side never answers: the two plain requests are still in flight at the stop.
    const up = await startWsUpstream((ws) => ws.on('message', (m) => ws.send(m)));
    const r = cli(['run', '--target', up, '--listen', '127.0.0.1:0', '--admin', 'off', '--no-summary', '--drain-timeout', '300ms'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const url = await listeningUrl(r);
    const slow = Array.from({ length: 2 }, () => request(`${url}/slow`).catch(() => 'cut'));
    const ws = await wsClient(url.replace('http:', 'ws:'));
    const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
    await new Promise((res) => setTimeout(res, 300));
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    await Promise.all(slow);
    expect(await closed).toBe(1001);
    const stopped = r
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; cutAtShutdown?: number })
      .find((l) => l.msg.startsWith('stopped'));
    expect(stopped).toMatchObject({ cutAtShutdown: 2, websocketsClosed: 1, msg: 'stopped: 2 requests still in flight at the end of the drain cut and recorded as shutdown' });
  });

  it('--workers 2 shares one listening socket, records per worker, and analyze merges the recordings', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'traffic.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--workers', '2']);
    const url = await listeningUrl(r);
    await new Promise((res) => setTimeout(res, 500)); // let the second worker come up
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${url}/w/${i}`)));
    expect(replies.every((x) => x.status === 200)).toBe(true);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    const files = [path.join(dir, 'traffic.w1.ndjson'), path.join(dir, 'traffic.w2.ndjson')];
    const counts = files.map((f) => readRecords(f).filter((x) => x.type === 'http').length);
    expect(counts[0]! + counts[1]!).toBe(40);
    const a = cli(['analyze', ...files, '--format', 'json']);
    expect(await a.exit).toBe(0);
    expect(JSON.parse(a.stdout()).totals.attempts).toBe(40);
  });

  it('--workers 2: a primary killed with SIGKILL takes its workers along, and they write out every record they held first', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'traffic.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--workers', '2', '--no-summary']);
    const url = await listeningUrl(r);
    for (let i = 0; i < 200 && (r.stderr().match(/proxying/g) ?? []).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    const { execFileSync } = await import('node:child_process');
    const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(r.child.pid)]).toString().trim().split(/\s+/).filter((x) => x !== '').map(Number);
    expect(pids).toHaveLength(2);
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => request(`${url}/k/${i}`)));
    expect(replies.every((x) => x.status === 200)).toBe(true);
    // At once: the last answers' records are still in the workers' 50 ms write buffers.
    r.child.kill('SIGKILL');
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 200 && pids.some(alive); i++) await new Promise((res) => setTimeout(res, 25));
    expect(pids.some(alive)).toBe(false);
    const files = [path.join(dir, 'traffic.w1.ndjson'), path.join(dir, 'traffic.w2.ndjson')].filter((f) => fs.existsSync(f));
    const ids = files.flatMap((f) => readRecords(f).filter((x) => x.type === 'http').map((x) => (x as { path: string }).path));
    expect(ids.sort()).toEqual(Array.from({ length: 60 }, (_, i) => `/k/${i}`).sort());
  });

  it('--workers 2: each worker\'s live report says it covers only that worker\'s share of the traffic', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--workers', '2', '--no-summary']);
    const url = await listeningUrl(r);
    await new Promise((res) => setTimeout(res, 500));
    await Promise.all(Array.from({ length: 10 }, (_, i) => request(`${url}/w/${i}`)));
    const admin = /control (http:\/\/[\d.]+:\d+)/.exec(r.stderr())?.[1] as string;
    const report = JSON.parse((await request(`${admin}/report`)).body.toString()) as { limits: string[]; confidence: { level: string; reasons: string[] }; options: { worker?: unknown } };
    expect(report.limits.join(' ')).toMatch(/worker \d of 2 \(run --workers 2\): .*only the exchanges on this worker's connections/);
    expect(report.confidence.reasons.join(' ')).toMatch(/worker \d of 2/);
    expect(report.confidence.level).not.toBe('high');
    expect(report.options.worker).toMatchObject({ of: 2 });
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });

  it('--workers 2: Ctrl-C (SIGINT to the whole process group) drains like one worker does', async () => {
    const file = path.join(tempDir(), 'traffic.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 700));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--workers', '2', '--no-summary'], {}, { group: true });
    const url = await listeningUrl(r);
    await new Promise((res) => setTimeout(res, 500));
    const pending = Array.from({ length: 6 }, (_, i) => request(`${url}/slow/${i}`));
    await new Promise((res) => setTimeout(res, 200));
    process.kill(-(r.child.pid as number), 'SIGINT');
    expect((await Promise.all(pending)).map((x) => x.status)).toEqual(Array(6).fill(200));
    expect(await r.exit).toBe(0);
    const recs = [1, 2].flatMap((i) => readRecords(path.join(path.dirname(file), `traffic.w${i}.ndjson`))).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.map((x) => x.outcome)).toEqual(Array(6).fill(null));
  });

  it('--workers 2: SIGHUP to the primary alone, or to the whole process group (a terminal that closes), drains every worker', async () => {
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 700));
    for (const group of [false, true]) {
      const file = path.join(tempDir(), 'traffic.ndjson');
      const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--record', file, '--workers', '2', '--no-summary'], {}, { group });
      const url = await listeningUrl(r);
      for (let i = 0; i < 200 && (r.stderr().match(/proxying/g) ?? []).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
      const pending = Array.from({ length: 6 }, (_, i) => request(`${url}/hup/${i}`));
      await new Promise((res) => setTimeout(res, 200));
      if (group) process.kill(-(r.child.pid as number), 'SIGHUP');
      else r.child.kill('SIGHUP');
      expect((await Promise.all(pending)).map((x) => x.status), `group ${group}`).toEqual(Array(6).fill(200));
      expect(await r.exit, `group ${group}: ${r.stderr()}`).toBe(0);
      const recs = [1, 2].flatMap((i) => readRecords(path.join(path.dirname(file), `traffic.w${i}.ndjson`))).filter((x): x is HttpRecord => x.type === 'http');
      expect(recs.map((x) => x.path).sort(), `group ${group}`).toEqual(Array.from({ length: 6 }, (_, i) => `/hup/${i}`).sort());
      expect(recs.map((x) => x.outcome)).toEqual(Array(6).fill(null));
    }
  });

  it('--workers 2: a bad start exits 2 at once and says so once; a worker that dies is replaced and the run exits 1', async () => {
    const bad = path.join(tempDir(), 'bad.yaml');
    fs.writeFileSync(bad, 'name: bad\nrules:\n  - fault: { type: http-error, status: 999 }\n');
    const b = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off', '--workers', '2', '--profile', bad]);
    expect(await b.exit).toBe(2);
    expect(b.stderr().match(/invalid profile/g)).toHaveLength(1);

    const up = await startUpstream((_req, res) => res.end('ok'));
    // A fixed port, as a real deployment has: a replacement worker listens where the others do.
    const free = net.createServer();
    await new Promise<void>((res) => free.listen(0, '127.0.0.1', () => res()));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise<void>((res) => free.close(() => res()));
    const r = cli(['run', '--target', up.url, '--listen', `127.0.0.1:${port}`, '--admin', 'off', '--workers', '2', '--no-summary']);
    const url = await listeningUrl(r);
    const workers = async (): Promise<number[]> => {
      const { execFileSync } = await import('node:child_process');
      return execFileSync('ps', ['-o', 'pid=', '--ppid', String(r.child.pid)]).toString().trim().split(/\s+/).filter((s) => s !== '').map(Number);
    };
    // Both workers running (each prints its line once it listens).
    for (let i = 0; i < 200 && (r.stderr().match(/proxying/g) ?? []).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    const before = await workers();
    process.kill(before[0] as number, 'SIGKILL');
    for (let i = 0; i < 200 && !/died \(SIGKILL\).*starting a new one/.test(r.stderr()); i++) await new Promise((res) => setTimeout(res, 50));
    expect(r.stderr()).toMatch(/worker \d \(pid \d+\) died \(SIGKILL\); its in-flight exchanges, and the records it had not yet written \(up to its last 50 ms\), are lost, and a connection the primary was handing it at that moment stays open unanswered until the run stops; starting a new one/);
    for (let i = 0; i < 100 && (await workers()).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    expect(await workers()).toHaveLength(2);
    expect((await request(`${url}/after`)).status).toBe(200);
    // Stopped right after the replacement started (a stop sent before a worker listens for it was
    // once lost, and the run hung): 1, since a worker died and its in-flight exchanges were lost.
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(1);
  });

  it('--workers 2: a worker stopped on its own (SIGTERM to its pid alone) is said and replaced, and the run still exits 0', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--workers', '2', '--no-summary']);
    await listeningUrl(r);
    const workers = async (): Promise<number[]> => {
      const { execFileSync } = await import('node:child_process');
      return execFileSync('ps', ['-o', 'pid=', '--ppid', String(r.child.pid)]).toString().trim().split(/\s+/).filter((s) => s !== '').map(Number);
    };
    for (let i = 0; i < 200 && (r.stderr().match(/proxying/g) ?? []).length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    const [first] = await workers();
    process.kill(first as number, 'SIGTERM');
    for (let i = 0; i < 200 && !/stopped on its own/.test(r.stderr()); i++) await new Promise((res) => setTimeout(res, 50));
    expect(r.stderr()).toMatch(/worker \d \(pid \d+\) stopped on its own \(exit 0, a signal to it alone\?\) while the run goes on; it drained and wrote its records; starting a new one/);
    for (let i = 0; i < 100 && ((await workers()).length < 2 || (await workers()).includes(first as number)); i++) await new Promise((res) => setTimeout(res, 50));
    expect(await workers()).toHaveLength(2);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });
});
