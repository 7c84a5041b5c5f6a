/**
 * Order-free digests of a store, for anti-entropy: two nodes compare one
 * 64-bit root, and on a mismatch 256 bucket digests, before sending any entry.
 *
 * A bucket's digest is the XOR of the 64-bit hashes of its entries, so it is
 * updated in O(1) when an entry is added or replaced, and does not depend on
 * the order entries arrived in. Hashes are computed the same way on every
 * node; they guard against accidents, not against a malicious peer.
 */
import { type Entry } from './entry.js';

/** Number of buckets keys are spread over. */
export const BUCKET_COUNT = 256;

/** Length of a digest (a bucket's or the root), in lowercase hex digits: 64 bits. */
export const DIGEST_HEX_DIGITS = 16;

const FNV_PRIME = 0x01000193;
/** FNV-1a's 32-bit offset basis: the start of bucketOf's hash, of the key index's, and of the entry hash's high half. */
export const FNV_OFFSET_BASIS = 0x811c9dc5;

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
  return fnv1a(key, FNV_OFFSET_BASIS) & (BUCKET_COUNT - 1);
}

// The entry hash (protocol 3): two 32-bit lanes over the UTF-8 bytes of the key,
// the value and the origin, four bytes at a time (little-endian words: a quarter
// of the steps of a byte-wise hash), each lane a multiply-xorshift so that every
// bit of a word reaches the low bits too; the bytes left after the last whole
// word one by one; then the string's byte length, so that "ab"+"c" and "a"+"bc"
// differ. Then the timestamp's low and high 32-bit words. The store hashes the
// bytes it has just written to its arena, without going back to the strings.
const LOW_BASIS = 0x050c5d1f;
const LOW_PRIME = 0x85ebca6b;

// The two halves of the hash being computed, kept here so that no array is allocated per entry.
let hashHigh = 0;
let hashLow = 0;

/** Starts an entry hash: fold the key, the value and the origin with `foldBytes`, then call `finishEntryHash`. */
export function startEntryHash(): void {
  hashHigh = FNV_OFFSET_BASIS;
  hashLow = LOW_BASIS;
}

/** Folds the UTF-8 bytes `bytes[start, start + length)` of one string into the entry hash; `view` is a DataView of the same memory. */
export function foldBytes(bytes: Uint8Array, view: DataView, start: number, length: number): void {
  let high = hashHigh;
  let low = hashLow;
  const end = start + length;
  const wordsEnd = start + (length & ~3);
  let i = start;
  for (; i < wordsEnd; i += 4) {
    const word = view.getUint32(i, true);
    high = Math.imul(high ^ word, FNV_PRIME);
    high ^= high >>> 15;
    low = Math.imul(low ^ word, LOW_PRIME);
    low ^= low >>> 13;
  }
  for (; i < end; i++) {
    const byte = bytes[i]!;
    high = Math.imul(high ^ byte, FNV_PRIME);
    low = Math.imul(low ^ byte, LOW_PRIME);
  }
  hashHigh = Math.imul(high ^ length, FNV_PRIME);
  hashLow = Math.imul(low ^ length, LOW_PRIME);
}

/** Ends an entry hash with the entry's timestamp. */
export function finishEntryHash(timestamp: number): void {
  hashHigh = Math.imul(hashHigh ^ timestamp % 0x1_0000_0000, FNV_PRIME);
  hashLow = Math.imul(hashLow ^ Math.floor(timestamp / 0x1_0000_0000), LOW_PRIME);
}

const encoder = new TextEncoder();
let scratch = new Uint8Array(1024);
let scratchView = new DataView(scratch.buffer);

/** Folds a string's UTF-8 bytes, encoded into a reused buffer. */
function foldString(text: string): void {
  if (text.length * 3 > scratch.length) {
    scratch = new Uint8Array(text.length * 3);
    scratchView = new DataView(scratch.buffer);
  }
  foldBytes(scratch, scratchView, 0, encoder.encodeInto(text, scratch).written);
}

function hashEntry(entry: Entry): void {
  startEntryHash();
  foldString(entry.key);
  foldString(entry.value);
  foldString(entry.origin);
  finishEntryHash(entry.timestamp);
}

/** 64-bit hash of a whole entry, as two 32-bit halves (see above). */
export function entryHash(entry: Entry): [number, number] {
  hashEntry(entry);
  return [hashHigh >>> 0, hashLow >>> 0];
}

/** XOR digests of the 256 buckets of a store, kept up to date as entries change. */
export class Digests {
  readonly #words = new Uint32Array(BUCKET_COUNT * 2);

  /** Folds an entry in or out (XOR is its own inverse). */
  toggle(entry: Entry): void {
    hashEntry(entry);
    this.toggleHashed(bucketOf(entry.key));
  }

  /** Folds in or out, in `bucket` (its key's), the entry whose hash was just computed with startEntryHash, foldBytes and finishEntryHash. */
  toggleHashed(bucket: number): void {
    this.#words[bucket * 2] = this.#words[bucket * 2]! ^ hashHigh;
    this.#words[bucket * 2 + 1] = this.#words[bucket * 2 + 1]! ^ hashLow;
  }

  /** One bucket's digest, as DIGEST_HEX_DIGITS hex digits. */
  bucket(index: number): string {
    return hex(this.#words[index * 2]!, this.#words[index * 2 + 1]!);
  }

  /** Every bucket's digest. */
  buckets(): string[] {
    return Array.from({ length: BUCKET_COUNT }, (_, index) => this.bucket(index));
  }

  /** The digest of the whole store: XOR of the buckets, as DIGEST_HEX_DIGITS hex digits. */
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
  return high.toString(16).padStart(DIGEST_HEX_DIGITS / 2, '0') + low.toString(16).padStart(DIGEST_HEX_DIGITS / 2, '0');
}
