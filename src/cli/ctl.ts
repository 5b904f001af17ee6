/**
 * `aftershock ctl`: drive a running proxy through its control API (Toxiproxy's `toxiproxy-cli`).
 * A thin shell over `AdminClient`: parse flags, call one endpoint, print the answer for a person
 * (or `--json` for a script). API errors become one line on stderr and exit status 1.
 */
import fs from 'node:fs';
import { Argument, Command, Option } from 'commander';
import { AftershockError } from '../errors.js';
import { meansOff } from './env.js';
import { AdminClient, type ApiProblem, type ProfileView } from '../admin/client.js';
import type { RuleStats } from '../rules/types.js';
import type { ProfileFileState } from '../proxy/handle.js';

interface CtlFlags {
  admin: string;
  token?: string;
}

interface FaultAddFlags {
  name?: string;
  path?: string;
  method?: string;
  type?: string;
  status?: string;
  retryAfter?: string;
  probability?: string;
  ttl?: string;
  json?: string;
}

const write = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
};

function clientOf(cmd: Command): AdminClient {
  const flags = cmd.optsWithGlobals<CtlFlags>();
  const url = cmd.getOptionValueSourceWithGlobals('admin') === 'default' ? (adminUrlFromListenEnv(process.env.AFTERSHOCK_ADMIN) ?? flags.admin) : flags.admin;
  return new AdminClient({ url, ...(flags.token === undefined ? {} : { token: flags.token }) });
}

/**
 * The control API's URL from AFTERSHOCK_ADMIN, the address `run` listens on (the image and the
 * sidecar examples set it), when neither --admin nor AFTERSHOCK_ADMIN_URL is given: a wildcard
 * host (`0.0.0.0`, `::`, none) is reached on loopback. Null when it is unset or empty; `off` (none,
 * false, in any case, as `run` reads it) is an error.
 *
 * @example adminUrlFromListenEnv('0.0.0.0:8081') === 'http://127.0.0.1:8081'
 */
export function adminUrlFromListenEnv(raw: string | undefined): string | null {
  if (raw === undefined || raw.trim() === '') return null;
  if (meansOff(raw)) {
    throw usage('AFTERSHOCK_ADMIN is off: this proxy runs without a control API; give --admin URL (or AFTERSHOCK_ADMIN_URL) of one that has it');
  }
  const m = /^(?:\[([^\]]+)\]|([^:/]*)):(\d{1,5})$/.exec(raw.trim());
  if (m === null || Number(m[3]) > 65535) {
    throw usage(`AFTERSHOCK_ADMIN=${JSON.stringify(raw)}: write it as HOST:PORT, e.g. 127.0.0.1:8081 (or give ctl --admin URL)`);
  }
  let host = m[1] ?? (m[2] as string);
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::' || host === '::0') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${Number(m[3])}`;
}

function usage(message: string): AftershockError {
  return new AftershockError('ERR_BAD_OPTION', message);
}

function parseProbability(raw: string): number {
  const p = Number(raw);
  if (raw.trim() === '' || !(p >= 0 && p <= 1)) throw usage(`--probability ${JSON.stringify(raw)}: give a number from 0 to 1`);
  return p;
}

/** Left-aligned columns, for people. */
function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

function formatRules(rules: readonly RuleStats[]): string {
  if (rules.length === 0) return '(no rules: everything passes through)';
  const now = Date.now();
  return table([
    ['NAME', 'TYPE', 'ENABLED', 'PROBABILITY', 'MATCHED', 'INJECTED', 'ACTIVE', 'EXPIRES'],
    ...rules.map((r) => [
      r.name + (r.adHoc ? ' (ad-hoc)' : ''),
      r.type,
      r.enabled ? 'yes' : 'no',
      String(r.probability),
      String(r.matched),
      String(r.injected),
      r.active ? 'yes' : 'no',
      r.expiresAt === null ? '-' : `in ${Math.max(0, Math.round((r.expiresAt - now) / 1000))}s`,
    ]),
  ]);
}

/** What the profile's file holds against the profile in force, in a line (null: no file). */
function fileNote(f: ProfileFileState | null): string | null {
  if (f === null) return null;
  const since = new Date(f.since).toISOString();
  const first = (m: string | null): string => (m === null ? '' : `: ${m.trim().split('\n')[0]}`);
  switch (f.status) {
    case 'in-force':
      return `${f.path}: in force${f.watching ? ' (watched)' : ' (not watched)'}`;
    case 'rejected':
      return `${f.path}: CHANGED BUT REJECTED since ${since}, the profile in force is the one before${first(f.message)}`;
    case 'missing':
      return `${f.path}: REMOVED since ${since}, the profile in force stays`;
    case 'waiting':
      return `${f.path}: changed, waiting since ${since} for a rule name an ad-hoc fault holds${first(f.message)}`;
  }
}

