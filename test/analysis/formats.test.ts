/**
 * Every output format: JSON keeps the contract, HTML is self-contained and escapes hostile input,
 * JUnit is well-formed XML with one failure per finding, HAR has the 1.2 shape, Markdown and text
 * lead with the verdict.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { analyzeFiles, createAnalyzer, formatReport, mergeRecordings, writeHar, type Report } from '../../src/analysis/index.js';
import { escapeMarkdownKeepCode } from '../../src/analysis/format/escape.js';
import { readRecords } from '../../src/record/reader.js';
import type { AnyRecord, HttpRecord } from '../../src/record/schema.js';
import { T0, header } from '../fixtures/make-fixtures.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');

const HOSTILE_UA = '<script>alert(1)</script>"><img src=x onerror=alert(2)> \u001b[31mred';
const HOSTILE_PATH = '/"><svg onload=alert(3)>/a|b`c';
const HOSTILE_MARK = '</title><script src="https://evil.example/x.js"></script>';

function hostileReport(): Report {
  const a = createAnalyzer();
  a.ingest({ ...header('<b>session</b>'), target: 'https://target.example/<x>' });
  let i = 0;
  const rec = (ts: number, status: number): HttpRecord => ({
    v: 1, type: 'http', id: `h${++i}"<>`, ts, end: ts + 5, client: `<iframe src="http://evil.example">${'&'}`, ip: '10.0.0.66', conn: 'k', method: 'POST',
    path: HOSTILE_PATH, query: 'q=<x>&_=1', status, outcome: null, upstreamStatus: null, bytesIn: 1, bytesOut: 1, ttfb: 1, duration: 5,
    fault: status >= 500 ? { rule: '<rule onclick=x>', type: 'status', injected: true } : null, faults: [], retryAfter: null,
    bodyHash: 'sha256:ab:1', userAgent: HOSTILE_UA, headers: {}, error: null,
  });
  for (let k = 0; k < 30; k++) {
    const t = T0 + k * 1000;
    a.ingest(rec(t, 503));
    a.ingest(rec(t + 6, 503));
    a.ingest(rec(t + 12, 200));
  }
  a.ingest({ v: 1, type: 'mark', ts: T0 + 5000, label: HOSTILE_MARK });
  return a.report();
}

/** A small XML 1.0 well-formedness check: nesting, quoted attributes, entities, one root. */
function checkXml(xml: string): string | null {
  let i = 0;
  const stack: string[] = [];
  let roots = 0;
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  const entity = /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    for (let j = text.indexOf('&'); j !== -1; j = text.indexOf('&', j + 1)) if (!entity.test(text.slice(j))) return `bad entity at ${i + j}`;
    if (/\S/.test(text) && stack.length === 0) return `text outside the root at ${i}`;
    if (lt === -1) break;
    const gt = xml.indexOf('>', lt);
    if (gt === -1) return 'unclosed tag';
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      if (stack.pop() !== tag.slice(1).trim()) return `mismatched </${tag.slice(1)}> at ${lt}`;
    } else {
      const self = tag.endsWith('/');
      const body = self ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*$/.exec(body);
      if (m === null) return `malformed tag <${tag.slice(0, 60)}> at ${lt}`;
      for (const v of (m[2] ?? '').matchAll(/="([^"]*)"/g)) {
        const val = v[1] as string;
        for (let j = val.indexOf('&'); j !== -1; j = val.indexOf('&', j + 1)) if (!entity.test(val.slice(j))) return `bad entity in attribute at ${lt}`;
      }
      if (stack.length === 0) roots++;
      if (!self) stack.push(m[1] as string);
    }
    i = gt + 1;
  }
  if (stack.length > 0) return `unclosed <${stack.join('><')}>`;
  return roots === 1 ? null : `${roots} root elements`;
}

