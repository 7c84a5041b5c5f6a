/**
 * An entry is one key's write: the value, when it was written and by which
 * node. Entries are totally ordered so that every node picks the same winner
 * when two writes of one key meet: the oldest write wins (the course's next
 * step), ties broken by origin id, then by value.
 *
 * Invariant: for a given key, a node's stored entry only ever moves down this
 * order. That makes merging idempotent and commutative, which is what lets
 * broadcast de-duplicate itself (see store.ts).
 */

/** One stored write. `timestamp` is milliseconds since the Unix epoch on the origin's clock. */
export interface Entry {
  readonly key: string;
  readonly value: string;
  readonly timestamp: number;
  readonly origin: string;
}

/** Negative when `a` wins over `b` (is older), positive when `b` wins, 0 when identical. */
export function compareEntries(a: Entry, b: Entry): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}
