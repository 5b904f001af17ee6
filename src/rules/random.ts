/**
 * The engine's one seeded random source. Every random choice of a session — rule probabilities,
 * latency draws, dropped messages, corrupted positions, jitter — draws from it, so the same seed and
 * the same request sequence give the same faults.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state, passes PractRand),
 * seeded through splitmix32 so nearby seeds give unrelated streams. Tiny, fast, no dependency.
 */

/** A reseedable generator; `next` returns a float in [0, 1). */
export class SeededRandom {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  /** `next` bound once, safe to hand around as `() => number`. */
  readonly next: () => number;

  constructor(seed: number) {
    this.next = () => {
      const a = this.a;
      const b = this.b;
      const c = this.c;
      const d = this.d;
      const nd = (d + 1) | 0;
      const t = (((a + b) | 0) + nd) | 0;
      this.d = nd;
      this.a = b ^ (b >>> 9);
      this.b = (c + (c << 3)) | 0;
      const r = (c << 21) | (c >>> 11);
      this.c = (r + t) | 0;
      return (t >>> 0) / 4294967296;
    };
    this.reseed(seed);
  }

  /** Restarts the stream at `seed` (any safe integer). */
  reseed(seed: number): void {
    const s = Number.isFinite(seed) ? Math.trunc(seed) : 0;
    let x = (s >>> 0) ^ Math.imul((Math.floor(s / 4294967296) >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
    const mix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix() | 0;
    this.b = mix() | 0;
    this.c = mix() | 0;
    this.d = 1;
    for (let i = 0; i < 12; i++) this.next();
  }
}
