/**
 * `aftershock analyze <files...>`: grade how the clients retried in one or more recordings and
 * write the report (text on a terminal, JSON in a pipe, or markdown/html/junit/har). `--fail-on`
 * turns findings and metrics into an exit status for CI: 1 when a condition held, 2 for a usage
 * mistake (thrown as AftershockError; the main CLI prints it on one line).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Command } from 'commander';
import { AftershockError, isAftershockError } from '../errors.js';
import { createAnalyzer, resolveOptions, type Analyzer } from '../analysis/analyzer.js';
import { analyzeFiles, mergeRecordings, type AnalyzeProgress } from '../analysis/files.js';
import { formatReport, REPORT_FORMATS, type ReportFormat } from '../analysis/format/index.js';
import { writeHar } from '../analysis/format/har.js';
import { evaluateGates, parseGate, type Gate } from '../analysis/gates.js';
import type { AnalyzerOptions, Report } from '../analysis/types.js';
import type { AnyRecord } from '../record/schema.js';
import { colorAllowed } from '../log.js';

interface AnalyzeFlags {
  format?: string;
  output?: string;
  failOn: string[];
  clientKeyHeader?: string;
  window?: string;
  maxClients?: string;
  cacheBustingKeys?: string;
  threads?: string;
  color: boolean;
}

/** Where the command writes; tests pass their own streams. */
export interface AnalyzeIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

const EXTENSIONS: Record<string, ReportFormat> = {
  '.txt': 'text',
  '.json': 'json',
  '.md': 'markdown',
  '.markdown': 'markdown',
  '.html': 'html',
  '.htm': 'html',
  '.xml': 'junit',
  '.har': 'har',
};

/** The format: as given, else from the output file's extension, else text on a TTY and json otherwise. */
export function chooseFormat(flag: string | undefined, output: string | undefined, stdoutIsTty: boolean): ReportFormat {
  if (flag !== undefined) {
    const f = flag.toLowerCase() === 'md' ? 'markdown' : flag.toLowerCase() === 'xml' ? 'junit' : flag.toLowerCase();
    if (!(REPORT_FORMATS as readonly string[]).includes(f)) {
      throw new AftershockError('ERR_BAD_OPTION', `--format ${JSON.stringify(flag)}: use one of ${REPORT_FORMATS.join(', ')}`);
    }
    return f as ReportFormat;
  }
  if (output !== undefined) {
    const byExt = EXTENSIONS[path.extname(output).toLowerCase()];
    if (byExt !== undefined) return byExt;
  }
  return stdoutIsTty && output === undefined ? 'text' : 'json';
}

function analyzerOptions(flags: AnalyzeFlags): AnalyzerOptions {
  const o: AnalyzerOptions = {};
  if (flags.clientKeyHeader !== undefined) o.clientKeyHeader = flags.clientKeyHeader;
  if (flags.window !== undefined) o.window = flags.window;
  if (flags.maxClients !== undefined) {
    const n = Number(flags.maxClients);
    if (!Number.isInteger(n) || n < 1) throw new AftershockError('ERR_BAD_OPTION', `--max-clients ${JSON.stringify(flags.maxClients)}: give a positive integer`);
    o.maxClients = n;
  }
  if (flags.cacheBustingKeys !== undefined) {
    o.cacheBustingKeys = flags.cacheBustingKeys
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '');
  }
  return o;
}

/** `--threads auto|N` (auto, the default: one per core for a single large file). */
function threadsOption(flag: string | undefined): number | undefined {
  if (flag === undefined || flag === 'auto') return undefined;
  const n = Number(flag);
  if (!Number.isInteger(n) || n < 1) throw new AftershockError('ERR_BAD_OPTION', `--threads ${JSON.stringify(flag)}: give a positive integer or auto`);
  return n;
}

