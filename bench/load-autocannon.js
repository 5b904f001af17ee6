// autocannon in its own process (the load generator when wrk is not installed).
//
//   node bench/load-autocannon.js '{"url":"http://127.0.0.1:3000","connections":10,"seconds":5}'
import autocannon from 'autocannon';
import { serveParent } from './lib.js';

const cfg = JSON.parse(process.argv[2]);

function run() {
  return new Promise((resolve, reject) => {
    autocannon({ url: cfg.url, connections: cfg.connections, duration: cfg.seconds, timeout: 10 }, (err, r) => {
      if (err) {
        reject(err);
        return;
      }
      const seconds = r.duration || cfg.seconds;
      resolve({
        tool: 'autocannon',
        requests: r.requests.total,
        rps: r.requests.total / seconds,
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        max: r.latency.max,
        mean: r.latency.average,
        errors: r.errors + r.timeouts,
        non2xx: r.non2xx,
      });
    });
  });
}

serveParent({ run });
process.send({ type: 'ready' });
