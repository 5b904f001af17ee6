/**
 * What `--record-messages` says about a message a ws-delay holds: the record is written when the
 * message goes out or is dropped, never while it is held. A held message that never reaches its
 * receiver (the proxy shuts down, or the connection ends first) once read `dropped: false`; it is
 * `dropped: true`, recorded once, before its connection's record. Real upstreams on 127.0.0.1:0,
 * real `ws` clients.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor, wsClient } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { AnyRecord, WsMessageRecord, WsRecord } from '../../src/record/schema.js';
import type { ProxyOptions } from '../../src/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


/** An upstream that echoes every message and tells when one arrived. */
async function echoUpstream(): Promise<{ url: string; got: string[] }> {
  const got: string[] = [];
  const url = await startWsUpstream((ws) => {
    ws.on('error', () => undefined);
    ws.on('message', (d: Buffer) => {
      got.push(d.toString());
      ws.send(d.toString());
    });
  });
  return { url, got };
}

/** An echo upstream behind a proxy that records messages under `profile`, and a client on `pathname`. */
async function heldSetup(profile: string, pathname: string, extra: Partial<ProxyOptions> = {}) {
  const up = await echoUpstream();
  const file = path.join(tempDir(), 'rec.ndjson');
  const proxy = await startTestProxy({ target: up.url, record: file, recordMessages: true, profile: parseProfile(profile, null), ...extra });
  const ws = await wsClient(proxy.url.replace('http', 'ws') + pathname);
  return { up, file, proxy, ws };
}

/** The connection's message records and its `ws` record, with their places in the file. */
function split(all: AnyRecord[]): { msgs: WsMessageRecord[]; ws: WsRecord; lastMsgAt: number; wsAt: number } {
  const msgs = all.filter((r): r is WsMessageRecord => r.type === 'ws-message');
  const ws = all.filter((r): r is WsRecord => r.type === 'ws');
  expect(ws).toHaveLength(1);
  let lastMsgAt = -1;
  all.forEach((r, i) => {
    if (r.type === 'ws-message') lastMsgAt = i;
  });
  return { msgs, ws: ws[0] as WsRecord, lastMsgAt, wsAt: all.findIndex((r) => r.type === 'ws') };
}

