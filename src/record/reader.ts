/**
 * Reading a recording back: records in batches over a read stream of 64 KiB chunks (never the
 * whole file), gzip when the name ends in `.gz`, `-` for stdin. Each chunk is cut into lines in its
 * bytes with `indexOf` (no readline, no decoding of the whole chunk); each line is decoded and
 * parsed on its own. The records of one chunk come out as one array, so a
 * consumer pays one promise per chunk, not per record (`readRecords` still yields single records
 * for callers that want them).
 *
 * Lines end at `\n`, `\r\n` or a lone `\r` (as readline splits them), and are numbered from 1.
 * A recording can end mid-line (the proxy was killed) or hold a corrupt line (a disk error, a
 * hand edit). Such a line is reported through `onBadLine` with its line number and skipped; the
 * reader goes on. A truncated last line is told apart from a corrupt one.
 */
import fs from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { AftershockError } from '../errors.js';
import type { AnyRecord } from './schema.js';

/** A line that could not be read as a record. */
export interface BadLineInfo {
  /** 1-based line number. */
  line: number;
  reason: string;
  /** The line's first 80 characters. */
  excerpt: string;
}

export interface ReadRecordsOptions {
  /** Called for each line that is not a record (invalid JSON, truncated, missing fields). */
  onBadLine?: (info: BadLineInfo) => void;
  /** Called with the number of (compressed) bytes read so far, as chunks arrive. */
  onBytes?: (bytes: number) => void;
  /** Parse only the lines this accepts (the others are counted and skipped unread). */
  lineFilter?: LineFilter;
  /**
   * Read a plain file only up to this many bytes (a file still being written is then read to the
   * same point by every reader that is given the same limit).
   */
  maxBytes?: number;
}

const KNOWN_TYPES = new Set(['header', 'http', 'ws', 'ws-message', 'mark', 'event']);

/**
 * Why a parsed value is not a usable record, or null when it is. Unknown `type`s pass (newer
 * recordings may add record types; the analysis counts and skips them).
 *
 * @example recordProblem({ type: 'mark', ts: 1, label: 'x', v: 1 }) === null
 */
export function recordProblem(v: unknown): string | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const r = v as Record<string, unknown>;
  if (typeof r.type !== 'string') return 'no "type" field';
  if (!KNOWN_TYPES.has(r.type)) return null;
  if (r.type === 'http' || r.type === 'ws') {
    const t = r.type;
    if (typeof r.id !== 'string') return `${t} record without "id"`;
    if (typeof r.client !== 'string') return `${t} record without "client"`;
    if (typeof r.path !== 'string') return `${t} record without "path"`;
    if (!isTime(r.ts)) return `${t} record without a numeric "ts" (milliseconds since 1970)`;
    if (!isTime(r.end)) return `${t} record without a numeric "end" (milliseconds since 1970)`;
    if (r.headers === null || typeof r.headers !== 'object') return `${t} record without "headers"`;
    // Optional fields (older or hand-written recordings may lack them) must have their type when
    // present: every report format reads them as such.
    if (r.status != null && !(typeof r.status === 'number' && Number.isInteger(r.status))) return `${t} record's "status" must be a whole number or null`;
    if (r.upstreamStatus != null && typeof r.upstreamStatus !== 'number') return `${t} record's "upstreamStatus" must be a number or null`;
    if (r.retryAfter != null && !(typeof r.retryAfter === 'number' && Number.isFinite(r.retryAfter))) return `${t} record's "retryAfter" must be a number of seconds or null`;
    for (const f of ['query', 'method', 'ip', 'userAgent', 'outcome', 'bodyHash', 'error', 'conn'] as const) {
      if (r[f] != null && typeof r[f] !== 'string') return `${t} record's "${f}" must be a string or null`;
    }
    if (r.fault != null && !isFaultTag(r.fault)) return `${t} record's "fault" must be null or { rule, type, injected } with string rule and type`;
    if (r.faults != null && !(Array.isArray(r.faults) && r.faults.every(isFaultTag))) return `${t} record's "faults" must be a list of { rule, type, injected }`;
  } else if (r.type === 'mark' || r.type === 'event' || r.type === 'ws-message') {
    if (!isTime(r.ts)) return `${r.type} record without a numeric "ts" (milliseconds since 1970)`;
  }
  return null;
}

