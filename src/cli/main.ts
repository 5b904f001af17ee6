/**
 * The `aftershock` command: a thin shell over the library. Each subcommand lives in its own file;
 * this one wires them up and turns errors into one line on stderr and an exit status
 * (2 for a usage or configuration mistake, 1 for a failed check), never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { isAftershockError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerRunCommand } from './run.js';
import { registerAnalyzeCommand } from './analyze.js';
import { registerProfilesCommand } from './profiles.js';
import { registerDemoCommand } from './demo.js';
import { registerCtlCommand } from './ctl.js';
import { applyBooleanEnv, dropEmptyEnv, nameEnvSource } from './env.js';
import { readerGone } from './signals.js';

/** The command whose action ran, per program: its errors name the variables its values came from. */
const actions = new WeakMap<Command, Command>();

/** Builds the program (exported for tests that drive the CLI in-process). */
export function createProgram(): Command {
  const program: Command = new Command('aftershock')
    .description('A chaos-engineering HTTP and WebSocket proxy that injects failures and grades how clients retry.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // An empty AFTERSHOCK_* variable is unset: gone before the subcommand reads the environment.
    .hook('preSubcommand', () => dropEmptyEnv())
    // Boolean AFTERSHOCK_* variables mean what they say (commander alone turns them on when set to "false").
    .hook('preAction', (_program, action) => {
      actions.set(program, action);
      applyBooleanEnv(action);
    });
  registerRunCommand(program);
  registerAnalyzeCommand(program);
  registerProfilesCommand(program);
  registerCtlCommand(program);
  registerDemoCommand(program);
  return program;
}

/**
 * A reader that left early (`analyze rec.ndjson | head -1`) or a terminal that hung up: the rest of
 * the output goes nowhere, quietly, and the command ends with its own status (not a stack trace
 * and status 1, which a CI step reads as a gate that held).
 */
function quietWhenReaderLeaves(stream: NodeJS.WriteStream): void {
  if (stream.listenerCount('error') > 0) return;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (readerGone(err)) return;
    // Any other failure to write the output (a full disk under `> report.json`): one line and
    // status 3, not a stack trace and status 1, which a CI step reads as a gate that held.
    try {
      // (A failing stderr has nowhere to say so.)
      if (stream === process.stdout) process.stderr.write(`aftershock: cannot write to standard output: ${err.code ?? err.message}\n`);
    } finally {
      process.exit(3);
    }
  });
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: string[]): Promise<number | undefined> {
  quietWhenReaderLeaves(process.stdout);
  // `run` writes its start line and summary to stderr: a closed stderr must not stop the proxy.
  quietWhenReaderLeaves(process.stderr);
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : undefined;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      return err.exitCode === 0 ? 0 : 2;
    }
    if (isAftershockError(err)) {
      const action = actions.get(program);
      const told = action === undefined ? err : nameEnvSource(action, err);
      process.stderr.write(`aftershock: ${told.message}\n`);
      return told.exitCode;
    }
    throw err;
  }
}
