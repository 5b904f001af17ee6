/**
 * `aftershock run`: start the proxy from flags or AFTERSHOCK_* environment variables, stop
 * gracefully on SIGTERM, SIGINT or SIGHUP (drain, flush the recording, print the retry summary).
 * SIGHUP is a stop like the others: it is what a closed terminal or a dropped ssh session sends,
 * and left to Node's default it killed the proxy with its in-flight exchanges unrecorded.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { Command, Option } from 'commander';
import { startProxy, type ProxyOptions } from '../proxy/server.js';
import { cookieDomainProblem } from '../proxy/options.js';
import { pino } from 'pino';
import { createLogger, LOG_LEVELS, parseLogLevel, type Logger } from '../log.js';
import { AftershockError, ProfileError } from '../errors.js';
import { formatReport } from '../analysis/index.js';
import { parseAllowHosts } from '../admin/request-guard.js';
import { parseDurationOption } from '../faults/lib/duration.js';
import { BOOLEAN_ENV_HELP, meansOff, nameEnvSource } from './env.js';
import { outliveTerminal, STOP_SIGNALS } from './signals.js';

interface RunFlags {
  target?: string;
  listen: string;
  admin: string;
  adminToken?: string;
  adminAllowHost?: string;
  profile: string;
  watch: boolean;
  record?: string;
  recordMessages?: boolean;
  recordHeaders?: string;
  redact?: string;
  clientKey: string;
  seed?: string;
  session?: string;
  upstreamTimeout: string;
  upstreamIdleTimeout: string;
  drainTimeout: string;
  insecure?: boolean;
  hostHeader?: string;
  rewriteRedirects?: boolean;
  cookieDomain?: string;
  tlsCert?: string;
  tlsKey?: string;
  faultHeader: boolean;
  liveAnalysis: boolean;
  summary: boolean;
  logLevel: string;
  workers: string;
  headersTimeout: string;
  maxConnections: string;
}

const opt = (flags: string, description: string, env: string): Option => new Option(flags, description).env(env);

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('proxy to --target, injecting the faults of --profile and recording every exchange')
    .addOption(opt('-t, --target <url>', 'upstream URL (http:// or https://, may carry a path prefix)', 'AFTERSHOCK_TARGET'))
    .addOption(opt('-l, --listen <host:port>', 'where clients connect', 'AFTERSHOCK_LISTEN').default('127.0.0.1:8080'))
    .addOption(opt('--admin <host:port|off>', 'control API address (loopback by default); off, none or false: no control API', 'AFTERSHOCK_ADMIN').default('127.0.0.1:8081'))
    .addOption(opt('--admin-token <token>', 'require Authorization: Bearer <token> on the control API', 'AFTERSHOCK_ADMIN_TOKEN'))
    .addOption(
      opt('--admin-allow-host <names>', 'more Host names the control API answers to, comma-separated (.example.com: it and its subdomains)', 'AFTERSHOCK_ADMIN_ALLOW_HOST'),
    )
    .addOption(opt('-p, --profile <name|file>', 'built-in profile name or YAML/JSON file', 'AFTERSHOCK_PROFILE').default('passthrough'))
    .addOption(opt('--no-watch', 'do not reload the profile file when it changes', 'AFTERSHOCK_NO_WATCH'))
    .addOption(
      opt('-r, --record <file|-|off>', 'write the NDJSON traffic recording here (- for stdout; off, none or empty: no recording, e.g. to turn off a preset AFTERSHOCK_RECORD; ./off for a file named off)', 'AFTERSHOCK_RECORD'),
    )
    .addOption(opt('--record-messages', 'also record every WebSocket message', 'AFTERSHOCK_RECORD_MESSAGES'))
    .addOption(opt('--record-headers <names>', 'extra request headers to record, comma-separated', 'AFTERSHOCK_RECORD_HEADERS'))
    .addOption(opt('--redact <names>', 'extra header and query parameter names to redact, comma-separated', 'AFTERSHOCK_REDACT'))
    .addOption(opt('--client-key <spec>', 'header:<name> | ip | ip+ua | auto', 'AFTERSHOCK_CLIENT_KEY').default('auto'))
    .addOption(opt('--seed <n>', 'seed for every random choice (overrides the profile)', 'AFTERSHOCK_SEED'))
    .addOption(opt('--session <name>', 'name of this session, written into the recording', 'AFTERSHOCK_SESSION'))
    .addOption(opt('--upstream-timeout <duration>', 'answer 504 when the upstream is silent this long (counted from the end of the request body)', 'AFTERSHOCK_UPSTREAM_TIMEOUT').default('30s'))
    .addOption(opt('--upstream-idle-timeout <duration>', 'reset the client when a response body the upstream began goes this long without a byte (streams: keep it above their heartbeat)', 'AFTERSHOCK_UPSTREAM_IDLE_TIMEOUT').default('5m'))
    .addOption(opt('--drain-timeout <duration>', 'time in-flight exchanges get at shutdown', 'AFTERSHOCK_DRAIN_TIMEOUT').default('10s'))
    .addOption(opt('-k, --insecure', 'accept self-signed upstream certificates', 'AFTERSHOCK_INSECURE'))
    // Checked in the action, not with commander's choices: an error about a variable names it (and an empty one is unset).
    .addOption(opt('--host-header <mode>', 'target: send the target host; preserve: the client\'s', 'AFTERSHOCK_HOST_HEADER'))
    .addOption(opt('--rewrite-redirects', 'rewrite Location headers that point at the target', 'AFTERSHOCK_REWRITE_REDIRECTS'))
    .addOption(opt('--cookie-domain <domain>', 'rewrite Set-Cookie domains to this', 'AFTERSHOCK_COOKIE_DOMAIN'))
    .addOption(opt('--tls-cert <file>', 'serve TLS with this PEM certificate', 'AFTERSHOCK_TLS_CERT'))
    .addOption(opt('--tls-key <file>', 'PEM key for --tls-cert', 'AFTERSHOCK_TLS_KEY'))
    .addOption(opt('--no-fault-header', 'do not add x-aftershock-fault to injected responses', 'AFTERSHOCK_NO_FAULT_HEADER'))
    .addOption(opt('--no-live-analysis', 'do not analyse retries live', 'AFTERSHOCK_NO_LIVE_ANALYSIS'))
    .addOption(opt('--no-summary', 'do not print the retry summary at shutdown', 'AFTERSHOCK_NO_SUMMARY'))
    .addOption(opt('--log-level <level>', LOG_LEVELS.join('|'), 'AFTERSHOCK_LOG_LEVEL').default('info'))
    .addOption(opt('--headers-timeout <duration>', 'time a client gets to send its request headers (slowloris defence)', 'AFTERSHOCK_HEADERS_TIMEOUT').default('20s'))
    .addOption(opt('--max-connections <n>', 'refuse client connections beyond this many', 'AFTERSHOCK_MAX_CONNECTIONS').default('10000'))
    .addOption(opt('--workers <n>', 'processes sharing the listening socket (recordings and control API per worker)', 'AFTERSHOCK_WORKERS').default('1'))
    .addHelpText('after', `\n${BOOLEAN_ENV_HELP}`)
    .action(async (given: RunFlags, cmd: Command) => {
      // Checked here, once, before any worker starts: pino's own error for a level it does not know was a crash (status 3).
      const flags = { ...withOffValues(given), logLevel: parseLogLevel('--log-level', given.logLevel) };
      const workers = Number(flags.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
        throw new AftershockError('ERR_BAD_OPTION', `--workers ${JSON.stringify(flags.workers)}: give a whole number from 1 to 64`);
      }
      if (workers > 1 && cluster.isPrimary) {
        await superviseWorkers(workers, parseDurationOption('--drain-timeout', flags.drainTimeout));
        return;
      }
      if (!cluster.isWorker) {
        await runProxy(flags);
        return;
      }
      try {
        await runProxy(perWorker(flags));
      } catch (err) {
        // The primary prints a start failure once, for all workers, and stops the others.
        if (!(err instanceof AftershockError)) throw err;
        const told = nameEnvSource(cmd, err);
        process.send?.({ aftershock: 'start-failed', message: told.message, exitCode: told.exitCode });
        process.exitCode = err.exitCode;
      }
      // A worker's IPC channel to the primary would keep it alive after a clean stop.
      process.disconnect();
    });
}

/**
 * `--record off` (or `none`, `false`, empty, in any case) is no recording, as `--admin off` is no
 * control API: the container image presets AFTERSHOCK_RECORD and AFTERSHOCK_ADMIN, and this is how
 * they are turned off. A file named off is still `./off`. `--admin` comes back as `off`.
 */
