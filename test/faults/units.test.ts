/**
 * Faults through their FaultInstance with a hand-built context: what each one decides and asks the
 * proxy to do, the stateful ones (rate-limit, capacity), the distributions and the transforms.
 */
import { Readable, type Transform } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FAULT_ACTED, type FaultDefinition, type FaultInstance, type ResponseAction, type UpstreamHead } from '../../src/faults/types.js';
import { faultByType } from '../../src/faults/index.js';
import { compileSampler, Z99, type DelayOptions } from '../../src/faults/lib/distribution.js';
import { TokenBuckets } from '../../src/faults/rate-limit.js';
import { CapacityGate } from '../../src/faults/capacity.js';
import { drawPositions } from '../../src/faults/corrupt.js';
import { formatDuration, parseDuration, parseSecondsOrDuration } from '../../src/faults/lib/duration.js';
import { retryAfter } from '../../src/faults/lib/schema.js';
import { demoDuration } from '../../src/cli/demo.js';
import { scaleProfileText } from '../../src/demo/profile-timeline.js';
import { SeededRandom } from '../../src/rules/random.js';
import { fakeContext } from './fake-context.js';

function make(type: string, options: Record<string, unknown>, rule = 'r'): FaultInstance {
  const def = faultByType.get(type) as FaultDefinition;
  return def.create(def.options.parse(options), { rule });
}

const upstream = (status = 200, headers: Record<string, string> = {}): UpstreamHead => ({ statusCode: status, headers });

async function pipeThrough(t: Transform, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise<void>((resolve) => t.once('end', resolve));
  Readable.from(chunks).pipe(t);
  await ended;
  return Buffer.concat(out);
}

describe('durations', () => {
  it('parse and format', () => {
    expect([parseDuration('250ms'), parseDuration('2s'), parseDuration('1.5m'), parseDuration('1h'), parseDuration(40), parseDuration('40'), parseDuration(' 3s ')]).toEqual([250, 2000, 90_000, 3_600_000, 40, 40, 3000]);
    for (const bad of ['2 days', '-1s', 's', '', -5, NaN, Infinity, null, {}]) expect(parseDuration(bad)).toBeNull();
    expect([formatDuration(120), formatDuration(1500), formatDuration(60_000), formatDuration(90_000)]).toEqual(['120ms', '1.5s', '1m', '1.5m']);
  });

  it('a bare number counts seconds where the header or the option says so (Retry-After, demo --duration), the same in every caller', () => {
    expect([parseSecondsOrDuration(30), parseSecondsOrDuration('30'), parseSecondsOrDuration(' .5 '), parseSecondsOrDuration('1500ms'), parseSecondsOrDuration('2m')]).toEqual([30_000, 30_000, 500, 1500, 120_000]);
    for (const bad of ['soon', '-1', '', -1, NaN, null]) expect(parseSecondsOrDuration(bad)).toBeNull();
    // The three callers agree on the spelling: the profile schema, the demo's timeline scaling and --duration.
    expect(retryAfter().parse('.5')).toBe('1');
    expect(demoDuration('.5m')).toBe(30_000);
    expect(demoDuration('45')).toBe(45_000);
    expect(scaleProfileText('rules: [{name: r, fault: {type: http-error, status: 503, retryAfter: ".5"}}]', 2)).toContain('retryAfter: 1000ms');
  });
});