/** A time the report can print: a finite number of milliseconds within Date's range. */
function isTime(v: unknown): boolean {
  return typeof v === 'number' && v >= -8.64e15 && v <= 8.64e15;
}

function isFaultTag(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  const f = v as Record<string, unknown>;
  return typeof f.rule === 'string' && typeof f.type === 'string';
}

function excerpt(line: string): string {
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/**
 * Bytes read per chunk: a plain file is read into one buffer of this size, used over and over (the
 * lines are parsed out of it before the next read); gzip output and stdin come in chunks of about
 * this size. Chunks are never decoded whole, so their size puts no large strings on the heap.
 */
export const READ_CHUNK_BYTES = 1 << 20;

/** A plain file's bytes, read into one reused buffer (valid until the next chunk is asked for). */
async function* fileChunks(path: string, onBytes: ((bytes: number) => void) | undefined, limit: number): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    let bytes = 0;
    for (;;) {
      const want = Math.min(buf.length, limit - bytes);
      if (want <= 0) return;
      const { bytesRead } = await fh.read(buf, 0, want, null);
      if (bytesRead === 0) return;
      bytes += bytesRead;
      onBytes?.(bytes);
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Is this a gzip file? By its first two bytes (1f 8b), whatever its name: a compressed recording
 * saved under another name is read, not reported as binary junk, and a plain one named `.gz` (a
 * rename, a copy that was never compressed) is read as it is. False for stdin and for a file that
 * cannot be opened (the read reports that).
 */
export function isGzip(path: string): boolean {
  if (path === '-') return false;
  let fd: number | null = null;
  try {
    fd = fs.openSync(path, 'r');
    const b = Buffer.alloc(2);
    return fs.readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } catch {
    return false;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/**
 * Whether a stream starts with gzip's magic bytes, read without taking them (they are put back).
 * Stdin has no name to go by: `gzip -dc` is not needed in front of `analyze -`.
 */
function startsWithGzip(s: Readable): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean): void => {
      s.off('readable', look);
      s.off('end', ended);
      s.off('error', ended);
      resolve(v);
    };
    const ended = (): void => done(false);
    const look = (): void => {
      const head = s.read(2) as Buffer | string | null;
      if (head === null) return; // fewer than 2 bytes so far: wait ('end' settles a shorter stream)
      s.unshift(head);
      done(typeof head !== 'string' && head[0] === 0x1f && head[1] === 0x8b);
    };
    s.on('readable', look);
    s.once('end', ended);
    s.once('error', ended);
    look();
  });
}

/** How a recording's bytes ended, when not at a clean end. */
interface CutState {
  /** The gzip stream ended early ("unexpected end of file"). */
  gzipCut: boolean;
}

const GZIP_CUT = 'the gzip stream ends early (unexpected end of file): the file was cut, and what it held up to there was read';