function withOffValues(flags: RunFlags): RunFlags {
  const out: RunFlags = meansOff(flags.admin) ? { ...flags, admin: 'off' } : { ...flags };
  if (flags.record !== undefined && meansOff(flags.record)) delete out.record;
  return out;
}

/** `--host-header`, checked here so that its error names AFTERSHOCK_HOST_HEADER when the value came from there. */
function hostHeaderMode(raw: string | undefined): 'target' | 'preserve' | undefined {
  if (raw === undefined) return undefined;
  const v = raw.trim().toLowerCase();
  if (v === 'target' || v === 'preserve') return v;
  throw new AftershockError('ERR_BAD_OPTION', `--host-header ${JSON.stringify(raw)}: give target (send the target's host) or preserve (send the client's)`);
}

/** What the primary tells its workers (signals reach a worker twice from a terminal: see `superviseWorkers`). */
type WorkerMessage =
  | { aftershock: 'stop' }
  | { aftershock: 'stop-now' }
  | { aftershock: 'start-failed'; message: string; exitCode: number }
  | { aftershock: 'listening' };

/**
 * Several workers share one listening socket through Node's cluster module. Each worker records to
 * its own file (`traffic.ndjson` -> `traffic.w2.ndjson`; \`aftershock analyze\` merges them by time)
 * and serves its own control API on the admin port plus its index minus one.
 */
