/**
 * Broadcast: a write made here is stored, persisted and sent to every peer;
 * an entry from a peer that changes the store is passed on to the peers that
 * neither sent it nor are named in its `seen` list, which the message extends
 * with the peers it goes to. In a full mesh a write thus reaches each node
 * once, and an entry travels on only from a node whose store it changed (an
 * acknowledgement round, ack-rounds.ts, travels whole, once per round).
 * Entries stamped too far ahead of this node's clock are refused here.
 */
import { type Entry } from './entry.js';
import { type NodeContext } from './node-context.js';
import { type PeerLink } from './peer-table.js';
import { type EntriesMessage } from './protocol.js';
import { quoted } from './log-text.js';
import { batchEntries } from './sync.js';
import { type Watchers } from './watchers.js';

/** A forwarded write names at most this many nodes it was already sent to. */
export const MAX_SEEN = 64;

/** The broadcast of one node; see the file header. */
export class Broadcast {
  readonly #ctx: NodeContext;
  readonly #watchers: Watchers;
  /** Entries stamped further than this ahead of the wall clock are refused, in milliseconds. */
  readonly #maxClockSkewMs: number;

  constructor(ctx: NodeContext, watchers: Watchers, maxClockSkewMs: number) {
    this.#ctx = ctx;
    this.#watchers = watchers;
    this.#maxClockSkewMs = maxClockSkewMs;
  }

  /** `set` of a checked key and value, with an acknowledgement round id to attach to the broadcast, if any. */
  write(key: string, value: string, ack: string | undefined): boolean {
    const outcome = this.#storeOwn(key, value, Math.floor(this.#ctx.wallMs()));
    // A value already there travels again only for an acknowledgement round.
    const travelling = typeof outcome === 'object' ? outcome : outcome && ack !== undefined ? this.#ctx.store.get(key) : undefined;
    if (travelling !== undefined) this.#forward([travelling], null, [], ack);
    return outcome !== false;
  }

