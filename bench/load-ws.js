// WebSocket echo load in its own process: C connections, each sending a small message and waiting
// for its echo before the next (request/response ping-pong), for S seconds. Reports round trips/s
// and round-trip latency percentiles (ms).
//
//   node bench/load-ws.js '{"url":"ws://127.0.0.1:3000/ws","connections":50,"seconds":3}'
import WebSocket from 'ws';
import { serveParent } from './lib.js';

const cfg = JSON.parse(process.argv[2]);
const PAYLOAD = Buffer.from('{"op":"ping","data":"0123456789abcdef0123456789abcdef"}');

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run({ url, connections, seconds }) {
  const sockets = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url, { perMessageDeflate: false });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
  // Sample latencies (every 4th round trip) to keep the client light.
  const lat = [];
  let trips = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const all = Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          let sentAt = 0;
          let n = 0;
          ws.on('message', () => {
            const now = performance.now();
            trips++;
            if ((n++ & 3) === 0) lat.push(now - sentAt);
            if (now >= deadline) {
              resolve();
              return;
            }
            sentAt = now;
            ws.send(PAYLOAD);
          });
          ws.on('error', () => {
            errors++;
            resolve();
          });
          ws.on('close', () => resolve());
          sentAt = performance.now();
          ws.send(PAYLOAD);
        }),
    ),
  );
  // A connection whose echo never comes (a fault that fired) must not hang the bench.
  await Promise.race([all, new Promise((r) => setTimeout(r, seconds * 1000 + 5000).unref())]);
  const elapsed = (performance.now() - start) / 1000;
  for (const ws of sockets) ws.terminate();
  lat.sort((a, b) => a - b);
  return { tool: 'ws', trips, rps: trips / elapsed, p50: percentile(lat, 50), p99: percentile(lat, 99), errors };
}

serveParent({ run: () => run(cfg) });
process.send({ type: 'ready' });
