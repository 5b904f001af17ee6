/**
 * A closed WebSocket holds no timer: the relay arms a 30 s backstop when it closes one side (for a
 * peer that never answers the close), and it is cleared as soon as that side closes. Left armed,
 * every closed connection kept a timer and its closure (sockets included) for 30 s.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestProxy, startWsUpstream, waitFor } from '../helpers.js';

const armed = new Set<NodeJS.Timeout>();
const realSet = globalThis.setTimeout;
const realClear = globalThis.clearTimeout;

beforeEach(() => {
  armed.clear();
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    const t = realSet(() => {
      armed.delete(t);
      fn();
    }, ms);
    if (ms === 30_000) armed.add(t);
    return t;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((t: NodeJS.Timeout | undefined) => {
    if (t !== undefined) armed.delete(t);
    realClear(t);
  }) as typeof clearTimeout;
});
afterEach(() => {
  globalThis.setTimeout = realSet;
  globalThis.clearTimeout = realClear;
});

/** Opens `n` sockets through the proxy; resolves with a promise of each one's close. */
async function openSockets(proxyUrl: string, n: number, each: (ws: WebSocket, i: number) => void = () => undefined): Promise<Array<Promise<void>>> {
  const closed: Array<Promise<void>> = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(proxyUrl.replace('http', 'ws') + '/s');
    await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
    closed.push(new Promise<void>((r) => ws.once('close', () => r())));
    each(ws, i);
  }
  return closed;
}

describe('WebSocket close backstops', () => {
  it('are cleared when the connection closes, whichever side closes first', async () => {
    let n = 0;
    const target = await startWsUpstream((ws) => {
      // Every other connection is closed by the upstream, the rest by the client.
      if (n++ % 2 === 0) setImmediate(() => ws.close(1000, 'up'));
    });
    const proxy = await startTestProxy({ target });
    const closed = await openSockets(proxy.url, 6, (ws, i) => {
      if (i % 2 === 1) ws.close(1000, 'client');
    });
    await Promise.all(closed);
    await waitFor(() => proxy.stats().inFlight === 0, 5000);
    await new Promise((r) => realSet(r, 100));
    expect(armed.size).toBe(0);
  });

  it('are cleared when the proxy closes open connections at shutdown (1001) and the peers answer', async () => {
    const proxy = await startTestProxy({ target: await startWsUpstream(() => undefined) });
    const closed = await openSockets(proxy.url, 6);
    await proxy.close();
    await Promise.all(closed);
    await new Promise((r) => realSet(r, 200));
    expect(armed.size).toBe(0);
  });
});
