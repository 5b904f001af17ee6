// A paced latency probe in its own process: C keep-alive connections, each sending one GET at a
// fixed rate and timing the answer. At a light load nothing queues, so the difference between a
// proxy's latency and the direct one is the proxy's added latency per request (a closed-loop run at
// full speed measures queueing instead).
//
//   node bench/load-paced.js '{"url":"http://127.0.0.1:3000/","connections":10,"ratePerConn":100,"seconds":3}'
import net from 'node:net';
import { serveParent } from './lib.js';

const cfg = JSON.parse(process.argv[2]);

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function probe({ url, connections, ratePerConn, seconds }) {
  const u = new URL(url);
  const request = Buffer.from(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: bench-paced\r\n\r\n`);
  const interval = 1000 / ratePerConn;
  const latencies = [];
  let errors = 0;
  let non2xx = 0;
  const warmupUntil = performance.now() + 300;
  const deadline = performance.now() + 300 + seconds * 1000;
  return new Promise((resolve) => {
    let open = connections;
    for (let i = 0; i < connections; i++) {
      const s = net.connect(Number(u.port), u.hostname);
      s.setNoDelay(true);
      let buf = Buffer.alloc(0);
      let sentAt = 0;
      let next = performance.now() + (i * interval) / connections;
      let timer = null;
      const send = () => {
        timer = null;
        if (performance.now() >= deadline) {
          s.end();
          return;
        }
        sentAt = performance.now();
        s.write(request);
      };
      const schedule = () => {
        next += interval;
        const wait = next - performance.now();
        if (wait <= 0) {
          next = performance.now();
          send();
        } else timer = setTimeout(send, wait);
      };
      s.on('connect', () => {
        timer = setTimeout(send, Math.max(0, next - performance.now()));
      });
      s.on('data', (chunk) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        for (;;) {
          const he = buf.indexOf('\r\n\r\n');
          if (he === -1) return;
          const head = buf.subarray(0, he).toString('latin1');
          const status = Number(head.slice(9, 12));
          const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          let end;
          if (cl) {
            end = he + 4 + Number(cl[1]);
            if (buf.length < end) return;
          } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
            const z = buf.indexOf('\r\n0\r\n\r\n', he);
            if (z === -1) return;
            end = z + 7;
          } else {
            end = he + 4;
          }
          const now = performance.now();
          if (sentAt >= warmupUntil) {
            latencies.push(now - sentAt);
            if (status < 200 || status > 399) non2xx++;
          }
          buf = buf.subarray(end);
          schedule();
        }
      });
      s.on('error', () => {
        errors++;
      });
      s.on('close', () => {
        if (timer !== null) clearTimeout(timer);
        if (--open === 0) done();
      });
    }
    const done = () => {
      latencies.sort((a, b) => a - b);
      resolve({
        tool: 'paced',
        requests: latencies.length,
        rps: latencies.length / seconds,
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1] ?? null,
        mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
        errors,
        non2xx,
      });
    };
    // Hard stop in case a connection hangs.
    setTimeout(() => done(), (seconds + 10) * 1000).unref();
  });
}

serveParent({ run: () => probe(cfg) });
process.send({ type: 'ready' });
