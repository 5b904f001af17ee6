/**
 * `aftershock demo`: a thin shell over `runDemo` (src/demo). Starts everything in this process on
 * loopback, shows the live view, then prints the side-by-side comparison (or the JSON with
 * `--json`) and where the HTML report went. Ctrl-C ends the run early and still reports.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { AftershockError } from '../errors.js';
import { isPipeLike } from '../record/writer.js';
import { parseSecondsOrDuration } from '../faults/lib/duration.js';
import { checkDemoPaths, checkHtmlPath, DemoHtmlWriteError, runDemo, type DemoOptions, type DemoResult, type FleetKind } from '../demo/run-demo.js';
import { demoJson, formatComparison } from '../demo/compare.js';
import { DEMO_CLIENTS } from '../demo/defaults.js';
import { outliveTerminal, STOP_SIGNALS } from './signals.js';

interface DemoFlags {
  duration?: string;
  clients: string;
  fleet: FleetKind | 'both';
  seed: string;
  html?: string;
  record?: string;
  json?: boolean;
}

const DEMO_MIN_MS = 3000;
const DEMO_MAX_MS = 600_000;

/**
 * `--duration`: a bare number is seconds (no demo is milliseconds long), else a duration with a
 * unit; 3 s to 10 min. Errors quote what was typed.
 *
 * @example demoDuration('30') === 30_000; demoDuration('1.5m') === 90_000
 */
export function demoDuration(raw: string): number {
  const bad = (): AftershockError => new AftershockError('ERR_BAD_OPTION', `--duration ${JSON.stringify(raw)}: give 3s to 10m, e.g. 30s or 2m (a bare number is seconds)`);
  const ms = parseSecondsOrDuration(raw);
  if (ms === null || !(ms >= DEMO_MIN_MS && ms <= DEMO_MAX_MS)) throw bad();
  return ms;
}

/** Fails at once when the recording cannot be written, as `checkHtmlPath` does for --html. */
function checkRecordPath(file: string): void {
  if (isPipeLike(file)) return; // there to be written to; a test open would end its reader's stream
  const existed = fs.existsSync(file);
  try {
    fs.closeSync(fs.openSync(file, 'a', 0o600));
  } catch (err) {
    throw new AftershockError('ERR_RECORD_PATH', `cannot write the recording ${file}: ${(err as Error).message}; give --record a file in an existing, writable folder`, { cause: err });
  }
  if (!existed) fs.rmSync(file, { force: true });
}

function wholeNumber(option: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new AftershockError('ERR_BAD_OPTION', `${option} ${JSON.stringify(raw)}: give a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Adds `aftershock demo` to the program.
 *
 * @example registerDemoCommand(new Command('aftershock'))
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('replay the January 2021 Signal outage against a built-in message service, with naive and careful client fleets side by side, and explain the retry storm')
    .option('--duration <duration>', "run length, 3s to 10m (a bare number is seconds: 30 is 30s); the profile's timeline is scaled to fit (default: its own, about 60s)")
    .option('--clients <n>', 'clients per fleet', String(DEMO_CLIENTS))
    .addOption(new Option('--fleet <which>', 'which fleets to run').choices(['naive', 'careful', 'both']).default('both'))
    .option('--seed <n>', 'seed of the faults and the clients', '1')
    .option('--html <file>', 'write the HTML report here (default: aftershock-demo-report.html in this folder, else the temp dir)')
    .option('--record <file>', 'write an NDJSON recording of every exchange of both fleets')
    .option('--json', 'print the combined JSON report to stdout instead of the text comparison')
    .action(async (flags: DemoFlags) => {
      await demoCommand(flags);
    });
}

function printResult(result: DemoResult, json: boolean): void {
  if (json) process.stdout.write(JSON.stringify(demoJson(result), null, 2) + '\n');
  else process.stdout.write('\n' + formatComparison(result));
}

async function demoCommand(flags: DemoFlags): Promise<void> {
  const out = process.stdout;
  const err = process.stderr;
  const options: DemoOptions = {
    clients: wholeNumber('--clients', flags.clients, 1, 500),
    fleet: flags.fleet,
    seed: wholeNumber('--seed', flags.seed, 0, Number.MAX_SAFE_INTEGER),
    // With --json, stdout carries the JSON only: the live view goes to stderr.
    view: { stream: flags.json === true ? err : out },
    ...(flags.duration === undefined ? {} : { durationMs: demoDuration(flags.duration) }),
    ...(flags.html === undefined ? {} : { html: flags.html }),
    ...(flags.record === undefined ? {} : { record: flags.record }),
  };
  // Before anything is printed or started: a bad --html or --record fails in one line, not after the run.
  checkDemoPaths(flags.html ?? null, flags.record ?? null);
  if (flags.html !== undefined) checkHtmlPath(path.resolve(flags.html));
  if (flags.record !== undefined) checkRecordPath(path.resolve(flags.record));
  const stop = new AbortController();
  options.signal = stop.signal;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      // As `run` says its own: the first signal's partial report is not coming.
      process.stderr.write('aftershock demo: stopped at once (a second signal): no report\n');
      process.exit(130);
    }
    outliveTerminal(signal);
    stop.abort();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  const note = flags.json === true ? err : out;
  const fleets = flags.fleet === 'both' ? 'a naive and a careful fleet' : `a ${flags.fleet} fleet`;
  note.write(
    `aftershock demo: ${fleets} of ${options.clients} clients${flags.fleet === 'both' ? ' each' : ''}, every fleet with its own message service and proxy on 127.0.0.1, ` +
      `replaying the signal-2021 outage${options.durationMs === undefined ? '' : ` in ${Math.round(options.durationMs / 1000)} s`}. Ctrl-C stops early.\n\n`,
  );
  try {
    let result: DemoResult;
    try {
      result = await runDemo(options);
    } catch (e) {
      // The run is done; only its HTML report failed: show the comparison, then the error.
      if (e instanceof DemoHtmlWriteError) printResult(e.result, flags.json === true);
      throw e;
    }
    printResult(result, flags.json === true);
    if (result.htmlPath !== null) note.write(`\nHTML report: ${result.htmlPath}\n`);
    if (result.recordPath !== null) note.write(`Recording:   ${result.recordPath} (aftershock analyze ${result.recordPath})\n`);
  } finally {
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
  }
}
