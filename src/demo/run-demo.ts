/**
 * `runDemo`: one replayed outage, two kinds of clients, side by side, all real and on loopback.
 *
 *   naive fleet   ──▶ proxy (signal-2021) ──▶ message service (its own instance)
 *   careful fleet ──▶ proxy (signal-2021) ──▶ message service (its own instance)
 *                        │ every record
 *                        ├──▶ live analysis ──▶ per-fleet report ──▶ text comparison, HTML
 *                        └──▶ live view counters, optional NDJSON recording of both
 *
 * Each fleet gets its own proxy and its own, identical, message service, and both run at once on
 * the same clock: the profile's scenario starts on both proxies at the same instant. Sharing one
 * service would let the naive fleet's storm take the careful clients down with it — true in
 * production, but it would hide the one difference the demo is about (see the README (The demo)).
 * Running them one after the other would double the run time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { AftershockError } from '../errors.js';
import { startProxy, type ProxyHandle } from '../proxy/server.js';
import { isPipeLike, NdjsonWriter } from '../record/writer.js';
import type { AnyRecord } from '../record/schema.js';
import type { Report } from '../analysis/index.js';
import { startMessageService, type MessageService, type MessageServiceOptions, type MessageServiceStats } from './message-service.js';
import { startFleet, type Fleet, type FleetStats } from './fleet.js';
import { createCarefulPolicy, createNaivePolicy } from './retry-policy.js';
import { loadDemoTimeline } from './profile-timeline.js';
import { startLiveView, type FleetRow, type LiveView, type Phase } from './live-view.js';
import { renderDemoHtml, summarizeFleet, type FleetSummary } from './compare.js';
import { DEMO_CLIENTS, DEMO_INTERVAL_MS, DEMO_SERVICE, DEMO_TIMEOUT_MS, NAIVE_MAX_RETRIES, NAIVE_OUTBOX, serviceCapacity } from './defaults.js';

export type FleetKind = 'naive' | 'careful';

/** Options of `runDemo` (the CLI's flags map onto these). */
export interface DemoOptions {
  /** A built-in profile with phases; default `signal-2021`. */
  profile?: string;
  /** Run length in ms: the profile's timeline is scaled to it; default the profile's own (~60 s). */
  durationMs?: number;
  /** Clients per fleet; default 20 (each sends about 2.5 requests a second). */
  clients?: number;
  /** Which fleets to run; default `both`. */
  fleet?: FleetKind | 'both';
  /** Seed of the proxies' random choices and the fleets' schedules; default 1. */
  seed?: number;
  /** Where to write the HTML report; null for none; default `aftershock-demo-report.html` in the cwd (else the temp dir). */
  html?: string | null;
  /** NDJSON recording of every exchange of both fleets (one file, one header per proxy); default none. */
  record?: string | null;
  /** Live view on this stream (a TTY redraws in place; anything else gets a line every 5 s); default none. */
  view?: { stream: Writable & { isTTY?: boolean; columns?: number }; tty?: boolean } | null;
  /** Mean time between two logical requests of one client; default 400 ms. */
  intervalMs?: number;
  /** Per-attempt client timeout; default 1000 ms. */
  timeoutMs?: number;
  /** Overrides of the message service's capacity (both instances). */
  service?: MessageServiceOptions;
  /** Ends the run early (the reports cover what ran). */
  signal?: AbortSignal;
}

/** One fleet's outcome. */
export interface FleetResult {
  readonly kind: FleetKind;
  /** The proxy's retry-analysis report (same JSON as `aftershock analyze`). */
  readonly report: Report;
  /** The numbers the comparison shows, derived from `report`. */
  readonly summary: FleetSummary;
  /** What the clients themselves counted. */
  readonly clients: FleetStats;
  /** What the fleet's message service counted. */
  readonly service: MessageServiceStats;
}

