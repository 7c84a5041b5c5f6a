/**
 * What the concerns of one node share (node.ts builds one per node and hands
 * it to each): the node's identity and settings, the two clocks, the store,
 * the peer table, the counters, and the batch of effects with the helpers
 * that fill it (send, reply, reject, log, close).
 *
 * Every effect of the node goes into `batch` here, in the order it is asked
 * for within its field; the adapter carries the fields out in READY_ORDER
 * (ready.ts).
 */
import { CLOSE_CODES } from './close-codes.js';
import { BbyError } from './errors.js';
import { type LogFields, type Ready, type SendEffect } from './ready.js';
import { frameLength, OUTBOUND_BUDGET_BYTES, PEER_OUTBOUND_LIMIT_BYTES } from './flow-control.js';
import { LogLimiter } from './log-limiter.js';
import { peerIdOf } from './link-state.js';
import { type Link, type LinkId, PeerTable } from './peer-table.js';
import { type Message, type RequestId } from './protocol.js';
import { type Store } from './store.js';
import { type Timing } from './timing.js';

/** A frame as the node queues it: it gets its `text` as the batch is taken (after `coalesceEntries` merged what it could). */
export type QueuedSend = Omit<SendEffect, 'text'>;

/** The batch the node fills as it handles events: a `Ready` whose messages have no text yet (`takeReady` encodes them). */
export type QueuedReady = { readonly [K in keyof Ready]: K extends 'messages' ? QueuedSend[] : Ready[K][number][] };

/** A batch with nothing in it yet. */
function emptyBatch(): QueuedReady {
  return { persist: [], peers: [], cursors: [], dials: [], messages: [], flow: [], closes: [], logs: [] };
}

/** The counters of `stats`, all zero. */
function newCounters() {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    writesAccepted: 0,
    writesRefused: 0,
    entriesApplied: 0,
    duplicatesDropped: 0,
    conflicts: 0,
    errors: 0,
    catchUpEntriesSent: 0,
    catchUpEntriesReceived: 0,
    fullTransfersSent: 0,
    antiEntropyRounds: 0,
    repairEntriesSent: 0,
    peersTimedOut: 0,
    peersLearned: 0,
    authFailures: 0,
    authTimeouts: 0,
    forbiddenMessages: 0,
    duplicateLinksClosed: 0,
    entriesFromFuture: 0,
    idleConnectionsClosed: 0,
    slowLinksClosed: 0,
    repairRequestsMerged: 0,
    writesRefusedStorage: 0,
    watchEventsDropped: 0,
  };
}

/** Counters since start, as `stats` shows them. */
export type Counters = ReturnType<typeof newCounters>;

/** How a node is set up, as its concerns read it (node.ts derives it from NodeOptions). */
export interface NodeSettings {
  readonly id: string;
  readonly epoch: string;
  /** This node's own listening address, announced to peers ('' when none). */
  readonly address: string;
  readonly timing: Timing;
  readonly peerExchange: boolean;
  /** Characters of entries per `entries` message. */
  readonly batchLength: number;
  /** The wall clock (entry timestamps, the clock-skew check). */
  readonly now: () => number;
  /** The monotonic clock (every timer). */
  readonly monotonic: () => number;
  readonly random: () => number;
  readonly store: Store;
  /** Forgets a closed link (BbyNode.closed): every concern that closes a link calls it through `closeLink`. */
  readonly closed: (link: LinkId, reason: string) => void;
}

/** The state and helpers every concern of a node shares; see the file header. */
export class NodeContext {
  readonly id: string;
  readonly epoch: string;
  readonly address: string;
  readonly timing: Timing;
  readonly peerExchange: boolean;
  readonly batchLength: number;
  readonly store: Store;
  readonly table = new PeerTable();
  readonly counters: Counters = newCounters();
  /** What the node asked for since the last take, each field oldest first (ready.ts says in which order the adapter carries them out). */
  batch: QueuedReady = emptyBatch();
  /** Why writes cannot be made durable now, or null while they can (BbyNode.storageFailed). */
  storageFailure: string | null = null;
  readonly #now: () => number;
  readonly #monotonic: () => number;
  readonly #random: () => number;
  readonly #closed: (link: LinkId, reason: string) => void;
  /** Lines caused from outside (refused handshakes, errors reported to this node), rate limited. */
  readonly #outsideLog = new LogLimiter();

