/**
 * Catch-up and cursors. When a link becomes a peer link, each side asks the
 * other for what changed in its feed since its cursor (everything, without a
 * usable one) and is sent it as a stream (outbound-stream.ts) ending with
 * `caught-up`, which moves the cursor. From then on `upTo`, on pings and on
 * the last batch of a forward, moves it further, but only from a link that
 * vouches for it: one that carried every change of the sender since it
 * answered the catch-up (PeerSession.claimsUpTo). Cursors go to the adapter as
 * `cursor` effects, to be saved once the entries before them are durable.
 */
import { type NodeContext } from './node-context.js';
import { type CatchUpStream, type OutboundStreams } from './outbound-stream.js';
import { type PeerLink } from './peer-table.js';
import { type CatchUpMessage, type CaughtUpMessage, type Cursor, type EntriesMessage } from './protocol.js';
import { batchChanges } from './sync.js';

/** A joining node logs the progress of a catch-up this often, in milliseconds. */
export const CATCH_UP_LOG_INTERVAL_MS = 1_000;

/** The catch-ups and cursors of one node; see the file header. */
export class CatchUp {
  readonly #ctx: NodeContext;
  readonly #streams: OutboundStreams;
  /** Where this node stands in each peer's change feed, by peer id. */
  readonly #cursors = new Map<string, Cursor>();

  constructor(ctx: NodeContext, streams: OutboundStreams, cursors: Readonly<Record<string, Cursor>>) {
    this.#ctx = ctx;
    this.#streams = streams;
    for (const [peerId, cursor] of Object.entries(cursors)) this.#cursors.set(peerId, cursor);
  }

  /** Where this node stands in each peer's change feed, by peer id (BbyNode.cursors). */
  cursors(): Record<string, Cursor> {
    return Object.fromEntries(this.#cursors);
  }

  /** A new peer link: ask for what changed since this node's cursor into the peer's feed (everything without one). */
  ask(link: PeerLink): void {
    this.#ctx.send(link.id, { type: 'catch-up', since: this.#cursors.get(link.state.peerId) ?? null });
  }

  /** The peer asks for its catch-up: a new stream, from its cursor when it is one of this feed's. */
  answer(link: PeerLink, message: CatchUpMessage): void {
    const store = this.#ctx.store;
    const since = message.since;
    const usable = since !== null && since.epoch === this.#ctx.epoch && since.seq <= store.seq;
    if (!usable) this.#ctx.counters.fullTransfersSent++;
    // The iteration is live: changes made while it runs are sent too, by rescans of the store
    // (store.ts), and when it ends it says up to which sequence number every change went out.
    const batches = batchChanges(store.changesSince(usable ? since.seq : -Infinity), this.#ctx.batchLength);
    const expected = usable ? store.seq - since.seq : store.size;
    this.#streams.start(link, { kind: 'catch-up', batches, full: !usable, entries: 0, mayClaim: true, expected });
  }

  /** This node's catch-up to the peer went out whole (`seq`: up to where every change did): `caught-up` ends it. */
  sent(link: PeerLink, stream: CatchUpStream, seq: number): void {
    this.#ctx.send(link.id, { type: 'caught-up', epoch: this.#ctx.epoch, seq, full: stream.full, entries: stream.entries });
    // From here on this link may vouch for this node's changes, if they all go out on it: it
    // is the peer's fan-out link now, and loses the right when the set of links to the peer
    // changes (the fan-out link may change, and what went out on a lost link may be lost),
    // also while the catch-up was going out.
    link.state.session.claimsUpTo = stream.mayClaim && this.#ctx.table.peerLinks().get(link.state.peerId) === link;
  }

  /** A batch of the peer's catch-up to this node arrived (it carries `expected`): counted for progress. */
  received(link: PeerLink, message: EntriesMessage): void {
    if (message.expected === undefined) return;
    const progress = (link.state.session.catchUpIn ??= { entries: 0, expected: null, done: false, loggedAtMs: this.#ctx.nowMs(), loggedEntries: 0 });
    progress.expected = message.expected;
    progress.entries += message.entries.length;
  }

  /** The peer's catch-up to this node ended: the cursor moves to where it says. */
  caughtUp(link: PeerLink, message: CaughtUpMessage): void {
    link.state.session.caughtUp = true;
    this.#endProgress(link, message.entries);
    this.#ctx.counters.catchUpEntriesReceived += message.entries;
    this.#moveCursor(link.state.peerId, { epoch: message.epoch, seq: message.seq });
    // Every change here now came from this peer or was sent to it (this node answered the
    // peer's catch-up request first): say so at once, so a quick restart resends nothing.
    if (link.state.session.claimsUpTo) this.#ctx.send(link.id, { type: 'ping', upTo: this.#ctx.store.seq });
  }

  /** Moves this node's cursor into the peer's feed to `upTo`, once the link's catch-up is done. */
  advanceCursor(link: PeerLink, upTo: number | undefined): void {
    const cursor = this.#cursors.get(link.state.peerId);
    if (link.state.session.caughtUp && upTo !== undefined && cursor !== undefined && upTo > cursor.seq) {
      this.#moveCursor(link.state.peerId, { epoch: cursor.epoch, seq: upTo });
    }
  }

  /** No link to this peer vouches with `upTo` any more (its links changed); see PeerSession.claimsUpTo. */
  withdrawClaims(peerId: string): void {
    for (const link of this.#ctx.table.peerLinkList()) {
      if (link.state.peerId !== peerId) continue;
      const session = link.state.session;
      session.claimsUpTo = false;
      // A catch-up still going out on it may not grant the claim when it ends either.
      if (session.stream?.kind === 'catch-up') session.stream.mayClaim = false;
    }
  }

  /** About once a second, one line per catch-up under way to this node: entries received of expected, and the rate. */
  logProgress(nowMs: number): void {
    for (const link of this.#ctx.table.peerLinkList()) {
      const progress = link.state.session.catchUpIn;
      if (progress === null || progress.done || nowMs - progress.loggedAtMs < CATCH_UP_LOG_INTERVAL_MS) continue;
      const rate = ((progress.entries - progress.loggedEntries) * 1000) / (nowMs - progress.loggedAtMs);
      progress.loggedAtMs = nowMs;
      progress.loggedEntries = progress.entries;
      const of = progress.expected === null ? '' : ` of about ${progress.expected} (${Math.min(100, Math.floor((100 * progress.entries) / Math.max(1, progress.expected)))} %)`;
      this.#ctx.log('info', 'catch-up-progress', `catching up from ${link.state.peerId}: ${progress.entries} entries received${of}, ${Math.round(rate)}/s`, { peer: link.state.peerId, entries: progress.entries, expected: progress.expected, perSecond: Math.round(rate) });
    }
  }

  #moveCursor(peerId: string, cursor: Cursor): void {
    this.#cursors.set(peerId, cursor);
    this.#ctx.batch.cursors.push({ type: 'cursor', peerId, cursor });
  }

  /** A catch-up to this node ended; said in the log when its progress was (it lasted more than a second). */
  #endProgress(link: PeerLink, entries: number): void {
    const progress = (link.state.session.catchUpIn ??= { entries, expected: entries, done: true, loggedAtMs: this.#ctx.nowMs(), loggedEntries: 0 });
    const logged = !progress.done && progress.loggedEntries > 0;
    progress.done = true;
    progress.entries = Math.max(progress.entries, entries);
    if (logged) this.#ctx.log('info', 'caught-up', `caught up from ${link.state.peerId}: ${progress.entries} entries received`, { peer: link.state.peerId, entries: progress.entries });
  }
}