/** `profile NAME applied (N rules in M phases, HASH)`: every rule it holds, the phases' too. */
function applied(p: ProfileView): string {
  const rules = p.rules.length + p.phases.reduce((n, ph) => n + ph.rules.length, 0);
  const phases = p.phases.length === 0 ? '' : ` in ${p.phases.length} phase${p.phases.length === 1 ? '' : 's'}`;
  return `profile ${p.name} applied (${rules} rule${rules === 1 ? '' : 's'}${phases}, ${p.hash})`;
}

function formatProfile(p: ProfileView): string {
  const lines = [
    // The description's first paragraph, its lines joined (a YAML block breaks lines mid-sentence).
    `profile ${p.name}${p.description === '' ? '' : ` — ${(p.description.trim().split(/\n\s*\n/)[0] ?? '').replace(/\s+/g, ' ')}`}`,
    `hash    ${p.hash}`,
    `source  ${p.source ?? (p.builtin === null ? '(set through the control API)' : `built-in ${p.builtin}`)}`,
    `seed    ${p.seed}${p.profileSeed === null ? '' : p.profileSeed === p.seed ? ' (the profile\'s)' : ` (--seed; the profile says ${p.profileSeed})`}`,
  ];
  const file = fileNote(p.file ?? null);
  if (file !== null) lines.push(`file    ${file}`);
  if (p.rules.length === 0 && p.phases.length === 0) lines.push('rules   none: every request passes through untouched');
  for (const r of p.rules) lines.push(`rule    ${r.summary}`);
  for (const ph of p.phases) {
    // What the phase changes: its own rules, then its overrides of top-level rules; which one runs now.
    const changes = [
      ...ph.rules.map((r) => r.name),
      ...Object.entries(ph.overrides ?? {}).map(([name, ov]) => `${name} ${[ov.enabled === undefined ? null : ov.enabled ? 'on' : 'off', ov.probability === undefined ? null : `p=${ov.probability}`].filter((x) => x !== null).join(' ')}`),
    ];
    const now = p.phase !== undefined && p.phase !== null && p.phase.name === ph.name ? ' ← now' : '';
    lines.push(`phase   ${ph.name} (${ph.durationMs} ms)${now}: ${changes.join(', ') || 'no changes'}`);
  }
  return lines.join('\n');
}

