/**
 * The rules engine: which faults apply to this request (decide), and what happened (settle).
 *
 *   decide(facts, now)
 *     ├─ clock: t = now - (scenario start ?? engine start) ─▶ current phase (if the profile has phases)
 *     ├─ candidates, in order: header fault (opt-in) ─▶ ad-hoc rules ─▶ the profile's rules
 *     │    (top-level rules, with the phase's overrides, then the phase's own rules)
 *     ├─ per rule (cheapest first; no random draw unless everything else passed):
 *     │    enabled ─▶ schedule on ─▶ match ─▶ [matched++] ─▶ request slot free ─▶ attempt filter
 *     │    (firstAttempts / retriesOnly) ─▶ maxActive ─▶ probability x ramp ─▶ [injected++]
 *     ├─ order: every 'delay' fault, then at most ONE 'request' fault (the first chosen), then every
 *     │  'response' fault; WebSocket requests get 'websocket' faults in rule order.
 *     └─ faults chosen: + the seed of the exchange's own random stream (for the faults' draws)
 *   settle(decision, {status, outcome})
 *     └─ release maxActive slots, feed the attempt tracker (failed or not)
 *
 * `decide` is pure apart from its counters, the seeded random streams and the attempt history, all
 * owned here: same seed + same request sequence = same faults. A decision with faults carries the
 * seed of the exchange's own stream (one draw from a second stream of the engine's seed): the
 * draws its faults make later, whenever its response or messages come, are its own and shift
 * nothing for other requests. When nothing matches it allocates nothing and returns one shared,
 * frozen empty decision.
 */
import type { FaultInstance, RequestFacts } from '../faults/types.js';
import type { ActiveFault, DecideEnv, Decision, RuleStats, Settlement } from './types.js';
import { AftershockError, ProfileError, type ProfileProblem, RuleNameTakenError } from '../errors.js';

export { RuleNameTakenError };
import { AttemptTracker, type AttemptInfo } from './attempts.js';
import { compileStandaloneRule, profileLines, type CompiledProfile, type CompiledRule, type ProfileLines } from './compile.js';
import { FAULT_HEADER, HEADER_RULE, HeaderFaults } from './header-faults.js';
import { matches, MatchScratch, statusSelected } from './match.js';
import { SeededRandom, STREAM } from './random.js';
import { formatPath, type PathKey } from './problems.js';
import { phaseAt, scheduleFactor, type PhasePosition } from './schedule.js';

/** Options of `createRuleEngine`. */
export interface RuleEngineOptions {
  profile: CompiledProfile;
  /** Seed of every random choice; overrides the profile's. Default: the profile's, else 1. */
  seed?: number;
  /** The clock (epoch ms) for settle, stats, TTLs; default Date.now. `decide` takes its own `now`. */
  now?: () => number;
  /** W of the attempt grouping (ms); default 120 s. */
  attemptWindowMs?: number;
  /** Most attempt chains remembered; default 100,000. */
  maxChains?: number;
  /**
   * Called once for each ad-hoc rule whose TTL ran out, when the engine lets it go (lazily: at the
   * next decision, change or `expireFaults()`), with the time it expired (epoch ms).
   */
  onFaultExpired?: (name: string, expiresAt: number) => void;
}

/** A change to a rule through the control plane. */
export interface RulePatch {
  enabled?: boolean;
  probability?: number;
}

/** Where the profile's timeline is. */
export interface PhaseInfo {
  readonly index: number;
  readonly name: string;
  /** Epoch ms. */
  readonly startedAt: number;
  readonly endsAt: number;
}

