/**
 * A reader that leaves early (`aftershock analyze rec.ndjson | head -1`): the command ends
 * quietly with its own status, not a stack trace and status 1 (which CI reads as a gate that held).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { cli, listening } from './cli-process.js';
import { request, startUpstream } from '../helpers.js';

describe('output piped into a reader that leaves early', () => {
  it.each([['json'], ['har'], ['text']])('analyze -f %s ends quietly with its own status', async (format) => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const base = { v: 1, type: 'http', ip: '10.0.0.1', conn: 'c', method: 'GET', query: null, status: 200, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 2, ttfb: 1, duration: 1, fault: null, faults: [], retryAfter: null, bodyHash: null, userAgent: 'ua/1', headers: {}, error: null };
    const lines = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ ...base, id: `r${i}`, ts: 1.7e12 + i, end: 1.7e12 + i + 1, client: `c${i % 300}`, path: `/p/${i}` }));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const run = cli(['analyze', file, '-f', format]);
    run.child.stdout?.once('data', () => run.child.stdout?.destroy());
    expect(await run.exit).toBe(0);
    expect(run.stderr()).not.toMatch(/EPIPE|internal error/);
  });

  it('run keeps serving when its stderr reader goes away, and stops with status 0', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const run = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', 'off'], { AFTERSHOCK_LOG_LEVEL: 'info' });
    const { proxy } = await listening(run);
    run.child.stderr?.destroy();
    for (let i = 0; i < 5; i++) expect((await request(`${proxy}/x${i}`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('a full disk under the output is one line and status 3 (stdout) or 2 (--output), not a stack trace and the status of a held gate', async () => {
    const rec = path.join(import.meta.dirname, '..', 'fixtures', 'analysis', 'polling.ndjson');
    const full = fs.openSync('/dev/full', 'w');
    try {
      for (const format of ['json', 'har']) {
        const r = cli(['analyze', rec, '-f', format, '--fail-on', 'retries>100000'], {}, { stdout: full });
        expect(await r.exit, r.stderr()).toBe(3);
        expect(r.stderr().trim().split('\n')).toEqual(['aftershock: cannot write to standard output: ENOSPC']);
      }
    } finally {
      fs.closeSync(full);
    }
    const har = cli(['analyze', rec, '-f', 'har', '-o', '/dev/full']);
    expect(await har.exit).toBe(2);
    expect(har.stderr()).toMatch(/^aftershock: --output \/dev\/full: cannot write \(ENOSPC/);
  });
});
