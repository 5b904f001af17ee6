/**
 * Small, dependency-free statistics for the retry analysis: the summary numbers the spec's
 * thresholds are written against (coefficient of variation, median ratio, log-linear R²), and the
 * fixed-size sketches that keep memory flat however long a proxy runs (Welford running moments,
 * a deterministic stride reservoir, a bounded histogram, a Bloom filter for distinct counts).
 *
 * Everything here is deterministic: the live and offline analyses must agree to the last digit,
 * so no sketch draws random numbers.
 */

/** Arithmetic mean; NaN for an empty list. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Population standard deviation (divides by n); NaN for an empty list. */
export function stddev(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / xs.length);
}

/**
 * Coefficient of variation (population sd / mean). 0 for a list of equal values, Infinity when
 * the mean is 0 but the values differ, NaN for an empty list.
 */
export function cv(xs: readonly number[]): number {
  const m = mean(xs);
  const sd = stddev(xs);
  if (Number.isNaN(m)) return Number.NaN;
  if (m === 0) return sd === 0 ? 0 : Number.POSITIVE_INFINITY;
  return sd / Math.abs(m);
}

/** Median (mean of the two middle values for an even count); NaN for an empty list. */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** Linear-interpolated quantile q in [0, 1]; NaN for an empty list. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (pos - lo);
}

/** Least-squares fit y = a + b x with its coefficient of determination. */
export interface LinearFit {
  intercept: number;
  slope: number;
  r2: number;
}

/**
 * Ordinary least squares over (x, y) pairs. R² is 1 when every y is equal (a flat line explains a
 * flat series perfectly) and NaN with fewer than two points.
 */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return { intercept: Number.NaN, slope: Number.NaN, r2: Number.NaN };
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] as number;
    sy += ys[i] as number;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return { intercept: my, slope: 0, r2: Number.NaN };
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { intercept, slope, r2 };
}

/** Welford's running mean and variance: three numbers, any number of samples. */
export class Welford {
  n = 0;
  m = 0;
  m2 = 0;

  add(x: number): void {
    this.n++;
    const d = x - this.m;
    this.m += d / this.n;
    this.m2 += d * (x - this.m);
  }

  /** Adds another accumulator's samples (Chan et al.'s parallel formula). */
  merge(o: Welford): void {
    if (o.n === 0) return;
    if (this.n === 0) {
      this.n = o.n;
      this.m = o.m;
      this.m2 = o.m2;
      return;
    }
    const n = this.n + o.n;
    const d = o.m - this.m;
    this.m += (d * o.n) / n;
    this.m2 += o.m2 + (d * d * this.n * o.n) / n;
    this.n = n;
  }

  clone(): Welford {
    const w = new Welford();
    w.n = this.n;
    w.m = this.m;
    w.m2 = this.m2;
    return w;
  }

  get mean(): number {
    return this.n === 0 ? Number.NaN : this.m;
  }

  /** Population standard deviation. */
  get sd(): number {
    return this.n === 0 ? Number.NaN : Math.sqrt(Math.max(0, this.m2 / this.n));
  }
}

/**
 * A deterministic, bounded sample: keeps every `stride`-th value; when full it drops every other
 * kept value and doubles the stride. The sample stays spread over the whole stream (not just its
 * start) without a random source, so two runs over the same records keep the same values.
 */
export class StrideReservoir {
  values: number[] = [];
  private seen = 0;
  private stride = 1;

  constructor(readonly capacity: number) {}

  add(x: number): void {
    if (this.seen++ % this.stride !== 0) return;
    this.values.push(x);
    if (this.values.length >= this.capacity) {
      this.values = this.values.filter((_, i) => i % 2 === 0);
      this.stride *= 2;
    }
  }

  /** Appends another reservoir's kept values, then thins to capacity. */
  merge(o: StrideReservoir): void {
    for (const v of o.values) this.values.push(v);
    this.seen += o.seen;
    while (this.values.length >= this.capacity) {
      this.values = this.values.filter((_, i) => i % 2 === 0);
      this.stride *= 2;
    }
  }

  clone(): StrideReservoir {
    const r = new StrideReservoir(this.capacity);
    r.values = [...this.values];
    r.seen = this.seen;
    r.stride = this.stride;
    return r;
  }

