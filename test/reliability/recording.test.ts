/**
 * A broken disk never crashes the proxy and never leaves a silent gap: lost records are counted,
 * reported, and the proxy keeps serving.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecords, request, startTestProxy, startUpstream, tempDir, waitFor } from '../helpers.js';

describe('recording failures', () => {
  it('keeps proxying on a full disk and counts every record it could not write', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: '/dev/full' });
    for (let i = 0; i < 10; i++) expect((await request(`${proxy.url}/r${i}`)).status).toBe(200);
    await proxy.recorder.drain();
    const st = proxy.stats().recording;
    // the header line plus ten exchanges, none written
    expect(st.written).toBe(0);
    expect(st.failed).toBe(11);
    expect(st.lastError).toMatch(/ENOSPC|no space/i);
    expect(proxy.ready).toBe(false);
  });

  it('notices a removed recording folder, counts the loss, and resumes when the folder is back', async () => {
    const dir = tempDir();
    const sub = path.join(dir, 'recordings');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'rec.ndjson');
    const up = await startUpstream((_req, res) => res.end('ok'));
    const proxy = await startTestProxy({ target: up.url, record: file });
    await request(`${proxy.url}/before`);
    await proxy.recorder.drain();
    fs.rmSync(sub, { recursive: true });
    await waitFor(() => !proxy.ready, 4000);
    expect((await request(`${proxy.url}/while-gone`)).status).toBe(200);
    await proxy.recorder.drain();
    expect(proxy.stats().recording.failed).toBeGreaterThanOrEqual(1);
    fs.mkdirSync(sub);
    await waitFor(() => proxy.ready, 4000);
    await request(`${proxy.url}/after`);
    await proxy.close();
    const recs = readRecords(file);
    expect(recs.some((r) => r.type === 'http' && r.path === '/after')).toBe(true);
    expect(recs.some((r) => r.type === 'http' && r.path === '/while-gone')).toBe(false);
  });
});
