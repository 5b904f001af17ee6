/**
 * The control API's routes, one table: path, pattern, and per method a one-line summary (GET /
 * lists them) and a handler. Handlers only parse input and call the ProxyHandle — the same
 * operations the library API offers — and answer a Reply; errors are thrown and mapped in one
 * place (`toHttpError`).
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { ProxyHandle } from '../proxy/handle.js';
import { formatReport, type Report } from '../analysis/index.js';
import { parseDurationOption } from '../faults/lib/duration.js';
import { VERSION } from '../version.js';
import { isAftershockError, ProfileError } from '../errors.js';
import { HttpError, readBody, readJsonObject, rejectUnknownKeys, type Reply } from './http.js';
import type { AdminMetrics } from './metrics.js';
import { describeProfile, scopeOf, type RuleScope } from './describe-profile.js';
import { builtinProfilePath, listBuiltinProfiles, parseProfile, type RuleInput } from '../rules/index.js';
import { RuleNameTakenError } from '../rules/engine.js';

export interface AdminContext {
  readonly proxy: ProxyHandle;
  readonly log: Logger;
  readonly metrics: AdminMetrics;
}

export interface RouteArgs {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

export type Handler = (ctx: AdminContext, req: IncomingMessage, args: RouteArgs) => Reply | Promise<Reply>;

export interface Endpoint {
  readonly summary: string;
  readonly handler: Handler;
}

export interface Route {
  /** The path as documented, e.g. `/rules/:name`. */
  readonly path: string;
  readonly pattern: RegExp;
  readonly methods: Readonly<Record<string, Endpoint>>;
}

const ok = (json: unknown, status = 200): Reply => ({ status, json });

const REPORT_FORMATS = ['json', 'text', 'markdown', 'html'] as const;
type ReportFormat = (typeof REPORT_FORMATS)[number];
const REPORT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  markdown: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

/**
 * How long a built report is served again. Building one runs on the proxy's own event loop and
 * takes tens to hundreds of milliseconds with tens of thousands of clients: a dashboard polling
 * /report five times a second would hold every proxied request up that long, five times a second.
 * Any change made through the control API (a reset, a mark, a fault, a profile) drops it.
 */
export const REPORT_REUSE_MS = 1000;
const builtReports = new WeakMap<ProxyHandle, { at: number; report: Report }>();

/** Drops the report kept for reuse (the control API changed something). */
export function forgetReport(proxy: ProxyHandle): void {
  builtReports.delete(proxy);
}

/** The proxy's clock, which stamps its records (monotonic from the process's start: no steps when the system clock is set). */
const proxyNow = (): number => performance.timeOrigin + performance.now();

function reportReply(proxy: ProxyHandle, format: ReportFormat): Reply {
  if (proxy.analyzer === null) {
    throw new HttpError(409, 'live-analysis-off', 'live analysis is off (--no-live-analysis); analyse the recording with `aftershock analyze FILE`');
  }
  const now = Date.now();
  let built = builtReports.get(proxy);
  if (built === undefined || now - built.at >= REPORT_REUSE_MS || now < built.at) {
    built = { at: now, report: proxy.report() };
    builtReports.set(proxy, built);
  }
  const report = built.report;
  if (format === 'json') return ok(report);
  return { status: 200, text: formatReport(report, format), contentType: REPORT_TYPES[format] };
}

/** Why the proxy is not ready, or an empty list when it is. */
function notReadyReasons(proxy: ProxyHandle): string[] {
  const reasons: string[] = [];
  const rec = proxy.recorder.stats;
  if (!proxy.recorder.healthy) reasons.push(`the recording is failing (${rec.lastError ?? 'write error'}); ${rec.failed} records lost so far`);
  if (!proxy.ready && reasons.length === 0) reasons.push('the proxy is shutting down');
  return reasons;
}

type RuleStats = ReturnType<ProxyHandle['engine']['stats']>[number];

/**
 * A rule's counters with its scope (match, fault, summary): an operator sees what an ad-hoc rule
 * reaches, not only how often it fired. The `header` pseudo-rule has no scope of its own.
 */
function withScope(proxy: ProxyHandle, stats: RuleStats): RuleStats & Partial<RuleScope> {
  const rule = stats.type === '*' ? null : proxy.engine.rule(stats.name);
  return rule === null ? stats : { ...stats, ...scopeOf(rule, proxy.recorder.headerRecord.redacted, stats) };
}

/** Each rule's switch as the engine runs it now (a PATCH, the current phase's overrides), by name. */
function running(proxy: ProxyHandle): Map<string, RuleStats> {
  return new Map(proxy.engine.stats().map((r) => [r.name, r]));
}

function rulesWithScope(proxy: ProxyHandle, filter: (r: RuleStats) => boolean = () => true): Array<RuleStats & Partial<RuleScope>> {
  return proxy.engine
    .stats()
    .filter(filter)
    .map((r) => withScope(proxy, r));
}