/** The engine as the proxy, the control API and tests use it. */
export interface RuleEngine {
  decide(facts: RequestFacts, env: DecideEnv): Decision;
  settle(decision: Decision, settlement: Settlement): void;
  /**
   * Swaps the profile atomically; in-flight decisions keep their instances. Clears rule patches.
   * A profile whose seed differs from the one in use (and no `seed` option) reseeds the random
   * streams, as `startScenario` does; the same seed goes on with them. A rule whose name and fault
   * are unchanged keeps its fault instance and its state (rate-limit buckets, capacity slots). Throws
   * `RuleNameTakenError` (and keeps the running profile) when a rule of `profile` has the name of
   * an ad-hoc rule.
   */
  setProfile(profile: CompiledProfile): void;
  /** Throws `RuleNameTakenError` when `setProfile(profile)` would; changes nothing. */
  checkProfile(profile: CompiledProfile): void;
  readonly profile: CompiledProfile;
  /**
   * The engine's decision stream (rule probabilities). Faults never draw from it: each exchange
   * draws from its own stream, seeded by its decision (`Decision.seed`).
   */
  readonly random: () => number;
  /** The seed of the stream in use: the `seed` option, else the profile's, else 1. */
  readonly seed: number;
  stats(): RuleStats[];
  patchRule(name: string, patch: RulePatch): RuleStats;
  addFault(rule: unknown, ttlMs?: number): RuleStats;
  removeFault(name: string): boolean;
  /** Lets go of the ad-hoc rules whose TTL has run out now (as every decision does first). */
  expireFaults(): void;
  /** The compiled rule of that name (ad-hoc, top-level or a phase's), or null: what it matches and injects. */
  rule(name: string): CompiledRule | null;
  /** Restarts the clock at `now` (phases and schedules count from here) and reseeds the random streams. */
  startScenario(now: number): void;
  /** Back to the engine's own clock (schedules count from the engine's start). */
  stopScenario(): void;
  readonly scenarioStartedAt: number | null;
  /** The current phase, or null (no phases, or past the last one). */
  phase(now?: number): PhaseInfo | null;
  resetCounters(): void;
  /** Takes no more changes (its proxy closed): the methods that change it throw ERR_CLOSED; decisions go on. */
  close(): void;
  /** Header-triggered faults that were refused (unparsable, unknown type, invalid options, wrong stage). */
  readonly invalidHeaderFaults: number;
  /** Attempt chains remembered (bounded). */
  readonly trackedChains: number;
}

interface RuleState {
  readonly name: string;
  matched: number;
  injected: number;
  enabled: boolean | null;
  probability: number | null;
}

type Clock = 'profile' | 'phase' | 'adhoc';

interface EngineRule {
  readonly rule: CompiledRule;
  readonly state: RuleState;
  readonly fault: ActiveFault;
  readonly enabled: boolean;
  readonly probability: number;
  readonly clock: Clock;
  readonly origin: number;
  readonly needsAttempts: boolean;
  readonly countAtDecide: boolean;
  readonly expiresAt: number | null;
}

interface RuleList {
  readonly http: readonly EngineRule[];
  readonly ws: readonly EngineRule[];
}

interface Runtime {
  readonly profile: CompiledProfile;
  readonly base: RuleList;
  readonly phases: readonly RuleList[];
  readonly maxActive: number;
}

/** Per-decision bookkeeping the engine needs back in settle. */
class Token {
  settled = false;
  constructor(
    readonly count: number,
    readonly attempt: AttemptInfo | null,
    readonly terminal: boolean,
    readonly websocket: boolean,
    readonly at: number,
  ) {}
}

const NO_FAULTS: readonly ActiveFault[] = Object.freeze([]);
/** The one decision for "nothing applies". */
export const EMPTY_DECISION: Decision = Object.freeze({ faults: NO_FAULTS, token: null, seed: 0 });

/** A WebSocket that stayed open this long was a success for the attempt tracker (spec §3.4). */
const WS_SUCCESS_MS = 5000;

/**
 * Creates the engine for a compiled profile.
 *
 * @example
 * const engine = createRuleEngine({ profile: await loadProfile('flaky'), seed: 7 });
 * const d = engine.decide(facts, { now: Date.now() });
 * // ... apply d.faults ...
 * engine.settle(d, { status: 503, outcome: null });
 */
export function createRuleEngine(options: RuleEngineOptions): RuleEngine {
  return new Engine(options);
}

class Engine implements RuleEngine {
  private rt!: Runtime;
  private readonly nowFn: () => number;
  private readonly explicitSeed: number | null;
  /** The seed of the stream in use: --seed, else the profile's, else 1. */
  private streamSeed: number;
  private readonly rng: SeededRandom;
  /** Gives each decision with faults the seed of the exchange's own stream (`Decision.seed`). */
  private readonly exchangeSeeds: SeededRandom;
  private readonly startedAt: number;
  private scenarioStart: number | null = null;
  private readonly states = new Map<string, RuleState>();
  /**
   * The fault instances of the profile in force, by rule name and fault definition (`instanceKey`):
   * a reload keeps the instance, and so the state (rate-limit buckets, capacity slots and queue),
   * of every rule whose name and fault did not change.
   */
  private instances = new Map<string, FaultInstance>();
  private readonly adhocStates = new Map<string, RuleState>();
  private readonly headerState: RuleState = newState(HEADER_RULE);
  private readonly headerFaults = new HeaderFaults();
  private readonly tracker: AttemptTracker;
  private adhocHttp: readonly EngineRule[] = [];
  private adhocWs: readonly EngineRule[] = [];
  private adhocNextExpiry = Infinity;
  private adhocSeq = 0;
  private readonly onFaultExpired: ((name: string, expiresAt: number) => void) | null;
  private active = 0;
  private pos: PhasePosition | null = null;
  private readonly scratch = new MatchScratch();

