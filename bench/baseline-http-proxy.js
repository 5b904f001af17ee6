// The baseline: a bare http-proxy forwarder with a keep-alive agent, nothing else. This is what a
// "naive" Node chaos proxy starts from; aftershock is measured against it in the same run.
//
//   node bench/baseline-http-proxy.js --target http://127.0.0.1:3000 [--port 0] [--delay 100]
//
// --delay N puts a plain setTimeout in front of every forward (the naive way to inject latency).
import http from 'node:http';
import httpProxy from 'http-proxy';

/** Starts the baseline; resolves to { url, close }. */
export async function startBaseline({ target, port = 0, delayMs = 0 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: 'lifo' });
  const proxy = httpProxy.createProxyServer({ target, agent, xfwd: true, changeOrigin: true });
  const onError = (_err, _req, res) => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  };
  const server = http.createServer(
    delayMs > 0
      ? (req, res) => setTimeout(() => proxy.web(req, res, {}, onError), delayMs)
      : (req, res) => proxy.web(req, res, {}, onError),
  );
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () =>
      new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, def) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? def : process.argv[i + 1];
  };
  const target = arg('target');
  if (!target) {
    console.error('usage: node bench/baseline-http-proxy.js --target http://127.0.0.1:3000 [--port 0] [--delay 0]');
    process.exit(2);
  }
  const b = await startBaseline({ target, port: Number(arg('port', 0)), delayMs: Number(arg('delay', 0)) });
  console.log(`baseline http-proxy on ${b.url} -> ${target}`);
}