describe('request faults', () => {
  it('http-error answers with status, headers, Retry-After and a labelled default body', async () => {
    const ctx = fakeContext();
    const r = await make('http-error', { status: 503, retryAfter: '1500ms', headers: { 'X-Extra': 'yes' } }, 'reject-sends').onRequest?.(ctx);
    expect(r).toBe('handled');
    const [res] = ctx.rec.responses;
    expect(res?.status).toBe(503);
    expect(res?.headers).toMatchObject({ 'retry-after': '2', 'x-extra': 'yes', 'content-type': 'application/json' });
    expect(JSON.parse(res?.body ?? '')).toMatchObject({ error: 'injected', rule: 'reject-sends', fault: 'http-error' });
    const ctx2 = fakeContext();
    await make('http-error', { status: 204, body: 'ignored' }).onRequest?.(ctx2);
    expect(ctx2.rec.responses[0]).toMatchObject({ status: 204, body: '' });
    const ctx3 = fakeContext();
    await make('http-error', { status: 500, body: { code: 'E42' } }).onRequest?.(ctx3);
    expect(JSON.parse(ctx3.rec.responses[0]?.body ?? '')).toEqual({ code: 'E42' });
  });

  it('reset and close use their primitives', async () => {
    const a = fakeContext();
    expect(await make('reset', {}).onRequest?.(a)).toBe('handled');
    const b = fakeContext();
    expect(await make('close', {}).onRequest?.(b)).toBe('handled');
    expect([a.rec.calls, b.rec.calls]).toEqual([['reset'], ['close']]);
  });

  it('hang holds until the client leaves, or for a duration then resets or closes', async () => {
    const forever = fakeContext();
    const p = make('hang', {}).onRequest?.(forever);
    await new Promise((r) => setTimeout(r, 30));
    forever.finish();
    expect(await p).toBe('handled');
    // The body is never forwarded: it is read and dropped, so the client's leaving is seen.
    expect(forever.rec.calls).toEqual(['discardBody']);
    const timed = fakeContext();
    const t0 = Date.now();
    expect(await make('hang', { duration: '40ms', then: 'close' }).onRequest?.(timed)).toBe('handled');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    expect(timed.rec.calls).toEqual(['discardBody', 'close']);
    const reset = fakeContext();
    await make('hang', { duration: 5 }).onRequest?.(reset);
    expect(reset.rec.calls).toEqual(['discardBody', 'reset']);
  });

  it('latency waits before forwarding (cancellable), or asks to hold the response', async () => {
    const ctx = fakeContext();
    const t0 = Date.now();
    expect(await make('latency', { delay: '50ms' }).onRequest?.(ctx)).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    const gone = fakeContext();
    const p = make('latency', { delay: '10s' }).onRequest?.(gone);
    gone.finish();
    expect(await p).toBe('handled');
    const atResponse = make('latency', { delay: '70ms', at: 'response' });
    expect(atResponse.stage).toBe('response');
    expect(atResponse.onRequest).toBeUndefined();
    expect(atResponse.onResponse?.(fakeContext(), upstream())).toEqual({ delay: 70 });
    expect(make('latency', { delay: 0 }).onRequest?.(fakeContext())).toBeUndefined();
  });
});

describe('delay distributions', () => {
  const draw = (o: DelayOptions, n = 20_000): number[] => {
    const r = new SeededRandom(7).next;
    const s = compileSampler(o);
    return Array.from({ length: n }, () => s(r)).sort((a, b) => a - b);
  };
  const q = (xs: number[], p: number): number => xs[Math.floor(p * (xs.length - 1))] as number;
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('lognormal has the given median and p99', () => {
    const xs = draw({ distribution: 'lognormal', median: 120, p99: 900 });
    expect(q(xs, 0.5)).toBeGreaterThan(120 * 0.93);
    expect(q(xs, 0.5)).toBeLessThan(120 * 1.07);
    expect(q(xs, 0.99)).toBeGreaterThan(900 * 0.85);
    expect(q(xs, 0.99)).toBeLessThan(900 * 1.15);
    expect(Z99).toBeCloseTo(2.326, 3);
  });

  it('uniform, normal, exponential and pareto have their shapes; min/max clamp', () => {
    const u = draw({ distribution: 'uniform', min: 100, max: 200 });
    expect(u[0]).toBeGreaterThanOrEqual(100);
    expect(u[u.length - 1]).toBeLessThanOrEqual(200);
    expect(mean(u)).toBeCloseTo(150, -1);
    const n = draw({ distribution: 'normal', mean: 500, stddev: 50 });
    expect(mean(n)).toBeGreaterThan(495);
    expect(mean(n)).toBeLessThan(505);
    expect(q(n, 0.84) - q(n, 0.5)).toBeGreaterThan(45);
    expect(q(n, 0.84) - q(n, 0.5)).toBeLessThan(55);
    const e = draw({ distribution: 'exponential', mean: 100 });
    expect(mean(e)).toBeGreaterThan(95);
    expect(mean(e)).toBeLessThan(105);
    const p = draw({ distribution: 'pareto', scale: 50, shape: 2 });
    expect(p[0]).toBeGreaterThanOrEqual(50);
    expect(q(p, 0.75)).toBeCloseTo(100, -1); // scale / (1-0.75)^(1/2)
    const capped = draw({ distribution: 'exponential', mean: 100, max: 150, min: 10 });
    expect(capped[0]).toBeGreaterThanOrEqual(10);
    expect(capped[capped.length - 1]).toBe(150);
    const normalNeverNegative = draw({ distribution: 'normal', mean: 10, stddev: 100 });
    expect(normalNeverNegative[0]).toBeGreaterThanOrEqual(0);
    const jitter = draw({ delay: 100, jitter: 20 });
    expect(jitter[0]).toBeGreaterThanOrEqual(80);
    expect(jitter[jitter.length - 1]).toBeLessThanOrEqual(120);
    expect(draw({ delay: 100 }, 3)).toEqual([100, 100, 100]);
  });
});

