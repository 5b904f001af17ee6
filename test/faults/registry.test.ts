/**
 * The list of faults is complete and documented: every file in src/faults is in the registry array,
 * every definition has a summary and an example that its own schema accepts (and that a profile
 * accepts), and every fault and each of its options is documented in the README's profile reference.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { faultByType, faults } from '../../src/faults/index.js';
import { parseProfile } from '../../src/rules/index.js';

const FAULTS_DIR = fileURLToPath(new URL('../../src/faults/', import.meta.url));
const DOCS = fs.readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The docs section of one fault: from its heading to the next heading of the same level. */
function section(type: string): string {
  const start = DOCS.indexOf(`\n#### \`${type}\`\n`);
  if (start === -1) return '';
  const next = DOCS.slice(start + 1).search(/\n#{2,4} /);
  return DOCS.slice(start, next === -1 ? undefined : start + 1 + next);
}

describe('fault registry', () => {
  const files = fs
    .readdirSync(FAULTS_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && f !== 'types.ts')
    .map((f) => f.slice(0, -3));

  it('lists every fault file, named after its type, once', () => {
    expect(files.sort()).toEqual(faults.map((f) => f.type).sort());
    expect(faultByType.size).toBe(faults.length);
    expect(Object.isFrozen(faults)).toBe(true);
  });

  it.each(faults.map((f) => [f.type, f] as const))('%s has a summary and an example its schema and a profile accept', (type, def) => {
    expect(['delay', 'request', 'response', 'websocket']).toContain(def.stage);
    expect(def.summary.length).toBeGreaterThan(20);
    expect(def.example.type).toBe(type);
    const { type: _t, ...options } = def.example;
    const parsed = def.options.safeParse(options);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    const p = parseProfile(JSON.stringify({ name: 'example', rules: [{ name: 'r', fault: def.example }] }), null);
    expect(p.rules[0]?.type).toBe(type);
    // A schema is strict: an unknown option is refused.
    expect(def.options.safeParse({ ...options, notAnOption: 1 }).success).toBe(false);
  });

  it.each(faults.map((f) => [f.type, f] as const))('%s is documented in the README with each of its options', (type, def) => {
    const text = section(type);
    expect(text, `no "#### \`${type}\`" section`).not.toBe('');
    const shape = (def.options as unknown as z.ZodObject).shape as Record<string, unknown>;
    for (const key of Object.keys(shape)) expect(text, `${type}.${key} undocumented`).toContain(`\`${key}\``);
    expect(text).toContain(`type: ${type}`);
  });
});
