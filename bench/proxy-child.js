// One proxy under test, alone in its process so every proxy gets the same share of the machine.
//
//   node bench/proxy-child.js '<json config>'
//
// config: { kind: 'aftershock', target, options?, profileYaml? }   startProxy(options) from dist/
//         { kind: 'baseline', target, delayMs? }                    bench/baseline-http-proxy.js
// Over IPC: sends { type: 'ready', url }, answers 'facts' (memory, fds) and 'stats', exits 0 on
// 'stop' after closing the proxy (so `node --cpu-prof` writes its profile).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processFacts, serveParent } from './lib.js';

const config = JSON.parse(process.argv[2] ?? '{}');
let handle;
let profileDir = null;
try {
  if (config.kind === 'baseline') {
    const { startBaseline } = await import('./baseline-http-proxy.js');
    handle = await startBaseline({ target: config.target, delayMs: config.delayMs ?? 0 });
  } else if (config.kind === 'aftershock') {
    const { startProxy } = await import('../dist/index.js');
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

serveParent(
  {
    facts: () => processFacts(),
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