function perWorker(flags: RunFlags): RunFlags {
  const i = Number(process.env.AFTERSHOCK_WORKER_INDEX ?? '1');
  const out: RunFlags = { ...flags, summary: false };
  if (flags.record !== undefined && flags.record !== '-') {
    const ext = path.extname(flags.record);
    out.record = `${flags.record.slice(0, flags.record.length - ext.length)}.w${i}${ext || '.ndjson'}`;
  }
  if (flags.admin !== 'off') {
    const m = /^(.*):(\d+)$/.exec(flags.admin);
    if (m !== null && m[2] !== '0') out.admin = `${m[1]}:${Number(m[2]) + i - 1}`;
  }
  return out;
}

/**
 * Runs and watches the workers.
 * - Stopping: the primary tells the workers by message, not by signal. Ctrl-C in a terminal
 *   reaches every process of the group, so a forwarded signal would arrive as a worker's second
 *   one and make it leave at once instead of draining. A second signal to the primary is passed on
 *   as "stop now".
 * - A worker that fails to start (bad input, a port in use): its message is printed once, the
 *   others are stopped, and the primary exits with the worker's status (2 for bad input).
 * - A worker that dies while running is logged and replaced (at most 5 times a minute per
 *   worker); the primary's status is then 1, since that worker's in-flight exchanges were lost.
 */
