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
 *
 * Growing is incremental, as Redis rehashes its dictionaries: re-placing a
 * million slots at once held the event loop for a quarter of a second, on
 * whichever write crossed the power of two. The new table takes the new keys
 * at once, and each `add` moves MIGRATE_PER_ADD of the old slots over, in slot
 * order; until the last is moved, `find` also probes the old table. The old
 * table is always done before the new one fills: it holds half as many
 * places, and each add moves more than one slot.
 */

import { fnv1a, FNV_OFFSET_BASIS } from './digest.js';

const INITIAL_SLOTS = 1024;

/** Old slots moved to the new table at each `add` while the table grows: a growth ends within a quarter of the adds it takes to fill the table again. */
const MIGRATE_PER_ADD = 8;

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
  /** While growing: the previous table, whose slots from `#migrated` on are not in `#table` yet. */
  #old: Int32Array | null = null;
  /** While growing: slots below this are in `#table`; the old table holds every slot below `#oldSize`. */
  #migrated = 0;
  #oldSize = 0;
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
    const found = this.#probe(this.#table, key, hash);
    if (found >= 0 || this.#old === null) return found;
    return this.#probe(this.#old, key, hash);
  }

  #probe(table: Int32Array, key: string, hash: number): number {
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
    if (this.#old !== null) this.#migrate(MIGRATE_PER_ADD);
    if ((slot + 1) * 2 > this.#table.length) this.#grow();
    this.#hashes[slot] = hash;
    this.#place(this.#table, hash, slot);
    this.#size = slot + 1;
    return slot;
  }

  #place(table: Int32Array, hash: number, slot: number): void {
    const mask = table.length - 1;
    let at = hash & mask;
    while (table[at] !== 0) at = (at + 1) & mask;
    table[at] = slot + 1;
  }

  /** Starts a table twice the size; the slots of the current one move over a few at each add. */
  #grow(): void {
    // A growth still going (never, by the sizes: see the header) is finished first.
    if (this.#old !== null) this.#migrate(Infinity);
    this.#old = this.#table;
    this.#oldSize = this.#size;
    this.#migrated = 0;
    this.#table = new Int32Array(this.#table.length * 2);
  }

  /** Moves up to `count` slots from the old table to the new one; drops the old table once all are moved. */
  #migrate(count: number): void {
    const end = Math.min(this.#oldSize, this.#migrated + count);
    for (let slot = this.#migrated; slot < end; slot++) this.#place(this.#table, this.#hashes[slot]!, slot);
    this.#migrated = end;
    if (end === this.#oldSize) this.#old = null;
  }
}