describe('--record-messages and messages a ws-delay holds', () => {
  it('at shutdown a held message is dropped and recorded dropped, once, before the connection record', async () => {
    const { up, file, proxy, ws } = await heldSetup('rules:\n  - name: slow-out\n    fault: { type: ws-delay, delay: 5s, direction: out }', '/held', { drainTimeout: '2s' });
    let received = 0;
    ws.on('message', () => received++);
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send('hello');
    await waitFor(() => up.got.length === 1);
    await sleep(100); // the echo is now held by the proxy
    await proxy.close();
    expect(await closed).toBe(1001);
    expect(received).toBe(0);
    const { msgs, ws: rec, lastMsgAt, wsAt } = split(readRecords(file));
    expect(msgs.map((m) => ({ dir: m.dir, dropped: m.dropped }))).toEqual([
      { dir: 'in', dropped: false },
      { dir: 'out', dropped: true },
    ]);
    expect(msgs[0]?.delayed).toBeNull();
    expect(lastMsgAt).toBeLessThan(wsAt);
    // The counts are the messages each side sent, dropped ones included: one record each.
    expect(rec).toMatchObject({ outcome: 'shutdown', messagesIn: 1, messagesOut: 1, closeCode: 1001 });
  });

  it('a ws-close 1006 during the delay drops the held message: recorded dropped, once, and the record is not held back', async () => {
    const { up, file, proxy, ws } = await heldSetup('rules:\n  - name: slow-out\n    fault: { type: ws-delay, delay: 5s, direction: out }\n  - name: cut\n    fault: { type: ws-close, code: 1006, after: 400ms }', '/cut');
    let received = 0;
    ws.on('message', () => received++);
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send('hello');
    expect(await closed).toBe(1006);
    // Two message records and the connection's (the recorder counts every record).
    await waitFor(() => proxy.recorder.count >= 3, 3000);
    await proxy.close();
    expect(received).toBe(0);
    const { msgs, ws: rec, lastMsgAt, wsAt } = split(readRecords(file));
    expect(msgs.map((m) => ({ dir: m.dir, dropped: m.dropped }))).toEqual([
      { dir: 'in', dropped: false },
      { dir: 'out', dropped: true },
    ]);
    expect(lastMsgAt).toBeLessThan(wsAt);
    expect(rec).toMatchObject({ closedBy: 'proxy', closeCode: 1006, messagesIn: 1, messagesOut: 1 });
  });

  it('a ws-close 1006 while a message to the upstream is held: dropped (the upstream is closed with it), recorded at once', async () => {
    const { up, file, proxy, ws } = await heldSetup('rules:\n  - name: slow-in\n    fault: { type: ws-delay, delay: 3s, direction: in }\n  - name: cut\n    fault: { type: ws-close, code: 1006, after: 300ms }', '/cut-in');
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send('hello');
    expect(await closed).toBe(1006);
    const t0 = Date.now();
    await waitFor(() => proxy.recorder.count >= 2, 5000);
    expect(Date.now() - t0).toBeLessThan(1500); // not when the 3 s delay would have ended
    await proxy.close();
    expect(up.got).toEqual([]);
    const { msgs, ws: rec, lastMsgAt, wsAt } = split(readRecords(file));
    expect(msgs.map((m) => ({ dir: m.dir, dropped: m.dropped, delayed: m.delayed }))).toEqual([{ dir: 'in', dropped: true, delayed: 3000 }]);
    expect(lastMsgAt).toBeLessThan(wsAt);
    expect(rec).toMatchObject({ closedBy: 'proxy', closeCode: 1006, messagesIn: 1, messagesOut: 0 });
  });

  it('the client leaving while a message is held: the message is recorded dropped', async () => {
    const { up, file, proxy, ws } = await heldSetup('rules:\n  - name: slow-out\n    fault: { type: ws-delay, delay: 5s, direction: out }', '/left');
    ws.send('hello');
    await waitFor(() => up.got.length === 1);
    await sleep(100);
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 3, 3000);
    await proxy.close();
    const { msgs, ws: rec, lastMsgAt, wsAt } = split(readRecords(file));
    expect(msgs.filter((m) => m.dir === 'out').map((m) => m.dropped)).toEqual([true]);
    expect(lastMsgAt).toBeLessThan(wsAt);
    expect(rec).toMatchObject({ closedBy: 'client', closeCode: 1000, messagesIn: 1, messagesOut: 1 });
  });

  it('held messages that go out are recorded once each, not dropped, with their delay, in order, before the connection record', async () => {
    const { up, file, proxy, ws } = await heldSetup('rules:\n  - name: slow-out\n    fault: { type: ws-delay, delay: 150ms, direction: out }', '/ok');
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    ws.send('a');
    ws.send('bb');
    ws.send('ccc');
    await waitFor(() => got.length === 3);
    expect(got).toEqual(['a', 'bb', 'ccc']);
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 7, 3000);
    await proxy.close();
    const { msgs, ws: rec, lastMsgAt, wsAt } = split(readRecords(file));
    const out = msgs.filter((m) => m.dir === 'out');
    expect(out.map((m) => [m.bytes, m.dropped, m.delayed])).toEqual([
      [1, false, 150],
      [2, false, 150],
      [3, false, 150],
    ]);
    expect(msgs.filter((m) => m.dir === 'in').map((m) => [m.bytes, m.dropped, m.delayed])).toEqual([
      [1, false, null],
      [2, false, null],
      [3, false, null],
    ]);
    expect(lastMsgAt).toBeLessThan(wsAt);
    expect(rec).toMatchObject({ messagesIn: 3, messagesOut: 3 });
  });

  it('a message held behind an earlier, longer delay is recorded with how long it was held, not the delay it drew', async () => {
    // The first message draws 300 ms, the next ones 0-60 ms: order is kept, so they leave with the first.
    const { file, proxy, ws } = await heldSetup('seed: 4\nrules:\n  - name: jittery\n    fault: { type: ws-delay, delay: 180ms, jitter: 150ms, direction: out }', '/ok');
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    for (let i = 0; i < 10; i++) ws.send(`m${i}`);
    await waitFor(() => got.length === 10, 3000);
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 21, 3000);
    await proxy.close();
    const out = split(readRecords(file)).msgs.filter((m) => m.dir === 'out');
    expect(out).toHaveLength(10);
    // Each leaves no earlier than the one ahead of it, and its record says so: arrival plus recorded
    // hold never falls along the queue.
    for (let i = 1; i < out.length; i++) {
      const prev = out[i - 1] as { ts: number; delayed: number };
      const cur = out[i] as { ts: number; delayed: number };
      expect(cur.ts + cur.delayed).toBeGreaterThanOrEqual(prev.ts + prev.delayed - 0.01);
    }
    expect(out.every((m) => (m.delayed as number) >= 30 && (m.delayed as number) <= 400)).toBe(true);
  });
});
