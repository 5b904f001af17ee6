/**
 * AFTERSHOCK_* variables as a container sets them: boolean variables mean what their value says
 * (AFTERSHOCK_INSECURE=false used to turn TLS verification off), and AFTERSHOCK_RECORD=off turns
 * the recording off. Real child processes, real upstreams, real requests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { createProgram } from '../../src/cli/main.js';
import { request, startUpstream, tempDir } from '../helpers.js';
import { cli, listening, stop } from './cli-process.js';

describe('boolean AFTERSHOCK_* variables', () => {
  it('AFTERSHOCK_INSECURE: false, 0, off and empty keep upstream TLS verified; true, 1, yes turn it off; --insecure wins', async () => {
    const up = await startUpstream((_req, res) => res.end('secure-ok'), { tls: true });
    const cases: Array<[string, string[], number]> = [
      ['false', [], 502],
      ['0', [], 502],
      ['OFF', [], 502],
      ['', [], 502],
      ['true', [], 200],
      ['1', [], 200],
      ['yes', [], 200],
      ['false', ['--insecure'], 200],
    ];
    const got = await Promise.all(
      cases.map(async ([value, extra]) => {
        const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--no-summary', ...extra], { AFTERSHOCK_INSECURE: value });
        const { proxy } = await listening(r);
        const reply = await request(`${proxy}/`);
        expect(await stop(r)).toBe(0);
        return reply.status;
      }),
    );
    expect(got).toEqual(cases.map(([, , status]) => status));
  });

  it('negated flags: AFTERSHOCK_NO_LIVE_ANALYSIS and AFTERSHOCK_NO_FAULT_HEADER set to 0/false leave the feature on, 1/yes turn it off', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const profile = path.join(tempDir(), 'boom.yaml');
    fs.writeFileSync(profile, 'name: boom\nrules:\n  - name: boom\n    fault: { type: http-error, status: 503 }\n');
    const probe = async (env: Record<string, string>): Promise<{ report: number; label: string | undefined }> => {
      const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--profile', profile, '--no-summary'], env);
      const { proxy, control } = await listening(r);
      const injected = await request(`${proxy}/x`);
      expect(injected.status).toBe(503);
      const report = (await request(`${control}/report`)).status;
      expect(await stop(r)).toBe(0);
      return { report, label: injected.headers['x-aftershock-fault'] as string | undefined };
    };
    const [off, on] = await Promise.all([
      probe({ AFTERSHOCK_NO_LIVE_ANALYSIS: 'false', AFTERSHOCK_NO_FAULT_HEADER: '0' }),
      probe({ AFTERSHOCK_NO_LIVE_ANALYSIS: '1', AFTERSHOCK_NO_FAULT_HEADER: 'yes' }),
    ]);
    expect(off).toEqual({ report: 200, label: 'boom/http-error' });
    expect(on).toEqual({ report: 409, label: undefined });
  });

  it('a value that is neither on nor off exits 2 with one line naming the variable, before anything listens', async () => {
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off'], { AFTERSHOCK_NO_WATCH: 'maybe' });
    expect(await r.exit).toBe(2);
    const lines = r.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^aftershock: AFTERSHOCK_NO_WATCH="maybe": give true, 1, yes or on .* false, 0, no, off or empty/);
    expect(r.stderr()).not.toContain('proxying');
  });

  describe('every boolean option with a variable, in every command', () => {
    const saved = new Map<string, string | undefined>();
    const setEnv = (name: string, value: string | undefined): void => {
      if (!saved.has(name)) saved.set(name, process.env[name]);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    };
    afterEach(() => {
      for (const [k, v] of saved) setEnv(k, v);
      saved.clear();
    });

    /** The value commander (and the program's hook) gives `key` of the command at `route`, whose action is replaced by a no-op. */
    async function parsedValue(route: string[], key: string): Promise<unknown> {
      const program = createProgram();
      let cmd: Command = program;
      for (const name of route) cmd = cmd.commands.find((c) => c.name() === name) as Command;
      let seen: unknown = 'not run';
      cmd.action(() => {
        seen = cmd.opts()[key];
      });
      await program.parseAsync(['node', 'aftershock', ...route]);
      return seen;
    }

    const booleanEnvOptions = (): Array<{ route: string[]; env: string; key: string }> => {
      const out: Array<{ route: string[]; env: string; key: string }> = [];
      const walk = (cmd: Command, route: string[]): void => {
        for (const o of cmd.options) {
          if (o.envVar !== undefined && !o.required && !o.optional) out.push({ route, env: o.envVar, key: o.attributeName() });
        }
        for (const c of cmd.commands) walk(c, [...route, c.name()]);
      };
      walk(createProgram(), []);
      return out;
    };

    it('off values keep the default, on values turn the flag on', async () => {
      const options = booleanEnvOptions();
      // The ones the README and the image document; a new one is covered without being listed.
      expect(options.map((o) => o.env)).toEqual(
        expect.arrayContaining(['AFTERSHOCK_INSECURE', 'AFTERSHOCK_NO_WATCH', 'AFTERSHOCK_RECORD_MESSAGES', 'AFTERSHOCK_REWRITE_REDIRECTS', 'AFTERSHOCK_NO_FAULT_HEADER', 'AFTERSHOCK_NO_LIVE_ANALYSIS', 'AFTERSHOCK_NO_SUMMARY']),
      );
      for (const { route, env, key } of options) {
        setEnv(env, undefined);
        const unset = await parsedValue(route, key);
        for (const off of ['false', '0', 'no', 'off', '', ' False ']) {
          setEnv(env, off);
          expect(await parsedValue(route, key), `${env}=${JSON.stringify(off)}`).toEqual(unset);
        }
        for (const on of ['true', '1', 'yes', 'on', 'TRUE']) {
          setEnv(env, on);
          expect(await parsedValue(route, key), `${env}=${JSON.stringify(on)}`).toEqual(!(unset === true));
        }
        setEnv(env, undefined);
      }
    });
  });
});

describe('AFTERSHOCK_RECORD / --record off', () => {
  it('off, none and empty record nothing (no file named off), say so, and report no recording path; ./off is a file named off', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const runs = await Promise.all(
      ['off', 'none', '', 'OFF'].map(async (value) => {
        const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--no-summary'], { AFTERSHOCK_RECORD: value }, { cwd: dir });
        const { proxy, control } = await listening(r);
        expect((await request(`${proxy}/x`)).status).toBe(200);
        const ready = JSON.parse((await request(`${control}/readyz`)).text) as { status: string; recording: { path: string | null } };
        expect(await stop(r)).toBe(0);
        return { value, status: ready.status, path: ready.recording.path, said: /recording (\S+)/.exec(r.stderr())?.[1] };
      }),
    );
    for (const run of runs) expect(run, JSON.stringify(run.value)).toMatchObject({ status: 'ready', path: null, said: 'off' });
    expect(fs.readdirSync(dir)).toEqual([]);

    const named = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--no-summary', '--record', './off'], {}, { cwd: dir });
    const { proxy } = await listening(named);
    await request(`${proxy}/y`);
    expect(await stop(named)).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['off']);
    expect(fs.readFileSync(path.join(dir, 'off'), 'utf8')).toContain('"/y"');
  });
});
