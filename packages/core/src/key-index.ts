/**
 * The store's hash index: key to slot, for keys whose bytes live in the
 * arena. A Map<string, number> would need every key as a string object; this
 * table holds only numbers.
 *
 * Open addressing with linear probing in an Int32Array of `slot + 1` (0 marks
 * an empty place), kept at most half full so that probe runs stay short.
 * Slots are numbered 0, 1, 2... in the order keys are added and never
 * removed, so the index also hands them out. Each slot's 32-bit hash is kept:
 * a probe compares hashes before asking the store to compare key bytes, and
 * growing the table re-places slots without reading any key.
 */

import { fnv1a, FNV_OFFSET_BASIS } from './digest.js';

const INITIAL_SLOTS = 1024;

/**
 * 32-bit hash of a key's UTF-16 code units: FNV-1a from `seed`, then the
 * murmur3 finaliser so that the low bits (the table position) mix well. Each
 * store draws its own seed, so that keys crafted to collide on one node (long
 * probe runs: a slow node) do not collide on another.
 */
export function hashKey(key: string, seed: number): number {
  let hash = fnv1a(key, (FNV_OFFSET_BASIS ^ seed) >>> 0);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

/** Key-to-slot hash table; the keys themselves are compared by the `keyIs` callback. */
export class KeyIndex {
  /** Places of the table: slot + 1, or 0 when empty. Its length is a power of two. */
  #table = new Int32Array(INITIAL_SLOTS * 2);
  #hashes = new Uint32Array(INITIAL_SLOTS);
  #size = 0;
  readonly #keyIs: (slot: number, key: string) => boolean;

  /** `keyIs(slot, key)` tells whether the key stored at `slot` is `key`. */
  constructor(keyIs: (slot: number, key: string) => boolean) {
    this.#keyIs = keyIs;
  }

  /** Number of slots handed out (keys added). */
  get size(): number {
    return this.#size;
  }

  /** The slot of `key`, whose hash is `hash`, or -1. */
  find(key: string, hash: number): number {
    const table = this.#table;
    const mask = table.length - 1;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const place = table[at]!;
      if (place === 0) return -1;
      const slot = place - 1;
      if (this.#hashes[slot] === hash && this.#keyIs(slot, key)) return slot;
    }
  }

  /** Adds a key that `find` did not find, by its hash; returns its new slot (the previous size). */
  add(hash: number): number {
    const slot = this.#size;
    if (slot === this.#hashes.length) {
      const hashes = new Uint32Array(slot * 2);
      hashes.set(this.#hashes);
      this.#hashes = hashes;
    }
    if ((slot + 1) * 2 > this.#table.length) this.#growTable();
    this.#hashes[slot] = hash;
    this.#place(hash, slot);
    this.#size = slot + 1;
    return slot;
  }

  #place(hash: number, slot: number): void {
    const table = this.#table;
    const mask = table.length - 1;
    let at = hash & mask;
    while (table[at] !== 0) at = (at + 1) & mask;
    table[at] = slot + 1;
  }

  /** Doubles the table and re-places every slot by its kept hash. */
  #growTable(): void {
    this.#table = new Int32Array(this.#table.length * 2);
    for (let slot = 0; slot < this.#size; slot++) this.#place(this.#hashes[slot]!, slot);
  }
}