/** A stream's chunks (stdin, or a gzip file through gunzip), as buffers. */
async function* streamChunks(path: string, onBytes: ((bytes: number) => void) | undefined, fail: (err: Error) => Error, gz: boolean, cut: CutState): AsyncGenerator<Buffer> {
  const raw: Readable = path === '-' ? process.stdin : fs.createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
  if (path === '-' && !gz) gz = await startsWithGzip(raw);
  let bytes = 0;
  let input: Readable = raw;
  let streamError: Error | null = null;
  if (gz) {
    // Progress counts the compressed bytes read.
    raw.on('data', (chunk: Buffer | string) => {
      bytes += chunk.length;
      onBytes?.(bytes);
    });
    raw.on('error', (err: Error) => {
      streamError = err;
      input.destroy(err);
    });
    // Flushed before it is ended: a last chunk written as the stream ends is inflated in one go
    // with the finish flag, and a cut there fails with nothing emitted (a small cut recording on
    // stdin read nothing); flushed first, what it held comes out before the cut is found.
    const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES });
    raw.pipe(gunzip, { end: false });
    raw.once('end', () => gunzip.flush(() => gunzip.end()));
    input = gunzip;
  }
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (!gz) {
        bytes += chunk.length;
        onBytes?.(bytes);
      }
      yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    }
  } catch (err) {
    // A gzip stream that stops short (a proxy killed while `gzip` wrote its recording): what it
    // held up to there is read, and the cut is said as the recording's last bad line.
    if (gz && streamError === null && (err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
      cut.gzipCut = true;
      return;
    }
    throw fail(streamError ?? (err as Error));
  } finally {
    // Our inflater always goes (also on stdin, which stays: it is the process's).
    if (input !== raw) input.destroy();
    if (path !== '-') raw.destroy();
  }
}

/** Where parsed records go: an array (a batch), or a consumer that takes each one as it is parsed. */
export interface RecordSink {
  push(record: AnyRecord): unknown;
}

const LF = 0x0a;
const CR = 0x0d;
/** A line longer than this is skipped as a bad line rather than held (V8's strings end near 512 MiB). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * Decides from a line's raw bytes (`buf[start..end)`, line end excluded) whether this reader
 * parses it. Lines it declines still count for line numbers. Used to share one file among
 * threads, each parsing its own part of the lines.
 */
export type LineFilter = (buf: Buffer, start: number, end: number) => boolean;

/**
 * Cuts raw bytes into lines and parses them; keeps the unfinished tail and the line count between
 * chunks. Lines are found in the bytes (`\n` and `\r` never occur inside a UTF-8 multi-byte
 * character) and each line is decoded on its own, so a chunk is never decoded as a whole and a
 * character split by a chunk boundary is whole again in its line. A bad line is reported when
 * the next line arrives (or at the end), so a truncated last line can be named as such.
 */
class LineParser {
  /** Bytes after the last `\n` seen (an unfinished line), in the pieces the chunks gave. */
  private rest: Buffer[] = [];
  private restBytes = 0;
  /** The start of a line longer than MAX_LINE_BYTES, its rest skipped up to its newline; else null. */
  private overlong: Buffer | null = null;
  private line = 0;
  private pendingBad: { line: number; text: string; reason: string } | null = null;

  constructor(
    private readonly onBadLine: ((info: BadLineInfo) => void) | undefined,
    private readonly filter: LineFilter | null,
  ) {}

