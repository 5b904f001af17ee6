/**
 * An injected answer whose status has no content (204, 304; 1xx cannot be injected) carries no
 * `Content-Length` (RFC 9110 §8.6: a 204 must not have one), over HTTP and as a WebSocket
 * refusal. Real upstreams on 127.0.0.1:0, raw sockets to read the head as sent.
 */
import { describe, expect, it } from 'vitest';
import { rawExchange, startTestProxy, startUpstream, startWsUpstream } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';

describe('an injected answer whose status has no content', () => {
  it.each([204, 304])('%s carries no Content-Length and no body; the upstream is not called', async (status) => {
    let hits = 0;
    const up = await startUpstream((_req, res) => {
      hits++;
      res.end('ok');
    });
    const proxy = await startTestProxy({
      target: up.url,
      profile: parseProfile(`rules:\n  - name: empty\n    fault: { type: http-error, status: ${status} }`, null),
    });
    const port = Number(new URL(proxy.url).port);
    // Two on one connection: the second is read right after an answer with no framing header.
    const raw = await rawExchange(port, 'GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n', { timeoutMs: 2000 });
    const heads = raw.data.split('\r\n\r\n').filter((h) => h !== '');
    expect(heads).toHaveLength(2);
    for (const head of heads) {
      expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(head).not.toMatch(/\r\ncontent-length:/i);
      expect(head).not.toMatch(/\r\ntransfer-encoding:/i);
      expect(head).toMatch(/\r\nx-aftershock-fault: empty\/http-error/i);
    }
    expect(hits).toBe(0);
  });

  it('a ws-reject with 204 carries no Content-Length either', async () => {
    const upstream = await startWsUpstream(() => undefined);
    const proxy = await startTestProxy({
      target: upstream,
      profile: parseProfile('rules:\n  - name: no\n    fault: { type: ws-reject, status: 204 }', null),
    });
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const raw = await rawExchange(
      Number(new URL(proxy.url).port),
      `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      { timeoutMs: 2000 },
    );
    expect(raw.data).toMatch(/^HTTP\/1\.1 204 /);
    expect(raw.data).not.toMatch(/\r\ncontent-length:/i);
    expect(raw.data.endsWith('\r\n\r\n')).toBe(true);
  });
});
