/**
 * JUnit output with --fail-on gates agrees with the exit status: one test case per gate (failing
 * when it held), findings no held gate selected are skipped, so a CI that fails on JUnit failures
 * and one that reads the exit code decide alike. Checked by parsing the XML into elements and
 * counting test cases, failures and skips per suite against the suites' own attributes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerAnalyzeCommand } from '../../src/cli/analyze.js';
import { analyzeFiles, createAnalyzer, evaluateGates, formatReport, parseGate, type Gate, type Report } from '../../src/analysis/index.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { T0, header } from '../fixtures/make-fixtures.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');
const fx = (name: string): string => path.join(DIR, name);

interface El {
  name: string;
  attrs: Record<string, string>;
  children: El[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decode(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : (ENTITIES[e] as string),
  );
}

/**
 * A strict little XML parser (elements, attributes, text; no DTD, CDATA or comments): throws on
 * anything not well-formed — a stray `<`, `&` or `"`, a mismatched or unclosed tag, two roots —
 * and, stricter than XML, on a raw `>` inside an attribute value.
 */
function parseXml(xml: string): El {
  let i = xml.startsWith('<?xml') ? xml.indexOf('?>') + 2 : 0;
  const root: El = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: El[] = [root];
  const badAmp = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    if (badAmp.test(text)) throw new Error(`bad entity in text at ${i}`);
    const top = stack[stack.length - 1] as El;
    if (top === root && /\S/.test(text)) throw new Error(`text outside the root at ${i}`);
    top.text += decode(text);
    if (lt === -1) break;
    const gt = xml.indexOf('>', lt);
    if (gt === -1) throw new Error('unclosed tag');
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const open = stack.pop();
      if (open === undefined || open === root || open.name !== tag.slice(1).trim()) throw new Error(`mismatched </${tag.slice(1)}> at ${lt}`);
    } else {
      const self = tag.endsWith('/');
      const m = /^([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.-]*="[^"<]*")*)\s*$/.exec(self ? tag.slice(0, -1) : tag);
      if (m === null) throw new Error(`malformed tag <${tag.slice(0, 60)}> at ${lt}`);
      const el: El = { name: m[1] as string, attrs: {}, children: [], text: '' };
      for (const a of (m[2] ?? '').matchAll(/([A-Za-z_][\w.-]*)="([^"]*)"/g)) {
        const [, k, v] = a as unknown as [string, string, string];
        if (badAmp.test(v)) throw new Error(`bad entity in attribute ${k} at ${lt}`);
        if (k in el.attrs) throw new Error(`duplicate attribute ${k} at ${lt}`);
        el.attrs[k] = decode(v);
      }
      if (top === root && root.children.length > 0) throw new Error('two root elements');
      top.children.push(el);
      if (!self) stack.push(el);
    }
    i = gt + 1;
  }
  if (stack.length > 1) throw new Error(`unclosed <${stack.slice(1).map((e) => e.name).join('><')}>`);
  const doc = root.children[0];
  if (doc === undefined) throw new Error('no root element');
  return doc;
}

const kids = (el: El, name: string): El[] => el.children.filter((c) => c.name === name);

interface SuiteSummary {
  name: string;
  tests: number;
  failures: number;
  skipped: number;
  cases: Array<{ classname: string; name: string; outcome: 'failure' | 'skipped' | 'passed'; message: string | null; text: string }>;
}

/** The suites of a JUnit document, after checking each suite's and the root's counts against its elements. */
function junit(xml: string): { tests: number; failures: number; suites: SuiteSummary[] } {
  const doc = parseXml(xml);
  expect(doc.name).toBe('testsuites');
  const suites = kids(doc, 'testsuite').map((s): SuiteSummary => {
    const cases = kids(s, 'testcase').map((c) => {
      const failure = kids(c, 'failure')[0];
      const skipped = kids(c, 'skipped')[0];
      expect(kids(c, 'failure').length + kids(c, 'skipped').length).toBeLessThanOrEqual(1);
      const el = failure ?? skipped;
      return {
        classname: c.attrs.classname as string,
        name: c.attrs.name as string,
        outcome: failure !== undefined ? ('failure' as const) : skipped !== undefined ? ('skipped' as const) : ('passed' as const),
        message: el?.attrs.message ?? null,
        text: el?.text ?? kids(c, 'system-out')[0]?.text ?? '',
      };
    });
    const summary = {
      name: s.attrs.name as string,
      tests: cases.length,
      failures: cases.filter((c) => c.outcome === 'failure').length,
      skipped: cases.filter((c) => c.outcome === 'skipped').length,
      cases,
    };
    expect(Number(s.attrs.tests), `${summary.name} tests`).toBe(summary.tests);
    expect(Number(s.attrs.failures), `${summary.name} failures`).toBe(summary.failures);
    expect(Number(s.attrs.skipped), `${summary.name} skipped`).toBe(summary.skipped);
    expect(s.attrs.errors).toBe('0');
    return summary;
  });
  const tests = suites.reduce((n, s) => n + s.tests, 0);
  const failures = suites.reduce((n, s) => n + s.failures, 0);
  expect(Number(doc.attrs.tests)).toBe(tests);
  expect(Number(doc.attrs.failures)).toBe(failures);
  return { tests, failures, suites };
}