  /**
   * Write-once of a checked key and value: the new entry when it was stored
   * (persisted, not yet sent), true when the key already held this value,
   * false when it holds another.
   */
  #storeOwn(key: string, value: string, timestamp: number): Entry | boolean {
    const entry: Entry = { key, value, timestamp, origin: this.#ctx.id };
    const stored = this.#ctx.store.insert(entry);
    if (stored !== undefined) {
      if (stored === value) return true;
      this.#ctx.counters.writesRefused++;
      return false;
    }
    this.#ctx.counters.writesAccepted++;
    this.#ctx.batch.persist.push({ type: 'persist', entry, seq: this.#ctx.store.seq });
    if (this.#watchers.count > 0) this.#watchers.write(entry, null, false);
    return entry;
  }

  /** Many writes in one request (one timestamp for all): the new entries travel together, in as few messages as fit. */
  writeMany(entries: readonly { key: string; value: string }[]): boolean[] {
    const fresh: Entry[] = [];
    const timestamp = Math.floor(this.#ctx.wallMs());
    const results = entries.map(({ key, value }) => {
      const outcome = this.#storeOwn(key, value, timestamp);
      if (typeof outcome !== 'object') return outcome;
      fresh.push(outcome);
      return true;
    });
    if (fresh.length > 0) this.#forward(fresh, null, []);
    return results;
  }

  /** Entries from a peer: merged into the store, persisted and forwarded where they changed it (with `ack`: forwarded whole, once per round). */
  merge(link: PeerLink, entries: readonly Entry[], seen: readonly string[], ack?: string): void {
    const changed: Entry[] = [];
    const latestMs = this.#ctx.wallMs() + this.#maxClockSkewMs;
    let fromFuture: Entry | undefined;
    for (const entry of entries) {
      if (entry.timestamp > latestMs) {
        // A clock far ahead must not decide which write is the oldest: the entry is refused here (anti-entropy offers it again later).
        this.#ctx.counters.entriesFromFuture++;
        fromFuture ??= entry;
        continue;
      }
      const result = this.#ctx.store.merge(entry);
      if (result.conflict) {
        this.#ctx.counters.conflicts++;
        const winner = this.#ctx.store.get(entry.key)!;
        this.#ctx.log('info', 'conflict', `conflict on key ${quoted(entry.key)}: kept the oldest write (from ${winner.origin} at ${winner.timestamp})`, { key: entry.key, origin: winner.origin, timestamp: winner.timestamp });
        if (this.#watchers.count > 0) this.#watchers.write(winner, link.state.peerId, true);
      }
      if (result.duplicate) this.#ctx.counters.duplicatesDropped++;
      if (result.changed) {
        this.#ctx.counters.entriesApplied++;
        this.#ctx.batch.persist.push({ type: 'persist', entry, seq: this.#ctx.store.seq });
        changed.push(entry);
        if (this.#watchers.count > 0 && !result.conflict) this.#watchers.write(entry, link.state.peerId, false);
      }
    }
    // A live forward (catch-up and repair batches carry no `seen`): how old its newest write was on arrival.
    if (seen.length > 0 && changed.length > 0) {
      let newestMs = -Infinity;
      for (const entry of changed) if (entry.timestamp > newestMs) newestMs = entry.timestamp;
      link.state.session.lagMs = Math.max(0, this.#ctx.wallMs() - newestMs);
    }
    if (fromFuture !== undefined) {
      const aheadMs = fromFuture.timestamp - this.#ctx.wallMs();
      this.#ctx.logFromOutside(`future:${link.state.peerId}`, 'entries-from-future', `refused entries from peer ${link.state.peerId} stamped too far in the future (key ${quoted(fromFuture.key, 60)} from ${fromFuture.origin} is ${aheadMs} ms ahead of this node's clock; "maxClockSkewMs" is ${this.#maxClockSkewMs}): check the clocks of the mesh`, { peer: link.state.peerId, key: fromFuture.key, aheadMs });
    }
    // Only what changed this store travels on: an entry is forwarded at most once per node
    // (an acknowledgement round travels whole, once per round).
    if (ack !== undefined) this.#forward(entries.filter((entry) => entry.timestamp <= latestMs), link.state.peerId, seen, ack);
    else if (changed.length > 0) this.#forward(changed, link.state.peerId, seen);
  }

  /**
   * Sends entries to every peer that is neither their sender nor in `seen`
   * (nodes an earlier hop already sent them to), and names those peers in the
   * message's own `seen`. In a full mesh a write thus reaches each node once.
   */
  #forward(entries: readonly Entry[], fromPeerId: string | null, seen: readonly string[], ack?: string): void {
    const peers = this.#ctx.table.peerLinks();
    // A node alone (or whose peers are all down) has no one to tell: the common case of one node, at every set.
    if (peers.size === 0) return;
    const skip = new Set(seen);
    skip.add(this.#ctx.id);
    if (fromPeerId !== null) skip.add(fromPeerId);
    const targets = [...peers].filter(([peerId]) => !skip.has(peerId));
    if (targets.length === 0) return;
    const nextSeen = [...skip, ...targets.map(([peerId]) => peerId)].slice(0, MAX_SEEN);
    const batches = [...batchEntries(entries, this.#ctx.batchLength)];
    batches.forEach((batch, index) => {
      const message: EntriesMessage = { type: 'entries', entries: batch, seen: nextSeen, ...(ack === undefined ? {} : { ack }) };
      // Only the last batch moves the receivers' cursors: the earlier ones may still be lost with the link.
      const withUpTo: EntriesMessage = index === batches.length - 1 ? { ...message, upTo: this.#ctx.store.seq } : message;
      for (const [, link] of targets) this.#ctx.send(link.id, link.state.session.claimsUpTo ? withUpTo : message);
    });
  }
}
