import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { freePort, readRecords, request, startRecordingProxy, startTestProxy, startUpstream, tempDir, waitFor, rawExchange, onCleanup, TLS } from '../helpers.js';
import { createAnalyzer } from '../../src/analysis/index.js';
import type { HttpRecord } from '../../src/record/schema.js';

function echo(): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  };
}

describe('HTTP reverse proxy', () => {
  it('forwards method, path, query, body and headers, and sets X-Forwarded-*', async () => {
    const up = await startUpstream(echo());
    const proxy = await startTestProxy({ target: up.url });
    const r = await request(`${proxy.url}/v1/things?x=1&y=2`, { method: 'PUT', body: 'hello', headers: { 'x-custom': 'a', 'content-type': 'text/plain' } });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.text) as { method: string; url: string; headers: Record<string, string>; body: string };
    expect(seen.method).toBe('PUT');
    expect(seen.url).toBe('/v1/things?x=1&y=2');
    expect(seen.body).toBe('hello');
    expect(seen.headers['x-custom']).toBe('a');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(proxy.url.replace('http://', ''));
    expect(seen.headers.host).toBe(`127.0.0.1:${up.port}`);
    expect(r.headers['x-aftershock-fault']).toBeUndefined();
  });

  it('preserves the client Host header with hostHeader: preserve', async () => {
    const up = await startUpstream(echo());
    const proxy = await startTestProxy({ target: up.url, hostHeader: 'preserve' });
    const r = await request(`${proxy.url}/`, { headers: { host: 'staging.example' } });
    expect((JSON.parse(r.text) as { headers: Record<string, string> }).headers.host).toBe('staging.example');
  });

  it('drops hop-by-hop headers both ways, including those named in Connection', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'keep-alive': 'timeout=5', 'x-hop': 'drop-me', connection: 'x-hop', 'x-end': 'keep' });
      res.end(JSON.stringify(req.headers));
    });
    const proxy = await startTestProxy({ target: up.url });
    const r = await request(`${proxy.url}/`, { headers: { 'x-secret-hop': '1', connection: 'x-secret-hop', 'proxy-authorization': 'Basic abc', te: 'gzip' } });
    const seen = JSON.parse(r.text) as Record<string, string>;
    expect(seen['x-secret-hop']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen.te).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=5');
    expect(r.headers['x-hop']).toBeUndefined();
    expect(r.headers['x-end']).toBe('keep');
  });

  it('rewrites redirects and cookie domains to the proxy when asked', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(302, {
        location: `http://127.0.0.1:${(req.socket.address() as net.AddressInfo).port}/api/next?x=1`,
        'set-cookie': ['sid=1; Domain=staging.example; Path=/', 'other=2; Path=/'],
      });
      res.end();
    });
    const proxy = await startTestProxy({ target: `${up.url}/api`, rewriteRedirects: true, cookieDomain: 'localhost' });
    const r = await request(`${proxy.url}/start`);
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe(`${proxy.url}/next?x=1`);
    expect(r.headers['set-cookie']).toEqual(['sid=1; Domain=localhost; Path=/', 'other=2; Path=/']);
    const plain = await startTestProxy({ target: `${up.url}/api` });
    const r2 = await request(`${plain.url}/start`);
    expect(r2.headers.location).toBe(`${up.url}/api/next?x=1`);
  });

  it('rewrites only redirects that have an address on the proxy: relative ones and ones outside the target prefix stay as sent', async () => {
    const up = await startUpstream((req, res) => {
      const origin = `http://127.0.0.1:${(req.socket.address() as net.AddressInfo).port}`;
      const to: Record<string, string> = {
        '/api/dir/rel': 'other',
        '/api/dir/query': '?q=1',
        '/api/dir/up': '../x',
        '/api/abs-path': '/api/inside/y?z=2',
        '/api/abs-path-out': '/other',
        '/api/sibling': `${origin}/apiv2/x`,
        '/api/outside': `${origin}/other`,
        '/api/exact': `${origin}/api`,
        '/api/elsewhere': 'https://example.com/api/x',
      };
      res.writeHead(302, { location: to[req.url ?? ''] ?? '/' });
      res.end();
    });
    const proxy = await startTestProxy({ target: `${up.url}/api`, rewriteRedirects: true });
    const loc = async (p: string): Promise<string | undefined> => (await request(`${proxy.url}${p}`)).headers.location;
    expect(await loc('/dir/rel')).toBe('other');
    expect(await loc('/dir/query')).toBe('?q=1');
    expect(await loc('/dir/up')).toBe('../x');
    expect(await loc('/abs-path')).toBe('/inside/y?z=2');
    expect(await loc('/abs-path-out')).toBe('/other');
    expect(await loc('/sibling')).toBe(`${up.url}/apiv2/x`);
    expect(await loc('/outside')).toBe(`${up.url}/other`);
    expect(await loc('/exact')).toBe(`${proxy.url}/`);
    expect(await loc('/elsewhere')).toBe('https://example.com/api/x');
  });

  it('serves TLS when given a certificate and key', async () => {
    const up = await startUpstream(echo());
    const cert = new URL('../fixtures/tls/cert.pem', import.meta.url).pathname;
    const key = new URL('../fixtures/tls/key.pem', import.meta.url).pathname;
    const proxy = await startTestProxy({ target: up.url, tlsCert: cert, tlsKey: key });
    expect(proxy.url.startsWith('https://')).toBe(true);
    const https = await import('node:https');
    const body = await new Promise<string>((resolve, reject) => {
      https.get(`${proxy.url}/tls`, { ca: TLS.cert, agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    const seen = JSON.parse(body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe('/tls');
    expect(seen.headers['x-forwarded-proto']).toBe('https');
  });

  it('prefixes every path with the target URL path', async () => {
    const up = await startUpstream(echo());
    const proxy = await startTestProxy({ target: `${up.url}/api/` });
    const r = await request(`${proxy.url}/v1/users?id=7`);
    expect((JSON.parse(r.text) as { url: string }).url).toBe('/api/v1/users?id=7');
  });

  it('dot segments cannot climb out of the target prefix (plain or percent-encoded); without a prefix the target goes through as sent', async () => {
    const seen: string[] = [];
    const up = await startUpstream((req, res) => {
      seen.push(req.url as string);
      res.end('ok');
    });
    const proxy = await startTestProxy({ target: `${up.url}/api` });
    const port = Number(new URL(proxy.url).port);
    for (const t of ['/../secret', '/v1/%2e%2E/../secret?x=1', '/v1/./users/.', '/v1/users/..', '/v1/...x/..y', '/..\\secret', '/..;/secret', '/..%2fsecret', '/..#/x', '/files/a%2Fb']) {
      const r = await rawExchange(port, `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(r.data.split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    }
    // Backslashes, encoded slashes and ';' parameters are separators to some upstream (WHATWG URL, Tomcat): resolved too.
    expect(seen).toEqual(['/api/secret', '/api/secret?x=1', '/api/v1/users/', '/api/v1/', '/api/v1/...x/..y', '/api/secret', '/api/secret', '/api/secret', '/api/', '/api/files/a%2Fb']);
    // A WebSocket upgrade goes to the same place.
    up.server.on('upgrade', (req, sock: net.Socket) => {
      seen.push(`ws ${req.url as string}`);
      sock.destroy();
    });
    for (const t of ['/x/../../chat', '/x/..\\..\\chat']) {
      await rawExchange(port, `GET ${t} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`, { timeoutMs: 1000 });
      expect(seen.at(-1)).toBe('ws /api/chat');
    }
    const bare = await startTestProxy({ target: up.url });
    await rawExchange(Number(new URL(bare.url).port), 'GET /a/../b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(seen.at(-1)).toBe('/a/../b');
  });

  it('keeps upstream connections alive across requests', async () => {
    const ports = new Set<number>();
    const up = await startUpstream((req, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.end('ok');
    });
    const proxy = await startTestProxy({ target: up.url });
    for (let i = 0; i < 5; i++) await request(`${proxy.url}/n${i}`);
    expect(ports.size).toBe(1);
  });

  it('forwards to an https target with a self-signed certificate only when insecure', async () => {
    const up = await startUpstream((_req, res) => res.end('secure'), { tls: true });
    const strict = await startTestProxy({ target: up.url });
    const r1 = await request(`${strict.url}/`);
    expect(r1.status).toBe(502);
    expect(r1.headers['x-aftershock-error']).toBe('upstream-tls');
    const lax = await startTestProxy({ target: up.url, insecure: true });
    const r2 = await request(`${lax.url}/`);
    expect(r2.status).toBe(200);
    expect(r2.text).toBe('secure');
  });

  it('passes chunked bodies and trailers through', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part1-');
      setTimeout(() => {
        res.write('part2');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
      }, 20);
    });
    const proxy = await startTestProxy({ target: up.url });
    const r = await request(`${proxy.url}/stream`, { headers: { te: 'trailers' } });
    expect(r.text).toBe('part1-part2');
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.trailers['x-checksum']).toBe('abc123');
  });

  it('passes Expect: 100-continue through: the upstream sees it, its 100 or its early refusal reaches the client', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const seen: Array<{ url: string; expect: string | undefined; body: string }> = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', expect: req.headers.expect, body });
        res.end(`got ${body.length} bytes`);
      });
    });
    // The upstream decides: /too-big is refused before any byte of the body, the rest may come.
    server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/too-big') {
        seen.push({ url: req.url, expect: req.headers.expect, body: '' });
        res.writeHead(413, { connection: 'close' });
        res.end('too big');
        return;
      }
      res.writeContinue();
      server.emit('request', req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${(server.address() as { port: number }).port}`, record: file });
    const send = (p: string): Promise<{ continued: boolean; status: number; body: string }> =>
      new Promise((resolve, reject) => {
        let continued = false;
        const req = http.request(`${proxy.url}${p}`, { method: 'PUT', headers: { expect: '100-continue', 'content-length': 5 }, agent: false });
        req.on('continue', () => {
          continued = true;
          req.end('12345');
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
    expect(await send('/ok')).toEqual({ continued: true, status: 200, body: 'got 5 bytes' });
    expect(await send('/too-big')).toEqual({ continued: false, status: 413, body: 'too big' });
    expect(seen).toEqual([
      { url: '/ok', expect: '100-continue', body: '12345' },
      { url: '/too-big', expect: '100-continue', body: '' },
    ]);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map((r) => [r.path, r.status, r.outcome])).toEqual([
      ['/ok', 200, null],
      ['/too-big', 413, null],
    ]);
  });

  it('streams a 50 MB body both ways with backpressure and bounded memory', async () => {
    const SIZE = 50 * 1024 * 1024;
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'tests run with --expose-gc').toBeTypeOf('function');
    // Slow readers on both ends: a proxy that buffered instead of applying backpressure would hold
    // most of the 50 MB at some point.
    const slowRead = (stream: NodeJS.ReadableStream & { pause(): void; resume(): void }, onBytes: (n: number) => void): void => {
      let sinceBreak = 0;
      stream.on('data', (c: Buffer) => {
        onBytes(c.length);
        sinceBreak += c.length;
        if (sinceBreak >= 2 * 1024 * 1024) {
          sinceBreak = 0;
          stream.pause();
          setTimeout(() => stream.resume(), 15);
        }
      });
    };
    const up = await startUpstream((req, res) => {
      let n = 0;
      slowRead(req, (b) => (n += b));
      req.on('end', () => {
        res.writeHead(200, { 'x-received': String(n) });
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024, 7);
        const pump = (): void => {
          while (sent < SIZE) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
    });
    const proxy = await startTestProxy({ target: up.url });
    gc!();
    const base = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      gc!();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
    }, 25);
    const received = await new Promise<{ status: number; bytes: number; upstreamSaw: string }>((resolve, reject) => {
      const req = http.request(`${proxy.url}/big`, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } }, (res) => {
        let bytes = 0;
        slowRead(res, (b) => (bytes += b));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, upstreamSaw: String(res.headers['x-received']) }));
      });
      req.on('error', reject);
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 3);
      Readable.from(
        (function* () {
          while (sent < SIZE) {
            sent += chunk.length;
            yield chunk;
          }
        })(),
      ).pipe(req);
    });
    clearInterval(sampler);
    expect(received.status).toBe(200);
    expect(received.upstreamSaw).toBe(String(SIZE));
    expect(received.bytes).toBe(SIZE);
    expect(peak).toBeLessThan(25 * 1024 * 1024);
  });
});

