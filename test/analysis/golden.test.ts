/**
 * Golden recordings: each NDJSON fixture must produce the key parts of its hand-written
 * `<name>.expected.json`. Matching is by subset: objects name the fields that matter, strings like
 * ">10" or "<=2" compare numbers, `findings.include/exclude` list codes, `findingsAbout` names
 * findings about a client or route.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeFiles } from '../../src/analysis/index.js';
import type { Finding, Report } from '../../src/analysis/index.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Checks `actual` against an expected subset; returns the first mismatch path or null. */
function mismatch(actual: unknown, expected: Json, at: string): string | null {
  if (typeof expected === 'string') {
    const m = /^(>=|<=|>|<)(-?\d+(?:\.\d+)?)$/.exec(expected);
    if (m !== null) {
      if (typeof actual !== 'number') return `${at}: expected a number ${expected}, got ${JSON.stringify(actual)}`;
      const n = Number(m[2]);
      const okay = m[1] === '>' ? actual > n : m[1] === '<' ? actual < n : m[1] === '>=' ? actual >= n : actual <= n;
      return okay ? null : `${at}: expected ${expected}, got ${actual}`;
    }
  }
  if (expected === null || typeof expected !== 'object') {
    return Object.is(actual, expected) ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: expected an array`;
    for (let i = 0; i < expected.length; i++) {
      const r = mismatch(actual[i], expected[i] as Json, `${at}[${i}]`);
      if (r !== null) return r;
    }
    return null;
  }
  if (actual === null || typeof actual !== 'object') return `${at}: expected an object, got ${JSON.stringify(actual)}`;
  for (const [k, v] of Object.entries(expected)) {
    const r = mismatch((actual as Record<string, unknown>)[k], v, `${at}.${k}`);
    if (r !== null) return r;
  }
  return null;
}

function findingMatches(f: Finding, want: Record<string, Json>): boolean {
  return Object.entries(want).every(([k, v]) => (f as unknown as Record<string, unknown>)[k] === v);
}

function check(report: Report, expected: Record<string, Json>): string[] {
  const problems: string[] = [];
  const codes = new Set(report.findings.map((f) => f.code));
  for (const [key, want] of Object.entries(expected)) {
    switch (key) {
      case 'about':
        break;
      case 'findings': {
        const w = want as { include?: string[]; exclude?: string[] };
        for (const c of w.include ?? []) if (!codes.has(c as Finding['code'])) problems.push(`missing finding ${c} (have ${[...codes].join(', ')})`);
        for (const c of w.exclude ?? []) if (codes.has(c as Finding['code'])) problems.push(`unexpected finding ${c}`);
        break;
      }
      case 'findingsExactly':
        if (JSON.stringify([...codes].sort()) !== JSON.stringify([...(want as string[])].sort())) problems.push(`findings ${[...codes].join(', ')} != ${JSON.stringify(want)}`);
        break;
      case 'findingsAbout':
        for (const w of want as Array<Record<string, Json>>) {
          if (!report.findings.some((f) => findingMatches(f, w))) problems.push(`no finding ${JSON.stringify(w)}`);
        }
        break;
      case 'findingsNotAbout':
        for (const w of want as Array<Record<string, Json>>) {
          if (report.findings.some((f) => findingMatches(f, w))) problems.push(`unexpected finding ${JSON.stringify(w)}`);
        }
        break;
      case 'clients':
        for (const [k, sub] of Object.entries(want as Record<string, Json>)) {
          const c = report.clients.find((x) => x.key === k);
          if (c === undefined) problems.push(`no client ${k}`);
          else {
            const r = mismatch(c, sub, `clients[${k}]`);
            if (r !== null) problems.push(r);
          }
        }
        break;
      case 'clientTypes':
        for (const [k, sub] of Object.entries(want as Record<string, Json>)) {
          const c = report.clientTypes.find((x) => x.userAgent === k);
          if (c === undefined) problems.push(`no client type ${k}`);
          else {
            const r = mismatch(c, sub, `clientTypes[${k}]`);
            if (r !== null) problems.push(r);
          }
        }
        break;
      case 'routes':
        for (const [k, sub] of Object.entries(want as Record<string, Json>)) {
          const c = report.routes.find((x) => x.route === k);
          if (c === undefined) problems.push(`no route ${k} (have ${report.routes.map((r) => r.route).join(', ')})`);
          else {
            const r = mismatch(c, sub, `routes[${k}]`);
            if (r !== null) problems.push(r);
          }
        }
        break;
      default: {
        const r = mismatch((report as unknown as Record<string, unknown>)[key], want, key);
        if (r !== null) problems.push(r);
      }
    }
  }
  return problems;
}

describe('golden recordings produce their expected reports', () => {
  const names = fs.readdirSync(DIR).filter((f) => f.endsWith('.expected.json'));
  it('has a golden file for every scenario of the brief', () => {
    expect(names.length).toBeGreaterThanOrEqual(15);
  });
  for (const name of names) {
    const base = name.replace('.expected.json', '');
    it(base, async () => {
      const expected = JSON.parse(fs.readFileSync(path.join(DIR, name), 'utf8')) as Record<string, Json>;
      const report = await analyzeFiles([path.join(DIR, `${base}.ndjson`)]);
      expect(check(report, expected)).toEqual([]);
    });
  }

  it('two recordings of one test (two proxies) merge into the same totals as one', async () => {
    const both = await analyzeFiles([path.join(DIR, 'multi-proxy-a.ndjson'), path.join(DIR, 'multi-proxy-b.ndjson')]);
    const one = await analyzeFiles([path.join(DIR, 'constant-no-jitter.ndjson')]);
    expect(both.totals).toEqual(one.totals);
    expect(both.clientTypes).toEqual(one.clientTypes);
    expect(both.verdict).toBe(one.verdict);
    expect(both.recordings.map((r) => r.instance)).toEqual(['proxy-a', 'proxy-b']);
    expect(both.findings.map((f) => f.code)).toContain('no-jitter');
  });
});
