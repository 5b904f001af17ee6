import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import type { WsRecord } from '../../src/record/schema.js';

function connect(url: string, protocols: string[] = [], opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, opts);
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('WebSocket proxy', () => {
  it('relays text and binary messages both ways with the negotiated subprotocol', async () => {
    const upstream = await startWsUpstream(
      (ws) => {
        ws.on('message', (data, binary) => ws.send(data, { binary }));
      },
      { protocols: ['chat.v2'] },
    );
    const proxy = await startTestProxy({ target: upstream });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/socket', ['chat.v1', 'chat.v2']);
    expect(ws.protocol).toBe('chat.v2');
    const got: Array<{ data: Buffer; binary: boolean }> = [];
    ws.on('message', (data: Buffer, binary) => got.push({ data, binary }));
    ws.send('hello');
    ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    await waitFor(() => got.length === 2);
    expect(got[0]).toMatchObject({ binary: false });
    expect(got[0]!.data.toString()).toBe('hello');
    expect(got[1]!.binary).toBe(true);
    expect([...got[1]!.data]).toEqual([0, 1, 2, 255]);
  });

  it('mirrors close codes and reasons from the upstream and from the client, and records one record per connection', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'ws.ndjson');
    const closes: Array<{ code: number; reason: string }> = [];
    const upstream = await startWsUpstream((ws) => {
      ws.on('message', (d) => {
        if (d.toString() === 'bye') ws.close(4001, 'server says bye');
      });
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    });
    const proxy = await startTestProxy({ target: upstream, record: file });
    const url = proxy.url.replace('http', 'ws') + '/s';

    const a = await connect(url);
    const aClosed = new Promise<{ code: number; reason: string }>((r) => a.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    a.send('bye');
    expect(await aClosed).toEqual({ code: 4001, reason: 'server says bye' });

    const b = await connect(url);
    b.close(4002, 'client leaves');
    await waitFor(() => closes.some((c) => c.code === 4002));
    expect(closes.find((c) => c.code === 4002)?.reason).toBe('client leaves');

    await waitFor(() => proxy.recorder.count >= 2);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    expect(recs).toHaveLength(2);
    const first = recs.find((r) => r.closeCode === 4001) as WsRecord;
    // (Compression was negotiated end to end and the bytes relayed raw: bytesIn counts the
    // compressed payload of 'bye' as it crossed the wire, not its 3 bytes.)
    expect(first).toMatchObject({ status: 101, closedBy: 'upstream', messagesIn: 1, closeReason: 'server says bye' });
    expect(first.bytesIn).toBeGreaterThan(0);
    expect(recs.find((r) => r.closeCode === 4002)).toMatchObject({ closedBy: 'client' });
    // The same keys as an http record carries: ttfb is the time to the 101, an upgrade has no body.
    for (const r of recs) {
      expect(r.ttfb).toBeGreaterThanOrEqual(0);
      expect(r.ttfb).toBeLessThanOrEqual(r.duration);
      expect(r).toHaveProperty('bodyHash', null);
      expect(r).toHaveProperty('upstreamStatus', null);
    }
  });

  it('relays pings and pongs', async () => {
    let upstreamGotPing = false;
    const upstream = await startWsUpstream((ws) => {
      ws.on('ping', () => {
        upstreamGotPing = true;
      });
    });
    const proxy = await startTestProxy({ target: upstream });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/p');
    const pong = new Promise<string>((r) => ws.once('pong', (d: Buffer) => r(d.toString())));
    ws.ping('are-you-there');
    expect(await pong).toBe('are-you-there');
    expect(upstreamGotPing).toBe(true);
  });

  it("passes the upstream's refusal of the upgrade to the client", async () => {
    const server = http.createServer();
    server.on('upgrade', (_req, socket) => {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(proxy.url.replace('http', 'ws') + '/x');
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', () => undefined);
    });
    expect(status).toBe(403);
  });
  it('records the --record-headers (and the client-key header) on a WebSocket record, as on an HTTP one', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'ws-headers.ndjson');
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => ws.send(d)));
    const proxy = await startTestProxy({ target: upstream, record: file, clientKey: 'header:x-client-id', recordHeaders: ['x-tenant', 'authorization'] });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/feed', [], { headers: { 'x-client-id': 'tenant-9', 'x-tenant': 'blue', authorization: 'Bearer s3cr3t' } });
    ws.close(1000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws') as WsRecord;
    expect(rec.client).toBe('tenant-9');
    expect(rec.headers).toMatchObject({ 'x-client-id': 'tenant-9', 'x-tenant': 'blue', authorization: '[redacted]' });
  });
});
