/**
 * The JSON view of a compiled profile for GET /profile: what it is (name, description, hash,
 * source), the seed the engine really uses (a --seed overrides the profile's), its rules as the
 * engine runs them, and the profile as written, which can be sent back to PUT /profile unchanged.
 * And the scope of one rule (what it matches, what it injects) for GET /rules and GET /faults.
 */
import { describeRule, type CompiledProfile, type CompiledRule, type PhaseInfo } from '../rules/index.js';
import type { ValueMatch } from '../rules/schema.js';
import { isSecretHeaderName, isSecretQueryName, REDACTED } from '../record/redact.js';
import type { ProfileFileState } from '../proxy/handle.js';

export interface RuleView {
  name: string;
  /** One line: fault, where, how often (as `aftershock profiles show` prints it). */
  summary: string;
  type: string;
  stage: string;
  enabled: boolean;
  probability: number;
  description: string | null;
  /** The fault's options as written. */
  fault: Readonly<Record<string, unknown>>;
}

export interface ProfileView {
  name: string;
  description: string;
  hash: string;
  /** The file it was read from, or null (built-in, set through the API). */
  source: string | null;
  builtin: string | null;
  /** The seed every random choice uses now: --seed (startProxy's `seed`), else the profile's, else 1. */
  seed: number;
  /** The seed the profile itself gives, or null; differs from `seed` when --seed overrides it. */
  profileSeed: number | null;
  rules: RuleView[];
  /**
   * The timeline: each phase's own rules and its overrides of top-level rules (what it turns on or
   * off, and at what probability), by rule name.
   */
  phases: Array<{ name: string; description: string | null; durationMs: number; rules: RuleView[]; overrides: Record<string, { enabled?: boolean; probability?: number }> }>;
  /** The phase running now (null: no timeline, or past its end), with epoch-ms bounds. */
  phase: PhaseInfo | null;
  /**
   * The profile's file, and whether it holds the profile in force (`status` in-force) or a change
   * that was rejected, a removal, or a version waiting for a rule name (null: no file).
   */
  file: ProfileFileState | null;
  /** The profile as written (parsed YAML/JSON). */
  definition: unknown;
}

/**
 * @example describeProfile(proxy.profile, proxy.engine.seed).rules.map((r) => r.name)
 */
export function describeProfile(
  p: CompiledProfile,
  seed: number,
  phase: PhaseInfo | null = null,
  file: ProfileFileState | null = null,
  effective: ReadonlyMap<string, RuleSwitch> = new Map(),
  redact: readonly string[] = [],
): ProfileView {
  // The engine's switches are those of the top-level rules and of the phase running now; another
  // phase's rules show what that phase will run.
  const viewRule = (r: CompiledRule, running = true): RuleView => {
    const e = running ? effective.get(r.name) : undefined;
    const run = e === undefined ? r : { ...r, enabled: e.enabled, probability: e.probability };
    return { name: r.name, summary: describeRule(run), type: r.type, stage: r.stage, enabled: run.enabled, probability: run.probability, description: r.description, fault: r.written };
  };
  return {
    name: p.name,
    description: p.description,
    hash: p.hash,
    source: p.source,
    builtin: p.builtin,
    seed,
    profileSeed: p.seed,
    rules: p.rules.map((r) => viewRule(r)),
    phases: p.phases.map((ph, i) => ({ name: ph.name, description: ph.description, durationMs: ph.duration, rules: ph.rules.map((r) => viewRule(r, phase !== null && phase.index === i)), overrides: overridesOf(ph.overrides) })),
    phase,
    file: file === null ? null : { ...file },
    definition: hideMatcherSecrets(p.raw, redact),
  };
}

/**
 * The profile as written, with the values of secret-looking header and query matchers hidden as
 * GET /rules hides them: a rule matching `authorization: Bearer …` does not hand the token out
 * through GET /profile either. Everything else is as written; the input is not changed.
 */
