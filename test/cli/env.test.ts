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
  it('off, none, false and empty record nothing (no file named off), say so, and report no recording path; ./off is a file named off', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const dir = tempDir();
    const runs = await Promise.all(
      ['off', 'none', '', 'OFF', 'False'].map(async (value) => {
        const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--no-summary'], { AFTERSHOCK_RECORD: value }, { cwd: dir });
        const { proxy, control } = await listening(r);
        expect((await request(`${proxy}/x`)).status).toBe(200);
        const ready = JSON.parse((await request(`${control}/readyz`)).text) as { status: string; recording: { path: string | null } };
        expect(await stop(r)).toBe(0);
        return { value, status: ready.status, path: ready.recording.path, said: /recording ([^\s"]+)/.exec(r.stderr())?.[1] };
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

describe('AFTERSHOCK_* value variables', () => {
  const saved = new Map<string, string | undefined>();
  afterEach(() => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    saved.clear();
  });

  /** Every option of every command that takes a value and has a variable, with what it is when nothing is given. */
  async function valueOptions(): Promise<Array<{ route: string[]; env: string; key: string }>> {
    const out: Array<{ route: string[]; env: string; key: string }> = [];
    const walk = (cmd: Command, route: string[]): void => {
      for (const o of cmd.options) if (o.envVar !== undefined && (o.required || o.optional)) out.push({ route, env: o.envVar, key: o.attributeName() });
      for (const c of cmd.commands) walk(c, [...route, c.name()]);
    };
    walk(createProgram(), []);
    return out;
  }

  /** What `key` of the command at `route` holds, and where it came from, when the action runs (the action replaced by a no-op). */
  async function parsed(route: string[], key: string, env: Record<string, string | undefined>): Promise<{ value: unknown; source: string | undefined }> {
    for (const [k, v] of Object.entries(env)) {
      if (!saved.has(k)) saved.set(k, process.env[k]);
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    const program = createProgram();
    let cmd: Command = program;
    for (const name of route) cmd = cmd.commands.find((c) => c.name() === name) as Command;
    let seen: { value: unknown; source: string | undefined } = { value: 'not run', source: undefined };
    cmd.action(() => {
      seen = { value: cmd.opts()[key], source: cmd.getOptionValueSource(key) };
    });
    await program.parseAsync(['node', 'aftershock', ...route]);
    return seen;
  }

  it('an empty variable (or only spaces) is as if it were not set, for every option of every command but AFTERSHOCK_ADMIN_TOKEN', async () => {
    const options = await valueOptions();
    expect(options.map((o) => o.env)).toEqual(
      expect.arrayContaining(['AFTERSHOCK_TARGET', 'AFTERSHOCK_LISTEN', 'AFTERSHOCK_ADMIN', 'AFTERSHOCK_SEED', 'AFTERSHOCK_WORKERS', 'AFTERSHOCK_HOST_HEADER', 'AFTERSHOCK_LOG_LEVEL', 'AFTERSHOCK_ADMIN_URL']),
    );
    for (const { route, env, key } of options) {
      if (env === 'AFTERSHOCK_ADMIN_TOKEN') continue;
      const unset = await parsed(route, key, { [env]: undefined });
      for (const empty of ['', '  ']) expect(await parsed(route, key, { [env]: empty }), `${env}=${JSON.stringify(empty)}`).toEqual(unset);
    }
  });

  it('AFTERSHOCK_ADMIN_TOKEN set empty still stops `run` rather than open the control API without a token', async () => {
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { AFTERSHOCK_ADMIN_TOKEN: '' });
    expect(await r.exit).toBe(2);
    expect(r.stderr().trim()).toMatch(/^aftershock: --admin-token \(AFTERSHOCK_ADMIN_TOKEN\) is empty or only whitespace/);
  });

  it("AFTERSHOCK_SEED= leaves the profile's seed; AFTERSHOCK_TARGET= is a missing target, said as when it is unset", async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const profile = path.join(tempDir(), 'seeded.yaml');
    fs.writeFileSync(profile, 'name: seeded\nseed: 7\nrules: []\n');
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--profile', profile, '--no-summary'], { AFTERSHOCK_SEED: '' });
    const { control } = await listening(r);
    const view = JSON.parse((await request(`${control}/profile`)).text) as { seed: number; profileSeed: number | null };
    expect(await stop(r)).toBe(0);
    expect(view).toMatchObject({ seed: 7, profileSeed: 7 });

    const noTarget = cli(['run', '--listen', '127.0.0.1:0', '--admin', 'off'], { AFTERSHOCK_TARGET: '' });
    expect(await noTarget.exit).toBe(2);
    expect(noTarget.stderr().trim()).toBe('aftershock: missing --target (or AFTERSHOCK_TARGET): the URL of the service to put aftershock in front of');
  });

  it('a bad value from a variable exits 2 with one line naming the variable (and its flag); the same value from the flag names the flag', async () => {
    // --target unless the case is about AFTERSHOCK_TARGET (a flag wins over its variable).
    const base = (env: Record<string, string>): string[] => ['run', ...(env.AFTERSHOCK_TARGET === undefined ? ['--target', 'http://127.0.0.1:9'] : [])];
    const cases: Array<[Record<string, string>, string[], RegExp]> = [
      [{ AFTERSHOCK_LISTEN: 'x' }, ['--admin', 'off'], /^aftershock: AFTERSHOCK_LISTEN="x": write it as HOST:PORT, e\.g\. 127\.0\.0\.1:8080 \(from the environment; flag --listen\)$/],
      [{ AFTERSHOCK_ADMIN: 'x' }, ['--listen', '127.0.0.1:0'], /^aftershock: AFTERSHOCK_ADMIN="x": write it as HOST:PORT.* \(from the environment; flag --admin\)$/],
      [{ AFTERSHOCK_WORKERS: 'x' }, ['--admin', 'off'], /^aftershock: AFTERSHOCK_WORKERS="x": give a whole number from 1 to 64 \(from the environment; flag --workers\)$/],
      [{ AFTERSHOCK_DRAIN_TIMEOUT: 'x' }, ['--admin', 'off'], /^aftershock: AFTERSHOCK_DRAIN_TIMEOUT="x": write a duration like 250ms, 10s or 1m \(from the environment; flag --drain-timeout\)$/],
      [{ AFTERSHOCK_SEED: 'x' }, ['--admin', 'off'], /^aftershock: AFTERSHOCK_SEED="x": give a whole number from 0 to 9007199254740991 \(from the environment; flag --seed\)$/],
      [{ AFTERSHOCK_HOST_HEADER: 'both' }, ['--listen', '127.0.0.1:0', '--admin', 'off'], /^aftershock: AFTERSHOCK_HOST_HEADER="both": give target .* or preserve .* \(from the environment; flag --host-header\)$/],
      [{ AFTERSHOCK_CLIENT_KEY: 'bogus' }, ['--listen', '127.0.0.1:0', '--admin', 'off'], /^aftershock: AFTERSHOCK_CLIENT_KEY="bogus": use header:<name>, ip, ip\+ua or auto \(from the environment; flag --client-key\)$/],
      [{ AFTERSHOCK_UPSTREAM_TIMEOUT: '0' }, ['--listen', '127.0.0.1:0', '--admin', 'off'], /^aftershock: AFTERSHOCK_UPSTREAM_TIMEOUT="0": must be longer than 0 .*\(from the environment; flag --upstream-timeout\)$/],
      [{ AFTERSHOCK_PROFILE: 'nope' }, ['--listen', '127.0.0.1:0', '--admin', 'off'], /^aftershock: AFTERSHOCK_PROFILE="nope": no built-in profile "nope" .* \(from the environment; flag --profile\)$/],
      [{ AFTERSHOCK_TARGET: 'ftp://x' }, ['--admin', 'off'], /^aftershock: AFTERSHOCK_TARGET must be an http:\/\/ or https:\/\/ URL, got ftp:\/\/ \(from the environment; flag --target\)$/],
      // A worker's start failure, printed once by the primary, names the variable too.
      [{ AFTERSHOCK_CLIENT_KEY: 'bogus', AFTERSHOCK_WORKERS: '2' }, ['--listen', '127.0.0.1:0', '--admin', 'off'], /^aftershock: AFTERSHOCK_CLIENT_KEY="bogus": use .* \(from the environment; flag --client-key\)$/],
      // The flag wins over the variable, and its error names the flag.
      [{ AFTERSHOCK_LISTEN: '127.0.0.1:0' }, ['--listen', 'x', '--admin', 'off'], /^aftershock: --listen "x": write it as HOST:PORT, e\.g\. 127\.0\.0\.1:8080$/],
      [{}, ['--listen', '127.0.0.1:0', '--admin', 'off', '--host-header', 'both'], /^aftershock: --host-header "both": give target .* or preserve [^(]*\(send the client's\)$/],
    ];
    const runs = cases.map(([env, args]) => cli([...base(env), ...args], env));
    for (const [i, r] of runs.entries()) {
      const [env, args, message] = cases[i]!;
      const what = `${JSON.stringify(env)} ${args.join(' ')}`;
      expect(await r.exit, what).toBe(2);
      const lines = r.stderr().trim().split('\n');
      expect(lines, what).toHaveLength(1);
      expect(lines[0], what).toMatch(message);
    }
  });

  it('--admin and AFTERSHOCK_ADMIN take off, none and false in any case, as --record does; ctl reads AFTERSHOCK_ADMIN=OFF as off too', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const runs = await Promise.all(
      [
        [{ AFTERSHOCK_ADMIN: 'OFF' }, []],
        [{ AFTERSHOCK_ADMIN: 'none' }, []],
        [{ AFTERSHOCK_ADMIN: 'False' }, []],
        [{}, ['--admin', 'NONE']],
      ].map(async ([env, args]) => {
        const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--no-summary', ...(args as string[])], env as Record<string, string>);
        const { proxy, control } = await listening(r);
        expect((await request(`${proxy}/x`)).status).toBe(200);
        expect(await stop(r)).toBe(0);
        return control;
      }),
    );
    expect(runs).toEqual([null, null, null, null]);
    const ctl = cli(['ctl', 'status'], { AFTERSHOCK_ADMIN: 'OFF' });
    expect(await ctl.exit).toBe(2);
    expect(ctl.stderr().trim()).toMatch(/^aftershock: AFTERSHOCK_ADMIN is off: /);
  });
});