/** Everything `runDemo` measured. */
export interface DemoResult {
  readonly profile: string;
  readonly durationMs: number;
  /** Factor applied to the profile's timeline. */
  readonly scale: number;
  readonly phases: readonly Phase[];
  readonly clientsPerFleet: number;
  /** Mean time between two logical requests of one client (ms). */
  readonly intervalMs: number;
  /** The message service's healthy capacity (requests per second). */
  readonly serviceCapacity: number;
  readonly seed: number;
  /** True when the run was stopped before the timeline ended. */
  readonly aborted: boolean;
  readonly fleets: readonly FleetResult[];
  readonly htmlPath: string | null;
  readonly recordPath: string | null;
}

/**
 * The run finished but its HTML report could not be written (the path was writable when the run
 * began). `result` is the whole outcome, with `htmlPath: null`, so a caller can still show it.
 *
 * @example
 * try { await runDemo(o); } catch (err) { if (err instanceof DemoHtmlWriteError) show(err.result); throw err; }
 */
export class DemoHtmlWriteError extends AftershockError {
  readonly result: DemoResult;

  constructor(message: string, result: DemoResult, cause: unknown) {
    super('ERR_BAD_OPTION', message, { cause });
    this.name = 'DemoHtmlWriteError';
    this.result = result;
  }
}

/**
 * Fails at once when the HTML report `file` cannot be written (no such folder, a folder, no
 * permission), rather than after a whole run. Opens it for append and removes it again if it was
 * not there before.
 *
 * @example checkHtmlPath('/nonexistent/x.html') // throws ERR_BAD_OPTION "cannot write the HTML report ..."
 */
export function checkHtmlPath(file: string): void {
  const existed = fs.existsSync(file);
  try {
    fs.closeSync(fs.openSync(file, 'a'));
  } catch (err) {
    throw new AftershockError('ERR_BAD_OPTION', `cannot write the HTML report ${file}: ${(err as Error).message}; give --html a file in an existing, writable folder`, { cause: err });
  }
  if (!existed) fs.rmSync(file, { force: true });
}

interface Running {
  kind: FleetKind;
  service: MessageService;
  proxy: ProxyHandle;
  fleet: Fleet | null;
  queueLimit: number;
  faults: number;
  samples: Array<{ at: number; organic: number; offered: number; goodput: number; faults: number }>;
}

/**
 * Picks the default HTML path: the cwd when writable, else the temp dir.
 *
 * @example defaultHtmlPath() // '/home/me/project/aftershock-demo-report.html'
 */
export function defaultHtmlPath(name = 'aftershock-demo-report.html', cwd = process.cwd()): string {
  try {
    fs.accessSync(cwd, fs.constants.W_OK);
    return path.resolve(cwd, name);
  } catch {
    // A folder of its own: a fixed name in the shared temp dir may be another user's file, or a
    // link they planted to a file of ours.
    return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-demo-')), name);
  }
}

/**
 * Fails at once when the HTML report and the recording are one file (the report would overwrite
 * the recording the demo then points at), or the recording is `-` (the demo's stdout is its own).
 *
 * @example checkDemoPaths('out.x', 'out.x') // throws ERR_BAD_OPTION
 */
export function checkDemoPaths(html: string | null, record: string | null): void {
  if (record === '-') throw new AftershockError('ERR_BAD_OPTION', '--record -: the demo prints its own output on stdout; give --record a file');
  if (html === null || record === null) return;
  // The file itself when it exists, else its folder's real path (a link to a folder names the same file).
  const real = (p: string): string => {
    try {
      return fs.realpathSync(p);
    } catch {
      try {
        return path.join(fs.realpathSync(path.dirname(path.resolve(p))), path.basename(p));
      } catch {
        return path.resolve(p);
      }
    }
  };
  if (real(html) === real(record)) throw new AftershockError('ERR_BAD_OPTION', `--html and --record name the same file (${path.resolve(record)}): the report would overwrite the recording; give each its own file`);
}

