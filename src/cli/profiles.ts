/**
 * `aftershock profiles`: list the built-in profiles, show one (its YAML and what it does), and
 * validate profile files — every problem of every file, one per line as `file:line path: message`,
 * exit status 1 when any file is invalid (for CI and pre-commit hooks).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { formatProblem, ProfileError, isAftershockError } from '../errors.js';
import { builtinProfilePath, describeProfile, listBuiltinProfiles, loadProfile, parseProfile, readProfileFile } from '../rules/index.js';

/** Where the command writes (a test passes its own). */
export interface ProfilesIo {
  write(text: string): void;
}

/** A reader that left early (`profiles show x | head -1`) ends the listing, quietly, with status 0. */
function onStdoutError(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
}

const stdout: ProfilesIo = {
  write: (t) => {
    if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', onStdoutError);
    process.stdout.write(t);
  },
};

/**
 * The first sentence of a description, for one-line listings: up to the first ". " or the end.
 * A colon does not end it ("No faults: every request ..." is one sentence).
 */
function firstSentence(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const m = /^(.+?\.)(\s|$)/.exec(flat);
  return m === null ? flat : (m[1] as string);
}

/**
 * Adds `profiles list | show NAME | validate FILE...` to the program.
 *
 * @example registerProfilesCommand(program); await program.parseAsync(['node', 'aftershock', 'profiles', 'list']);
 */
export function registerProfilesCommand(program: Command, io: ProfilesIo = stdout): void {
  const profiles = program.command('profiles').description('list, show and validate fault profiles');

  profiles
    .command('list')
    .description('list the built-in profiles')
    .action(async () => {
      const names = listBuiltinProfiles();
      const width = Math.max(...names.map((n) => n.length));
      for (const name of names) {
        const p = await loadProfile(name);
        io.write(`${name.padEnd(width)}  ${firstSentence(p.description)}\n`);
      }
      io.write(`\naftershock profiles show NAME prints one; aftershock run --profile NAME|FILE uses one.\n`);
    });

  profiles
    .command('show')
    .description('print a profile (built-in name or file) as YAML, followed by a summary of what it does')
    .argument('<name>', 'built-in profile name or profile file')
    .action(async (name: string) => {
      const p = await loadProfile(name);
      io.write(p.text.endsWith('\n') ? p.text : `${p.text}\n`);
      // A JSON profile stays JSON on stdout (`show x.json > copy.json` validates): its summary,
      // which JSON has no comments for, goes to stderr.
      const json = p.text.trimStart().startsWith('{');
      const say = json ? (t: string): void => void process.stderr.write(t) : io.write;
      say('\n# ── summary ──\n');
      for (const line of describeProfile(p).split('\n')) say(`# ${line}\n`);
    });

  profiles
    .command('validate')
    .description('check profile files; prints OK or every problem as file:line path: message; exit status 1 if any is invalid')
    .argument('<files...>', 'profile files (YAML or JSON), or built-in names')
    .action(async (files: string[]) => {
      let bad = 0;
      for (const file of files) {
        try {
          // As `run --profile` resolves it: a built-in's name is the built-in, even with a file of
          // that name here (validate checked the file while run used the built-in).
          const builtin = builtinProfilePath(file) !== null;
          if (builtin && fs.existsSync(file)) io.write(`${file}: the built-in profile ${file}, as --profile ${file} runs it (for the file, give ./${file})\n`);
          const p = builtin ? await loadProfile(file) : parseProfile(await readProfileFile(file), file);
          const phases = p.phases.length === 0 ? '' : `, ${p.phases.length} phase${p.phases.length === 1 ? '' : 's'}`;
          const rules = p.rules.length + p.phases.reduce((a, ph) => a + ph.rules.length, 0);
          io.write(`${file}: OK (${p.name}, ${rules} rule${rules === 1 ? '' : 's'}${phases}, hash ${p.hash})\n`);
        } catch (err) {
          bad++;
          if (err instanceof ProfileError) {
            for (const problem of err.problems) io.write(`${formatProblem(problem)}\n`);
          } else if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            io.write(`${file}: no such file\n`);
          } else if (isAftershockError(err) || err instanceof Error) {
            io.write(`${file}: ${err.message}\n`);
          } else {
            throw err;
          }
        }
      }
      if (files.length > 1) io.write(`${files.length - bad} valid, ${bad} invalid\n`);
      if (bad > 0) process.exitCode = 1;
    });
}
