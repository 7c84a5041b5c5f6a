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
 * Layout: each key gets a *slot*, 0, 1, 2... in the order keys arrive (keys
 * are never removed, so slots are never freed). A slot's fields live in
 * typed-array columns: the arena address and length of its key and of its
 * value (arena.ts keeps the strings as UTF-8 bytes), its timestamp and
 * sequence number, and its origin as an index into a table of node ids.
 * KeyIndex (key-index.ts) finds a key's slot. Nothing here is one object
 * per key, so a million keys cost their bytes plus about 50 bytes each, and
 * the garbage collector has few objects to trace (docs/performance.md).
 * Entries handed out (`get`, iteration) are built on demand.
 *
 * Change feed: every change gets the next local sequence number, stored in
 * the key's slot. Sequence numbers are local to this node and meaningful only
 * with its epoch (see node.ts). `changesSince(n)` scans the slots for
 * sequence numbers above n, so it goes by slot (the order keys arrived), not
 * by sequence number.
 *
 * Live iteration: node.ts streams a catch-up from `changesSince` batch by
 * batch while writes keep coming, then tells the peer the sequence number it
 * is caught up to, so every change up to that number must have gone out. A
 * scan alone would miss a key changed after the scan passed its slot. So the
 * iteration is a series of passes: each pass notes the store's sequence
 * number S when it starts and yields the slots whose change is above the
 * previous pass's S (the requested `seq` for the first pass) and at most its
 * own S. A change made during a pass is above that pass's S, so the next
 * pass yields it (a key may thus be yielded twice). The iteration ends after
 * a pass during which nothing changed, or after MAX_PASSES passes when writes
 * keep coming, so that a steady trickle cannot keep it going. Either way,
 * every change up to the last pass's S was yielded, and the generator
 * returns that S: node.ts sends it in `caught-up`. When a pass saw no change
 * it is also the store's `seq` at the end. (A change below S can only come
 * from `restore`, which is for loading a store, not for use during an
 * iteration.)
 */
import { Arena, DEFAULT_CHUNK_BYTES } from './arena.js';
import { bucketOf, BUCKET_COUNT, Digests, finishEntryHash, foldBytes, startEntryHash } from './digest.js';
import { compareEntries, type Entry } from './entry.js';
import { hashKey, KeyIndex } from './key-index.js';
import { jsonStringLength } from './sync.js';

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

/** Options of a Store; only tests need them. */
export interface StoreOptions {
  /** Size of the arena's byte chunks, a power of two (default 4 MiB). */
  readonly chunkBytes?: number;
  /** Seed of the key hash (a node passes a random one; see key-index.ts). Default 0. */
  readonly hashSeed?: number;
}

const ADDED: MergeResult = { changed: true, duplicate: false, conflict: false };
const DUPLICATE: MergeResult = { changed: false, duplicate: true, conflict: false };

const INITIAL_CAPACITY = 1024;

/** Most passes of one live iteration (see the header): enough to catch the writes made during a long first pass. */
const MAX_PASSES = 3;

/** In-memory map of key to winning entry. */
export class Store {
  readonly #arena: Arena;
  readonly #index = new KeyIndex((slot, key) => this.#arena.equals(key, this.#keys[slot * 2]!, this.#keys[slot * 2 + 1]!));
  // Columns, by slot. Keys and values take two words each: arena address, then length word.
  #keys = new Uint32Array(INITIAL_CAPACITY * 2);
  #values = new Uint32Array(INITIAL_CAPACITY * 2);
  #timestamps = new Float64Array(INITIAL_CAPACITY);
  #seqs = new Float64Array(INITIAL_CAPACITY);
  #origins = new Uint32Array(INITIAL_CAPACITY);
  /** Each key's digest bucket: a repair scans a byte per key to find its buckets' entries. */
  #buckets = new Uint8Array(INITIAL_CAPACITY);
  /** Node ids that wrote entries, shared by every entry they wrote. */
  readonly #originIds: string[] = [];
  readonly #originIndexes = new Map<string, number>();
  /** Each origin's UTF-8 bytes, for the digest. */
  readonly #originBytes: { readonly bytes: Uint8Array; readonly view: DataView }[] = [];
  #lastOrigin: string | undefined;
  #lastOriginIndex = 0;
  readonly digests = new Digests();
  #seq = 0;

  readonly #hashSeed: number;

  constructor(options: StoreOptions = {}) {
    this.#arena = new Arena(options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
    this.#hashSeed = options.hashSeed ?? 0;
  }

  /** Number of keys. */
  get size(): number {
    return this.#index.size;
  }