async function superviseWorkers(n: number, drainMs: number): Promise<void> {
  let stopping = false;
  let status = 0;
  let startFailed = false;
  const restarts = new Map<number, number[]>();
  let live = 0;
  let allDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allDone = resolve));
  // A worker hears messages only once it listens for them (it says so): until then the last word
  // for it is held.
  const listening = new Set<Worker>();
  const held = new Map<Worker, WorkerMessage>();
  const send = (w: Worker, msg: WorkerMessage): void => {
    if (!listening.has(w)) held.set(w, msg);
    else if (w.isConnected()) w.send(msg, () => undefined);
  };
  const tell = (msg: WorkerMessage): void => {
    for (const w of Object.values(cluster.workers ?? {})) if (w !== undefined) send(w, msg);
  };
  const fork = (index: number): void => {
    const w = cluster.fork({ AFTERSHOCK_WORKER_INDEX: String(index) });
    live++;
    w.on('message', (m: WorkerMessage) => {
      if (m?.aftershock === 'listening') {
        listening.add(w);
        const msg = held.get(w);
        held.delete(w);
        if (msg !== undefined) send(w, msg);
        return;
      }
      if (m?.aftershock !== 'start-failed' || startFailed) return;
      startFailed = true;
      stopping = true;
      status = m.exitCode;
      process.stderr.write(`aftershock: ${m.message}\n`);
      tell({ aftershock: 'stop' });
    });
    w.once('exit', (code, signal) => {
      live--;
      listening.delete(w);
      held.delete(w);
      const clean = code === 0 && signal === null;
      if (!stopping) {
        // A worker that left while the run goes on: died, or stopped on its own (a SIGTERM sent to
        // its pid alone drains it and it exits 0). Either way the run is one worker short: say so
        // and start a new one. Only a death is a failure of the run.
        const now = Date.now();
        const recent = (restarts.get(index) ?? []).filter((t) => now - t < 60_000);
        if (!clean) status = Math.max(status, 1);
        if (recent.length < 5) {
          recent.push(now);
          restarts.set(index, recent);
          process.stderr.write(
            clean
              ? `aftershock: worker ${index} (pid ${w.process.pid}) stopped on its own (exit 0, a signal to it alone?) while the run goes on; it drained and wrote its records; starting a new one\n`
              : `aftershock: worker ${index} (pid ${w.process.pid}) died (${signal ?? `exit ${code}`}); its in-flight exchanges, and the records it had not yet written (up to its last 50 ms), are lost, and a connection the primary was handing it at that moment stays open unanswered until the run stops; starting a new one\n`,
          );
          fork(index);
          return;
        }
        process.stderr.write(`aftershock: worker ${index} ${clean ? 'stopped' : 'died'} ${recent.length + 1} times within a minute; not restarting it\n`);
      } else if (!clean && !startFailed && !(signal !== null && !forced && (STOP_SIGNALS as readonly string[]).includes(signal))) {
        // A worker the user's own Ctrl-C (a signal to the whole group) ended before it had its
        // handlers, still starting on a busy machine, stopped as asked: no failure.
        status = Math.max(status, code ?? 1);
      }
      if (live === 0) allDone();
    });
  };
  for (let i = 1; i <= n; i++) fork(i);
  let signals = 0;
  let backstop: NodeJS.Timeout | null = null;
  /** The backstop signalled workers that did not stop in time: their end is a failure. */
  let forced = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    outliveTerminal(signal);
    stopping = true;
    tell({ aftershock: signals++ === 0 ? 'stop' : 'stop-now' });
    // Backstop: a worker still there well after its drain time is signalled, then killed, so the
    // primary never waits for ever.
    backstop ??= setTimeout(() => {
      const left = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && !w.isDead());
      if (left.length === 0) return;
      forced = true;
      process.stderr.write(`aftershock: ${left.length} worker(s) still running ${Math.round((drainMs + 3000) / 1000)} s after the stop; signalling them\n`);
      for (const w of left) w?.process.kill('SIGTERM');
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) if (w !== undefined && !w.isDead()) w.process.kill('SIGKILL');
      }, 3000).unref();
    }, drainMs + 3000);
    backstop.unref();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  await done;
  process.exitCode = status;
}

/** Logs go out as NDJSON (not pretty) when stderr is no terminal: a container, a pipe, a file. */
function logsAreNdjson(): boolean {
  return process.stderr.isTTY !== true;
}

/**
 * One line in the logs' own format, whatever the log level: the start line and the shutdown
 * summary are `run`'s output, not diagnostics, and a JSON log pipeline must be able to read them.
 */
function writeLogLine(msg: string, fields: Record<string, unknown>, level = 30): void {
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), name: 'aftershock', msg, ...fields })}\n`);
}

function positiveInt(option: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: give a whole number above 0`);
  return n;
}

/**
 * Writes out every line the logger still holds (its destination writes asynchronously), so what
 * the start logged precedes the start line: a write under way is waited for, then the rest is
 * written synchronously (pino's `flush()` returns at once with this destination).
 */