describe('rate-limit', () => {
  it('token bucket: burst, refill, exact seconds until the next token', () => {
    const b = new TokenBuckets(2, 3);
    expect([b.take('a', 0), b.take('a', 0), b.take('a', 0)]).toEqual([0, 0, 0]);
    expect(b.take('a', 0)).toBe(1); // 1 token needs 0.5 s: rounded up to 1
    expect(b.take('a', 500)).toBe(0);
    expect(b.take('a', 500)).toBe(1);
    expect(b.take('b', 500)).toBe(0); // per key
    const slow = new TokenBuckets(0.1, 1);
    expect(slow.take('k', 0)).toBe(0);
    expect(slow.take('k', 0)).toBe(10);
    expect(slow.take('k', 4000)).toBe(6);
  });

  it('keeps at most its cap of buckets, evicting the least recently used', () => {
    const b = new TokenBuckets(1, 1, 3);
    for (const k of ['a', 'b', 'c']) b.take(k, 0);
    b.take('a', 0); // a is now the most recently used
    b.take('d', 0); // evicts b
    expect(b.size).toBe(3);
    expect(b.take('a', 0)).toBe(1); // still remembered: empty
    expect(b.take('b', 0)).toBe(0); // forgotten: a fresh, full bucket
  });

  it('answers 429 with Retry-After when empty; per client or global', async () => {
    let t = 0;
    const perClient = make('rate-limit', { rate: 1, burst: 1 });
    const a = fakeContext({ now: () => t, facts: { clientKey: 'a' } });
    const b = fakeContext({ now: () => t, facts: { clientKey: 'b' } });
    expect(await perClient.onRequest?.(a)).toBe('pass');
    expect(await perClient.onRequest?.(b)).toBe('pass');
    expect(await perClient.onRequest?.(a)).toBe('handled');
    expect(a.rec.responses[0]).toMatchObject({ status: 429, headers: { 'retry-after': '1' } });
    t = 1000;
    expect(await perClient.onRequest?.(a)).toBe('pass');
    const global = make('rate-limit', { rate: 1, burst: 1, per: 'global', status: 503 });
    expect(await global.onRequest?.(fakeContext({ now: () => t, facts: { clientKey: 'a' } }))).toBe('pass');
    const other = fakeContext({ now: () => t, facts: { clientKey: 'b' } });
    expect(await global.onRequest?.(other)).toBe('handled');
    expect(other.rec.responses[0]?.status).toBe(503);
  });
});

