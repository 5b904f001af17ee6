/**
 * The rules: profiles (parse, load, watch), and the engine that decides which faults a request
 * gets. `src/proxy` acts on the decisions; `src/faults` holds the faults themselves.
 *
 *   profile text ──▶ parseProfile (validate once, compile, freeze) ──▶ CompiledProfile
 *   CompiledProfile ──▶ createRuleEngine ──▶ decide(facts) / settle(outcome)
 *   file ──▶ watchProfile ──▶ valid change ──▶ engine.setProfile
 */
export { parseProfile, loadProfile, readProfileFile, listBuiltinProfiles, builtinProfilePath, BUILTIN_DIR, MAX_PROFILE_BYTES } from './loader.js';
export { watchProfile, type ProfileWatcher } from './watch.js';
export { createRuleEngine, EMPTY_DECISION, type RuleEngine, type RuleEngineOptions, type RulePatch, type PhaseInfo } from './engine.js';
export { hashText, type CompiledProfile, type CompiledRule, type CompiledPhase } from './compile.js';
export { AttemptTracker, canonicalQuery, CACHE_BUSTING_KEYS } from './attempts.js';
export { FAULT_HEADER, HEADER_RULE, parseFaultHeader } from './header-faults.js';
export { SeededRandom } from './random.js';
export { describeProfile, describeRule } from './describe.js';
export type * from './types.js';
export type { RuleInput } from './schema.js';
