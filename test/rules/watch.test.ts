/**
 * Hot reload with real files in a temp dir and the real fs.watch: a good change is applied, a bad
 * one is reported and leaves the old profile, an editor-style replace (write temp, rename) works,
 * and a save without a content change does nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProfileError } from '../../src/errors.js';
import { watchProfile, type CompiledProfile, type ProfileWatcher } from '../../src/rules/index.js';

const dirs: string[] = [];
const watchers: ProfileWatcher[] = [];
afterEach(() => {
  for (const w of watchers.splice(0)) w.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(initial: string): { file: string; changes: CompiledProfile[]; errors: Error[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-watch-'));
  dirs.push(dir);
  const file = path.join(dir, 'chaos.yaml');
  fs.writeFileSync(file, initial);
  const changes: CompiledProfile[] = [];
  const errors: Error[] = [];
  watchers.push(watchProfile(file, (p) => changes.push(p), (e) => errors.push(e)));
  return { file, changes, errors };
}

async function until(pred: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const GOOD = 'name: one\nrules:\n  - name: r\n    fault: { type: http-error, status: 503 }\n';

describe('watchProfile', () => {
  it('a folder it cannot watch (here: not there yet) is no crash: it says so and the poll still applies the file once it comes', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-watch-'));
    dirs.push(root);
    const file = path.join(root, 'later', 'chaos.yaml');
    const changes: CompiledProfile[] = [];
    const pollOnly: Error[] = [];
    let w: ProfileWatcher | undefined;
    expect(() => {
      w = watchProfile(file, (p) => changes.push(p), () => undefined, { pollMs: 50, debounceMs: 20, onPollOnly: (e) => pollOnly.push(e) });
    }).not.toThrow();
    watchers.push(w as ProfileWatcher);
    expect(pollOnly.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOENT']);
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, GOOD);
    await until(() => changes.length === 1);
    expect(changes[0]?.name).toBe('one');
  });

  it('applies a valid change once, debounced', async () => {
    const { file, changes, errors } = setup(GOOD);
    await new Promise((r) => setTimeout(r, 50));
    const next = GOOD.replace('503', '502').replace('one', 'two');
    // Several writes in quick succession: one reload.
    fs.writeFileSync(file, next.slice(0, 10));
    fs.writeFileSync(file, next);
    await until(() => changes.length === 1);
    await new Promise((r) => setTimeout(r, 250));
    expect(changes).toHaveLength(1);
    expect(changes[0]?.name).toBe('two');
    expect(changes[0]?.rules[0]?.fault.status).toBe(502);
    expect(changes[0]?.source).toBe(file);
    expect(errors).toEqual([]);
  });

  it('reports an invalid file with every problem and keeps the good profile', async () => {
    const { file, changes, errors } = setup(GOOD);
    await new Promise((r) => setTimeout(r, 50));
    fs.writeFileSync(file, GOOD.replace('503', '700'));
    await until(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(ProfileError);
    expect((errors[0] as ProfileError).problems[0]).toMatchObject({ file, line: 4, path: 'rules[0].fault.status' });
    expect(changes).toEqual([]);
    // Back to the content in force: nothing to apply; then a real change is applied.
    fs.writeFileSync(file, GOOD);
    await new Promise((r) => setTimeout(r, 250));
    expect(changes).toEqual([]);
    fs.writeFileSync(file, GOOD.replace('503', '504'));
    await until(() => changes.length === 1);
    expect(changes[0]?.rules[0]?.fault.status).toBe(504);
    expect(errors).toHaveLength(1);
  });

  it('follows an editor-style replace (write a temp file, rename it over) and ignores saves without changes', async () => {
    const { file, changes, errors } = setup(GOOD);
    await new Promise((r) => setTimeout(r, 50));
    fs.writeFileSync(file, GOOD); // same content
    await new Promise((r) => setTimeout(r, 250));
    expect(changes).toEqual([]);
    const tmp = file + '.swp';
    fs.writeFileSync(tmp, GOOD.replace('one', 'renamed'));
    fs.renameSync(tmp, file);
    await until(() => changes.length === 1);
    expect(changes[0]?.name).toBe('renamed');
    expect(errors).toEqual([]);
  });

  it('stops calling back after close', async () => {
    const { file, changes } = setup(GOOD);
    (watchers.pop() as ProfileWatcher).close();
    fs.writeFileSync(file, GOOD.replace('one', 'after-close'));
    await new Promise((r) => setTimeout(r, 300));
    expect(changes).toEqual([]);
  });
});

describe('a watched file that cannot be a profile', () => {
  it('too large, or UTF-16: refused once, not again at every poll, and the profile in force stays', async () => {
    const { file, changes, errors } = setup(GOOD);
    fs.writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(GOOD, 'utf16le')]));
    await until(() => errors.length > 0);
    await new Promise((r) => setTimeout(r, 1500)); // past the change event and a poll or two
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ProfileError);
    expect(errors[0]?.message).toMatch(/UTF-16/);
    expect(changes).toHaveLength(0);
  });
});
