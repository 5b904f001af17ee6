/**
 * Every fault type, in one plain list (Toxiproxy keeps one toxic per file; this is the list that
 * names them). Adding a fault is one file here plus its line below; nothing registers itself by
 * being imported. A test checks that every file in this folder is listed and documented.
 */
import type { z } from 'zod';
import type { FaultDefinition } from './types.js';
import { httpError } from './http-error.js';
import { reset } from './reset.js';
import { close } from './close.js';
import { hang } from './hang.js';
import { latency } from './latency.js';
import { throttle } from './throttle.js';
import { truncate } from './truncate.js';
import { slowBody } from './slow-body.js';
import { corrupt } from './corrupt.js';
import { lostResponse } from './lost-response.js';
import { rateLimit } from './rate-limit.js';
import { capacity } from './capacity.js';
import { wsReject } from './ws-reject.js';
import { wsClose } from './ws-close.js';
import { wsDrop } from './ws-drop.js';
import { wsDelay } from './ws-delay.js';
import { wsFreeze } from './ws-freeze.js';

const definitions = [
  httpError,
  reset,
  close,
  hang,
  latency,
  throttle,
  truncate,
  slowBody,
  corrupt,
  lostResponse,
  rateLimit,
  capacity,
  wsReject,
  wsClose,
  wsDrop,
  wsDelay,
  wsFreeze,
] as const;

/** All fault definitions, in the order the docs list them. */
export const faults: readonly FaultDefinition[] = Object.freeze([...definitions]);

/**
 * A rule's `fault:` as a profile or an ad-hoc rule writes it: its `type` and that type's options
 * (e.g. `{ type: 'http-error', status: 503, retryAfter: '2s' }`). Checked again at run time.
 */
export type FaultInput = InputOf<(typeof definitions)[number]>;
type InputOf<D> = D extends FaultDefinition<infer S, infer T> ? { type: T } & OptionsOf<z.input<S>> : never;
/** A fault without options (a strict empty object: every key `never`) takes only its type. */
type OptionsOf<I> = string extends keyof I ? (I[keyof I] extends never ? Record<never, never> : I) : I;

/** Fault definitions by `type`. */
export const faultByType: ReadonlyMap<string, FaultDefinition> = new Map(faults.map((f) => [f.type, f]));

/** The known types, for messages: `http-error, reset, ...`. */
export const faultTypes: readonly string[] = Object.freeze(faults.map((f) => f.type));
