/**
 * Anti-entropy: repairing what a lost broadcast left out. Two peers compare
 * their stores' root digests; when they differ, the bucket digests; and then
 * exchange only the entries of the buckets that differ. Cheap when nothing
 * differs (one 16-digit digest per peer and period), and a full transfer only
 * when every bucket differs.
 */
import { bucketOf, BUCKET_COUNT } from './digest.js';
import { type Entry } from './entry.js';

/** Indexes of the buckets whose digests differ. */
export function differingBuckets(mine: readonly string[], theirs: readonly string[]): number[] {
  const differing: number[] = [];
  for (let index = 0; index < BUCKET_COUNT; index++) if (mine[index] !== theirs[index]) differing.push(index);
  return differing;
}

/** The entries whose keys fall in the given buckets. */
export function* entriesInBuckets(entries: Iterable<Entry>, buckets: readonly number[]): Generator<Entry> {
  const wanted = new Set(buckets);
  for (const entry of entries) if (wanted.has(bucketOf(entry.key))) yield entry;
}
