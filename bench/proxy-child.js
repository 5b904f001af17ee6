// One proxy under test, alone in its process so every proxy gets the same share of the machine.
//
//   node bench/proxy-child.js '<json config>'
//
// config: { kind: 'aftershock', target, options?, profileYaml? }   startProxy(options) from dist/
//         (or from the build in $AFTERSHOCK_DIST, to compare a variant: see bench/ab.js)
//         { kind: 'baseline', target, delayMs? }                    bench/baseline-http-proxy.js
// Over IPC: sends { type: 'ready', url }, answers 'facts' (memory, fds) and 'stats', exits 0 on
// 'stop' after closing the proxy (so `node --cpu-prof` writes its profile).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { distModule, processFacts, serveParent } from './lib.js';

const config = JSON.parse(process.argv[2] ?? '{}');
let handle;
let profileDir = null;
try {
  if (config.kind === 'baseline') {
    const { startBaseline } = await import('./baseline-http-proxy.js');
    handle = await startBaseline({ target: config.target, delayMs: config.delayMs ?? 0 });
  } else if (config.kind === 'aftershock') {
    const { startProxy } = await import(distModule('index.js'));
    const options = { listen: '127.0.0.1:0', admin: false, watch: false, ...config.options, target: config.target };
    if (config.profileYaml !== undefined) {
      profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aftershock-bench-profile-'));
      const file = path.join(profileDir, 'profile.yaml');
      fs.writeFileSync(file, config.profileYaml);
      options.profile = file;
    }
    handle = await startProxy(options);
  } else {
    throw new Error(`unknown kind ${config.kind}`);
  }
} catch (err) {
  process.send?.({ type: 'error', message: String(err?.stack ?? err) });
  process.exit(1);
}

let eld = null;
serveParent(
  {
    facts: () => processFacts(),
    // Event-loop delay while a load runs: tells a proxy that blocks its loop from a busy machine
    // that does not give it a core in time.
    eldStart: () => {
      eld?.disable();
      eld = monitorEventLoopDelay({ resolution: 1 });
      eld.enable();
      return null;
    },
    eldStop: () => {
      if (eld === null) return null;
      eld.disable();
      const r = { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 };
      eld = null;
      return r;
    },
    gc: () => {
      globalThis.gc?.();
      return processFacts();
    },
    stats: () => (typeof handle.stats === 'function' ? handle.stats() : null),
  },
  async () => {
    await handle.close();
    if (profileDir !== null) fs.rmSync(profileDir, { recursive: true, force: true });
  },
);
process.send({ type: 'ready', url: handle.url });
