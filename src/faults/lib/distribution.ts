/**
 * Delay distributions for `latency` and `ws-delay`: a fixed `delay` (with optional `jitter`) or a
 * named distribution with its parameters. Every draw takes the exchange's seeded random stream, so
 * a seed reproduces the exact delays of a session.
 *
 *   uniform{min,max}   normal{mean,stddev}   lognormal{median,p99}   exponential{mean}
 *   pareto{scale,shape}                         + optional min (floor) and max (cap) for all
 *
 * Lognormal is given by its median and 99th percentile, the two numbers people know about a
 * service: sigma = ln(p99 / median) / z(0.99), with z(0.99) = 2.326.
 */
import { z } from 'zod';
import { duration } from './schema.js';

export const DISTRIBUTIONS = ['uniform', 'normal', 'lognormal', 'exponential', 'pareto'] as const;
export type DistributionName = (typeof DISTRIBUTIONS)[number];

/** z for the 99th percentile of the standard normal distribution. */
export const Z99 = 2.326;

const PARAMS: Readonly<Record<DistributionName, readonly string[]>> = {
  uniform: ['min', 'max'],
  normal: ['mean', 'stddev'],
  lognormal: ['median', 'p99'],
  exponential: ['mean'],
  pareto: ['scale', 'shape'],
};
const ALL_PARAMS = ['mean', 'stddev', 'median', 'p99', 'scale', 'shape'] as const;

/** The delay keys, to spread into a fault's strict schema. */
export const delayShape = {
  delay: duration().optional(),
  jitter: duration().optional(),
  distribution: z.enum(DISTRIBUTIONS, { error: `must be one of: ${DISTRIBUTIONS.join(', ')}` }).optional(),
  min: duration().optional(),
  max: duration().optional(),
  mean: duration().optional(),
  stddev: duration().optional(),
  median: duration().optional(),
  p99: duration().optional(),
  scale: duration().optional(),
  shape: z.number('must be a number > 0').positive('must be a number > 0').max(100, 'must be at most 100').optional(),
};

export interface DelayOptions {
  delay?: number | undefined;
  jitter?: number | undefined;
  distribution?: DistributionName | undefined;
  min?: number | undefined;
  max?: number | undefined;
  mean?: number | undefined;
  stddev?: number | undefined;
  median?: number | undefined;
  p99?: number | undefined;
  scale?: number | undefined;
  shape?: number | undefined;
}

type Issue = { code: 'custom'; message: string; path: string[]; input: unknown };

/** Cross-key checks of a delay: one of delay/distribution, the right parameters for each. */
export function checkDelay(o: DelayOptions, issues: { push(i: Issue): void }): void {
  const add = (key: string, message: string): void => issues.push({ code: 'custom', message, path: [key], input: (o as Record<string, unknown>)[key] });
  if (o.delay === undefined && o.distribution === undefined) {
    issues.push({ code: 'custom', message: 'give a fixed delay (delay: 100ms) or a distribution (distribution: lognormal, ...)', path: [], input: o });
    return;
  }
  if (o.delay !== undefined && o.distribution !== undefined) {
    add('distribution', 'give either delay (fixed) or distribution, not both');
    return;
  }
  if (o.delay !== undefined) {
    for (const k of ALL_PARAMS) if (o[k] !== undefined) add(k, `only with a distribution; a fixed delay takes delay, jitter, min and max`);
    return;
  }
  const d = o.distribution as DistributionName;
  if (o.jitter !== undefined) add('jitter', 'only with a fixed delay; a distribution has its own spread');
  const wanted = PARAMS[d];
  for (const k of ALL_PARAMS) {
    if (o[k] !== undefined && !wanted.includes(k)) add(k, `not a parameter of ${d} (it takes ${wanted.join(' and ')})`);
  }
  for (const k of wanted) {
    if ((o as Record<string, unknown>)[k] === undefined) add(k, `required for distribution: ${d}`);
  }
  if (o.min !== undefined && o.max !== undefined && o.max < o.min) add('max', 'must be >= min');
  if (d === 'lognormal' && o.median !== undefined && o.p99 !== undefined) {
    if (o.median <= 0) add('median', 'must be > 0');
    else if (o.p99 <= o.median) add('p99', 'must be greater than median');
  }
  if (d === 'exponential' && o.mean !== undefined && o.mean <= 0) add('mean', 'must be > 0');
  if (d === 'pareto' && o.scale !== undefined && o.scale <= 0) add('scale', 'must be > 0');
}

/** Draws one delay in ms from a uniform random source. */
export type Sampler = (random: () => number) => number;

/**
 * Compiles validated delay options into a sampler (once, at profile load).
 *
 * @example compileSampler({ distribution: 'lognormal', median: 120, p99: 900 })(Math.random)
 */
export function compileSampler(o: DelayOptions): Sampler {
  const lo = o.min ?? 0;
  const hi = o.max ?? Infinity;
  const clamp = (v: number): number => (v < lo ? lo : v > hi ? hi : v);
  if (o.delay !== undefined) {
    const base = o.delay;
    const jitter = o.jitter ?? 0;
    if (jitter === 0) {
      const fixed = clamp(base);
      return () => fixed;
    }
    return (r) => clamp(Math.max(0, base + (2 * r() - 1) * jitter));
  }
  switch (o.distribution) {
    case 'uniform': {
      const a = o.min as number;
      const b = o.max as number;
      return (r) => a + r() * (b - a);
    }
    case 'normal': {
      const mean = o.mean as number;
      const sd = o.stddev as number;
      return (r) => clamp(Math.max(0, mean + sd * standardNormal(r)));
    }
    case 'lognormal': {
      const mu = Math.log(o.median as number);
      const sigma = Math.log((o.p99 as number) / (o.median as number)) / Z99;
      return (r) => clamp(Math.exp(mu + sigma * standardNormal(r)));
    }
    case 'exponential': {
      const mean = o.mean as number;
      return (r) => clamp(-mean * Math.log(1 - r()));
    }
    case 'pareto': {
      const scale = o.scale as number;
      const inv = 1 / (o.shape as number);
      return (r) => clamp(scale / Math.pow(1 - r(), inv));
    }
    default:
      return () => 0;
  }
}

/** Box-Muller with two fresh draws (no cached second value: a draw's count never depends on history). */
function standardNormal(r: () => number): number {
  const u = 1 - r(); // (0, 1]
  const v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** A short human description, for `profiles show` and the docs. */
export function describeDelay(o: DelayOptions, fmt: (ms: number) => string): string {
  if (o.delay !== undefined) return o.jitter ? `${fmt(o.delay)} ± ${fmt(o.jitter)}` : fmt(o.delay);
  const d = o.distribution as DistributionName;
  const params = PARAMS[d].map((k) => `${k} ${k === 'shape' ? String(o.shape) : fmt((o as Record<string, number>)[k] as number)}`);
  const cap = d !== 'uniform' && o.max !== undefined ? `, max ${fmt(o.max)}` : '';
  return `${d} (${params.join(', ')}${cap})`;
}
