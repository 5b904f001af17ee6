// Opens many connections to a proxy and keeps them open and idle, in its own process, so the
// proxy's memory per idle connection can be read.
//
//   node bench/hold-connections.js '{"url":"http://127.0.0.1:8080/","count":10000,"kind":"http"|"ws"}'
//
// http: each connection sends one GET (keep-alive), reads the answer, then stays idle.
// ws:   each connection completes a WebSocket upgrade, echoes one message, then stays idle.
import net from 'node:net';
import WebSocket from 'ws';
import { processFacts, serveParent } from './lib.js';

const cfg = JSON.parse(process.argv[2]);
const held = [];
let failed = 0;
let firstError = null;

function openHttp(u) {
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port), u.hostname);
    let buf = '';
    const fail = (err) => {
      failed++;
      firstError ??= String(err?.message ?? err);
      s.destroy();
      resolve();
    };
    s.setTimeout(15000, () => fail(new Error('timeout')));
    s.once('error', fail);
    s.on('connect', () => s.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: bench-idle\r\n\r\n`));
    const onData = (c) => {
      buf += c.toString('latin1');
      const he = buf.indexOf('\r\n\r\n');
      if (he === -1) return;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, he));
      if (cl && buf.length < he + 4 + Number(cl[1])) return;
      s.off('data', onData);
      s.setTimeout(0);
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      held.push(s);
      resolve();
    };
    s.on('data', onData);
  });
}

function openWs(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 15000 });
    const fail = (err) => {
      failed++;
      firstError ??= String(err?.message ?? err);
      ws.terminate();
      resolve();
    };
    ws.once('error', fail);
    ws.once('open', () => ws.send('hello'));
    ws.once('message', () => {
      ws.removeAllListeners('error');
      ws.on('error', () => undefined);
      held.push(ws);
      resolve();
    });
  });
}

async function open({ url, count, kind, concurrency = 200 }) {
  const u = new URL(url);
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      await (kind === 'ws' ? openWs(url) : openHttp(u));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { held: held.length, failed, firstError, seconds: (performance.now() - started) / 1000, facts: processFacts() };
}

serveParent({ open: () => open(cfg) }, async () => {
  for (const h of held) (h.terminate ?? h.destroy).call(h);
});
process.send({ type: 'ready' });
