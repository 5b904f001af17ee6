/**
 * The request body's fingerprint without keeping the body: SHA-256 of the first 64 KiB, plus the
 * total length (analysis spec §1). Two attempts with the same hash carry the same payload.
 */
import { createHash, type Hash } from 'node:crypto';

export const BODY_HASH_LIMIT = 64 * 1024;

/** Accumulates a body's hash chunk by chunk; `digest()` gives `sha256:<hex>:<length>`. */
export class BodyHasher {
  private readonly hash: Hash = createHash('sha256');
  private hashed = 0;
  length = 0;

  update(chunk: Buffer): void {
    this.length += chunk.length;
    if (this.hashed >= BODY_HASH_LIMIT) return;
    const take = Math.min(chunk.length, BODY_HASH_LIMIT - this.hashed);
    this.hash.update(take === chunk.length ? chunk : chunk.subarray(0, take));
    this.hashed += take;
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}:${this.length}`;
  }
}
