/**
 * A `ws-close` with `afterMessages: N` relays N messages (both directions counted, the Nth still
 * relayed) and not one more: a burst read in one go, or the upstream's answer to the Nth, used to
 * slip through before the close. Real upstreams on 127.0.0.1:0, real `ws` clients.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { WsMessageRecord, WsRecord } from '../../src/record/schema.js';

function wsConnect(url: string, perMessageDeflate: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate });
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('ws-close afterMessages: N relays exactly N messages', () => {
  it.each([
    ['1006, no compression', 1006, false],
    ['1006, compression', 1006, true],
    ['4000, no compression', 4000, false],
    ['4000, compression', 4000, true],
  ])('%s: a burst of 20 client messages with an echoing upstream: 3 relayed in all, then closed', async (_name, code, deflate) => {
    const upGot: string[] = [];
    const upstream = await startWsUpstream((ws) =>
      ws.on('message', (d: Buffer) => {
        upGot.push(d.toString());
        ws.send(d.toString());
      }),
    );
    const file = path.join(tempDir(), 'wsc.ndjson');
    const proxy = await startTestProxy({
      target: upstream,
      record: file,
      recordMessages: true,
      profile: parseProfile(`rules:\n  - name: cm\n    fault: { type: ws-close, code: ${code}, afterMessages: 3 }`, null),
    });
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/closemsg', deflate);
    const clientGot: string[] = [];
    ws.on('message', (d: Buffer) => clientGot.push(d.toString()));
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    for (let i = 0; i < 20; i++) ws.send('m' + i);
    expect(await closed).toBe(code);
    await waitFor(() => proxy.recorder.count >= 1);
    await new Promise((r) => setTimeout(r, 100)); // anything still relayed would have arrived by now
    await proxy.close();
    // Counting both directions: what reached the upstream plus what reached the client.
    expect(upGot.length + clientGot.length).toBe(3);
    expect(upGot).toEqual(['m0', 'm1', 'm2'].slice(0, upGot.length));
    const all = readRecords(file);
    const rec = all.find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec).toMatchObject({ closedBy: 'proxy', fault: { rule: 'cm', type: 'ws-close', injected: true } });
    // The record counts what each side sent (messages that came after the limit included), and the
    // message records say which of them were relayed.
    const msgs = all.filter((r): r is WsMessageRecord => r.type === 'ws-message');
    expect(msgs.filter((m) => !m.dropped)).toHaveLength(3);
    expect(rec.messagesIn + rec.messagesOut).toBe(msgs.length);
  });

  it('the Nth message, sent to the client, still reaches it before a 1006 drop (compression on)', async () => {
    const upstream = await startWsUpstream((ws) =>
      ws.on('message', (d: Buffer) => {
        ws.send('echo:' + d.toString());
        ws.send('x'.repeat(50_000) + 'last');
      }),
    );
    const proxy = await startTestProxy({
      target: upstream,
      profile: parseProfile('rules:\n  - name: cm\n    fault: { type: ws-close, code: 1006, afterMessages: 3 }', null),
    });
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/', true);
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString().slice(-10)));
    const closed = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send('hi');
    expect(await closed).toBe(1006);
    expect(got).toEqual(['echo:hi', 'x'.repeat(6) + 'last']);
  });
});

describe('ws-close 1006 on a client that does not read', () => {
  it('drops the connection within about a second of its time, without waiting for the relayed messages to drain', async () => {
    const upstream = await startWsUpstream((ws) => {
      const big = Buffer.alloc(1024 * 1024, 0x61);
      const t = setInterval(() => {
        if (ws.bufferedAmount < 8 * 1024 * 1024) ws.send(big);
      }, 5);
      ws.on('close', () => clearInterval(t));
    });
    const file = path.join(tempDir(), 'stuck.ndjson');
    const proxy = await startTestProxy({
      target: upstream,
      record: file,
      profile: parseProfile('rules:\n  - name: cut\n    fault: { type: ws-close, code: 1006, after: 300ms }', null),
    });
    const ws = await wsConnect(proxy.url.replace('http', 'ws') + '/', false);
    ws.on('error', () => undefined);
    ws.pause(); // reads nothing: what the proxy relays piles up in its socket
    const t0 = Date.now();
    await waitFor(() => proxy.recorder.count >= 1, 5000);
    expect(Date.now() - t0).toBeLessThan(2500);
    await proxy.close();
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec).toMatchObject({ closedBy: 'proxy', closeCode: 1006, fault: { rule: 'cut', type: 'ws-close', injected: true } });
  });
});
