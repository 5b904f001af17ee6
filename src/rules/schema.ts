/**
 * The profile's zod schema: the API of a profile file. Strict everywhere (an unknown key is a
 * problem that names the known keys), durations as strings, defaults filled here so the compiled
 * profile never asks "was this set?".
 *
 * A rule's `fault:` is validated separately, by its own fault's schema, after discriminating on
 * `type` by hand (see `compile.ts`): the error paths then read `rules[2].fault.status`, not a
 * union's guess.
 */
import { globRegExp, linearProblem } from './linear.js';
import { z } from 'zod';
import safeRegex from 'safe-regex2';
import { duration, fraction, refuseCaseTwins, strict } from '../faults/lib/schema.js';
import type { FaultInput } from '../faults/index.js';

/** Names of rules, phases and profiles: they appear in URLs (/rules/:name) and headers. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_RULE = '1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
const NAME_HINT = `must be ${NAME_RULE}`;
/** A name; where one is required (a phase's), a missing one says so rather than how to spell one. */
export const ruleName = () => z.string({ error: (iss) => (iss.input === undefined ? `required: ${NAME_RULE}` : NAME_HINT) }).regex(NAME_RE, NAME_HINT);

/** Rule names the engine keeps for itself. */
export const RESERVED_RULE_NAMES: ReadonlySet<string> = new Set(['header']);

const METHOD_RE = /^[A-Za-z]{1,20}$/;
const method = z.string('must be an HTTP method like GET or POST').regex(METHOD_RE, 'must be an HTTP method like GET or POST');

/**
 * Why a path glob is refused, or null. Globs (`globRegExp`): `*` within a segment, `**` across
 * segments, `{a,b}`, `[0-9]`; every other character is itself. Matched against the path without
 * the query.
 */
export function globProblem(glob: string): string | null {
  if (glob.length === 0) return 'must not be empty';
  if (glob.length > 1024) return 'must be at most 1024 characters';
  if (glob[0] !== '/') return 'must start with "/" (paths are matched from the root, e.g. /v1/**)';
  if (glob.includes('?')) return 'must not contain "?": paths are matched without the query; use match.query';
  if (glob.includes('#')) return 'must not contain "#"';
  if (/\s/.test(glob)) return 'must not contain spaces';
  if (glob.includes('\\')) return 'must not contain backslashes';
  if (glob.includes('!')) return 'must not contain "!" (negation is not supported; list the paths to match)';
  let braces = 0;
  let brackets = 0;
  for (const c of glob) {
    if (c === '{') braces++;
    else if (c === '}') braces--;
    else if (c === '[') brackets++;
    else if (c === ']') brackets--;
    if (braces < 0 || brackets < 0) return 'has a closing bracket without an opening one';
  }
  if (braces !== 0 || brackets !== 0) return 'has an unclosed { or [';
  try {
    globRegExp(glob.slice(1));
  } catch (err) {
    return `is not a valid glob (${(err as Error).message.replace(/^Invalid regular expression: /, '')})`;
  }
  return null;
}

const glob = z.string('must be a path glob like /v1/**').superRefine((g, ctx) => {
  const p = globProblem(g);
  if (p !== null) ctx.addIssue({ code: 'custom', message: p });
});

/**
 * Validates a regex source: compiles, bounded length, and no nested repetition. A matcher runs on
 * what clients send, so a pattern like `(a+)+$` would let one crafted header stall the proxy
 * (catastrophic backtracking); such patterns are refused at load, as fastify refuses them in
 * routes (safe-regex2's star-height check).
 */
