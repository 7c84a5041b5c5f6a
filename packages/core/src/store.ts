/**
 * The key-value store: one entry per key, in memory, with a change feed and
 * digests.
 *
 * `merge` is the only way a replicated entry gets in. It keeps the winner of
 * `compareEntries`, so merging the same entry twice changes nothing the second
 * time: a node forwards an entry only when merging it changed the store, which
 * is what stops broadcast loops and duplicate applies without any table of
 * message ids.
 *
 * Change feed: every change gets the next local sequence number, and the map
 * is kept in sequence order (a replaced key moves to the end), so "what
 * changed since N" is a scan of the tail. Sequence numbers are local to this
 * node and meaningful only with its epoch (see node.ts).
 *
 * Layout: a key's fields live in columns at the key's slot (values in an
 * array, timestamps and sequence numbers in Float64Arrays, origins as indexes
 * into a table of node ids) rather than in one object per key. A million keys
 * then cost about 60 bytes each beyond the key and value strings, instead of
 * about 150 for an entry object, its boxed timestamp and a change record
 * (docs/performance.md). Keys are never removed, so slots are never freed.
 */
import { Digests } from './digest.js';
import { compareEntries, type Entry } from './entry.js';

/** What merging one entry did to the store. */
export interface MergeResult {
  /** True when the store now holds the incoming entry (new key, or it won). */
  readonly changed: boolean;
  /** True when the store already held exactly this entry. */
  readonly duplicate: boolean;
  /** True when the incoming and stored entries had different values. */
  readonly conflict: boolean;
}

/** A stored entry with the local sequence number of the change that stored it. */
export interface Change {
  readonly entry: Entry;
  readonly seq: number;
}

const ADDED: MergeResult = { changed: true, duplicate: false, conflict: false };
const DUPLICATE: MergeResult = { changed: false, duplicate: true, conflict: false };

const INITIAL_CAPACITY = 1024;

/** In-memory map of key to winning entry. */
export class Store {
  /** Key to slot, in sequence order. */
  readonly #slots = new Map<string, number>();
  readonly #values: string[] = [];
  #timestamps = new Float64Array(INITIAL_CAPACITY);
  #seqs = new Float64Array(INITIAL_CAPACITY);
  #origins = new Uint32Array(INITIAL_CAPACITY);
  /** Node ids that wrote entries, shared by every entry they wrote. */
  readonly #originIds: string[] = [];
  readonly #originIndexes = new Map<string, number>();
  readonly digests = new Digests();
  #seq = 0;
  /** Sorted keys, kept until the next new key (paged `keys` asks many times in a row). */
  #sortedKeys: string[] | null = null;

  /** Number of keys. */
  get size(): number {
    return this.#slots.size;
  }

  /** Sequence number of the latest change (0 for an empty store). */
  get seq(): number {
    return this.#seq;
  }

  /** The entry stored for `key`, if any (a new object each call). */
  get(key: string): Entry | undefined {
    const slot = this.#slots.get(key);
    return slot === undefined ? undefined : this.#entryAt(key, slot);
  }

  /** The value stored for `key`, if any, without building its entry. */
  value(key: string): string | undefined {
    const slot = this.#slots.get(key);
    return slot === undefined ? undefined : this.#values[slot];
  }

  /** Sequence number of the change that stored `key`, if any. */
  seqOf(key: string): number | undefined {
    const slot = this.#slots.get(key);
    return slot === undefined ? undefined : this.#seqs[slot];
  }

  /** Every key, sorted. The array is shared: do not modify it. */
  keys(): readonly string[] {
    this.#sortedKeys ??= [...this.#slots.keys()].sort();
    return this.#sortedKeys;
  }

  /** Every entry, oldest change first. */
  *entries(): IterableIterator<Entry> {
    for (const [key, slot] of this.#slots) yield this.#entryAt(key, slot);
  }

  /** Entries changed after sequence number `seq`, oldest first. */
  *changesSince(seq: number): IterableIterator<Change> {
    for (const [key, slot] of this.#slots) {
      const changeSeq = this.#seqs[slot]!;
      if (changeSeq > seq) yield { entry: this.#entryAt(key, slot), seq: changeSeq };
    }
  }

  /** Keeps whichever of the stored and incoming entry wins; see `MergeResult`. */
  merge(incoming: Entry): MergeResult {
    const slot = this.#slots.get(incoming.key);
    if (slot === undefined) {
      this.#put(incoming, ++this.#seq, undefined);
      return ADDED;
    }
    const stored = this.#entryAt(incoming.key, slot);
    const order = compareEntries(incoming, stored);
    if (order === 0) return DUPLICATE;
    const conflict = incoming.value !== stored.value;
    if (order < 0) {
      this.#put(incoming, ++this.#seq, stored);
      return { changed: true, duplicate: false, conflict };
    }
    return { changed: false, duplicate: !conflict, conflict };
  }

  /** Loads a change recovered from storage, with its original sequence number. */
  restore(change: Change): void {
    const stored = this.get(change.entry.key);
    if (stored !== undefined && compareEntries(change.entry, stored) >= 0) return;
    this.#put(change.entry, change.seq, stored);
    if (change.seq > this.#seq) this.#seq = change.seq;
  }

  #entryAt(key: string, slot: number): Entry {
    return { key, value: this.#values[slot]!, timestamp: this.#timestamps[slot]!, origin: this.#originIds[this.#origins[slot]!]! };
  }

  #put(entry: Entry, seq: number, stored: Entry | undefined): void {
    let slot: number;
    if (stored !== undefined) {
      this.digests.toggle(stored);
      slot = this.#slots.get(entry.key)!;
      // Delete first so that the map stays in sequence order.
      this.#slots.delete(entry.key);
    } else {
      slot = this.#slots.size;
      if (slot === this.#seqs.length) this.#grow();
      this.#sortedKeys = null;
    }
    this.digests.toggle(entry);
    this.#slots.set(entry.key, slot);
    this.#values[slot] = entry.value;
    this.#timestamps[slot] = entry.timestamp;
    this.#seqs[slot] = seq;
    this.#origins[slot] = this.#originIndex(entry.origin);
  }

  #originIndex(origin: string): number {
    let index = this.#originIndexes.get(origin);
    if (index === undefined) {
      index = this.#originIds.push(origin) - 1;
      this.#originIndexes.set(origin, index);
    }
    return index;
  }

  #grow(): void {
    const capacity = this.#seqs.length * 2;
    const grown = <T extends Float64Array | Uint32Array>(column: T, make: (length: number) => T): T => {
      const bigger = make(capacity);
      bigger.set(column);
      return bigger;
    };
    this.#timestamps = grown(this.#timestamps, (length) => new Float64Array(length));
    this.#seqs = grown(this.#seqs, (length) => new Float64Array(length));
    this.#origins = grown(this.#origins, (length) => new Uint32Array(length));
  }
}
