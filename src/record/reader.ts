/**
 * Reading a recording back: records in batches over a read stream of 64 KiB chunks (never the
 * whole file), gzip when the name ends in `.gz`, `-` for stdin. Each chunk is decoded and cut into
 * lines with `indexOf('\n')` (no readline); the records of one chunk come out as one array, so a
 * consumer pays one promise per chunk, not per record (`readRecords` still yields single records
 * for callers that want them).
 *
 * Lines end at `\n`, `\r\n` or a lone `\r` (as readline splits them), and are numbered from 1.
 * A recording can end mid-line (the proxy was killed) or hold a corrupt line (a disk error, a
 * hand edit). Such a line is reported through `onBadLine` with its line number and skipped; the
 * reader goes on. A truncated last line is told apart from a corrupt one.
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
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
    for (const f of ['id', 'client', 'path'] as const) if (typeof r[f] !== 'string') return `${r.type} record without "${f}"`;
    for (const f of ['ts', 'end'] as const) if (typeof r[f] !== 'number' || !Number.isFinite(r[f])) return `${r.type} record without a numeric "${f}"`;
    if (r.headers === null || typeof r.headers !== 'object') return `${r.type} record without "headers"`;
  } else if (r.type === 'mark' || r.type === 'event' || r.type === 'ws-message') {
    if (typeof r.ts !== 'number') return `${r.type} record without a numeric "ts"`;
  }
  return null;
}

function excerpt(line: string): string {
  return line.length > 80 ? `${line.slice(0, 80)}…` : line;
}

/**
 * Bytes read from a file per chunk (and the gunzip output chunk size). 64 KiB, not more: a chunk's
 * text stays under V8's large-object size (128 KiB), so it dies in the young generation; 1 MiB
 * chunks were as fast but their strings were promoted and piled up in the large-object space
 * until the next full GC (+60 MB peak RSS on a 1,000,000-record file).
 */
export const READ_CHUNK_BYTES = 1 << 16;

function openInput(path: string): Readable {
  if (path === '-') return process.stdin;
  return fs.createReadStream(path, { highWaterMark: READ_CHUNK_BYTES });
}

/**
 * Cuts decoded text into lines and parses them; keeps the unfinished tail and the line count
 * between chunks. A bad line is reported when the next line arrives (or at the end), so a
 * truncated last line can be named as such.
 */
class LineParser {
  /** Text after the last `\n` seen (an unfinished line). */
  private rest = '';
  private line = 0;
  private pendingBad: { line: number; text: string; reason: string } | null = null;

  constructor(private readonly onBadLine: ((info: BadLineInfo) => void) | undefined) {}

  /** Parses every complete line of `text` (appended to the unfinished one) into `out`. */
  push(text: string, out: AnyRecord[]): void {
    let start = 0;
    if (this.rest !== '') {
      // The line the previous chunk left unfinished ends in this one: join just that line (joining
      // the whole chunk to it would copy the chunk once more when it is searched).
      const nl = text.indexOf('\n');
      if (nl === -1) {
        this.rest += text;
        return;
      }
      const first = this.rest + text.slice(0, nl);
      this.rest = '';
      if (first.indexOf('\r') !== -1) this.segment(first, out);
      else this.parse(first, out);
      start = nl + 1;
    }
    const cr = text.indexOf('\r', start) !== -1;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      if (cr) this.segment(text.slice(start, nl), out);
      else this.parse(text.slice(start, nl), out);
      start = nl + 1;
    }
    this.rest = start === 0 ? text : text.slice(start);
  }

  /** Parses the unfinished last line, if any, and reports the pending bad line. */
  end(out: AnyRecord[]): void {
    const last = this.rest;
    this.rest = '';
    if (last !== '') {
      // `x\r` at the very end is a finished line (readline ends a line at a lone CR too).
      const finished = last.endsWith('\r');
      this.segment(last, out);
      if (!finished && this.pendingBad !== null && this.pendingBad.line === this.line && this.pendingBad.reason === 'invalid JSON') {
        this.pendingBad.reason = 'truncated last line (no newline at end of file)';
      }
    }
    this.flushBad();
  }

  /** A `\n`-terminated piece that holds a CR: a CRLF ending, or lone CRs that end lines too. */
  private segment(seg: string, out: AnyRecord[]): void {
    const body = seg.endsWith('\r') ? seg.slice(0, -1) : seg;
    if (body.indexOf('\r') === -1) {
      this.parse(body, out);
      return;
    }
    for (const piece of body.split('\r')) this.parse(piece, out);
  }

  private flushBad(): void {
    const b = this.pendingBad;
    if (b === null) return;
    this.pendingBad = null;
    this.onBadLine?.({ line: b.line, reason: b.reason, excerpt: excerpt(b.text) });
  }

  private parse(raw: string, out: AnyRecord[]): void {
    this.line++;
    if (this.pendingBad !== null) this.flushBad();
    const text = raw.trim();
    if (text === '') return;
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
  if (path !== '-') {
    try {
      const st = await fs.promises.stat(path);
      if (!st.isFile()) throw new Error('not a file');
    } catch (err) {
      throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const raw = openInput(path);
  const gz = path.endsWith('.gz');
  let bytes = 0;
  let input: Readable = raw;
  let streamError: Error | null = null;
  if (gz) {
    raw.on('data', (chunk: Buffer | string) => {
      bytes += chunk.length;
      options.onBytes?.(bytes);
    });
    raw.on('error', (err: Error) => {
      streamError = err;
      input.destroy(err);
    });
    input = raw.pipe(createGunzip({ chunkSize: READ_CHUNK_BYTES }));
  }
  const decoder = new StringDecoder('utf8');
  const lines = new LineParser(options.onBadLine);
  let out: AnyRecord[] = [];
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (!gz) {
        bytes += chunk.length;
        options.onBytes?.(bytes);
      }
      lines.push(typeof chunk === 'string' ? chunk : decoder.write(chunk), out);
      if (out.length > 0) {
        const batch = out;
        out = [];
        yield batch;
      }
    }
    lines.push(decoder.end(), out);
    lines.end(out);
  } catch (err) {
    const cause = streamError ?? (err as Error);
    throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${cause.message}`, { cause });
  } finally {
    if (path !== '-') {
      raw.destroy();
      if (input !== raw) input.destroy();
    }
  }
  if (out.length > 0) yield out;
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
