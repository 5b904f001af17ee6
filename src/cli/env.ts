/**
 * Boolean flags read from AFTERSHOCK_* variables. Commander switches a boolean option on whenever
 * its variable is set, whatever the value, so `AFTERSHOCK_INSECURE=false` turned upstream TLS
 * verification off. Here the value decides: true/1/yes/on is on, false/0/no/off or empty is off,
 * and anything else stops the command with one line naming the variable (status 2).
 *
 * `applyBooleanEnv` runs before every action (a `preAction` hook of the program), over the action's
 * command and its parents, so every boolean option given `.env()` is covered, now and later.
 */
import type { Command } from 'commander';
import { AftershockError } from '../errors.js';

const ON = new Set(['true', '1', 'yes', 'on']);
const OFF = new Set(['false', '0', 'no', 'off', '']);

/** How a boolean variable is written, for help texts. */
export const BOOLEAN_ENV_HELP = 'Boolean variables (AFTERSHOCK_INSECURE, AFTERSHOCK_NO_WATCH, ...) take true/1/yes/on or false/0/no/off; empty is off.';

/**
 * Reads a boolean environment value (case and surrounding spaces ignored).
 *
 * @example parseEnvBoolean('AFTERSHOCK_INSECURE', 'false') === false
 * @example parseEnvBoolean('AFTERSHOCK_INSECURE', 'maybe') // throws ERR_BAD_OPTION naming AFTERSHOCK_INSECURE
 */
export function parseEnvBoolean(name: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (ON.has(v)) return true;
  if (OFF.has(v)) return false;
  throw new AftershockError('ERR_BAD_OPTION', `${name}=${JSON.stringify(raw)}: give true, 1, yes or on to turn it on; false, 0, no, off or empty to turn it off`);
}

/**
 * Re-reads the boolean options of `cmd` and its parents that commander took from the environment:
 * a value that means off puts the option back to its default; a value that means nothing is an
 * error. A variable that is set is checked even when the flag itself was given.
 *
 * @example program.hook('preAction', (_program, action) => applyBooleanEnv(action));
 */
export function applyBooleanEnv(cmd: Command): void {
  for (let c: Command | null = cmd; c !== null; c = c.parent) {
    for (const o of c.options) {
      if (o.envVar === undefined || o.required || o.optional) continue;
      const raw = process.env[o.envVar];
      if (raw === undefined) continue;
      const on = parseEnvBoolean(o.envVar, raw);
      const key = o.attributeName();
      if (on || c.getOptionValueSource(key) !== 'env') continue;
      // Off: what the option was before commander applied the variable (a --no-x flag defaults to true).
      if (o.negate) c.setOptionValueWithSource(key, o.defaultValue ?? true, 'default');
      else c.setOptionValueWithSource(key, o.defaultValue, o.defaultValue === undefined ? undefined : 'default');
    }
  }
}
