// The HTTP leg to the upstream (src/upstream/pool.ts): what reaches the upstream byte for byte, and
// how the response, its pauses and its failures come back. Raw sockets on the upstream side so the
// request head is seen exactly as sent.
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { onCleanup, rawExchange, request, startTestProxy, startUpstream, waitFor } from '../helpers.js';

/** A raw TCP upstream: hands each connection's first request head to `onHead`, which answers. */
async function rawUpstream(onHead: (head: string, sock: net.Socket) => void): Promise<{ url: string; port: number; heads: string[] }> {
  const heads: string[] = [];
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      buf = buf.slice(end + 4);
      heads.push(head);
      onHead(head, sock);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, heads };
}

function headerLines(head: string): string[] {
  return head.split('\r\n').slice(1);
}

describe('upstream leg', () => {
  it("keeps the client's header case and order, drops hop-by-hop ones, appends X-Forwarded-*", async () => {
    const up = await rawUpstream((_h, s) => s.write('HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n'));
    const proxy = await startTestProxy({ target: up.url });
    const port = Number(new URL(proxy.url).port);
    const r = await rawExchange(
      port,
      'GET /a?b=1 HTTP/1.1\r\nHost: front.example:8443\r\nX-Zeta: 1\r\nAccept: */*\r\nx-Mixed-Case: v\r\nConnection: keep-alive, X-Gone\r\nX-Gone: secret\r\n' +
        'Keep-Alive: timeout=5\r\nTE: trailers, deflate\r\nProxy-Authorization: Basic abc\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n\r\n',
      { timeoutMs: 500 },
    );
    expect(r.data).toMatch(/^HTTP\/1\.1 204/);
    const lines = headerLines(up.heads[0] as string);
    expect(up.heads[0]).toMatch(/^GET \/a\?b=1 HTTP\/1\.1\r\n/);
    const names = lines.map((l) => l.slice(0, l.indexOf(':')));
    // The client's order and spelling (the leg writes host and connection of its own first).
    expect(names.filter((n) => n !== 'host' && n !== 'connection').slice(0, 4)).toEqual(['X-Zeta', 'Accept', 'x-Mixed-Case', 'TE']);
    expect(lines).toContain('connection: keep-alive');
    expect(lines).toContain('TE: trailers');
    for (const gone of ['x-gone', 'keep-alive', 'proxy-authorization']) expect(names.map((n) => n.toLowerCase())).not.toContain(gone);
    expect(lines).toContain(`host: 127.0.0.1:${up.port}`);
    expect(lines).toContain('x-forwarded-for: 10.0.0.1,127.0.0.1');
    expect(lines).toContain('x-forwarded-proto: https,http');
    expect(lines).toContain('x-forwarded-port: 8443');
    expect(lines).toContain('x-forwarded-host: front.example:8443');
  });

  it('streams a chunked request body the upstream reads only after connecting, whole', async () => {
    const seen: string[] = [];
    const up = await startUpstream((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push(`${String(req.headers['transfer-encoding'])}:${body}`);
        res.end(String(body.length));
      });
    });
    const proxy = await startTestProxy({ target: up.url });
    const body = 'x'.repeat(100_000);
    const r = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${proxy.url}/upload`, { method: 'POST', agent: false }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      // Written in pieces with no content-length: chunked from the client, re-framed upstream.
      for (let i = 0; i < 10; i++) req.write(body.slice(i * 10_000, (i + 1) * 10_000));
      req.end();
    });
    expect(r).toBe('100000');
    expect(seen).toEqual([`chunked:${body}`]);
  });

  it('skips 1xx informational answers and forwards the final one', async () => {
    const up = await rawUpstream((_h, s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    const proxy = await startTestProxy({ target: up.url });
    const r = await request(`${proxy.url}/`);
    expect(r.status).toBe(200);
    expect(r.text).toBe('ok');
  });

  it('keeps the status line reason and repeated response headers as sent', async () => {
    const up = await rawUpstream((_h, s) =>
      s.write('HTTP/1.1 299 Quite Fine\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Multi: 1\r\nX-Multi: 2\r\ncontent-length: 0\r\n\r\n'),
    );
    const proxy = await startTestProxy({ target: up.url });
    const port = Number(new URL(proxy.url).port);
    const r = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 1500 });
    expect(r.data).toMatch(/^HTTP\/1\.1 299 Quite Fine\r\n/);
    expect(r.data).toContain('Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n');
    expect(r.data).toContain('X-Multi: 1\r\nX-Multi: 2\r\n');
  });

  it('a client that goes away mid-response stops the upstream transfer', async () => {
    let upstreamClosed = false;
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024);
      const timer = setInterval(() => res.write(chunk), 5);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed = true;
      });
    });
    const proxy = await startTestProxy({ target: up.url });
    await new Promise<void>((resolve) => {
      const req = http.get(`${proxy.url}/stream`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
    });
    await waitFor(() => upstreamClosed, 3000);
    expect(upstreamClosed).toBe(true);
  });

  it('a read-only upstream keep-alive socket closed by the upstream is not a 502 on the next request', async () => {
    // The upstream closes every connection after answering: the leg must open a fresh one.
    const up = await startUpstream((_req, res) => {
      res.setHeader('connection', 'close');
      res.end('fine');
    });
    const proxy = await startTestProxy({ target: up.url });
    for (let i = 0; i < 5; i++) {
      const r = await request(`${proxy.url}/n/${i}`);
      expect(r.status).toBe(200);
      expect(r.text).toBe('fine');
    }
  });
});