  // Scratch of the decision being built (decide is synchronous and not re-entrant).
  private curCount = 0;
  private curAttempt: AttemptInfo | null = null;
  private curDelays: ActiveFault[] | null = null;
  private curRequest: ActiveFault | null = null;
  /** A fault that answers the upgrade itself (ws-reject) was picked: no other WebSocket fault can act. */
  private curUpgradeAnswered = false;
  private curAfter: ActiveFault[] | null = null;

  constructor(o: RuleEngineOptions) {
    this.nowFn = o.now ?? Date.now;
    this.onFaultExpired = o.onFaultExpired ?? null;
    this.explicitSeed = o.seed ?? null;
    this.streamSeed = this.explicitSeed ?? o.profile.seed ?? 1;
    this.rng = new SeededRandom(this.streamSeed);
    this.exchangeSeeds = new SeededRandom(this.streamSeed, STREAM.exchanges);
    this.startedAt = this.nowFn();
    this.tracker = new AttemptTracker({
      ...(o.attemptWindowMs === undefined ? {} : { windowMs: o.attemptWindowMs }),
      ...(o.maxChains === undefined ? {} : { cap: o.maxChains }),
    });
    this.install(o.profile);
  }

  get profile(): CompiledProfile {
    return this.rt.profile;
  }

  get random(): () => number {
    return this.rng.next;
  }

  get seed(): number {
    return this.streamSeed;
  }

  get scenarioStartedAt(): number | null {
    return this.scenarioStart;
  }

  get invalidHeaderFaults(): number {
    return this.headerFaults.invalid;
  }

  get trackedChains(): number {
    return this.tracker.size;
  }

  // ------------------------------------------------------------------ decide

  decide(facts: RequestFacts, env: DecideEnv): Decision {
    const now = env.now;
    if (now >= this.adhocNextExpiry) this.expireAdhoc(now);
    const rt = this.rt;
    const t = now - (this.scenarioStart ?? this.startedAt);
    let list = rt.base;
    let phaseStart = 0;
    const tl = rt.profile.timeline;
    if (tl !== null) {
      let pos = this.pos;
      if (pos === null || t < pos.start || t >= pos.end) {
        pos = phaseAt(tl, t);
        this.pos = pos;
      }
      if (pos !== null) {
        list = rt.phases[pos.index] as RuleList;
        phaseStart = pos.start;
      }
    }
    const ws = facts.websocket;
    const rules = ws ? list.ws : list.http;
    const adhoc = ws ? this.adhocWs : this.adhocHttp;
    const headerValue = rt.profile.headerFaults ? facts.headers[FAULT_HEADER] : undefined;
    if (rules.length === 0 && adhoc.length === 0 && headerValue === undefined) return EMPTY_DECISION;

    this.scratch.reset(facts.query);
    this.curCount = 0;
    this.curAttempt = null;
    this.curDelays = null;
    this.curRequest = null;
    this.curAfter = null;
    this.curUpgradeAnswered = false;

    if (headerValue !== undefined) this.considerHeader(typeof headerValue === 'string' ? headerValue : (headerValue[0] ?? ''), ws);
    for (let i = 0; i < adhoc.length; i++) {
      const er = adhoc[i] as EngineRule;
      if (this.consider(er, facts, now, now - er.origin)) this.pick(er.fault);
    }
    for (let i = 0; i < rules.length; i++) {
      const er = rules[i] as EngineRule;
      if (this.consider(er, facts, now, er.clock === 'phase' ? t - phaseStart : t)) this.pick(er.fault);
    }

    const count = this.curCount;
    const attempt = this.curAttempt;
    if (count === 0 && attempt === null) return EMPTY_DECISION;
    let faults: readonly ActiveFault[] = NO_FAULTS;
    let seed = 0;
    if (count > 0) {
      // (read through locals: TypeScript cannot see that pick() filled these)
      const delays = this.curDelays as ActiveFault[] | null;
      const request = this.curRequest as ActiveFault | null;
      const after = this.curAfter as ActiveFault[] | null;
      const out: ActiveFault[] = delays ?? [];
      if (request !== null) out.push(request);
      if (after !== null) for (const f of after) out.push(f);
      faults = out;
      seed = this.exchangeSeeds.nextSeed();
    }
    this.active += count;
    const token = new Token(count, attempt, (this.curRequest as ActiveFault | null) !== null, ws, now);
    this.curDelays = null;
    this.curAfter = null;
    this.curRequest = null;
    return { faults, token, seed };
  }

