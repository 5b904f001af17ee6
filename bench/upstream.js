// The loopback upstream of the benchmarks, in its own process: a tiny HTTP server answering a small
// fixed body (keep-alive, content-length), the same after a timer on /sleep/<ms>, and a WebSocket
// echo on the same port.
//
//   node bench/upstream.js            (prints the port; reports it to a parent over IPC)
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { processFacts, serveParent } from './lib.js';

const BODY = Buffer.from('{"ok":true,"service":"bench-upstream"}\n');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const server = http.createServer((req, res) => {
  // /sleep/<ms>: the same answer after a timer, for the latency floor of the machine (no proxy).
  if (req.url.startsWith('/sleep/')) {
    setTimeout(() => {
      res.writeHead(200, HEADERS);
      res.end(BODY);
    }, Number(req.url.slice(7)) || 0);
    return;
  }
  if (req.method === 'GET' || req.method === 'HEAD') {
    res.writeHead(200, HEADERS);
    res.end(BODY);
    return;
  }
  req.resume();
  req.once('end', () => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.requestTimeout = 0;
server.maxConnections = 100_000;
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, binary) => ws.send(data, { binary }));
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  if (process.send) {
    serveParent({ facts: () => ({ ...processFacts(), connections: wss.clients.size }) }, () => new Promise((r) => server.close(r)));
    process.send({ type: 'ready', url: `http://127.0.0.1:${port}`, port });
  } else {
    console.log(`upstream on http://127.0.0.1:${port}`);
  }
});