  /** Bytes held for keys and values (the arena's chunks) and the per-key columns, in bytes. */
  get heldBytes(): number {
    const columns = this.#keys.byteLength + this.#values.byteLength + this.#timestamps.byteLength + this.#seqs.byteLength + this.#origins.byteLength + this.#buckets.byteLength;
    return this.#arena.allocatedBytes + columns;
  }

  /** Sequence number of the latest change (0 for an empty store). */
  get seq(): number {
    return this.#seq;
  }

  /** The entry stored for `key`, if any (a new object each call). */
  get(key: string): Entry | undefined {
    const slot = this.#index.find(key, hashKey(key, this.#hashSeed));
    return slot < 0 ? undefined : this.#entryAt(key, slot);
  }

  /** The value stored for `key`, if any, without building its entry. */
  value(key: string): string | undefined {
    const slot = this.#index.find(key, hashKey(key, this.#hashSeed));
    return slot < 0 ? undefined : this.#valueAt(slot);
  }

  /** Sequence number of the change that stored `key`, if any. */
  seqOf(key: string): number | undefined {
    const slot = this.#index.find(key, hashKey(key, this.#hashSeed));
    return slot < 0 ? undefined : this.#seqs[slot];
  }

  /** Every key, sorted (a sort of the whole store at each call: for library users, never for a remote request). */
  keys(): string[] {
    return Array.from({ length: this.size }, (_, slot) => this.#keyAt(slot)).sort();
  }

  /**
   * Keys by slot (the order they arrived) from slot `start`: at most `limit`
   * of them, and as many as fit in `maxLength` characters of JSON (at least
   * one). `next` is the slot after the last key returned (`size` when none is
   * left). A page costs about its own size, whatever the store holds.
   */
  keysPage(start: number, limit: number, maxLength: number): { keys: string[]; next: number } {
    const keys: string[] = [];
    let length = 0;
    let slot = start;
    for (; slot < this.size && keys.length < limit; slot++) {
      const key = this.#keyAt(slot);
      length += jsonStringLength(key) + 1;
      if (keys.length > 0 && length > maxLength) break;
      keys.push(key);
    }
    return { keys, next: slot };
  }

  /** Every entry, by slot; live, like `changesSince`. */
  *entries(): IterableIterator<Entry> {
    for (const change of this.changesSince(-Infinity)) yield change.entry;
  }

  /**
   * Entries changed after sequence number `seq`, by slot, including changes
   * made while the iteration runs (see the header). Returns the sequence
   * number up to which every change was yielded.
   */
  *changesSince(seq: number): Generator<Change, number, undefined> {
    let after = seq;
    for (let pass = 1; ; pass++) {
      const upTo = this.#seq;
      // `size` and the columns are read afresh at every slot: writes may add keys or grow them.
      for (let slot = 0; slot < this.size; slot++) {
        const changeSeq = this.#seqs[slot]!;
        if (changeSeq > after && changeSeq <= upTo) yield { entry: this.#entryAt(this.#keyAt(slot), slot), seq: changeSeq };
      }
      if (this.#seq === upTo || pass === MAX_PASSES) return upTo;
      after = upTo;
    }
  }

  /**
   * The entries whose keys fall in the `wanted` buckets (a flag per bucket),
   * by slot; live, as `changesSince` is. Skipping a slot costs a byte read, so
   * a pass over a million keys takes about a millisecond.
   */
  *entriesInBuckets(wanted: readonly boolean[]): Generator<Entry> {
    if (wanted.length !== BUCKET_COUNT) throw new RangeError(`entriesInBuckets needs ${BUCKET_COUNT} flags`);
    for (let slot = 0; slot < this.size; slot++) {
      if (wanted[this.#buckets[slot]!]) yield this.#entryAt(this.#keyAt(slot), slot);
    }
  }

  /** Keeps whichever of the stored and incoming entry wins; see `MergeResult`. */
  merge(incoming: Entry): MergeResult {
    const hash = hashKey(incoming.key, this.#hashSeed);
    const slot = this.#index.find(incoming.key, hash);
    if (slot < 0) {
      this.#add(incoming, hash, this.#seq + 1);
      this.#seq++;
      return ADDED;
    }
    const stored = this.#entryAt(incoming.key, slot);
    const order = compareEntries(incoming, stored);
    if (order === 0) return DUPLICATE;
    const conflict = incoming.value !== stored.value;
    if (order > 0) return { changed: false, duplicate: !conflict, conflict };
    this.#replace(incoming, slot, this.#seq + 1, stored);
    this.#seq++;
    return { changed: true, duplicate: false, conflict };
  }

  /**
   * Stores `entry` if its key is new, as `merge` would; otherwise changes
   * nothing and returns the value stored for the key. The write-once path of
   * `set`: one lookup where `get` then `merge` would take two.
   */
  insert(entry: Entry): string | undefined {
    const hash = hashKey(entry.key, this.#hashSeed);
    const slot = this.#index.find(entry.key, hash);
    if (slot >= 0) return this.#valueAt(slot);
    this.#add(entry, hash, this.#seq + 1);
    this.#seq++;
    return undefined;
  }

  /** Loads a change recovered from storage, with its original sequence number. */
  restore(change: Change): void {
    const { entry, seq } = change;
    const hash = hashKey(entry.key, this.#hashSeed);
    const slot = this.#index.find(entry.key, hash);
    if (slot < 0) this.#add(entry, hash, seq);
    else {
      const stored = this.#entryAt(entry.key, slot);
      if (compareEntries(entry, stored) >= 0) return;
      this.#replace(entry, slot, seq, stored);
    }
    if (seq > this.#seq) this.#seq = seq;
  }

  #keyAt(slot: number): string {
    return this.#arena.read(this.#keys[slot * 2]!, this.#keys[slot * 2 + 1]!);
  }

  #valueAt(slot: number): string {
    return this.#arena.read(this.#values[slot * 2]!, this.#values[slot * 2 + 1]!);
  }

  #entryAt(key: string, slot: number): Entry {
    return { key, value: this.#valueAt(slot), timestamp: this.#timestamps[slot]!, origin: this.#originIds[this.#origins[slot]!]! };
  }

  /** Stores a new key. The strings go to the arena first: if it refuses one, nothing else has changed. */
  #add(entry: Entry, hash: number, seq: number): void {
    const slot = this.size;
    if (slot === this.#seqs.length) this.#grow();
    this.#arena.write(entry.key, this.#keys, slot * 2);
    this.#arena.write(entry.value, this.#values, slot * 2);
    this.#index.add(hash);
    this.#timestamps[slot] = entry.timestamp;
    this.#seqs[slot] = seq;
    const origin = this.#originIndex(entry.origin);
    this.#origins[slot] = origin;
    // The digest hashes the bytes just written, not the strings again.
    startEntryHash();
    this.#arena.fold(this.#keys[slot * 2]!, this.#keys[slot * 2 + 1]!);
    this.#arena.fold(this.#values[slot * 2]!, this.#values[slot * 2 + 1]!);
    const { bytes, view } = this.#originBytes[origin]!;
    foldBytes(bytes, view, 0, bytes.length);
    finishEntryHash(entry.timestamp);
    const bucket = bucketOf(entry.key);
    this.#buckets[slot] = bucket;
    this.digests.toggleHashed(bucket);
  }

  /** Replaces `stored`, the entry at `slot`; a different value is written anew (the old bytes stay in the arena, unused). */
  #replace(entry: Entry, slot: number, seq: number, stored: Entry): void {
    if (entry.value !== stored.value) this.#arena.write(entry.value, this.#values, slot * 2);
    this.digests.toggle(stored);
    this.digests.toggle(entry);
    this.#timestamps[slot] = entry.timestamp;
    this.#seqs[slot] = seq;
    this.#origins[slot] = this.#originIndex(entry.origin);
  }

  #originIndex(origin: string): number {
    // Runs of entries share an origin (a node's own writes, a catch-up from one peer): skip the map then.
    if (origin === this.#lastOrigin) return this.#lastOriginIndex;
    let index = this.#originIndexes.get(origin);
    if (index === undefined) {
      index = this.#originIds.push(origin) - 1;
      this.#originIndexes.set(origin, index);
      const bytes = new TextEncoder().encode(origin);
      this.#originBytes.push({ bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
    }
    this.#lastOrigin = origin;
    this.#lastOriginIndex = index;
    return index;
  }

  /** Doubles the capacity of every column. */
  #grow(): void {
    const grown = <T extends Float64Array | Uint32Array | Uint8Array>(column: T, make: (length: number) => T): T => {
      const bigger = make(column.length * 2);
      bigger.set(column);
      return bigger;
    };
    this.#keys = grown(this.#keys, (length) => new Uint32Array(length));
    this.#values = grown(this.#values, (length) => new Uint32Array(length));
    this.#timestamps = grown(this.#timestamps, (length) => new Float64Array(length));
    this.#seqs = grown(this.#seqs, (length) => new Float64Array(length));
    this.#origins = grown(this.#origins, (length) => new Uint32Array(length));
    this.#buckets = grown(this.#buckets, (length) => new Uint8Array(length));
  }
}