async function flushLogs(log: Logger): Promise<void> {
  type Destination = { flushSync?: () => void; _writing?: boolean; once?: (event: string, fn: () => void) => void };
  const stream = (log as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym];
  // A write already under way is not part of flushSync (it goes on in the background and landed
  // after the start line on a loaded CI machine): wait for the destination to drain (at most 1 s).
  if (stream?._writing === true && typeof stream.once === 'function') {
    const once = stream.once.bind(stream);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 1000);
      once('drain', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
  try {
    stream?.flushSync?.();
  } catch {
    log.flush(); // a destination not ready yet: as much as can be done
  }
}

/** `--cookie-domain` checked here, so its error names the flag (or its variable). */
function cookieDomainOption(raw: string): string {
  const problem = cookieDomainProblem(raw);
  if (problem !== null) throw new AftershockError('ERR_BAD_OPTION', `--cookie-domain ${JSON.stringify(raw)}: ${problem}`);
  return raw.trim();
}

/** `--headers-timeout` read here, so its errors name the flag (or its variable), not the library option. */
function headersTimeoutMs(raw: string): number {
  const ms = parseDurationOption('--headers-timeout', raw);
  if (!(ms > 0)) throw new AftershockError('ERR_BAD_OPTION', `--headers-timeout ${JSON.stringify(raw)}: must be longer than 0 (it is how long a client may take to send its request head)`);
  return ms;
}

async function runProxy(flags: RunFlags): Promise<void> {
  // A worker may hear the group's Ctrl-C while it still starts (a busy machine): held, and acted
  // on once it runs, rather than ending it by the signal (which read as a worker that died).
  let early: NodeJS.Signals | null = null;
  const hold = (sig: NodeJS.Signals): void => {
    early ??= sig;
  };
  if (cluster.isWorker) for (const sig of STOP_SIGNALS) process.on(sig, hold);
  const log = createLogger({ level: flags.logLevel });
  const list = (s: string | undefined): string[] => (s === undefined ? [] : s.split(',').map((x) => x.trim()).filter((x) => x !== ''));
  let seed: number | undefined;
  if (flags.seed !== undefined) {
    seed = Number(flags.seed);
    // As a profile's seed: a whole number from 0 (and one JavaScript holds exactly).
    if (flags.seed.trim() === '' || !Number.isSafeInteger(seed) || seed < 0) throw new AftershockError('ERR_BAD_OPTION', `--seed ${JSON.stringify(flags.seed)}: give a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
  if (flags.target === undefined) {
    throw new AftershockError('ERR_BAD_TARGET', 'missing --target (or AFTERSHOCK_TARGET): the URL of the service to put aftershock in front of');
  }
  const hostHeader = hostHeaderMode(flags.hostHeader);
  const options: ProxyOptions = {
    target: flags.target,
    listen: flags.listen,
    admin: flags.admin === 'off' ? false : flags.admin,
    profile: flags.profile,
    watch: flags.watch,
    record: flags.record ?? null,
    recordMessages: flags.recordMessages === true,
    recordHeaders: list(flags.recordHeaders),
    redact: list(flags.redact),
    clientKey: flags.clientKey,
    upstreamTimeout: flags.upstreamTimeout,
    upstreamIdleTimeout: flags.upstreamIdleTimeout,
    drainTimeout: flags.drainTimeout,
    headersTimeout: headersTimeoutMs(flags.headersTimeout),
    maxConnections: positiveInt('--max-connections', flags.maxConnections),
    insecure: flags.insecure === true,
    rewriteRedirects: flags.rewriteRedirects === true,
    labelFaults: flags.faultHeader,
    liveAnalysis: flags.liveAnalysis,
    logger: log,
    ...(cluster.isWorker ? { worker: { index: Number(process.env.AFTERSHOCK_WORKER_INDEX ?? '1'), of: Number(flags.workers) } } : {}),
    ...(seed === undefined ? {} : { seed }),
    ...(flags.adminToken === undefined ? {} : { adminToken: flags.adminToken }),
    ...(flags.adminAllowHost === undefined ? {} : { adminAllowHosts: parseAllowHosts(flags.adminAllowHost) }),
    ...(flags.session === undefined ? {} : { session: flags.session }),
    ...(hostHeader === undefined ? {} : { hostHeader }),
    ...(flags.cookieDomain === undefined ? {} : { cookieDomain: cookieDomainOption(flags.cookieDomain) }),
    ...(flags.tlsCert === undefined ? {} : { tlsCert: flags.tlsCert }),
    ...(flags.tlsKey === undefined ? {} : { tlsKey: flags.tlsKey }),
  };
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy(options);
  } catch (err) {
    // A bad profile is bad input to `run` like any other (status 2); `profiles validate` keeps 1.
    if (err instanceof ProfileError) throw new AftershockError(err.code, err.message, { cause: err, exitCode: 2 });
    throw err;
  }
  // What the start logged (a control API open without a token) goes out before the start line,
  // not after it: the logger writes asynchronously, the start line at once.
  await flushLogs(log);
  const started = `proxying ${proxy.url} -> ${flags.target}  profile ${proxy.profile.name}  control ${proxy.adminUrl ?? 'off'}  recording ${flags.record ?? 'off'}`;
  if (logsAreNdjson()) {
    writeLogLine(started, { listen: proxy.url, target: flags.target, profile: proxy.profile.name, control: proxy.adminUrl ?? 'off', recording: flags.record ?? 'off' });
  } else process.stderr.write(`aftershock: ${started}\n`);

  const shutdownCut = { http: 0, ws: 0 };
  proxy.recorder.addListener((r) => {
    if (r.type === 'http' && r.outcome === 'shutdown') shutdownCut.http++;
    else if (r.type === 'ws' && r.outcome === 'shutdown') shutdownCut.ws++;
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    let closed = false;
    // A worker asked to stop by the primary may get the terminal's own signal just after (the same
    // Ctrl-C reaches every process of the group): that one echo is not a second Ctrl-C.
    let echoDueUntil = 0;
    // A second signal: record what is in flight as shutdown, write it all out, leave now.
    const quitNow = (): never => {
      proxy.abortNow();
      // Said at any level and written synchronously (the process leaves on the next line).
      const cut = proxy.stats().byOutcome.shutdown ?? 0;
      const said = `stopped at once (a second signal): ${cut} exchange${cut === 1 ? '' : 's'} cut and recorded as shutdown`;
      if (logsAreNdjson()) writeLogLine(said, { cutAtShutdown: cut, records: proxy.recorder.count }, 40);
      else process.stderr.write(`aftershock: ${said}\n`);
      process.exit(130);
    };
    const stop = (signal: string): void => {
      if (stopping) {
        if (signal !== 'primary' && Date.now() < echoDueUntil) {
          echoDueUntil = 0;
          return;
        }
        quitNow();
      }
      stopping = true;
      outliveTerminal(signal);
      if (signal === 'primary') echoDueUntil = Date.now() + 2000;
      log.info({ signal }, 'stopping: draining in-flight exchanges');
      void proxy.close().then(() => {
        closed = true;
        const st = proxy.recorder.stats;
        if (flags.summary && proxy.analyzer !== null && proxy.recorder.count > 0) {
          try {
            const report = proxy.report();
            const text = formatReport(report, 'text');
            if (logsAreNdjson()) {
              const t = report.totals;
              writeLogLine(`retry summary: ${report.verdict}`, {
                summary: { verdict: report.verdict, reasons: report.verdictReasons, attempts: t.attempts, retries: t.retries, amplification: t.amplification, findings: report.findings.map((f) => f.code) },
                text,
              });
            } else process.stderr.write(text + '\n');
          } catch (err) {
            log.error({ err }, 'could not print the retry summary');
          }
        }
        // HTTP exchanges still in flight when the drain timeout ran out were cut (recorded as
        // shutdown); open WebSockets are closed with 1001 at the start of every stop, counted apart.
        const cut = shutdownCut.http;
        log.info(
          { records: proxy.recorder.count, written: st.written, failed: st.failed, cutAtShutdown: cut, websocketsClosed: shutdownCut.ws },
          cut === 0 ? 'stopped' : `stopped: ${cut} request${cut === 1 ? '' : 's'} still in flight at the end of the drain cut and recorded as shutdown`,
        );
        for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
        resolve();
      });
    };
    const onSignal = (sig: NodeJS.Signals): void => stop(sig);
    for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
    for (const sig of STOP_SIGNALS) process.off(sig, hold);
    if (early !== null) stop(early);
    if (cluster.isWorker) {
      // From the primary: 'stop' joins a stop already under way (the terminal's signal reached
      // this worker too); 'stop-now' is the second signal the primary got.
      process.on('message', (m: WorkerMessage) => {
        if (m?.aftershock === 'stop' && !stopping) stop('primary');
        else if (m?.aftershock === 'stop-now') quitNow();
      });
      // Messages sent before a listener exists are dropped: the primary holds a stop for this
      // worker until it says it listens (a stop during start-up is acted on now, not lost).
      process.send?.({ aftershock: 'listening' });
      // A primary that dies (SIGKILL) takes the IPC channel with it, and Node's cluster code then
      // exits this worker at once: what it has recorded but not yet written (the last ~50 ms) and
      // what is in flight (as shutdown) go out first, synchronously.
      const onExit = (): void => {
        if (closed) return;
        try {
          proxy.abortNow();
        } catch {
          /* leaving anyway */
        }
      };
      process.once('exit', onExit);
    }
  });
  log.flush();
}
