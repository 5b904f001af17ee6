/**
 * A log level pino does not know is bad input, not a crash: `run` exits 2 with one line naming the
 * flag or the variable it came from and the levels there are (it printed pino's "default level:verbose
 * must be included in custom levels" with a stack and exited 3, the status of a bug). Real child
 * processes; the library's `createLogger` says the same with a typed error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { isAftershockError } from '../../src/errors.js';
import { request, startUpstream, tempDir } from '../helpers.js';
import { cli, listening, stop } from './cli-process.js';

const LEVELS = 'fatal, error, warn, info, debug, trace, silent';

describe('log level', () => {
  it('a bad --log-level or AFTERSHOCK_LOG_LEVEL exits 2 with one line naming where it came from and the levels, before anything listens', async () => {
    const base = ['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', 'off'];
    const cases: Array<[string[], Record<string, string>, string]> = [
      [[], { AFTERSHOCK_LOG_LEVEL: 'verbose' }, `aftershock: AFTERSHOCK_LOG_LEVEL="verbose": give one of ${LEVELS} (from the environment; flag --log-level)`],
      [['--log-level', 'loud'], {}, `aftershock: --log-level "loud": give one of ${LEVELS}`],
      [['--log-level', ''], {}, `aftershock: --log-level "": give one of ${LEVELS}`],
      // The flag wins over the variable; with workers the primary says it once, before forking.
      [['--log-level', 'loud'], { AFTERSHOCK_LOG_LEVEL: 'warn' }, `aftershock: --log-level "loud": give one of ${LEVELS}`],
      [['--workers', '2'], { AFTERSHOCK_LOG_LEVEL: 'verbose' }, `aftershock: AFTERSHOCK_LOG_LEVEL="verbose": give one of ${LEVELS} (from the environment; flag --log-level)`],
    ];
    const runs = cases.map(([args, env]) => cli([...base, ...args], env));
    for (const [i, r] of runs.entries()) {
      const [args, env, line] = cases[i]!;
      const what = `${JSON.stringify(env)} ${args.join(' ')}`;
      expect(await r.exit, what).toBe(2);
      expect(r.stderr().trim(), what).toBe(line);
    }
  });

  it('a level in capitals or with spaces is read, and AFTERSHOCK_LOG_LEVEL set empty is unset (info)', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const infoLines = await Promise.all(
      [{ AFTERSHOCK_LOG_LEVEL: ' DEBUG ' }, { AFTERSHOCK_LOG_LEVEL: '' }, { AFTERSHOCK_LOG_LEVEL: 'Error' }].map(async (env) => {
        const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--no-summary'], env);
        const { proxy } = await listening(r);
        expect((await request(`${proxy}/x`)).status).toBe(200);
        expect(await stop(r), r.stderr()).toBe(0);
        // (The start line is run's output, in the same format but printed at any level: not counted.)
        return r.stderr().split('\n').filter((l) => l.startsWith('{') && (JSON.parse(l) as { level: number }).level === 30 && (JSON.parse(l) as { listen?: string }).listen === undefined).length;
      }),
    );
    // info and debug log the start and the stop; error does not.
    expect(infoLines.map((n) => n > 0)).toEqual([true, true, false]);
  });

  it('stderr that is no terminal (a container, a pipe) is NDJSON only: the start line and the shutdown summary are JSON lines too', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const r = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const { proxy } = await listening(r);
    expect((await request(`${proxy}/x`)).status).toBe(200);
    expect(await stop(r)).toBe(0);
    const lines = r.stderr().split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as { msg: string; listen?: string; summary?: { verdict: string }; text?: string });
    expect(parsed.find((p) => p.msg.startsWith('proxying '))).toMatchObject({ listen: proxy, control: 'off' });
    const summary = parsed.find((p) => p.summary !== undefined);
    expect(summary).toMatchObject({ msg: 'retry summary: ok', summary: { verdict: 'ok', attempts: 1 } });
    expect(summary?.text).toMatch(/aftershock retry analysis/);
  });

  it('at debug each exchange is one line (an access log), the injected ones saying so; at info none', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const profile = path.join(tempDir(), 'boom.yaml');
    fs.writeFileSync(profile, 'name: boom\nrules:\n  - name: boom\n    match: { path: /boom }\n    fault: { type: http-error, status: 503 }\n');
    const runs = ['debug', 'info'].map((level) =>
      cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off', '--no-summary', '--profile', profile], { AFTERSHOCK_LOG_LEVEL: level }),
    );
    const lines: string[][] = [];
    for (const r of runs) {
      const { proxy } = await listening(r);
      expect((await request(`${proxy}/v1/items?token=s3cr3t`)).status).toBe(200);
      expect((await request(`${proxy}/boom`)).status).toBe(503);
      expect(await stop(r)).toBe(0);
      lines.push(r.stderr().split('\n').filter((l) => l.includes('"id"')));
    }
    const [debug, info] = lines as [string[], string[]];
    expect(info).toEqual([]);
    const parsed = debug.map((l) => JSON.parse(l) as { level: number; msg: string; path: string; status: number; fault?: string });
    expect(parsed.map((p) => [p.level, p.path, p.status])).toEqual([
      [20, '/v1/items', 200],
      [20, '/boom', 503],
    ]);
    expect(parsed[1]?.msg).toBe('GET /boom 503 (injected: boom/http-error)');
    expect(debug.join('\n')).not.toContain('s3cr3t');
  });

  it('what the start logged (the warning about a control API open without a token, the library line) comes before the start line', async () => {
    const r = cli(['run', '--target', 'http://127.0.0.1:9', '--listen', '127.0.0.1:0', '--admin', '0.0.0.0:0', '--no-summary'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    await listening(r);
    expect(await stop(r)).toBe(0);
    const msgs = r
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
    const warning = msgs.findIndex((m) => m.startsWith('THE CONTROL API LISTENS BEYOND LOOPBACK WITHOUT A TOKEN'));
    expect(warning).toBeGreaterThanOrEqual(0);
    const start = msgs.findIndex((m) => m.startsWith('proxying '));
    expect(warning).toBeLessThan(start);
    // Every line the start logged, not only the one being written when the start line came.
    expect(msgs.indexOf('aftershock is proxying')).toBeGreaterThanOrEqual(0);
    expect(msgs.indexOf('aftershock is proxying')).toBeLessThan(start);
  });

  describe('createLogger (library)', () => {
    const saved = process.env.AFTERSHOCK_LOG_LEVEL;
    afterEach(() => {
      if (saved === undefined) delete process.env.AFTERSHOCK_LOG_LEVEL;
      else process.env.AFTERSHOCK_LOG_LEVEL = saved;
    });

    it('throws ERR_BAD_OPTION naming the option or AFTERSHOCK_LOG_LEVEL, never pino\'s own error', () => {
      const thrown = (fn: () => unknown): unknown => {
        try {
          fn();
        } catch (err) {
          return err;
        }
        return null;
      };
      const bad = thrown(() => createLogger({ level: 'verbose', pretty: false }));
      expect(isAftershockError(bad) && bad.code).toBe('ERR_BAD_OPTION');
      expect((bad as Error).message).toBe(`level "verbose": give one of ${LEVELS}`);
      process.env.AFTERSHOCK_LOG_LEVEL = 'loud';
      expect((thrown(() => createLogger({ pretty: false })) as Error).message).toBe(`AFTERSHOCK_LOG_LEVEL="loud": give one of ${LEVELS}`);
      process.env.AFTERSHOCK_LOG_LEVEL = '';
      expect(createLogger({ pretty: false }).level).toBe('info');
      expect(createLogger({ level: 'WARN', pretty: false }).level).toBe('warn');
    });
  });
});

describe('NO_COLOR (no-color.org)', () => {
  it('any non-empty value turns colour off; empty counts as unset', async () => {
    const { colorAllowed } = await import('../../src/log.js');
    expect(colorAllowed({})).toBe(true);
    expect(colorAllowed({ NO_COLOR: '' })).toBe(true);
    expect(colorAllowed({ NO_COLOR: '1' })).toBe(false);
    expect(colorAllowed({ NO_COLOR: 'false' })).toBe(false);
  });
});
