/**
 * The seeded random streams of a session. The rules engine owns two, started from the seed: one
 * for its decisions (rule probabilities) and one that gives every exchange with faults the seed of
 * a stream of its own, at its decision. Every draw a fault makes for an exchange afterwards — a
 * latency, corrupted positions, dropped or delayed messages — comes from that exchange's stream,
 * so what one exchange draws, and when, changes nothing for another: the same seed and the same
 * request sequence give the same faults, however the upstream's timing or the messages interleave.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state, passes PractRand),
 * seeded through splitmix32 so nearby seeds give unrelated streams. Tiny, fast, no dependency.
 */

/** Streams of one seed, apart from the main one (`SeededRandom`'s `stream`). */
export const STREAM = Object.freeze({
  /** The engine's exchange seeds. */
  exchanges: 1,
  /** An exchange's WebSocket messages, client to upstream. */
  messagesIn: 2,
  /** An exchange's WebSocket messages, upstream to client. */
  messagesOut: 3,
});

/** A reseedable generator; `next` returns a float in [0, 1). */
export class SeededRandom {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;
  /** `next` bound once, safe to hand around as `() => number`. */
  readonly next: () => number;

  /** `stream` picks one of several unrelated streams of the same seed (0: the main one). */
  constructor(seed: number, stream = 0) {
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
    this.reseed(seed, stream);
  }

  /** Restarts the stream at `seed` (any safe integer), `stream` as in the constructor. */
  reseed(seed: number, stream = 0): void {
    const s = Number.isFinite(seed) ? Math.trunc(seed) : 0;
    // (`stream` 0 leaves x as it always was: seeded sessions draw the main stream as before.)
    let x = (s >>> 0) ^ Math.imul((Math.floor(s / 4294967296) >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream, 0x27d4eb2f);
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

  /** A 32-bit seed for another `SeededRandom`: one draw, as an unsigned integer. */
  nextSeed(): number {
    return this.next() * 4294967296;
  }
}
