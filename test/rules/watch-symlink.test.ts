/**
 * Hot reload behind symlinks, with real files, real symlinks and the real watchers: an edit of a
 * plain link's target, and the Kubernetes ConfigMap layout (`chaos.yaml -> ..data/chaos.yaml`,
 * the kubelet swapping the `..data` link to a new timestamped folder by rename). Each change
 * applies once; a bad file never replaces the good profile; a vanished file keeps it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { watchProfile, type CompiledProfile, type ProfileWatcher } from '../../src/rules/index.js';
import { tempDir, waitFor } from '../helpers.js';

const watchers: ProfileWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
});

const profile = (name: string, status: number): string => `name: ${name}\nrules:\n  - name: r\n    fault: { type: http-error, status: ${status} }\n`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function watch(file: string, opts: { pollMs?: number; refuse?: (p: CompiledProfile) => boolean } = {}): { changes: CompiledProfile[]; errors: Error[] } {
  const changes: CompiledProfile[] = [];
  const errors: Error[] = [];
  watchers.push(
    watchProfile(
      file,
      (p) => {
        if (opts.refuse?.(p) === true) throw new Error(`refused ${p.name}`);
        changes.push(p);
      },
      (e) => errors.push(e),
      opts.pollMs === undefined ? {} : { pollMs: opts.pollMs },
    ),
  );
  return { changes, errors };
}

/** A ConfigMap volume as the kubelet lays it out, with `version`'s content. */
function configMap(dir: string, version: string, text: string): string {
  fs.mkdirSync(path.join(dir, `..${version}`));
  fs.writeFileSync(path.join(dir, `..${version}`, 'chaos.yaml'), text);
  fs.symlinkSync(`..${version}`, path.join(dir, '..data'));
  fs.symlinkSync('..data/chaos.yaml', path.join(dir, 'chaos.yaml'));
  return path.join(dir, 'chaos.yaml');
}

/** The kubelet's atomic update: new folder, `..data_tmp` link, renamed over `..data`, old folder removed. */
function swapConfigMap(dir: string, from: string, to: string, text: string): void {
  fs.mkdirSync(path.join(dir, `..${to}`));
  fs.writeFileSync(path.join(dir, `..${to}`, 'chaos.yaml'), text);
  fs.symlinkSync(`..${to}`, path.join(dir, '..data_tmp'));
  fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
  fs.rmSync(path.join(dir, `..${from}`), { recursive: true });
}

describe('watchProfile behind symlinks', () => {
  it('applies an edit of a plain link target (link/p.yaml -> ../real/p.yaml), once', async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'real'));
    fs.mkdirSync(path.join(dir, 'link'));
    fs.writeFileSync(path.join(dir, 'real', 'p.yaml'), profile('one', 501));
    fs.symlinkSync('../real/p.yaml', path.join(dir, 'link', 'p.yaml'));
    const { changes, errors } = watch(path.join(dir, 'link', 'p.yaml'), { pollMs: 100 });
    await sleep(150);
    fs.writeFileSync(path.join(dir, 'real', 'p.yaml'), profile('two', 502));
    await waitFor(() => changes.length === 1, 3000);
    await sleep(400);
    expect(changes.map((p) => p.name)).toEqual(['two']);
    expect(changes[0]?.rules[0]?.fault.status).toBe(502);
    expect(errors).toEqual([]);
  });

  it('applies a ConfigMap ..data swap once, with the default ~1 s poll', async () => {
    const dir = tempDir();
    const file = configMap(dir, '2026_v1', profile('v1', 501));
    const { changes, errors } = watch(file);
    await sleep(150);
    swapConfigMap(dir, '2026_v1', '2026_v2', profile('v2', 502));
    await waitFor(() => changes.length === 1, 3000);
    await sleep(1300); // another poll round: nothing more
    expect(changes.map((p) => p.name)).toEqual(['v2']);
    expect(changes[0]?.rules[0]?.fault.status).toBe(502);
    expect(errors).toEqual([]);
  });

  it('a bad ConfigMap version is reported once and never applied; the next good one is', async () => {
    const dir = tempDir();
    const file = configMap(dir, 'v1', profile('v1', 501));
    const { changes, errors } = watch(file, { pollMs: 100 });
    await sleep(150);
    swapConfigMap(dir, 'v1', 'v2', 'name: v2\nrules:\n  - name: r\n    fault: { type: http-error, status: 99 }\n');
    await waitFor(() => errors.length === 1, 3000);
    await sleep(400);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/status/);
    expect(changes).toEqual([]);
    swapConfigMap(dir, 'v2', 'v3', profile('v3', 503));
    await waitFor(() => changes.length === 1, 3000);
    expect(changes[0]?.name).toBe('v3');
    expect(errors).toHaveLength(1);
  });

  it('a dangling link (the ConfigMap removed) keeps the profile and says so once; a new version applies', async () => {
    const dir = tempDir();
    const file = configMap(dir, 'v1', profile('v1', 501));
    const { changes, errors } = watch(file, { pollMs: 100 });
    await sleep(150);
    fs.rmSync(path.join(dir, '..v1'), { recursive: true });
    await sleep(800);
    expect(changes).toEqual([]);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/was removed; the profile in force stays until the file is back/)]);
    fs.mkdirSync(path.join(dir, '..v1'));
    fs.writeFileSync(path.join(dir, '..v1', 'chaos.yaml'), profile('back', 504));
    await waitFor(() => changes.length === 1, 3000);
    expect(changes[0]?.name).toBe('back');
  });

  it('a profile the receiver refuses (onChange throws) is reported, not taken as applied', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'p.yaml');
    fs.writeFileSync(file, profile('one', 501));
    const { changes, errors } = watch(file, { pollMs: 100, refuse: (p) => p.name === 'two' });
    await sleep(150);
    fs.writeFileSync(file, profile('two', 502));
    await waitFor(() => errors.length === 1, 3000);
    expect(errors[0]?.message).toBe('refused two');
    // The same content again is not re-offered; other content is.
    fs.writeFileSync(file, profile('three', 503));
    await waitFor(() => changes.length === 1, 3000);
    await sleep(300);
    expect(changes.map((p) => p.name)).toEqual(['three']);
    expect(errors).toHaveLength(1);
  });
});
