/**
 * The HTML report carries no raw control characters from the recording: client keys, paths, User-
 * Agents and mark labels with NUL, ESC, BEL, C1 controls or lone surrogates are shown as `\xNN` (as
 * the text output shows them) or U+FFFD (as the XML output does), never passed through.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeFiles, formatReport } from '../../src/analysis/index.js';
import { escapeHtml } from '../../src/analysis/format/index.js';
import type { AnyRecord } from '../../src/record/schema.js';

const T = Date.UTC(2025, 0, 15, 12, 0, 0);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Every control character but the line feeds the page is laid out with. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('HTML report: control characters from recordings', () => {
  it('client keys, paths, User-Agents and marks with NUL, ESC, BEL, C1 and lone surrogates render as escapes', async () => {
    const client = 'evil\u0000\u001b[31mkey';
    const ua = 'bot\u001b]0;pwned\u0007/1.0\u0085\u009b';
    const p = '/x\u0000y\u0008\r\t\ud800';
    const records: AnyRecord[] = [{ v: 1, type: 'mark', ts: T + 500, label: 'deploy\u0000\u001b[2J' } as unknown as AnyRecord];
    // one logical request that retries immediately: findings, a listed client, a route, a type
    for (let i = 0; i < 12; i++) {
      const ts = T + i * 20;
      records.push({ v: 1, type: 'http', id: `r${i}\u0000`, ts, end: ts + 5, client, userAgent: ua, path: p, status: i === 11 ? 200 : 503, headers: {} } as unknown as AnyRecord);
    }
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-html-'));
    dirs.push(d);
    const file = path.join(d, 'rec.ndjson');
    fs.writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const report = await analyzeFiles([file]);
    // the strings reached the report as recorded
    expect(report.clients[0]?.key).toBe(client);
    expect(report.clients[0]?.userAgent).toBe(ua);

    const html = formatReport(report, 'html');
    expect(html).not.toMatch(RAW_CONTROL);
    expect(html).not.toMatch(LONE_SURROGATE);
    expect(html).toContain('evil\\x00\\x1b[31mkey');
    expect(html).toContain('bot\\x1b]0;pwned\\x07/1.0\\x85\\x9b');
    expect(html).toContain('deploy\\x00\\x1b[2J');
    expect(html).toContain('\\x08\\x0d\\x09\uFFFD');
  });

  it('escapeHtml: controls as \\xNN, what HTML cannot carry as U+FFFD, markup as entities', () => {
    expect(escapeHtml('a\u0000b\u001bc\u007f\u0085')).toBe('a\\x00b\\x1bc\\x7f\\x85');
    expect(escapeHtml('x\ud800y\udc00z\ufffe')).toBe('x\uFFFDy\uFFFDz\uFFFD');
    expect(escapeHtml('ok \ud83d\ude00')).toBe('ok \ud83d\ude00');
    expect(escapeHtml('<b a="1">\u0000</b>')).toBe('&lt;b a=&quot;1&quot;&gt;\\x00&lt;/b&gt;');
  });
});
