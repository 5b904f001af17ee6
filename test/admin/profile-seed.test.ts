/**
 * GET /profile (and the answers of PUT /profile and POST /profile/select) show the seed the engine
 * really uses — a --seed overrides the profile's — with the profile's own value beside it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProfile } from '../../src/rules/index.js';
import { tempDir } from '../helpers.js';
import { api, startAdminProxy } from './admin-helpers.js';
import { cli } from '../cli/cli-process.js';

const SEEDED = 'name: seeded\nseed: 7\nrules: []\n';

describe('GET /profile seed', () => {
  it('with --seed 8 over a profile seeded 7: seed 8 (as the engine and the recording use), profileSeed 7; PUT and select say the same', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'other.yaml');
    fs.writeFileSync(file, 'name: other\nseed: 3\nrules: []\n');
    const { admin, proxy } = await startAdminProxy({ profile: parseProfile(SEEDED, null), seed: 8 });
    const got = await api(admin, 'GET', '/profile');
    expect(got.json).toMatchObject({ name: 'seeded', seed: 8, profileSeed: 7 });
    expect(proxy.engine.seed).toBe(8);
    expect((await api(admin, 'PUT', '/profile', { body: 'name: put\nseed: 9\nrules: []\n' })).json).toMatchObject({ name: 'put', seed: 8, profileSeed: 9 });
    expect((await api(admin, 'POST', '/profile/select', { body: { name: file } })).json).toMatchObject({ name: 'other', seed: 8, profileSeed: 3 });

    // ctl shows it too.
    const show = cli(['ctl', '--admin', admin, 'profile', 'show']);
    expect(await show.exit).toBe(0);
    expect(show.stdout()).toMatch(/^seed\s+8 \(--seed; the profile says 3\)$/m);
  });

  it('without --seed: the profile\'s seed, or 1 when it has none (profileSeed null)', async () => {
    const { admin } = await startAdminProxy();
    expect((await api(admin, 'GET', '/profile')).json).toMatchObject({ name: 'passthrough', seed: 1, profileSeed: null });
    expect((await api(admin, 'PUT', '/profile', { body: SEEDED })).json).toMatchObject({ seed: 7, profileSeed: 7 });
    expect((await api(admin, 'GET', '/profile')).json).toMatchObject({ seed: 7, profileSeed: 7 });
  });
});
