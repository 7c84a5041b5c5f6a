/**
 * Anti-entropy: repairing what a lost broadcast left out. Two peers compare
 * their stores' root digests; when they differ, the bucket digests; and then
 * exchange only the entries of the buckets that differ, each as a repair
 * stream (outbound-stream.ts). Cheap when nothing differs (one 16-digit
 * digest per peer and period), and a full transfer only when every bucket
 * differs. One round per pair and period, started by the node with the
 * smaller id, after a pause in writes.
 */
import { bucketOf, BUCKET_COUNT } from './digest.js';
import { type Entry } from './entry.js';
import { type NodeContext } from './node-context.js';
import { type OutboundStream, type OutboundStreams } from './outbound-stream.js';
import { type PeerLink } from './peer-table.js';
import { type BucketRequestMessage, type BucketsMessage, type DigestMessage } from './protocol.js';
import { batchEntries } from './sync.js';

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

/** A flag per bucket, set for the given bucket indexes. */
function bucketFlags(buckets: readonly number[]): boolean[] {
  const flags = new Array<boolean>(BUCKET_COUNT).fill(false);
  for (const bucket of buckets) flags[bucket] = true;
  return flags;
}

/** The anti-entropy rounds and repairs of one node; see the file header. */
export class AntiEntropy {
  readonly #ctx: NodeContext;
  readonly #streams: OutboundStreams;
  #nextRoundAtMs: number;
  /** The store's seq at the last tick, and when a tick last saw it move: a round waits for a pause in writes. */
  #seqAtLastTick = 0;
  #lastChangeAtMs = -Infinity;

  constructor(ctx: NodeContext, streams: OutboundStreams) {
    this.#ctx = ctx;
    this.#streams = streams;
    this.#nextRoundAtMs = ctx.nowMs() + ctx.timing.antiEntropyIntervalMs;
  }

  /** Starts the round when it is due and writes paused. */
  tick(nowMs: number): void {
    if (this.#ctx.store.seq !== this.#seqAtLastTick) {
      this.#seqAtLastTick = this.#ctx.store.seq;
      this.#lastChangeAtMs = nowMs;
    }
    if (nowMs >= this.#nextRoundAtMs && this.#quiet(nowMs)) {
      this.#nextRoundAtMs = nowMs + this.#ctx.timing.antiEntropyIntervalMs;
      this.#startRound(nowMs);
    }
  }

  /** The peer's root digest: this node answers with its bucket digests when they differ. */
  digest(link: PeerLink, message: DigestMessage): void {
    // During this node's catch-up to the peer the stores differ by design; the next round compares.
    if (link.state.session.stream?.kind === 'catch-up') return;
    if (message.root !== this.#ctx.store.digests.root()) this.#ctx.send(link.id, { type: 'buckets', digests: this.#ctx.store.digests.buckets() });
  }

  /** The peer's bucket digests: this node asks for the buckets that differ, and sends its own of them. */
  buckets(link: PeerLink, message: BucketsMessage): void {
    const buckets = differingBuckets(this.#ctx.store.digests.buckets(), message.digests);
    if (buckets.length === 0) return;
    // Ask first: the peer then answers with what it had, not with what this node is about to send it.
    this.#ctx.send(link.id, { type: 'bucket-request', buckets });
    this.#requestRepair(link, bucketFlags(buckets));
  }

  /** The peer asks for this node's entries of some buckets. */
  bucketRequest(link: PeerLink, message: BucketRequestMessage): void {
    this.#requestRepair(link, bucketFlags(message.buckets));
  }

  /** A catch-up takes the place of the stream under way: a repair it cuts short goes again afterwards. */
  cutShort(link: PeerLink, stream: OutboundStream): void {
    if (stream.kind === 'repair') this.#mergePendingRepair(link, stream.buckets);
  }

  /** A link's stream ended: the repair asked for meanwhile starts, if the last one is old enough. */
  next(link: PeerLink): void {
    const session = link.state.session;
    if (session.pendingRepair !== null && this.#mayRepair(link)) {
      const buckets = session.pendingRepair;
      session.pendingRepair = null;
      this.#startRepair(link, buckets);
    }
  }

  /** Starts the repairs asked for meanwhile, on links whose stream ended and whose last repair is old enough. */
  startPendingRepairs(): void {
    for (const link of this.#ctx.table.peerLinkList()) if (link.state.session.stream === null) this.next(link);
  }

  /**
   * Whether a due round may start: once the store has not changed for a
   * tenth of the period, or once the round is half a period late. Writes
   * still being forwarded make whole buckets differ, and a repair then sends
   * those buckets both ways (a burst of duplicates), so a round waits for a
   * pause in writes, but no longer than that: under steady writes it still
   * runs.
   */
  #quiet(nowMs: number): boolean {
    const interval = this.#ctx.timing.antiEntropyIntervalMs;
    return nowMs - this.#lastChangeAtMs >= interval / 10 || nowMs - this.#nextRoundAtMs >= interval / 2;
  }

  /** One round per pair and period: the node with the smaller id starts it; the repair goes both ways. */
  #startRound(nowMs: number): void {
    const root = this.#ctx.store.digests.root();
    for (const [peerId, link] of this.#ctx.table.peerLinks()) {
      // Not while a young link's catch-up is under way (it would compare stores about to change);
      // a link whose catch-up never ended (a lost message) is compared all the same.
      if (peerId < this.#ctx.id || (!link.state.session.caughtUp && nowMs - link.openedAtMs < this.#ctx.timing.antiEntropyIntervalMs)) continue;
      // Nor while this node is still sending the peer its catch-up: the repair would resend it whole.
      if (link.state.session.stream?.kind === 'catch-up') continue;
      this.#ctx.counters.antiEntropyRounds++;
      this.#ctx.send(link.id, { type: 'digest', root });
    }
  }

  /**
   * Sends a peer this node's entries of some buckets, as a stream: at most one
   * per link at a time, the buckets of requests that come meanwhile merged
   * into the next one, so that no number of requests queues more than one
   * pass over the store, and no more than one pass per half period starts.
   */
  #requestRepair(link: PeerLink, buckets: readonly boolean[]): void {
    if (link.state.session.stream === null && link.state.session.pendingRepair === null && this.#mayRepair(link)) {
      this.#startRepair(link, buckets);
      return;
    }
    this.#ctx.counters.repairRequestsMerged++;
    this.#mergePendingRepair(link, buckets);
  }

  /** Adds buckets to the repair a link will get next. */
  #mergePendingRepair(link: PeerLink, buckets: readonly boolean[]): void {
    const pending = (link.state.session.pendingRepair ??= new Array<boolean>(BUCKET_COUNT).fill(false));
    buckets.forEach((wanted, bucket) => {
      if (wanted) pending[bucket] = true;
    });
  }

  /**
   * A repair starts at most once per half anti-entropy period on a link: an
   * honest peer asks once per round, and a peer that asks without end gets
   * one pass over the store per half period, not one after the other.
   */
  #mayRepair(link: PeerLink): boolean {
    return this.#ctx.nowMs() - link.state.session.repairStartedAtMs >= this.#ctx.timing.antiEntropyIntervalMs / 2;
  }

  #startRepair(link: PeerLink, buckets: readonly boolean[]): void {
    link.state.session.repairStartedAtMs = this.#ctx.nowMs();
    const store = this.#ctx.store;
    const share = buckets.filter(Boolean).length / BUCKET_COUNT;
    this.#streams.start(link, { kind: 'repair', batches: batchEntries(store.entriesInBuckets(buckets), this.#ctx.batchLength), buckets, entries: 0, expected: Math.round(store.size * share) });
  }
}