function hideMatcherSecrets(raw: unknown, redact: readonly string[]): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const hideRules = (rules: unknown): unknown => (Array.isArray(rules) ? rules.map(hideRule) : rules);
  const hideRule = (rule: unknown): unknown => {
    if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) return rule;
    const m = (rule as { match?: unknown }).match;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return rule;
    const match: Record<string, unknown> = { ...(m as Record<string, unknown>) };
    match.headers = hideValues(match.headers, (n) => isSecretHeaderName(n.toLowerCase(), redact));
    match.query = hideValues(match.query, (n) => isSecretQueryName(n) || isSecretHeaderName(n.toLowerCase(), redact));
    if (match.headers === undefined) delete match.headers;
    if (match.query === undefined) delete match.query;
    return { ...(rule as Record<string, unknown>), match };
  };
  const hideValues = (values: unknown, secret: (name: string) => boolean): unknown => {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) return values;
    const out: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(values as Record<string, unknown>)) {
      if (!secret(name)) out[name] = v;
      else if (v !== null && typeof v === 'object' && 'present' in v && !('regex' in v)) out[name] = v;
      else if (v !== null && typeof v === 'object' && 'regex' in v) out[name] = { ...(v as Record<string, unknown>), regex: REDACTED };
      else out[name] = REDACTED;
    }
    return out;
  };
  const def: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  if ('rules' in def) def.rules = hideRules(def.rules);
  if (Array.isArray(def.phases)) {
    def.phases = def.phases.map((ph: unknown) => (ph !== null && typeof ph === 'object' && !Array.isArray(ph) && 'rules' in ph ? { ...(ph as Record<string, unknown>), rules: hideRules((ph as { rules: unknown }).rules) } : ph));
  }
  return def;
}

/** Whether a rule runs and how often, as the engine has it now (a PATCH, the current phase). */
export interface RuleSwitch {
  readonly enabled: boolean;
  readonly probability: number;
}

function overridesOf(o: Readonly<Record<string, Readonly<{ enabled?: boolean | undefined; probability?: number | undefined }>>>): Record<string, { enabled?: boolean; probability?: number }> {
  const out: Record<string, { enabled?: boolean; probability?: number }> = {};
  for (const [name, ov] of Object.entries(o)) {
    const v: { enabled?: boolean; probability?: number } = {};
    if (ov.enabled !== undefined) v.enabled = ov.enabled;
    if (ov.probability !== undefined) v.probability = ov.probability;
    out[name] = v;
  }
  return out;
}

/** A header or query matcher as GET /rules shows it: a secret-looking name's value is `[redacted]`. */
export type ValueView = string | { regex: string } | { present: boolean };

/** A rule's `match` as written, with the values of secret-looking header and query matchers hidden. */
export interface MatchView {
  method?: string[];
  path?: string[];
  headers?: Record<string, ValueView>;
  query?: Record<string, ValueView>;
  clients?: string[];
  websocket?: boolean;
  cohort?: number;
  /** `503`, or a range written `500-504`. */
  status?: Array<number | string>;
}

/** What a rule targets and does: for an operator checking an ad-hoc rule's reach. */
export interface RuleScope {
  /** `{}` matches every request. */
  match: MatchView;
  /** The fault's options as written. */
  fault: Readonly<Record<string, unknown>>;
  /** One line: fault, where, how often (as `aftershock profiles show` prints it). */
  summary: string;
}

/**
 * The scope of a rule. Header and query matcher values whose name looks secret (the recording's
 * rule, plus the `--redact` names in `redact`) are shown as `[redacted]`: a rule matching
 * `authorization: Bearer ...` must not hand the token to whoever reads GET /faults. `present`
 * matchers show as they are.
 *
 * @example scopeOf(rule).match // { method: ['POST'], path: ['/v1/**'], headers: { authorization: '[redacted]' } }
 */
export function scopeOf(rule: CompiledRule, redact: readonly string[] = [], effective?: RuleSwitch): RuleScope {
  const m = rule.config.match;
  const match: MatchView = {};
  if (m.method !== undefined) match.method = [...m.method];
  if (m.path !== undefined) match.path = [...m.path];
  if (m.headers !== undefined) match.headers = viewValues(m.headers, (name) => isSecretHeaderName(name, redact));
  if (m.query !== undefined) match.query = viewValues(m.query, (name) => isSecretQueryName(name) || isSecretHeaderName(name, redact));
  if (m.clients !== undefined) match.clients = [...m.clients];
  if (m.websocket !== undefined) match.websocket = m.websocket;
  if (m.cohort !== undefined) match.cohort = m.cohort;
  if (m.status !== undefined) match.status = m.status.map(([a, b]) => (a === b ? a : `${a}-${b}`));
  // The summary says what runs: a PATCH that turned the rule on or changed its probability shows.
  const run = effective === undefined ? rule : { ...rule, enabled: effective.enabled, probability: effective.probability };
  return { match, fault: rule.written, summary: describeRule(run) };
}

function viewValues(values: Readonly<Record<string, ValueMatch>>, secret: (name: string) => boolean): Record<string, ValueView> {
  const out: Record<string, ValueView> = {};
  for (const [name, v] of Object.entries(values)) {
    if (v.kind === 'present') out[name] = { present: v.present };
    else if (v.kind === 'regex') out[name] = { regex: secret(name) ? REDACTED : v.source };
    else out[name] = secret(name) ? REDACTED : v.value;
  }
  return out;
}