export function registerCtlCommand(program: Command): void {
  const ctl = program
    .command('ctl')
    .description('control a running proxy through its control API (faults, profile, marks, report, metrics)')
    .addOption(
      new Option('--admin <url>', "control API URL; without it and AFTERSHOCK_ADMIN_URL, the address in AFTERSHOCK_ADMIN (run's --admin; 0.0.0.0 and :: mean loopback)")
        .env('AFTERSHOCK_ADMIN_URL')
        .default('http://127.0.0.1:8081'),
    )
    .addOption(new Option('--token <token>', 'control API token (the proxy\'s --admin-token)').env('AFTERSHOCK_ADMIN_TOKEN'));

  ctl
    .command('status')
    .description('is the proxy ready; profile, traffic and recording at a glance (exit 1 when not ready)')
    .option('--json', 'print the raw /readyz and /stats answers')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const admin = clientOf(cmd);
      const ready = await admin.ready();
      const stats = (await admin.stats()) as {
        uptimeSeconds?: number;
        exchanges?: number;
        inFlight?: number;
        connections?: number;
        byStatus?: Record<string, number>;
        rules?: RuleStats[];
        worker?: { index: number; of: number } | null;
      };
      if (flags.json === true) {
        write(JSON.stringify({ ready, stats }, null, 2));
      } else {
        const byStatus = Object.entries(stats.byStatus ?? {})
          .map(([s, n]) => `${s}: ${n}`)
          .join('  ');
        const rules = stats.rules ?? [];
        write(
          table([
            ['control', `${admin.url}  ${ready.status}${ready.reasons.length > 0 ? ` (${ready.reasons.join('; ')})` : ''}`],
            ['proxy', ready.listen],
            ['profile', `${ready.profile}${ready.profileFile === undefined || ready.profileFile === null || ready.profileFile.status === 'in-force' ? '' : `  (file ${fileNote(ready.profileFile)})`}`],
            ...(stats.worker === undefined || stats.worker === null ? [] : [['worker', `${stats.worker.index} of ${stats.worker.of} (run --workers): the counts below are this worker's connections only`] as [string, string]]),
            ['uptime', `${stats.uptimeSeconds ?? '?'}s`],
            ['exchanges', `${stats.exchanges ?? 0} (in flight ${stats.inFlight ?? 0}, connections ${stats.connections ?? 0})`],
            ['statuses', byStatus === '' ? '-' : byStatus],
            ['rules', `${rules.length} (${rules.filter((r) => r.enabled).length} enabled), ${rules.reduce((n, r) => n + r.injected, 0)} faults injected`],
            ['recording', `${ready.recording.path ?? 'off'}: ${ready.recording.written} written, ${ready.recording.failed} failed`],
          ]),
        );
      }
      if (ready.status !== 'ready') {
        throw new AftershockError('ERR_ADMIN', `the proxy is not ready: ${ready.reasons.join('; ')}`, { exitCode: 1 });
      }
    });

  const profile = ctl.command('profile').description('show, set or select the active profile');
  profile
    .command('show', { isDefault: true })
    .description('the active profile')
    .option('--json', 'print the whole profile as JSON, rules included')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const p = await clientOf(cmd).profile();
      write(flags.json === true ? JSON.stringify(p, null, 2) : formatProfile(p));
    });
  profile
    .command('set')
    .description('replace the active profile with a YAML or JSON file (validated; the old one stays if it is invalid)')
    .argument('<file>', 'profile file')
    .action(async (file: string, _flags: unknown, cmd: Command) => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw usage(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      let p: ProfileView;
      try {
        p = await clientOf(cmd).setProfile(text, /\.json$/i.test(file) ? { format: 'json' } : {});
      } catch (err) {
        // Every problem on a line of its own, named by the file, as `profiles validate` names them.
        const problems = (err as { problems?: ApiProblem[] }).problems ?? [];
        if (problems.length === 0) throw err;
        const lines = problems.map((q) => `${file}${q.line === null ? '' : `:${q.line}`} ${q.path === '' ? '(root)' : q.path}: ${q.message}`);
        throw new AftershockError('ERR_ADMIN', `profile ${file} not applied (the running profile stays): ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${lines.join('\n')}`, { exitCode: 1 });
      }
      write(applied(p));
    });
  profile
    .command('select')
    .description('apply a built-in profile or a profile file on the proxy\'s side, by name')
    .argument('<name>', 'built-in profile name or file path as the proxy sees it')
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      const p = await clientOf(cmd).selectProfile(name);
      write(applied(p));
    });

  ctl
    .command('rules')
    .description('every rule with its state and counters')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const rules = await clientOf(cmd).rules();
      write(flags.json === true ? JSON.stringify(rules, null, 2) : formatRules(rules));
    });

  ctl
    .command('rule')
    .description('enable, disable or re-weight one rule')
    .argument('<name>', 'rule name')
    .option('--enable', 'enable the rule')
    .option('--disable', 'disable the rule')
    .option('--probability <p>', 'injection probability, 0 to 1')
    .action(async (name: string, flags: { enable?: boolean; disable?: boolean; probability?: string }, cmd: Command) => {
      if (flags.enable === true && flags.disable === true) throw usage('give --enable or --disable, not both');
      const patch: { enabled?: boolean; probability?: number } = {};
      if (flags.enable === true) patch.enabled = true;
      if (flags.disable === true) patch.enabled = false;
      if (flags.probability !== undefined) patch.probability = parseProbability(flags.probability);
      if (Object.keys(patch).length === 0) throw usage('give --enable, --disable or --probability <p>');
      const r = await clientOf(cmd).patchRule(name, patch);
      write(`rule ${r.name}: ${r.enabled ? 'enabled' : 'disabled'}, probability ${r.probability}`);
    });

  const fault = ctl.command('fault').description('add or remove an ad-hoc rule at run time');
  fault
    .command('add')
    .description('add a rule now, e.g. --name now-503 --path "/v1/messages/**" --type http-error --status 503 --ttl 30s')
    .option('--name <name>', 'rule name (unique)')
    .option('--path <glob>', "the requests to hit: those whose path matches this glob (required; '/**' for all traffic)")
    .option('--method <method>', 'match only this method')
    .option('--type <type>', 'fault type, e.g. http-error, latency, reset')
    .option('--status <status>', 'HTTP status for http-error')
    .option('--retry-after <seconds>', 'Retry-After to send with http-error: seconds (2), a duration (2s) or an HTTP-date')
    .option('--probability <p>', 'injection probability, 0 to 1')
    .option('--ttl <duration>', 'remove the rule after this long, e.g. 30s')
    .option('--json <rule>', 'the whole rule as JSON (flags given too override its fields)')
    .action(async (flags: FaultAddFlags, cmd: Command) => {
      const { rule, ttl } = buildRule(flags);
      const r: RuleStats & { summary?: string } = await clientOf(cmd).addFault(rule, ttl);
      const expires = r.expiresAt === null ? '' : `, expires in ${Math.max(0, Math.round((r.expiresAt - Date.now()) / 1000))}s`;
      // What it hits, as the proxy compiled it (an older proxy sends no summary).
      const prefix = `${r.name}: `;
      let scope: string | null = null;
      if (typeof r.summary === 'string') scope = r.summary.startsWith(prefix) ? r.summary.slice(prefix.length) : r.summary;
      write(scope === null ? `fault ${r.name} (${r.type}) added${expires}` : `fault ${r.name} added: ${scope}${expires}`);
    });
  fault
    .command('remove')
    .description('remove an ad-hoc rule')
    .argument('<name>', 'rule name')
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      await clientOf(cmd).removeFault(name);
      write(`fault ${name} removed`);
    });

  ctl
    .command('mark')
    .description('write a marker into the recording, e.g. "checkout flow starts"')
    .argument('<label...>', 'the marker text')
    .action(async (label: string[], _flags: unknown, cmd: Command) => {
      const text = label.join(' ');
      await clientOf(cmd).mark(text);
      write(`marked: ${text}`);
    });

  ctl
    .command('scenario')
    .description('start or stop the profile\'s scenario clock')
    .addArgument(new Argument('<action>', 'start or stop').choices(['start', 'stop']))
    .action(async (action: 'start' | 'stop', _flags: unknown, cmd: Command) => {
      const admin = clientOf(cmd);
      if (action === 'start') await admin.startScenario();
      else await admin.stopScenario();
      write(`scenario ${action === 'start' ? 'started' : 'stopped'}`);
    });

  ctl
    .command('reset')
    .description('clear the counters and the live analysis')
    .action(async (_flags: unknown, cmd: Command) => {
      await clientOf(cmd).reset();
      write('counters and live analysis reset');
    });

  ctl
    .command('report')
    .description('the live retry-analysis report')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json', 'markdown', 'html']).default('text'))
    .action(async (flags: { format: 'text' | 'json' | 'markdown' | 'html' }, cmd: Command) => {
      write(await clientOf(cmd).report(flags.format));
    });

  ctl
    .command('stats')
    .description('the proxy\'s counters as JSON')
    .action(async (_flags: unknown, cmd: Command) => {
      write(JSON.stringify(await clientOf(cmd).stats(), null, 2));
    });

  ctl
    .command('metrics')
    .description('the Prometheus metrics, as a scraper sees them')
    .action(async (_flags: unknown, cmd: Command) => {
      write(await clientOf(cmd).metrics());
    });
}

