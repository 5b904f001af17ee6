/**
 * Small non-cryptographic string hashes for the hot path: cohort membership (sticky by client key)
 * and attempt-chain keys. No allocation: the salt is folded into the starting state.
 */

/** FNV-1a over UTF-16 code units from `seed`, with murmur3's finaliser for avalanche. 32 bits. */
export function hash32(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Where a client key falls in [0, 1) for a salt: the same key and salt always give the same
 * number, so `cohort: 0.3` picks the same 30 % of clients every time, and with one salt a
 * 0.25-cohort is inside the 0.5-cohort (gated recovery lets clients back in stably).
 *
 * @example cohortPoint('client-7', hash32('partial-outage')) < 0.3
 */
export function cohortPoint(clientKey: string, saltHash: number): number {
  return hash32(clientKey, saltHash) / 4294967296;
}

/** cyrb53: a 53-bit hash as a number — a compact Map key for attempt chains. */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