function human(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** Progress on a TTY stderr (records/s, bytes done), at most 4 times a second; nothing otherwise. */
function progressReporter(stderr: AnalyzeIo['stderr']): { onProgress?: (p: AnalyzeProgress) => void; done: () => void } {
  if (stderr.isTTY !== true) return { done: () => {} };
  const started = performance.now();
  let last = 0;
  let shown = false;
  return {
    onProgress: (p) => {
      const now = performance.now();
      if (now - last < 250) return;
      last = now;
      shown = true;
      const rate = p.records / Math.max(0.001, (now - started) / 1000);
      const size = p.totalBytes === null ? human(p.bytes) : `${human(p.bytes)} / ${human(p.totalBytes)}`;
      stderr.write(`\r\u001b[Kanalysing: ${p.records.toLocaleString('en')} records (${Math.round(rate).toLocaleString('en')}/s), ${size}${p.badLines > 0 ? `, ${p.badLines} bad lines` : ''}`);
    },
    done: () => {
      if (shown) stderr.write('\r\u001b[K');
    },
  };
}

async function writeText(text: string, output: string | undefined, stdout: Writable): Promise<void> {
  if (output === undefined) {
    if (!stdout.write(text)) await new Promise<void>((r) => stdout.once('drain', () => r()));
    return;
  }
  try {
    await fs.promises.writeFile(output, text);
  } catch (err) {
    throw new AftershockError('ERR_BAD_OPTION', `--output ${output}: cannot write (${(err as Error).message})`, { cause: err });
  }
}

/** HAR streams the records themselves; the same records feed an analyzer when gates need a report. */
async function runHar(
  files: string[],
  flags: AnalyzeFlags,
  io: AnalyzeIo,
  analyzer: Analyzer | null,
  onProgress?: (p: AnalyzeProgress) => void,
): Promise<{ records: number; badLines: number; entries: number }> {
  const read = { records: 0, badLines: 0, entries: 0 };
  const source = mergeRecordings(files, {
    ...(onProgress === undefined ? {} : { onProgress, progressEvery: 5000 }),
    onBadLine: (file, b) => {
      read.badLines++;
      analyzer?.noteBadLine({ file, line: b.line, reason: b.reason, excerpt: b.excerpt });
    },
  });
  // Nothing is written (no file created, no half a HAR on stdout) until a record has been read:
  // an empty or unreadable recording is an error with no output.
  const first = await source.next();
  if (first.done === true) return read;
  try {
    const out = await openHarOutput(flags, io);
    async function* records(): AsyncGenerator<AnyRecord> {
      for (let next = first; next.done !== true; next = await source.next()) {
        read.records++;
        analyzer?.ingest(next.value.record);
        yield next.value.record;
      }
    }
    try {
      read.entries = await writeHar(records(), out);
      out.end();
      await finished(out);
    } catch (err) {
      // A failed write (a full disk) is the output's, not a bug of aftershock's (status 3).
      if (isAftershockError(err) || (err as NodeJS.ErrnoException).code === undefined) throw err;
      throw new AftershockError('ERR_BAD_OPTION', `${flags.output === undefined ? 'standard output' : `--output ${flags.output}`}: cannot write (${(err as Error).message})`, { cause: err });
    }
  } finally {
    await source.return(undefined);
  }
  return read;
}

/** Where the HAR goes: --output (opened now, so a bad path fails before any work) or stdout. */
async function openHarOutput(flags: AnalyzeFlags, io: AnalyzeIo): Promise<Writable> {
  if (flags.output === undefined) {
    const out = new PassThrough();
    out.pipe(io.stdout, { end: false });
    return out;
  }
  const out = fs.createWriteStream(flags.output);
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) => reject(new AftershockError('ERR_BAD_OPTION', `--output ${flags.output}: cannot write (${err.message})`, { cause: err })));
  });
  return out;
}