describe('json', () => {
  it('parses and has the contract fields with the contract types', async () => {
    const report = await analyzeFiles([path.join(DIR, 'retry-after.ndjson')]);
    const j = JSON.parse(formatReport(report, 'json')) as Record<string, unknown> & Report;
    expect(j.schemaVersion).toBe(1);
    for (const k of ['attempts', 'logicalRequests', 'retries', 'amplification', 'retryRatio']) expect(typeof (j.totals as unknown as Record<string, unknown>)[k]).toBe('number');
    const backoffs = ['immediate', 'constant', 'linear', 'exponential', 'irregular', 'insufficient-data'];
    const ras = ['compliant', 'violates', 'ignored', 'not-applicable'];
    const jitters = ['none', 'token', 'proportional', 'full', 'per-client', 'unknown'];
    expect(j.clients.length).toBeGreaterThan(0);
    for (const c of j.clients) {
      expect(typeof c.key).toBe('string');
      expect(c.userAgent === null || typeof c.userAgent === 'string').toBe(true);
      for (const k of ['attempts', 'logicalRequests', 'retries', 'maxAttempts', 'unsafeRetries', 'duplicateSubmissions'] as const) expect(typeof c[k]).toBe('number');
      expect(backoffs).toContain(c.backoff);
      expect(ras).toContain(c.retryAfter);
    }
    for (const t of j.clientTypes) {
      expect(typeof t.userAgent).toBe('string');
      expect(typeof t.clients).toBe('number');
      expect(backoffs).toContain(t.backoff);
      expect(jitters).toContain(t.jitter);
    }
    for (const r of j.routes) for (const k of ['attempts', 'logicalRequests', 'amplification'] as const) expect(typeof r[k]).toBe('number');
    expect(typeof j.routes[0]?.route).toBe('string');
    for (const b of j.timeline) for (const k of ['t', 'organic', 'offered', 'goodput', 'errors', 'faults'] as const) expect(typeof b[k]).toBe('number');
    for (const w of j.faultWindows) {
      expect(typeof w.start).toBe('number');
      expect(typeof w.end).toBe('number');
      expect(typeof w.rule).toBe('string');
      expect(w.recoverySeconds === null || typeof w.recoverySeconds === 'number').toBe(true);
    }
    for (const f of j.findings) {
      expect(typeof f.code).toBe('string');
      expect(['critical', 'warning', 'info']).toContain(f.severity);
      expect(typeof f.message).toBe('string');
      expect(typeof f.evidence).toBe('object');
      if (f.client !== undefined) expect(typeof f.client).toBe('string');
    }
    expect(['retry-storm', 'ok']).toContain(j.verdict);
    expect(j.limits.length).toBeGreaterThanOrEqual(7);
    expect(['high', 'medium', 'low']).toContain(j.confidence.level);
    expect(j.dataQuality.badLines.count).toBe(0);
  });

  it('lists clients worst first', async () => {
    const report = await analyzeFiles([path.join(DIR, 'retry-after.ndjson')]);
    expect(report.clients[0]?.retryAfter).toBe('violates');
    expect(report.clients[report.clients.length - 1]?.findings).toEqual([]);
  });
});