  /** One rule against one request. True when its fault is chosen. */
  private consider(er: EngineRule, facts: RequestFacts, now: number, t: number): boolean {
    const st = er.state;
    if (!(st.enabled ?? er.enabled)) return false;
    const rule = er.rule;
    const factor = rule.schedule === null ? 1 : scheduleFactor(rule.schedule, t);
    if (factor < 0) return false;
    if (!matches(rule.match, facts, this.scratch)) return false;
    st.matched++;
    if (rule.stage === 'request' && this.curRequest !== null) return false;
    // (As for requests: a refused upgrade leaves nothing for a later WebSocket fault to act on.)
    if (rule.stage === 'websocket' && this.curUpgradeAnswered) return false;
    if (er.needsAttempts) {
      const attempt = (this.curAttempt ??= this.tracker.begin(facts, now)).attempt;
      if (rule.retriesOnly && attempt <= 1) return false;
      if (rule.firstAttempts !== null && attempt > rule.firstAttempts) return false;
    }
    if (this.active + this.curCount >= this.rt.maxActive) return false;
    const p = (st.probability ?? er.probability) * factor;
    if (p <= 0) return false;
    if (p < 1 && this.rng.next() >= p) return false;
    if (er.countAtDecide) st.injected++;
    return true;
  }

  private considerHeader(value: string, ws: boolean): void {
    const st = this.headerState;
    st.matched++;
    const hf = this.headerFaults.resolve(value);
    if (hf === null) return;
    if ((hf.stage === 'websocket') !== ws) {
      this.headerFaults.invalid++;
      this.headerFaults.lastError = ws ? `${hf.active.type} does not act on WebSocket connections` : `${hf.active.type} acts only on WebSocket connections`;
      return;
    }
    if (this.active + this.curCount >= this.rt.maxActive) return;
    if (hf.stage === 'request' && this.curRequest !== null) return;
    if (hf.stage === 'websocket' && this.curUpgradeAnswered) return;
    // A response or WebSocket fault counts when it acts, as a profile rule's does.
    if ((hf.stage === 'response' && hf.active.instance.onResponse !== undefined) || hf.stage === 'websocket') {
      this.pick(Object.freeze({ ...hf.active, acted: () => void st.injected++ }));
      return;
    }
    st.injected++;
    this.pick(hf.active);
  }

  /**
   * A fault that answers the upgrade itself was picked: the WebSocket faults picked before it act
   * on an open connection, which this one will never have, so they are dropped and not counted.
   */
  private dropOpenFaults(): void {
    const after = this.curAfter;
    if (after === null) return;
    for (let i = after.length - 1; i >= 0; i--) {
      const g = after[i] as ActiveFault;
      if (g.stage !== 'websocket' || g.instance.onUpgrade !== undefined) continue;
      after.splice(i, 1);
      this.curCount--;
      const st = this.adhocStates.get(g.rule) ?? this.states.get(g.rule) ?? (g.rule === HEADER_RULE ? this.headerState : undefined);
      // (A fault counted when it acts was not counted yet.)
      if (g.acted === undefined && st !== undefined && st.injected > 0) st.injected--;
    }
  }

  private pick(f: ActiveFault): void {
    this.curCount++;
    switch (f.stage) {
      case 'delay':
        (this.curDelays ??= []).push(f);
        break;
      case 'request':
        this.curRequest = f;
        break;
      default:
        if (f.stage === 'websocket' && f.instance.onUpgrade !== undefined) {
          this.curUpgradeAnswered = true;
          this.dropOpenFaults();
        }
        (this.curAfter ??= []).push(f);
    }
  }

  // ------------------------------------------------------------------ settle

