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

/** In-memory map of key to winning entry. */
export class Store {
  readonly #changes = new Map<string, Change>();
  readonly digests = new Digests();
  #seq = 0;
  /** Sorted keys, kept until the next new key (paged `keys` asks many times in a row). */
  #sortedKeys: string[] | null = null;

  /** Number of keys. */
  get size(): number {
    return this.#changes.size;
  }

  /** Sequence number of the latest change (0 for an empty store). */
  get seq(): number {
    return this.#seq;
  }

  /** The entry stored for `key`, if any. */
  get(key: string): Entry | undefined {
    return this.#changes.get(key)?.entry;
  }

  /** Sequence number of the change that stored `key`, if any. */
  seqOf(key: string): number | undefined {
    return this.#changes.get(key)?.seq;
  }

  /** Every key, sorted. The array is shared: do not modify it. */
  keys(): readonly string[] {
    this.#sortedKeys ??= [...this.#changes.keys()].sort();
    return this.#sortedKeys;
  }

  /** Every entry, oldest change first. */
  *entries(): IterableIterator<Entry> {
    for (const change of this.#changes.values()) yield change.entry;
  }

  /** Entries changed after sequence number `seq`, oldest first. */
  *changesSince(seq: number): IterableIterator<Change> {
    for (const change of this.#changes.values()) if (change.seq > seq) yield change;
  }

  /** Keeps whichever of the stored and incoming entry wins; see `MergeResult`. */
  merge(incoming: Entry): MergeResult {
    const stored = this.#changes.get(incoming.key);
    if (stored === undefined) {
      this.#put(incoming, ++this.#seq);
      return ADDED;
    }
    const order = compareEntries(incoming, stored.entry);
    if (order === 0) return DUPLICATE;
    const conflict = incoming.value !== stored.entry.value;
    if (order < 0) {
      this.#put(incoming, ++this.#seq);
      return { changed: true, duplicate: false, conflict };
    }
    return { changed: false, duplicate: !conflict, conflict };
  }

  /** Loads a change recovered from storage, with its original sequence number. */
  restore(change: Change): void {
    const stored = this.#changes.get(change.entry.key);
    if (stored !== undefined && compareEntries(change.entry, stored.entry) >= 0) return;
    this.#put(change.entry, change.seq);
    if (change.seq > this.#seq) this.#seq = change.seq;
  }

  #put(entry: Entry, seq: number): void {
    const stored = this.#changes.get(entry.key);
    if (stored !== undefined) {
      this.digests.toggle(stored.entry);
      // Delete first so that the map stays in sequence order.
      this.#changes.delete(entry.key);
    }
    this.digests.toggle(entry);
    if (stored === undefined) this.#sortedKeys = null;
    this.#changes.set(entry.key, { entry, seq });
  }
}
