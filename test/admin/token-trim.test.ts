/**
 * A control API token read from a secret file ends in a newline (a Kubernetes Secret made with
 * --from-file). It is trimmed, as the Authorization header's value is, so clients get in; a token
 * that is only whitespace is refused at start instead of leaving the API open.
 */
import { describe, expect, it } from 'vitest';
import { startProxy } from '../../src/index.js';
import { isAftershockError } from '../../src/errors.js';
import { request, startUpstream } from '../helpers.js';
import { startAdminProxy } from './admin-helpers.js';
import { cli, listening, stop } from '../cli/cli-process.js';

describe('control API token with surrounding whitespace', () => {
  it('a token configured as "tok\\n" lets "Bearer tok" in and still refuses others', async () => {
    const { admin } = await startAdminProxy({ adminToken: 'tok\n' });
    expect((await request(`${admin}/stats`, { headers: { authorization: 'Bearer tok' } })).status).toBe(200);
    expect((await request(`${admin}/stats`, { headers: { authorization: 'Bearer tok2' } })).status).toBe(401);
    expect((await request(`${admin}/stats`)).status).toBe(401);
  });

  it('a token that is empty after trimming is refused with a clear error', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    for (const token of ['', ' \n']) {
      const err = await startProxy({ target: up.url, listen: '127.0.0.1:0', admin: '127.0.0.1:0', adminToken: token }).then(
        (p) => p.close().then(() => null),
        (e: unknown) => e,
      );
      expect(isAftershockError(err) && err.code).toBe('ERR_BAD_OPTION');
      expect((err as Error).message).toMatch(/--admin-token \(AFTERSHOCK_ADMIN_TOKEN\) is empty or only whitespace/);
    }
  });

  it('AFTERSHOCK_ADMIN_TOKEN with a trailing newline: curl-style clients and `ctl` with the same variable get in', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const run = cli(['run', '--target', up.url, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--no-summary'], { AFTERSHOCK_ADMIN_TOKEN: 'tok\n' });
    const { control } = await listening(run);
    expect((await request(`${control}/stats`, { headers: { authorization: 'Bearer tok' } })).status).toBe(200);
    const ctl = cli(['ctl', '--admin', control as string, 'status'], { AFTERSHOCK_ADMIN_TOKEN: 'tok\n' });
    expect(await ctl.exit).toBe(0);
    expect(ctl.stdout()).toMatch(/^control\s+http:\/\/127\.0\.0\.1:\d+\s+ready/m);
    expect(await stop(run)).toBe(0);
  });
});
