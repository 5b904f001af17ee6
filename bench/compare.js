#!/usr/bin/env node
// Compares two benchmark result files (e.g. a commit's bench-results/latest.json with a fresh run).
// Compare ratios (vs direct, vs baseline) rather than raw req/s: they survive a change of machine
// or of background load much better.
//
//   node bench/compare.js <old.json> <new.json>
//   node bench/compare.js <(git show HEAD~1:bench-results/latest.json) bench-results/latest.json
import fs from 'node:fs';

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node bench/compare.js <old.json> <new.json>');
  process.exit(2);
}
const A = JSON.parse(fs.readFileSync(a, 'utf8'));
const B = JSON.parse(fs.readFileSync(b, 'utf8'));

const pct = (o, n) => (o && n ? `${n >= o ? '+' : ''}${(((n - o) / o) * 100).toFixed(1)} %` : '');
const f = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
const out = [`old: ${A.machine?.commit ?? '?'} ${A.machine?.date ?? ''}   new: ${B.machine?.commit ?? '?'} ${B.machine?.date ?? ''}`, ''];

function table(title, rowsA, rowsB, key, cols) {
  if (!rowsA || !rowsB) return;
  out.push(title, `| row | ${cols.map((c) => `${c} old | ${c} new | Δ`).join(' | ')} |`, `| --- |${' ---: | ---: | ---: |'.repeat(cols.length)}`);
  for (const rb of rowsB) {
    const ra = rowsA.find((r) => key(r) === key(rb));
    if (!ra) continue;
    out.push(`| ${key(rb)} | ${cols.map((c) => `${f(ra[c])} | ${f(rb[c])} | ${pct(ra[c], rb[c])}`).join(' | ')} |`);
  }
  out.push('');
}

table('HTTP', A.http?.rows, B.http?.rows, (r) => `${r.id}@${r.connections}`, ['rps', 'p50', 'p99', 'vsDirect', 'vsBaseline']);
table('Paced latency', A.paced?.rows, B.paced?.rows, (r) => r.id, ['p50', 'p99', 'addedP50']);
table('Injected latency', A.latency?.rows, B.latency?.rows, (r) => `${r.id}@${r.connections}`, ['p50', 'p99']);
table('WebSocket', A.ws?.rows, B.ws?.rows, (r) => r.id, ['rps', 'vsDirect']);
table('Memory', A.memory?.rows, B.memory?.rows, (r) => r.id, ['rssAfter', 'perConnKiB']);
table('Offline analysis', A.offline ? [{ id: 'offline', ...A.offline }] : null, B.offline ? [{ id: 'offline', ...B.offline }] : null, (r) => r.id, ['recordsPerSecond', 'peakRss']);
console.log(out.join('\n'));
