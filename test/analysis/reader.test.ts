/**
 * The streaming reader: records in file order, bad lines reported with their line numbers and
 * skipped, a truncated last line named as such, CRLF and blank lines tolerated. The reader cuts
 * 1 MB chunks itself, so the files below also put lines, CRLFs and multi-byte characters across
 * the chunk boundary.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { READ_CHUNK_BYTES, readRecordBatches, readRecords, recordProblem, type BadLineInfo } from '../../src/record/reader.js';
import { analyzeFiles, mergeRecordings } from '../../src/analysis/files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function file(content: string | Buffer, name = 'rec.ndjson'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-reader-'));
  dirs.push(d);
  const p = path.join(d, name);
  fs.writeFileSync(p, content);
  return p;
}

const mark = (ts: number, label = 'm'): string => JSON.stringify({ v: 1, type: 'mark', ts, label });
const http = (id: string, ts: number, end: number): string =>
  JSON.stringify({ v: 1, type: 'http', id, ts, end, client: 'c', ip: '1.1.1.1', conn: 'k', method: 'GET', path: '/', query: null, status: 200, outcome: null, headers: {} });

async function collect(p: string): Promise<{ records: unknown[]; bad: BadLineInfo[] }> {
  const bad: BadLineInfo[] = [];
  const records: unknown[] = [];
  for await (const r of readRecords(p, { onBadLine: (b) => bad.push(b) })) records.push(r);
  return { records, bad };
}

describe('readRecords', () => {
  it('a line too long to hold (a NUL-filled tail a crash left) is a bad line, skipped; the records around it are read', async () => {
    const nul = Buffer.alloc(70 * 1024 * 1024); // no newline in it
    for (const tail of [Buffer.from(''), Buffer.from('\n' + mark(3) + '\n')]) {
      const p = file(Buffer.concat([Buffer.from(mark(1) + '\n' + mark(2) + '\n'), nul, tail]));
      const { records, bad } = await collect(p);
      expect(records).toHaveLength(tail.length === 0 ? 2 : 3);
      expect(bad).toHaveLength(1);
      expect(bad[0]).toMatchObject({ line: 3, reason: 'line longer than 64 MiB (skipped)' });
    }
    // Shared among threads, the line is counted once, as any bad line is (it was once per thread).
    const p = file(Buffer.concat([Buffer.from(mark(1) + '\n'), nul, Buffer.from('\n' + mark(3) + '\n')]));
    for (const threads of [1, 3]) expect((await analyzeFiles([p], { threads })).dataQuality.badLines.count).toBe(1);
  });

  it('yields records in order and skips blank lines and CRLF endings', async () => {
    const { records, bad } = await collect(file(`${mark(1)}\r\n\r\n${mark(2)}\n   \n${mark(3)}\n`));
    expect(records.map((r) => (r as { ts: number }).ts)).toEqual([1, 2, 3]);
    expect(bad).toEqual([]);
  });

  it('reports corrupt lines with their numbers and goes on; names a truncated last line', async () => {
    const { records, bad } = await collect(file(`${mark(1)}\n{"v":1,"type":"mark"\n[1,2]\n{"type":"http","id":"x"}\n${mark(5)}\n{"v":1,"type":"ma`));
    expect(records).toHaveLength(2);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([
      [2, 'invalid JSON'],
      [3, 'not a JSON object'],
      [4, 'http record without "client"'],
      [6, 'truncated last line (no newline at end of file)'],
    ]);
  });

  it('a corrupt last line that does end with a newline is just invalid JSON', async () => {
    const { bad } = await collect(file(`${mark(1)}\n{oops\n`));
    expect(bad).toEqual([{ line: 2, reason: 'invalid JSON', excerpt: '{oops' }]);
  });

  it('lets unknown record types through for the analysis to count', () => {
    expect(recordProblem({ type: 'from-the-future', v: 9 })).toBeNull();
    expect(recordProblem({ v: 1 })).toBe('no "type" field');
    expect(recordProblem({ type: 'mark' })).toBe('mark record without a numeric "ts" (milliseconds since 1970)');
  });

  it('merges files by exchange end, keeping each file in its order', async () => {
    const a = file(`${JSON.stringify({ v: 1, type: 'header', startMs: 0 })}\n${http('a1', 0, 10)}\n${http('a2', 5, 30)}\n`);
    const b = file(`${JSON.stringify({ v: 1, type: 'header', startMs: 0 })}\n${http('b1', 1, 20)}\n${mark(25)}\n${http('b2', 2, 40)}\n`);
    const ids: string[] = [];
    for await (const { record } of mergeRecordings([a, b])) ids.push(record.type === 'http' ? record.id : record.type);
    expect(ids).toEqual(['header', 'header', 'a1', 'b1', 'mark', 'a2', 'b2']);
  });

  it('reads a final line without a newline, and lone CRs as line ends (as readline did)', async () => {
    const { records, bad } = await collect(file(`${mark(1)}\r${mark(2)}\r\r\n{bad\r${mark(4)}`));
    expect(records.map((r) => (r as { ts: number }).ts)).toEqual([1, 2, 4]);
    expect(bad.map((b) => [b.line, b.reason])).toEqual([[4, 'invalid JSON']]);
  });

  it('hands out batches whose records are the file order', async () => {
    const p = file(Array.from({ length: 500 }, (_, i) => mark(i)).join('\n') + '\n');
    const batches: unknown[][] = [];
    for await (const b of readRecordBatches(p)) batches.push(b);
    expect(batches.every((b) => b.length > 0)).toBe(true);
    expect(batches.flat().map((r) => (r as { ts: number }).ts)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});

describe('gzip is told by its first bytes, not its name', () => {
  it('reads a plain recording named .gz as plain, and a gzip one named .ndjson as gzip', async () => {
    const content = `${JSON.stringify({ v: 1, type: 'mark', ts: 1, label: 'a' })}\n${JSON.stringify({ v: 1, type: 'mark', ts: 2, label: 'b' })}\n`;
    for (const p of [file(content, 'plain.ndjson.gz'), file(zlib.gzipSync(content), 'packed.ndjson')]) {
      const { records, bad } = await collect(p);
      expect(bad, p).toEqual([]);
      expect(records.map((r) => (r as { label: string }).label), p).toEqual(['a', 'b']);
    }
  });
});

describe('a gzip recording cut short (a killed proxy piped through gzip)', () => {
  const lines = Array.from({ length: 2000 }, (_, i) => mark(i, `line-${i}-${'z'.repeat(i % 50)}`));
  const whole = zlib.gzipSync(`${lines.join('\n')}\n`);
  /** What `zcat` recovers of the cut stream: lines that end in a newline. */
  const recoverable = (cut: Buffer): number => {
    const text = zlib.gunzipSync(cut, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
    return text.split('\n').length - 1;
  };

  it('reads every whole line before the cut and says the stream ends early, as a plain file cut mid-line reads', async () => {
    const cut = whole.subarray(0, whole.length - 20);
    const { records, bad } = await collect(file(cut, 'rec.ndjson.gz'));
    expect(records.length).toBe(recoverable(cut));
    expect(records.length).toBeGreaterThan(1900);
    expect(bad).toHaveLength(1);
    expect(bad[0]?.reason).toMatch(/gzip stream ends early/);
    // Through the whole analysis too: a report, not an error.
    const report = await analyzeFiles([file(cut, 'again.ndjson.gz')]);
    expect(report.dataQuality.badLines.count).toBe(1);
  });

  it('a cut in the middle of a line names that line truncated', async () => {
    const half = whole.subarray(0, Math.floor(whole.length / 2));
    const { records, bad } = await collect(file(half, 'half.ndjson.gz'));
    expect(records.length).toBe(recoverable(half));
    expect(bad).toHaveLength(1);
    expect(bad[0]).toMatchObject({ line: records.length + 1 });
    expect(bad[0]?.reason).toMatch(/^truncated last line: the gzip stream ends early/);
  });
});