  /** Parses every complete line of `chunk` (appended to the unfinished one) into `out`. */
  push(chunk: Buffer, out: RecordSink): void {
    let start = 0;
    if (this.overlong !== null) {
      // Inside a line too long to hold (a NUL-filled tail a crash left, junk): skipped to its end.
      const nl = chunk.indexOf(LF);
      if (nl === -1) return;
      this.skipOverlong();
      start = nl + 1;
    } else if (this.rest.length > 0) {
      // The line the previous chunk left unfinished ends in this one: join just that line.
      const nl = chunk.indexOf(LF);
      if (nl === -1) {
        this.restBytes += chunk.length;
        if (this.restBytes > MAX_LINE_BYTES) {
          this.overlong = Buffer.from((this.rest[0] as Buffer).subarray(0, 200));
          this.rest = [];
          this.restBytes = 0;
          return;
        }
        this.rest.push(Buffer.from(chunk));
        return;
      }
      this.rest.push(chunk.subarray(0, nl));
      const first = Buffer.concat(this.rest);
      this.rest = [];
      this.restBytes = 0;
      this.segment(first, 0, first.length, out);
      start = nl + 1;
    }
    // The next CR in the chunk, searched again only once a line has passed it (a search per line
    // would scan ahead to a far CR over and over).
    let cr = chunk.indexOf(CR, start);
    for (;;) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) break;
      if (cr !== -1 && cr < nl) {
        this.segment(chunk, start, nl, out);
        cr = chunk.indexOf(CR, nl + 1);
      } else this.parse(chunk, start, nl, out);
      start = nl + 1;
    }
    // A copy: the stream may hand the same memory out again.
    if (start < chunk.length) {
      this.rest.push(Buffer.from(chunk.subarray(start)));
      this.restBytes = chunk.length - start;
    }
  }

  /** Counts the line too long to hold as a bad line (its first bytes as the excerpt). */
  private skipOverlong(): void {
    const head = this.overlong as Buffer;
    this.overlong = null;
    this.line++;
    if (this.pendingBad !== null) this.flushBad();
    // Sharing a file among threads: the line is one thread's to count, as any bad line is (its
    // first bytes decide alike in every thread).
    if (this.filter !== null && !this.filter(head, 0, head.length)) return;
    this.pendingBad = { line: this.line, text: head.toString('utf8'), reason: `line longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB (skipped)` };
  }

  /** Parses the unfinished last line, if any, and reports the pending bad line (and a gzip cut). */
  end(out: RecordSink, cut?: CutState): void {
    const gzipCut = cut?.gzipCut === true;
    let told = false;
    if (this.overlong !== null) this.skipOverlong();
    if (this.rest.length > 0) {
      const last = Buffer.concat(this.rest);
      this.rest = [];
      // `x\r` at the very end is a finished line (readline ends a line at a lone CR too).
      const finished = last[last.length - 1] === CR;
      this.segment(last, 0, last.length, out);
      if (!finished && this.pendingBad !== null && this.pendingBad.line === this.line && this.pendingBad.reason === 'invalid JSON') {
        this.pendingBad.reason = gzipCut ? `truncated last line: ${GZIP_CUT}` : 'truncated last line (no newline at end of file)';
        told = gzipCut;
      }
    }
    this.flushBad();
    if (gzipCut && !told) this.onBadLine?.({ line: this.line + 1, reason: GZIP_CUT, excerpt: '' });
  }

  /** A `\n`-terminated piece that holds a CR: a CRLF ending, or lone CRs that end lines too. */
  private segment(buf: Buffer, start: number, end: number, out: RecordSink): void {
    const stop = end > start && buf[end - 1] === CR ? end - 1 : end;
    // Searched within the line only.
    const line = buf.subarray(start, stop);
    let from = 0;
    for (;;) {
      const cr = line.indexOf(CR, from);
      if (cr === -1) break;
      this.parse(buf, start + from, start + cr, out);
      from = cr + 1;
    }
    this.parse(buf, start + from, stop, out);
  }

  private flushBad(): void {
    const b = this.pendingBad;
    if (b === null) return;
    this.pendingBad = null;
    this.onBadLine?.({ line: b.line, reason: b.reason, excerpt: excerpt(b.text) });
  }

  private parse(buf: Buffer, start: number, end: number, out: RecordSink): void {
    this.line++;
    if (this.pendingBad !== null) this.flushBad();
    if (this.filter !== null && !this.filter(buf, start, end)) return;
    // A line the proxy wrote is `{...}` with nothing around it: no trim, no second string.
    let text: string;
    if (end - start >= 2 && buf[start] === OPEN_BRACE && buf[end - 1] === CLOSE_BRACE) text = buf.toString('utf8', start, end);
    else {
      text = buf.toString('utf8', start, end).trim();
      if (text === '') return;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      this.pendingBad = { line: this.line, text, reason: 'invalid JSON' };
      return;
    }
    const problem = recordProblem(v);
    if (problem !== null) {
      this.pendingBad = { line: this.line, text, reason: problem };
      return;
    }
    out.push(v as AnyRecord);
  }
}

