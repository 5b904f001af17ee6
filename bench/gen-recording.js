// Streams a synthetic recording of N http records to a file, shaped like real traffic through a
// flaky profile: a few thousand clients, id-bearing routes, ~10 % injected 503s with Retry-After,
// and retries of the failed attempts after a backoff. Used by the offline-analysis benchmark.
//
//   node bench/gen-recording.js <file> <records> [clients]
import fs from 'node:fs';

/** Writes the recording; returns { records, bytes, seconds }. */
export function generateRecording(file, total, clients = 5000) {
  const started = performance.now();
  const fd = fs.openSync(file, 'w');
  const startMs = Date.UTC(2025, 0, 1);
  let bytes = 0;
  const write = (s) => {
    const b = Buffer.from(s);
    let off = 0;
    while (off < b.length) off += fs.writeSync(fd, b, off);
    bytes += b.length;
  };
  write(
    JSON.stringify({
      v: 1,
      type: 'header',
      aftershock: 'bench',
      start: new Date(startMs).toISOString(),
      startMs,
      target: 'http://127.0.0.1:3000',
      profile: { name: 'flaky', hash: 'bench' },
      seed: 1,
      clientKey: 'auto',
      session: 'bench',
      redacted: ['authorization', 'cookie'],
      instance: 'bench0001',
    }) + '\n',
  );
  // A tiny deterministic PRNG (mulberry32) so every run analyses the same file.
  let seed = 42;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const uas = ['okhttp/4.12.0', 'python-requests/2.32.3', 'Go-http-client/1.1', 'axios/1.7.2', 'curl/8.5.0', 'aws-sdk-js/3.600.0'];
  const routes = [
    ['GET', (n) => `/v1/users/${n}`],
    ['GET', (n) => `/v1/orders/${n}/items`],
    ['POST', () => '/v1/messages'],
    ['GET', () => '/v1/health'],
    ['PUT', (n) => `/v1/carts/${n}`],
  ];
  // Per client: its clock and, after a failure, the attempt it is about to retry.
  const clock = new Float64Array(clients);
  const retryOf = new Array(clients).fill(null);
  for (let c = 0; c < clients; c++) clock[c] = startMs + rand() * 1000;
  const lines = [];
  let seq = 0;
  for (let i = 0; i < total; i++) {
    const c = Math.floor(rand() * clients);
    let attempt = retryOf[c];
    let gap;
    if (attempt !== null) {
      gap = attempt.backoff;
      attempt.backoff *= 2;
      attempt.tries++;
    } else {
      const [method, path] = routes[Math.floor(rand() * routes.length)];
      attempt = { method, path: path(Math.floor(rand() * 100000)), body: method === 'GET' ? null : `sha256:${(seq + 1).toString(16).padStart(16, '0')}:${64 + (seq % 500)}`, backoff: 100 + rand() * 100, tries: 0 };
      gap = 50 + rand() * 2000;
    }
    const ts = clock[c] + gap;
    const fault = rand() < 0.1 && attempt.tries < 4;
    const duration = fault ? 0.2 + rand() * 0.3 : 1 + rand() * 20;
    clock[c] = ts + duration;
    retryOf[c] = fault ? attempt : null;
    const tag = fault ? { rule: 'some-503', type: 'http-error', injected: true } : null;
    const ip = `10.${(c >> 16) & 255}.${(c >> 8) & 255}.${c & 255}`;
    const ua = uas[c % uas.length];
    lines.push(
      JSON.stringify({
        v: 1,
        type: 'http',
        id: `bench0001-${(++seq).toString(36)}`,
        ts,
        end: ts + duration,
        client: `${ip} ${ua}`,
        ip,
        conn: (c * 7 + (seq % 3)).toString(36),
        method: attempt.method,
        path: attempt.path,
        query: null,
        status: fault ? 503 : 200,
        outcome: null,
        upstreamStatus: null,
        bytesIn: attempt.body === null ? 0 : 64,
        bytesOut: fault ? 40 : 512,
        ttfb: duration * 0.8,
        duration,
        fault: tag,
        faults: tag === null ? [] : [tag],
        retryAfter: fault ? 1 : null,
        bodyHash: attempt.body,
        userAgent: ua,
        headers: {},
        error: null,
      }),
    );
    if (lines.length === 10000) {
      write(lines.join('\n') + '\n');
      lines.length = 0;
    }
  }
  if (lines.length > 0) write(lines.join('\n') + '\n');
  fs.closeSync(fd);
  return { records: total, bytes, seconds: (performance.now() - started) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, n, clients] = process.argv.slice(2);
  if (!file || !n) {
    console.error('usage: node bench/gen-recording.js <file> <records> [clients]');
    process.exit(2);
  }
  const r = generateRecording(file, Number(n), clients ? Number(clients) : undefined);
  if (process.send) process.send({ type: 'ready', ...r });
  else console.log(JSON.stringify(r));
}
