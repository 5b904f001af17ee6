/**
 * The streaming reader: records in file order, bad lines reported with their line numbers and
 * skipped, a truncated last line named as such, CRLF and blank lines tolerated.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRecords, recordProblem, type BadLineInfo } from '../../src/record/reader.js';
import { mergeRecordings } from '../../src/analysis/files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function file(content: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-reader-'));
  dirs.push(d);
  const p = path.join(d, 'rec.ndjson');
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
    expect(recordProblem({ type: 'mark' })).toBe('mark record without a numeric "ts"');
  });

  it('merges files by exchange end, keeping each file in its order', async () => {
    const a = file(`${JSON.stringify({ v: 1, type: 'header', startMs: 0 })}\n${http('a1', 0, 10)}\n${http('a2', 5, 30)}\n`);
    const b = file(`${JSON.stringify({ v: 1, type: 'header', startMs: 0 })}\n${http('b1', 1, 20)}\n${mark(25)}\n${http('b2', 2, 40)}\n`);
    const ids: string[] = [];
    for await (const { record } of mergeRecordings([a, b])) ids.push(record.type === 'http' ? record.id : record.type);
    expect(ids).toEqual(['header', 'header', 'a1', 'b1', 'mark', 'a2', 'b2']);
  });
});
