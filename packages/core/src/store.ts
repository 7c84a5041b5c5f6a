/**
 * The key-value store: one entry per key, in memory.
 *
 * `merge` is the only way a replicated entry gets in. It keeps the winner of
 * `compareEntries`, so merging the same entry twice changes nothing the second
 * time: a node forwards an entry only when merging it changed the store, which
 * is what stops broadcast loops and duplicate applies without any table of
 * message ids.
 */
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

const ADDED: MergeResult = { changed: true, duplicate: false, conflict: false };
const DUPLICATE: MergeResult = { changed: false, duplicate: true, conflict: false };

/** In-memory map of key to winning entry. */
export class Store {
  readonly #entries = new Map<string, Entry>();

  /** Number of keys. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry stored for `key`, if any. */
  get(key: string): Entry | undefined {
    return this.#entries.get(key);
  }

  /** Every key, sorted. */
  keys(): string[] {
    return [...this.#entries.keys()].sort();
  }

  /** Every entry, in insertion order. */
  entries(): IterableIterator<Entry> {
    return this.#entries.values();
  }

  /** Keeps whichever of the stored and incoming entry wins; see `MergeResult`. */
  merge(incoming: Entry): MergeResult {
    const stored = this.#entries.get(incoming.key);
    if (stored === undefined) {
      this.#entries.set(incoming.key, incoming);
      return ADDED;
    }
    const order = compareEntries(incoming, stored);
    if (order === 0) return DUPLICATE;
    const conflict = incoming.value !== stored.value;
    if (order < 0) {
      this.#entries.set(incoming.key, incoming);
      return { changed: true, duplicate: false, conflict };
    }
    return { changed: false, duplicate: !conflict, conflict };
  }
}
