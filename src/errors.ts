/**
 * Every error aftershock raises on purpose, with a stable code, in one file (fastify's
 * `lib/errors.js`, undici's `lib/core/errors.js`). The CLI maps codes to exit status and prints
 * one line, never a stack trace for a user's mistake; the control API maps them to HTTP statuses.
 */

export type ErrorCode =
  | 'ERR_BAD_OPTION' // a CLI option or library option is malformed
  | 'ERR_BAD_TARGET' // --target is missing, not a URL, or not http(s)
  | 'ERR_LISTEN' // a listener could not bind (port in use, permission)
  | 'ERR_RECORD_PATH' // the recording file cannot be opened for writing
  | 'ERR_PROFILE_INVALID' // a profile failed validation (see `problems`)
  | 'ERR_PROFILE_NOT_FOUND' // no built-in profile and no file by that name
  | 'ERR_RECORDING_READ' // a recording file cannot be read
  | 'ERR_GATE' // a --fail-on expression is malformed
  | 'ERR_RULE_NOT_PATCHABLE' // the header-triggered pseudo-rule cannot be patched (control API: 409)
  | 'ERR_RULE_NOT_FOUND' // no rule of that name (control API: 404)
  | 'ERR_RULE_EXISTS' // an ad-hoc rule's name is taken (control API: 409)
  | 'ERR_ADMIN' // the control API answered an error (ctl client)
  | 'ERR_CLOSED'; // the proxy was closed: its handle takes no more changes

/** Base class: a stable `code`, a message that says what to do, `cause` kept. */
export class AftershockError extends Error {
  readonly code: ErrorCode;
  /** Exit status the CLI uses for this error: 2 for usage and configuration problems. */
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; exitCode?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AftershockError';
    this.code = code;
    this.exitCode = options?.exitCode ?? 2;
  }
}

/** One problem found while validating a profile: where (file, line, path) and what. */
export interface ProfileProblem {
  file: string | null;
  line: number | null;
  path: string;
  message: string;
}

/** Formats one problem as `flaky.yaml:14 rules[2].fault.status: must be 200-599`. */
export function formatProblem(p: ProfileProblem): string {
  const where = p.file === null ? '' : p.line === null ? `${p.file} ` : `${p.file}:${p.line} `;
  return `${where}${p.path === '' ? '(root)' : p.path}: ${p.message}`;
}

/** A profile that failed validation; `problems` lists every problem at once. */
export class ProfileError extends AftershockError {
  readonly problems: readonly ProfileProblem[];

  /** `what` names the thing checked: a profile, or one fault (an ad-hoc rule). */
  constructor(problems: readonly ProfileProblem[], source: string | null, what: 'profile' | 'fault' = 'profile') {
    const head = `invalid ${what}${source === null ? '' : ` ${source}`}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super('ERR_PROFILE_INVALID', [head, ...problems.map((p) => `  ${formatProblem(p)}`)].join('\n'), {
      exitCode: 1,
    });
    this.name = 'ProfileError';
    this.problems = problems;
  }
}

/**
 * A profile refused because one of its rules has the name of an ad-hoc rule (POST /faults): two
 * rules of one name would be patched together and counted as one. The running profile stays.
 *
 * @example
 * try { engine.setProfile(next); } catch (err) { if (err instanceof RuleNameTakenError) console.error(err.names); }
 */
export class RuleNameTakenError extends ProfileError {
  /** The clashing names, each the name of an ad-hoc rule. */
  readonly names: readonly string[];

  constructor(problems: readonly ProfileProblem[], source: string | null, names: readonly string[]) {
    super(problems, source);
    this.name = 'RuleNameTakenError';
    this.names = names;
  }
}

export function isAftershockError(err: unknown): err is AftershockError {
  return err instanceof AftershockError;
}
