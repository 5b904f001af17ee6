#!/usr/bin/env node
// The upstream leg alone: minimal forwarders that differ only in how they talk to the upstream,
// measured interleaved against the same upstream (each forwarder in its own process).
//
//   node bench/upstream-leg.js [--rounds 5] [--seconds 3] [--quick]
//
//   http-proxy      proxy.web() with a keep-alive http.Agent (what aftershock uses today)
//   http.request    node's http.request + the same agent, piped by hand (http-proxy's own cost removed)
//   undici request  undici@7 Pool.request(), body piped to the client response
//   undici stream   undici@7 Pool.stream(), writing straight into the client response
//
// Results go to stdout (Markdown) and bench-results/upstream-leg.json.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { BENCH_DIR, ROOT, fmt, median, runAutocannon, runWrk, serveParent, startNode, which } from './lib.js';

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'trailer', 'host']);

function cleanRequestHeaders(h, host) {
  const out = {};
  for (const k in h) if (!HOP.has(k)) out[k] = h[k];
  out.host = host;
  return out;
}

async function serve(kind, target) {
  const t = new URL(target);
  let handler;
  let closeUp = async () => undefined;
  if (kind === 'http-proxy') {
    const { default: httpProxy } = await import('http-proxy');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
    const proxy = httpProxy.createProxyServer({ target, agent, changeOrigin: true });
    handler = (req, res) =>
      proxy.web(req, res, {}, () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
    closeUp = async () => agent.destroy();
  } else if (kind === 'http.request') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
    handler = (req, res) => {
      const up = http.request({ agent, host: t.hostname, port: t.port, method: req.method, path: req.url, headers: cleanRequestHeaders(req.headers, t.host) }, (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
    };
    closeUp = async () => agent.destroy();
  } else if (kind === 'undici-request' || kind === 'undici-stream') {
    const { Pool } = await import('undici');
    const pool = new Pool(t.origin, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
    const fail = (res) => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    };
    const respHeaders = (headers) => {
      const out = {};
      for (const k in headers) if (!HOP.has(k)) out[k] = headers[k];
      return out;
    };
    if (kind === 'undici-request') {
      handler = (req, res) => {
        const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
        pool.request({ method: req.method, path: req.url, headers: cleanRequestHeaders(req.headers, t.host), body: hasBody ? req : null }).then(
          ({ statusCode, headers, body }) => {
            res.writeHead(statusCode, respHeaders(headers));
            body.pipe(res);
          },
          () => fail(res),
        );
      };
    } else {
      handler = (req, res) => {
        const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
        pool
          .stream({ method: req.method, path: req.url, headers: cleanRequestHeaders(req.headers, t.host), body: hasBody ? req : null, opaque: res }, ({ statusCode, headers, opaque }) => {
            opaque.writeHead(statusCode, respHeaders(headers));
            return opaque;
          })
          .catch(() => fail(res));
      };
    }
    closeUp = async () => pool.close();
  } else {
    throw new Error(`unknown forwarder ${kind}`);
  }
  const server = http.createServer(handler);
  server.keepAliveTimeout = 65_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  serveParent({}, async () => {
    server.closeAllConnections();
    server.close();
    await closeUp();
  });
  process.send({ type: 'ready', url: `http://127.0.0.1:${server.address().port}` });
}

async function main() {
  const argv = process.argv.slice(2);
  const opt = (n, d) => {
    const i = argv.indexOf(`--${n}`);
    return i === -1 ? d : argv[i + 1];
  };
  const quick = argv.includes('--quick');
  const rounds = Number(opt('rounds', quick ? 1 : 5));
  const seconds = Number(opt('seconds', quick ? 1 : 3));
  const wrk = which('wrk') !== null;
  const load = (url, connections, s) => (wrk ? runWrk(url, { connections, seconds: s }) : runAutocannon(url, { connections, seconds: s }));

  const up = startNode(path.join(BENCH_DIR, 'upstream.js'));
  const { url: target } = await up.ready;
  const kinds = ['http-proxy', 'http.request', 'undici-request', 'undici-stream'];
  const fwd = [];
  try {
    for (const k of kinds) {
      const c = startNode(path.join(BENCH_DIR, 'upstream-leg.js'), ['--serve', k, target]);
      fwd.push({ kind: k, ...c, url: (await c.ready).url });
    }
    for (const f of fwd) await load(f.url + '/v1/items/42', 50, quick ? 1 : 2);
    const runs = new Map();
    const cells = [];
    for (const c of [10, 100]) for (const f of fwd) cells.push({ f, c });
    for (let r = 0; r < rounds; r++) {
      const order = cells.map((_, i) => cells[(i + r * 3) % cells.length]);
      for (const { f, c } of order) {
        const res = await load(f.url + '/v1/items/42', c, seconds);
        const key = `${f.kind}@${c}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key)[r] = res;
      }
      console.error(`[upstream-leg] round ${r + 1}/${rounds}`);
    }
    const rows = [];
    for (const c of [10, 100]) {
      const base = runs.get(`http-proxy@${c}`);
      for (const f of fwd) {
        const rs = runs.get(`${f.kind}@${c}`);
        rows.push({
          kind: f.kind,
          connections: c,
          rps: median(rs.map((x) => x.rps)),
          p50: median(rs.map((x) => x.p50)),
          p99: median(rs.map((x) => x.p99)),
          vsHttpProxy: median(rs.map((x, i) => x.rps / base[i].rps)),
          errors: rs.reduce((a, x) => a + x.errors + x.non2xx, 0),
        });
      }
    }
    const lines = [
      `Upstream leg only (same upstream, ${seconds} s × ${rounds} interleaved rounds, ${wrk ? 'wrk -t1' : 'autocannon'}; Node ${process.version}, undici ${JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/undici/package.json'), 'utf8')).version})`,
      '',
      '| forwarder | conns | req/s | p50 ms | p99 ms | vs http-proxy | errors |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.kind} | ${r.connections} | ${fmt(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.vsHttpProxy.toFixed(2)}x | ${r.errors} |`),
    ];
    console.log(lines.join('\n'));
    if (!argv.includes('--no-write')) {
      fs.mkdirSync(path.join(ROOT, 'bench-results'), { recursive: true });
      fs.writeFileSync(path.join(ROOT, 'bench-results', 'upstream-leg.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, rounds, seconds, rows, markdown: lines.join('\n') }, null, 2) + '\n');
    }
  } finally {
    for (const f of fwd) await f.stop();
    await up.stop();
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4]);
else await main();
