/**
 * Exchanges the proxy itself cut, recorded for what cut them: a response fault still streaming
 * when the drain ran out was cut by the shutdown (the upstream never reset), and a request
 * pipelined behind an injected fault that closed its connection was cut by that fault (its
 * client never left). Real upstreams on 127.0.0.1:0, raw `net` sockets for the pipelining.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { onCleanup, readRecords, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';
import { parseProfile } from '../../src/rules/index.js';
import type { HttpRecord } from '../../src/record/schema.js';

describe('response faults in flight at shutdown', () => {
  it('a throttled, a slowed and a corrupted-and-slowed body cut by the end of the drain are recorded shutdown, as a slow upstream body is', async () => {
    const up = await startUpstream((req, res) => {
      req.resume();
      if (req.url === '/plain') {
        // The upstream itself is slow: a chunk every 20 ms of a 200 KB body.
        res.writeHead(200, { 'content-length': 200_000 });
        const t = setInterval(() => res.write(Buffer.alloc(1000, 0x61)), 20);
        res.on('close', () => clearInterval(t));
        return;
      }
      const body = Buffer.alloc(1_000_000, 0x62);
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    });
    const file = path.join(tempDir(), 'shut.ndjson');
    const proxy = await startTestProxy({
      target: up.url,
      record: file,
      drainTimeout: '200ms',
      profile: parseProfile(
        [
          'rules:',
          '  - { name: thr, match: { path: /thr }, fault: { type: throttle, bytesPerSecond: 50000 } }',
          '  - { name: sb, match: { path: /slow }, fault: { type: slow-body, chunkSize: 100, interval: 50ms } }',
          '  - { name: corr, match: { path: /corrupt }, fault: { type: corrupt, count: 3 } }',
          '  - { name: sb2, match: { path: /corrupt }, fault: { type: slow-body, chunkSize: 100, interval: 50ms } }',
        ].join('\n'),
        null,
      ),
    });
    const paths = ['/plain', '/thr', '/slow', '/corrupt'];
    const got = new Map<string, number>();
    for (const p of paths) {
      const req = http.get(`${proxy.url}${p}`, { agent: false }, (res) => res.on('data', (c: Buffer) => got.set(p, (got.get(p) ?? 0) + c.length)));
      req.on('error', () => undefined);
      onCleanup(() => void req.destroy());
    }
    await waitFor(() => paths.every((p) => (got.get(p) ?? 0) > 0));
    await proxy.close();
    const recs = readRecords(file).filter((r): r is HttpRecord => r.type === 'http');
    const by = Object.fromEntries(recs.map((r) => [r.path, r]));
    expect(recs).toHaveLength(4);
    for (const p of paths) expect([p, by[p]?.status, by[p]?.outcome, by[p]?.error]).toEqual([p, 200, 'shutdown', null]);
    expect(by['/thr']?.fault).toMatchObject({ rule: 'thr', type: 'throttle', injected: true });
    expect(by['/slow']?.fault).toMatchObject({ rule: 'sb', type: 'slow-body', injected: true });
  });
});
