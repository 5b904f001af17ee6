/**
 * HTTP semantics of the proxy as an intermediary (RFC 9110, RFC 9112): an upstream request whose
 * client left before its body is released, pipelined requests reach the upstream one at a time,
 * transfer codings the proxy does not decode are refused, CONNECT's 405 says what is allowed,
 * request headers meant for the proxy or for trailers it does not forward stay behind, and
 * 103 Early Hints reach the client. Raw `net` sockets on both sides where the bytes matter; real
 * servers on 127.0.0.1:0.
 */
import net from 'node:net';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { onCleanup, rawExchange, rawServer, startRecordingProxy as recordingProxy, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';

interface RawRequest {
  /** The request line. */
  line: string;
  head: string;
  headers: Record<string, string>;
  body: Buffer;
  /** ms since the upstream started. */
  at: number;
}

/**
 * A raw upstream that parses each request (Content-Length or chunked body) and hands it to
 * `answer`, which writes what it likes on the socket. Logs every request and counts the
 * connections still open.
 */
async function rawUpstream(answer: (r: RawRequest, sock: net.Socket) => void, opts: { headsOnly?: (head: string) => boolean } = {}) {
  const t0 = Date.now();
  const requests: RawRequest[] = [];
  const events: string[] = [];
  const server = await rawServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        const r = parseRequest(buf, opts.headsOnly);
        if (r === null) return;
        buf = buf.subarray(r.used);
        const req = { ...r.req, at: Date.now() - t0 };
        requests.push(req);
        events.push(`received ${req.line}`);
        answer(req, sock);
      }
    });
  });
  return { ...server, requests, events };
}

function parseRequest(buf: Buffer, headsOnly?: (head: string) => boolean): { used: number; req: Omit<RawRequest, 'at'> } | null {
  const s = buf.toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const head = s.slice(0, end);
  const lines = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let pos = end + 4;
  const line = lines[0] as string;
  if (headsOnly?.(head) === true) return { used: pos, req: { line, head, headers, body: Buffer.alloc(0) } };
  const parts: Buffer[] = [];
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    for (;;) {
      const le = s.indexOf('\r\n', pos);
      if (le === -1) return null;
      const size = parseInt(s.slice(pos, le), 16);
      pos = le + 2;
      if (size === 0) {
        const te = s.indexOf('\r\n\r\n', pos - 2);
        if (te === -1) return null;
        pos = te + 4;
        break;
      }
      if (buf.length < pos + size + 2) return null;
      parts.push(buf.subarray(pos, pos + size));
      pos += size + 2;
    }
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (buf.length < pos + n) return null;
    parts.push(buf.subarray(pos, pos + n));
    pos += n;
  }
  return { used: pos, req: { line, head, headers, body: Buffer.concat(parts) } };
}

const ok = (text: string): string => `HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n\r\n${text}`;


/** Writes `data`, collects until the proxy ends the connection or `ms` pass; `onData` may answer. */
function talk(port: number, data: string | Buffer, opts: { ms?: number; onData?: (sock: net.Socket, text: string) => void } = {}): Promise<{ data: string; error: string | null }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => void s.destroy());
    let got = '';
    let error: string | null = null;
    const t = setTimeout(() => s.destroy(), opts.ms ?? 3000);
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      opts.onData?.(s, got);
    });
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: got, error });
    });
    s.write(data);
  });
}

const statusLines = (text: string): string[] => text.match(/HTTP\/1\.1 \d{3}[^\r]*/g) ?? [];

