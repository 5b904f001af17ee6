#!/usr/bin/env node
// A/B: the same proxy configuration from two builds, interleaved, to measure what a change to the
// hot path gains before it is merged. Build B is any folder laid out like dist/ (e.g. a copy of
// dist/ with one function changed, or the dist/ of another worktree).
//
//   node bench/ab.js --b /tmp/variant/dist [--a dist] [--config rec-live-20] [--rounds 6] [--seconds 3] [--connections 10,100]
//
// The B folder must resolve the same packages: put it inside a folder whose node_modules is (a
// link to) this project's. Prints req/s, p50/p99 and proxy CPU per request, and the median per-round
// ratios B/A (throughput) and A-CPU/B-CPU (efficiency).
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, ROOT, cpuMs, median, runAutocannon, runWrk, startNode, tmpDir, which } from './lib.js';
import { proxyConfigs } from './configs.js';

const argv = process.argv.slice(2);
const opt = (n, d) => {
  const i = argv.indexOf(`--${n}`);
  return i === -1 ? d : argv[i + 1];
};
const A = path.resolve(ROOT, opt('a', 'dist'));
const B = opt('b') ? path.resolve(opt('b')) : null;
if (B === null || !fs.existsSync(path.join(B, 'index.js'))) {
  console.error('usage: node bench/ab.js --b <folder with a built index.js> [--a dist] [--config rec-live-20] [--rounds 6] [--seconds 3]');
  process.exit(2);
}
const configName = opt('config', 'rec-live-20');
const rounds = Number(opt('rounds', 6));
const seconds = Number(opt('seconds', 3));
const conns = opt('connections', '10,100').split(',').map(Number);
const tmp = tmpDir('aftershock-ab-');
const configs = proxyConfigs(tmp);
if (!configs[configName]) {
  console.error(`unknown --config ${configName}; one of ${Object.keys(configs).join(', ')}`);
  process.exit(2);
}
const wrk = which('wrk') !== null;
const load = (url, c, s) => (wrk ? runWrk(url, { connections: c, seconds: s }) : runAutocannon(url, { connections: c, seconds: s }));

const up = startNode(path.join(BENCH_DIR, 'upstream.js'));
const { url: target } = await up.ready;
const sides = [];
try {
  for (const [name, dist] of [
    ['A', A],
    ['B', B],
  ]) {
    const c = startNode(path.join(BENCH_DIR, 'proxy-child.js'), [JSON.stringify(configs[configName](target))], { env: { AFTERSHOCK_DIST: dist } });
    sides.push({ name, dist, ...c, url: (await c.ready).url });
  }
  for (const s of sides) await load(`${s.url}/v1/items/42`, 50, 2);
  const runs = new Map();
  for (let r = 0; r < rounds; r++) {
    for (const c of conns) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        const c0 = cpuMs([s.proc.pid]);
        const res = await load(`${s.url}/v1/items/42`, c, seconds);
        const c1 = cpuMs([s.proc.pid]);
        res.cpuUsPerReq = c0 === null ? null : ((c1 - c0) * 1000) / res.requests;
        const key = `${s.name}@${c}`;
        if (!runs.has(key)) runs.set(key, []);
        runs.get(key)[r] = res;
      }
    }
    console.error(`[ab] round ${r + 1}/${rounds}`);
  }
  const lines = [
    `A/B, config ${configName}, ${seconds} s × ${rounds} interleaved rounds; A = ${path.relative(ROOT, A) || A}, B = ${B}`,
    '',
    '| side | conns | req/s | p50 ms | p99 ms | CPU µs/req | B/A req/s | A/B CPU per req |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const c of conns) {
    const a = runs.get(`A@${c}`);
    const b = runs.get(`B@${c}`);
    for (const [name, rs] of [
      ['A', a],
      ['B', b],
    ]) {
      const thr = name === 'B' ? `${median(b.map((x, i) => x.rps / a[i].rps)).toFixed(2)}x` : '';
      const eff = name === 'B' ? `${median(b.map((x, i) => a[i].cpuUsPerReq / x.cpuUsPerReq)).toFixed(2)}x` : '';
      lines.push(`| ${name} | ${c} | ${Math.round(median(rs.map((x) => x.rps)))} | ${median(rs.map((x) => x.p50)).toFixed(2)} | ${median(rs.map((x) => x.p99)).toFixed(2)} | ${median(rs.map((x) => x.cpuUsPerReq)).toFixed(1)} | ${thr} | ${eff} |`);
    }
  }
  console.log(lines.join('\n'));
} finally {
  for (const s of sides) await s.stop();
  await up.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