  settle(decision: Decision, settlement: Settlement): void {
    const tok = decision.token;
    if (!(tok instanceof Token) || tok.settled) return;
    tok.settled = true;
    this.active = Math.max(0, this.active - tok.count);
    if (tok.attempt !== null) {
      const now = this.nowFn();
      const { status, outcome } = settlement;
      const failed = tok.websocket
        ? status !== 101 || outcome !== null || now - (settlement.openedAt ?? tok.at) < WS_SUCCESS_MS
        : status === null || outcome !== null || status >= 500 || status === 429 || status === 408 || (tok.terminal && status >= 400);
      this.tracker.end(tok.attempt, now, failed);
    }
  }

  // ------------------------------------------------------------------ profile and clock

  setProfile(profile: CompiledProfile): void {
    this.live('setProfile');
    this.checkProfile(profile);
    for (const s of this.states.values()) {
      s.enabled = null;
      s.probability = null;
    }
    this.install(profile);
    // A new seed starts its own stream, as a fresh start with it would; the same seed goes on.
    const seed = this.explicitSeed ?? profile.seed ?? 1;
    if (seed !== this.streamSeed) this.reseed(seed);
  }

  checkProfile(profile: CompiledProfile): void {
    this.expireFaults();
    if (this.adhocStates.size === 0) return;
    const problems: ProfileProblem[] = [];
    const names: string[] = [];
    let lines: ProfileLines | null = null;
    const check = (name: string, at: readonly PathKey[]): void => {
      if (!this.adhocStates.has(name)) return;
      if (!names.includes(name)) names.push(name);
      const path = [...at, 'name'];
      problems.push({
        file: profile.source,
        line: (lines ??= profileLines(profile)).line(path),
        path: formatPath(path),
        message: `${JSON.stringify(name)} is taken by an ad-hoc rule; DELETE /faults/${encodeURIComponent(name)} first (aftershock ctl fault remove) or rename the rule`,
      });
    };
    profile.rules.forEach((r, i) => check(r.name, ['rules', i]));
    profile.phases.forEach((ph, j) => ph.rules.forEach((r, i) => check(r.name, ['phases', j, 'rules', i])));
    if (problems.length > 0) throw new RuleNameTakenError(problems, profile.source, names);
  }

  private install(profile: CompiledProfile): void {
    const faultOf = new Map<CompiledRule, ActiveFault>();
    const instances = new Map<string, FaultInstance>();
    const entry = (rule: CompiledRule, clock: Clock, enabled: boolean, probability: number): EngineRule => {
      const state = this.stateFor(this.states, rule.name);
      let fault = faultOf.get(rule);
      if (fault === undefined) {
        // The same name and the same fault: the instance in use goes on, with its state.
        const key = instanceKey(rule);
        const instance = this.instances.get(key) ?? instances.get(key) ?? rule.instance;
        instances.set(key, instance);
        fault = activeFault(rule, state, instance);
        faultOf.set(rule, fault);
      }
      return Object.freeze({
        rule,
        state,
        fault,
        enabled,
        probability,
        clock,
        origin: 0,
        needsAttempts: rule.firstAttempts !== null || rule.retriesOnly,
        countAtDecide: rule.match.status === null && !countsOnResponse(rule) && !countsWhenActing(rule),
        expiresAt: null,
      });
    };
    const split = (entries: EngineRule[]): RuleList =>
      Object.freeze({ http: Object.freeze(entries.filter((e) => !e.rule.match.websocket)), ws: Object.freeze(entries.filter((e) => e.rule.match.websocket)) });
    const base = split(profile.rules.map((r) => entry(r, 'profile', r.enabled, r.probability)));
    const phases = profile.phases.map((p) => {
      const entries = profile.rules.map((r) => {
        const ov = p.overrides[r.name];
        return entry(r, 'profile', ov?.enabled ?? r.enabled, ov?.probability ?? r.probability);
      });
      for (const r of p.rules) entries.push(entry(r, 'phase', r.enabled, r.probability));
      return split(entries);
    });
    this.pos = null;
    this.instances = instances;
    // One assignment: a request decides on the old runtime or the new one, never a mix.
    this.rt = Object.freeze({ profile, base, phases: Object.freeze(phases), maxActive: profile.maxActive ?? Infinity });
  }

  private stateFor(map: Map<string, RuleState>, name: string): RuleState {
    let s = map.get(name);
    if (s === undefined) {
      s = newState(name);
      map.set(name, s);
    }
    return s;
  }

