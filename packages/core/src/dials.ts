/**
 * Dial targets: the addresses a node keeps connected to (configured, added by
 * a client, learnt from peers' peer lists), when each is dialed and
 * redialed (backoff.ts), when one is given up (another protocol version, a
 * learnt address that keeps failing), and the `add-peer` and `remove-peer`
 * requests that wait for a dial's outcome. The targets themselves are kept in
 * the peer table (peer-table.ts).
 */
import { parseAddress } from './address.js';
import { retryDelayMs } from './backoff.js';
import { CLOSE_CODES } from './close-codes.js';
import { BbyError } from './errors.js';
import { type LinkState } from './link-state.js';
import { type NodeContext } from './node-context.js';
import { addressesToLearn, LEARNED_MAX_FAILURES, LearningBudget, MAX_LEARNED_PEERS, MAX_PEER_LIST } from './peer-exchange.js';
import { type DialTarget, isPeerLink, type Link, MAX_DIAL_TARGETS, type PeerLink, type TargetSource } from './peer-table.js';
import { type AddPeerResult, type RemovePeerResult, type RequestId } from './protocol.js';

/** How long a dial may wait for the socket and the welcome, in milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** The dial targets of one node; see the file header. */
export class Dials {
  readonly #ctx: NodeContext;
  /** Whether the mesh has a secret: a dial then waits for the acceptor's challenge. */
  readonly #authenticates: boolean;
  readonly #learning = new LearningBudget();
  /** add-peer requests waiting for their dial's outcome, by address. */
  readonly #addPeerWaiters = new Map<string, { link: string; id: RequestId }[]>();
  #nextPeerExchangeAtMs: number;

  constructor(ctx: NodeContext, authenticates: boolean) {
    this.#ctx = ctx;
    this.#authenticates = authenticates;
    this.#nextPeerExchangeAtMs = ctx.nowMs() + ctx.timing.peerExchangeIntervalMs;
  }

