/**
 * `startProxy`'s options checked before anything is opened, as the CLI checks its flags: a library
 * caller's mistake (a string where a list goes, a negative connection cap, a seed that is no
 * integer) is one `ERR_BAD_OPTION` naming the option, never a TypeError from deep inside, a
 * proxy that resets every connection, or a recording file left open by a start that failed.
 * Values a parser reads later (durations, addresses, the target URL) are only type-checked here.
 */
import { AftershockError } from '../errors.js';
import { parseDurationOption } from '../faults/lib/duration.js';
import { allowHostProblem, hostnameOf } from '../admin/request-guard.js';
import type { ProxyOptions } from './handle.js';

const bad = (name: string, value: unknown, want: string): AftershockError =>
  new AftershockError('ERR_BAD_OPTION', `${name} ${describe(value)}: ${want}`);

function describe(value: unknown): string {
  if (typeof value === 'function') return '(a function)';
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return `(a ${typeof value})`;
  }
}

type Check = (name: string, value: unknown) => void;

const string: Check = (name, v) => {
  if (typeof v !== 'string') throw bad(name, v, 'give a string');
};
const boolean: Check = (name, v) => {
  if (typeof v !== 'boolean') throw bad(name, v, 'give true or false');
};
const duration: Check = (name, v) => {
  if (typeof v !== 'string' && typeof v !== 'number') throw bad(name, v, 'give a duration like 250ms, 10s or 1m, or milliseconds');
};
const strings: Check = (name, v) => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(name, v, 'give a list of strings');
};
const positiveInt: Check = (name, v) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw bad(name, v, 'give a whole number above 0');
};

const CHECKS: { readonly [K in keyof ProxyOptions]-?: Check } = {
  target: string,
  listen: string,
  admin: (name, v) => {
    if (v !== false && typeof v !== 'string') throw bad(name, v, 'give HOST:PORT, or false for no control API');
  },
  adminToken: string,
  adminAllowHosts: (name, v) => {
    strings(name, v);
    for (const h of v as string[]) {
      const problem = allowHostProblem(h);
      if (problem !== null) throw bad(name, v, `${JSON.stringify(h)} is ${problem}`);
    }
  },
  profile: (name, v) => {
    if (typeof v === 'string') return;
    const p = v as { rules?: unknown; hash?: unknown } | null;
    if (p === null || typeof p !== 'object' || !Array.isArray(p.rules) || typeof p.hash !== 'string') {
      throw bad(name, v, 'give a built-in profile name, a file path, or a profile from loadProfile/parseProfile');
    }
  },
  watch: boolean,
  record: (name, v) => {
    if (v !== null && typeof v !== 'string') throw bad(name, v, 'give a file path, "-" for stdout, or null');
  },
  recordMessages: boolean,
  recordHeaders: strings,
  redact: strings,
  clientKey: string,
  seed: (name, v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(name, v, `give a whole number from 0 to ${Number.MAX_SAFE_INTEGER}, as a profile's seed`);
  },
  session: string,
  upstreamTimeout: duration,
  upstreamIdleTimeout: duration,
  drainTimeout: duration,
  insecure: boolean,
  hostHeader: (name, v) => {
    if (v !== 'target' && v !== 'preserve') throw bad(name, v, 'give "target" (send the target\'s host) or "preserve" (send the client\'s)');
  },
  rewriteRedirects: boolean,
  cookieDomain: (name, v) => {
    string(name, v);
    const problem = cookieDomainProblem(v as string);
    if (problem !== null) throw bad(name, v, problem);
  },
  tlsCert: string,
  tlsKey: string,
  labelFaults: boolean,
  liveAnalysis: boolean,
  worker: (name, v) => {
    const w = v as { index?: unknown; of?: unknown } | null;
    if (w === null || typeof w !== 'object' || !Number.isInteger(w.index) || !Number.isInteger(w.of) || (w.index as number) < 1 || (w.index as number) > (w.of as number)) {
      throw bad(name, v, 'give { index, of } with 1 <= index <= of');
    }
  },
  maxConnections: positiveInt,
  headersTimeout: (name, v) => {
    duration(name, v);
    if (!(parseDurationOption(name, v as string | number) > 0)) throw bad(name, v, 'must be longer than 0 (it is how long a client may take to send its request head)');
  },
  upstreamSockets: positiveInt,
  logger: (name, v) => {
    const l = v as Record<string, unknown> | null;
    if (l === null || typeof l !== 'object' || !['info', 'warn', 'error', 'debug'].every((m) => typeof l[m] === 'function')) {
      throw bad(name, v, 'give a pino logger (or an object with info, warn, error and debug methods)');
    }
  },
};

/**
 * What is wrong with a `--cookie-domain` value, or null: a host name (a leading dot is allowed, as
 * cookies write it), with no port, path or spaces.
 *
 * @example cookieDomainProblem('bad domain') // 'give a domain name like staging.example.com'
 */
export function cookieDomainProblem(v: string): string | null {
  const name = v.trim().toLowerCase().replace(/^\./, '');
  return name !== '' && hostnameOf(name) === name ? null : 'give a domain name like staging.example.com';
}

/**
 * Throws `ERR_BAD_OPTION` for the first option of the wrong type or value; unknown keys pass
 * (a newer caller's option an older proxy does not know).
 *
 * @example checkProxyOptions({ target: 'http://127.0.0.1:3000', maxConnections: -5 }) // throws: maxConnections -5: give a whole number above 0
 */
export function checkProxyOptions(options: unknown): asserts options is ProxyOptions {
  if (options === null || typeof options !== 'object') throw bad('options', options, 'give an object with at least { target }');
  const o = options as Record<string, unknown>;
  if (o.target === undefined) throw new AftershockError('ERR_BAD_TARGET', 'missing target: the URL of the service to put aftershock in front of');
  for (const [name, check] of Object.entries(CHECKS) as Array<[string, Check]>) {
    const v = o[name];
    if (v !== undefined) check(name, v);
  }
}
