/**
 * WebSocket closes at the edges: shutdown on the message relay and on the raw relay, and an
 * upstream that half-closes after its close frame. Each case once lost a close frame on the wire
 * (the upstream saw 1006, the record said 1006, the upstream never got the client's echo); these
 * tests hold the frames to what a direct connection would carry.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor, wsClient } from '../helpers.js';
import type { WsRecord } from '../../src/record/schema.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Sec-WebSocket-Accept for a key, computed here (RFC 6455 4.2.2) rather than with the proxy's own helper. */
function accept(key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));


/**
 * A hand-made WebSocket client on a plain socket: it completes the handshake, then only collects
 * what it is sent. It never answers a close frame; like any default socket it ends its side when
 * the proxy ends its own.
 */
function rawClient(port: number, target: string): Promise<{ socket: net.Socket; received: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => {
      s.destroy();
    });
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (upgraded) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept(KEY))) reject(new Error(`not upgraded: ${head}`));
      upgraded = true;
      buf = buf.subarray(end + 4);
      resolve({ socket: s, received: () => buf, closed });
    });
    s.on('error', reject);
    s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

/** The code of the first close frame in `buf` (masked or not), or null when there is none whole. */
function closeCodeOf(buf: Buffer): number | null {
  if (buf.length < 2 || buf[0] !== 0x88) return null;
  const masked = ((buf[1] as number) & 0x80) !== 0;
  const len = (buf[1] as number) & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (len < 2 || buf.length < start + len) return null;
  const payload = Buffer.from(buf.subarray(start, start + len));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (buf[2 + (i & 3)] as number);
  return payload.readUInt16BE(0);
}

describe('WebSocket closes at shutdown and at a half-close', () => {
  it('message relay: at shutdown the upstream gets the 1001 even when it sits behind buffered writes, not a cut (1006)', async () => {
    const upCloses: Array<{ code: number; reason: string }> = [];
    let upSocket: net.Socket | null = null;
    const upstream = await startWsUpstream((ws) => {
      // The upstream stops reading: what the proxy relays to it piles up in the proxy's socket.
      upSocket = (ws as unknown as { _socket: net.Socket })._socket;
      upSocket.pause();
      ws.on('close', (code, reason) => upCloses.push({ code, reason: reason.toString() }));
    });
    // A message fault in the decision keeps the message relay; this one only delays upstream to
    // client messages, and the upstream sends none, so it never acts.
    const profile = path.join(tempDir(), 'delay-out.yaml');
    fs.writeFileSync(profile, 'name: held\nrules:\n  - name: slow-out\n    match: { path: /held }\n    fault: { type: ws-delay, delay: 200ms, direction: out }\n');
    const proxy = await startTestProxy({ target: upstream, profile, watch: false, drainTimeout: '5s' });
    const ws = await wsClient(proxy.url.replace('http', 'ws') + '/held');
    await waitFor(() => upSocket !== null);
    // Send until the proxy holds the client back (its own buffer grows), so the proxy's buffer
    // towards the upstream is full and the 1001 frame is queued behind it.
    const chunk = Buffer.alloc(256 * 1024, 7);
    for (let sent = 0; ws.bufferedAmount < 4 * 1024 * 1024; sent++) {
      expect(sent).toBeLessThan(256); // 64 MiB: the proxy never pushed back
      ws.send(chunk, { binary: true });
      await sleep(5);
    }
    const held = ws.bufferedAmount;
    await sleep(200);
    expect(ws.bufferedAmount).toBe(held); // stalled: nothing moves while the upstream does not read

    const closing = proxy.close();
    (upSocket as unknown as net.Socket).resume(); // the upstream reads again, well inside the proxy's grace
    await waitFor(() => upCloses.length === 1, 5000);
    expect(upCloses[0]).toEqual({ code: 1001, reason: 'client connection closed by aftershock' });
    await closing;
  });

  it('raw relay: at shutdown a client that never echoes the close is recorded with the 1001 the proxy sent it', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('error', () => undefined));
    const file = path.join(tempDir(), 'shutdown.ndjson');
    const proxy = await startTestProxy({ target: upstream, record: file, drainTimeout: '5s' });
    const client = await rawClient(proxy.address.port, '/quiet');
    const t0 = Date.now();
    await proxy.close();
    await client.closed;
    expect(Date.now() - t0).toBeLessThan(3000); // the client's FIN ended it, not the drain timeout
    // What the client was sent: the proxy's 1001, and it answered with nothing but its FIN.
    expect(closeCodeOf(client.received())).toBe(1001);
    const recs = readRecords(file).filter((r): r is WsRecord => r.type === 'ws');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ status: 101, outcome: 'shutdown', closedBy: 'proxy', closeCode: 1001, closeReason: 'aftershock is shutting down', path: '/quiet' });
  });

  it("raw relay: an upstream that sends its close frame and then half-closes (FIN) still gets the client's close echo", async () => {
    const fromClient: Buffer[] = [];
    const upSockets: net.Socket[] = [];
    let upEnded = false;
    const srv = http.createServer();
    srv.on('upgrade', (req: http.IncomingMessage, sock: net.Socket) => {
      upSockets.push(sock);
      sock.on('error', () => undefined);
      sock.on('data', (c: Buffer) => fromClient.push(c));
      sock.once('end', () => (upEnded = true));
      const key = req.headers['sec-websocket-key'] as string;
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`);
      // Close 1000 "bye", unmasked (server to client), then the FIN right behind it; the read side stays open.
      sock.end(Buffer.from([0x88, 0x05, 0x03, 0xe8, 0x62, 0x79, 0x65]));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    onCleanup(
      () =>
        new Promise<void>((r) => {
          for (const s of upSockets) s.destroy();
          srv.close(() => r());
        }),
    );
    const file = path.join(tempDir(), 'half-close.ndjson');
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, record: file });
    const ws = await wsClient(proxy.url.replace('http', 'ws') + '/half');
    const clientClose = await new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    expect(clientClose).toEqual({ code: 1000, reason: 'bye' });
    // The client echoed 1000 at once; the upstream must read it, then the FIN the proxy passes on.
    await waitFor(() => upEnded, 3000);
    expect(closeCodeOf(Buffer.concat(fromClient))).toBe(1000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((r): r is WsRecord => r.type === 'ws');
    expect(rec).toMatchObject({ status: 101, closedBy: 'upstream', closeCode: 1000 });
  });
});