  /** Every peer exchange period, the peer list to every peer. */
  tickPeerExchange(nowMs: number): void {
    if (!this.#ctx.peerExchange || nowMs < this.#nextPeerExchangeAtMs) return;
    this.#nextPeerExchangeAtMs = nowMs + this.#ctx.timing.peerExchangeIntervalMs;
    for (const link of this.#ctx.table.peerLinks().values()) this.sendPeerList(link);
  }

  /** Writes are durable again (BbyNode.storageRecovered): every target is dialed now. */
  redialAll(): void {
    for (const target of this.#ctx.table.dueTargets(Infinity)) target.nextDialAtMs = this.#ctx.nowMs();
    this.dialDue();
  }

  /** A client's add-peer (BbyNode.addPeer): dials the address, at once if it was halted. */
  addPeer(text: string): string {
    const address = this.add(text, 'added');
    const target = this.#ctx.table.target(address);
    if (target !== undefined && target.halted !== null && target.link === null) this.#resume(target);
    return address;
  }

  /** Dials a target now (a client asked for it); a halted one (halt) is dialed again from scratch: whatever made it fail may be fixed. */
  #resume(target: DialTarget): void {
    if (target.halted !== null) {
      target.halted = null;
      target.failures = 0;
      target.failureLogged = false;
    }
    target.nextDialAtMs = this.#ctx.nowMs();
    this.dialDue();
  }

  /**
   * Stops dialing `target` until a client adds it again: `why` (the node there
   * speaks another protocol version) is not fixed by redialing. Answers the
   * `add-peer`s waiting for it with `retrying: false`. A learnt address is
   * forgotten instead (peer-exchange.ts).
   */
  halt(target: DialTarget, why: string): void {
    if (target.source === 'learned') {
      // Not asked for by anyone: forgotten (not learnt again for FORGOTTEN_FOR_MS) rather than kept in a learnt slot for ever.
      this.#ctx.table.removeTarget(target.address);
      this.#learning.forgot(target.address, this.#ctx.nowMs());
      this.#ctx.log('info', 'peer-forgotten', `forgot learnt peer ${target.address}: ${why}`, { address: target.address, reason: why });
      return;
    }
    target.halted = why;
    target.lastError = why;
    this.#ctx.log('warn', 'peer-halted', `stopped dialing peer ${target.address}: ${why}; add it again (add-peer ${target.address}) once it is fixed`, { address: target.address, reason: why });
    this.answerAddPeer(target.address, { address: target.address, connected: false, id: target.peerId, error: why, retrying: false });
  }

  /** Adds a dial target (its normalized address is returned) and dials it when due; throws BAD_ADDRESS or TOO_MANY_PEERS. */
  add(text: string, source: TargetSource): string {
    const { address } = parseAddress(text);
    if (this.#ctx.table.target(address) === undefined && this.#ctx.table.targetTotal >= MAX_DIAL_TARGETS) {
      throw new BbyError('TOO_MANY_PEERS', `this node already dials ${MAX_DIAL_TARGETS} addresses, the most it keeps; remove one first (bby CONFIG remove-peer HOST:PORT)`);
    }
    if (this.#ctx.table.addTarget(address, source, this.#ctx.nowMs())) this.dialDue();
    return address;
  }

  /** Stops dialing an address and forgets it (BbyNode.removePeer). */
  remove(text: string): boolean {
    const { address } = parseAddress(text);
    const target = this.#ctx.table.target(address);
    if (target === undefined) return false;
    this.#ctx.table.removeTarget(address);
    if (target.link !== null) {
      this.#ctx.closeLink(target.link, 1000, 'peer removed', 'removed by a client');
    }
    this.answerAddPeer(address, { address, connected: false, id: target.peerId, error: 'removed by a client', retrying: false });
    if (target.source !== 'learned') this.#ctx.batch.peers.push({ type: 'peer-removed', address });
    this.#ctx.log('info', 'peer-removed', `removed peer ${address}${target.source === 'config' ? ' (it is in the config file: it comes back at the next start unless removed there)' : ''}`, { address });
    return true;
  }

  /** A dial or handshake that never ends would keep its target from being dialed again. */
  abandonStalled(nowMs: number): void {
    for (const link of this.#ctx.table.stalledDials(nowMs - HANDSHAKE_TIMEOUT_MS)) {
      this.#ctx.closeLink(link.id, CLOSE_CODES.HANDSHAKE_TIMEOUT, 'no welcome within the handshake timeout', `no answer to hello within ${HANDSHAKE_TIMEOUT_MS} ms`);
    }
  }

  /** Tells a peer the addresses of this node's other peers (peer exchange). */
  sendPeerList(link: PeerLink): void {
    const recipient = link.state.address;
    const addresses = [...this.#ctx.table.peerLinks().values()]
      .map((peer) => peer.state.address)
      .filter((address): address is string => address !== null && address !== recipient)
      .slice(0, MAX_PEER_LIST);
    if (addresses.length > 0) this.#ctx.send(link.id, { type: 'peer-list', addresses });
  }

  /** Dials addresses a peer's `peer-list` names, within the budgets of peer-exchange.ts. */
  learnPeers(fromPeerId: string, addresses: readonly string[]): void {
    if (!this.#ctx.peerExchange) return;
    const nowMs = this.#ctx.nowMs();
    const room = Math.min(MAX_LEARNED_PEERS - this.#ctx.table.targetCount('learned'), MAX_DIAL_TARGETS - this.#ctx.table.targetTotal, this.#learning.room(nowMs));
    const isKnown = (address: string) =>
      address === this.#ctx.address || this.#ctx.table.target(address) !== undefined || this.#ctx.table.hasPeerAt(address) || this.#learning.wasForgotten(address, nowMs);
    for (const address of addressesToLearn(addresses, isKnown, room)) {
      this.#ctx.counters.peersLearned++;
      this.#learning.learnt(nowMs);
      this.#ctx.log('info', 'peer-learnt', `learnt peer ${address} from ${fromPeerId}`, { address, from: fromPeerId });
      this.add(address, 'learned');
    }
  }

  /** Dials every target whose time has come. */
  dialDue(): void {
    // A node that cannot write leaves its peers until it can (storageFailed).
    if (this.#ctx.storageFailure !== null) return;
    for (const target of this.#ctx.table.dueTargets(this.#ctx.nowMs())) {
      // Waiting for the challenge from the start: it may come before the adapter reports the link open.
      const state: LinkState = this.#authenticates ? { kind: 'awaiting-challenge' } : { kind: 'pending', credential: { role: 'none' } };
      const link = this.#ctx.table.open('outbound', state, this.#ctx.nowMs());
      target.link = link.id;
      this.#ctx.batch.dials.push({ type: 'dial', link: link.id, address: target.address });
    }
  }

  /** The normalized address of a request, or undefined once it was refused with BAD_ADDRESS. */
  #requestAddress(link: Link, id: RequestId, text: string): string | undefined {
    try {
      return parseAddress(text).address;
    } catch (error) {
      if (!(error instanceof BbyError)) throw error;
      this.#ctx.reject(link, id, error);
      return undefined;
    }
  }

  /** A client's `add-peer`: answered at once when connected, else once the dial succeeds or fails. */
  addPeerRequest(link: Link, id: RequestId, text: string): void {
    const address = this.#requestAddress(link, id, text);
    if (address === undefined) return;
    const existing = this.#ctx.table.target(address);
    if (existing?.source === 'learned') {
      // Asked for by name now: keep it like any added peer (never forgotten, kept across restarts).
      existing.source = 'added';
      this.#ctx.batch.peers.push({ type: 'peer-added', address });
    }
    if (existing === undefined && this.#ctx.table.targetTotal >= MAX_DIAL_TARGETS) {
      return this.#ctx.reject(link, id, new BbyError('TOO_MANY_PEERS', `this node already dials ${MAX_DIAL_TARGETS} addresses, the most it keeps; remove one first (bby CONFIG remove-peer HOST:PORT)`));
    }
    // Connected already, through its link or one the peer dialed (one link per pair): nothing to wait for.
    const existingLink = existing?.link == null ? undefined : this.#ctx.table.link(existing.link);
    const connected = existingLink !== undefined && isPeerLink(existingLink) ? existingLink : (this.#ctx.table.peerAt(address) ?? (existing?.peerId == null ? undefined : this.#ctx.table.peerLink(existing.peerId)));
    if (existing === undefined) {
      this.#ctx.batch.peers.push({ type: 'peer-added', address });
      this.add(address, 'added');
      this.#ctx.log('info', 'peer-added', `added peer ${address} at a client's request`, { address });
    }
    if (connected !== undefined) {
      const target = this.#ctx.table.target(address);
      if (target !== undefined) target.peerId ??= connected.state.peerId;
      return this.#ctx.reply(link.id, id, { address, connected: true, id: connected.state.peerId, retrying: false } satisfies AddPeerResult);
    }

    const waiters = this.#addPeerWaiters.get(address) ?? [];
    waiters.push({ link: link.id, id });
    this.#addPeerWaiters.set(address, waiters);
    if (existing !== undefined && existing.link === null) {
      // Asked explicitly: dial now rather than at the end of the backoff, halted (another protocol version) or not.
      this.#resume(existing);
    }
  }

  /** A client's `remove-peer`. */
  removePeerRequest(link: Link, id: RequestId, text: string): void {
    const address = this.#requestAddress(link, id, text);
    if (address === undefined) return;
    const fromConfig = this.#ctx.table.target(address)?.source === 'config';
    const removed = this.remove(address);
    const note = fromConfig ? 'it is in the config file: it comes back at the next start unless removed there' : undefined;
    this.#ctx.reply(link.id, id, { address, removed, ...(note === undefined ? {} : { note }) } satisfies RemovePeerResult);
  }

  /** Answers the `add-peer`s waiting for an address. */
  answerAddPeer(address: string, result: AddPeerResult): void {
    const waiters = this.#addPeerWaiters.get(address);
    if (waiters === undefined) return;
    this.#addPeerWaiters.delete(address);
    for (const waiter of waiters) if (this.#ctx.table.link(waiter.link) !== undefined) this.#ctx.reply(waiter.link, waiter.id, result);
  }

  /** A link closed (already out of the table): its target, if any, is dialed again after a backoff, or given up. */
  linkClosed(link: Link, reason: string): void {
    const target = this.#ctx.table.targetOfLink(link.id);
    if (target === undefined) return;
    target.link = null;
    // Halted (halt): answered and logged already, and not dialed again.
    if (target.halted !== null) return;
    if (target.peerId !== null && this.#ctx.table.peerLink(target.peerId) !== undefined) {
      // The node is connected through another link (one link per pair): nothing failed. Dialed again once that link is gone.
      target.nextDialAtMs = this.#ctx.nowMs() + retryDelayMs(1, this.#ctx.random());
      return;
    }
    target.failures = link.state.kind === 'peer' ? 1 : target.failures + 1;
    target.lastError = reason;
    target.nextDialAtMs = this.#ctx.nowMs() + retryDelayMs(target.failures, this.#ctx.random());
    if (target.source === 'learned' && target.failures >= LEARNED_MAX_FAILURES) {
      // A learnt address may be stale: stop dialing it rather than forever.
      this.#ctx.table.removeTarget(target.address);
      this.#learning.forgot(target.address, this.#ctx.nowMs());
      this.#ctx.log('info', 'peer-forgotten', `forgot learnt peer ${target.address} after ${target.failures} failed dials (${reason})`, { address: target.address, failures: target.failures, reason });
      return;
    }
    if (link.state.kind !== 'peer' && !target.failureLogged) {
      target.failureLogged = true;
      this.#ctx.log('warn', 'peer-unreachable', `cannot reach peer ${target.address} (${reason}); retrying in the background`, { address: target.address, reason });
    }
    this.answerAddPeer(target.address, { address: target.address, connected: false, id: target.peerId, error: reason, retrying: true });
  }

  /** A dial reached its node (`peerId`): its failures are forgotten and its add-peers answered. */
  reached(target: DialTarget, peerId: string): void {
    target.failures = 0;
    target.lastError = null;
    target.failureLogged = false;
    this.answerAddPeer(target.address, { address: target.address, connected: true, id: peerId, retrying: false });
  }
}
