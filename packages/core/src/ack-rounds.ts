/**
 * Acknowledgement rounds: a client's `set` with `acks` waits until that many
 * nodes hold the write (or `"all"` the nodes heard of), or until its timeout.
 * The write travels with a round id; every node passes it on the first time
 * it sees the round (changed or not, so that nodes that had it answer too)
 * and answers `ack` along the way back, which each hop relays to the link the
 * round came from.
 */
import { compareEntries, type Entry } from './entry.js';
import { type Broadcast } from './broadcast.js';
import { type NodeContext } from './node-context.js';
import { type Link, type LinkId, type PeerLink } from './peer-table.js';
import { type AckMessage, DEFAULT_ACK_TIMEOUT_MS, type Request, type RequestId } from './protocol.js';

/** A node remembers the way back for this many acknowledgement rounds (oldest forgotten first). */
export const MAX_ACK_ROUTES = 4096;

/** A node remembers at most this many node ids for `acks: "all"`. */
export const MAX_KNOWN_NODES = 1024;

/** A `set` waiting for acknowledgements from other nodes. */
interface PendingAck {
  readonly link: LinkId;
  readonly requestId: RequestId;
  readonly entry: Entry;
  readonly wanted: number | 'all';
  readonly deadlineMs: number;
  readonly ackers: Set<string>;
  /** A node that holds another (older) entry for the key: the write lost. */
  refusedBy: string | null;
}

/** The acknowledgement rounds of one node; see the file header. */
export class AckRounds {
  readonly #ctx: NodeContext;
  readonly #broadcast: Broadcast;
  /** Rounds of this node's clients, by round id. */
  readonly #pending = new Map<string, PendingAck>();
  /** Acknowledgement round id to the link it came from, to relay acks back. */
  readonly #routes = new Map<string, LinkId>();
  /** Every node id heard of (peers, origins, seen lists, ackers): what `acks: "all"` waits for. */
  readonly #knownNodes = new Set<string>();
  #rounds = 0;

  constructor(ctx: NodeContext, broadcast: Broadcast) {
    this.#ctx = ctx;
    this.#broadcast = broadcast;
  }

  /** A `set` with `acks` whose time is up is answered with the count it reached. */
  expire(nowMs: number): void {
    for (const [ack, pending] of this.#pending) {
      if (nowMs < pending.deadlineMs) continue;
      this.#pending.delete(ack);
      const have = pending.ackers.size + 1;
      const message = `the write is stored on ${have} of ${this.#wanted(pending)} nodes after the timeout; it keeps spreading to the others`;
      this.#ctx.send(pending.link, { type: 'error', id: pending.requestId, code: 'ACK_TIMEOUT', message, acks: have });
    }
  }

  /**
   * An acknowledgement round: merge as usual, then, the first time this round
   * is seen, pass the entries on (changed or not, so that nodes that already
   * had them answer too) and answer along the way back.
   */
  merge(link: PeerLink, entries: readonly Entry[], seen: readonly string[], ack: string): void {
    const firstTime = !this.#routes.has(ack) && !this.#pending.has(ack);
    this.#broadcast.merge(link, entries, seen, firstTime ? ack : undefined);
    if (!firstTime) return;
    this.#routes.set(ack, link.id);
    if (this.#routes.size > MAX_ACK_ROUTES) this.#routes.delete(this.#routes.keys().next().value!);
    const ok = entries.every((entry) => {
      const stored = this.#ctx.store.get(entry.key);
      return stored !== undefined && compareEntries(stored, entry) === 0;
    });
    this.#ctx.send(link.id, { type: 'ack', ack, node: this.#ctx.id, ok });
  }

  /** A client's `set` with `acks`: written, broadcast with a round id, and answered once enough nodes hold it (or it lost). */
  start(link: Link, request: Extract<Request, { type: 'set' }>): void {
    const ack = `${this.#ctx.epoch}.${++this.#rounds}`;
    if (!this.#broadcast.write(request.key, request.value, ack)) return this.#ctx.reply(link.id, request.id, false);
    const pending: PendingAck = {
      link: link.id,
      requestId: request.id,
      entry: this.#ctx.store.get(request.key)!,
      wanted: request.acks!,
      deadlineMs: this.#ctx.nowMs() + (request.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS),
      ackers: new Set(),
      refusedBy: null,
    };
    this.#pending.set(ack, pending);
    this.#settle(ack, pending);
  }

  #wanted(pending: PendingAck): number {
    return pending.wanted === 'all' ? this.#knownNodes.size + 1 : pending.wanted;
  }

  /** Answers a pending `set` once enough nodes hold the write, or once it lost to an older write. */
  #settle(ack: string, pending: PendingAck): void {
    const stored = this.#ctx.store.get(pending.entry.key);
    const lost = pending.refusedBy !== null || stored === undefined || compareEntries(stored, pending.entry) !== 0;
    const have = pending.ackers.size + 1;
    if (!lost && have < this.#wanted(pending)) return;
    this.#pending.delete(ack);
    this.#ctx.send(pending.link, { type: 'reply', id: pending.requestId, result: !lost, acks: have });
  }

  /** Remembers a node id heard of, for `acks: "all"`. */
  know(nodeId: string): void {
    if (nodeId !== this.#ctx.id && this.#knownNodes.size < MAX_KNOWN_NODES) this.#knownNodes.add(nodeId);
  }

  /** An `ack` from a peer: counted for a round of this node, or relayed back the way the round came. */
  receive(message: AckMessage): void {
    this.know(message.node);
    const pending = this.#pending.get(message.ack);
    if (pending !== undefined) {
      if (message.ok) pending.ackers.add(message.node);
      else pending.refusedBy ??= message.node;
      this.#settle(message.ack, pending);
      return;
    }
    const route = this.#routes.get(message.ack);
    if (route !== undefined && this.#ctx.table.link(route) !== undefined) this.#ctx.send(route, message);
  }
}
