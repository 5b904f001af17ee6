/**
 * Validate once, then freeze: a profile's parsed data becomes a `CompiledProfile` — every problem
 * collected with its path and line, defaults filled, matchers and schedules compiled, each rule's
 * fault instance created, everything frozen. The hot path never validates again.
 *
 *   data ──▶ profile schema (zod) ─┐
 *        ──▶ each fault by its own schema (discriminated on `type` by hand) ─┼─▶ problems? ──▶ ProfileError
 *        ──▶ cross-checks (names, stages, overrides) ─┘                      └─▶ compile ──▶ freeze
 */
import { createHash } from 'node:crypto';
import { LineCounter, parseDocument } from 'yaml';
import type { FaultDefinition, FaultInstance, FaultStage } from '../faults/types.js';
import { faultByType, faultTypes } from '../faults/index.js';
import { ProfileError } from '../errors.js';
import { closestWord } from '../suggest.js';
import { compileMatch, type CompiledMatch } from './match.js';
import { Locator, Problems, zodMessage, type PathKey } from './problems.js';
import { compileSchedule, compileTimeline, type CompiledSchedule, type CompiledTimeline } from './schedule.js';
import {
  NAME_RE,
  profileSchema,
  RESERVED_RULE_NAMES,
  ruleSchema,
  type OverrideConfig,
  type ProfileConfig,
  type RuleConfig,
} from './schema.js';

/** One rule, compiled: what the engine evaluates on every request. */
export interface CompiledRule {
  readonly name: string;
  readonly description: string | null;
  readonly type: string;
  /** The stage the fault acts in (the instance's own stage when its options move it). */
  readonly stage: FaultStage;
  readonly enabled: boolean;
  readonly probability: number;
  readonly firstAttempts: number | null;
  readonly retriesOnly: boolean;
  readonly match: CompiledMatch;
  readonly schedule: CompiledSchedule | null;
  /** The fault's validated options, `type` first (durations in ms). */
  readonly fault: Readonly<Record<string, unknown>>;
  /** The fault as written in the profile (for summaries). */
  readonly written: Readonly<Record<string, unknown>>;
  readonly instance: FaultInstance;
  /** The validated rule (defaults filled, durations in ms). */
  readonly config: Readonly<RuleConfig>;
}

/** One phase of a profile's timeline. */
export interface CompiledPhase {
  readonly name: string;
  readonly description: string | null;
  readonly duration: number;
  /** Rules that exist only during this phase (their `when` counts from the phase's start). */
  readonly rules: readonly CompiledRule[];
  /** Changes to top-level rules during this phase, by rule name. */
  readonly overrides: Readonly<Record<string, Readonly<OverrideConfig>>>;
}

/** A validated, compiled, frozen profile. */
export interface CompiledProfile {
  readonly name: string;
  readonly description: string;
  /** First 12 hex digits of the SHA-256 of the source text. */
  readonly hash: string;
  readonly seed: number | null;
  /** The file it was read from, or null (built-in, inline, API). */
  readonly source: string | null;
  /** The built-in profile's name when it is one, else null. */
  readonly builtin: string | null;
  readonly maxActive: number | null;
  readonly headerFaults: boolean;
  readonly cohortSalt: string | null;
  readonly loop: boolean;
  readonly rules: readonly CompiledRule[];
  readonly phases: readonly CompiledPhase[];
  readonly timeline: CompiledTimeline | null;
  /** The validated profile with defaults filled (durations in ms). */
  readonly config: Readonly<ProfileConfig>;
  /** The profile as written (parsed YAML/JSON), for `GET /profile`. */
  readonly raw: unknown;
  /** The source text. */
  readonly text: string;
}

/** The short content hash profiles carry. */
export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

const STAGE_FAULTS = (stage: FaultStage): string => faultTypesFor((d) => d.stage === stage).join(', ');

function faultTypesFor(pred: (d: FaultDefinition) => boolean): string[] {
  return faultTypes.filter((t) => pred(faultByType.get(t) as FaultDefinition));
}

