/**
 * Shared test plumbing: real servers on port 0 on loopback, real clients, NDJSON parsing.
 * Everything started here is registered for closing in afterEach.
 */
import http, { type IncomingMessage, type RequestListener, type Server } from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net, { type AddressInfo } from 'node:net';
import { afterEach } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startProxy, type ProxyHandle, type ProxyOptions } from '../src/index.js';
import type { AnyRecord, HttpRecord } from '../src/record/schema.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) {
    const fn = cleanups.pop() as () => Promise<void> | void;
    try {
      await fn();
    } catch {
      /* keep closing the rest */
    }
  }
});

export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export const TLS = {
  cert: fs.readFileSync(new URL('./fixtures/tls/cert.pem', import.meta.url)),
  key: fs.readFileSync(new URL('./fixtures/tls/key.pem', import.meta.url)),
};

export interface Upstream {
  server: Server;
  url: string;
  port: number;
}

/** A loopback port nothing listens on (bound, then closed): a connection to it is refused. */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts an HTTP (or HTTPS) upstream on 127.0.0.1:0. */
export async function startUpstream(handler: RequestListener, opts: { tls?: boolean } = {}): Promise<Upstream> {
  const server = opts.tls === true ? https.createServer({ ...TLS }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  onCleanup(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { server, url: `${opts.tls === true ? 'https' : 'http'}://127.0.0.1:${port}`, port };
}

/**
 * Starts a WebSocket upstream on 127.0.0.1:0 (compression offered; `protocols` are accepted in
 * order of preference). Resolves with its http:// URL.
 */
export async function startWsUpstream(
  onConnection: (ws: WebSocket, req: IncomingMessage) => void,
  opts: { protocols?: string[] } = {},
): Promise<string> {
  const server = http.createServer();
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: true,
    handleProtocols: (protocols) => {
      for (const p of opts.protocols ?? []) if (protocols.has(p)) return p;
      return false;
    },
  });
  wss.on('connection', onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A temp dir removed after the test. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-test-'));
  onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a proxy on a free port with no control API unless asked. */
export async function startTestProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  const proxy = await startProxy({ listen: '127.0.0.1:0', admin: false, ...opts });
  onCleanup(() => proxy.close());
  return proxy;
}

/** A test proxy recording to a temp file; `records()` reads its http records so far (none yet: []). */
export async function startRecordingProxy(opts: Omit<ProxyOptions, 'record'>): Promise<{ url: string; port: number; records: () => HttpRecord[]; proxy: ProxyHandle }> {
  const file = path.join(tempDir(), 'rec.ndjson');
  const proxy = await startTestProxy({ ...opts, record: file });
  const records = (): HttpRecord[] => {
    try {
      return readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    } catch {
      return [];
    }
  };
  return { url: proxy.url, port: proxy.address.port, records, proxy };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  trailers: NodeJS.Dict<string>;
  text: string;
}

/** One request with a fresh connection; resolves with the whole reply or rejects with the socket error. */
export function request(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent | false } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        if (!res.complete) {
          reject(Object.assign(new Error('incomplete response'), { code: 'ECONNRESET' }));
          return;
        }
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, trailers: res.trailers, text: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Reads an NDJSON recording. */
export function readRecords(file: string): AnyRecord[] {
  const text = fs.readFileSync(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AnyRecord);
}

/** Polls until `fn` returns a truthy value or the time is up. */
export async function waitFor<T>(fn: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a raw TCP socket, writes `data`, and collects everything until the socket ends or errors. */
export function rawExchange(port: number, data: string | Buffer, opts: { timeoutMs?: number } = {}): Promise<{ data: string; error: NodeJS.ErrnoException | null }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (error: NodeJS.ErrnoException | null): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), error });
    };
    const t = setTimeout(() => finish(null), opts.timeoutMs ?? 3000);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(null));
    s.on('error', (e: NodeJS.ErrnoException) => finish(e));
    s.write(data);
  });
}

export type { IncomingMessage };

/**
 * A raw TCP server on 127.0.0.1:0 that hands every connection to `onConn` (for upstreams that
 * write exact bytes); its sockets are destroyed and it is closed after the test.
 */
export async function rawServer(onConn: (sock: net.Socket) => void): Promise<{ url: string; port: number; conns: () => number; open: () => number }> {
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    conns++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    onConn(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, conns: () => conns, open: () => sockets.size };
}

/** A WebSocket client without permessage-deflate (the raw relay's case when no message fault applies), terminated after the test. */
export function wsClient(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    onCleanup(() => ws.terminate());
    ws.on('error', () => undefined);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
