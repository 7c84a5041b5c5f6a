/**
 * The stream a node sends a peer on one link, batch by batch: a catch-up
 * (catch-up.ts) or a repair (anti-entropy.ts), one at a time per link. A
 * batch goes out only while less than STREAM_WINDOW_BATCHES batches' worth
 * waits unwritten on the link (flow-control.ts), so that a node holding
 * millions of keys never queues them all at once; the adapter's `written`
 * events pump the next ones.
 */
import { type Entry } from './entry.js';
import { STREAM_WINDOW_BATCHES } from './flow-control.js';
import { type NodeContext } from './node-context.js';
import { type PeerLink } from './peer-table.js';

/** A catch-up or a repair being sent batch by batch, a few batches ahead of the socket (flow-control.ts). */
export interface OutboundStream {
  readonly kind: 'catch-up' | 'repair';
  /** The batches still to send; a catch-up's iteration ends with the sequence number up to which every change went out. */
  readonly batches: Iterator<Entry[], number | void>;
  /** For a catch-up: true when it is the whole store (the peer's cursor was unusable). */
  readonly full: boolean;
  /** For a repair: the buckets it sends (a flag per bucket), to go again if a catch-up cuts it short. */
  readonly buckets: readonly boolean[] | null;
  /** Entries sent so far. */
  entries: number;
  /** False once the set of links to the peer changed during the catch-up: the link may then not vouch with `upTo`. */
  mayClaim: boolean;
  /** For progress: entries the stream had to send when it began (a live catch-up may send more). */
  readonly expected: number;
}

/** What happens when a stream has sent its last batch: `result` is what its iteration returned. */
export type StreamEnded = (link: PeerLink, stream: OutboundStream, result: number | void) => void;

/** Sends the streams of one node's links; see the file header. */
export class OutboundStreams {
  readonly #ctx: NodeContext;
  readonly #ended: StreamEnded;

  constructor(ctx: NodeContext, ended: StreamEnded) {
    this.#ctx = ctx;
    this.#ended = ended;
  }

  /** Starts a stream on a link, in place of the one under way if any, and sends its first batches. */
  start(link: PeerLink, stream: OutboundStream): void {
    link.stream = stream;
    this.pump(link);
  }

  /** Sends a link's stream while its window has room; when the stream ends, says so (the `ended` hook may start the next). */
  pump(link: PeerLink): void {
    while (link.stream !== null && link.unsentBytes < STREAM_WINDOW_BATCHES * this.#ctx.batchLength) {
      const stream = link.stream;
      const next = stream.batches.next();
      if (next.done !== true) {
        stream.entries += next.value.length;
        if (stream.kind === 'catch-up') this.#ctx.counters.catchUpEntriesSent += next.value.length;
        else this.#ctx.counters.repairEntriesSent += next.value.length;
        this.#ctx.send(link.id, stream.kind === 'catch-up' ? { type: 'entries', entries: next.value, expected: stream.expected } : { type: 'entries', entries: next.value });
        continue;
      }
      link.stream = null;
      this.#ended(link, stream, next.value);
    }
  }
}