/** The rule of `fault add`: `--json` as the base, the flags on top. */
function buildRule(flags: FaultAddFlags): { rule: Record<string, unknown>; ttl: string | number | undefined } {
  let rule: Record<string, unknown> = {};
  if (flags.json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(flags.json);
    } catch (err) {
      throw usage(`--json is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw usage('--json: give a JSON object (one rule)');
    rule = { ...(parsed as Record<string, unknown>) };
  }
  const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...(v as Record<string, unknown>) } : {});
  const match = obj(rule.match);
  const faultSpec = obj(rule.fault);
  if (flags.name !== undefined) rule.name = flags.name;
  if (flags.path !== undefined) match.path = flags.path;
  if (flags.method !== undefined) match.method = flags.method.toUpperCase();
  if (flags.type !== undefined) faultSpec.type = flags.type;
  if (flags.status !== undefined) {
    const s = Number(flags.status);
    if (!Number.isInteger(s)) throw usage(`--status ${JSON.stringify(flags.status)}: give an HTTP status, e.g. 503`);
    faultSpec.status = s;
  }
  if (flags.retryAfter !== undefined) faultSpec.retryAfter = flags.retryAfter;
  if (flags.probability !== undefined) rule.probability = parseProbability(flags.probability);
  if (Object.keys(match).length > 0) rule.match = match;
  if (Object.keys(faultSpec).length > 0) rule.fault = faultSpec;
  if (typeof rule.name !== 'string') throw usage('fault add: give --name (or "name" in --json)');
  if (faultSpec.type === undefined) throw usage('fault add: give --type (or "fault": {"type": ...} in --json)');
  // A rule without a path would hit all traffic: an operator says so out loud rather than by
  // forgetting a flag.
  if (match.path === undefined) throw usage("fault add: give --path GLOB, the requests to hit (--path '/**' for all traffic), or \"match\": {\"path\": ...} in --json");
  const { ttl, ...rest } = rule;
  if (ttl !== undefined && typeof ttl !== 'string' && typeof ttl !== 'number') throw usage('--json: "ttl" is a duration like "30s"');
  return { rule: rest, ttl: flags.ttl ?? (ttl as string | number | undefined) };
}
