/**
 * The README's retry-analysis section documents every finding code, every gate metric and every known limit the
 * report states, so the README section cannot drift from the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FINDINGS, GATE_METRICS, KNOWN_LIMITS, REPORT_FORMATS } from '../../src/analysis/index.js';

const doc = fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('README: retry analysis', () => {
  it.each(FINDINGS.map((f) => f.code))('documents the finding %s', (code) => {
    expect(doc).toContain(`| \`${code}\` |`);
  });

  it('documents every gate metric and output format', () => {
    for (const m of GATE_METRICS) expect(doc).toContain(`\`${m}\``);
    for (const f of REPORT_FORMATS) expect(doc).toContain(`| \`${f}\` |`);
  });

  it('states every known limit the report states', () => {
    const flat = doc.replace(/\s+/g, ' ');
    for (const l of KNOWN_LIMITS) expect(flat).toContain(l.split(/[;:(]/)[0]?.replace(/\.$/, '').trim());
  });
});
