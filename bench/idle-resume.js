#!/usr/bin/env node
// Does a proxy stay as cheap after sitting idle? Warms a proxy child, measures CPU per request over
// 1 s runs, leaves it idle, measures again. Seen on this machine: aftershock costing more per request
// for a while after ~20 s idle while the bare http-proxy did not (see BENCHMARKS.md).
//
//   node bench/idle-resume.js [--config pass] [--idle 20] [--runs 8]
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, cpuMs, runWrk, sleep, startNode, tmpDir, which } from './lib.js';
import { proxyConfigs } from './configs.js';

const argv = process.argv.slice(2);
const opt = (n, d) => {
  const i = argv.indexOf(`--${n}`);
  return i === -1 ? d : argv[i + 1];
};
if (!which('wrk')) {
  console.error('idle-resume needs wrk (apt-get install -y wrk)');
  process.exit(2);
}
const idle = Number(opt('idle', 20));
const runs = Number(opt('runs', 8));
const tmp = tmpDir('aftershock-idle-');
const configs = proxyConfigs(tmp);
process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const up = startNode(path.join(BENCH_DIR, 'upstream.js'));
const { url: target } = await up.ready;
for (const name of opt('config', 'baseline,pass').split(',')) {
  const c = startNode(path.join(BENCH_DIR, 'proxy-child.js'), [JSON.stringify(configs[name](target))]);
  const { url } = await c.ready;
  const run = async () => {
    const c0 = cpuMs([c.proc.pid]);
    const r = await runWrk(`${url}/v1/items/42`, { connections: 100, seconds: 1 });
    return Math.round(((cpuMs([c.proc.pid]) - c0) * 1000) / r.requests);
  };
  await runWrk(`${url}/v1/items/42`, { connections: 100, seconds: 3 });
  const before = [];
  for (let i = 0; i < runs; i++) before.push(await run());
  await sleep(idle * 1000);
  const after = [];
  for (let i = 0; i < runs; i++) after.push(await run());
  console.log(`${name.padEnd(10)} CPU µs/req, 1 s runs: warm ${before.join(' ')} | after ${idle} s idle ${after.join(' ')}`);
  await c.stop();
}
await up.stop();
process.exit(0);
