/**
 * Every list-valued `match` key takes a single value as well as a list, as `method: POST` and
 * `path: /x` always did: `status: 503`, `status: 5xx`, `clients: client-7`. Parsed, and matched on
 * the wire through the real proxy; refusals keep one message shape.
 */
import { describe, expect, it } from 'vitest';
import { ProfileError, type ProfileProblem } from '../../src/errors.js';
import { parseProfile } from '../../src/rules/index.js';
import { request, startTestProxy, startUpstream } from '../helpers.js';

function problemsOf(text: string): string[] {
  try {
    parseProfile(text, 'p.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ProfileError);
    return (err as ProfileError).problems.map((p: ProfileProblem) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected a ProfileError');
}

const rule = (match: string, fault = '{ type: reset }'): string => `rules:\n  - { name: r, match: ${match}, fault: ${fault} }\n`;

describe('single values for list-valued match keys', () => {
  it('status: 503, status: 5xx, status: "500-504" and clients: client-7 parse as one-item lists', () => {
    const statusOf = (v: string) => parseProfile(rule(`{ status: ${v} }`, '{ type: lost-response }'), null).rules[0]?.config.match.status;
    expect(statusOf('503')).toEqual([[503, 503]]);
    expect(statusOf('5xx')).toEqual([[500, 599]]);
    expect(statusOf('"500-504"')).toEqual([[500, 504]]);
    expect(statusOf('[503, 4xx]')).toEqual([
      [503, 503],
      [400, 499],
    ]);
    expect(parseProfile(rule('{ clients: client-7 }'), null).rules[0]?.config.match.clients).toEqual(['client-7']);
  });

  it('refusals read alike for every key: one item\'s problem, or "..., or a list of them"', () => {
    expect(problemsOf(rule('{ status: 700 }', '{ type: lost-response }'))).toEqual(['rules[0].match.status: must be a status (503), a class (5xx) or a range (500-504)']);
    expect(problemsOf(rule('{ status: [503, 700] }', '{ type: lost-response }'))).toEqual(['rules[0].match.status[1]: must be a status (503), a class (5xx) or a range (500-504)']);
    expect(problemsOf(rule('{ status: true }', '{ type: lost-response }'))).toEqual(['rules[0].match.status: must be a status (503), a class (5xx) or a range (500-504), or a list of them']);
    expect(problemsOf(rule('{ status: [] }', '{ type: lost-response }'))).toEqual(['rules[0].match.status: must list at least one status']);
    expect(problemsOf(rule('{ clients: 5 }'))).toEqual(['rules[0].match.clients: must be a client key, or a list of them']);
    expect(problemsOf(rule('{ clients: "" }'))).toEqual(['rules[0].match.clients: must not be empty']);
    expect(problemsOf(rule('{ clients: [] }'))).toEqual(['rules[0].match.clients: must list at least one client key']);
    expect(problemsOf(rule('{ method: 5 }'))).toEqual(['rules[0].match.method: must be a method, or a list of them']);
  });

  it('on the wire: clients: client-7 picks that client only; status: 503 acts on upstream 503s only', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(req.url === '/fail' ? 503 : 200, { 'content-length': 10 });
      res.end('0123456789');
    });
    const yaml = [
      'rules:',
      '  - { name: seven, match: { clients: client-7, path: /who }, fault: { type: http-error, status: 418 } }',
      '  - { name: cut, match: { status: 503 }, fault: { type: truncate, after: 2 } }',
    ].join('\n');
    const proxy = await startTestProxy({ target: up.url, profile: parseProfile(yaml, null) });
    expect((await request(`${proxy.url}/who`, { headers: { 'x-client-id': 'client-7' } })).status).toBe(418);
    expect((await request(`${proxy.url}/who`, { headers: { 'x-client-id': 'client-8' } })).status).toBe(200);
    expect((await request(`${proxy.url}/ok`)).text).toBe('0123456789');
    await expect(request(`${proxy.url}/fail`)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