describe('capacity', () => {
  it('admits up to concurrency, queues FIFO up to the queue, rejects beyond, releases on done', async () => {
    const cap = make('capacity', { concurrency: 2, queue: 2, retryAfter: '3s' });
    const ctxs = Array.from({ length: 5 }, () => fakeContext());
    const results = ctxs.map((c) => cap.onRequest?.(c));
    expect(results[0]).toBe('pass'); // room at once: not acted upon
    expect(results[1]).toBe('pass');
    expect(results[4]).toBe('handled'); // queue full
    expect(ctxs[4]?.rec.responses[0]).toMatchObject({ status: 503, headers: { 'retry-after': '3' } });
    expect(JSON.parse(ctxs[4]?.rec.responses[0]?.body ?? '')).toMatchObject({ error: 'injected', fault: 'capacity' });
    const order: number[] = [];
    void (results[2] as Promise<unknown>).then(() => order.push(2));
    void (results[3] as Promise<unknown>).then(() => order.push(3));
    ctxs[1]?.finish(); // frees one slot: the first in the queue goes
    expect(await results[2]).toBeUndefined();
    ctxs[0]?.finish();
    expect(await results[3]).toBeUndefined();
    expect(order).toEqual([2, 3]);
    // Slots are now held by 2 and 3; a new request queues again.
    const late = fakeContext();
    const waiting = cap.onRequest?.(late);
    expect(waiting).toBeInstanceOf(Promise);
    ctxs[2]?.finish();
    expect(await waiting).toBeUndefined();
  });

  it('a queued request leaves the queue when its client goes away, and times out with 503', async () => {
    const cap = make('capacity', { concurrency: 1, queue: 1, queueTimeout: '60ms' });
    const holder = fakeContext();
    expect(cap.onRequest?.(holder)).toBe('pass');
    const quitter = fakeContext();
    const q = cap.onRequest?.(quitter);
    quitter.finish();
    expect(await q).toBe('handled');
    expect(quitter.rec.responses).toEqual([]);
    const patient = fakeContext();
    const t0 = Date.now();
    const p = cap.onRequest?.(patient); // the place the quitter left is free again
    expect(p).toBeInstanceOf(Promise);
    expect(await p).toBe('handled');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(50);
    expect(patient.rec.responses[0]?.status).toBe(503);
  });

  it('rate is a token bucket: `rate` starts at once (rounded up, at least 1), then one every 1/rate s', () => {
    let now = 1000;
    const gate = new CapacityGate({ rate: 5, queue: 0 }, () => now);
    const burst = (g: CapacityGate): boolean[] => Array.from({ length: 6 }, () => g.tryAcquire());
    expect(burst(gate)).toEqual([true, true, true, true, true, false]);
    now += 150; // 0.75 of a token
    expect(gate.tryAcquire()).toBe(false);
    now += 60;
    expect(gate.tryAcquire()).toBe(true);
    expect(gate.tryAcquire()).toBe(false);
    now += 60_000; // refills up to the burst, no further
    expect(burst(gate)).toEqual([true, true, true, true, true, false]);
    const slow = new CapacityGate({ rate: 0.5, queue: 0 }, () => now);
    expect([slow.tryAcquire(), slow.tryAcquire()]).toEqual([true, false]);
    now += 2000;
    expect(slow.tryAcquire()).toBe(true);
  });

  it('rate spaces request starts once the burst is spent', async () => {
    const gate = new CapacityGate({ rate: 20, queue: 10 }, Date.now);
    const starts: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) expect(gate.tryAcquire()).toBe(true);
    starts.push(0);
    expect(gate.tryAcquire()).toBe(false);
    await Promise.all(
      [1, 2, 3].map(
        () =>
          new Promise<void>((resolve) => {
            gate.enqueue(() => {
              starts.push(Date.now() - t0);
              resolve();
            });
          }),
      ),
    );
    expect(starts).toHaveLength(4);
    expect(starts[1]).toBeGreaterThanOrEqual(40); // one token every 50 ms
    expect(starts[3]).toBeGreaterThanOrEqual(140);
    expect(starts[3]).toBeLessThan(1000);
  });
});

