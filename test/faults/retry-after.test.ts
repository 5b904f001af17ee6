/**
 * `retryAfter` counts as the Retry-After header does: a bare number (or a numeric string) is
 * seconds, a duration with a unit is rounded up to whole seconds, an HTTP-date is sent as written.
 * For every fault that takes it (http-error, capacity, ws-reject), on the wire through the real
 * proxy.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rawExchange, request, startTestProxy, startUpstream } from '../helpers.js';
import { isHttpDate } from '../../src/faults/lib/schema.js';
import { parseProfile } from '../../src/rules/index.js';
import { ProfileError } from '../../src/errors.js';

const DATE = 'Wed, 21 Oct 2026 07:28:00 GMT';

const upgrade = (p: string): string =>
  `GET ${p} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

describe('retryAfter', () => {
  it('http-error: 2 and "120" are seconds; 2s, 1500ms and 2.5 round up to whole seconds; an HTTP-date is sent as written', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const cases: Array<[string, string]> = [
      ['2', '2'],
      ['"120"', '120'],
      ['2s', '2'],
      ['1500ms', '2'],
      ['2.5', '3'],
      [`"${DATE}"`, DATE],
    ];
    const yaml = ['rules:', ...cases.map(([v], i) => `  - { name: r${i}, match: { path: /r${i} }, fault: { type: http-error, status: 503, retryAfter: ${v} } }`)].join('\n');
    const proxy = await startTestProxy({ target: up.url, profile: parseProfile(yaml, null) });
    const got: string[] = [];
    for (let i = 0; i < cases.length; i++) {
      const r = await request(`${proxy.url}/r${i}`);
      expect(r.status).toBe(503);
      got.push(r.headers['retry-after'] as string);
    }
    expect(got).toEqual(cases.map(([, header]) => header));
  });

  it('capacity and ws-reject read a bare number as seconds too', async () => {
    const up = await startUpstream((req, res) => setTimeout(() => res.end('ok'), req.url === '/cap' ? 300 : 0));
    const yaml = [
      'rules:',
      '  - { name: cap, match: { path: /cap }, fault: { type: capacity, concurrency: 1, retryAfter: 7 } }',
      '  - { name: shed, match: { path: /ws }, fault: { type: ws-reject, status: 503, retryAfter: "4" } }',
    ].join('\n');
    const proxy = await startTestProxy({ target: up.url, profile: parseProfile(yaml, null) });
    const [a, b] = await Promise.all([request(`${proxy.url}/cap`), new Promise((r) => setTimeout(r, 50)).then(() => request(`${proxy.url}/cap`))]);
    expect([a.status, b.status]).toEqual([200, 503]);
    expect(b.headers['retry-after']).toBe('7');
    const refused = await rawExchange(Number(new URL(proxy.url).port), upgrade('/ws'));
    expect(refused.data).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused.data).toMatch(/\r\nretry-after: 4\r\n/i);
  });

  it('refuses what is not seconds, a duration or an HTTP-date, or is over a day, with one message', () => {
    for (const v of ['-1', 'soon', '86401', '"Tomorrow"']) {
      let err: unknown = null;
      try {
        parseProfile(`rules:\n  - fault: { type: http-error, retryAfter: ${v} }\n`, 'p.yaml');
      } catch (e) {
        err = e;
      }
      expect(err, v).toBeInstanceOf(ProfileError);
      expect((err as ProfileError).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
        'rules[0].fault.retryAfter: must be seconds (2), a duration like 2s or 1500ms (sent as whole seconds, rounded up) or an HTTP-date like "Wed, 21 Oct 2026 07:28:00 GMT"',
      ]);
    }
  });

  it("an HTTP-date must be a real IMF-fixdate: its weekday that date's, the day in the month, the time on a clock", () => {
    expect(isHttpDate(DATE)).toBe(true);
    expect(isHttpDate('Tue, 29 Feb 2028 23:59:59 GMT')).toBe(true);
    // 21 Oct 2026 is a Wednesday: Date.parse ignores the weekday, a client may not.
    expect(isHttpDate('Mon, 21 Oct 2026 07:28:00 GMT')).toBe(false);
    // Date.parse rolls these over to another day.
    expect(isHttpDate('Tue, 31 Feb 2026 07:28:00 GMT')).toBe(false);
    expect(isHttpDate('Thu, 29 Feb 2026 07:28:00 GMT')).toBe(false);
    expect(isHttpDate('Wed, 21 Oct 2026 24:00:00 GMT')).toBe(false);
    expect(isHttpDate('Wed, 21 Oct 2026 07:60:00 GMT')).toBe(false);
    // Every date Node writes as an HTTP-date is one; the same date with any other weekday is not.
    const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_000 }), fc.integer({ min: 1, max: 6 }), (ms, shift) => {
        const d = new Date(ms).toUTCString();
        expect(isHttpDate(d)).toBe(true);
        const other = days[(days.indexOf(d.slice(0, 3)) + shift) % 7] as string;
        expect(isHttpDate(other + d.slice(3))).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('a retryAfter date with the wrong weekday is refused, saying which day it is', () => {
    let err: unknown = null;
    try {
      parseProfile('rules:\n  - fault: { type: http-error, retryAfter: "Mon, 21 Oct 2026 07:28:00 GMT" }\n', 'p.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as ProfileError).problems.map((p) => `${p.line} ${p.path}: ${p.message}`)).toEqual([
      '2 rules[0].fault.retryAfter: "Mon, 21 Oct 2026 07:28:00 GMT" is not an HTTP-date: 21 Oct 2026 is a Wednesday (Wed, 21 Oct 2026 07:28:00 GMT)',
    ]);
  });
});
