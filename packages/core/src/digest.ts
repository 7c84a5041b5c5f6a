/**
 * Order-free digests of a store, for anti-entropy: two nodes compare one
 * 64-bit root, and on a mismatch 256 bucket digests, before sending any entry.
 *
 * A bucket's digest is the XOR of the 64-bit hashes of its entries, so it is
 * updated in O(1) when an entry is added or replaced, and does not depend on
 * the order entries arrived in. Hashes are FNV-1a, computed the same way on
 * every node; they guard against accidents, not against a malicious peer.
 */
import { type Entry } from './entry.js';

/** Number of buckets keys are spread over. */
export const BUCKET_COUNT = 256;

const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a of a string's UTF-16 code units, from offset basis `basis`. */
export function fnv1a(text: string, basis: number): number {
  let hash = basis;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, FNV_PRIME);
  }
  return hash >>> 0;
}

/** The bucket a key belongs to, 0 to BUCKET_COUNT - 1. */
export function bucketOf(key: string): number {
  return fnv1a(key, 0x811c9dc5) & (BUCKET_COUNT - 1);
}

/**
 * 64-bit hash of a whole entry, as two 32-bit halves: FNV-1a with two offset
 * bases over the key, the value and the origin (each followed by one more
 * multiply, so that "ab"+"c" and "a"+"bc" differ), then the timestamp's low
 * and high 32-bit words. Computed in place, with no string or array built:
 * this runs for every entry a node stores.
 */
export function entryHash(entry: Entry): [number, number] {
  hashEntry(entry);
  return [hashHigh >>> 0, hashLow >>> 0];
}

// The two halves of the last `hashEntry`, kept here so that no array is allocated per entry.
let hashHigh = 0;
let hashLow = 0;

function hashEntry(entry: Entry): void {
  hashHigh = 0x811c9dc5;
  hashLow = 0x050c5d1f;
  foldString(entry.key);
  foldString(entry.value);
  foldString(entry.origin);
  const timestamp = entry.timestamp;
  hashHigh = Math.imul(hashHigh ^ timestamp % 0x1_0000_0000, FNV_PRIME);
  hashLow = Math.imul(hashLow ^ Math.floor(timestamp / 0x1_0000_0000), FNV_PRIME);
}

function foldString(text: string): void {
  let high = hashHigh;
  let low = hashLow;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    high = Math.imul(high ^ code, FNV_PRIME);
    low = Math.imul(low ^ code, FNV_PRIME);
  }
  hashHigh = Math.imul(high, FNV_PRIME);
  hashLow = Math.imul(low, FNV_PRIME);
}

/** XOR digests of the 256 buckets of a store, kept up to date as entries change. */
export class Digests {
  readonly #words = new Uint32Array(BUCKET_COUNT * 2);

  /** Folds an entry in or out (XOR is its own inverse). */
  toggle(entry: Entry): void {
    const bucket = bucketOf(entry.key);
    hashEntry(entry);
    this.#words[bucket * 2] = this.#words[bucket * 2]! ^ hashHigh;
    this.#words[bucket * 2 + 1] = this.#words[bucket * 2 + 1]! ^ hashLow;
  }

  /** One bucket's digest as 16 hex digits. */
  bucket(index: number): string {
    return hex(this.#words[index * 2]!, this.#words[index * 2 + 1]!);
  }

  /** Every bucket's digest. */
  buckets(): string[] {
    return Array.from({ length: BUCKET_COUNT }, (_, index) => this.bucket(index));
  }

  /** The digest of the whole store: XOR of the buckets, as 16 hex digits. */
  root(): string {
    let high = 0;
    let low = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      high ^= this.#words[i * 2]!;
      low ^= this.#words[i * 2 + 1]!;
    }
    return hex(high >>> 0, low >>> 0);
  }
}

function hex(high: number, low: number): string {
  return high.toString(16).padStart(8, '0') + low.toString(16).padStart(8, '0');
}