describe('an upstream request whose client leaves before sending its body', () => {
  it('Expect: 100-continue answered 417 at once, the client leaving without its body: the upstream connection is released, and the pool does not run dry', async () => {
    const up = await rawUpstream(
      (r, sock) => {
        if (r.line.startsWith('POST /leak')) {
          sock.write('HTTP/1.1 417 Expectation Failed\r\ncontent-length: 0\r\n\r\n');
          return;
        }
        sock.write('HTTP/1.1 100 Continue\r\n\r\n');
        sock.once('data', (body: Buffer) => sock.write(ok(`got ${body.toString()}`)));
      },
      // The upstream answers on the head: at once (/leak, whose body never comes), or 100 Continue.
      { headsOnly: () => true },
    );
    // Two upstream sockets: without the release the third leaking request would already wait.
    const { proxy, port, records } = await recordingProxy({ target: up.url, upstreamSockets: 2, upstreamTimeout: '2s', upstreamIdleTimeout: '30s' });
    for (let i = 0; i < 4; i++) {
      const r = await talk(port, 'POST /leak HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n', { ms: 1000 });
      expect(statusLines(r.data)).toEqual(['HTTP/1.1 417 Expectation Failed']);
    }
    // Well before --upstream-idle-timeout, every upstream connection the 417s held is closed.
    await waitFor(() => up.open() === 0, 2000);
    // A well-behaved Expect request still reaches the upstream.
    let sent = false;
    const good = await talk(port, 'POST /ok HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', {
      onData: (s, text) => {
        if (!sent && text.startsWith('HTTP/1.1 100')) {
          sent = true;
          s.write('hello');
        }
      },
    });
    expect(statusLines(good.data)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    expect(good.data).toMatch(/got hello$/);
    await waitFor(() => records().length === 5);
    await proxy.close();
    expect(records().map((r) => [r.path, r.status, r.outcome, r.error])).toEqual([
      ...Array.from({ length: 4 }, () => ['/leak', 417, null, null]),
      ['/ok', 200, null, null],
    ]);
  });

  it('a plain upload answered 413 after its first bytes, the client leaving without the rest: the pooled upstream connection is released too', async () => {
    const up = await rawUpstream(
      (r, sock) => {
        if (r.line.startsWith('POST /leak')) sock.write('HTTP/1.1 413 Content Too Large\r\ncontent-length: 0\r\n\r\n');
        else sock.write(ok(`got ${r.body.toString()}`));
      },
      { headsOnly: (head) => head.startsWith('POST /leak') },
    );
    const { proxy, port } = await recordingProxy({ target: up.url, upstreamSockets: 2, upstreamTimeout: '2s', upstreamIdleTimeout: '30s' });
    for (let i = 0; i < 4; i++) {
      // (undici sends the head with the first body bytes.)
      const r = await talk(port, 'POST /leak HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhe', { ms: 1000 });
      expect(statusLines(r.data)).toEqual(['HTTP/1.1 413 Content Too Large']);
    }
    await waitFor(() => up.open() === 0, 2000);
    const good = await talk(port, 'POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    expect(good.data).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*got hello$/);
    await proxy.close();
  });
});

describe('pipelined requests', () => {
  it('reach the upstream one at a time: a DELETE and a GET pipelined behind a slow POST wait for its answer (RFC 9112 §9.3.2)', async () => {
    const up = await rawUpstream((r, sock) => {
      if (r.line.startsWith('POST')) {
        setTimeout(() => {
          up.events.push(`answered ${r.line}`);
          sock.write(ok(`ok ${r.line}`));
        }, 300);
        return;
      }
      up.events.push(`answered ${r.line}`);
      sock.write(ok(`ok ${r.line}`));
    });
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const res = await talk(port, 'POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}DELETE /orders/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /orders HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(up.events).toEqual([
      'received POST /orders HTTP/1.1',
      'answered POST /orders HTTP/1.1',
      'received DELETE /orders/1 HTTP/1.1',
      'answered DELETE /orders/1 HTTP/1.1',
      'received GET /orders HTTP/1.1',
      'answered GET /orders HTTP/1.1',
    ]);
    // The answers, in request order and whole.
    expect(res.data.match(/ok [A-Z]+ \S+/g)).toEqual(['ok POST /orders', 'ok DELETE /orders/1', 'ok GET /orders']);
    await waitFor(() => records().length === 3);
    await proxy.close();
    expect(records().map((r) => [r.method, r.status, r.outcome])).toEqual([
      ['POST', 200, null],
      ['DELETE', 200, null],
      ['GET', 200, null],
    ]);
  });

  it.each([
    ['reset', 'reset'],
    ['close', 'closed'],
    ['hang;duration=150ms', 'reset'],
    ['lost-response', 'reset'],
    ['truncate;after=1', 'reset'],
  ])('a POST pipelined behind a request cut by %s never reaches the upstream and is recorded once, connection-cut-ahead, upstreamStatus null', async (fault, outcome) => {
    const up = await rawUpstream((r, sock) => {
      // The first request's answer takes a while: the POST behind it is parsed long before.
      setTimeout(() => sock.write(ok(`ok ${r.line}`)), r.line.includes('/slow') ? 200 : 0);
    });
    const { proxy, port, records } = await recordingProxy({ target: up.url, profile: parseProfile('headerFaults: true\nrules: []', null) });
    await talk(port, `GET /slow HTTP/1.1\r\nHost: a\r\nx-aftershock-fault: ${fault}\r\n\r\nPOST /pay HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}`);
    await waitFor(() => proxy.stats().inFlight === 0 && records().length === 2);
    // Give a wrongly forwarded POST time to arrive.
    await new Promise((r) => setTimeout(r, 300));
    await proxy.close();
    expect(up.requests.map((r) => r.line)).not.toContain('POST /pay HTTP/1.1');
    const pay = records().find((r) => r.path === '/pay');
    expect(pay).toMatchObject({ status: null, outcome, error: 'connection-cut-ahead', upstreamStatus: null, fault: { rule: 'header', injected: true } });
  });

  it('a request pipelined behind one in flight with a broken chunked body waits for the one ahead: its 400 does not cut into that answer', async () => {
    const up = await rawUpstream((r, sock) => setTimeout(() => sock.write(ok('slow answer')), 200));
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const res = await talk(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nPOST /bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n');
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 400 Bad Request']);
    expect(res.data).toContain('slow answer');
    await waitFor(() => records().length === 2);
    await proxy.close();
    expect(up.requests.map((r) => r.line)).toEqual(['GET /slow HTTP/1.1']);
    expect(records().map((r) => [r.path, r.status, r.outcome])).toEqual([
      ['/slow', 200, null],
      ['/bad', 400, 'bad-request'],
    ]);
  });
});

describe('transfer codings other than chunked', () => {
  const gz = zlib.gzipSync('secret payload');
  const chunked = Buffer.concat([Buffer.from(`${gz.length.toString(16)}\r\n`), gz, Buffer.from('\r\n0\r\n\r\n')]);

  it('a request with Transfer-Encoding: gzip, chunked gets a labelled 501 and reaches no upstream (RFC 9112 §6.1)', async () => {
    const up = await rawUpstream((_r, sock) => sock.write(ok('hi')));
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const res = await talk(port, Buffer.concat([Buffer.from('POST /g HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), chunked]));
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 501 Not Implemented']);
    expect(res.data).toMatch(/x-aftershock-error: unsupported-transfer-coding/i);
    expect(res.data).toMatch(/connection: close/i);
    // identity is no transfer coding any more (RFC 9112 §7): the same 501.
    const identity = await talk(port, 'POST /i HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(statusLines(identity.data)).toEqual(['HTTP/1.1 501 Not Implemented']);
    // Not ending in chunked: the body has no framing, the parser refuses it (one 400, not a 501 too).
    const unframed = await talk(port, 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(statusLines(unframed.data)).toEqual(['HTTP/1.1 400 Bad Request']);
    await waitFor(() => records().length === 3);
    await proxy.close();
    expect(up.requests).toEqual([]);
    expect(records().map((r) => [r.path, r.status, r.outcome, r.error])).toEqual([
      ['/g', 501, 'bad-request', 'unsupported-transfer-coding'],
      ['/i', 501, 'bad-request', 'unsupported-transfer-coding'],
      ['/x', 400, 'bad-request', 'bad-request'],
    ]);
    expect(records()[0]).toMatchObject({ method: 'POST', upstreamStatus: null });
  });

  it('a refusal is the one answer and the one record of its connection: bytes after it that do not parse (the refused body, a bad request behind it) add neither', async () => {
    const up = await rawUpstream((_r, sock) => sock.write(ok('hi')));
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const coded = await talk(port, 'POST /g HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\nzz\r\n');
    expect(statusLines(coded.data)).toEqual(['HTTP/1.1 501 Not Implemented']);
    const absolute = await talk(port, 'GET http://h/abs HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n');
    expect(statusLines(absolute.data)).toEqual(['HTTP/1.1 400 Bad Request']);
    await waitFor(() => proxy.stats().inFlight === 0 && records().length >= 2);
    await proxy.close();
    expect(records().map((r) => [r.status, r.error])).toEqual([
      [501, 'unsupported-transfer-coding'],
      [400, 'absolute-form-refused'],
    ]);
    expect(up.requests).toEqual([]);
  });

  it('a response with Transfer-Encoding: gzip, chunked is a bad upstream response: 502 upstream-bad-response', async () => {
    const up = await rawUpstream((r, sock) => {
      if (r.line.startsWith('HEAD')) sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n');
      else sock.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'), chunked]));
    });
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const res = await talk(port, 'GET /g HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 502 Bad Gateway']);
    expect(res.data).toMatch(/x-aftershock-error: upstream-bad-response/i);
    expect(res.data).not.toContain('\x1f\x8b');
    // A HEAD answer has no body to decode: it passes.
    const head = await talk(port, 'HEAD /g HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusLines(head.data)).toEqual(['HTTP/1.1 200 OK']);
    await waitFor(() => records().length === 2);
    await proxy.close();
    expect(records()[0]).toMatchObject({ path: '/g', status: 502, outcome: 'upstream-error', error: 'upstream-bad-response', upstreamStatus: null });
  });
});

describe('a trailer section too large to take', () => {
  it('is a bad upstream response, not a reset: the client is reset mid-body and the record says upstream-bad-response', async () => {
    const up = await rawUpstream((_r, sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-big\r\n\r\n5\r\nhello\r\n0\r\nx-big: ${'a'.repeat(100_000)}\r\n\r\n`);
    });
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    await talk(port, 'GET /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n');
    await waitFor(() => records().length === 1);
    await proxy.close();
    expect(records()[0]).toMatchObject({ path: '/t', outcome: 'reset', error: 'upstream-bad-response' });
  });
});

describe('request headers and refusals', () => {
  it("CONNECT's 405 carries an Allow header (RFC 9110 §15.5.6)", async () => {
    const up = await rawUpstream((_r, sock) => sock.write(ok('hi')));
    const { proxy, port } = await recordingProxy({ target: up.url });
    const res = await rawExchange(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', { timeoutMs: 2000 });
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 405 Method Not Allowed']);
    const allow = /\r\nallow: ([^\r]*)/i.exec(res.data)?.[1];
    expect(allow?.split(/,\s*/)).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']));
    expect(allow).not.toMatch(/CONNECT/);
    await proxy.close();
  });

  it('a Trailer header is not forwarded with a body whose trailers are not (re-framed whole or streamed)', async () => {
    const up = await rawUpstream((_r, sock) => sock.write(ok('ok')));
    const { proxy, port } = await recordingProxy({ target: up.url });
    // All at once: the body reaches the upstream with a Content-Length.
    await talk(port, 'POST /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 99\r\n\r\n');
    // Streamed: the body stays chunked, its trailers still stay behind.
    const s = net.connect(port, '127.0.0.1');
    onCleanup(() => void s.destroy());
    s.on('error', () => undefined);
    s.write('POST /s HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n');
    await waitFor(() => up.events.length === 1 || undefined, 2000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    s.write('3\r\nxyz\r\n0\r\nX-Sum: 98\r\n\r\n');
    await waitFor(() => up.requests.length === 2);
    await proxy.close();
    for (const r of up.requests) {
      expect(r.headers.trailer).toBeUndefined();
      expect(r.head).not.toContain('X-Sum');
    }
    expect(up.requests.map((r) => r.body.toString())).toEqual(['abc', 'abcxyz']);
    expect(up.requests[0]?.headers.te).toBe('trailers');
  });

  it.each([
    ['on', 'headerFaults: true\nrules: []'],
    ['off', 'rules: []'],
  ])('the x-aftershock-fault control header (header faults %s) does not reach the upstream', async (_on, profile) => {
    const up = await rawUpstream((_r, sock) => sock.write(ok('ok')));
    const { proxy, port } = await recordingProxy({ target: up.url, profile: parseProfile(profile, null) });
    const res = await talk(port, 'GET /x HTTP/1.1\r\nHost: a\r\nX-Aftershock-Fault: latency;delay=1ms\r\nX-Other: kept\r\nConnection: close\r\n\r\n');
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 200 OK']);
    await proxy.close();
    expect(up.requests).toHaveLength(1);
    expect(up.requests[0]?.headers['x-aftershock-fault']).toBeUndefined();
    expect(up.requests[0]?.headers['x-other']).toBe('kept');
  });
});

describe('1xx informational answers', () => {
  const hints = 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload; as=style\r\nLink: </b.js>; rel=preload; as=script\r\n\r\n';

  it('103 Early Hints reach an HTTP/1.1 client before the final answer, on the pooled leg and the Expect leg', async () => {
    const up = await rawUpstream((r, sock) => {
      if (r.headers.expect !== undefined) return; // answered below, once the body came
      sock.write(hints + ok('ok'));
    }, { headsOnly: (head) => /expect: 100-continue/i.test(head) });
    const { proxy, port, records } = await recordingProxy({ target: up.url });
    const res = await talk(port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 103 Early Hints', 'HTTP/1.1 200 OK']);
    const early = res.data.slice(0, res.data.indexOf('HTTP/1.1 200'));
    expect(early).toMatch(/Link: <\/a\.css>; rel=preload; as=style, <\/b\.js>; rel=preload; as=script\r\n/i);
    expect(res.data).toMatch(/\r\n\r\nok$/);
    await waitFor(() => records().length === 1);
    await proxy.close();
    expect(records()[0]).toMatchObject({ status: 200, outcome: null, bytesOut: 2 });
  });

  it('the Expect leg passes a 103 on as well', async () => {
    const up = await rawUpstream(
      (_r, sock) => {
        sock.write(`${hints}HTTP/1.1 100 Continue\r\n\r\n`);
        sock.once('data', () => sock.write(ok('ok')));
      },
      { headsOnly: () => true },
    );
    const { proxy, port } = await recordingProxy({ target: up.url });
    let sent = false;
    const res = await talk(port, 'POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', {
      onData: (s, text) => {
        if (!sent && text.includes('HTTP/1.1 100')) {
          sent = true;
          s.write('hello');
        }
      },
    });
    expect(statusLines(res.data)).toEqual(['HTTP/1.1 103 Early Hints', 'HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
    await proxy.close();
  });

  it('an HTTP/1.0 client gets no 1xx (RFC 9110 §15.2), only the final answer', async () => {
    const up = await rawUpstream((_r, sock) => sock.write(hints + ok('ok')));
    const { proxy, port } = await recordingProxy({ target: up.url });
    const res = await talk(port, 'GET /x HTTP/1.0\r\nHost: a\r\n\r\n');
    expect(res.data).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(res.data).not.toContain('103');
    await proxy.close();
  });
});