const HOSTILE = '<script>"x"</script> & \u001b[31m';

/** Findings about a client whose key, path and User-Agent are markup. */
function hostileReport(): Report {
  const a = createAnalyzer();
  a.ingest({ ...header('<b>"session"</b> &'), target: 'https://target.example/<x>' });
  let i = 0;
  const rec = (ts: number, status: number): HttpRecord => ({
    v: 1, type: 'http', id: `h${++i}"<>`, ts, end: ts + 5, client: `<iframe src="x">&${HOSTILE}`, ip: '10.0.0.66', conn: 'k', method: 'POST',
    path: '/"><svg onload=alert(3)>/a', query: 'q=<x>&_=1', status, outcome: null, upstreamStatus: null, bytesIn: 1, bytesOut: 1, ttfb: 1, duration: 5,
    fault: status >= 500 ? { rule: '<rule onclick=x>', type: 'status', injected: true } : null, faults: [], retryAfter: null,
    bodyHash: 'sha256:ab:1', userAgent: HOSTILE, headers: {}, error: null,
  });
  for (let k = 0; k < 30; k++) {
    const t = T0 + k * 1000;
    a.ingest(rec(t, 503));
    a.ingest(rec(t + 6, 503));
    a.ingest(rec(t + 12, 200));
  }
  return a.report();
}

describe('parseXml (the checker)', () => {
  it('rejects what is not well-formed and decodes what is', () => {
    expect(() => parseXml('<a><b></a></b>')).toThrow(/mismatched/);
    expect(() => parseXml('<a x="1 & 2"/>')).toThrow(/bad entity/);
    expect(() => parseXml('<a x="1 > 2"/>')).toThrow(); // legal XML, but stricter is fine: the formatter escapes > too
    expect(() => parseXml('<a>x</a><b/>')).toThrow(/two root/);
    expect(() => parseXml('<a><b>')).toThrow(/unclosed/);
    expect(parseXml('<a x="&lt;&quot;&amp;">t &gt; 1</a>')).toMatchObject({ attrs: { x: '<"&' }, text: 't > 1' });
  });
});

describe('evaluateGates(..., { all: true })', () => {
  it('returns every gate in order, held or not, each with a detail that says why', async () => {
    const report = await analyzeFiles([fx('polling.ndjson')]);
    const all = evaluateGates(report, [...parseGate('retry-storm,critical,attempts>=1'), ...parseGate('amplification>2,recoverySeconds>30')], { all: true });
    expect(all.map((g) => [g.expr, g.held, g.detail])).toEqual([
      ['retry-storm', false, 'retry-storm did not hold: no retry-storm finding'],
      ['critical', false, 'critical did not hold: no finding of severity critical or worse'],
      ['attempts>=1', true, 'attempts>=1 held: attempts is 75'],
      ['amplification>2', false, 'amplification>2 did not hold: amplification is 1'],
      ['recoverySeconds>30', false, 'recoverySeconds>30 did not hold: recoverySeconds is not measurable in this report'],
    ]);
    expect(evaluateGates(report, parseGate('retry-storm,attempts>=1'))).toEqual([all[2]]);
  });
});

