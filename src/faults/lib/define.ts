/**
 * `defineFault` only helps TypeScript infer a fault's options type from its schema; it adds
 * nothing at run time (no registry, no side effect: `src/faults/index.ts` lists the faults).
 */
import type { z } from 'zod';
import type { FaultDefinition, FaultInstance } from '../types.js';

/** @example export const reset = defineFault({ type: 'reset', stage: 'request', ... }); */
export function defineFault<S extends z.ZodType, const T extends string>(def: FaultDefinition<S, T>): FaultDefinition<S, T> {
  return Object.freeze(def);
}

/** Freezes an instance while keeping its hooks' parameter types (used by every fault's `create`). */
export function instance(i: FaultInstance): FaultInstance {
  return Object.freeze(i);
}
