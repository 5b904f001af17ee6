/**
 * The backoff, jitter and Retry-After classifiers at the spec's thresholds (§4, §5), with
 * property-based checks where a whole family of schedules must land in one class.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkRetryAfter, classifyBackoff, summarizeRetryAfter } from '../../src/analysis/backoff.js';
import { classifyJitter, jitterBand, leastSpread, noiseAdjustedCv } from '../../src/analysis/jitter.js';
import { toAttempt } from '../../src/analysis/attempt.js';
import { canonicalQuery, fingerprint, normalizePath, routeOf, userAgentFamily } from '../../src/analysis/normalize.js';
import type { HttpRecord } from '../../src/record/schema.js';
import { decideBackoff, poissonTail } from '../../src/analysis/report.js';
import { BloomCounter, CountHistogram, StrideReservoir, Welford, cv, linearFit } from '../../src/analysis/stats.js';
import { prng } from '../fixtures/make-fixtures.js';

describe('classifyBackoff (spec §4)', () => {
  it('needs two gaps; three give high confidence', () => {
    expect(classifyBackoff([]).class).toBe('insufficient-data');
    expect(classifyBackoff([1000]).class).toBe('insufficient-data');
    expect(classifyBackoff([1000, 1000]).confidence).toBe('medium');
    expect(classifyBackoff([1000, 1000, 1000]).confidence).toBe('high');
  });

  it('immediate: every gap under 50 ms, and not when one reaches 50', () => {
    expect(classifyBackoff([0, 3, 49.9]).class).toBe('immediate');
    expect(classifyBackoff([0, 3, 50]).class).not.toBe('immediate');
  });

  it('constant: CV < 0.1 and every ratio in [0.83, 1.2]', () => {
    expect(classifyBackoff([1000, 1050, 980, 1010])).toMatchObject({ class: 'constant' });
    // ratio 1.25 breaks the band even though the CV is small
    expect(classifyBackoff([1000, 1000, 1000, 1000, 1250]).class).not.toBe('constant');
    // ratio 1.2 exactly is inside
    expect(classifyBackoff([1000, 1200, 1000]).class).toBe('constant');
  });

  it('exponential: reports base, factor and a cap', () => {
    const r = classifyBackoff([100, 200, 400, 800, 1600]);
    expect(r.class).toBe('exponential');
    expect(r.factor).toBeCloseTo(2, 5);
    expect(r.baseMs).toBeCloseTo(100, 3);
    const capped = classifyBackoff([100, 200, 400, 800, 2000, 2000, 2000]);
    expect(capped.class).toBe('exponential');
    expect(capped.capMs).toBe(2000);
  });

  it('linear: positive, roughly constant steps; an exact linear series is not called exponential', () => {
    const r = classifyBackoff([100, 200, 300, 400, 500]);
    expect(r.class).toBe('linear');
    expect(r.stepMs).toBe(100);
    expect(classifyBackoff([1000, 2000, 3000, 4000]).class).toBe('linear');
  });

  it('irregular otherwise', () => {
    expect(classifyBackoff([900, 100, 2500, 300]).class).toBe('irregular');
  });

  it('property: any exponential schedule with factor in [1.5, 3] and no jitter is exponential', () => {
    fc.assert(
      fc.property(fc.double({ min: 1.5, max: 3, noNaN: true }), fc.double({ min: 50, max: 2000, noNaN: true }), fc.integer({ min: 2, max: 8 }), (factor, base, n) => {
        const gaps = Array.from({ length: n }, (_, k) => base * factor ** k);
        return classifyBackoff(gaps).class === 'exponential';
      }),
    );
  });

  it('property: any constant schedule of 50 ms or more is constant', () => {
    fc.assert(
      fc.property(fc.double({ min: 50, max: 60_000, noNaN: true }), fc.integer({ min: 2, max: 10 }), (g, n) => classifyBackoff(Array.from({ length: n }, () => g)).class === 'constant'),
    );
  });

  it('property: gaps all under 50 ms are immediate', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 49.99, noNaN: true }), { minLength: 2, maxLength: 12 }), (gaps) => classifyBackoff(gaps).class === 'immediate'));
  });

  it('property: linear schedules with a step of at least half the first gap are linear', () => {
    fc.assert(
      fc.property(fc.double({ min: 50, max: 5000, noNaN: true }), fc.double({ min: 0.5, max: 4, noNaN: true }), fc.integer({ min: 3, max: 10 }), (first, stepShare, n) => {
        const step = first * stepShare;
        return classifyBackoff(Array.from({ length: n }, (_, k) => first + step * k)).class === 'linear';
      }),
    );
  });
});

describe('checkRetryAfter (spec §4.1 tolerances)', () => {
  it('compliant within R - 50 ms .. R + max(250 ms, 10 %)', () => {
    expect(checkRetryAfter(1950, 2)).toBe('compliant');
    expect(checkRetryAfter(1949, 2)).toBe('violates');
    expect(checkRetryAfter(2250, 2)).toBe('compliant');
    expect(checkRetryAfter(2251, 2)).toBe('late');
    // 10 % beats 250 ms above 2.5 s
    expect(checkRetryAfter(11_000, 10)).toBe('compliant');
    expect(checkRetryAfter(11_001, 10)).toBe('late');
  });

  it('summarises per client: violates at 10 % early gaps, ignored when most are late', () => {
    expect(summarizeRetryAfter({ compliant: 0, violates: 0, late: 0 })).toBe('not-applicable');
    expect(summarizeRetryAfter({ compliant: 9, violates: 1, late: 0 })).toBe('violates');
    expect(summarizeRetryAfter({ compliant: 19, violates: 1, late: 0 })).toBe('compliant');
    expect(summarizeRetryAfter({ compliant: 1, violates: 0, late: 3 })).toBe('ignored');
  });
});

describe('classifyJitter (spec §5 bands)', () => {
  const spread = (c: number, n = 200, mean = 1000): number[] => {
    // deterministic values with a given CV: mean ± c*mean*sqrt(3) uniform grid
    const half = c * mean * Math.sqrt(3);
    return Array.from({ length: n }, (_, i) => mean - half + (2 * half * i) / (n - 1));
  };

  it('maps CVs to none < 0.02 <= token < 0.1 <= proportional < 0.4 <= full', () => {
    expect(jitterBand(0.019)).toBe('none');
    expect(jitterBand(0.02)).toBe('token');
    expect(jitterBand(0.099)).toBe('token');
    expect(jitterBand(0.1)).toBe('proportional');
    expect(jitterBand(0.399)).toBe('proportional');
    expect(jitterBand(0.4)).toBe('full');
  });

  it('classifies aligned gaps', () => {
    expect(classifyJitter({ gapsByIndex: [spread(0)] }).class).toBe('none');
    expect(classifyJitter({ gapsByIndex: [spread(0.05)] }).class).toBe('token');
    expect(classifyJitter({ gapsByIndex: [spread(0.2)] }).class).toBe('proportional');
    const rnd = prng(7);
    const full = Array.from({ length: 500 }, () => rnd() * 2000);
    const r = classifyJitter({ gapsByIndex: [full] });
    expect(r.class).toBe('full');
    expect(r.cv).toBeGreaterThan(0.5);
    expect(r.cv).toBeLessThan(0.65); // ≈ 0.58 for full jitter
  });

  it('a few chains of a fully jittered fleet: one index that happens to bunch up does not make it token', () => {
    // 5 chains, 5 indexes of full jitter (rand(0, 250 x 2^k)); index 3's five gaps happened to land close.
    const gapsByIndex = [
      [40, 120, 180, 230, 90],
      [110, 420, 300, 60, 250],
      [900, 200, 600, 350, 80],
      [1800, 1900, 1850, 1950, 2100],
      [700, 3500, 2200, 1200, 400],
    ];
    const r = classifyJitter({ gapsByIndex });
    expect(r.class === 'full' || r.class === 'proportional').toBe(true);
  });

  it('a few chains of a fleet with no jitter and one late timer: still none (the robust CV ignores the outlier)', () => {
    expect(classifyJitter({ gapsByIndex: [[100, 100, 100, 100, 100, 100, 100, 130], [200, 200, 200, 200, 200, 200, 200, 200]] }).class).toBe('none');
    expect(classifyJitter({ gapsByIndex: [[100, 100, 100, 100, 100, 100, 100, 130]] }).class).toBe('none');
  });

  it('with samples enough at every index, the least-spread index still decides (noise spreads some indexes, real jitter all)', () => {
    const rnd = prng(3);
    const full = (): number[] => Array.from({ length: 40 }, () => rnd() * 2000);
    const steady = Array.from({ length: 40 }, (_, i) => 1000 + (i % 5) * 20);
    expect(classifyJitter({ gapsByIndex: [full(), steady, full()] }).class).toBe('token');
  });

  it('indexes that agree are read pooled: the least of several noisy readings of one spread is biased low', () => {
    // Retry-After 1 s plus U(0, 500 ms), 15 chains reaching 3 indexes, 3 ms of network noise: CV 0.115,
    // proportional. Read from the least index (and the smaller of CV and MAD), 133 of 200 fleets read token.
    const classes = { proportional: 0, token: 0, other: 0 };
    for (let seed = 1; seed <= 200; seed++) {
      const rnd = prng(seed);
      const index = (): number[] => Array.from({ length: 15 }, () => 1000 + rnd() * 500 + (rnd() - 0.5) * 6);
      const c = classifyJitter({ gapsByIndex: [index(), index(), index()] }).class;
      if (c === 'proportional' || c === 'token') classes[c] += 1;
      else classes.other += 1;
    }
    expect(classes.other).toBe(0);
    expect(classes.proportional).toBeGreaterThanOrEqual(140);
  });

  it('a uniform spread keeps every gap: a small MAD of a few gaps does not read as no spread', () => {
    // 15 gaps of 1000 + U(0, 500) whose middle ones happen to bunch: MAD-based CV 0.01, CV 0.11
    const gaps = [1010, 1240, 1245, 1248, 1250, 1252, 1255, 1258, 1260, 1262, 1265, 1490, 1480, 1020, 1030];
    expect(leastSpread([{ cv: 0.01, n: 40 }, { cv: 0.3, n: 40 }])).toBe(0.01);
    expect(classifyJitter({ gapsByIndex: [gaps] }).class).toBe('proportional');
  });

  it('is unknown with fewer than 5 chains', () => {
    expect(classifyJitter({ gapsByIndex: [[1000, 1000, 1000, 1000]] }).class).toBe('unknown');
  });

  it('removes a few ms of measurement noise before taking the CV', () => {
    expect(noiseAdjustedCv([100, 103, 97, 101, 99])).toBe(0);
    expect(classifyJitter({ gapsByIndex: [[100, 103, 97, 101, 99, 102]] }).class).toBe('none');
  });

  it('recognises per-client static jitter: each client repeats itself, clients differ, ratios agree', () => {
    const clients = [400, 650, 900, 1200, 1500].map((g1) => [g1, g1, g1]);
    const gaps1 = clients.flat();
    const gaps2 = gaps1.map((g) => g * 2);
    const r = classifyJitter({ gapsByIndex: [gaps1, gaps2], firstGapsByClient: clients, ratios: gaps1.map(() => 2) });
    expect(r.class).toBe('per-client');
  });

  it('reads the class from indexes most chains reached: a few long chains with equal late gaps do not make a jittered fleet "none"', () => {
    const rnd = prng(11);
    const full = (n: number): number[] => Array.from({ length: n }, () => 200 + rnd() * 2000);
    // 200 chains with full jitter; 6 of them (the longest) with an identical 6th gap.
    const r = classifyJitter({ gapsByIndex: [full(200), full(200), full(150), full(100), full(60), [20, 20, 20, 20, 20, 20]] });
    expect(r.class).toBe('full');
    expect(r.cvByIndex[5]).toBeNull();
  });

  it('judges an index\'s share by how many chains reached it, not by its sample (reservoirs keep 256 of each)', () => {
    const rnd = prng(5);
    const full = (): number[] => Array.from({ length: 256 }, () => 200 + rnd() * 2000);
    // 100,000 jittered chains, 400 of which reached a 6th gap, all equal: sampled, both indexes hold 256.
    const gapsByIndex = [full(), full(), full(), full(), full(), Array.from({ length: 256 }, () => 800)];
    const r = classifyJitter({ gapsByIndex, countsByIndex: [100_000, 90_000, 80_000, 70_000, 60_000, 400] });
    expect(r.cvByIndex[5]).toBeNull();
    expect(r.class).toBe('full');
  });

  it('quotes no CV for immediate retries (class none: a few ms of spread is no schedule)', () => {
    const r = classifyJitter({ gapsByIndex: [[5, 20, 1, 12, 30, 8], [3, 25, 10, 7, 2, 18]] });
    expect(r).toMatchObject({ class: 'none', cv: null });
  });

  it('property: identical aligned gaps are never jittered', () => {
    fc.assert(fc.property(fc.double({ min: 50, max: 30_000, noNaN: true }), fc.integer({ min: 5, max: 50 }), (g, n) => classifyJitter({ gapsByIndex: [Array.from({ length: n }, () => g)] }).class === 'none'));
  });
});

describe('decideBackoff over many chains', () => {
  const votes = (v: Partial<Record<string, number>>): Parameters<typeof decideBackoff>[0] => ({ immediate: 0, constant: 0, linear: 0, exponential: 0, irregular: 0, 'insufficient-data': 0, ...v });

  it('takes the majority of chains', () => {
    expect(decideBackoff(votes({ constant: 8, irregular: 2 }), [], 0, 20).class).toBe('constant');
  });

  it('classifies full-jitter clients from the central gap per attempt index (spec §4.6)', () => {
    const d = decideBackoff(votes({ irregular: 10, exponential: 3 }), [100, 200, 400], 0, 30);
    expect(d).toMatchObject({ class: 'exponential', basis: 'per-index' });
  });

  it('settles a linear/exponential split of jittered chains from the per-index series', () => {
    expect(decideBackoff(votes({ linear: 3, exponential: 2 }), [500, 1000, 2000], 0, 15)).toMatchObject({ class: 'exponential', basis: 'per-index' });
    expect(decideBackoff(votes({ linear: 2, exponential: 3 }), [500, 1000, 1500, 2000], 0, 20)).toMatchObject({ class: 'linear', basis: 'per-index' });
  });

  it('two-gap chains (100, 200: linear or exponential) do not outvote the chains of 3+ gaps that can tell', () => {
    // A linear 100/200/300 fleet under partial faults: 13 chains stop at two gaps (they read as
    // exponential), the 8 that went on read linear; the per-index series has only two points.
    const d = decideBackoff(votes({ linear: 8, exponential: 13, 'insufficient-data': 185 }), [100.8, 200.7], 0, 240, votes({ linear: 8 }));
    expect(d).toMatchObject({ class: 'linear', basis: 'chains' });
    expect(d.factor).toBeUndefined();
    // The votes are reported as they were.
    expect(d.votes).toMatchObject({ linear: 8, exponential: 13 });
    // And the other way round: an exponential fleet whose deep chains say so stays exponential.
    expect(decideBackoff(votes({ linear: 13, exponential: 8 }), [100, 200], 0, 240, votes({ exponential: 8 })).class).toBe('exponential');
  });

  it('does not call a jittered client immediate for a few tiny gaps', () => {
    expect(decideBackoff(votes({ immediate: 2, exponential: 1 }), [], 3, 20).class).not.toBe('immediate');
    expect(decideBackoff(votes({ immediate: 5 }), [], 19, 20).class).toBe('immediate');
  });

  it('one-retry chains that were all immediate still say immediate', () => {
    expect(decideBackoff(votes({}), [], 6, 6)).toMatchObject({ class: 'immediate', basis: 'immediate-gaps' });
    expect(decideBackoff(votes({}), [], 5, 5)).toMatchObject({ class: 'immediate', basis: 'immediate-gaps' });
  });

  it('two or three lone short gaps (full-jitter draws under 50 ms) do not make a client immediate', () => {
    for (const n of [2, 3, 4]) expect(decideBackoff(votes({}), [], n, n).class).not.toBe('immediate');
  });
});

describe('normalisation', () => {
  it('folds ids in paths to :id', () => {
    expect(normalizePath('/users/42/orders/3f2a9c1e-1b2c-4d5e-8f90-a1b2c3d4e5f6')).toBe('/users/:id/orders/:id');
    expect(normalizePath('/blobs/9f86d081884c7d65')).toBe('/blobs/:id');
    expect(normalizePath('/api/v1/items')).toBe('/api/v1/items');
    expect(normalizePath('/o/01HV6Z3Q9XK5N4M8J2R7T0WBCD')).toBe('/o/:id');
    expect(routeOf('post', '/orders/7', false)).toBe('POST /orders/:id');
    expect(routeOf('GET', '/socket', true)).toBe('WS /socket');
  });

  it('folds exactly the segments the id regexes match (one pass over the characters instead)', () => {
    // The reference: the regexes the character scan replaces, applied to the split path.
    const ID = [/^\d+$/, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, /^(?=[0-9a-f]*\d)[0-9a-f]{8,}$/i, /^(?=.*\d)(?=.*[a-z])[0-9a-z_-]{16,}$/i];
    const reference = (path: string): string => {
      const q = path.indexOf('?');
      const out = (q === -1 ? path : path.slice(0, q))
        .split('/')
        .map((s) => (s !== '' && ID.some((re) => re.test(s)) ? ':id' : s))
        .join('/');
      return out === '' ? '/' : out;
    };
    const uuid = fc.uuid().map((u) => u.toUpperCase());
    const seg = fc.oneof(
      fc.stringMatching(/^[0-9a-fA-FgGzZ_\-é. ]{0,40}$/),
      fc.stringMatching(/^[0-9]{1,12}$/),
      fc.stringMatching(/^[0-9a-f]{6,20}$/),
      fc.uuid(),
      uuid,
      uuid.map((u) => u.replace(/-/g, '_')),
    );
    const path = fc.tuple(fc.array(seg, { maxLength: 6 }), fc.option(fc.string({ maxLength: 10 }))).map(([segs, q]) => `/${segs.join('/')}${q === null ? '' : `?${q}`}`);
    fc.assert(fc.property(fc.oneof(path, fc.string({ maxLength: 60 })), (p) => normalizePath(p) === reference(p)), { numRuns: 5000 });
    for (const p of ['', '/', '?x', '/a//b/', '/12345678', '/1234567', '/abcdefab', '/abcdefa1', '/0000000000000000x', '/aaaaaaaaaaaaaaaaaaaa', '/_1a______________']) {
      expect(normalizePath(p)).toBe(reference(p));
    }
  });

  it('the thread of a fingerprinted attempt is f + the fingerprint', () => {
    const ctx = { cacheBusting: new Set(['_']), clientKeyHeader: null };
    for (const [query, bodyHash] of [[null, null], ['b=2&a=1&_=3', 'sha256:ab:10'], ['', null]] as const) {
      const r = { v: 1, type: 'http', id: 'x', ts: 1, end: 2, client: '10.0.0.1 curl/8', ip: '10.0.0.1', conn: 'c', method: 'post', path: '/v1/m/7', query, status: 503, outcome: null, upstreamStatus: null, bytesIn: 0, bytesOut: 0, ttfb: 1, duration: 1, fault: null, faults: [], retryAfter: null, bodyHash, userAgent: 'curl/8', headers: {}, error: null } as unknown as HttpRecord;
      expect(toAttempt(r, ctx, 'key').thread).toBe(`f\0${fingerprint('key', 'POST', '/v1/m/7', canonicalQuery(query, ctx.cacheBusting), bodyHash)}`);
    }
  });

  it('drops cache-busting keys and sorts the rest', () => {
    const drop = new Set(['t', '_', 'ts', 'nonce']);
    expect(canonicalQuery('b=2&a=1&_=123', drop)).toBe(canonicalQuery('a=1&_=999&b=2', drop));
    expect(canonicalQuery('ts=1&nonce=x', drop)).toBe('');
    expect(canonicalQuery(null, drop)).toBe('');
  });

  it('names User-Agent families', () => {
    expect(userAgentFamily('okhttp/4.9.0')).toBe('okhttp');
    expect(userAgentFamily('python-requests/2.31')).toBe('python-requests');
    expect(userAgentFamily('Go-http-client/1.1')).toBe('go-http-client');
    expect(userAgentFamily('aws-sdk-java/2.21.0 Linux/5.10')).toBe('aws-sdk-java');
    expect(userAgentFamily('Dart/3.2 (dart:io)')).toBe('dart');
    expect(userAgentFamily('Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0')).toBe('edge');
    expect(userAgentFamily('Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0')).toBe('firefox');
    expect(userAgentFamily('Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15')).toBe('safari');
    expect(userAgentFamily(null)).toBe('(none)');
  });

  it('property: the family never carries a version number', () => {
    fc.assert(
      fc.property(fc.constantFrom('okhttp', 'curl', 'axios', 'python-requests', 'grpc-java'), fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)), (name, v) => userAgentFamily(`${name}/${v.join('.')}`) === name),
    );
  });
});

describe('sketches', () => {
  it('Welford merges like one pass', () => {
    const a = new Welford();
    const b = new Welford();
    const all = new Welford();
    [1, 2, 3, 4].forEach((x) => (a.add(x), all.add(x)));
    [10, 20].forEach((x) => (b.add(x), all.add(x)));
    a.merge(b);
    expect(a.mean).toBeCloseTo(all.mean, 10);
    expect(a.sd).toBeCloseTo(all.sd, 10);
  });

  it('the stride reservoir stays bounded and spread over the stream', () => {
    const r = new StrideReservoir(64);
    for (let i = 0; i < 100_000; i++) r.add(i);
    expect(r.values.length).toBeLessThan(64);
    expect(r.count).toBe(100_000);
    expect(Math.max(...r.values)).toBeGreaterThan(50_000);
  });

  it('the histogram gives mean, p95 and max', () => {
    const h = new CountHistogram();
    for (let i = 0; i < 95; i++) h.add(1);
    for (let i = 0; i < 5; i++) h.add(30);
    expect(h.quantile(0.95)).toBe(1);
    expect(h.quantile(0.96)).toBe(30);
    expect(h.max).toBe(30);
    expect(h.buckets()).toEqual([
      { attempts: 1, count: 95 },
      { attempts: '>20', count: 5 },
    ]);
  });

  it('the Bloom counter counts a million keys within 2 % in 1 MiB', () => {
    const b = new BloomCounter();
    for (let i = 0; i < 1_000_000; i++) b.add(`client-${i}`);
    expect(b.distinct).toBeGreaterThan(980_000);
    expect(b.add('client-5')).toBe(false);
  });

  it('cv and linear fit', () => {
    expect(cv([5, 5, 5])).toBe(0);
    expect(linearFit([0, 1, 2], [1, 3, 5])).toMatchObject({ slope: 2, intercept: 1, r2: 1 });
  });

  it('poissonTail is a tail probability', () => {
    expect(poissonTail(0, 3)).toBe(1);
    expect(poissonTail(1, 1)).toBeCloseTo(1 - Math.exp(-1), 10);
    expect(poissonTail(5, 0.77)).toBeLessThan(0.01);
  });
});
