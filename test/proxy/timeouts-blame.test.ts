/**
 * Who a timeout blames: the client (408 request-timeout) only when the proxy was reading its body
 * and nothing came; a body the proxy held back (the upstream not reading it, the pool full) or had
 * all received is the upstream's wait (504); an answer the upstream already gave ends both timers;
 * an Expect: 100-continue client that sends its body without the 100 is an upload, not a 504.
 * Also: a hot-reload version refused for a taken rule name is dropped when the file moves on.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecords, startTestProxy, startUpstream, tempDir, waitFor, request } from '../helpers.js';
import type { HttpRecord } from '../../src/record/schema.js';

function upload(url: string, body: Buffer, chunk = 64 * 1024, pauseMs = 0): Promise<{ status: number; text: string; sentAllAt: number; at: number; err?: string }> {
  return new Promise((resolve) => {
    let sentAllAt = 0;
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, sentAllAt, at: Date.now() }));
      res.on('error', (e) => resolve({ status: -1, text, sentAllAt, at: Date.now(), err: String(e) }));
    });
    req.on('error', (e) => resolve({ status: -1, text: '', sentAllAt, at: Date.now(), err: String(e) }));
    let off = 0;
    const pump = (): void => {
      while (off < body.length) {
        const ok = req.write(body.subarray(off, off + chunk));
        off += chunk;
        if (!ok) {
          req.once('drain', pump);
          return;
        }
        if (pauseMs > 0 && off < body.length) {
          setTimeout(pump, pauseMs);
          return;
        }
      }
      req.end();
      sentAllAt = Date.now();
    };
    pump();
  });
}

describe('timeouts: who waited', () => {
  it('an upstream slow to read the upload is the upstream\'s wait (504), not a client that sent no byte (408)', async () => {
    const up = await startUpstream((req, res) => {
      // Reads nothing for 2.5 s (busy), then reads all and answers.
      setTimeout(() => {
        let n = 0;
        req.on('data', (c: Buffer) => (n += c.length));
        req.on('end', () => res.end(`got ${n}`));
      }, 2500);
    });
    const dir = tempDir();
    const file = path.join(dir, 'a.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, upstreamTimeout: '1s' });
    const r = await upload(`${proxy.url}/up`, Buffer.alloc(32 * 1024 * 1024, 97));
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((x): x is HttpRecord => x.type === 'http');
    expect(rec?.error).toBe('upstream-timeout');
    expect(r.status).toBe(504);
  });
  it('a request queued for an upstream connection (pool full) gets the upstream\'s 504, not 408', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      if (req.url === '/hold') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('streaming');
        setTimeout(() => res.end('held'), 3000); // holds the only upstream connection for 3 s
      }
      else req.on('end', () => res.end('ok'));
    });
    const dir = tempDir();
    const file = path.join(dir, 'b.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, upstreamTimeout: '1s', upstreamSockets: 1 });
    const hold = request(`${proxy.url}/hold`).catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    const r = await upload(`${proxy.url}/post`, Buffer.alloc(4 * 1024 * 1024, 98));
    await hold;
    await waitFor(() => proxy.recorder.count >= 2);
    await proxy.close();
    const recs = readRecords(file).filter((x): x is HttpRecord => x.type === 'http');
    expect(recs.find((x) => x.path === '/post')?.error).toBe('upstream-timeout');
  });
  it('a small body sent in two parts, queued for the upstream connection, gets the 504 a GET gets', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      if (req.url === '/hold') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('streaming');
        setTimeout(() => res.end('held'), 3000);
      } else req.on('end', () => res.end('ok'));
    });
    const proxy = await startTestProxy({ target: up.url, upstreamTimeout: '1s', upstreamSockets: 1 });
    const hold = request(`${proxy.url}/hold`).catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    const [post, get] = await Promise.all([
      upload(`${proxy.url}/post`, Buffer.alloc(2000, 98), 1000, 50),
      request(`${proxy.url}/get`).then((r) => ({ status: r.status }), (e) => ({ status: String(e) })),
    ]);
    await hold;
    expect(post.status).toBe(504);
    expect(get.status).toBe(504);
  });  it('Expect: 100-continue to an upstream that never says 100: a client that sends its body anyway uploads slowly without a 504', async () => {
    const up = http.createServer();
    // An upstream that does not send 100 Continue (it just reads whatever comes).
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`got ${n}`));
    };
    up.on('checkContinue', handler);
    up.on('request', handler);
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const port = (up.address() as { port: number }).port;
    const dir = tempDir();
    const file = path.join(dir, 'e.ndjson');
    const proxy = await startTestProxy({ target: `http://127.0.0.1:${port}`, record: file, upstreamTimeout: '1s' });
    const net = await import('node:net');
    const s = net.connect(Number(new URL(proxy.url).port), '127.0.0.1');
    let data = '';
    s.on('data', (c: Buffer) => (data += c.toString('latin1')));
    s.on('error', () => undefined);
    s.write('POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nExpect: 100-continue\r\n\r\n');
    // like curl: no 100 within a moment, so the body is sent anyway, 10 bytes every 400 ms
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 4; i++) {
      s.write('0123456789');
      await new Promise((r) => setTimeout(r, 400));
    }
    await new Promise((r) => setTimeout(r, 1500));
    s.destroy();
    up.closeAllConnections();
    up.close();
    await proxy.close();
    expect(data).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*got 40$/);
  });  it('an upstream that answered early (held by latency at: response) is not turned into a 408 while the client still uploads', async () => {
    const up = await startUpstream((_req, res) => {
      res.end('early answer'); // does not wait for the body (Node reads and drops the rest)
    });
    const dir = tempDir();
    const profile = path.join(dir, 'p.yaml');
    fs.writeFileSync(profile, 'name: t\nrules:\n  - name: slowresp\n    fault: { type: latency, delay: 2500ms, at: response }\n');
    const file = path.join(dir, 'f.ndjson');
    const proxy = await startTestProxy({ target: up.url, record: file, profile, upstreamTimeout: '1s' });
    const r = await upload(`${proxy.url}/f`, Buffer.alloc(4000, 99), 1000, 150);
    await waitFor(() => proxy.recorder.count >= 1);
    await proxy.close();
    const rec = readRecords(file).find((x): x is HttpRecord => x.type === 'http');
    expect(r.status).toBe(200);
    expect(rec?.error).toBeNull();
  });
});

describe('hot reload after a name clash', () => {
  /** v1 in force, an ad-hoc fault named x, then the file rewritten to v2 (whose rule x is refused and waits). */
  async function waitingForName() {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const profile = path.join(tempDir(), 'p.yaml');
    const v1 = 'name: v1\nrules:\n  - name: a\n    probability: 0\n    fault: { type: http-error, status: 500 }\n';
    const v2 = 'name: v2\nrules:\n  - name: x\n    fault: { type: http-error, status: 503 }\n';
    fs.writeFileSync(profile, v1);
    const proxy = await startTestProxy({ target: up.url, profile });
    proxy.addFault({ name: 'x', probability: 0, fault: { type: 'http-error', status: 502 } });
    fs.writeFileSync(profile, v2);
    await new Promise((r) => setTimeout(r, 1500)); // the watcher refuses v2 (name taken) and starts waiting
    expect(proxy.profile.name).toBe('v1');
    return { proxy, profile, v1, v2 };
  }

  it('a file version refused for a taken rule name is not applied later once the file was reverted', async () => {
    const { proxy, profile, v1 } = await waitingForName();
    fs.writeFileSync(profile, v1); // the user reverts the file
    await new Promise((r) => setTimeout(r, 1500));
    expect(proxy.profile.name).toBe('v1');
    proxy.removeFault('x');
    await new Promise((r) => setTimeout(r, 1800));
    expect(proxy.profile.name).toBe('v1'); // the file says v1
  });

  it('a version waiting for a free rule name survives the file being deleted and written again with it', async () => {
    const { proxy, profile, v2 } = await waitingForName();
    fs.rmSync(profile);
    await new Promise((r) => setTimeout(r, 700));
    proxy.removeFault('x');
    fs.writeFileSync(profile, v2);
    await waitFor(() => proxy.profile.name === 'v2', 5000);
  });
});
