/**
 * The demo's upstream has a real capacity: real HTTP on port 0, fresh connections, timings with a
 * tolerance. Over the limit it queues, past the queue it answers 503 with Retry-After; work slows
 * as the queue grows; a request whose client left is still worked on unless told otherwise.
 */
import http from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { startMessageService, type MessageService, type MessageServiceOptions } from '../../src/demo/message-service.js';
import { onCleanup, request } from '../helpers.js';

async function service(o: MessageServiceOptions): Promise<MessageService> {
  const svc = await startMessageService(o);
  onCleanup(() => svc.close());
  return svc;
}

interface Timed {
  status: number;
  retryAfter: string | undefined;
  ms: number;
}

/** One GET on a fresh connection, with the time it took. */
async function timed(url: string): Promise<Timed> {
  const t0 = performance.now();
  const r = await request(url, { headers: { connection: 'close' } });
  const ra = r.headers['retry-after'];
  return { status: r.status, retryAfter: Array.isArray(ra) ? ra[0] : ra, ms: performance.now() - t0 };
}

describe('message service capacity', () => {
  it('works on `concurrency` requests at once, queues the next ones, and sheds the rest with 503 + Retry-After', async () => {
    const svc = await service({ concurrency: 2, queueLimit: 2, workMs: [200, 200], overloadSlowdown: 0, retryAfterSeconds: 3 });
    const results = await Promise.all(Array.from({ length: 6 }, () => timed(`${svc.url}/v1/profile`)));
    const ok = results.filter((r) => r.status === 200).sort((a, b) => a.ms - b.ms);
    const shed = results.filter((r) => r.status === 503);
    expect(ok).toHaveLength(4);
    expect(shed).toHaveLength(2);
    // Shed at the door: at once, and told when to come back.
    for (const r of shed) {
      expect(r.ms).toBeLessThan(150);
      expect(r.retryAfter).toBe('3');
    }
    // Two worked on at once (~200 ms), two waited for a slot (~400 ms).
    expect(ok[0]?.ms).toBeGreaterThanOrEqual(190);
    expect(ok[1]?.ms).toBeLessThan(350);
    expect(ok[2]?.ms).toBeGreaterThanOrEqual(380);
    expect(ok[3]?.ms).toBeLessThan(600);
    const st = svc.stats();
    expect(st).toMatchObject({ received: 6, rejected: 2, completed: 4, maxQueued: 2, active: 0, queued: 0 });
  });

  it('gets slower as its queue grows (overload feeds itself)', async () => {
    const run = async (overloadSlowdown: number): Promise<number> => {
      const svc = await service({ concurrency: 1, queueLimit: 4, workMs: [40, 40], overloadSlowdown });
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 5 }, () => timed(`${svc.url}/v1/profile`)));
      return performance.now() - t0;
    };
    // The quicker of two runs each: a busy machine only ever adds time (an upper bound on the flat
    // run failed at 315 ms under load; the difference is what the test is about).
    const flat = Math.min(await run(0), await run(0));
    const slowing = Math.min(await run(2), await run(2));
    expect(flat).toBeGreaterThanOrEqual(195); // 5 x 40 ms, one at a time
    // Queued work costs 40 ms x (1 + 2 x queued / 4): ~100 + 80 + 60 more than flat.
    expect(slowing).toBeGreaterThan(flat + 60);
  });

  it('keeps working on a request whose client has gone (wasted work), unless dropAbandoned', async () => {
    for (const dropAbandoned of [false, true]) {
      const svc = await service({ concurrency: 1, queueLimit: 4, workMs: [120, 120], overloadSlowdown: 0, dropAbandoned });
      const first = timed(`${svc.url}/v1/profile`);
      await new Promise((r) => setTimeout(r, 20));
      // A second request waits behind the first; its client gives up after 30 ms.
      const req = http.get(`${svc.url}/v1/profile`, { agent: false });
      req.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 30));
      req.destroy();
      expect((await first).status).toBe(200);
      // The abandoned request is worked (120 ms) or dropped once the first is done: wait for either
      // to be counted (a busy machine takes longer), then check it was the right one.
      await vi.waitFor(() => expect(svc.stats().wasted + svc.stats().dropped).toBe(1), { timeout: 3000, interval: 10 });
      const st = svc.stats();
      expect(st.wasted).toBe(dropAbandoned ? 0 : 1);
      expect(st.dropped).toBe(dropAbandoned ? 1 : 0);
    }
  });

  it('is a small message API: POST creates, GET reads, unknown ids and routes are 404', async () => {
    const svc = await service({ workMs: [1, 2] });
    const created = await request(`${svc.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'bob', text: 'hi' }),
    });
    expect(created.status).toBe(201);
    const { id } = JSON.parse(created.text) as { id: string };
    const read = await request(`${svc.url}/v1/messages/${id}`);
    expect(read.status).toBe(200);
    expect(JSON.parse(read.text)).toMatchObject({ id, to: 'bob', text: 'hi' });
    expect((await request(`${svc.url}/v1/messages/nope`)).status).toBe(404);
    expect((await request(`${svc.url}/v2/other`)).status).toBe(404);
    expect((await request(`${svc.url}/healthz`)).status).toBe(200);
    const bad = await request(`${svc.url}/v1/messages`, { method: 'POST', body: '{not json' });
    expect(bad.status).toBe(400);
  });
});