describe('errors from the proxy itself', () => {
  it('answers 502 with a JSON body when the upstream refuses', async () => {
    const port = await freePort();
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${port}` });
    const r = await request(`${proxy.url}/x`);
    expect(r.status).toBe(502);
    expect(r.headers['x-aftershock-error']).toBe('upstream-refused');
    expect(JSON.parse(r.text)).toMatchObject({ error: 'upstream-refused' });
  });

  it('reads and hashes the body of a request the upstream refused before the 502, so different POSTs are not one request', async () => {
    const port = await freePort();
    const { url, records, proxy } = await startRecordingProxy({ target: `http://127.0.0.1:${port}` });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const big = Buffer.alloc(300_000, 7);
    const bodies = ['{"text":"first"}', '{"text":"second"}', big];
    for (const body of bodies) {
      const r = await request(`${url}/v1/messages`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, agent });
      expect(r.status).toBe(502);
    }
    agent.destroy();
    await proxy.close();
    const rs = records();
    expect(rs.map((r) => r.bytesIn)).toEqual([16, 17, 300_000]);
    expect(rs.every((r) => r.bodyHash !== null && r.outcome === 'upstream-error' && r.error === 'upstream-refused')).toBe(true);
    expect(new Set(rs.map((r) => r.bodyHash)).size).toBe(3);
    // One connection carried all three: each body was read to its end, not taken for the next request.
    expect(new Set(rs.map((r) => r.conn)).size).toBe(1);
    const a = createAnalyzer();
    for (const r of rs) a.ingest(r);
    expect(a.report().totals).toMatchObject({ attempts: 3, logicalRequests: 3, retries: 0 });
  });

  it('answers 504 when the upstream hangs past the timeout', async () => {
    const up = await startUpstream(() => undefined);
    const proxy = await startTestProxy({ target: up.url, upstreamTimeout: '200ms' });
    const t0 = Date.now();
    const r = await request(`${proxy.url}/slow`);
    expect(r.status).toBe(504);
    expect(r.headers['x-aftershock-error']).toBe('upstream-timeout');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(180);
  });

  it('aborts the upstream request when the client disconnects', async () => {
    let upstreamSawClose = false;
    let arrived = false;
    const up = await startUpstream((req, res) => {
      arrived = true;
      res.on('close', () => {
        upstreamSawClose = !res.writableFinished;
      });
    });
    const proxy = await startTestProxy({ target: up.url });
    const req = http.request(`${proxy.url}/long`, { agent: false });
    req.on('error', () => undefined);
    req.end();
    await waitFor(() => arrived);
    req.destroy();
    await waitFor(() => upstreamSawClose);
    expect(upstreamSawClose).toBe(true);
  });

  it('resets the client when the upstream resets mid-response', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => req.socket.resetAndDestroy(), 30);
    });
    const proxy = await startTestProxy({ target: up.url });
    await expect(request(`${proxy.url}/x`)).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET|ERR_STREAM_PREMATURE_CLOSE/) });
  });

  it('refuses absolute-form request targets and CONNECT: never an open proxy; the records count the refusal body sent', async () => {
    const up = await startUpstream(echo());
    const file = path.join(tempDir(), 'rec.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    const a = await rawExchange(proxy.address.port, 'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(a.data).toMatch(/^HTTP\/1\.1 400/);
    expect(a.data).toContain('absolute-form-refused');
    const c = await rawExchange(proxy.address.port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(c.data).toMatch(/^HTTP\/1\.1 405/);
    const bad = await rawExchange(proxy.address.port, 'GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    expect(bad.data).toMatch(/^HTTP\/1\.1 400/);
    const head = await rawExchange(proxy.address.port, 'HEAD http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(head.data).toMatch(/^HTTP\/1\.1 400/);
    await proxy.close();
    const records = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const bodyOf = (raw: string): number => Buffer.byteLength(raw.slice(raw.indexOf('\r\n\r\n') + 4));
    expect(records.map((r) => [r.error, r.bytesOut])).toEqual([
      ['absolute-form-refused', bodyOf(a.data)],
      ['connect-refused', 0],
      ['bad-request', bodyOf(bad.data)],
      // An answer to HEAD carries no body.
      ['absolute-form-refused', 0],
    ]);
    expect(bodyOf(a.data)).toBeGreaterThan(0);
    expect(bodyOf(bad.data)).toBeGreaterThan(0);
  });

  it('survives a client that resets right after its CONNECT or absolute-form request, and records the client', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const up = await startUpstream(echo());
    const proxy = await startTestProxy({ target: up.url, record: file });
    for (const line of ['CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n']) {
      await new Promise<void>((resolve) => {
        const s = net.connect(proxy.address.port, '127.0.0.1', () => s.write(line));
        s.on('error', () => undefined);
        // RST as soon as the refusal starts to arrive (an unhandled socket error here once ended the process).
        s.once('data', () => {
          s.resetAndDestroy();
          resolve();
        });
      });
    }
    await new Promise((r) => setTimeout(r, 50));
    expect((await request(`${proxy.url}/still-fine`)).status).toBe(200);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map((r) => [r.method, r.status, r.ip])).toEqual([
      ['CONNECT', 405, '127.0.0.1'],
      ['GET', 400, '127.0.0.1'],
      ['GET', 200, '127.0.0.1'],
    ]);
  });

  it('sends a streamed answer\'s head as soon as the upstream does (server-sent events), before its first byte', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      setTimeout(() => res.end('data: hi\n\n'), 1500);
    });
    const proxy = await startTestProxy({ target: up.url });
    const t0 = Date.now();
    const { head, all } = await new Promise<{ head: number; all: string }>((resolve, reject) => {
      const s = net.connect(proxy.address.port, '127.0.0.1', () => s.write('GET /events HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
      let got = '';
      let headAt = -1;
      s.on('data', (c: Buffer) => {
        if (headAt < 0) headAt = Date.now() - t0;
        got += c.toString();
      });
      s.on('end', () => resolve({ head: headAt, all: got }));
      s.on('error', reject);
    });
    // The head long before the upstream's first body byte (1.5 s), with a wide margin for a busy machine.
    expect(head).toBeLessThan(1000);
    expect(all).toMatch(/^HTTP\/1\.1 200/);
    expect(all).toContain('data: hi');
  });

  it('answers a request that asks for h2c (curl --http2) as the HTTP/1.1 request it also is, keeping the connection', async () => {
    const seen: Array<string | undefined> = [];
    const up = await startUpstream((req, res) => {
      seen.push(req.headers.upgrade ?? (req.headers['http2-settings'] as string | undefined));
      req.resume();
      req.on('end', () => res.end(`ok ${req.url}`));
    });
    const proxy = await startTestProxy({ target: up.url });
    const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
    const r = await rawExchange(
      proxy.address.port,
      `GET /one HTTP/1.1\r\nHost: a\r\n${h2c}\r\nPOST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
    );
    expect(r.data.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(r.data).toContain('ok /one');
    expect(r.data).toContain('ok /two');
    expect(r.data).not.toContain('101');
    expect(seen).toEqual([undefined, undefined]);
  });

  it('answers a request pipelined before a malformed one first, then 400, and records each once', async () => {
    const file = path.join(tempDir(), 'rec.ndjson');
    const up = await startUpstream((req, res) => setTimeout(() => res.end(`answer to ${req.url}`), 100));
    const proxy = await startTestProxy({ target: up.url, record: file });
    const r = await rawExchange(proxy.address.port, 'GET /valid HTTP/1.1\r\nHost: a\r\n\r\nNOT-HTTP\r\n\r\n');
    const first = r.data.indexOf('HTTP/1.1 200');
    const second = r.data.indexOf('HTTP/1.1 400');
    expect(first).toBe(0);
    expect(r.data).toContain('answer to /valid');
    expect(second).toBeGreaterThan(first);
    await proxy.close();
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.map((x) => [x.method, x.path, x.status, x.outcome]).sort()).toEqual([
      ['-', '-', 400, 'bad-request'],
      ['GET', '/valid', 200, null],
    ]);
  });

  it('answers malformed requests with 400 and oversized headers with 431, and records both', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream(echo());
    const proxy = await startTestProxy({ target: up.url, record: file });
    const bad = await rawExchange(proxy.address.port, 'GARBAGE\r\n\r\n');
    expect(bad.data).toMatch(/^HTTP\/1\.1 400/);
    const big = await rawExchange(proxy.address.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.data).toMatch(/^HTTP\/1\.1 431/);
    const ok = await request(`${proxy.url}/still-fine`);
    expect(ok.status).toBe(200);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs.map((r) => r.status).sort()).toEqual([200, 400, 431]);
    expect(recs.filter((r) => r.outcome === 'bad-request')).toHaveLength(2);
  });
});

describe('recording', () => {
  it('writes a header then exactly one record per exchange, with the fields and no secrets', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('set-cookie', 'sid=supersecretcookie');
        if (req.url?.startsWith('/limited')) res.writeHead(429, { 'retry-after': '3' });
        res.end('ok');
      });
    });
    const proxy = await startTestProxy({ target: up.url, record: file, session: 'qa-checkout', seed: 7 });
    const body = JSON.stringify({ text: 'hi' });
    await request(`${proxy.url}/v1/messages?token=abc123&page=2`, {
      method: 'POST',
      body,
      headers: {
        authorization: 'Bearer topsecrettoken',
        cookie: 'sid=alsosecret',
        'x-api-key': 'key-secret',
        'idempotency-key': 'idem-1',
        'user-agent': 'okhttp/4.9.0',
        'x-client-id': 'client-7',
      },
    });
    await request(`${proxy.url}/limited`);
    await proxy.close();
    const text = (await import('node:fs')).readFileSync(file, 'utf8');
    for (const secret of ['topsecrettoken', 'alsosecret', 'key-secret', 'abc123', 'supersecretcookie']) expect(text).not.toContain(secret);
    const recs = readRecords(file);
    expect(recs[0]).toMatchObject({ type: 'header', v: 1, session: 'qa-checkout', seed: 7, target: up.url, profile: { name: 'passthrough' } });
    const http1 = recs.filter((r): r is HttpRecord => r.type === 'http');
    expect(http1).toHaveLength(2);
    const post = http1.find((r) => r.method === 'POST') as HttpRecord;
    expect(post).toMatchObject({
      v: 1,
      client: 'client-7',
      path: '/v1/messages',
      query: 'token=[redacted]&page=2',
      status: 200,
      outcome: null,
      fault: null,
      userAgent: 'okhttp/4.9.0',
      headers: { 'idempotency-key': 'idem-1' },
      bytesIn: body.length,
    });
    const expected = createHash('sha256').update(body).digest('hex');
    expect(post.bodyHash).toBe(`sha256:${expected}:${body.length}`);
    for (const k of ['id', 'ts', 'end', 'conn', 'bytesOut', 'ttfb', 'duration', 'retryAfter']) expect(post).toHaveProperty(k);
    expect(post.end).toBeGreaterThanOrEqual(post.ts);
    const limited = http1.find((r) => r.path === '/limited') as HttpRecord;
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toBe(3);
    expect(limited.client).toBe('127.0.0.1');
    const mode = (await import('node:fs')).statSync(file).mode & 0o777;
    expect(mode).toBe(0o600);
  });

  it('records an HTTP-date Retry-After as the wait it asks for from when the answer went out, to the millisecond', async () => {
    const dir = tempDir();
    let date = '';
    let sentAt = 0;
    // The upstream takes 600 ms, then asks for a wait to a date ~2.4 s after its answer.
    const up = await startUpstream((_req, res) => {
      setTimeout(() => {
        const at = Math.ceil((Date.now() + 2000) / 1000) * 1000;
        date = new Date(at).toUTCString();
        sentAt = Date.now();
        res.writeHead(503, { 'retry-after': date });
        res.end();
      }, 600);
    });
    const file = path.join(dir, 'ra.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    await request(`${proxy.url}/later`);
    await proxy.close();
    const rec = readRecords(file).find((r): r is HttpRecord => r.type === 'http') as HttpRecord;
    const asked = (Date.parse(date) - sentAt) / 1000;
    // Counted from the request's start it would be ~0.6 s more; rounded to seconds, up to 0.5 s off.
    expect(Math.abs((rec.retryAfter as number) - asked)).toBeLessThan(0.1);
  });

  it('records an upstream Retry-After that is neither whole seconds nor an HTTP-date as none, and reads the obsolete date forms as GMT', async () => {
    const dir = tempDir();
    const soon = new Date(Math.ceil((Date.now() + 30_000) / 1000) * 1000);
    const asctime = soon.toUTCString().replace(/^(\w{3}), (\d{2}) (\w{3}) (\d{4}) (\S+) GMT$/, (_m, d: string, day: string, mon: string, y: string, t: string) => `${d} ${mon} ${day.replace(/^0/, ' ')} ${t} ${y}`);
    const values: Record<string, string> = { '/frac': '1.5', '/neg': '-1', '/list': '3, 4', '/word': 'soon', '/asctime': asctime };
    const up = await startUpstream((req, res) => {
      res.writeHead(503, { 'retry-after': values[req.url ?? ''] ?? '2' });
      res.end();
    });
    const file = path.join(dir, 'ra.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file });
    for (const p of Object.keys(values)) await request(`${proxy.url}${p}`);
    await proxy.close();
    const byPath = new Map(readRecords(file).flatMap((r) => (r.type === 'http' ? [[r.path, r.retryAfter] as const] : [])));
    expect([byPath.get('/frac'), byPath.get('/neg'), byPath.get('/list'), byPath.get('/word')]).toEqual([null, null, null, null]);
    expect(Math.abs((byPath.get('/asctime') as number) - 30)).toBeLessThan(1.5);
  });

  it('records the client-key header, hashed and redacted when it is a secret', async () => {
    const dir = tempDir();
    const up = await startUpstream((_req, res) => res.end('ok'));
    const a = path.join(dir, 'a.ndjson');
    const byId = await startTestProxy({ target: up.url, record: a, clientKey: 'header:x-client-id' });
    await request(`${byId.url}/x`, { headers: { 'x-client-id': 'tenant-9' } });
    await byId.close();
    const ra = readRecords(a).find((r): r is HttpRecord => r.type === 'http') as HttpRecord;
    expect(ra.client).toBe('tenant-9');
    expect((ra.headers as Record<string, string>)['x-client-id']).toBe('tenant-9');
    const b = path.join(dir, 'b.ndjson');
    const byAuth = await startTestProxy({ target: up.url, record: b, clientKey: 'header:authorization' });
    await request(`${byAuth.url}/x`, { headers: { authorization: 'Bearer s3cr3t-token' } });
    await byAuth.close();
    const text = (await import('node:fs')).readFileSync(b, 'utf8');
    expect(text).not.toContain('s3cr3t-token');
    const rb = readRecords(b).find((r): r is HttpRecord => r.type === 'http') as HttpRecord;
    expect(rb.client).toMatch(/^h:[0-9a-f]{16}$/);
    expect((rb.headers as Record<string, string>).authorization).toBe('[redacted]');
  });

  it('records a client abort as such', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    let arrived = false;
    const up = await startUpstream(() => {
      arrived = true;
    });
    const proxy = await startTestProxy({ target: up.url, record: file });
    const req = http.request(`${proxy.url}/abandon`, { agent: false });
    req.on('error', () => undefined);
    req.end();
    await waitFor(() => arrived);
    req.destroy();
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ outcome: 'client-abort', status: null });
  });

  it('flushes in-flight exchanges at close and records each exactly once', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'rec.ndjson');
    const up = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 150));
    const proxy = await startTestProxy({ target: up.url, record: file });
    const pending = Array.from({ length: 20 }, (_, i) => request(`${proxy.url}/r${i}`));
    await waitFor(() => proxy.stats().inFlight === 20);
    await proxy.close();
    const replies = await Promise.all(pending);
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    expect(recs).toHaveLength(20);
    expect(new Set(recs.map((r) => r.path)).size).toBe(20);
  });
});

export { onCleanup };
