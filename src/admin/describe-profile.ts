/**
 * The JSON view of a compiled profile for GET /profile: what it is (name, description, hash,
 * source), the seed the engine really uses (a --seed overrides the profile's), its rules as the
 * engine runs them, and the profile as written, which can be sent back to PUT /profile unchanged.
 */
import { describeRule, type CompiledProfile, type CompiledRule, type PhaseInfo } from '../rules/index.js';

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
  /** The profile as written (parsed YAML/JSON). */
  definition: unknown;
}

/**
 * @example describeProfile(proxy.profile, proxy.engine.seed).rules.map((r) => r.name)
 */
export function describeProfile(p: CompiledProfile, seed: number, phase: PhaseInfo | null = null): ProfileView {
  return {
    name: p.name,
    description: p.description,
    hash: p.hash,
    source: p.source,
    builtin: p.builtin,
    seed,
    profileSeed: p.seed,
    rules: p.rules.map(viewRule),
    phases: p.phases.map((ph) => ({ name: ph.name, description: ph.description, durationMs: ph.duration, rules: ph.rules.map(viewRule), overrides: overridesOf(ph.overrides) })),
    phase,
    definition: p.raw,
  };
}

function viewRule(r: CompiledRule): RuleView {
  return { name: r.name, summary: describeRule(r), type: r.type, stage: r.stage, enabled: r.enabled, probability: r.probability, description: r.description, fault: r.written };
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