/** Fails early, with the recording's name, when it is missing or not a file (`-` is stdin). */
async function checkFile(path: string): Promise<void> {
  if (path === '-') return;
  try {
    const st = await fs.promises.stat(path);
    if (!st.isFile()) throw new Error('not a file');
  } catch (err) {
    throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function openChunks(path: string, options: ReadRecordsOptions, fail: (err: Error) => Error, cut: CutState): AsyncGenerator<Buffer> {
  if (path === '-') return streamChunks(path, options.onBytes, fail, false, cut);
  if (isGzip(path)) return streamChunks(path, options.onBytes, fail, true, cut);
  return fileChunks(path, options.onBytes, options.maxBytes ?? Number.POSITIVE_INFINITY);
}

/**
 * The next chunk; a failure to read is an ERR_RECORDING_READ naming the file. (Only reading is
 * wrapped: an error thrown by the consumer while it takes records goes through as it is.)
 */
async function nextChunk(chunks: AsyncGenerator<Buffer>, fail: (err: Error) => Error): Promise<Buffer | null> {
  try {
    const r = await chunks.next();
    return r.done === true ? null : r.value;
  } catch (err) {
    throw err instanceof AftershockError ? err : fail(err as Error);
  }
}

/**
 * Streams the records of one recording in batches (the records of one read chunk, in file
 * order; never an empty batch). Bad lines are reported through `onBadLine` and skipped.
 *
 * @example
 * for await (const batch of readRecordBatches('traffic.ndjson')) {
 *   for (const r of batch) if (r.type === 'http') console.log(r.status);
 * }
 */
export async function* readRecordBatches(path: string, options: ReadRecordsOptions = {}): AsyncGenerator<AnyRecord[]> {
  await checkFile(path);
  const fail = (cause: Error): Error => new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${cause.message}`, { cause });
  const cut: CutState = { gzipCut: false };
  const chunks = openChunks(path, options, fail, cut);
  const lines = new LineParser(options.onBadLine, options.lineFilter ?? null);
  let out: AnyRecord[] = [];
  try {
    for (let chunk = await nextChunk(chunks, fail); chunk !== null; chunk = await nextChunk(chunks, fail)) {
      lines.push(chunk, out);
      if (out.length > 0) {
        const batch = out;
        out = [];
        yield batch;
      }
    }
    lines.end(out, cut);
  } finally {
    await chunks.return(undefined);
  }
  if (out.length > 0) yield out;
}

/**
 * Reads one recording and hands each record to `sink.push` the moment it is parsed, so a record
 * the consumer does not keep dies young (a batch keeps a whole chunk's records alive across
 * the young generation's collections, which then copy and promote them). The fastest way to
 * feed a consumer that needs no batches.
 *
 * @example
 * let n = 0;
 * await readRecordsTo('traffic.ndjson', { push: (r) => { if (r.type === 'http') n++; } });
 */
export async function readRecordsTo(path: string, sink: RecordSink, options: ReadRecordsOptions = {}): Promise<void> {
  await checkFile(path);
  const fail = (cause: Error): Error => new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${cause.message}`, { cause });
  const cut: CutState = { gzipCut: false };
  const chunks = openChunks(path, options, fail, cut);
  const lines = new LineParser(options.onBadLine, options.lineFilter ?? null);
  try {
    for (let chunk = await nextChunk(chunks, fail); chunk !== null; chunk = await nextChunk(chunks, fail)) lines.push(chunk, sink);
    lines.end(sink, cut);
  } finally {
    await chunks.return(undefined);
  }
}

/**
 * Streams the records of one recording.
 *
 * @example
 * for await (const r of readRecords('traffic.ndjson', { onBadLine: (b) => console.warn(b.line, b.reason) })) {
 *   if (r.type === 'http') console.log(r.status);
 * }
 */
export async function* readRecords(path: string, options: ReadRecordsOptions = {}): AsyncGenerator<AnyRecord> {
  for await (const batch of readRecordBatches(path, options)) yield* batch;
}
