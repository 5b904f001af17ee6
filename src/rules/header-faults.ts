/**
 * Header-triggered faults (Envoy's `x-envoy-fault-*`, opt-in per profile with `headerFaults: true`):
 * a request carrying
 *
 *   x-aftershock-fault: http-error;status=503;retryAfter=2s
 *
 * gets that fault, this once. The value is `type;key=value;...`; values that look like numbers or
 * booleans become them, the rest stay strings (durations keep their units). The options are
 * validated by the fault's own schema; compiled instances are cached by header value (bounded), so
 * a test suite that sends the same header a thousand times validates it once. An invalid header is
 * ignored and counted, never an error for the request.
 */
import type { FaultStage } from '../faults/types.js';
import { faultByType } from '../faults/index.js';
import type { ActiveFault } from './types.js';

export const FAULT_HEADER = 'x-aftershock-fault';
/** The rule name header-triggered faults are labelled and counted under. */
export const HEADER_RULE = 'header';
const CACHE_CAP = 256;
const MAX_HEADER_LENGTH = 512;

/** The parsed options of a header value, or a reason it is invalid. */
export function parseFaultHeader(value: string): { type: string; options: Record<string, unknown> } | { error: string } {
  if (value.length > MAX_HEADER_LENGTH) return { error: `longer than ${MAX_HEADER_LENGTH} characters` };
  const parts = value.split(';');
  const type = (parts[0] ?? '').trim();
  if (type === '') return { error: 'no fault type' };
  const options: Record<string, unknown> = {};
  for (let i = 1; i < parts.length; i++) {
    const part = (parts[i] as string).trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return { error: `"${part}" is not key=value` };
    const key = part.slice(0, eq).trim();
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return { error: `"${key}" is not an option` };
    if (Object.hasOwn(options, key)) return { error: `"${key}" given twice` };
    options[key] = coerce(part.slice(eq + 1).trim());
  }
  return { type, options };
}

function coerce(v: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  if (v === 'true') return true;
  if (v === 'false') return false;
  return v;
}

export interface HeaderFault {
  readonly stage: FaultStage;
  readonly active: ActiveFault;
}

/** Compiles header values into faults, with a bounded cache (invalid values are cached as null). */
export class HeaderFaults {
  private readonly cache = new Map<string, HeaderFault | null>();
  invalid = 0;
  lastError: string | null = null;

  /** The fault a header value asks for, or null when the value is invalid (counted). */
  resolve(value: string): HeaderFault | null {
    let hit = this.cache.get(value);
    if (hit === undefined) {
      hit = this.compile(value);
      if (this.cache.size >= CACHE_CAP) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(value, hit);
    }
    if (hit === null) this.invalid++;
    return hit;
  }

  private compile(value: string): HeaderFault | null {
    const parsed = parseFaultHeader(value);
    if ('error' in parsed) {
      this.lastError = parsed.error;
      return null;
    }
    const def = faultByType.get(parsed.type);
    if (def === undefined) {
      this.lastError = `unknown fault type "${parsed.type}"`;
      return null;
    }
    const r = def.options.safeParse(parsed.options);
    if (!r.success) {
      this.lastError = `${parsed.type}: ${r.error.issues.map((i) => `${i.path.join('.') || '(options)'} ${i.message}`).join('; ')}`;
      return null;
    }
    const instance = def.create(r.data, { rule: HEADER_RULE });
    const stage = instance.stage ?? def.stage;
    return Object.freeze({ stage, active: Object.freeze({ rule: HEADER_RULE, type: def.type, stage, instance }) });
  }
}
