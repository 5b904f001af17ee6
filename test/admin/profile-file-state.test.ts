/**
 * The profile's file against the profile in force, as an operator sees it: GET /profile, /readyz
 * and `ctl` say when the file's last change was rejected or the file was removed (the profile in
 * force stays, and that used to show only in one log line on stderr), and when it holds the
 * running profile again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { api, startAdminProxy } from './admin-helpers.js';

async function until(test: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const GOOD = 'name: steady\nrules:\n  - name: slow\n    fault: { type: latency, delay: 1ms }\n';
const BAD = 'name: steady\nrules:\n  - name: slow\n    fault: { type: latency, delay: -5ms }\n';

describe('the profile file in GET /profile and /readyz', () => {
  it('in force, rejected change (the old profile runs on), back in force, removed, back again', async () => {
    const file = path.join(tempDir(), 'steady.yaml');
    fs.writeFileSync(file, GOOD);
    const { admin } = await startAdminProxy({ profile: file });
    const state = async (): Promise<{ path: string; status: string; message: string | null; watching: boolean }> => (await api(admin, 'GET', '/profile')).json.file;
    expect(await state()).toMatchObject({ path: file, status: 'in-force', message: null, watching: true });

    fs.writeFileSync(file, BAD);
    await until(async () => (await state()).status === 'rejected', 5000);
    const rejected = await state();
    expect(rejected.message).toMatch(/steady\.yaml:4 rules\[0\]\.fault\.delay/);
    const ready = await api(admin, 'GET', '/readyz');
    expect(ready.status).toBe(200); // the profile in force still serves
    expect(ready.json.profileFile).toMatchObject({ status: 'rejected' });
    expect((await api(admin, 'GET', '/profile')).json.rules.map((r: { name: string }) => r.name)).toEqual(['slow']);

    fs.writeFileSync(file, GOOD);
    await until(async () => (await state()).status === 'in-force', 5000);

    fs.rmSync(file);
    await until(async () => (await state()).status === 'missing', 6000);
    expect((await state()).message).toMatch(/was removed; the profile in force stays/);

    fs.writeFileSync(file, GOOD);
    await until(async () => (await state()).status === 'in-force', 5000);
  }, 30_000);

  it('a built-in profile or one set through the API has no file', async () => {
    const { admin } = await startAdminProxy({ profile: 'flaky' });
    expect((await api(admin, 'GET', '/profile')).json.file).toBeNull();
    await api(admin, 'PUT', '/profile', { body: GOOD });
    expect((await api(admin, 'GET', '/profile')).json.file).toBeNull();
  });
});