describe('html', () => {
  const html = formatReport(hostileReport(), 'html');

  it('is one self-contained page: no script, no src or href, no external URL in an attribute', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    // attributes live inside tags; recorded text is escaped, so every raw `<...>` is one of ours
    const tags = [...html.matchAll(/<[a-zA-Z][^>]*>/g)].map((m) => m[0]);
    for (const t of tags) {
      expect(t).not.toMatch(/\s(src|href|action|formaction|xlink:href)\s*=/i);
      expect(t).not.toMatch(/https?:\/\//i);
      expect(t).not.toMatch(/\son[a-z]+\s*=/i);
    }
    expect(html).not.toMatch(/<link|<iframe|<img|@import|url\(/i);
    expect(html).toContain('<svg viewBox');
  });

  it('escapes hostile User-Agents, paths, client keys, rules and marks', () => {
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<svg onload');
    expect(html).not.toContain('<iframe');
    expect(html).not.toContain('<rule onclick');
    expect(html).not.toContain('</title><script');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;iframe');
    // every tag in the page is one of ours
    const tags = new Set([...html.matchAll(/<([a-zA-Z][a-zA-Z0-9]*)/g)].map((m) => (m[1] as string).toLowerCase()));
    const ours = ['html', 'head', 'meta', 'title', 'style', 'body', 'main', 'h1', 'h2', 'span', 'p', 'b', 'div', 'svg', 'rect', 'title', 'line', 'text', 'polyline', 'i', 'code', 'table', 'thead', 'tr', 'th', 'tbody', 'td', 'ul', 'li', 'details', 'summary'];
    for (const t of tags) expect(ours).toContain(t);
  });

  it('draws the timeline with fault windows and marks, and the histograms', async () => {
    const report = await analyzeFiles([path.join(DIR, 'herd.ndjson')]);
    const page = formatReport(report, 'html');
    expect(page).toContain('fill-opacity="0.12"'); // a shaded fault window
    expect(page.match(/<polyline/g)?.length).toBe(3);
    expect(page).toContain('requests with 3 attempt(s)');
    expect(page).toContain('retry storm');
  });
});

describe('junit', () => {
  it('is well-formed XML with one failing test case per finding', async () => {
    for (const report of [await analyzeFiles([path.join(DIR, 'immediate-storm.ndjson')]), hostileReport()]) {
      const xml = formatReport(report, 'junit');
      expect(checkXml(xml)).toBeNull();
      expect(xml.match(/<testcase /g)?.length).toBe(report.findings.length);
      expect(xml.match(/<failure /g)?.length).toBe(report.findings.length);
      expect(xml).toContain(`failures="${report.findings.length}"`);
    }
  });

  it('has one passing test case when there is nothing to report', async () => {
    const report = await analyzeFiles([path.join(DIR, 'polling.ndjson')]);
    expect(report.findings).toEqual([]);
    const xml = formatReport(report, 'junit');
    expect(checkXml(xml)).toBeNull();
    expect(xml.match(/<testcase /g)?.length).toBe(1);
    expect(xml).not.toContain('<failure');
    expect(xml).toContain('failures="0"');
  });

  it('the checker itself rejects broken XML', () => {
    expect(checkXml('<a><b></a></b>')).not.toBeNull();
    expect(checkXml('<a x="1 & 2"/>')).not.toBeNull();
    expect(checkXml('<a>x</a>')).toBeNull();
  });
});

describe('har', () => {
  it("takes mergeRecordings' { record, file } items as records (it wrote an empty HAR)", async () => {
    const sink = new PassThrough();
    sink.resume();
    const file = path.join(DIR, 'unsafe-retry.ndjson');
    expect(await writeHar(mergeRecordings([file]), sink)).toBe(195);
  });

  it('streams a HAR 1.2 log with the fault in _aftershockFault', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const count = await writeHar(readRecords(path.join(DIR, 'unsafe-retry.ndjson')), sink);
    sink.end();
    const har = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { log: { version: string; creator: { name: string; version: string }; entries: Array<Record<string, any>> } };
    expect(har.log.version).toBe('1.2');
    expect(har.log.creator.name).toBe('aftershock');
    expect(har.log.entries.length).toBe(count);
    expect(count).toBe(195);
    for (const e of har.log.entries) {
      expect(new Date(e.startedDateTime as string).toISOString()).toBe(e.startedDateTime);
      expect(e.time).toBeGreaterThanOrEqual(0);
      expect(e.request).toMatchObject({ method: 'POST', httpVersion: 'HTTP/1.1', cookies: [], headersSize: -1 });
      expect(e.request.url).toMatch(/^http:\/\/upstream\.test:3000\/orders$/);
      expect(Array.isArray(e.request.headers)).toBe(true);
      expect(Array.isArray(e.request.queryString)).toBe(true);
      expect(typeof e.response.status).toBe('number');
      expect(e.response).toMatchObject({ statusText: '', httpVersion: 'HTTP/1.1', cookies: [], redirectURL: '', headersSize: -1 });
      expect(typeof e.response.content.size).toBe('number');
      expect(typeof e.response.content.mimeType).toBe('string');
      expect(e.cache).toEqual({});
      for (const k of ['send', 'wait', 'receive']) expect(e.timings[k]).toBeGreaterThanOrEqual(0);
      expect('_aftershockFault' in e).toBe(true);
    }
    const injected = har.log.entries.filter((e) => e._aftershockFault !== null);
    expect(injected.length).toBeGreaterThan(0);
    expect(injected[0]?._aftershockFault).toEqual({ rule: 'flaky', type: 'status', injected: true });
    expect(har.log.entries.some((e) => (e.request.headers as Array<{ name: string }>).some((h) => h.name === 'idempotency-key'))).toBe(true);
  });

  it('gives a refused request a URL that is one: an absolute-form target as sent, CONNECT\'s authority or * beside the origin\'s root', async () => {
    const base = { v: 1, type: 'http', ts: T0, end: T0 + 1, client: 'c', ip: '10.0.0.1', conn: 'k', query: null, status: 400, outcome: 'bad-request', upstreamStatus: null, bytesIn: 0, bytesOut: 10, ttfb: 0, duration: 0, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: null, headers: {}, error: 'absolute-form-refused' } as const;
    async function* recs(): AsyncGenerator<AnyRecord> {
      yield { v: 1, type: 'header', aftershock: 't', start: new Date(T0).toISOString(), startMs: T0, target: 'http://127.0.0.1:19101', profile: { name: 'p', hash: 'h' }, seed: 1, clientKey: 'auto', session: null, redacted: [], instance: 'i' } as unknown as AnyRecord;
      yield { ...base, id: 'a', method: 'GET', path: 'http://[redacted]@127.0.0.1:19199/x' } as unknown as AnyRecord;
      yield { ...base, id: 'b', method: 'CONNECT', path: '127.0.0.1:19199' } as unknown as AnyRecord;
      yield { ...base, id: 'c', method: 'OPTIONS', path: '*' } as unknown as AnyRecord;
      yield { ...base, id: 'd', method: 'GET', path: '/ok', status: 200, outcome: null, error: null } as unknown as AnyRecord;
    }
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await writeHar(recs(), sink);
    sink.end();
    const entries = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { log: { entries: Array<{ request: { url: string; _aftershockRequestTarget?: string } }> } }).log.entries;
    expect(entries.map((e) => e.request.url)).toEqual(['http://[redacted]@127.0.0.1:19199/x', 'http://127.0.0.1:19101/', 'http://127.0.0.1:19101/', 'http://127.0.0.1:19101/ok']);
    expect(entries.map((e) => e.request._aftershockRequestTarget)).toEqual(['http://[redacted]@127.0.0.1:19199/x', '127.0.0.1:19199', '*', undefined]);
  });

  it('puts each exchange on the target of the recording it came from (several recordings, a demo\'s two proxies)', async () => {
    const hdr = (instance: string, target: string): AnyRecord => ({ v: 1, type: 'header', aftershock: 't', start: new Date(T0).toISOString(), startMs: T0, target, profile: { name: 'p', hash: 'h' }, seed: 1, clientKey: 'auto', session: null, redacted: [], instance }) as unknown as AnyRecord;
    const rec = (id: string, p: string): AnyRecord => ({ v: 1, type: 'http', id, ts: T0, end: T0 + 1, client: 'c', ip: '10.0.0.1', conn: 'k', method: 'GET', path: p, query: null, status: 200, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 1, ttfb: 0, duration: 1, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: null, headers: {}, error: null }) as unknown as AnyRecord;
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await writeHar([hdr('aaaa', 'http://127.0.0.1:19101'), hdr('bbbb', 'http://127.0.0.1:19103/api'), rec('aaaa-1', '/from-a'), rec('bbbb-1', '/from-b'), rec('aaaa-2', '/again-a')], sink);
    sink.end();
    const urls = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { log: { entries: Array<{ request: { url: string } }> } }).log.entries.map((e) => e.request.url);
    expect(urls).toEqual(['http://127.0.0.1:19101/from-a', 'http://127.0.0.1:19103/from-b', 'http://127.0.0.1:19101/again-a']);
  });

  it('is not a report format: formatReport(report, "har") explains where HAR comes from', () => {
    expect(() => formatReport(hostileReport(), 'har')).toThrow(/built from the recording/);
  });
});

