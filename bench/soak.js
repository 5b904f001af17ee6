#!/usr/bin/env node
// Nothing-lost soak: N concurrent clients, mixed HTTP and WebSocket, faults on, against the real
// CLI in a child process; SIGTERM lands in the middle of the load. Every exchange a client saw must
// be in the recording exactly once, every line must parse, and the proxy must exit 0.
//
//   node bench/soak.js [--clients 200] [--seconds 60] [--sigterm-at 0.8]
//
// Bounded: loopback only, stops by itself after --seconds (plus the drain).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const CLIENTS = Number(args.clients ?? 200);
const SECONDS = Number(args.seconds ?? 60);
const SIGTERM_AT = Number(args['sigterm-at'] ?? 0.8);
const BIN = fileURLToPath(new URL('../bin/aftershock.js', import.meta.url));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-soak-'));
const recordFile = path.join(dir, 'soak.ndjson');
const profileFile = path.join(dir, 'soak.yaml');
fs.writeFileSync(
  profileFile,
  `name: soak
description: Mixed faults for the nothing-lost soak.
seed: 7
rules:
  - name: some-503
    match: { path: /http/** }
    probability: 0.1
    fault: { type: http-error, status: 503, retryAfter: 1s }
  - name: some-resets
    match: { path: /http/** }
    probability: 0.03
    fault: { type: reset }
  - name: a-little-latency
    match: { path: /http/** }
    probability: 0.2
    fault: { type: latency, delay: 20ms }
  - name: ws-drops
    match: { websocket: true }
    fault: { type: ws-drop, fraction: 0.1 }
`,
);

// Upstream: HTTP echo and WebSocket echo.
const upstream = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => setTimeout(() => res.end('ok'), 2));
});
const wss = new WebSocketServer({ server: upstream });
wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const target = `http://127.0.0.1:${upstream.address().port}`;

const proxy = spawn(process.execPath, [BIN, 'run', '--target', target, '--listen', '127.0.0.1:0', '--admin', 'off', '--profile', profileFile, '--record', recordFile, '--record-headers', 'x-soak-id', '--no-summary', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
proxy.stderr.on('data', (c) => (stderr += c));
const proxyExit = new Promise((r) => proxy.once('exit', (code) => r(code)));
const proxyUrl = await new Promise((resolve, reject) => {
  const t = setInterval(() => {
    const m = /proxying (http:\/\/[\d.]+:\d+)/.exec(stderr);
    if (m) {
      clearInterval(t);
      resolve(m[1]);
    }
    if (proxy.exitCode !== null) reject(new Error(stderr));
  }, 20);
});

const seen = new Map(); // id -> 'response' | 'error' | 'ws-open'
const errorAt = new Map(); // id -> ms since start, for errors
let sigtermAt = Infinity;
let seq = 0;
let stopping = false;
const deadline = Date.now() + SECONDS * 1000;

function httpOnce() {
  const id = `h${++seq}`;
  return new Promise((resolve) => {
    const req = http.request(`${proxyUrl}/http/${id}`, { method: seq % 3 === 0 ? 'POST' : 'GET', agent: false, headers: { 'x-soak-id': id } }, (res) => {
      res.resume();
      res.on('end', () => {
        seen.set(id, 'response');
        resolve();
      });
      res.on('error', () => {
        seen.set(id, 'error');
        errorAt.set(id, Date.now());
        resolve();
      });
    });
    req.on('error', (e) => {
      // Refused after SIGTERM: the request never reached the proxy.
      if (e.code !== 'ECONNREFUSED') {
        seen.set(id, 'error');
        errorAt.set(id, Date.now());
      }
      resolve();
    });
    req.end(seq % 3 === 0 ? 'payload' : undefined);
  });
}

function wsOnce() {
  const id = `w${++seq}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(`${proxyUrl.replace('http', 'ws')}/ws?soak=${id}`);
    let opened = false;
    ws.on('open', () => {
      opened = true;
      seen.set(id, 'ws-open');
      let n = 0;
      const t = setInterval(() => {
        if (n++ >= 5 || ws.readyState !== WebSocket.OPEN) {
          clearInterval(t);
          ws.close(1000);
          return;
        }
        ws.send(`m${n}`);
      }, 10);
    });
    ws.on('error', (e) => {
      if (!opened && e.code !== 'ECONNREFUSED') {
        seen.set(id, 'error');
        errorAt.set(id, Date.now());
      }
    });
    ws.on('close', () => resolve());
  });
}

async function client(i) {
  while (!stopping && Date.now() < deadline) {
    await (i % 10 === 0 ? wsOnce() : httpOnce());
  }
}

const sigtermTimer = setTimeout(() => {
  sigtermAt = Date.now();
  proxy.kill('SIGTERM');
  // Clients keep going: new connections are refused, in-flight ones must finish and be recorded.
  setTimeout(() => (stopping = true), 500);
}, SECONDS * 1000 * SIGTERM_AT);
const t0 = Date.now();
await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
clearTimeout(sigtermTimer);
if (proxy.exitCode === null && !proxy.killed) proxy.kill('SIGTERM');
const exitCode = await proxyExit;
const elapsed = (Date.now() - t0) / 1000;

// Check the recording.
const lines = fs.readFileSync(recordFile, 'utf8').split('\n').filter((l) => l !== '');
let bad = 0;
const recorded = new Map();
for (const line of lines) {
  let r;
  try {
    r = JSON.parse(line);
  } catch {
    bad++;
    continue;
  }
  const id = r.type === 'http' ? r.headers?.['x-soak-id'] : r.type === 'ws' ? /soak=(w\d+)/.exec(r.query ?? '')?.[1] : undefined;
  if (id !== undefined) recorded.set(id, (recorded.get(id) ?? 0) + 1);
}
let missing = 0;
let duplicated = 0;
let unknown = 0;
let unrecordedErrorsAtShutdown = 0;
for (const [id, kind] of seen) {
  const n = recorded.get(id) ?? 0;
  if (n > 1) duplicated++;
  if (n === 0 && kind !== 'error') missing++;
  // A connection error before SIGTERM must have reached the proxy (it is the injected reset or an
  // upstream failure) and be recorded; during shutdown a connection closed before its request was
  // read never became an exchange.
  if (n === 0 && kind === 'error') {
    if ((errorAt.get(id) ?? 0) < sigtermAt) missing++;
    else unrecordedErrorsAtShutdown++;
  }
}
for (const id of recorded.keys()) if (!seen.has(id)) unknown++;
const responses = [...seen.values()].filter((k) => k === 'response').length;
const wsOpen = [...seen.values()].filter((k) => k === 'ws-open').length;
const errors = [...seen.values()].filter((k) => k === 'error').length;
const result = {
  clients: CLIENTS,
  seconds: Math.round(elapsed),
  exchangesSeen: seen.size,
  responses,
  webSockets: wsOpen,
  clientErrors: errors,
  unrecordedErrorsAtShutdown,
  records: lines.length - 1,
  unparsable: bad,
  missing,
  duplicated,
  unknownRecords: unknown,
  proxyExit: exitCode,
};
console.log(JSON.stringify(result, null, 2));
wss.close();
upstream.closeAllConnections();
upstream.close();
fs.rmSync(dir, { recursive: true, force: true });
const ok = bad === 0 && missing === 0 && duplicated === 0 && unknown === 0 && exitCode === 0;
console.log(ok ? 'soak: PASS — every exchange recorded exactly once' : 'soak: FAIL');
process.exit(ok ? 0 : 1);