interface ValidFault {
  readonly def: FaultDefinition;
  readonly options: Record<string, unknown>;
  readonly stage: FaultStage;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The stage a fault will act in, from its validated options (latency's `at`). */
function stageOf(def: FaultDefinition, options: Record<string, unknown>): FaultStage {
  return def.type === 'latency' && options.at === 'response' ? 'response' : def.stage;
}

/** Validates `fault:` by its type's own schema; adds problems under `path`. */
export function validateFault(raw: unknown, path: readonly PathKey[], problems: Problems): ValidFault | null {
  const example = 'e.g. { type: http-error, status: 503 }';
  if (raw === undefined) {
    problems.add(path, `required: the fault to inject (${example})`);
    return null;
  }
  if (!isObject(raw)) {
    problems.add(path, `must be an object with a type (${example})`);
    return null;
  }
  const { type, ...rest } = raw;
  if (type === undefined) {
    // A misspelled `type` (tpye, Type, kind) is named where it is, not only missing.
    const typo = Object.keys(rest).find((k) => k.toLowerCase() === 'type' || k === 'kind' || closestWord(k, ['type'], 2) === 'type');
    if (typo !== undefined) problems.add([...path, typo], `unknown key ${JSON.stringify(typo)} (did you mean type?)`);
    else problems.add([...path, 'type'], `required: one of ${faultTypes.join(', ')}`);
    return null;
  }
  const def = typeof type === 'string' ? faultByType.get(type) : undefined;
  if (def === undefined) {
    const near = typeof type === 'string' ? (faultByType.has(type.toLowerCase().replace(/_/g, '-')) ? type.toLowerCase().replace(/_/g, '-') : closestWord(type, faultTypes, 2)) : null;
    problems.add([...path, 'type'], `unknown fault type ${JSON.stringify(type)}${near === null ? '' : ` (did you mean ${near}?)`}; known types: ${faultTypes.join(', ')}`);
    return null;
  }
  const r = def.options.safeParse(rest, { error: zodMessage });
  if (!r.success) {
    problems.addZod(path, r.error.issues);
    return null;
  }
  const options = r.data as Record<string, unknown>;
  return { def, options, stage: stageOf(def, options) };
}

/** Where a rule sits: top-level, in a phase, or ad hoc. */
interface RuleSite {
  readonly path: readonly PathKey[];
  readonly phase: string | null;
  readonly index: number;
}

function defaultRuleName(raw: Record<string, unknown>, site: RuleSite): string {
  const f = raw.fault;
  const type = isObject(f) && typeof f.type === 'string' && faultByType.has(f.type) ? f.type : 'rule';
  return site.phase === null ? `${type}-${site.index + 1}` : `${site.phase}.${type}-${site.index + 1}`;
}

/** Cross-checks of one raw rule that its own schema cannot see: stage vs match. */
function checkRule(raw: Record<string, unknown>, fault: ValidFault | null, path: readonly PathKey[], problems: Problems): void {
  if (fault === null) return;
  const match = isObject(raw.match) ? raw.match : {};
  const ws = fault.stage === 'websocket';
  if (match.websocket === false && ws) {
    problems.add([...path, 'match', 'websocket'], `${fault.def.type} acts on WebSocket connections; it cannot match websocket: false`);
  }
  if (match.websocket === true && !ws) {
    problems.add([...path, 'match', 'websocket'], `${fault.def.type} acts on HTTP exchanges; WebSocket faults are ${STAGE_FAULTS('websocket')}`);
  }
  if (match.status !== undefined && fault.stage !== 'response') {
    problems.add([...path, 'match', 'status'], `only for faults that act on the response (${STAGE_FAULTS('response')}, latency with at: response); ${fault.def.type} acts before the upstream answers`);
  }
  if (raw.retriesOnly === true && raw.firstAttempts === 1) {
    problems.add([...path, 'retriesOnly'], 'never applies with firstAttempts: 1 (the first attempt is never a retry)');
  }
}

/** Compiles one validated rule. */
function compileRule(config: RuleConfig, fault: ValidFault, name: string, salt: string | null, written: unknown): CompiledRule {
  const instance = fault.def.create(fault.options, { rule: name });
  const stage = instance.stage ?? fault.stage;
  const faultConfig = deepFreeze({ type: fault.def.type, ...fault.options });
  return Object.freeze({
    name,
    description: config.description ?? null,
    type: fault.def.type,
    stage,
    enabled: config.enabled,
    probability: config.probability,
    firstAttempts: config.firstAttempts ?? null,
    retriesOnly: config.retriesOnly,
    match: compileMatch(config.match, { websocketStage: stage === 'websocket', salt: salt ?? name }),
    schedule: compileSchedule(config.when),
    fault: faultConfig,
    written: deepFreeze(structuredClone(isObject(written) ? written : { type: fault.def.type })),
    instance,
    config: deepFreeze({ ...config, name, fault: faultConfig }),
  });
}

/** Freezes plain objects and arrays all the way down (not functions, regexes or class instances). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) || proto === Object.prototype || proto === null) {
      Object.freeze(value);
      for (const v of Object.values(value as object)) deepFreeze(v);
    }
  }
  return value;
}

export interface CompileInput {
  readonly data: unknown;
  readonly text: string;
  readonly source: string | null;
  readonly builtin: string | null;
  readonly locator: Locator;
  /** Name used when the profile has none (from the file name). */
  readonly fallbackName: string;
}

/** Validates and compiles parsed profile data; throws a ProfileError listing every problem. */
export function compileProfile(input: CompileInput): CompiledProfile {
  const problems = new Problems(input.source, input.locator);
  const data = input.data;
  const parsed = profileSchema.safeParse(data, { error: zodMessage });
  if (!parsed.success) problems.addZod([], parsed.error.issues);

  // Faults and cross-checks run on the raw data, so one run reports everything.
  const faults = new Map<string, ValidFault>();
  const root = isObject(data) ? data : {};
  const topNames = new Map<string, number>();
  const rawRules = Array.isArray(root.rules) ? root.rules : [];
  const nameOf = new Map<string, string>();
  rawRules.forEach((r, i) => {
    if (!isObject(r)) return;
    const site: RuleSite = { path: ['rules', i], phase: null, index: i };
    const f = validateFault(r.fault, [...site.path, 'fault'], problems);
    if (f !== null) faults.set(`rules.${i}`, f);
    checkRule(r, f, site.path, problems);
    const name = typeof r.name === 'string' ? r.name : defaultRuleName(r, site);
    nameOf.set(`rules.${i}`, name);
    if (!NAME_RE.test(name)) return; // the schema reports it
    if (RESERVED_RULE_NAMES.has(name)) problems.add([...site.path, 'name'], `"${name}" is reserved (header-triggered faults are counted under it)`);
    const prev = topNames.get(name);
    if (prev !== undefined) problems.add(typeof r.name === 'string' ? [...site.path, 'name'] : site.path, `duplicate rule name "${name}" (also rules[${prev}])`);
    else topNames.set(name, i);
  });

  const rawPhases = Array.isArray(root.phases) ? root.phases : [];
  const phaseNames = new Map<string, number>();
  const phaseRuleTypes = new Map<string, { type: string; where: string }>();
  rawPhases.forEach((p, j) => {
    if (!isObject(p)) return;
    if (typeof p.name === 'string') {
      const prev = phaseNames.get(p.name);
      if (prev !== undefined) problems.add(['phases', j, 'name'], `duplicate phase name "${p.name}" (also phases[${prev}])`);
      else phaseNames.set(p.name, j);
    }
    const phaseName = typeof p.name === 'string' ? p.name : `phase${j + 1}`;
    const inPhase = new Map<string, number>();
    (Array.isArray(p.rules) ? p.rules : []).forEach((r: unknown, i: number) => {
      if (!isObject(r)) return;
      const site: RuleSite = { path: ['phases', j, 'rules', i], phase: phaseName, index: i };
      const f = validateFault(r.fault, [...site.path, 'fault'], problems);
      if (f !== null) faults.set(`phases.${j}.rules.${i}`, f);
      checkRule(r, f, site.path, problems);
      const name = typeof r.name === 'string' ? r.name : defaultRuleName(r, site);
      nameOf.set(`phases.${j}.rules.${i}`, name);
      const namePath = typeof r.name === 'string' ? [...site.path, 'name'] : site.path;
      if (RESERVED_RULE_NAMES.has(name)) problems.add(namePath, `"${name}" is reserved (header-triggered faults are counted under it)`);
      if (topNames.has(name)) {
        problems.add(namePath, `a top-level rule is named "${name}"; change it during this phase with overrides: { ${name}: { probability: ... } } or pick another name`);
      }
      const prev = inPhase.get(name);
      if (prev !== undefined) problems.add(namePath, `duplicate rule name "${name}" in this phase (also rules[${prev}])`);
      else inPhase.set(name, i);
      if (f !== null) {
        const seen = phaseRuleTypes.get(name);
        if (seen === undefined) phaseRuleTypes.set(name, { type: f.def.type, where: `phases[${j}]` });
        else if (seen.type !== f.def.type) {
          problems.add([...site.path, 'fault', 'type'], `rule "${name}" is a ${seen.type} in ${seen.where}; one name means one fault type across phases`);
        }
      }
    });
    if (isObject(p.overrides)) {
      for (const k of Object.keys(p.overrides)) {
        if (!topNames.has(k)) {
          const known = [...topNames.keys()];
          problems.add(['phases', j, 'overrides', k], `no top-level rule named "${k}"${known.length > 0 ? `; rules: ${known.join(', ')}` : ' (the profile has no top-level rules)'}`, { key: true });
        }
      }
    }
  });
  if (root.loop === true && rawPhases.length === 0) problems.add(['loop'], 'only with phases: loop repeats the timeline of phases');

  if (!problems.empty || !parsed.success) throw new ProfileError(problems.sorted(), input.source);

  const config = parsed.data;
  const salt = config.cohortSalt ?? null;
  const rawFault = (r: unknown): unknown => (isObject(r) ? r.fault : undefined);
  const rules = config.rules.map((r, i) => compileRule(r, faults.get(`rules.${i}`) as ValidFault, nameOf.get(`rules.${i}`) as string, salt, rawFault(rawRules[i])));
  const phases = (config.phases ?? []).map((p, j): CompiledPhase =>
    Object.freeze({
      name: p.name,
      description: p.description ?? null,
      duration: p.duration,
      rules: Object.freeze(
        (p.rules ?? []).map((r, i) => {
          const rawPhase = rawPhases[j];
          const rawRule = isObject(rawPhase) && Array.isArray(rawPhase.rules) ? rawPhase.rules[i] : undefined;
          return compileRule(r, faults.get(`phases.${j}.rules.${i}`) as ValidFault, nameOf.get(`phases.${j}.rules.${i}`) as string, salt, rawFault(rawRule));
        }),
      ),
      overrides: deepFreeze({ ...(p.overrides ?? {}) }),
    }),
  );
  const name = config.name ?? input.fallbackName;
  return Object.freeze({
    name,
    description: config.description,
    hash: hashText(input.text),
    seed: config.seed ?? null,
    source: input.source,
    builtin: input.builtin,
    maxActive: config.maxActive ?? null,
    headerFaults: config.headerFaults,
    cohortSalt: salt,
    loop: config.loop,
    rules: Object.freeze(rules),
    phases: Object.freeze(phases),
    timeline: phases.length === 0 ? null : compileTimeline(phases.map((p) => p.duration), config.loop),
    config: deepFreeze({ ...config, name }),
    raw: deepFreeze(structuredClone(data)),
    text: input.text,
  });
}

/** Lines of a compiled profile's paths, for problems found after it compiled. */
export interface ProfileLines {
  /** Line (1-based) of the node at `path`, or of its nearest existing parent; null without a document. */
  line(path: readonly PathKey[]): number | null;
}

/**
 * Reads the profile's text again to find lines: only a refusal needs them (a rule name taken by
 * an ad-hoc rule), so a compiled profile does not keep its YAML document.
 *
 * @example profileLines(profile).line(['rules', 1, 'name']) === 7
 */
export function profileLines(profile: CompiledProfile): ProfileLines {
  const counter = new LineCounter();
  let locator: Locator;
  try {
    locator = new Locator(parseDocument(profile.text, { lineCounter: counter, prettyErrors: false, uniqueKeys: false, merge: false, version: '1.2' }), counter);
  } catch {
    locator = new Locator(null, null);
  }
  return { line: (path) => locator.line(path, true) };
}

/**
 * Validates and compiles one rule given outside a profile (the control API's ad-hoc faults).
 * Problems have no file or line; paths are relative to the rule (`fault.status`).
 */
export function compileStandaloneRule(raw: unknown, opts: { defaultName: string; taken: ReadonlySet<string>; cohortSalt: string | null }): CompiledRule {
  const problems = new Problems(null, new Locator(null, null));
  const parsed = ruleSchema.safeParse(raw, { error: zodMessage });
  if (!parsed.success) problems.addZod([], parsed.error.issues);
  let fault: ValidFault | null = null;
  let name = opts.defaultName;
  if (isObject(raw)) {
    fault = validateFault(raw.fault, ['fault'], problems);
    checkRule(raw, fault, [], problems);
    if (typeof raw.name === 'string') name = raw.name;
    if (RESERVED_RULE_NAMES.has(name)) problems.add(['name'], `"${name}" is reserved (header-triggered faults are counted under it)`);
    else if (opts.taken.has(name)) problems.add(['name'], `a rule named "${name}" exists; remove it first or pick another name`);
  }
  if (!problems.empty || !parsed.success || fault === null) throw new ProfileError(problems.sorted(), null, 'fault');
  return compileRule(parsed.data, fault, name, opts.cohortSalt, isObject(raw) ? raw.fault : undefined);
}