/** The file's identity for comparisons: its real path when it exists, else its absolute path. */
function identity(file: string): string {
  // The file itself (device and inode: a hard link is the same file under another name), else
  // the path it would have.
  try {
    const st = fs.statSync(file);
    if (st.isFile()) return `inode:${st.dev}:${st.ino}`;
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/**
 * Refuses inputs that would give a wrong report or lose data: a recording given twice (its
 * records would count twice and read as retries), and an --output that is one of the inputs
 * (it would be truncated before it is read).
 */
function checkInputs(files: readonly string[], output: string | undefined): void {
  const seen = new Map<string, string>();
  for (const f of files) {
    const id = f === '-' ? '-' : identity(f);
    const before = seen.get(id);
    if (before !== undefined) {
      const what = f === '-' ? 'stdin (-) is given twice' : `recording ${f} is given twice${before === f ? '' : ` (also as ${before})`}`;
      throw new AftershockError('ERR_BAD_OPTION', `${what}: its records would be counted twice and read as retries`);
    }
    seen.set(id, f);
  }
  if (output !== undefined && seen.has(identity(output))) {
    throw new AftershockError('ERR_BAD_OPTION', `--output ${output} is one of the recordings being analysed: it would be overwritten before it is read; write the report elsewhere`);
  }
}

/** No record at all could be read (an empty file, binary junk, all lines bad): not a passing report. */
function checkSomethingRead(files: readonly string[], records: number, badLines: number): void {
  if (records > 0) return;
  const why = badLines === 1 ? 'its only line is unreadable' : badLines > 0 ? `all ${badLines} lines are unreadable` : files.length === 1 ? 'it is empty' : 'they are empty';
  throw new AftershockError('ERR_RECORDING_READ', `no record could be read from ${files.join(', ')}: ${why}; is this a recording written with --record?`);
}

/** Runs the command (exported for tests; the CLI calls it through commander). */
export async function runAnalyze(files: string[], flags: AnalyzeFlags, io: AnalyzeIo): Promise<Report | null> {
  if (files.length === 0) throw new AftershockError('ERR_BAD_OPTION', 'analyze: give at least one recording (an NDJSON file written with --record)');
  checkInputs(files, flags.output);
  const format = chooseFormat(flags.format, flags.output, io.stdout.isTTY === true);
  const gates: Gate[] = flags.failOn.flatMap((g) => parseGate(g));
  const options = analyzerOptions(flags);
  const progress = progressReporter(io.stderr);
  let report: Report | null = null;
  let harEntries = 0;
  let harBadLines = 0;
  try {
    if (format === 'har') {
      resolveOptions(options); // a malformed option is a usage error before any output starts
      const analyzer = gates.length > 0 ? createAnalyzer(options) : null;
      const read = await runHar(files, flags, io, analyzer, progress.onProgress);
      checkSomethingRead(files, read.records, read.badLines);
      harEntries = read.entries;
      harBadLines = read.badLines;
      report = analyzer?.report() ?? null;
    } else {
      const threads = threadsOption(flags.threads);
      report = await analyzeFiles(files, {
        ...options,
        ...(threads === undefined ? {} : { threads }),
        ...(progress.onProgress === undefined ? {} : { onProgress: progress.onProgress, progressEvery: 5000 }),
      });
    }
  } finally {
    progress.done();
  }
  if (format !== 'har' && report !== null) checkSomethingRead(files, report.dataQuality.records, report.dataQuality.badLines.count);
  // Gates over a recording of no exchange at all judge nothing: a CI job whose clients never
  // reached the proxy (a wrong port, a proxy that did not start) must not go green.
  if (report !== null && gates.length > 0 && report.totals.attempts === 0) {
    throw new AftershockError('ERR_RECORDING_READ', `${files.join(', ')} ${files.length === 1 ? 'holds' : 'hold'} no exchange, so the --fail-on gates have nothing to judge: did the clients reach the proxy?`);
  }
  // Every gate, held or not: the JUnit output shows each one, so its failures match the exit status.
  const outcomes = report !== null && gates.length > 0 ? evaluateGates(report, gates, { all: true }) : [];
  if (format !== 'har' && report !== null) {
    const color = flags.color && io.stdout.isTTY === true && flags.output === undefined && colorAllowed(io.env);
    await writeText(formatReport(report, format, { color, ...(gates.length > 0 ? { gates: outcomes } : {}) }), flags.output, io.stdout);
  }
  if (flags.output !== undefined) {
    // HAR builds a report only when gates need one: its line says how many entries it holds, and
    // the verdict when there is one.
    const said: string[] = [];
    if (format === 'har') said.push(`${harEntries} ${harEntries === 1 ? 'entry' : 'entries'}`);
    if (format === 'har' && harBadLines > 0) said.push(`${harBadLines} unreadable line${harBadLines === 1 ? '' : 's'} skipped`);
    if (report !== null) said.push(`verdict ${report.verdict}, ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'}`);
    io.stderr.write(`aftershock: wrote ${flags.output} (${format}): ${said.join('; ')}\n`);
  }
  // On stdout a HAR has no line of its own: skipped lines are said on stderr.
  if (flags.output === undefined && format === 'har' && harBadLines > 0) io.stderr.write(`aftershock: ${harBadLines} unreadable line${harBadLines === 1 ? '' : 's'} skipped\n`);
  const held = outcomes.filter((g) => g.held);
  for (const g of held) io.stderr.write(`aftershock: --fail-on ${g.detail}\n`);
  if (held.length > 0) process.exitCode = 1;
  return report;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/**
 * Adds `aftershock analyze <files...>` to a commander program.
 *
 * @example
 * const program = new Command('aftershock');
 * registerAnalyzeCommand(program);
 * await program.parseAsync(['analyze', 'traffic.ndjson', '--format', 'markdown', '--fail-on', 'retry-storm'], { from: 'user' });
 */
export function registerAnalyzeCommand(program: Command, io: Partial<AnalyzeIo> = {}): void {
  program
    .command('analyze')
    .description('grade how the clients retried: backoff, jitter, Retry-After, amplification, herds (several recordings are merged by time)')
    .argument('<files...>', 'NDJSON recordings written with --record (.gz works; - reads stdin)')
    .option('-f, --format <format>', `${REPORT_FORMATS.join('|')} (default: from --output's extension, else text on a terminal, json otherwise)`)
    .option('-o, --output <file>', 'write the report to this file instead of stdout')
    .option('--fail-on <list>', 'exit 1 when any holds: finding codes (retry-storm,unsafe-retry), a severity (critical), or comparisons (amplification>1.5, retryRatio>20%, maxAttempts>=5); repeatable', collect, [] as string[])
    .option('--client-key-header <name>', 're-key clients by this recorded request header (record it with run --record-headers)')
    .option('--window <duration>', 'retry window W (default max(120s, 1.5 x largest Retry-After + 5s))')
    .option('--max-clients <n>', 'clients kept in memory (least recently seen are summarised)', undefined)
    .option('--cache-busting-keys <list>', 'query keys ignored when matching attempts (default t,_,ts,nonce)')
    .option('--threads <n>', 'analyse one large plain file in n threads, split by client key (default auto: one per core, at most 4, for a file of 64 MiB or more; 1: one thread)')
    .option('--no-color', 'no ANSI colours in text output')
    .action(async (files: string[], flags: AnalyzeFlags) => {
      await runAnalyze(files, flags, {
        stdout: io.stdout ?? process.stdout,
        stderr: io.stderr ?? process.stderr,
        env: io.env ?? process.env,
      });
    });
}
