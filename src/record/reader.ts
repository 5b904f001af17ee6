/**
 * Reading a recording back: an async iterator of records over a read stream (readline, one line in
 * memory at a time, never the whole file), gzip when the name ends in `.gz`, `-` for stdin.
 *
 * A recording can end mid-line (the proxy was killed) or hold a corrupt line (a disk error, a
 * hand edit). Such a line is reported through `onBadLine` with its line number and skipped; the
 * reader goes on. A truncated last line is told apart from a corrupt one.
 */
import fs from 'node:fs';
import readline from 'node:readline';
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

function openInput(path: string): Readable {
  if (path === '-') return process.stdin;
  return fs.createReadStream(path);
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
  if (path !== '-') {
    try {
      const st = await fs.promises.stat(path);
      if (!st.isFile()) throw new Error('not a file');
    } catch (err) {
      throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const raw = openInput(path);
  let bytes = 0;
  let endsWithNewline = true;
  raw.on('data', (chunk: Buffer | string) => {
    bytes += chunk.length;
    const last = typeof chunk === 'string' ? chunk.charCodeAt(chunk.length - 1) : chunk[chunk.length - 1];
    endsWithNewline = last === 0x0a;
    options.onBytes?.(bytes);
  });
  const input: Readable = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  let streamError: Error | null = null;
  const onError = (err: Error): void => {
    streamError = err;
  };
  raw.on('error', onError);
  input.on('error', onError);
  const rl = readline.createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  // A bad line is reported when the next line arrives (or at the end), so a truncated last line can be named as such.
  let pendingBad: { line: number; text: string; reason: string } | null = null;
  const flushBad = (last: boolean): void => {
    if (pendingBad === null) return;
    const reason = last && !endsWithNewline && pendingBad.reason === 'invalid JSON' ? 'truncated last line (no newline at end of file)' : pendingBad.reason;
    options.onBadLine?.({ line: pendingBad.line, reason, excerpt: excerpt(pendingBad.text) });
    pendingBad = null;
  };
  try {
    for await (const line of rl) {
      n++;
      flushBad(false);
      const text = line.trim();
      if (text === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        pendingBad = { line: n, text, reason: 'invalid JSON' };
        continue;
      }
      const problem = recordProblem(v);
      if (problem !== null) {
        pendingBad = { line: n, text, reason: problem };
        continue;
      }
      yield v as AnyRecord;
    }
  } catch (err) {
    throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    rl.close();
    if (path !== '-') raw.destroy();
  }
  flushBad(true);
  if (streamError !== null) {
    throw new AftershockError('ERR_RECORDING_READ', `cannot read recording ${path}: ${(streamError as Error).message}`, { cause: streamError });
  }
}
