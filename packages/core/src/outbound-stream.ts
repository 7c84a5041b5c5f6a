/**
 * The one stream a node sends a peer on a link: a catch-up (catch-up.ts) or
 * a repair (anti-entropy.ts), one at a time per link, both flow-controlled
 * the same way. A batch goes out only while less than STREAM_WINDOW_BATCHES
 * batches' worth waits unwritten on the link (flow-control.ts), so that a
 * node holding millions of keys never queues them all at once; the
 * adapter's `written` events pump the next ones. On the wire both are
 * `entries` messages (a catch-up's say how many entries it expects), and a
 * catch-up ends with `caught-up`.
 */
import { type Entry } from './entry.js';
import { STREAM_WINDOW_BATCHES } from './flow-control.js';
import { type NodeContext } from './node-context.js';
import { type PeerLink } from './peer-table.js';
import { type EntriesMessage } from './protocol.js';

/** What every stream keeps, for progress (`status`). */
interface StreamProgress {
  /** Entries sent so far. */
  entries: number;
  /** Entries the stream had to send when it began (a live catch-up may send more). */
  readonly expected: number;
}

/** A catch-up: the changes since the peer's cursor, or the whole store. */
export interface CatchUpStream extends StreamProgress {
  readonly kind: 'catch-up';
  /** The batches still to send; the iteration ends with the sequence number up to which every change went out. */
  readonly batches: Iterator<Entry[], number>;
  /** True when it is the whole store (the peer's cursor was unusable). */
  readonly full: boolean;
  /** False once the set of links to the peer changed during the catch-up: the link may then not vouch with `upTo`. */
  mayClaim: boolean;
}

/** A repair: this node's entries of the buckets that differ (anti-entropy). */
export interface RepairStream extends StreamProgress {
  readonly kind: 'repair';
  readonly batches: Iterator<Entry[], void>;
  /** The buckets it sends (a flag per bucket), to go again if a catch-up cuts it short. */
  readonly buckets: readonly boolean[];
}

/** A stream being sent batch by batch, a few batches ahead of the socket. */
export type OutboundStream = CatchUpStream | RepairStream;

/** What happens as streams end (node.ts wires them to catch-up.ts and anti-entropy.ts). */
export interface StreamHooks {
  /** A catch-up went out whole: every change up to `seq` with it. */
  caughtUp(link: PeerLink, stream: CatchUpStream, seq: number): void;
  /** A stream of either kind ended (after `caughtUp` for a catch-up): the link may start the next. */
  ended(link: PeerLink): void;
}

/** Sends the streams of one node's links; see the file header. */
export class OutboundStreams {
  readonly #ctx: NodeContext;
  readonly #hooks: StreamHooks;

  constructor(ctx: NodeContext, hooks: StreamHooks) {
    this.#ctx = ctx;
    this.#hooks = hooks;
  }

  /** Starts a stream on a link, in place of the one under way if any, and sends its first batches. */
  start(link: PeerLink, stream: OutboundStream): void {
    link.state.session.stream = stream;
    this.pump(link);
  }

  /** Sends a link's stream while its window has room; when the stream ends, says so (a hook may start the next). */
  pump(link: PeerLink): void {
    const session = link.state.session;
    while (session.stream !== null && link.unsentBytes < STREAM_WINDOW_BATCHES * this.#ctx.batchLength) {
      const stream = session.stream;
      if (stream.kind === 'catch-up') {
        const end = this.#sendNext(link, stream, stream.batches);
        if (end === undefined) continue;
        session.stream = null;
        this.#hooks.caughtUp(link, stream, end.result);
      } else {
        if (this.#sendNext(link, stream, stream.batches) === undefined) continue;
        session.stream = null;
      }
      this.#hooks.ended(link);
    }
  }

  /** Sends the next batch of a stream (its `batches`); once it has none left, returns what the iteration returned. */
  #sendNext<Result>(link: PeerLink, stream: OutboundStream, batches: Iterator<Entry[], Result>): { readonly result: Result } | undefined {
    const next = batches.next();
    if (next.done === true) return { result: next.value };
    const entries = next.value;
    stream.entries += entries.length;
    const message: EntriesMessage = stream.kind === 'catch-up' ? { type: 'entries', entries, expected: stream.expected } : { type: 'entries', entries };
    if (stream.kind === 'catch-up') this.#ctx.counters.catchUpEntriesSent += entries.length;
    else this.#ctx.counters.repairEntriesSent += entries.length;
    this.#ctx.send(link.id, message);
    return undefined;
  }
}
