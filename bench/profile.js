#!/usr/bin/env node
// CPU profile of a proxy child under load (or of the offline analysis), summarised by self time.
//
//   node bench/profile.js [--config rec-live-20|rec|pass|baseline|fault-10] [--seconds 10] [--connections 100]
//   node bench/profile.js --ws [--config rec-live] [--seconds 8]     WebSocket echo relay
//   node bench/profile.js --analysis [--records 500000] [--threads 1]   (with N > 1: one worker's profile)
//
// Runs the child with `node --cpu-prof`, loads it with wrk (autocannon when wrk is missing), stops
// it cleanly so the profile is written, and prints the top self-time functions and the self time
// per code group. The raw .cpuprofile stays in bench-results/ (git-ignored) for a flame graph
// (open it in Chrome DevTools > Performance, or speedscope).
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, ROOT, runAutocannon, runWrk, startNode, tmpDir, which } from './lib.js';
import { proxyConfigs } from './configs.js';
import { summarizeProfile } from './profile-top.js';

const argv = process.argv.slice(2);
const opt = (n, d) => {
  const i = argv.indexOf(`--${n}`);
  return i === -1 ? d : argv[i + 1];
};
const outDir = path.join(ROOT, 'bench-results');
fs.mkdirSync(outDir, { recursive: true });
const tmp = tmpDir('aftershock-profile-');

const CONFIGS = proxyConfigs(tmp);

function newestProfile(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  return path.join(dir, files.sort().at(-1));
}

/** The largest profile: with worker threads, one per thread is written; a worker's is the busiest. */
function largestProfile(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${dir}`);
  return path.join(dir, files.sort((a, b) => fs.statSync(path.join(dir, b)).size - fs.statSync(path.join(dir, a)).size)[0]);
}

function print(title, s, file) {
  const lines = [`${title}`, `busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled; profile: ${path.relative(ROOT, file)}`, '', 'self time by group:'];
  for (const g of s.groups.slice(0, 14)) lines.push(`${String(g.pct).padStart(6)} %  ${g.group}`);
  lines.push('', 'top functions by self time:');
  for (const f of s.top) lines.push(`${String(f.pct).padStart(6)} %  ${f.fn}  ${f.where}`);
  return lines.join('\n');
}

async function profileProxy() {
  const config = opt('config', argv.includes('--ws') ? 'rec-live' : 'rec-live-20');
  const seconds = Number(opt('seconds', 10));
  const connections = Number(opt('connections', 100));
  const profDir = path.join(tmp, 'prof');
  fs.mkdirSync(profDir);
  const up = startNode(path.join(BENCH_DIR, 'upstream.js'));
  const { url: target } = await up.ready;
  const child = startNode(path.join(BENCH_DIR, 'proxy-child.js'), [JSON.stringify(CONFIGS[config](target))], {
    execArgv: ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '100'],
  });
  const { url } = await child.ready;
  if (argv.includes('--ws')) {
    const wsRun = async (s) => {
      const l = startNode(path.join(BENCH_DIR, 'load-ws.js'), [JSON.stringify({ url: url.replace(/^http/, 'ws') + '/ws/echo', connections: 50, seconds: s })]);
      await l.ready;
      const r = await l.request({ type: 'run' });
      await l.stop();
      return r;
    };
    await wsRun(2);
    const r = await wsRun(seconds);
    await child.stop();
    await up.stop();
    const file = path.join(outDir, `profile-ws-${config}.cpuprofile`);
    fs.copyFileSync(newestProfile(profDir), file);
    const text = print(`WebSocket echo through proxy config ${config}: ${Math.round(r.rps)} round trips/s over 50 connections (${seconds} s; profiler overhead included)`, summarizeProfile(file, 30), file);
    fs.writeFileSync(path.join(outDir, `profile-ws-${config}.txt`), text + '\n');
    console.log(text);
    return;
  }
  const load = (c, s) => (which('wrk') ? runWrk(`${url}/v1/items/42`, { connections: c, seconds: s }) : runAutocannon(`${url}/v1/items/42`, { connections: c, seconds: s }));
  await load(50, 2);
  const r = await load(connections, seconds);
  await child.stop();
  await up.stop();
  const file = path.join(outDir, `profile-${config}.cpuprofile`);
  fs.copyFileSync(newestProfile(profDir), file);
  const s = summarizeProfile(file, 30);
  const text = print(`proxy config ${config}: ${Math.round(r.rps)} req/s at ${connections} connections during the profile (${seconds} s; profiler overhead included)`, s, file);
  fs.writeFileSync(path.join(outDir, `profile-${config}.txt`), text + '\n');
  console.log(text);
}

async function profileAnalysis() {
  const records = Number(opt('records', 500_000));
  const file = path.join(tmp, 'offline.ndjson');
  const gen = startNode(path.join(BENCH_DIR, 'gen-recording.js'), [file, String(records)]);
  await gen.ready;
  await gen.exited;
  const profDir = path.join(tmp, 'prof');
  fs.mkdirSync(profDir);
  const threads = Number(opt('threads', 1));
  const c = startNode(path.join(BENCH_DIR, 'offline-analysis.js'), [file, String(threads)], { execArgv: ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', '200'] });
  await c.ready;
  const r = await c.request({ type: 'run' });
  await c.stop();
  const out = path.join(outDir, 'profile-offline-analysis.cpuprofile');
  fs.copyFileSync(threads > 1 ? largestProfile(profDir) : newestProfile(profDir), out);
  const s = summarizeProfile(out, 30);
  const text = print(`offline analysis of ${records} records in ${threads} thread(s): ${Math.round(records / r.seconds)} records/s (profiler overhead included)${threads > 1 ? '; the profile is one worker\'s' : ''}`, s, out);
  fs.writeFileSync(path.join(outDir, 'profile-offline-analysis.txt'), text + '\n');
  console.log(text);
}

try {
  if (argv.includes('--analysis')) await profileAnalysis();
  else await profileProxy();
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