describe('readRecords across read chunks', () => {
  /**
   * Lines of padding up to `at` bytes before the chunk boundary, then `tail`. Every line is a mark
   * whose label pads it; returns the content and how many padding lines it has.
   */
  function upTo(boundary: number, at: number, tail: string): { content: Buffer; lines: number } {
    const lines: string[] = [];
    let size = 0;
    const target = boundary - at;
    while (size < target) {
      const left = target - size;
      const base = Buffer.byteLength(`${mark(lines.length, '')}\n`);
      const line = left - base < 1000 + base && left - base >= 0 ? mark(lines.length, 'x'.repeat(left - base)) : mark(lines.length, 'y'.repeat(200));
      lines.push(line);
      size += Buffer.byteLength(`${line}\n`);
    }
    const head = `${lines.join('\n')}\n`;
    expect(Buffer.byteLength(head)).toBe(target);
    return { content: Buffer.from(head + tail), lines: lines.length };
  }

  it('puts a line across the boundary together, and a multi-byte character split by it', async () => {
    // The boundary falls inside the second byte of '€' (three bytes) in the label.
    const label = 'ab€cd';
    const line = mark(-1, label);
    const offset = Buffer.byteLength(line.slice(0, line.indexOf('€'))) + 1;
    const { content, lines } = upTo(READ_CHUNK_BYTES, offset, `${line}\n${mark(-2)}\n`);
    expect(content.subarray(READ_CHUNK_BYTES - 1, READ_CHUNK_BYTES + 2).toString('utf8')).toBe('€');
    for (const p of [file(content), file(zlib.gzipSync(content), 'rec.ndjson.gz')]) {
      const { records, bad } = await collect(p);
      expect(bad).toEqual([]);
      expect(records).toHaveLength(lines + 2);
      expect(records[lines]).toEqual({ v: 1, type: 'mark', ts: -1, label });
      expect((records[lines + 1] as { ts: number }).ts).toBe(-2);
    }
  });

  it('takes a CRLF split by the boundary as one line end and numbers bad lines after it', async () => {
    // '\r' is the last byte of the first chunk, '\n' the first of the second.
    const line = mark(-1);
    const { content, lines } = upTo(READ_CHUNK_BYTES, Buffer.byteLength(line) + 1, `${line}\r\n{"v":1,"type":"mark"\n${mark(-3)}\n{"v":1,"ty`);
    expect(content[READ_CHUNK_BYTES - 1]).toBe(0x0d);
    expect(content[READ_CHUNK_BYTES]).toBe(0x0a);
    const { records, bad } = await collect(file(content));
    expect(records.slice(lines).map((r) => (r as { ts: number }).ts)).toEqual([-1, -3]);
    expect(bad).toEqual([
      { line: lines + 2, reason: 'invalid JSON', excerpt: '{"v":1,"type":"mark"' },
      { line: lines + 4, reason: 'truncated last line (no newline at end of file)', excerpt: '{"v":1,"ty' },
    ]);
  });

  it('reports a bad line that spans the boundary with its own line number', async () => {
    const { content, lines } = upTo(READ_CHUNK_BYTES, 10, `{"v":1,"type":"mark","ts":1,"label":"cut" oops}\n${mark(-2)}\n`);
    const { records, bad } = await collect(file(content));
    expect(bad.map((b) => [b.line, b.reason])).toEqual([[lines + 1, 'invalid JSON']]);
    expect(records).toHaveLength(lines + 1);
  });

  it('merges many-chunk files in key order with file order on ties', async () => {
    const n = 6000;
    const a = file(Array.from({ length: n }, (_, i) => http(`a${i}`, 0, 2 * i)).join('\n') + '\n');
    const b = file(Array.from({ length: n }, (_, i) => http(`b${i}`, 0, 3 * i)).join('\n') + '\n');
    const got: string[] = [];
    const files: string[] = [];
    for await (const { record, file: f } of mergeRecordings([a, b])) {
      got.push(record.type === 'http' ? record.id : record.type);
      files.push(f);
    }
    const want = [
      ...Array.from({ length: n }, (_, i) => ({ id: `a${i}`, key: 2 * i, f: 0 })),
      ...Array.from({ length: n }, (_, i) => ({ id: `b${i}`, key: 3 * i, f: 1 })),
    ].sort((x, y) => x.key - y.key || x.f - y.f);
    expect(got).toEqual(want.map((w) => w.id));
    expect(files.slice(0, 3)).toEqual([a, b, a]);
  });
});
