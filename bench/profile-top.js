// Summarises a V8 .cpuprofile: the top functions by self time, and self time grouped by where the
// code lives (aftershock's dist/, http-proxy, node's http internals, GC, ...).
//
//   node bench/profile-top.js <file.cpuprofile> [top=30]
import fs from 'node:fs';
import path from 'node:path';

/** Returns { totalMs, top: [{ fn, where, selfMs, pct }], groups: [{ group, selfMs, pct }] }. */
export function summarizeProfile(file, top = 30) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // Sample i lasted timeDeltas[i + 1]; attribute it to samples[i].
  const deltas = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const groups = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const e = fns.get(key) ?? { fn: name, where, us: 0 };
    e.us += us;
    fns.set(key, e);
    const g = groupOf(cf.url, name);
    groups.set(g, (groups.get(g) ?? 0) + us);
    total += us;
  }
  const idle = groups.get('(idle)') ?? 0;
  const busy = total - idle;
  const pct = (us) => Math.round((1000 * us) / busy) / 10;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    top: [...fns.values()]
      .filter((e) => e.fn !== '(idle)')
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.us / 100) / 10, pct: pct(e.us) })),
    groups: [...groups.entries()]
      .filter(([g]) => g !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .map(([group, us]) => ({ group, selfMs: Math.round(us / 100) / 10, pct: pct(us) })),
  };
}

function shortUrl(url) {
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) return u.slice(nm + 'node_modules/'.length);
  const d = u.indexOf('/dist/');
  if (d !== -1) return u.slice(d + 1);
  const b = u.indexOf('/bench/');
  if (b !== -1) return u.slice(b + 1);
  return u.startsWith('node:') ? u : path.basename(u);
}

function groupOf(url, name) {
  if (!url) {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(idle)') return '(idle)';
    if (name === '(program)') return '(program: native, not JS)';
    return `native: ${name}`;
  }
  if (url.includes('/dist/')) {
    const m = /\/dist\/([^/]+)\//.exec(url);
    return `aftershock dist/${m ? m[1] : ''}`;
  }
  if (url.includes('node_modules/http-proxy/')) return 'http-proxy';
  if (url.includes('node_modules/')) return `node_modules/${url.split('node_modules/')[1].split('/')[0]}`;
  if (url.startsWith('node:internal/http') || url.startsWith('node:_http') || url.startsWith('node:http')) return 'node http (parser, incoming/outgoing, agent)';
  if (url.startsWith('node:internal/streams') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:net') || url.startsWith('node:internal/stream_base') || url.startsWith('node:internal/net')) return 'node net/sockets';
  if (url.startsWith('node:events') || url.startsWith('node:internal/event')) return 'node events';
  if (url.startsWith('node:internal/timers') || url.startsWith('node:timers')) return 'node timers';
  if (url.startsWith('node:')) return `node other (${url.replace(/^node:(internal\/)?/, '').split('/')[0]})`;
  return 'other';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/profile-top.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  const s = summarizeProfile(file, Number(process.argv[3] ?? 30));
  console.log(`busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled\n`);
  console.log('self time by group');
  for (const g of s.groups) console.log(`${String(g.pct).padStart(6)} %  ${g.selfMs.toFixed(0).padStart(7)} ms  ${g.group}`);
  console.log('\ntop functions by self time');
  for (const f of s.top) console.log(`${String(f.pct).padStart(6)} %  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.fn}  ${f.where}`);
}
