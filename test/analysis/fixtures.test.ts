/**
 * The golden recordings in test/fixtures/analysis/ are exactly what make-fixtures.ts generates
 * (so a reviewer can read how each was made). Regenerate with
 *   UPDATE_FIXTURES=1 npx vitest run test/analysis/fixtures.test.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFixtures } from '../fixtures/make-fixtures.js';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'analysis');

describe('golden recordings', () => {
  const fixtures = buildFixtures();
  for (const [name, content] of Object.entries(fixtures)) {
    it(`${name} matches its generator`, () => {
      const file = path.join(DIR, name);
      if (process.env.UPDATE_FIXTURES === '1') {
        fs.mkdirSync(DIR, { recursive: true });
        fs.writeFileSync(file, content);
      }
      expect(fs.readFileSync(file, 'utf8')).toBe(content);
    });
  }
});