/**
 * Runs the demo and resolves with both fleets' reports.
 *
 * @example
 * const result = await runDemo({ durationMs: 10_000, clients: 8, html: null });
 * const [naive, careful] = result.fleets;
 * console.log(naive.report.totals.amplification, careful.report.totals.amplification);
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const clients = options.clients ?? DEMO_CLIENTS;
  const seed = options.seed ?? 1;
  const intervalMs = options.intervalMs ?? DEMO_INTERVAL_MS;
  const timeoutMs = options.timeoutMs ?? DEMO_TIMEOUT_MS;
  const serviceOptions: MessageServiceOptions = { ...DEMO_SERVICE, ...options.service };
  const which = options.fleet ?? 'both';
  if (!Number.isInteger(clients) || clients < 1 || clients > 500) throw new AftershockError('ERR_BAD_OPTION', `--clients ${clients}: give a whole number from 1 to 500`);
  if (!Number.isInteger(seed) || seed < 0) throw new AftershockError('ERR_BAD_OPTION', `--seed ${seed}: give a whole number >= 0`);
  if (options.durationMs !== undefined && !(options.durationMs >= 3000 && options.durationMs <= 600_000)) {
    throw new AftershockError('ERR_BAD_OPTION', `--duration ${options.durationMs}ms: give 3s to 10m`);
  }
  const kinds: FleetKind[] = which === 'both' ? ['naive', 'careful'] : [which];
  const timeline = await loadDemoTimeline(options.profile ?? 'signal-2021', options.durationMs);
  const htmlPath = options.html === null ? null : path.resolve(options.html ?? defaultHtmlPath());
  const recordPath = options.record === undefined || options.record === null ? null : path.resolve(options.record);
  checkDemoPaths(htmlPath, options.record === '-' ? '-' : recordPath);

  if (htmlPath !== null) checkHtmlPath(htmlPath);

  let writer: NdjsonWriter | null = null;
  if (recordPath !== null) {
    try {
      // A file is started afresh; a pipe or FIFO is not (opening and closing it here would end
      // the reader's stream before the first record).
      if (!isPipeLike(recordPath)) fs.writeFileSync(recordPath, '', { mode: 0o600 });
      writer = NdjsonWriter.open(recordPath, {
        // What a pipe's reader did not take by the end is counted and said, never waited for.
        onError: (err) => process.emitWarning(`aftershock demo recording: ${err.message}`),
      });
    } catch (err) {
      throw new AftershockError('ERR_RECORD_PATH', `cannot write the recording ${recordPath}: ${(err as Error).message}`, { cause: err });
    }
  }

  const running: Running[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(running.map((r) => r.fleet?.stop()));
    await Promise.allSettled(running.map((r) => r.proxy.close()));
    await Promise.allSettled(running.map((r) => r.service.close()));
    // Bounded: a pipe whose reader takes nothing must not hold the demo's end (what it did not
    // take is counted as lost and said through onError).
    await writer?.close({ timeoutMs: 2000 });
  };
  let view: LiveView | null = null;
  let aborted = false;
  try {
    for (const kind of kinds) {
      const service = await startMessageService(serviceOptions);
      let proxy: ProxyHandle;
      try {
        proxy = await startProxy({
          target: service.url,
          listen: '127.0.0.1:0',
          admin: false,
          profile: timeline.profile,
          seed,
          clientKey: 'header:x-client-id',
          recordHeaders: ['x-client-id'],
          record: null,
          session: `demo-${kind}`,
          drainTimeout: 2000,
        });
      } catch (err) {
        await service.close();
        throw err;
      }
      const r: Running = { kind, service, proxy, fleet: null, queueLimit: serviceOptions.queueLimit ?? DEMO_SERVICE.queueLimit, faults: 0, samples: [] };
      running.push(r);
      proxy.recorder.addListener((rec: AnyRecord) => {
        if (rec.type === 'http' && rec.fault !== null) r.faults++;
      });
      if (writer !== null) {
        const w = writer;
        w.writeLine(JSON.stringify(proxy.recorder.headerRecord));
        proxy.recorder.addListener((rec: AnyRecord) => w.writeLine(JSON.stringify(rec)));
      }
    }

    // Same instant for every fleet: the scenario clock, then the clients.
    const startedAt = Date.now();
    for (const r of running) {
      r.proxy.startScenario();
      r.samples.push({ at: startedAt, organic: 0, offered: 0, goodput: 0, faults: r.faults });
    }
    for (const r of running) {
      r.fleet = startFleet({
        kind: r.kind,
        target: r.proxy.url,
        clients,
        intervalMs,
        timeoutMs,
        seed,
        policy: r.kind === 'naive' ? () => createNaivePolicy({ maxRetries: NAIVE_MAX_RETRIES }) : (_i, random) => createCarefulPolicy({ random }),
        ...(r.kind === 'naive' ? { outbox: NAIVE_OUTBOX } : {}),
      });
    }

    if (options.view != null) {
      const title = `aftershock demo · ${timeline.profile.name} · ${kinds.map((k) => `${clients} ${k}`).join(' + ')} clients`;
      view = startLiveView({
        stream: options.view.stream,
        ...(options.view.tty === undefined ? {} : { tty: options.view.tty }),
        state: () => ({
          title,
          elapsedMs: Date.now() - startedAt,
          totalMs: timeline.totalMs,
          phases: timeline.phases,
          fleets: running.map((r) => rowOf(r)),
        }),
      });
    }

    aborted = !(await waitFor(timeline.totalMs, options.signal));
  } catch (err) {
    view?.stop();
    await closeAll();
    throw err;
  }
  view?.stop();
  await closeAll();

  const fleets: FleetResult[] = running.map((r) => {
    const report = r.proxy.report();
    return { kind: r.kind, report, summary: summarizeFleet(report), clients: (r.fleet as Fleet).stats(), service: r.service.stats() };
  });
  const result: DemoResult = {
    profile: timeline.profile.name,
    durationMs: timeline.totalMs,
    scale: timeline.scale,
    phases: timeline.phases,
    clientsPerFleet: clients,
    intervalMs,
    serviceCapacity: Math.round(serviceCapacity(serviceOptions)),
    seed,
    aborted,
    fleets,
    htmlPath,
    recordPath,
  };
  if (htmlPath !== null) {
    try {
      fs.writeFileSync(htmlPath, renderDemoHtml(result));
    } catch (err) {
      throw new DemoHtmlWriteError(`cannot write the HTML report ${htmlPath}: ${(err as Error).message}`, { ...result, htmlPath: null }, err);
    }
  }
  return result;
}

/** Resolves true after ms, or false as soon as the signal aborts. */
function waitFor(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(false);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The live view's row: rates over the last ~second from cumulative counters. */
function rowOf(r: Running): FleetRow {
  const s = r.fleet?.stats();
  const now = Date.now();
  const cur = { at: now, organic: s?.logical ?? 0, offered: s?.attempts ?? 0, goodput: s?.succeeded ?? 0, faults: r.faults };
  r.samples.push(cur);
  while (r.samples.length > 2 && (r.samples[1] as { at: number }).at <= now - 1000) r.samples.shift();
  const old = r.samples[0] as typeof cur;
  const dt = Math.max(0.001, (now - old.at) / 1000);
  const svc = r.service.stats();
  const rate = (k: 'organic' | 'offered' | 'goodput' | 'faults'): number => (now - old.at < 200 ? 0 : (cur[k] - old[k]) / dt);
  return {
    name: r.kind,
    organic: rate('organic'),
    offered: rate('offered'),
    goodput: rate('goodput'),
    faults: rate('faults'),
    busy: svc.active,
    queued: svc.queued,
    queueLimit: r.queueLimit,
  };
}