function ruleOr404(proxy: ProxyHandle, name: string): RuleStats & Partial<RuleScope> {
  const rule = proxy.engine.stats().find((r) => r.name === name);
  if (rule === undefined) throw new HttpError(404, 'rule-not-found', `no rule ${JSON.stringify(name)}; GET /rules lists them`);
  return withScope(proxy, rule);
}

/** The 422 of a profile refused because a rule name is an ad-hoc rule's; it names only those names. */
function nameTaken(err: RuleNameTakenError): HttpError {
  const list = err.names.map((n) => JSON.stringify(n)).join(', ');
  const del = err.names.map((n) => `DELETE /faults/${encodeURIComponent(n)}`).join(', ');
  return new HttpError(
    422,
    'rule-name-taken',
    `the profile was not applied: rule name${err.names.length === 1 ? '' : 's'} ${list} ${err.names.length === 1 ? 'is' : 'are'} taken by ${err.names.length === 1 ? 'an ad-hoc rule' : 'ad-hoc rules'}; ${del} first or rename the profile's rule. The running profile stays`,
    { names: err.names, problems: err.problems.map((p) => ({ ...p, file: null })) },
  );
}

function parseTtl(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' && typeof raw !== 'number') throw new HttpError(400, 'bad-ttl', 'ttl: write a duration like "30s" or a number of milliseconds');
  let ms: number;
  try {
    ms = parseDurationOption('ttl', raw);
  } catch (err) {
    throw new HttpError(400, 'bad-ttl', (err as Error).message);
  }
  if (!(ms > 0)) throw new HttpError(400, 'bad-ttl', 'ttl must be more than 0');
  return ms;
}

/**
 * The 422 of a profile the proxy read from a file, without the problems' messages: they may quote
 * the file (`must be an object, not "SHELL=/bin/bash..."`), and the client chose the path, so it
 * could name any file the proxy can read. Line numbers say where to look; the CLI shows the rest.
 */
function withoutFileBytes(name: string, err: ProfileError): HttpError {
  const n = err.problems.length;
  const lines = [...new Set(err.problems.flatMap((p) => (p.line === null ? [] : [p.line])))];
  const where = lines.length === 0 ? '' : ` (line${lines.length === 1 ? '' : 's'} ${lines.join(', ')})`;
  return new HttpError(
    422,
    'profile-invalid',
    `${JSON.stringify(name)} is not a valid profile: ${n} problem${n === 1 ? '' : 's'}${where}. The control API does not quote files it reads; run \`aftershock profiles validate ${name}\` where the proxy runs to see them`,
    { problems: [] },
  );
}