describe('markdown and text', () => {
  it('markdown leads with the verdict and keeps hostile strings inside their cells', () => {
    const md = formatReport(hostileReport(), 'markdown');
    expect(md.split('\n')[0]).toMatch(/retry analysis: .*(retry storm|ok)/);
    expect(md).not.toContain('<script');
    expect(md).not.toContain('<img');
    for (const line of md.split('\n').filter((l) => l.startsWith('| '))) {
      // every table row has the same number of unescaped pipes as its header
      expect(line.replace(/\\\|/g, '').split('|').length).toBeGreaterThan(2);
    }
    const table = md.split('\n').filter((l) => l.startsWith('| '));
    const widths = new Set(table.slice(0, 3).map((l) => l.replace(/\\\|/g, '').split('|').length));
    expect(widths.size).toBe(1);
  });

  it('markdown keeps the advice\'s own code spans as code (escaping only a | in them) and escapes the text around them', () => {
    expect(escapeMarkdownKeepCode('use `a|b` @x <b> `sleep = random(0, min(cap, base * 2^attempt))`')).toBe('use `a\\|b` @&#8203;x &lt;b&gt; `sleep = random(0, min(cap, base * 2^attempt))`');
    const a = createAnalyzer();
    for (let k = 0; k < 6; k++) {
      const ts = T0 + k * 10;
      a.ingest({
        v: 1, type: 'http', id: `c${k}`, ts, end: ts + 1, client: 'c', ip: '10.0.0.9', conn: 'k', method: 'GET', path: '/x', query: null,
        status: 503, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 1, ttfb: 1, duration: 1, fault: null,
        faults: [], retryAfter: null, bodyHash: null, userAgent: 'ua', headers: {}, error: null,
      } satisfies HttpRecord);
    }
    const md = formatReport(a.report(), 'markdown');
    expect(md).toContain('`sleep = random(0, min(cap, base * 2^attempt))`');
    expect(md).not.toContain('\\`sleep');
  });

  it('markdown breaks the mentions, issue references and links GitHub would make of recorded strings', () => {
    const a = createAnalyzer();
    a.ingest(header('s'));
    let i = 0;
    const ua = 'bot @octocat @org/team see #12 and owner/repo#34 GH-56 https://evil.example/x www.evil.example a@b.example';
    for (let k = 0; k < 6; k++) {
      const ts = T0 + k * 1000;
      a.ingest({
        v: 1, type: 'http', id: `m${++i}`, ts, end: ts + 5, client: `10.0.0.9 ${ua}`, ip: '10.0.0.9', conn: 'k', method: 'GET', path: '/issues/#7', query: null,
        status: 503, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 1, ttfb: 1, duration: 5, fault: { rule: 'ping-@admins', type: 'http-error', injected: true },
        faults: [], retryAfter: null, bodyHash: null, userAgent: ua, headers: {}, error: null,
      } satisfies HttpRecord);
    }
    const md = formatReport(a.report(), 'markdown');
    expect(md).toContain('@&#8203;octocat');
    // As GitHub sees the text once entities are decoded: no mention, reference or URL survives.
    const seen = md.replace(/&#8203;/g, '\u200b');
    expect(seen).not.toMatch(/@[a-z]/i);
    expect(seen).not.toMatch(/#\d/);
    expect(seen).not.toMatch(/GH-\d/);
    expect(seen).not.toMatch(/https?:\/\//);
    expect(seen).not.toMatch(/www\./);
    // The text itself is all there, only split by an invisible space.
    expect(seen.replace(/\u200b/g, '')).toContain('bot @octocat @org/team see #12 and owner/repo#34 GH-56 https://evil.example/x www.evil.example a@b.example');
  });

  it('text has the verdict on top, confidence and limits at the bottom, and no colour unless asked', async () => {
    const report = await analyzeFiles([path.join(DIR, 'immediate-storm.ndjson')]);
    const text = formatReport(report, 'text');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('aftershock retry analysis: RETRY STORM');
    expect(text).not.toContain('\u001b');
    expect(lines[lines.length - 1]).toMatch(/^known limits: /);
    expect(lines[lines.length - 2]).toMatch(/^confidence (high|medium|low)/);
    expect(text).toContain('WORST CLIENTS');
    expect(formatReport(report, 'text', { color: true })).toContain('\u001b[31m');
    const clean = formatReport(await analyzeFiles([path.join(DIR, 'polling.ndjson')]), 'text');
    expect(clean.split('\n')[0]).toBe('aftershock retry analysis: OK');
  });

  it('text shows terminal control characters from recordings as escapes', () => {
    const text = formatReport(hostileReport(), 'text');
    expect(text).not.toContain('\u001b');
    expect(text).toContain('\\x1b[31m');
  });
});

describe('html time axis', () => {
  it('a first bin that starts before the recording did reads -1s, never +-1s', () => {
    // The proxy started 529 ms into a second; bins are whole seconds, so the first starts before it.
    const a = createAnalyzer();
    a.ingest({ ...header('axis'), start: new Date(T0 + 529).toISOString(), startMs: T0 + 529 });
    for (let k = 0; k < 20; k++) {
      const ts = T0 + 600 + k * 700;
      a.ingest({
        v: 1, type: 'http', id: `x${k}`, ts, end: ts + 5, client: 'c', ip: '10.0.0.1', conn: 'k', method: 'GET', path: '/x', query: null, status: k % 3 === 0 ? 503 : 200,
        outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 1, ttfb: 1, duration: 5, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: 'ua/1', headers: {}, error: null,
      } satisfies HttpRecord);
    }
    const html = formatReport(a.report(), 'html');
    const ticks = [...html.matchAll(/fill="#5a6270">([^<]*s)<\/text>/g)].map((m) => m[1]);
    expect(ticks.length).toBeGreaterThan(3);
    for (const t of ticks) expect(t).toMatch(/^[+−]\d+s$/);
  });
});

describe('every format from every golden recording', () => {
  it('renders without throwing', async () => {
    for (const f of fs.readdirSync(DIR).filter((x) => x.endsWith('.ndjson'))) {
      const report = await analyzeFiles([path.join(DIR, f)]);
      for (const fmt of ['text', 'json', 'markdown', 'html', 'junit'] as const) expect(formatReport(report, fmt).length).toBeGreaterThan(100);
    }
  });
});



describe('a report of nothing', () => {
  it('says n/a for the amplification of no requests, not 0, in text, markdown and html', () => {
    const empty = createAnalyzer().report();
    expect(formatReport(empty, 'text')).toContain('amplification n/a overall');
    expect(formatReport(empty, 'markdown')).toMatch(/\| 0 \| 0 \| 0 \| 0\.0 % \| n\/a \|/);
    expect(formatReport(empty, 'html')).toContain('n/a');
  });
});

describe('escaping recorded strings', () => {
  it('shows bidi overrides and line separators as escapes, as control characters are (a name could reorder the report)', async () => {
    const { stripControls } = await import('../../src/analysis/format/escape.js');
    expect(stripControls('a\u202Eb\u2028c\u2066d\u001be')).toBe('a\\u202eb\\u2028c\\u2066d\\x1be');
    expect(stripControls('naïve ✓')).toBe('naïve ✓');
  });
});
