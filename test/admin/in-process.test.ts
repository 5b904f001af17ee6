/** The control API of a proxy started in-process (the library), with the defaults. */
import { describe, expect, it } from 'vitest';
import { startProxy } from '../../src/index.js';
import { onCleanup, request, startUpstream } from '../helpers.js';

describe('control API: in-process default', () => {
  it('two proxies started in-process with the defaults each get their own loopback control API (no clash over 8081)', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const a = await startProxy({ target: up.url, listen: '127.0.0.1:0' });
    onCleanup(() => a.close());
    const b = await startProxy({ target: up.url, listen: '127.0.0.1:0' });
    onCleanup(() => b.close());
    expect(a.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(b.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(a.adminUrl).not.toBe(b.adminUrl);
    expect(a.adminUrl).not.toBe('http://127.0.0.1:8081');
    for (const p of [a, b]) expect((await request(`${p.adminUrl}/healthz`)).status).toBe(200);
  });
});

describe('the package root', () => {
  it('exports what the README imports from it (writeHar, formatComparison next to the rest)', async () => {
    const root = await import('../../src/index.js');
    for (const name of ['startProxy', 'createAnalyzer', 'analyzeFiles', 'formatReport', 'writeHar', 'parseGate', 'evaluateGates', 'runDemo', 'formatComparison', 'AdminClient']) {
      expect(typeof (root as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});