describe('junit with --fail-on gates', () => {
  it('a gate that held fails even when there is no finding (it was a passing document before)', async () => {
    const report = await analyzeFiles([fx('polling.ndjson')]);
    const outcomes = evaluateGates(report, parseGate('attempts>=1'), { all: true });
    const doc = junit(formatReport(report, 'junit', { gates: outcomes }));
    expect(doc.failures).toBe(1);
    const [gates, findings] = doc.suites;
    expect(gates?.cases).toEqual([
      { classname: 'aftershock.gates', name: 'attempts>=1', outcome: 'failure', message: 'attempts>=1 held: attempts is 75', text: '--fail-on attempts>=1 held: attempts is 75' },
    ]);
    expect(findings).toMatchObject({ tests: 1, failures: 0, skipped: 0 });
  });

  it('findings no gate selected are skipped, not failures, and still carry their text', async () => {
    const report = await analyzeFiles([fx('immediate-storm.ndjson')]);
    expect(report.findings.length).toBeGreaterThan(10);
    const doc = junit(formatReport(report, 'junit', { gates: evaluateGates(report, parseGate('amplification>100'), { all: true }) }));
    expect(doc.failures).toBe(0);
    expect(doc.tests).toBe(1 + report.findings.length);
    const [gates, findings] = doc.suites;
    expect(gates?.cases).toEqual([
      { classname: 'aftershock.gates', name: 'amplification>100', outcome: 'passed', message: null, text: `amplification>100 did not hold: amplification is ${report.totals.amplification}` },
    ]);
    expect(findings).toMatchObject({ tests: report.findings.length, failures: 0, skipped: report.findings.length });
    expect(findings?.cases.map((c) => c.message)).toEqual(report.findings.map((f) => `not gated by --fail-on: ${f.message}`));
    expect(findings?.cases.every((c) => c.text.includes('What to do:'))).toBe(true);
  });

  it('findings a held gate selected fail; the others are skipped; one case per gate, named after it', async () => {
    const report = await analyzeFiles([fx('immediate-storm.ndjson')]);
    const gates = [...parseGate('amplification>100,retry-storm'), ...parseGate('unsafe-retry')];
    const doc = junit(formatReport(report, 'junit', { gates: evaluateGates(report, gates, { all: true }) }));
    const [g, findings] = doc.suites;
    expect(g?.name).toBe('aftershock gates (--fail-on)');
    expect(g?.cases.map((c) => [c.name, c.outcome])).toEqual([
      ['amplification>100', 'passed'],
      ['retry-storm', 'failure'],
      ['unsafe-retry', 'passed'],
    ]);
    expect(g?.cases[1]?.message).toBe(evaluateGates(report, gates)[0]?.detail);
    const storms = report.findings.filter((f) => f.code === 'retry-storm').length;
    expect(storms).toBe(1);
    expect(findings).toMatchObject({ failures: storms, skipped: report.findings.length - storms });
    expect(findings?.cases.filter((c) => c.outcome === 'failure').map((c) => c.classname)).toEqual(['aftershock.retries.retry-storm']);
    expect(doc.failures).toBe(1 + storms);
  });

  it('stays well-formed with hostile strings and gate expressions full of < and >', () => {
    const report = hostileReport();
    expect(report.findings.length).toBeGreaterThan(0);
    for (const expr of ['critical,amplification>1', 'retries<=0,maxAttempts>=2', 'warning']) {
      const outcomes = evaluateGates(report, parseGate(expr), { all: true });
      const doc = junit(formatReport(report, 'junit', { gates: outcomes }));
      expect(doc.suites[0]?.cases.map((c) => c.name)).toEqual(parseGate(expr).map((g) => g.expr));
      expect(doc.failures > 0).toBe(outcomes.some((o) => o.held));
      expect(doc.suites[1]?.name).toBe('aftershock retry analysis (<b>"session"</b> &)');
    }
  });

  it('without gates keeps one failing case per finding and a single suite', async () => {
    const report = await analyzeFiles([fx('immediate-storm.ndjson')]);
    const doc = junit(formatReport(report, 'junit'));
    expect(doc.suites).toHaveLength(1);
    expect(doc.suites[0]).toMatchObject({ tests: report.findings.length, failures: report.findings.length, skipped: 0 });
  });
});

describe('aftershock analyze --format junit --fail-on: the XML agrees with the exit status', () => {
  const dirs: string[] = [];
  afterEach(() => {
    process.exitCode = undefined;
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function analyze(args: string[]): Promise<{ err: string; code: number | undefined }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const err: Buffer[] = [];
    stdout.resume();
    stderr.on('data', (c: Buffer) => err.push(c));
    const program = new Command('aftershock').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerAnalyzeCommand(program, { stdout, stderr, env: {} });
    await program.parseAsync(['analyze', ...args], { from: 'user' });
    return { err: Buffer.concat(err).toString('utf8'), code: typeof process.exitCode === 'number' ? process.exitCode : undefined };
  }

  it.each([
    ['polling.ndjson', 'attempts>=1', 1],
    ['immediate-storm.ndjson', 'amplification>100', undefined],
    ['immediate-storm.ndjson', 'critical', 1],
    ['polling.ndjson', 'retry-storm,retryRatio>20%', undefined],
  ])('%s --fail-on %s', async (file, gate, exit) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-junit-'));
    dirs.push(d);
    const out = path.join(d, 'gates.xml');
    const r = await analyze([fx(file), '--fail-on', gate, '--format', 'junit', '-o', out]);
    expect(r.code).toBe(exit);
    const doc = junit(fs.readFileSync(out, 'utf8'));
    expect(doc.failures > 0).toBe(exit === 1);
    const gateCases = doc.suites[0]?.cases ?? [];
    expect(gateCases.map((c) => c.name)).toEqual(gate.split(','));
    for (const c of gateCases.filter((c) => c.outcome === 'failure')) expect(r.err).toContain(`--fail-on ${c.message}`);
  });
});