  startScenario(now: number): void {
    this.live('startScenario');
    this.scenarioStart = Math.floor(now); // whole ms: phases' times are shown to people and clients
    this.pos = null;
    this.reseed(this.streamSeed);
  }

  private reseed(seed: number): void {
    this.streamSeed = seed;
    this.rng.reseed(seed);
    this.exchangeSeeds.reseed(seed, STREAM.exchanges);
  }

  stopScenario(): void {
    this.live('stopScenario');
    this.scenarioStart = null;
    this.pos = null;
  }

  phase(now: number = this.nowFn()): PhaseInfo | null {
    const tl = this.rt.profile.timeline;
    if (tl === null) return null;
    const origin = this.scenarioStart ?? this.startedAt;
    const pos = phaseAt(tl, now - origin);
    if (pos === null) return null;
    const p = this.rt.profile.phases[pos.index];
    return p === undefined ? null : { index: pos.index, name: p.name, startedAt: origin + pos.start, endsAt: origin + pos.end };
  }

  // ------------------------------------------------------------------ control plane

  /** The rules running at `now` (the top-level ones, or the running phase's), for the control plane. */
  private runningAt(now: number): { t: number; pos: PhasePosition | null; list: RuleList } {
    const rt = this.rt;
    const t = now - (this.scenarioStart ?? this.startedAt);
    const pos = rt.profile.timeline === null ? null : phaseAt(rt.profile.timeline, t);
    return { t, pos, list: pos === null ? rt.base : (rt.phases[pos.index] as RuleList) };
  }

  stats(): RuleStats[] {
    const now = this.nowFn();
    if (now >= this.adhocNextExpiry) this.expireAdhoc(now);
    const rt = this.rt;
    const { t, pos, list: current } = this.runningAt(now);
    const out: RuleStats[] = [];
    if (rt.profile.headerFaults) {
      const h = this.headerState;
      out.push({ name: HEADER_RULE, type: '*', enabled: true, probability: 1, matched: h.matched, injected: h.injected, active: true, expiresAt: null, adHoc: false });
    }
    for (const er of [...this.adhocHttp, ...this.adhocWs]) out.push(this.ruleStats(er, now - er.origin, true));
    const currentByName = new Map<string, EngineRule>();
    for (const er of [...current.http, ...current.ws]) currentByName.set(er.rule.name, er);
    const seen = new Set<string>();
    const listRule = (er: EngineRule): void => {
      if (seen.has(er.rule.name)) return;
      seen.add(er.rule.name);
      const live = currentByName.get(er.rule.name);
      const tRule = live === undefined ? t : live.clock === 'phase' ? t - (pos?.start ?? 0) : t;
      out.push(this.ruleStats(live ?? er, tRule, false, live !== undefined));
    };
    for (const er of [...rt.base.http, ...rt.base.ws]) listRule(er);
    for (const ph of rt.phases) for (const er of [...ph.http, ...ph.ws]) listRule(er);
    // Keep the profile's order: top-level rules first (as written), then phase rules.
    return out;
  }

  private ruleStats(er: EngineRule, t: number, adHoc: boolean, present = true): RuleStats {
    const st = er.state;
    const enabled = st.enabled ?? er.enabled;
    return {
      name: er.rule.name,
      type: er.rule.type,
      enabled,
      probability: st.probability ?? er.probability,
      matched: st.matched,
      injected: st.injected,
      active: present && enabled && scheduleFactor(er.rule.schedule, t) >= 0,
      expiresAt: er.expiresAt,
      adHoc,
    };
  }

  patchRule(name: string, patch: RulePatch): RuleStats {
    this.live('patchRule');
    if (name === HEADER_RULE && this.rt.profile.headerFaults) {
      throw new AftershockError(
        'ERR_RULE_NOT_PATCHABLE',
        `"${HEADER_RULE}" stands for the faults clients ask for with a request header (headerFaults: true) and cannot be patched; set headerFaults: false in the profile (PUT /profile) to turn header faults off`,
      );
    }
    const inProfile = this.states.has(name) && this.profileHasRule(name);
    const adhoc = this.adhocStates.get(name);
    if (!inProfile && adhoc === undefined) throw new AftershockError('ERR_RULE_NOT_FOUND', `no rule named ${JSON.stringify(name)}; engine.stats() lists them`);
    if (patch.enabled !== undefined && typeof patch.enabled !== 'boolean') throw new AftershockError('ERR_BAD_OPTION', `rule ${JSON.stringify(name)}: enabled must be true or false`);
    if (patch.probability !== undefined && !(typeof patch.probability === 'number' && patch.probability >= 0 && patch.probability <= 1)) {
      throw new AftershockError('ERR_BAD_OPTION', `rule ${JSON.stringify(name)}: probability must be a number from 0 to 1`);
    }
    for (const st of [inProfile ? this.states.get(name) : undefined, adhoc]) {
      if (st === undefined) continue;
      if (patch.enabled !== undefined) st.enabled = patch.enabled;
      if (patch.probability !== undefined) st.probability = patch.probability;
    }
    return this.stats().find((s) => s.name === name) as RuleStats;
  }