export function regexProblem(src: string): string | null {
  if (src.length > 1024) return 'must be at most 1024 characters';
  try {
    new RegExp(src);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message.replace(/^Invalid regular expression: /, '')})`;
  }
  const linear = linearProblem(src);
  if (linear !== null) return linear;
  if (!safeRegex(src)) {
    return 'may take exponential time on some inputs (a repeated group holds another repetition, like (a+)+ or (.*a){12}): a client could stall the proxy with one request; rewrite it without the nested repetition';
  }
  return null;
}

export type ValueMatch = { kind: 'exact'; value: string } | { kind: 'regex'; source: string } | { kind: 'present'; present: boolean };

const VALUE_HINT = 'must be an exact value, { regex: "..." } or { present: true|false }';

/** A header or query value matcher: an exact string, `{ regex }` or `{ present }`. */
const valueMatch = z.unknown().transform((v, ctx): ValueMatch => {
  if (typeof v === 'string') return { kind: 'exact', value: v };
  if (typeof v === 'number' || typeof v === 'boolean') return { kind: 'exact', value: String(v) };
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === 'regex') {
      if (typeof o.regex !== 'string') {
        ctx.issues.push({ code: 'custom', message: 'must be a regular expression string', path: ['regex'], input: o.regex });
        return z.NEVER;
      }
      const p = regexProblem(o.regex);
      if (p !== null) {
        ctx.issues.push({ code: 'custom', message: p, path: ['regex'], input: o.regex });
        return z.NEVER;
      }
      return { kind: 'regex', source: o.regex };
    }
    if (keys.length === 1 && keys[0] === 'present') {
      if (typeof o.present !== 'boolean') {
        ctx.issues.push({ code: 'custom', message: 'must be true or false', path: ['present'], input: o.present });
        return z.NEVER;
      }
      return { kind: 'present', present: o.present };
    }
    for (const k of keys) {
      if (k !== 'regex' && k !== 'present') ctx.issues.push({ code: 'custom', message: `unknown key; expected one of: regex, present`, path: [k], input: o[k] });
    }
    if (keys.length !== 1 && keys.every((k) => k === 'regex' || k === 'present')) ctx.issues.push({ code: 'custom', message: 'give either regex or present', input: v });
    return z.NEVER;
  }
  ctx.issues.push({ code: 'custom', message: VALUE_HINT, input: v });
  return z.NEVER;
});

export type StatusRange = readonly [number, number];
const STATUS_HINT = 'must be a status (503), a class (5xx) or a range (500-504)';

/** An upstream status selector: `503`, `5xx` or `500-504`. */
const statusSpec = z.union([z.number(), z.string()], { error: STATUS_HINT }).transform((v, ctx): StatusRange => {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 100 && v <= 599) return [v, v];
  } else {
    const s = v.trim().toLowerCase();
    let m = /^([1-5])xx$/.exec(s);
    if (m !== null) return [Number(m[1]) * 100, Number(m[1]) * 100 + 99];
    m = /^(\d{3})\s*-\s*(\d{3})$/.exec(s);
    if (m !== null && Number(m[1]) >= 100 && Number(m[2]) <= 599 && Number(m[1]) <= Number(m[2])) return [Number(m[1]), Number(m[2])];
    if (/^\d{3}$/.test(s) && Number(s) >= 100 && Number(s) <= 599) return [Number(s), Number(s)];
  }
  // continue: a refused value of the right type, so a list names the item (status[1]) and a single value gets this message.
  ctx.issues.push({ code: 'custom', message: STATUS_HINT, input: v, continue: true });
  return z.NEVER;
});

/**
 * A list-valued match key, which also takes a single value (wrapped): `method: POST`,
 * `status: 5xx`, `clients: client-7`. `hint` says what one item is ("must be a method"); `isOne`
 * tells one parsed item from a parsed list where an item is itself an array (a status range).
 */
const oneOrMany = <T extends z.ZodType>(item: T, what: string, hint = `must be a ${what}`, isOne: (v: unknown) => boolean = (v) => !Array.isArray(v)) =>
  z.union([item, z.array(item).min(1, `must list at least one ${what}`)], { error: `${hint}, or a list of them` }).transform((v) => (isOne(v) ? [v] : v) as z.output<T>[]);

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const matchSchema = strict({
  method: oneOrMany(method, 'method').optional(),
  path: oneOrMany(glob, 'path glob').optional(),
  headers: z.record(z.string().regex(HEADER_NAME_RE, 'must be a header name'), valueMatch, 'must be a map of header name to matcher').superRefine(refuseCaseTwins).optional(),
  query: z.record(z.string().min(1, 'must not be empty'), valueMatch, 'must be a map of query key to matcher').optional(),
  clients: oneOrMany(z.string('must be a client key').min(1, 'must not be empty'), 'client key').optional(),
  websocket: z.boolean('must be true or false').optional(),
  cohort: z.number('must be a fraction in (0, 1]').gt(0, 'must be a fraction in (0, 1]').max(1, 'must be a fraction in (0, 1]').optional(),
  status: oneOrMany(statusSpec, 'status', STATUS_HINT, (v) => Array.isArray(v) && typeof v[0] === 'number').optional(),
});

export const rampSchema = strict({
  from: fraction().default(0),
  to: fraction().default(1),
  over: duration({ min: 1 }),
});

export const whenSchema = strict({
  after: duration().default(0),
  for: duration({ min: 1 }).optional(),
  every: duration({ min: 1 }).optional(),
  ramp: rampSchema.optional(),
}).superRefine(
  (w, ctx) => {
    // Also run when another key of this `when` is wrong (`when` below): every problem at once. A key
    // that failed its own check may then hold its raw input, so only numbers are compared.
    if (w === null || typeof w !== 'object' || Array.isArray(w)) return;
    if (w.every !== undefined && w.for === undefined) {
      ctx.issues.push({ code: 'custom', message: 'every needs for: how long the rule is on in each period (every: 20s, for: 5s)', path: ['every'], input: w.every });
    }
    if (typeof w.every === 'number' && typeof w.for === 'number' && w.for >= w.every) {
      ctx.issues.push({ code: 'custom', message: 'must be shorter than every', path: ['for'], input: w.for });
    }
  },
  { when: () => true },
);

export const ruleSchema = strict({
  name: ruleName().optional(),
  description: z.string('must be a string').max(500, 'must be at most 500 characters').optional(),
  enabled: z.boolean('must be true or false').default(true),
  match: matchSchema.default({}),
  probability: fraction().default(1),
  when: whenSchema.optional(),
  firstAttempts: z.int('must be a whole number >= 1').min(1, 'must be >= 1').max(1000, 'must be at most 1000').optional(),
  retriesOnly: z.boolean('must be true or false').default(false),
  /** Validated by the fault's own schema (see compile.ts). */
  fault: z.unknown().optional(),
});

export const overrideSchema = strict({
  enabled: z.boolean('must be true or false').optional(),
  probability: fraction().optional(),
});

export const phaseSchema = strict({
  name: ruleName(),
  description: z.string('must be a string').max(500, 'must be at most 500 characters').optional(),
  duration: duration({ min: 1, max: 7 * 24 * 3_600_000 }),
  rules: z.array(ruleSchema, 'must be a list of rules').optional(),
  overrides: z.record(z.string(), overrideSchema, 'must be a map of rule name to { enabled, probability }').optional(),
});

export const profileSchema = strict({
  name: ruleName().optional(),
  description: z.string('must be a string').max(4000, 'must be at most 4000 characters').default(''),
  seed: z.int('must be a whole number >= 0').min(0, 'must be >= 0').max(Number.MAX_SAFE_INTEGER, 'must be a safe integer').optional(),
  maxActive: z.int('must be a whole number >= 1').min(1, 'must be >= 1').optional(),
  headerFaults: z.boolean('must be true or false').default(false),
  cohortSalt: z.string('must be a string').min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
  loop: z.boolean('must be true or false').default(false),
  rules: z.array(ruleSchema, 'must be a list of rules').default([]),
  phases: z.array(phaseSchema, 'must be a list of phases').min(1, 'must list at least one phase').optional(),
});

export type MatchConfig = z.output<typeof matchSchema>;
export type WhenConfig = z.output<typeof whenSchema>;
export type RuleConfig = z.output<typeof ruleSchema>;
export type PhaseConfig = z.output<typeof phaseSchema>;
export type ProfileConfig = z.output<typeof profileSchema>;
export type OverrideConfig = z.output<typeof overrideSchema>;

/**
 * A rule as a caller writes one (a profile's rule, an ad-hoc fault through `proxy.addFault`): what
 * the schema reads, with `fault` typed per fault type. Still validated at run time.
 */
export type RuleInput = Omit<z.input<typeof ruleSchema>, 'fault'> & { fault: FaultInput };
