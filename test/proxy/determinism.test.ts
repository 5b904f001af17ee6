/**
 * Same seed, same sequence of requests, same faults — whatever the upstream's timing. Draws made
 * after the decision (a corrupt's positions when the response arrives, a ws-drop per message)
 * come from the exchange's own stream, so they cannot shift the decisions of other requests, and
 * their own results do not depend on when the other requests came.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { parseProfile } from '../../src/rules/index.js';
import { onCleanup, request, startTestProxy, startUpstream, waitFor } from '../helpers.js';

const HTTP_PROFILE = `
name: det
seed: 5
rules:
  - name: corr
    match: { path: /slow }
    fault: { type: corrupt, count: 4 }
  - name: lat
    match: { path: /slow }
    fault: { type: latency, at: response, distribution: uniform, min: 1ms, max: 5ms }
  - name: coin
    match: { path: /fast/** }
    probability: 0.5
    fault: { type: http-error, status: 503 }
`;

const WS_PROFILE = `
name: det-ws
seed: 5
rules:
  - name: drop
    fault: { type: ws-drop, fraction: 0.5, direction: in }
  - name: coin
    match: { path: /fast/** }
    probability: 0.5
    fault: { type: http-error, status: 503 }
`;

const BODY = Buffer.alloc(256, 0x61);

/** One /slow request answered after `delayMs`, then 12 /fast requests one after the other. */
async function httpRun(delayMs: number): Promise<{ slow: string; fast: string }> {
  let slowSeen = false;
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/slow') {
      slowSeen = true;
      setTimeout(() => res.end(BODY), delayMs);
      return;
    }
    res.end('ok');
  });
  const proxy = await startTestProxy({ target: upstream.url, profile: parseProfile(HTTP_PROFILE, null) });
  const slow = request(`${proxy.url}/slow`);
  // The /slow request was decided before it reached the upstream: it is the first request.
  await waitFor(() => slowSeen);
  let fast = '';
  for (let i = 0; i < 12; i++) fast += (await request(`${proxy.url}/fast/${i}`)).status === 503 ? 'E' : '.';
  const body = (await slow).body;
  return { slow: createHash('sha256').update(body).digest('hex').slice(0, 12), fast };
}

function connect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** A WebSocket opened first, then 20 messages either before or after 12 /fast requests. */
async function wsRun(messagesFirst: boolean): Promise<{ arrived: string; fast: string }> {
  const arrived: string[] = [];
  // One upstream for both: HTTP requests are answered 200, WebSocket messages collected.
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const wss = new WebSocketServer({ server: upstream.server });
  onCleanup(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  wss.on('connection', (ws) => ws.on('message', (d: Buffer) => arrived.push(d.toString())));
  const proxy = await startTestProxy({ target: upstream.url, profile: parseProfile(WS_PROFILE, null) });
  const ws = await connect(proxy.url.replace('http', 'ws') + '/socket');
  const messages = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) ws.send(`m${i}`);
    // A ping goes through the relay behind the messages: its pong means all 20 were handled.
    await new Promise<void>((r) => {
      ws.once('pong', () => r());
      ws.ping();
    });
  };
  let fast = '';
  const requests = async (): Promise<void> => {
    const agent = new http.Agent({ keepAlive: false });
    onCleanup(() => agent.destroy());
    for (let i = 0; i < 12; i++) fast += (await request(`${proxy.url}/fast/${i}`, { agent })).status === 503 ? 'E' : '.';
  };
  if (messagesFirst) {
    await messages();
    await requests();
  } else {
    await requests();
    await messages();
  }
  return { arrived: arrived.join(','), fast };
}

/**
 * ws-drop both ways: the upstream sends 20 messages at the client's first ping, the client sends
 * 20 of its own, one direction's messages all before the other's (`inFirst`) or after.
 */
async function wsBothWays(inFirst: boolean): Promise<{ atUpstream: string; atClient: string }> {
  const atUpstream: string[] = [];
  const atClient: string[] = [];
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const wss = new WebSocketServer({ server: upstream.server });
  onCleanup(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  wss.on('connection', (ws) => {
    ws.on('message', (d: Buffer) => atUpstream.push(d.toString()));
    ws.once('ping', () => {
      for (let i = 0; i < 20; i++) ws.send(`o${i}`);
    });
  });
  const proxy = await startTestProxy({ target: upstream.url, profile: parseProfile(BOTH_WAYS, null) });
  const ws = await connect(proxy.url.replace('http', 'ws') + '/socket');
  ws.on('message', (d: Buffer) => atClient.push(d.toString()));
  const roundTrip = (): Promise<void> =>
    new Promise<void>((r) => {
      ws.once('pong', () => r());
      ws.ping();
    });
  const send = async (): Promise<void> => {
    for (let i = 0; i < 20; i++) ws.send(`i${i}`);
    await roundTrip();
  };
  // The first ping asks the upstream for its messages (its pong goes out before them); the second
  // one's pong comes back behind them.
  const receive = async (): Promise<void> => {
    await roundTrip();
    await roundTrip();
  };
  if (inFirst) {
    await send();
    await receive();
  } else {
    await receive();
    await send();
  }
  return { atUpstream: atUpstream.join(','), atClient: atClient.join(',') };
}

const BOTH_WAYS = `
name: both-ways
seed: 11
rules:
  - name: drop
    fault: { type: ws-drop, fraction: 0.5 }
`;

describe('determinism does not depend on timing', () => {
  it('a corrupt whose response comes late changes neither the later requests\' faults nor its own flips', async () => {
    const quick = await httpRun(0);
    const late = await httpRun(150);
    expect(late.fast).toBe(quick.fast);
    expect(late.slow).toBe(quick.slow);
    expect(quick.slow).not.toBe(createHash('sha256').update(BODY).digest('hex').slice(0, 12));
    // Not a constant pattern: the coin really drew.
    expect(quick.fast).toMatch(/E/);
    expect(quick.fast).toMatch(/\./);
  });

  it('WebSocket messages dropped before or after other requests: the same requests fail, the same messages are dropped', async () => {
    const a = await wsRun(true);
    const b = await wsRun(false);
    expect(b.fast).toBe(a.fast);
    expect(b.arrived).toBe(a.arrived);
    expect(a.arrived.split(',').length).toBeLessThan(20);
    expect(a.arrived.split(',').length).toBeGreaterThan(0);
  });

  it('ws-drop both ways: which messages go in one direction does not depend on the other direction\'s', async () => {
    const a = await wsBothWays(true);
    const b = await wsBothWays(false);
    expect(b.atUpstream).toBe(a.atUpstream);
    expect(b.atClient).toBe(a.atClient);
    for (const got of [a.atUpstream, a.atClient]) {
      expect(got.split(',').length).toBeLessThan(20);
      expect(got.split(',').length).toBeGreaterThan(0);
    }
  });
});