  constructor(settings: NodeSettings) {
    this.id = settings.id;
    this.epoch = settings.epoch;
    this.address = settings.address;
    this.timing = settings.timing;
    this.peerExchange = settings.peerExchange;
    this.batchLength = settings.batchLength;
    this.store = settings.store;
    this.#now = settings.now;
    this.#monotonic = settings.monotonic;
    this.#random = settings.random;
    this.#closed = settings.closed;
  }

  /** The wall clock, in milliseconds since the epoch: entry timestamps and the clock-skew check only. */
  wallMs(): number {
    return this.#now();
  }

  /** The monotonic clock, in milliseconds: every timer. */
  nowMs(): number {
    return this.#monotonic();
  }

  /** A uniform random number in [0, 1), for retry jitter. */
  random(): number {
    return this.#random();
  }

  /** Queues a frame for a link, and counts it against the link's outbound budget (flow-control.ts). */
  send(link: LinkId, message: Message): void {
    this.counters.messagesSent++;
    const bytes = frameLength(message);
    const to = this.table.link(link);
    if (to !== undefined) {
      to.lastSentAtMs = this.nowMs();
      to.unsentBytes += bytes;
      if (to.unsentBytes > OUTBOUND_BUDGET_BYTES) {
        to.overBudgetSinceMs ??= this.nowMs();
        // A peer is never left unread (flow-control.ts): one far behind is let go, and catches up when it is back.
        if (to.state.kind === 'peer' && to.unsentBytes > PEER_OUTBOUND_LIMIT_BYTES) this.closeTooSlow(to, `more than ${PEER_OUTBOUND_LIMIT_BYTES} bytes waiting`);
      }
    }
    this.batch.messages.push({ type: 'send', link, message, bytes });
  }

  reply(link: LinkId, id: RequestId, result: unknown): void {
    this.send(link, { type: 'reply', id, result });
  }

  /** Answers with an error frame (and counts it). */
  reject(link: Link, id: RequestId | null, error: BbyError): void {
    this.counters.errors++;
    this.send(link.id, { type: 'error', id, code: error.code, message: error.message });
  }

  /** Why a write is refused while the disk fails (and counts it). */
  storageError(): BbyError {
    this.counters.writesRefusedStorage++;
    return new BbyError('STORAGE_FAILED', `the node cannot write to its data folder (${this.storageFailure}); nothing was written; it keeps answering reads and retries the disk every few seconds`);
  }

  /** Asks the adapter to close a link, which stays in the table until it reports it closed. */
  askClose(link: LinkId, code: number, reason: string): void {
    this.batch.closes.push({ type: 'close', link, code, reason });
  }

  /** Forgets a link at once, as if the adapter had reported it closed (BbyNode.closed); `why` is the reason for logs and `peers`. */
  forget(link: LinkId, why: string): void {
    this.#closed(link, why);
  }

  /** Asks the adapter to close a link and forgets it at once. */
  closeLink(link: LinkId, code: number, reason: string, why: string): void {
    this.askClose(link, code, reason);
    this.forget(link, why);
  }

  /** Closes a link that does not read what it is sent (flow-control.ts). */
  closeTooSlow(link: Link, why: string): void {
    this.counters.slowLinksClosed++;
    const peerId = peerIdOf(link.state);
    const who = peerId !== null ? `peer ${peerId}` : `a client${link.remote === null ? '' : ` at ${link.remote}`}`;
    this.logFromOutside(peerId ?? link.remote ?? link.id, 'link-too-slow', `closed the link to ${who}: it does not read what it is sent (${why}, ${link.unsentBytes} bytes waiting)`, { link: link.id, peer: peerId, unsentBytes: link.unsentBytes });
    this.closeLink(link.id, CLOSE_CODES.TOO_SLOW, 'too slow: not reading its answers', 'too slow');
  }

  /** Hands over the batch filled since the last take, and starts an empty one. */
  takeBatch(): QueuedReady {
    const batch = this.batch;
    this.batch = emptyBatch();
    return batch;
  }

  log(level: 'info' | 'warn', event: string, message: string, fields?: LogFields): void {
    this.batch.logs.push(fields === undefined ? { type: 'log', level, event, message } : { type: 'log', level, event, message, fields });
  }

  /** A warning caused from outside, at most once per source and period (log-limiter.ts). */
  logFromOutside(source: string, event: string, message: string, fields?: LogFields): void {
    const { log, suppressed } = this.#outsideLog.admit(source, this.nowMs());
    if (log) this.log('warn', event, suppressed > 0 ? `${message} [${suppressed} similar lines left out]` : message, suppressed > 0 ? { ...fields, suppressed } : fields);
  }
}