  private profileHasRule(name: string): boolean {
    const p = this.rt.profile;
    return p.rules.some((r) => r.name === name) || p.phases.some((ph) => ph.rules.some((r) => r.name === name));
  }

  addFault(rule: unknown, ttlMs?: number): RuleStats {
    this.live('addFault');
    if (ttlMs !== undefined && !(typeof ttlMs === 'number' && Number.isFinite(ttlMs) && ttlMs > 0)) {
      throw new AftershockError('ERR_BAD_OPTION', `ttl ${JSON.stringify(ttlMs)}: give a positive number of milliseconds`);
    }
    // A rule whose TTL ran out frees its name now, not at the next request.
    this.expireFaults();
    const taken = new Set<string>([HEADER_RULE, ...this.adhocStates.keys()]);
    for (const r of this.rt.profile.rules) taken.add(r.name);
    for (const ph of this.rt.profile.phases) for (const r of ph.rules) taken.add(r.name);
    const name = (rule as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && name !== HEADER_RULE && taken.has(name)) {
      throw new AftershockError('ERR_RULE_EXISTS', `a rule named ${JSON.stringify(name)} exists; remove it first (removeFault) or pick another name`);
    }
    // The next free generated name; the count moves only when a name was really generated.
    let seq = this.adhocSeq + 1;
    while (taken.has(`adhoc-${seq}`)) seq++;
    const compiled = compileStandaloneRule(rule, { defaultName: `adhoc-${seq}`, taken, cohortSalt: this.rt.profile.cohortSalt });
    if (typeof name !== 'string') this.adhocSeq = seq;
    const now = this.nowFn();
    const state = newState(compiled.name);
    this.adhocStates.set(compiled.name, state);
    const expiresAt = ttlMs === undefined ? null : now + ttlMs;
    const er: EngineRule = Object.freeze({
      rule: compiled,
      state,
      fault: activeFault(compiled, state, compiled.instance),
      enabled: compiled.enabled,
      probability: compiled.probability,
      clock: 'adhoc' as const,
      origin: now,
      needsAttempts: compiled.firstAttempts !== null || compiled.retriesOnly,
      countAtDecide: compiled.match.status === null && !countsOnResponse(compiled) && !countsWhenActing(compiled),
      expiresAt,
    });
    if (compiled.match.websocket) this.adhocWs = Object.freeze([...this.adhocWs, er]);
    else this.adhocHttp = Object.freeze([...this.adhocHttp, er]);
    if (expiresAt !== null) this.adhocNextExpiry = Math.min(this.adhocNextExpiry, expiresAt);
    return this.ruleStats(er, 0, true);
  }

  rule(name: string): CompiledRule | null {
    const adhoc = [...this.adhocHttp, ...this.adhocWs].find((e) => e.rule.name === name);
    if (adhoc !== undefined) return adhoc.rule;
    // A rule retuned per phase (one name in several phases) is the running phase's, as stats() says.
    const { list } = this.runningAt(this.nowFn());
    const live = list.http.find((e) => e.rule.name === name) ?? list.ws.find((e) => e.rule.name === name);
    if (live !== undefined) return live.rule;
    const p = this.rt.profile;
    return p.rules.find((r) => r.name === name) ?? p.phases.flatMap((ph) => ph.rules).find((r) => r.name === name) ?? null;
  }

  removeFault(name: string): boolean {
    this.live('removeFault');
    // Expiry is lazy: a rule whose TTL ran out is gone, not removed now.
    this.expireFaults();
    if (!this.adhocStates.has(name)) return false;
    this.adhocStates.delete(name);
    this.adhocHttp = Object.freeze(this.adhocHttp.filter((e) => e.rule.name !== name));
    this.adhocWs = Object.freeze(this.adhocWs.filter((e) => e.rule.name !== name));
    this.recomputeExpiry();
    return true;
  }