describe('response faults', () => {
  it('throttle paces the body at its rate without losing a byte', async () => {
    const action = make('throttle', { bytesPerSecond: 20_000 }).onResponse?.(fakeContext(), upstream()) as { transform: Transform };
    const body = Buffer.alloc(10_000, 7);
    const t0 = Date.now();
    const out = await pipeThrough(action.transform, [body.subarray(0, 3000), body.subarray(3000)]);
    const took = Date.now() - t0;
    expect(out.equals(body)).toBe(true);
    // 10 kB at 20 kB/s: 0.5 s, less the first slice (50 ms).
    expect(took).toBeGreaterThan(380);
    expect(took).toBeLessThan(1500); // generous: CI machines are busy
  });

  it('a paced transform stops (timer cleared) when the exchange ends', async () => {
    const ctx = fakeContext();
    const action = make('slow-body', { chunkSize: 1, interval: '50ms' }).onResponse?.(ctx, upstream()) as { transform: Transform };
    const got: Buffer[] = [];
    action.transform.on('data', (c: Buffer) => got.push(c));
    action.transform.on('error', () => undefined);
    action.transform.write(Buffer.from('abcdef'));
    await new Promise((r) => setTimeout(r, 120));
    ctx.finish();
    const n = got.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(action.transform.destroyed).toBe(true);
    expect(got.length).toBe(n);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(4);
  });

  it('slow-body sends chunkSize bytes per interval', async () => {
    const action = make('slow-body', { chunkSize: 4, interval: '30ms' }).onResponse?.(fakeContext(), upstream()) as { transform: Transform };
    const sizes: number[] = [];
    action.transform.on('data', (c: Buffer) => sizes.push(c.length));
    const t0 = Date.now();
    const out = await pipeThrough(action.transform, [Buffer.from('0123456'), Buffer.from('789ab')]);
    expect(out.toString()).toBe('0123456789ab');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55); // 3 chunks: 0, 30, 60 ms
  });

  it('truncate passes N bytes, then asks for a reset; a shorter body passes untouched', async () => {
    const ctx = fakeContext();
    const action = make('truncate', { after: 5 }).onResponse?.(ctx, upstream()) as { transform: Transform };
    const out = await pipeThrough(action.transform, [Buffer.from('abc'), Buffer.from('defgh'), Buffer.from('ijk')]);
    expect(out.toString()).toBe('abcde');
    expect(ctx.rec.calls).toEqual(['resetAfterFlush']);
    const short = fakeContext();
    const a2 = make('truncate', { after: 50 }).onResponse?.(short, upstream()) as { transform: Transform };
    expect((await pipeThrough(a2.transform, [Buffer.from('hello')])).toString()).toBe('hello');
    expect(short.rec.calls).toEqual([]);
  });

  it('truncate acts only on a body longer than `after`: known from a Content-Length, else labelled when it cuts', async () => {
    const t = make('truncate', { after: 100 });
    expect(t.onResponse?.(fakeContext(), upstream(200, { 'content-length': '50' }))).toBeNull();
    expect(t.onResponse?.(fakeContext(), upstream(200, { 'content-length': '100' }))).toBeNull();
    expect(t.onResponse?.(fakeContext({ facts: { method: 'HEAD' } }), upstream(200, { 'content-length': '5000' }))).toBeNull();
    expect(t.onResponse?.(fakeContext(), upstream(204))).toBeNull();
    const sized = t.onResponse?.(fakeContext(), upstream(200, { 'content-length': '101' }));
    expect(sized).toMatchObject({ transform: expect.any(Object) });
    expect(sized).not.toHaveProperty('lazy');
    const acted = async (chunks: Buffer[]): Promise<[number, number, string[]]> => {
      const ctx = fakeContext();
      const a = t.onResponse?.(ctx, upstream()) as { transform: Transform; lazy?: true };
      expect(a.lazy).toBe(true);
      let events = 0;
      a.transform.on(FAULT_ACTED, () => events++);
      const out = await pipeThrough(a.transform, chunks);
      return [out.length, events, ctx.rec.calls];
    };
    expect(await acted([Buffer.alloc(60), Buffer.alloc(40)])).toEqual([100, 0, []]);
    expect(await acted([Buffer.alloc(60), Buffer.alloc(41), Buffer.alloc(10)])).toEqual([100, 1, ['resetAfterFlush']]);
  });

  it('corrupt of a body of unknown length flips exactly `count` of the bytes that arrive, however chunked', async () => {
    const body = Buffer.from('{"ok":true,"method":"GET","url":"/cc","body":""}');
    const run = async (chunks: Buffer[], count = 3, seed = 1): Promise<[number, number]> => {
      const a = make('corrupt', { count }).onResponse?.(fakeContext({ seed }), upstream()) as { transform: Transform; lazy?: true };
      expect(a.lazy).toBe(true);
      let events = 0;
      a.transform.on(FAULT_ACTED, () => events++);
      const out = await pipeThrough(a.transform, chunks);
      expect(out.length).toBe(Buffer.concat(chunks).length);
      return [[...out].filter((b, i) => b !== Buffer.concat(chunks)[i]).length, events];
    };
    for (let seed = 1; seed <= 20; seed++) expect(await run([body], 3, seed)).toEqual([3, 1]);
    expect(await run([...body].map((b) => Buffer.from([b])))).toEqual([3, 1]); // one byte per chunk
    expect(await run([body.subarray(0, 2), body.subarray(2)], 5)).toEqual([5, 1]);
    expect(await run([body], 500)).toEqual([body.length, 1]); // all of a shorter body
    expect(await run([])).toEqual([0, 0]); // nothing to flip: never labelled
    expect(body.toString()).toBe('{"ok":true,"method":"GET","url":"/cc","body":""}'); // the upstream's buffer is untouched
  });

  it('corrupt that would flip nothing is not applied: no body, or a probability whose first flip falls past the end', () => {
    expect(make('corrupt', { count: 3 }).onResponse?.(fakeContext({ facts: { method: 'HEAD' } }), upstream(200, { 'content-length': '500' }))).toBeNull();
    expect(make('corrupt', { count: 3 }).onResponse?.(fakeContext(), upstream(304, { 'content-length': '500' }))).toBeNull();
    // p = 1e-9 per byte over 48 bytes: the first flip is (all but surely) past the end.
    expect(make('corrupt', { probability: 1e-9 }).onResponse?.(fakeContext(), upstream(200, { 'content-length': '48' }))).toBeNull();
    expect(make('corrupt', { probability: 1 }).onResponse?.(fakeContext(), upstream(200, { 'content-length': '48' }))).not.toBeNull();
  });

  it('corrupt flips exactly count bytes over the Content-Length, deterministically by seed', async () => {
    const body = Buffer.alloc(200, 0x41);
    const run = async (seed: number): Promise<Buffer> => {
      const action = make('corrupt', { count: 3 }).onResponse?.(fakeContext({ seed }), upstream(200, { 'content-length': '200' })) as { transform: Transform };
      return pipeThrough(action.transform, [body.subarray(0, 70), body.subarray(70)]);
    };
    const out = await run(1);
    expect(out.length).toBe(200);
    expect([...out].filter((b) => b !== 0x41)).toHaveLength(3);
    expect((await run(1)).equals(out)).toBe(true);
    expect((await run(2)).equals(out)).toBe(false);
    expect(body.every((b) => b === 0x41)).toBe(true); // the upstream's buffer is untouched
    expect(make('corrupt', { count: 1 }).onResponse?.(fakeContext(), upstream(204, { 'content-length': '0' }))).toBeNull();
  });

  it('corrupt with a per-byte probability flips about that share', async () => {
    const action = make('corrupt', { probability: 0.1 }).onResponse?.(fakeContext({ seed: 3 }), upstream()) as { transform: Transform };
    const body = Buffer.alloc(100_000);
    const out = await pipeThrough(action.transform, [body.subarray(0, 33_333), body.subarray(33_333)]);
    const flipped = [...out].filter((b) => b !== 0).length;
    const sigma = Math.sqrt(100_000 * 0.1 * 0.9);
    expect(Math.abs(flipped - 10_000)).toBeLessThan(4 * sigma);
  });

  it('drawPositions gives distinct sorted positions', () => {
    const r = new SeededRandom(5).next;
    for (const [count, len] of [
      [3, 10],
      [10, 10],
      [20, 10],
      [50, 1000],
    ] as const) {
      const ps = drawPositions(count, len, r);
      expect(ps).toHaveLength(Math.min(count, len));
      expect(new Set(ps).size).toBe(ps.length);
      expect([...ps].sort((a, b) => a - b)).toEqual(ps);
      expect(ps.every((p) => p >= 0 && p < len)).toBe(true);
    }
  });

  it('lost-response drops the answer', () => {
    expect(make('lost-response', {}).onResponse?.(fakeContext(), upstream(201))).toEqual({ drop: true } satisfies ResponseAction);
  });
});