  /** How many values were offered in total. */
  get count(): number {
    return this.seen;
  }
}

/**
 * Attempts per logical request: exact counts for 1..LIMIT, one bucket above, and the max. The
 * bucket array is allocated on the first value above 1 (most clients only ever see 1).
 */
export class CountHistogram {
  static readonly LIMIT = 20;
  private buckets_: number[] | null = null;
  private ones = 0;
  n = 0;
  sum = 0;
  max = 0;

  /** Counts per bucket: index i holds i+1 attempts, the last index holds everything above LIMIT. */
  get counts(): readonly number[] {
    const out = this.buckets_ === null ? new Array<number>(CountHistogram.LIMIT + 1).fill(0) : [...this.buckets_];
    out[0] = (out[0] as number) + this.ones;
    return out;
  }

  add(x: number, times = 1): void {
    const i = Math.min(Math.max(1, Math.round(x)), CountHistogram.LIMIT + 1) - 1;
    if (i === 0) this.ones += times;
    else {
      const b = (this.buckets_ ??= new Array<number>(CountHistogram.LIMIT + 1).fill(0));
      b[i] = (b[i] as number) + times;
    }
    this.n += times;
    this.sum += x * times;
    if (x > this.max) this.max = x;
  }

  merge(o: CountHistogram): void {
    this.ones += o.ones;
    if (o.buckets_ !== null) {
      const b = (this.buckets_ ??= new Array<number>(CountHistogram.LIMIT + 1).fill(0));
      for (let i = 0; i < b.length; i++) b[i] = (b[i] as number) + (o.buckets_[i] as number);
    }
    this.n += o.n;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  clone(): CountHistogram {
    const h = new CountHistogram();
    h.merge(this);
    return h;
  }

  get mean(): number {
    return this.n === 0 ? 0 : this.sum / this.n;
  }

  /** The smallest value v with at least q of the samples <= v (the overflow bucket reports max). */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const want = Math.ceil(q * this.n);
    const counts = this.counts;
    let acc = 0;
    for (let i = 0; i < counts.length; i++) {
      acc += counts[i] as number;
      if (acc >= want) return i === CountHistogram.LIMIT ? this.max : i + 1;
    }
    return this.max;
  }

  /** Non-empty buckets as `{ attempts, count }`, the last one labelled `">20"`. */
  buckets(): Array<{ attempts: number | string; count: number }> {
    const out: Array<{ attempts: number | string; count: number }> = [];
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i] as number;
      if (c > 0) out.push({ attempts: i === CountHistogram.LIMIT ? `>${CountHistogram.LIMIT}` : i + 1, count: c });
    }
    return out;
  }
}

/**
 * A fixed-size Bloom filter to count distinct client keys in constant memory. With the default
 * 2^23 bits (1 MiB) and 4 hashes, one million keys are counted within about 1 %.
 */
export class BloomCounter {
  private bits: Uint32Array;
  private readonly mask: number;
  /** Keys reported as new (a small undercount once the filter is crowded). */
  distinct = 0;

  constructor(readonly log2Bits = 23) {
    this.bits = new Uint32Array((1 << log2Bits) >>> 5);
    this.mask = (1 << log2Bits) - 1;
  }

  /** Records the key; true when it was (probably) not seen before. */
  add(key: string): boolean {
    const h1 = fnv1a(key, 0x811c9dc5);
    const h2 = fnv1a(key, 0x01000193) | 1;
    let fresh = false;
    for (let i = 0; i < 4; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      const word = bit >>> 5;
      const m = 1 << (bit & 31);
      if (((this.bits[word] as number) & m) === 0) {
        fresh = true;
        this.bits[word] = (this.bits[word] as number) | m;
      }
    }
    if (fresh) this.distinct++;
    return fresh;
  }

  /** Whether the key was (probably) added: never false for an added key, now and then true for another. */
  has(key: string): boolean {
    const h1 = fnv1a(key, 0x811c9dc5);
    const h2 = fnv1a(key, 0x01000193) | 1;
    for (let i = 0; i < 4; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if (((this.bits[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  clear(): void {
    this.bits.fill(0);
    this.distinct = 0;
  }
}

/** 32-bit FNV-1a over UTF-16 code units. */
export function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Rounds to `digits` decimals (for report numbers people read). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