export const routes: readonly Route[] = [
  {
    path: '/',
    pattern: /^\/$/,
    methods: {
      GET: {
        summary: 'this list of routes',
        handler: () =>
          ok({
            aftershock: VERSION,
            routes: routes.flatMap((r) => Object.entries(r.methods).map(([method, e]) => ({ method, path: r.path, summary: e.summary }))),
          }),
      },
    },
  },
  {
    path: '/healthz',
    pattern: /^\/healthz$/,
    methods: { GET: { summary: 'liveness: the process answers (no token needed)', handler: () => ok({ status: 'ok' }) } },
  },
  {
    path: '/readyz',
    pattern: /^\/readyz$/,
    methods: {
      GET: {
        summary: 'readiness: listening, profile loaded, recording healthy; 503 with the reasons otherwise (no token needed)',
        handler: ({ proxy }) => {
          const reasons = notReadyReasons(proxy);
          const rec = proxy.recorder.stats;
          return ok(
            {
              status: reasons.length === 0 ? 'ready' : 'not-ready',
              reasons,
              profile: proxy.profile.name,
              profileFile: proxy.profileFile,
              listen: proxy.url,
              recording: { path: proxy.recorder.path, healthy: proxy.recorder.healthy, written: rec.written, failed: rec.failed, lastError: rec.lastError },
            },
            reasons.length === 0 ? 200 : 503,
          );
        },
      },
    },
  },
  {
    path: '/profile',
    pattern: /^\/profile$/,
    methods: {
      GET: { summary: 'the active profile: name, description, hash, source, effective seed, rules', handler: ({ proxy }) => ok(describeProfile(proxy.profile, proxy.engine.seed, proxy.engine.phase(), proxy.profileFile, running(proxy), proxy.recorder.headerRecord.redacted)) },
      PUT: {
        summary: 'replace the whole profile (YAML or JSON body); validated, applied atomically; 422 lists every problem',
        handler: async ({ proxy }, req) => {
          const text = await readBody(req);
          if (text.trim() === '') throw new HttpError(400, 'body-required', 'send a whole profile as YAML or JSON in the body');
          // A refused profile (invalid, or a rule named like an ad-hoc one) leaves the running one and its file watch.
          try {
            // Sent as JSON (ctl sends a .json file so): read with JSON's rules, as the file would be.
            const json = /^application\/json\b/i.test(req.headers['content-type'] ?? '');
            const applied = proxy.setProfile(parseProfile(text, null, json ? { format: 'json' } : {}));
            return ok(describeProfile(applied, proxy.engine.seed, proxy.engine.phase(), proxy.profileFile, running(proxy), proxy.recorder.headerRecord.redacted));
          } catch (err) {
            throw err instanceof RuleNameTakenError ? nameTaken(err) : err;
          }
        },
      },
    },
  },
  {
    path: '/profile/select',
    pattern: /^\/profile\/select$/,
    methods: {
      POST: {
        summary: 'apply a built-in or file profile by name: {"name": "flaky"}; 404 when unknown',
        handler: async ({ proxy }, req) => {
          const body = await readJsonObject(req);
          rejectUnknownKeys(body, ['name']);
          if (typeof body.name !== 'string' || body.name.trim() === '') throw new HttpError(400, 'bad-name', 'name: give a built-in profile name or a profile file path');
          const name = body.name;
          // A path must name a profile file: the API must not tell whether, say, /etc/shadow exists
          // or how many lines it has (its 404 and 422 answers would).
          if (builtinProfilePath(name) === null && !/\.(ya?ml|json)$/i.test(name)) {
            const builtins = listBuiltinProfiles().join(', ');
            if (!/[/\\.]/.test(name)) throw new HttpError(404, 'profile-not-found', `no built-in profile ${JSON.stringify(name)}; built-ins: ${builtins}`);
            throw new HttpError(400, 'bad-name', `name ${JSON.stringify(name)}: give a built-in profile name (${builtins}) or the path of a .yaml, .yml or .json file`);
          }
          const applied = await proxy.selectProfile(name).catch((err: unknown) => {
            if (err instanceof RuleNameTakenError) throw nameTaken(err);
            throw err instanceof ProfileError ? withoutFileBytes(name, err) : err;
          });
          return ok(describeProfile(applied, proxy.engine.seed, proxy.engine.phase(), proxy.profileFile, running(proxy), proxy.recorder.headerRecord.redacted));
        },
      },
    },
  },
  {
    path: '/rules',
    pattern: /^\/rules$/,
    methods: { GET: { summary: 'every rule (profile and ad-hoc) with its state, counters, match and fault', handler: ({ proxy }) => ok({ rules: rulesWithScope(proxy) }) } },
  },
  {
    path: '/rules/:name',
    pattern: /^\/rules\/(?<name>[^/]+)$/,
    methods: {
      GET: { summary: 'one rule', handler: ({ proxy }, _req, { params }) => ok(ruleOr404(proxy, params.name as string)) },
      PATCH: {
        summary: 'change a rule: {"enabled": false} and/or {"probability": 0.5}',
        handler: async ({ proxy }, req, { params }) => {
          const name = params.name as string;
          const body = await readJsonObject(req);
          rejectUnknownKeys(body, ['enabled', 'probability']);
          const patch: { enabled?: boolean; probability?: number } = {};
          if (body.enabled !== undefined) {
            if (typeof body.enabled !== 'boolean') throw new HttpError(400, 'bad-enabled', 'enabled: give true or false');
            patch.enabled = body.enabled;
          }
          if (body.probability !== undefined) {
            if (typeof body.probability !== 'number' || !(body.probability >= 0 && body.probability <= 1)) {
              throw new HttpError(400, 'bad-probability', 'probability: give a number from 0 to 1');
            }
            patch.probability = body.probability;
          }
          if (patch.enabled === undefined && patch.probability === undefined) throw new HttpError(400, 'empty-patch', 'give "enabled" and/or "probability"');
          ruleOr404(proxy, name);
          proxy.engine.patchRule(name, patch);
          // In the recording too, as faults added and removed are: a QA session's log says when a rule changed.
          proxy.recorder.write({ v: 1, type: 'event', ts: proxyNow(), event: 'rule-patched', detail: { rule: name, ...patch } });
          return ok(ruleOr404(proxy, name));
        },
      },
    },
  },
  {
    path: '/faults',
    pattern: /^\/faults$/,
    methods: {
      GET: { summary: 'the ad-hoc rules added at run time, with what each matches and injects', handler: ({ proxy }) => ok({ faults: rulesWithScope(proxy, (r) => r.adHoc) }) },
      POST: {
        summary: 'add an ad-hoc rule now, optionally for a while: {"name","match","fault","ttl":"30s"}',
        handler: async ({ proxy }, req) => {
          const { ttl, ...rule } = await readJsonObject(req);
          const ttlMs = parseTtl(ttl);
          try {
            // Untyped JSON: the engine validates it as it validates a profile's rule.
            return ok(withScope(proxy, proxy.addFault(rule as unknown as RuleInput, ttlMs)), 201);
          } catch (err) {
            // The engine decides whether the name is taken; the API says how to free it.
            if (isAftershockError(err) && err.code === 'ERR_RULE_EXISTS') {
              const name = String(rule.name);
              // Only an ad-hoc rule can be deleted; a profile's rule keeps its name.
              const adHoc = proxy.engine.stats().some((r) => r.name === name && r.adHoc);
              throw new HttpError(
                409,
                'rule-exists',
                adHoc
                  ? `an ad-hoc rule named ${JSON.stringify(name)} exists; DELETE /faults/${encodeURIComponent(name)} first or pick another name`
                  : `the profile has a rule named ${JSON.stringify(name)}; pick another name (PATCH /rules/${encodeURIComponent(name)} turns the profile's rule on or off)`,
              );
            }
            // One rule, not a profile: say so (the problems' paths are the rule's own, e.g. fault.status).
            if (!(err instanceof ProfileError)) throw err;
            const n = err.problems.length;
            throw new HttpError(422, 'profile-invalid', `invalid fault: ${n} problem${n === 1 ? '' : 's'}`, { problems: err.problems });
          }
        },
      },
    },
  },
  {
    path: '/faults/:name',
    pattern: /^\/faults\/(?<name>[^/]+)$/,
    methods: {
      DELETE: {
        summary: 'remove an ad-hoc rule',
        handler: ({ proxy }, _req, { params }) => {
          const name = params.name as string;
          if (!proxy.removeFault(name)) throw new HttpError(404, 'fault-not-found', `no ad-hoc rule ${JSON.stringify(name)}; GET /faults lists them`);
          return ok({ removed: name });
        },
      },
    },
  },
  {
    path: '/marks',
    pattern: /^\/marks$/,
    methods: {
      POST: {
        summary: 'write a marker into the recording: {"label": "checkout flow starts"}',
        handler: async ({ proxy }, req) => {
          const body = await readJsonObject(req);
          rejectUnknownKeys(body, ['label']);
          if (typeof body.label !== 'string' || body.label.trim() === '') throw new HttpError(400, 'bad-label', 'label: give a non-empty string');
          if (body.label.length > 500) throw new HttpError(400, 'bad-label', 'label: at most 500 characters');
          proxy.mark(body.label);
          return ok({ marked: body.label, ts: Math.round(proxyNow()) }, 201);
        },
      },
    },
  },
  {
    path: '/scenario/start',
    pattern: /^\/scenario\/start$/,
    methods: {
      POST: {
        summary: 'start the profile\'s scenario clock (timed phases) now',
        handler: ({ proxy }) => {
          proxy.startScenario();
          return ok({ scenario: 'started' });
        },
      },
    },
  },
  {
    path: '/scenario/stop',
    pattern: /^\/scenario\/stop$/,
    methods: {
      POST: {
        summary: 'stop the scenario clock',
        handler: ({ proxy }) => {
          proxy.stopScenario();
          return ok({ scenario: 'stopped' });
        },
      },
    },
  },
  {
    path: '/reset',
    pattern: /^\/reset$/,
    methods: {
      POST: {
        summary: 'clear rule counters, status counts and the live analysis (Prometheus counters stay monotonic)',
        handler: ({ proxy }) => {
          proxy.reset();
          return ok({ reset: true });
        },
      },
    },
  },
  {
    path: '/report',
    pattern: /^\/report$/,
    methods: {
      GET: {
        summary: 'the live retry-analysis report (JSON; ?format=text|markdown|html)',
        handler: ({ proxy }, _req, { query }) => {
          const format = query.get('format') ?? 'json';
          if (!(REPORT_FORMATS as readonly string[]).includes(format)) throw new HttpError(400, 'bad-format', `format: one of ${REPORT_FORMATS.join(', ')}`);
          return reportReply(proxy, format as ReportFormat);
        },
      },
    },
  },
  {
    path: '/report.html',
    pattern: /^\/report\.html$/,
    methods: { GET: { summary: 'the live report as an HTML page', handler: ({ proxy }) => reportReply(proxy, 'html') } },
  },
  {
    path: '/stats',
    pattern: /^\/stats$/,
    methods: {
      GET: {
        summary: 'counters: per rule matched/injected, per status and outcome, connections, recording written/failed',
        handler: ({ proxy }) => {
          return ok(proxy.stats());
        },
      },
    },
  },
  {
    path: '/metrics',
    pattern: /^\/metrics$/,
    methods: {
      GET: {
        summary: 'Prometheus metrics (text exposition format)',
        handler: async ({ metrics }) => ({ status: 200, text: await metrics.render(), contentType: metrics.contentType }),
      },
    },
  },
];