describe('WebSocket faults', () => {
  it('ws-reject refuses the upgrade with status and Retry-After', () => {
    const ctx = fakeContext({ facts: { websocket: true } });
    expect(make('ws-reject', { retryAfter: '5s' }).onUpgrade?.(ctx)).toBe('handled');
    expect(ctx.rec.responses[0]).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
  });

  it('ws-close closes after a time or after N messages per connection; 1006 is passed to the proxy', async () => {
    const timed = fakeContext();
    make('ws-close', { code: 1006, after: '30ms' }).onOpen?.(timed);
    expect(timed.rec.closes).toEqual([]);
    await new Promise((r) => setTimeout(r, 60));
    expect(timed.rec.closes).toEqual([{ code: 1006, reason: 'closed by aftershock' }]);
    const now = fakeContext();
    make('ws-close', {}).onOpen?.(now);
    expect(now.rec.closes).toEqual([{ code: 1011, reason: 'closed by aftershock' }]);
    const counted = make('ws-close', { code: 4000, reason: 'bye', afterMessages: 3 });
    const c1 = fakeContext();
    const c2 = fakeContext();
    for (let i = 0; i < 2; i++) expect(counted.onMessage?.(c1, 'in', 1, false)).toBeUndefined();
    counted.onMessage?.(c2, 'out', 1, false);
    // The limit-th message passes, and the verdict says the fault acted (the connection is labelled).
    expect(counted.onMessage?.(c1, 'out', 1, false)).toBe('acted');
    // One that comes before the close is sent is not relayed.
    expect(counted.onMessage?.(c1, 'in', 1, false)).toBe('drop');
    await new Promise((r) => setTimeout(r, 10));
    expect(c1.rec.closes).toEqual([{ code: 4000, reason: 'bye' }]);
    expect(c2.rec.closes).toEqual([]);
    // A connection that ends first is not closed later.
    const gone = fakeContext();
    make('ws-close', { after: '20ms' }).onOpen?.(gone);
    gone.finish();
    await new Promise((r) => setTimeout(r, 40));
    expect(gone.rec.closes).toEqual([]);
  });

  it('ws-drop drops about its fraction, in its direction only', () => {
    const drop = make('ws-drop', { fraction: 0.25, direction: 'out' });
    const ctx = fakeContext({ seed: 4 });
    let dropped = 0;
    for (let i = 0; i < 8000; i++) if (drop.onMessage?.(ctx, 'out', 10, false) === 'drop') dropped++;
    expect(Math.abs(dropped - 2000)).toBeLessThan(4 * Math.sqrt(8000 * 0.25 * 0.75));
    for (let i = 0; i < 100; i++) expect(drop.onMessage?.(ctx, 'in', 10, false)).toBeUndefined();
    expect(make('ws-drop', { fraction: 1 }).onMessage?.(ctx, 'in', 1, true)).toBe('drop');
  });

  it('ws-delay delays in its direction; ws-freeze freezes after a while', async () => {
    const delay = make('ws-delay', { delay: '200ms', direction: 'in' });
    const ctx = fakeContext();
    expect(delay.onMessage?.(ctx, 'in', 1, false)).toEqual({ delay: 200 });
    expect(delay.onMessage?.(ctx, 'out', 1, false)).toBeUndefined();
    const f = fakeContext();
    make('ws-freeze', { after: '20ms' }).onOpen?.(f);
    expect(f.rec.calls).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(f.rec.calls).toEqual(['freeze']);
    const now = fakeContext();
    make('ws-freeze', {}).onOpen?.(now);
    expect(now.rec.calls).toEqual(['freeze']);
  });
});
