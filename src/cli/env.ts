/**
 * How the CLI reads AFTERSHOCK_* variables, in one place for every command:
 *
 * - An empty variable (or only spaces) is not set: `dropEmptyEnv` removes it before commander
 *   reads the environment, so `AFTERSHOCK_SEED=` leaves the profile's seed and `AFTERSHOCK_TARGET=`
 *   is a missing target, as if the variable were not there (a compose file or `docker run -e VAR=`
 *   clears a preset that way). AFTERSHOCK_ADMIN_TOKEN is kept: `run` refuses an empty token, since a
 *   secret that failed to mount must not leave the control API open.
 * - Boolean flags: commander switches a boolean option on whenever its variable is set, whatever
 *   the value, so `AFTERSHOCK_INSECURE=false` turned upstream TLS verification off. Here the value
 *   decides: true/1/yes/on is on, false/0/no/off is off, anything else stops the command.
 * - Errors name where the value came from: an error about a value from a variable names the
 *   variable, not the flag nobody typed (`AFTERSHOCK_LISTEN="x": write it as HOST:PORT, e.g.
 *   127.0.0.1:8080 (from the environment; flag --listen)`); status 2 as for the flag.
 *
 * `applyBooleanEnv` runs before every action (a `preAction` hook of the program), over the action's
 * command and its parents, so every boolean option given `.env()` is covered, now and later;
 * `nameEnvSource` walks the same options for every error the action throws.
 */
import type { Command } from 'commander';
import { AftershockError, type ErrorCode } from '../errors.js';

const ON = new Set(['true', '1', 'yes', 'on']);
const OFF = new Set(['false', '0', 'no', 'off', '']);

/** How a boolean variable is written, for help texts. */
export const BOOLEAN_ENV_HELP =
  'Boolean variables (AFTERSHOCK_INSECURE, AFTERSHOCK_NO_WATCH, ...) take true/1/yes/on or false/0/no/off. An empty AFTERSHOCK_* variable counts as unset (except AFTERSHOCK_ADMIN_TOKEN, refused empty).';

/** Variables whose empty value means something: `run` refuses an empty token rather than run without one. */
const KEEP_EMPTY = new Set(['AFTERSHOCK_ADMIN_TOKEN']);

/**
 * Removes every AFTERSHOCK_* variable that is empty or only spaces (but AFTERSHOCK_ADMIN_TOKEN), so
 * commander, the workers of `run --workers` and anything else reading the environment see it unset.
 *
 * @example program.hook('preSubcommand', () => dropEmptyEnv());
 */
export function dropEmptyEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('AFTERSHOCK_') && !KEEP_EMPTY.has(name) && value !== undefined && value.trim() === '') delete env[name];
  }
}

/**
 * `off`, `none`, `false` or empty, in any case: the value that turns off an option that otherwise
 * takes an address or a file (`--admin off`, `--record none`, AFTERSHOCK_ADMIN=OFF).
 *
 * @example meansOff(' None ') === true; meansOff('./off') === false
 */
export function meansOff(raw: string): boolean {
  return ['off', 'none', 'false', ''].includes(raw.trim().toLowerCase());
}

/** What every error about a variable's value ends with: which flag the variable stands for. */
function fromEnvironment(flags: readonly string[]): string {
  return ` (from the environment; flag${flags.length === 1 ? '' : 's'} ${flags.join(', ')})`;
}

/**
 * Reads a boolean environment value (case and surrounding spaces ignored).
 *
 * @example parseEnvBoolean('AFTERSHOCK_INSECURE', 'false') === false
 * @example parseEnvBoolean('AFTERSHOCK_INSECURE', 'maybe', '--insecure') // throws ERR_BAD_OPTION naming AFTERSHOCK_INSECURE
 */
export function parseEnvBoolean(name: string, raw: string, flag?: string): boolean {
  const v = raw.trim().toLowerCase();
  if (ON.has(v)) return true;
  if (OFF.has(v)) return false;
  throw new AftershockError(
    'ERR_BAD_OPTION',
    `${name}=${JSON.stringify(raw)}: give true, 1, yes or on to turn it on; false, 0, no, off or empty to turn it off${flag === undefined ? '' : fromEnvironment([flag])}`,
  );
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
      const on = parseEnvBoolean(o.envVar, raw, o.long ?? o.flags);
      const key = o.attributeName();
      if (on || c.getOptionValueSource(key) !== 'env') continue;
      // Off: what the option was before commander applied the variable (a --no-x flag defaults to true).
      if (o.negate) c.setOptionValueWithSource(key, o.defaultValue ?? true, 'default');
      else c.setOptionValueWithSource(key, o.defaultValue, o.defaultValue === undefined ? undefined : 'default');
    }
  }
}

/** Errors about one option's value that do not mention the option: which option they are about. */
const ABOUT: Partial<Record<ErrorCode, string>> = { ERR_PROFILE_NOT_FOUND: '--profile', ERR_RECORD_PATH: '--record' };

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The same error, told in terms of the variables it is about when their values came from the
 * environment: each mention of such a flag becomes its variable (`--listen "x"` becomes
 * `AFTERSHOCK_LISTEN="x"`), and the message says so at the end. An error that already names the
 * variable, or is about no option taken from the environment, comes back as it is.
 *
 * @example
 * // AFTERSHOCK_LISTEN=x aftershock run ...
 * nameEnvSource(runCommand, err).message
 * // 'AFTERSHOCK_LISTEN="x": write it as HOST:PORT, e.g. 127.0.0.1:8080 (from the environment; flag --listen)'
 */
export function nameEnvSource(cmd: Command, err: AftershockError): AftershockError {
  let message = err.message;
  const named: string[] = [];
  const fromEnv: Array<{ envVar: string; long: string }> = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) {
    for (const o of c.options) {
      if (o.envVar === undefined || o.long === undefined || c.getOptionValueSource(o.attributeName()) !== 'env') continue;
      fromEnv.push({ envVar: o.envVar, long: o.long });
    }
  }
  for (const { envVar, long } of fromEnv) {
    if (message.includes(envVar)) continue;
    // `--admin` but not `--admin-token`; `--listen "x"` (a quoted value) reads `AFTERSHOCK_LISTEN="x"`.
    const mention = new RegExp(`${escapeRe(long)}(?![\\w-])( ")?`, 'g');
    const next = message.replace(mention, (_m, quote: string | undefined) => (quote === undefined ? envVar : `${envVar}="`));
    if (next === message) continue;
    message = next;
    named.push(long);
  }
  if (named.length === 0) {
    const about = fromEnv.find((o) => o.long === ABOUT[err.code]);
    if (about === undefined || message.includes(about.envVar)) return err;
    message = `${about.envVar}=${JSON.stringify(process.env[about.envVar] ?? '')}: ${message}`;
    named.push(about.long);
  }
  return new AftershockError(err.code, message + fromEnvironment(named), { cause: err, exitCode: err.exitCode });
}
