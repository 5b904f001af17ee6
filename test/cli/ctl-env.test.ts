/**
 * `aftershock ctl` finds the control API from AFTERSHOCK_ADMIN, the variable the image and the
 * sidecar examples set for `run`, when neither --admin nor AFTERSHOCK_ADMIN_URL is given. Real
 * child processes against a real proxy's control API.
 */
import { describe, expect, it } from 'vitest';
import { adminUrlFromListenEnv } from '../../src/cli/ctl.js';
import { startAdminProxy } from '../admin/admin-helpers.js';
import { cli } from './cli-process.js';

const portOf = (url: string): string => new URL(url).port;

describe('aftershock ctl and AFTERSHOCK_ADMIN', () => {
  it('uses AFTERSHOCK_ADMIN (a wildcard host means loopback) when --admin and AFTERSHOCK_ADMIN_URL are not given; they still win', async () => {
    const { admin } = await startAdminProxy();
    const port = portOf(admin);
    for (const value of [`127.0.0.1:${port}`, `0.0.0.0:${port}`, `:${port}`]) {
      const r = cli(['ctl', 'status'], { AFTERSHOCK_ADMIN: value });
      expect(await r.exit, `${value}: ${r.stderr()}`).toBe(0);
      expect(r.stdout()).toMatch(new RegExp(`^control\\s+http://127\\.0\\.0\\.1:${port}\\s+ready`, 'm'));
    }
    const viaUrl = cli(['ctl', 'status'], { AFTERSHOCK_ADMIN: '127.0.0.1:9', AFTERSHOCK_ADMIN_URL: admin });
    const viaFlag = cli(['ctl', '--admin', admin, 'status'], { AFTERSHOCK_ADMIN: '127.0.0.1:9' });
    expect([await viaUrl.exit, await viaFlag.exit]).toEqual([0, 0]);
  });

  it('AFTERSHOCK_ADMIN=off or a malformed value exits 2 with one line saying what to give', async () => {
    const off = cli(['ctl', 'status'], { AFTERSHOCK_ADMIN: 'off' });
    const bad = cli(['ctl', 'status'], { AFTERSHOCK_ADMIN: 'http://x' });
    expect([await off.exit, await bad.exit]).toEqual([2, 2]);
    expect(off.stderr().trim()).toMatch(/^aftershock: AFTERSHOCK_ADMIN is off: .*give --admin URL/);
    expect(bad.stderr().trim()).toMatch(/^aftershock: AFTERSHOCK_ADMIN="http:\/\/x": write it as HOST:PORT/);
  });

  it('maps listen addresses to URLs', () => {
    expect(adminUrlFromListenEnv('0.0.0.0:8081')).toBe('http://127.0.0.1:8081');
    expect(adminUrlFromListenEnv('[::]:8081')).toBe('http://[::1]:8081');
    expect(adminUrlFromListenEnv('[fd00::5]:8081')).toBe('http://[fd00::5]:8081');
    expect(adminUrlFromListenEnv('aftershock.local:20481')).toBe('http://aftershock.local:20481');
    expect(adminUrlFromListenEnv(undefined)).toBeNull();
    expect(adminUrlFromListenEnv('')).toBeNull();
  });
});
