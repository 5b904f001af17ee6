/**
 * `aftershock profiles list | show | validate`, in-process through commander with a captured output.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { registerProfilesCommand } from '../../src/cli/profiles.js';
import { listBuiltinProfiles } from '../../src/rules/index.js';

const dirs: string[] = [];
afterEach(() => {
  process.exitCode = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ out: string; exitCode: number }> {
  let out = '';
  const program = new Command('aftershock').exitOverride();
  registerProfilesCommand(program, { write: (t) => void (out += t) });
  process.exitCode = undefined;
  await program.parseAsync(['node', 'aftershock', 'profiles', ...args]);
  const exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = undefined;
  return { out, exitCode };
}

function files(entries: Record<string, string>): Record<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-cli-'));
  dirs.push(dir);
  const out: Record<string, string> = {};
  for (const [name, text] of Object.entries(entries)) {
    out[name] = path.join(dir, name);
    fs.writeFileSync(out[name] as string, text);
  }
  return out;
}

describe('aftershock profiles', () => {
  it('list names every built-in with the first sentence of its description', async () => {
    const { out, exitCode } = await cli('list');
    expect(exitCode).toBe(0);
    for (const name of listBuiltinProfiles()) expect(out).toMatch(new RegExp(`^${name}\\s+\\S`, 'm'));
    expect(out).toMatch(/^flaky\s+A service that fails now and then, the way real ones do:/m);
  });

  it('show prints the YAML and a summary as comments', async () => {
    const { out } = await cli('show', 'signal-2021');
    expect(out).toContain('name: signal-2021');
    expect(out).toContain('# ── summary ──');
    expect(out).toMatch(/^#\s+18s\s+outage \(15s\)/m);
  });

  it('validate prints OK for good files and every problem for bad ones, exit status 1', async () => {
    const f = files({
      'good.yaml': 'name: good\nrules:\n  - fault: { type: reset }\n',
      'bad.yaml': 'name: bad\nrules:\n  - fault: { type: http-error, status: 700 }\n  - fault: { type: nope }\n',
    });
    const ok = await cli('validate', f['good.yaml'] as string);
    expect(ok).toEqual({ out: `${f['good.yaml']}: OK (good, 1 rule, hash ${ok.out.match(/hash (\w+)/)?.[1]})\n`, exitCode: 0 });
    const both = await cli('validate', f['good.yaml'] as string, f['bad.yaml'] as string, '/no/such/file.yaml', 'flaky');
    expect(both.exitCode).toBe(1);
    expect(both.out).toContain(`${f['bad.yaml']}:3 rules[0].fault.status: must be 200-599`);
    expect(both.out).toContain(`${f['bad.yaml']}:4 rules[1].fault.type: unknown fault type "nope"`);
    expect(both.out).toContain('/no/such/file.yaml: no such file');
    expect(both.out).toMatch(/^flaky: OK/m);
    expect(both.out).toContain('2 valid, 2 invalid');
  });
});

describe('profiles validate reads what run reads', () => {
  it("a built-in's name is the built-in even with a file of that name here, and says so", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-cli-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'flaky'), 'name: my-local-flaky\nrules:\n  - fault: { type: reset }\n');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const r = await cli('validate', 'flaky');
      expect(r.out).toMatch(/^flaky: the built-in profile flaky, as --profile flaky runs it \(for the file, give \.\/flaky\)\nflaky: OK \(flaky,/);
      expect((await cli('validate', './flaky')).out).toMatch(/OK \(my-local-flaky/);
    } finally {
      process.chdir(cwd);
    }
  });

  it('a UTF-16 file is told as such; a FIFO or a huge file is refused before it is read', async () => {
    const { execFileSync } = await import('node:child_process');
    const f = files({ 'u16.yaml': '' });
    fs.writeFileSync(f['u16.yaml'] as string, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('name: u16\n', 'utf16le')]));
    expect((await cli('validate', f['u16.yaml'] as string)).out).toMatch(/is UTF-16 text .* save it as UTF-8/);
    const big = path.join(path.dirname(f['u16.yaml'] as string), 'big.yaml');
    fs.closeSync(fs.openSync(big, 'w'));
    fs.truncateSync(big, 700 * 1024 * 1024); // sparse: read whole, it took 1.1 GB of memory
    expect((await cli('validate', big)).out).toMatch(/is larger than 1024 KiB/);
    const fifo = path.join(path.dirname(big), 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const r = await cli('validate', fifo); // read, it waited for a writer for ever
    expect(r.exitCode).toBe(1);
    expect(r.out).toMatch(/not a file/);
  });
});

describe('profiles show', () => {
  it('a JSON profile is shown as JSON that validates again (the summary goes to stderr)', async () => {
    const f = files({ 'p.json': JSON.stringify({ name: 'json-profile', rules: [{ name: 'r', fault: { type: 'reset' } }] }, null, 2) });
    const shown = (await cli('show', f['p.json'] as string)).out;
    expect(shown).not.toMatch(/# ── summary/);
    const copy = files({ 'copy.json': shown });
    expect((await cli('validate', copy['copy.json'] as string)).out).toMatch(/OK \(json-profile/);
  });
});