describe('aftershock analyze --fail-on: every format lists every gate, held or not', () => {
  const dirs: string[] = [];
  afterEach(() => {
    process.exitCode = undefined;
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function analyzeTo(format: string, gate: string): Promise<{ out: string; code: number | undefined }> {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-gates-'));
    dirs.push(d);
    const file = path.join(d, `report.${format}`);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    stdout.resume();
    stderr.resume();
    const program = new Command('aftershock').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerAnalyzeCommand(program, { stdout, stderr, env: {} });
    await program.parseAsync(['analyze', fx('immediate-storm.ndjson'), '--fail-on', gate, '--format', format, '-o', file], { from: 'user' });
    return { out: fs.readFileSync(file, 'utf8'), code: typeof process.exitCode === 'number' ? process.exitCode : undefined };
  }

  const GATES = 'critical,amplification>100,recordsLost>0';

  it('json: a gates list after the report, one entry per gate with whether it held and why', async () => {
    const { out, code } = await analyzeTo('json', GATES);
    expect(code).toBe(1);
    const doc = JSON.parse(out) as Report & { gates: Array<{ expr: string; kind: string; held: boolean; actual: unknown; detail: string }> };
    expect(doc.verdict).toBe('retry-storm');
    expect(doc.gates.map((g) => [g.expr, g.kind, g.held])).toEqual([
      ['critical', 'severity', true],
      ['amplification>100', 'metric', false],
      ['recordsLost>0', 'metric', false],
    ]);
    expect(doc.gates[1]?.actual).toBe(doc.totals.amplification);
    expect(doc.gates[0]?.detail).toMatch(/^critical held: \d+ findings? of severity critical/);
    expect(Object.keys(doc).at(-1)).toBe('gates');
  });

  it('json without --fail-on has no gates key (the report contract is unchanged)', async () => {
    const report = await analyzeFiles([fx('immediate-storm.ndjson')]);
    expect(JSON.parse(formatReport(report, 'json'))).not.toHaveProperty('gates');
  });

  it('json: a value JSON cannot hold (a window that never recovered) is null, and the detail says never', async () => {
    const report = await analyzeFiles([fx('sustained.ndjson')]);
    const gate = parseGate('recoverySeconds>5')[0] as Gate;
    const never = { gate, expr: gate.expr, held: true, actual: Number.POSITIVE_INFINITY, detail: 'recoverySeconds>5 held: recoverySeconds is never (not recovered)' };
    const doc = JSON.parse(formatReport(report, 'json', { gates: [never] })) as { gates: Array<{ actual: unknown; detail: string; held: boolean }> };
    expect(doc.gates).toEqual([{ expr: 'recoverySeconds>5', kind: 'metric', held: true, actual: null, detail: never.detail }]);
  });

  it('markdown: a gates table under the verdict that says the job fails', async () => {
    const { out } = await analyzeTo('markdown', GATES);
    const lines = out.split('\n');
    const head = lines.findIndex((l) => l.includes('CI gates'));
    expect(head).toBeGreaterThan(0);
    expect(head).toBeLessThan(lines.findIndex((l) => l.startsWith('### Findings')));
    expect(lines[head]).toContain('1 of 3 held: the job fails');
    const rows = lines.slice(head + 2, head + 7).filter((l) => l.startsWith('| '));
    expect(rows[0]).toBe('| gate | result | why |');
    expect(rows.slice(2).map((r) => r.split(' | ')[0]?.slice(2))).toEqual(['critical', 'amplification&gt;100', 'recordsLost&gt;0']);
    expect(rows[2]).toContain('❌ held');
    expect(rows[3]).toContain('✅ did not hold');
  });

  it('markdown when no gate held says so', async () => {
    const { out, code } = await analyzeTo('markdown', 'amplification>100');
    expect(code).toBeUndefined();
    expect(out).toContain('none of 1 held');
  });

  it('text and html list each gate with its detail', async () => {
    const text = (await analyzeTo('text', GATES)).out;
    expect(text.split('\n')[1]).toMatch(/because|gates/);
    expect(text).toContain('gates (--fail-on): 1 of 3 held: FAIL');
    expect(text).toMatch(/ {4}x critical held: /);
    expect(text).toMatch(/ {4}ok amplification>100 did not hold: amplification is /);
    const html = (await analyzeTo('html', GATES)).out;
    expect(html).toContain('CI gates (--fail-on)');
    expect(html).toContain('<td>amplification&gt;100</td><td>did not hold</td>');
  });
});