  expireFaults(): void {
    const now = this.nowFn();
    if (now >= this.adhocNextExpiry) this.expireAdhoc(now);
  }

  private expireAdhoc(now: number): void {
    const gone: EngineRule[] = [];
    const keep = (e: EngineRule): boolean => {
      if (e.expiresAt !== null && e.expiresAt <= now) {
        this.adhocStates.delete(e.rule.name);
        gone.push(e);
        return false;
      }
      return true;
    };
    this.adhocHttp = Object.freeze(this.adhocHttp.filter(keep));
    this.adhocWs = Object.freeze(this.adhocWs.filter(keep));
    this.recomputeExpiry();
    // Told once the engine is consistent again.
    if (this.onFaultExpired !== null) for (const e of gone) this.onFaultExpired(e.rule.name, e.expiresAt as number);
  }

  private recomputeExpiry(): void {
    let next = Infinity;
    for (const e of this.adhocHttp) if (e.expiresAt !== null && e.expiresAt < next) next = e.expiresAt;
    for (const e of this.adhocWs) if (e.expiresAt !== null && e.expiresAt < next) next = e.expiresAt;
    this.adhocNextExpiry = next;
  }

  close(): void {
    this.closed = true;
  }

  private closed = false;

  private live(what: string): void {
    if (this.closed) throw new AftershockError('ERR_CLOSED', `engine.${what}: the proxy is closed`);
  }

  resetCounters(): void {
    this.live('resetCounters');
    for (const s of [...this.states.values(), ...this.adhocStates.values(), this.headerState]) {
      s.matched = 0;
      s.injected = 0;
    }
    this.headerFaults.invalid = 0;
  }
}

function newState(name: string): RuleState {
  return { name, matched: 0, injected: 0, enabled: null, probability: null };
}

/**
 * What makes two rules one fault instance across reloads: the rule's name and its fault's
 * validated options (defaults filled, durations in ms), keys sorted, so a reload that only moves
 * keys around or edits anything else of the rule (description, match, probability, when) keeps it.
 */
function instanceKey(rule: CompiledRule): string {
  return `${rule.name}\n${stableJson(rule.fault)}`;
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * A response fault counts as injected when the exchange labels it (its `acted`), not when the rule
 * is picked: a truncate of a body shorter than its cut, a corrupt with nothing to flip, or a
 * throttle before a lost-response injected nothing and is neither labelled nor counted.
 */
function countsOnResponse(rule: CompiledRule): boolean {
  return rule.stage === 'response' && rule.instance.onResponse !== undefined;
}

/**
 * The ActiveFault the proxy gets for a rule. With `match.status`, or for a response fault, the
 * instance is wrapped so its `onResponse` first checks the upstream's status and counts as
 * injected only when it acts.
 */
function activeFault(rule: CompiledRule, state: RuleState, inner: FaultInstance): ActiveFault {
  const ranges = rule.match.status;
  const instance = ranges !== null && inner.onResponse !== undefined ? statusGated(inner, ranges) : inner;
  // Counted when the exchange labels it (it acted), not when picked.
  if (countsWhenActing(rule) || ranges !== null || countsOnResponse(rule)) {
    return Object.freeze({ rule: rule.name, type: rule.type, stage: rule.stage, instance, acted: () => void state.injected++ });
  }
  return Object.freeze({ rule: rule.name, type: rule.type, stage: rule.stage, instance });
}

/**
 * A WebSocket fault counts as injected when it acts on the connection (the exchange calls
 * `acted`): a ws-close after 3 s on a connection the client closed after 1 s injected nothing.
 */
function countsWhenActing(rule: CompiledRule): boolean {
  return rule.stage === 'websocket';
}

/** `inner` with an `onResponse` that acts only on an upstream status in `ranges` (`match.status`). */
function statusGated(inner: FaultInstance, ranges: NonNullable<CompiledRule['match']['status']>): FaultInstance {
  const onResponse = inner.onResponse as NonNullable<FaultInstance['onResponse']>;
  const gated: FaultInstance = {
    onResponse(ctx, upstream) {
      return statusSelected(ranges, upstream.statusCode ?? 0) ? onResponse.call(inner, ctx, upstream) : null;
    },
  };
  return Object.freeze(inner.stage === undefined ? gated : { ...gated, stage: inner.stage });
}
