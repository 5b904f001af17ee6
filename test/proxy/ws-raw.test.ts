/**
 * The raw WebSocket relay: a connection with no message-level fault, no message recording and no
 * extension offered but permessage-deflate is copied byte for byte after the handshake. These
 * tests hold it to what the message relay does: messages both ways, fragments, pings, close codes
 * mirrored and recorded, backpressure, resets, protocol errors refused, and the record's counts.
 */
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { onCleanup, readRecords, startTestProxy, startWsUpstream, tempDir, waitFor } from '../helpers.js';
import type { WsRecord } from '../../src/record/schema.js';
import { FrameCounter, acceptKey } from '../../src/proxy/ws-raw.js';

/** A client without permessage-deflate: the raw relay's case. */
function connect(url: string, protocols: string[] = []): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    onCleanup(() => ws.terminate());
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
}

async function withRecord(opts: { profile?: string } = {}) {
  const file = path.join(tempDir(), 'ws.ndjson');
  return { file, records: () => readRecords(file).filter((r): r is WsRecord => r.type === 'ws'), opts: { record: file, ...opts } };
}

/** A raw handshake on a plain socket; resolves once the 101 is read, with the bytes after it. */
function rawUpgrade(port: number): Promise<{ socket: net.Socket; rest: () => Buffer }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => {
      s.destroy();
    });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101') || !head.includes(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='))) reject(new Error(head));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve({ socket: s, rest: () => buf });
      }
    });
    s.on('error', reject);
    s.write('GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  });
}

/** A masked client frame. */
function clientFrame(op: number, payload: Buffer, fin = true): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | op, 0x80 | payload.length]), mask, masked]);
}

