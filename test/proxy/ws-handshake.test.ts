/**
 * Upgrade requests the proxy itself refuses. The proxy checks the client's handshake as `ws`
 * checks it, before anything reaches the upstream: the client gets 400 or 405, the upstream sees
 * no connection, the record says `bad-request`, and the proxy goes on serving (a subprotocol list
 * or URL that the `ws` client cannot send once threw out of the upgrade handler and killed it).
 */
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import type { WsRecord } from '../../src/record/schema.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Sends a raw upgrade request; resolves with the status line once the proxy closes the socket. */
function rawUpgrade(port: number, requestLine: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => {
      s.destroy();
    });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(got.split('\r\n')[0] ?? ''));
    const h = { Host: 'x', Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': KEY, ...headers };
    let head = `${requestLine}\r\n`;
    for (const [k, v] of Object.entries(h)) if (v !== '') head += `${k}: ${v}\r\n`;
    s.write(`${head}\r\n`);
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

describe('WebSocket handshakes the proxy refuses', () => {
  it('answers 400/405 without touching the upstream, records bad-request, and keeps serving', async () => {
    let upstreamConnections = 0;
    const upstream = await startWsUpstream((ws) => {
      upstreamConnections++;
      ws.on('message', (d) => ws.send(d.toString()));
    });
    const file = path.join(tempDir(), 'ws.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file });
    const port = proxy.address.port;
    const cases: Array<{ name: string; line: string; headers: Record<string, string>; status: string }> = [
      { name: 'duplicate subprotocol', line: 'GET /a HTTP/1.1', headers: { 'Sec-WebSocket-Protocol': 'chat, chat' }, status: '400' },
      { name: 'subprotocol not a token', line: 'GET /b HTTP/1.1', headers: { 'Sec-WebSocket-Protocol': 'a b' }, status: '400' },
      { name: 'fragment with compression offered', line: 'GET /c#x HTTP/1.1', headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' }, status: '400' },
      { name: 'fragment, raw relay', line: 'GET /d#x HTTP/1.1', headers: {}, status: '400' },
      { name: 'bad key', line: 'GET /e HTTP/1.1', headers: { 'Sec-WebSocket-Key': 'short' }, status: '400' },
      { name: 'no key', line: 'GET /f HTTP/1.1', headers: { 'Sec-WebSocket-Key': '' }, status: '400' },
      { name: 'bad version', line: 'GET /g HTTP/1.1', headers: { 'Sec-WebSocket-Version': '12' }, status: '400' },
      { name: 'POST', line: 'POST /h HTTP/1.1', headers: { 'Content-Length': '0' }, status: '405' },
    ];
    for (const c of cases) {
      const statusLine = await rawUpgrade(port, c.line, c.headers);
      expect(statusLine, c.name).toMatch(new RegExp(`^HTTP/1\\.1 ${c.status} `));
    }
    // Still alive and relaying.
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/ok`);
    onCleanup(() => ws.terminate());
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('still here'));
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
    });
    expect(echoed).toBe('still here');
    expect(upstreamConnections).toBe(1);
    ws.close();
    await waitFor(() => proxy.recorder.count >= cases.length + 1);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    expect(recs).toHaveLength(cases.length + 1);
    const refused = recs.filter((r) => r.path !== '/ok');
    expect(refused).toHaveLength(cases.length);
    for (const r of refused) expect(r).toMatchObject({ outcome: 'bad-request', error: 'bad-request', fault: null });
    expect(refused.map((r) => r.status).sort()).toEqual([...cases.map((c) => Number(c.status))].sort());
  });
});

describe('the upgrade reaches the upstream with its request target as the client sent it', () => {
  it('on the raw relay and the message relay, as an HTTP request does: no dot segments resolved, nothing re-escaped', async () => {
    const seen: string[] = [];
    const upstream = await startWsUpstream((ws, req) => {
      seen.push(req.url ?? '');
      ws.close();
    });
    for (const recordMessages of [false, true]) {
      const proxy = await startTestProxy({ target: upstream, recordMessages });
      for (const target of ['/a/../secret', '/x{y}|z^', '/a\\b?q=1']) {
        // The status line, then the socket is dropped (the test needs only the upstream's view).
        const line = await new Promise<string>((resolve, reject) => {
          const s = net.connect(proxy.address.port, '127.0.0.1');
          let got = '';
          s.on('data', (c: Buffer) => {
            got += c.toString('latin1');
            if (got.includes('\r\n')) {
              resolve(got.split('\r\n')[0] ?? '');
              s.destroy();
            }
          });
          s.on('error', reject);
          s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`);
        });
        expect(line).toBe('HTTP/1.1 101 Switching Protocols');
      }
    }
    await waitFor(() => seen.length === 6);
    expect(seen).toEqual(['/a/../secret', '/x{y}|z^', '/a\\b?q=1', '/a/../secret', '/x{y}|z^', '/a\\b?q=1']);
  });
});
