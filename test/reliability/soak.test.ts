/**
 * Nothing lost: the bounded soak (mixed HTTP and WebSocket, faults on, SIGTERM mid-load against the
 * real CLI) in a short form. The full form is `node bench/soak.js` (200 clients, 60 s).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('nothing lost under load', () => {
  it('records every exchange exactly once, including through SIGTERM', () => {
    const script = fileURLToPath(new URL('../../bench/soak.js', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--clients', '40', '--seconds', '4'], { encoding: 'utf8', timeout: 60_000 });
    const out = r.stdout;
    const json = JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as Record<string, number>;
    expect(json.exchangesSeen).toBeGreaterThan(500);
    expect(json.missing).toBe(0);
    expect(json.duplicated).toBe(0);
    expect(json.unparsable).toBe(0);
    expect(json.unknownRecords).toBe(0);
    expect(json.proxyExit).toBe(0);
    expect(r.status).toBe(0);
  });
});