describe('raw WebSocket relay', () => {
  it('relays text and binary both ways with the subprotocol, and records the counts', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d, binary) => ws.send(d, { binary })), { protocols: ['v2'] });
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/s?x=1', ['v1', 'v2']);
    expect(ws.protocol).toBe('v2');
    const got: Array<{ data: string; binary: boolean }> = [];
    ws.on('message', (d: Buffer, binary) => got.push({ data: d.toString('hex'), binary }));
    ws.send('héllo');
    ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    ws.send(Buffer.alloc(70_000, 7), { binary: true });
    await waitFor(() => got.length === 3);
    expect(got[0]).toEqual({ data: Buffer.from('héllo').toString('hex'), binary: false });
    expect(got[1]).toEqual({ data: '000102ff', binary: true });
    expect(got[2]!.data.length).toBe(140_000);
    const c = closed(ws);
    ws.close(1000, 'done');
    expect((await c).code).toBe(1000);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const [rec] = r.records();
    expect(rec).toMatchObject({ status: 101, protocol: 'v2', messagesIn: 3, messagesOut: 3, bytesIn: 6 + 4 + 70_000, bytesOut: 70_010, closeCode: 1000, closeReason: 'done', closedBy: 'client', path: '/s' });
  });

  it('passes fragmented messages and interleaved pings, and counts a fragmented message once', async () => {
    const seen: string[] = [];
    let pings = 0;
    const upstream = await startWsUpstream((ws) => {
      ws.on('message', (d) => {
        seen.push(d.toString());
        ws.send(d, { fin: false });
        ws.send(Buffer.from('!'), { fin: true });
      });
      ws.on('ping', () => pings++);
    });
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/f');
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    const pong = new Promise<string>((res) => ws.once('pong', (d) => res(d.toString())));
    ws.send('ab', { fin: false });
    ws.ping('p1');
    ws.send('cd', { fin: true });
    expect(await pong).toBe('p1');
    await waitFor(() => got.length === 1);
    expect(seen).toEqual(['abcd']);
    expect(got).toEqual(['abcd!']);
    expect(pings).toBe(1);
    ws.close();
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    expect(r.records()[0]).toMatchObject({ messagesIn: 1, messagesOut: 1, bytesIn: 4, bytesOut: 5, closeCode: 1005, closeReason: null });
  });

  it('counts frames whose headers and payloads arrive one byte at a time', () => {
    const frames = Buffer.concat([
      clientFrame(1, Buffer.from('hi'), false),
      clientFrame(9, Buffer.from('ping')),
      clientFrame(0, Buffer.from(' there')),
      clientFrame(2, Buffer.alloc(0)),
      clientFrame(8, Buffer.concat([Buffer.from([0x0f, 0xa1]), Buffer.from('bye')])),
    ]);
    const c = new FrameCounter(true);
    let closes = 0;
    c.onClose = () => closes++;
    for (let i = 0; i < frames.length; i++) expect(c.push(frames.subarray(i, i + 1))).toBe(-1);
    expect({ messages: c.messages, bytes: c.bytes, closeCode: c.closeCode, closeReason: c.closeReason, closes, atBoundary: c.atBoundary }).toEqual({
      messages: 2,
      bytes: 8,
      closeCode: 4001,
      closeReason: 'bye',
      closes: 1,
      atBoundary: true,
    });
  });

  it('refuses what ws refuses: a bad frame never reaches the upstream, the frames before it do', async () => {
    const cases: Array<{ bad: Buffer; code: number }> = [
      { bad: Buffer.from([0x83, 0x85, 1, 2, 3, 4, 1, 2, 3, 4, 5]), code: 1002 }, // reserved opcode
      { bad: Buffer.from([0x81, 0x02, 0x68, 0x69]), code: 1002 }, // unmasked client frame
      { bad: clientFrame(1, Buffer.from([0xc3, 0x28])), code: 1007 }, // invalid UTF-8
      { bad: clientFrame(0, Buffer.from('x')), code: 1002 }, // continuation without a start
      { bad: clientFrame(8, Buffer.from([0x03, 0xee])), code: 1002 }, // close code 1006 on the wire
      { bad: Buffer.from([0xc1, 0x82, 0, 0, 0, 0, 0x68, 0x69]), code: 1002 }, // RSV1 set, no extension negotiated
      { bad: Buffer.from([0xa1, 0x82, 0, 0, 0, 0, 0x68, 0x69]), code: 1002 }, // RSV2
      { bad: Buffer.from([0x91, 0x82, 0, 0, 0, 0, 0x68, 0x69]), code: 1002 }, // RSV3
    ];
    const seen: string[] = [];
    const upstream = await startWsUpstream((ws) => {
      ws.on('error', () => undefined);
      ws.on('message', (d) => seen.push(d.toString()));
    });
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts });
    for (const [i, { bad, code }] of cases.entries()) {
      const { socket, rest } = await rawUpgrade(proxy.address.port);
      const ended = new Promise<void>((res) => socket.once('close', () => res()));
      socket.write(Buffer.concat([clientFrame(1, Buffer.from(`ok${i}`)), bad]));
      await ended;
      // The proxy's close frame: 0x88, length, the code.
      expect([...rest().subarray(0, 4)]).toEqual([0x88, 2, code >> 8, code & 0xff]);
    }
    await waitFor(() => seen.length === cases.length);
    expect(seen).toEqual(cases.map((_, i) => `ok${i}`));
    await waitFor(() => proxy.recorder.count >= cases.length);
    await proxy.close();
    for (const rec of r.records()) expect(rec).toMatchObject({ status: 101, messagesIn: 1, bytesIn: 3, closedBy: 'client', closeCode: 1006 });
  });

  it('counts a refused message as the message relay does: its bytes never, a message only once all of it is accepted', async () => {
    // Each case: good frames, then a message ws refuses; the counts are those of the good ones.
    const cases: Array<{ name: string; frames: Buffer[]; messages: number; bytes: number }> = [
      { name: 'invalid UTF-8', frames: [clientFrame(1, Buffer.from([0x61, 0xff, 0xfe]))], messages: 0, bytes: 0 },
      { name: 'a good message, then invalid UTF-8', frames: [clientFrame(1, Buffer.from('ok')), clientFrame(1, Buffer.from([0xc3]))], messages: 1, bytes: 2 },
      {
        name: 'a fragmented message whose last fragment breaks its UTF-8',
        frames: [clientFrame(1, Buffer.from('ok')), clientFrame(1, Buffer.from([0xe2, 0x82]), false), clientFrame(0, Buffer.from([0x28]))],
        messages: 1,
        bytes: 2,
      },
      {
        name: 'a fragmented message cut short by a bad frame',
        frames: [clientFrame(1, Buffer.from('ok')), clientFrame(2, Buffer.from('abc'), false), clientFrame(3, Buffer.from('x'))],
        messages: 1,
        bytes: 2,
      },
    ];
    const upstream = await startWsUpstream((ws) => ws.on('error', () => undefined));
    const counts = async (messageRelay: boolean): Promise<Array<Pick<WsRecord, 'messagesIn' | 'bytesIn'>>> => {
      const r = await withRecord();
      // Recording messages keeps the message relay (`ws` parses and refuses the frames itself).
      const proxy = await startTestProxy({ target: upstream, ...r.opts, recordMessages: messageRelay });
      for (const { frames } of cases) {
        const { socket } = await rawUpgrade(proxy.address.port);
        const ended = new Promise<void>((res) => socket.once('close', () => res()));
        socket.write(Buffer.concat(frames));
        await ended;
      }
      await waitFor(() => proxy.recorder.count >= cases.length);
      await proxy.close();
      return r.records().sort((a, b) => a.ts - b.ts).map(({ messagesIn, bytesIn }) => ({ messagesIn, bytesIn }));
    };
    const expected = cases.map((c) => ({ messagesIn: c.messages, bytesIn: c.bytes }));
    expect(await counts(true)).toEqual(expected);
    expect(await counts(false)).toEqual(expected);
  });

  it('mirrors close codes and reasons from either side and records who closed', async () => {
    const closes: Array<{ code: number; reason: string }> = [];
    const upstream = await startWsUpstream((ws) => {
      ws.on('message', (d) => {
        if (d.toString() === 'bye') ws.close(4001, 'server says bye');
      });
      ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    });
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts });
    const url = proxy.url.replace('http', 'ws') + '/c';
    const a = await connect(url);
    const aClosed = closed(a);
    a.send('bye');
    expect(await aClosed).toEqual({ code: 4001, reason: 'server says bye' });
    const b = await connect(url);
    b.close(4002, 'client leaves');
    await waitFor(() => closes.some((c) => c.code === 4002));
    expect(closes.find((c) => c.code === 4002)?.reason).toBe('client leaves');
    await waitFor(() => proxy.recorder.count >= 2);
    await proxy.close();
    const recs = r.records();
    expect(recs.find((x) => x.closeCode === 4001)).toMatchObject({ closedBy: 'upstream', messagesIn: 1, bytesIn: 3, closeReason: 'server says bye' });
    expect(recs.find((x) => x.closeCode === 4002)).toMatchObject({ closedBy: 'client', closeReason: 'client leaves' });
  });

  it('passes an abrupt drop on either side on as a drop (1006)', async () => {
    const upClosed: number[] = [];
    const upSockets: WebSocket[] = [];
    const upstream = await startWsUpstream((ws) => {
      upSockets.push(ws);
      ws.on('close', (code) => upClosed.push(code));
    });
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts });
    const url = proxy.url.replace('http', 'ws') + '/d';
    const a = await connect(url);
    a.terminate();
    await waitFor(() => upClosed.length === 1);
    expect(upClosed[0]).toBe(1006);
    const b = await connect(url);
    await waitFor(() => upSockets.length === 2);
    const bClosed = closed(b);
    upSockets[1]!.terminate();
    expect((await bClosed).code).toBe(1006);
    await waitFor(() => proxy.recorder.count >= 2);
    await proxy.close();
    const recs = r.records().sort((x, y) => x.ts - y.ts);
    expect(recs.map((x) => [x.closedBy, x.closeCode])).toEqual([
      ['client', 1006],
      ['upstream', 1006],
    ]);
  });

  it('holds the upstream back while the client reads slowly, and delivers everything', async () => {
    const chunk = Buffer.alloc(256 * 1024, 1);
    const total = 96;
    let upWs: WebSocket | null = null;
    const upstream = await startWsUpstream((ws) => {
      upWs = ws;
      for (let i = 0; i < total; i++) ws.send(chunk);
    });
    const proxy = await startTestProxy({ target: upstream });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/b');
    let got = 0;
    ws.on('message', () => got++);
    // Stop reading: the proxy must stop reading the upstream, which then keeps most of 24 MiB queued.
    (ws as unknown as { _socket: net.Socket })._socket.pause();
    await waitFor(() => upWs !== null);
    await new Promise((res) => setTimeout(res, 300));
    expect((upWs as unknown as WebSocket).bufferedAmount).toBeGreaterThan(8 * 1024 * 1024);
    (ws as unknown as { _socket: net.Socket })._socket.resume();
    await waitFor(() => got === total, 10_000);
  });

  it('closes open raw connections with 1001 on shutdown and records them', async () => {
    const upstream = await startWsUpstream(() => undefined);
    const r = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...r.opts, drainTimeout: 100 });
    const ws = await connect(proxy.url.replace('http', 'ws') + '/z');
    const c = closed(ws);
    await proxy.close();
    expect((await c).code).toBe(1001);
    expect(r.records()[0]).toMatchObject({ outcome: 'shutdown', closedBy: 'proxy', closeCode: 1001 });
  });

  it('keeps the message relay when a message fault applies', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d) => ws.send(d)));
    const profile = path.join(tempDir(), 'p.yaml');
    const fs = await import('node:fs');
    fs.writeFileSync(profile, 'name: t\nrules:\n  - name: slow\n    match: { path: /slow }\n    fault: { type: ws-delay, delay: 150ms }\n');
    const proxy = await startTestProxy({ target: upstream, profile, watch: false });
    const base = proxy.url.replace('http', 'ws');
    const time = async (ws: WebSocket): Promise<number> => {
      const t0 = Date.now();
      const got = new Promise((res) => ws.once('message', res));
      ws.send('x');
      await got;
      return Date.now() - t0;
    };
    expect(await time(await connect(base + '/slow'))).toBeGreaterThanOrEqual(250);
    expect(await time(await connect(base + '/fast'))).toBeLessThan(150);
  });

  it('passes permessage-deflate through end to end: compressed messages both ways, counted on the wire, the upstream\'s parameters as it chose them', async () => {
    const upstream = await startWsUpstream((ws) => ws.on('message', (d, binary) => ws.send(d, { binary })));
    const rec = await withRecord();
    const proxy = await startTestProxy({ target: upstream, ...rec.opts });
    const ws = await new Promise<WebSocket>((res, rej) => {
      const w = new WebSocket(proxy.url.replace('http', 'ws') + '/z', { perMessageDeflate: { threshold: 0 } });
      onCleanup(() => w.terminate());
      w.once('open', () => res(w));
      w.once('error', rej);
    });
    expect(ws.extensions).toMatch(/permessage-deflate/);
    const text = 'compress me '.repeat(500);
    const got = new Promise<string>((res) => ws.once('message', (d) => res(d.toString())));
    ws.send(text);
    expect(await got).toBe(text);
    ws.close(1000);
    await closed(ws);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const r = rec.records()[0] as WsRecord;
    expect(r).toMatchObject({ status: 101, messagesIn: 1, messagesOut: 1, closeCode: 1000 });
    expect(r.bytesIn).toBeGreaterThan(0);
    expect(r.bytesIn).toBeLessThan(text.length / 5); // the compressed payload, as it crossed the wire
  });

  it('with compression negotiated, RSV1 is allowed on a message\'s first frame only', () => {
    const rsv1 = (f: Buffer): Buffer => {
      const c = Buffer.from(f);
      c[0] = (c[0] as number) | 0x40;
      return c;
    };
    const ok = new FrameCounter(true);
    ok.deflate = true;
    // A compressed "text" message whose payload is not UTF-8 (it is compressed): accepted.
    expect(ok.push(rsv1(clientFrame(1, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0x01, 0x00]))))).toBe(-1);
    expect(ok.messages).toBe(1);
    const cont = new FrameCounter(true);
    cont.deflate = true;
    expect(cont.push(Buffer.concat([rsv1(clientFrame(1, Buffer.from('a'), false)), rsv1(clientFrame(0, Buffer.from('b')))]))).toBeGreaterThan(0);
    expect(cont.error).toBe(1002);
    const ctrl = new FrameCounter(true);
    ctrl.deflate = true;
    expect(ctrl.push(rsv1(clientFrame(9, Buffer.from('p'))))).toBe(0);
    const none = new FrameCounter(true);
    expect(none.push(rsv1(clientFrame(1, Buffer.from('a'))))).toBe(0);
    expect(none.error).toBe(1002);
  });
});
