/**
 * `x-aftershock-fault` is the proxy's own control header (header-triggered faults): it is removed
 * before a WebSocket upgrade is forwarded, as it is from an HTTP request.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestProxy, startWsUpstream } from '../helpers.js';

describe('the control header on a WebSocket upgrade', () => {
  it('does not reach the upstream', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const proxy = await startTestProxy({ target: await startWsUpstream((_ws, req) => seen.push(req.headers)) });
    const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/s', { headers: { 'x-aftershock-fault': 'latency;delay=1ms', 'x-app': 'kept' } });
    await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
    ws.close();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.['x-app']).toBe('kept');
    expect(seen[0]?.['x-aftershock-fault']).toBeUndefined();
  });
});
