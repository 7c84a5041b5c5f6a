/**
 * The peer table: the addresses this node should stay connected to (dial
 * targets) and the live links, inbound and outbound. Where a link stands
 * (authenticating, pending, client, peer, refused) is its `state`, which only
 * link-state.ts moves.
 *
 * Two nodes are joined by one link at most: when each dials the other, node.ts
 * keeps the dial of the smaller id and closes the other, on both sides.
 */
import { initialLinkState, isClientState, isPendingState, type LinkState, type PeerState } from './link-state.js';
import { type PeerInfo } from './protocol.js';

/** `peers` keeps showing at most this many lost inbound peers as down. */
export const MAX_LOST_PEERS = 64;

/** A node keeps at most this many dial targets (configured, added and learnt together): each is dialed until it answers. */
export const MAX_DIAL_TARGETS = 256;

/** A `peers` answer lists at most this many rows (and says how many it left out), so that it always fits a frame. */
export const MAX_PEERS_LISTED = 512;

/** Identifies one connection; allocated by the core. */
export type LinkId = string;

/** One connection. */
export interface Link {
  readonly id: LinkId;
  readonly direction: 'inbound' | 'outbound';
  /** Where an inbound connection comes from (an IP address, as the adapter saw it), for logs; null when unknown. */
  readonly remote: string | null;
  /** Where it stands: authenticating, pending, client, peer or refused (link-state.ts, which alone moves it). */
  readonly state: LinkState;
  /** When the link was registered, in the clock's milliseconds. */
  readonly openedAtMs: number;
  /** When a message last arrived on it (heartbeats), in the clock's milliseconds. */
  lastHeardAtMs: number;
  /** When a message was last sent on it, in the clock's milliseconds. */
  lastSentAtMs: number;
  /** Text of the frames sent on this link not yet reported written by the adapter, in bytes (estimated; flow-control.ts). */
  unsentBytes: number;
  /** Since when `unsentBytes` is over the budget, in the clock's milliseconds; null while under it. */
  overBudgetSinceMs: number | null;
  /** Frames of a client over its budget, not read yet, oldest first. */
  readonly held: { readonly text: string; readonly byteLength: number | undefined }[];
  heldBytes: number;
  /** True while the adapter was asked to stop reading this link. */
  paused: boolean;
}

/** Where a dial target comes from: the config, a client's add-peer, or a peer's peer list. */
export type TargetSource = 'config' | 'added' | 'learned';

/** An address this node keeps dialing until connected. */
export interface DialTarget {
  readonly address: string;
  /** Where it comes from; a learnt address becomes `added` when a client asks for it. */
  source: TargetSource;
  /** The link of the current attempt or connection, if any. */
  link: LinkId | null;
  /** Id of the node last seen at this address. */
  peerId: string | null;
  /** Consecutive failed dials since the last success. */
  failures: number;
  /** When the next dial may start, in the clock's milliseconds. */
  nextDialAtMs: number;
  lastError: string | null;
  /** True once a failed dial was logged; reset by a successful handshake. */
  failureLogged: boolean;
  /**
   * Why this node stopped dialing the address for good (the node there speaks
   * another protocol version: redialing cannot help), or null while it dials.
   * Cleared only when a client adds the address again (`add-peer`).
   */
  halted: string | null;
}

/** A link whose handshake is done: its state says which node it leads to. */
export type PeerLink = Link & { readonly state: PeerState };

/** Whether a link is a peer link. */
export function isPeerLink(link: Link): link is PeerLink {
  return link.state.kind === 'peer';
}

/** Links and dial targets of one node. */
export class PeerTable {
  readonly #links = new Map<LinkId, Link>();
  readonly #targets = new Map<string, DialTarget>();
  /** Inbound peers whose link was lost, by id, for `peers`. */
  readonly #lost = new Map<string, PeerInfo>();
  #nextLink = 1;

  /** Registers a new link in its first state (link-state.ts INITIAL_STATES) and returns it. */
  open(direction: Link['direction'], state: LinkState, nowMs: number, remote: string | null = null): Link {
    const id = `${direction === 'inbound' ? 'in' : 'out'}-${this.#nextLink++}`;
    const link: Link = {
      id,
      direction,
      remote,
      state: initialLinkState(id, direction, state),
      openedAtMs: nowMs,
      lastHeardAtMs: nowMs,
      lastSentAtMs: nowMs,
      unsentBytes: 0,
      overBudgetSinceMs: null,
      held: [],
      heldBytes: 0,
      paused: false,
    };
    this.#links.set(link.id, link);
    return link;
  }

  /** The link with this id, if it is still open. */
  link(id: LinkId): Link | undefined {
    return this.#links.get(id);
  }

  /** Forgets a link; returns it, or undefined if it was already gone. */
  close(id: LinkId): Link | undefined {
    const link = this.#links.get(id);
    this.#links.delete(id);
    return link;
  }

  /** Number of dial targets, of every source. */
  get targetTotal(): number {
    return this.#targets.size;
  }

  /** Adds a dial target; returns false when it was already there. The caller keeps within MAX_DIAL_TARGETS. */
  addTarget(address: string, source: TargetSource, nowMs: number): boolean {
    if (this.#targets.has(address)) return false;
    this.#targets.set(address, { address, source, link: null, peerId: null, failures: 0, nextDialAtMs: nowMs, lastError: null, failureLogged: false, halted: null });
    return true;
  }

  /** The dial target for an address, if any. */
  target(address: string): DialTarget | undefined {
    return this.#targets.get(address);
  }

  /** The dial target whose current link is `id`, if any. */
  targetOfLink(id: LinkId): DialTarget | undefined {
    for (const target of this.#targets.values()) if (target.link === id) return target;
    return undefined;
  }

  /** Stops dialing an address. */
  removeTarget(address: string): void {
    this.#targets.delete(address);
  }

  /** Outbound links still waiting for their dial or their welcome since before `sinceMs`. */
  stalledDials(sinceMs: number): Link[] {
    return [...this.#links.values()].filter((l) => l.direction === 'outbound' && isPendingState(l.state) && l.openedAtMs < sinceMs);
  }

  /** Links over their outbound budget since before `sinceMs` (flow-control.ts). */
  overBudget(sinceMs: number): Link[] {
    return [...this.#links.values()].filter((l) => l.overBudgetSinceMs !== null && l.overBudgetSinceMs < sinceMs);
  }

  /** Inbound links that sent nothing yet (or did not finish authenticating) since before `sinceMs`. */
  idleInbound(sinceMs: number): Link[] {
    return [...this.#links.values()].filter((l) => l.direction === 'inbound' && isPendingState(l.state) && l.state.kind !== 'refused' && l.openedAtMs < sinceMs);
  }

  /**
   * Targets with no link whose retry time has come, except halted ones and those whose node
   * is connected already, through a link it dialed (known by its id, or by the
   * address it announced): dialing it would only make a second link to close.
   */
  dueTargets(nowMs: number): DialTarget[] {
    const due = [...this.#targets.values()].filter((t) => t.link === null && t.halted === null && t.nextDialAtMs <= nowMs);
    if (due.length === 0) return due;
    const connectedIds = new Set<string>();
    const connectedAddresses = new Set<string>();
    for (const { state } of this.#links.values()) {
      if (state.kind !== 'peer') continue;
      connectedIds.add(state.peerId);
      if (state.address !== null) connectedAddresses.add(state.address);
    }
    return due.filter((t) => !(t.peerId !== null && connectedIds.has(t.peerId)) && !connectedAddresses.has(t.address));
  }

  /** The link of a connected peer, by node id (there is one at most: node.ts keeps one link per pair). */
  peerLink(peerId: string): PeerLink | undefined {
    for (const link of this.#links.values()) if (isPeerLink(link) && link.state.peerId === peerId) return link;
    return undefined;
  }

  /** Number of targets of a source. */
  targetCount(source: TargetSource): number {
    let count = 0;
    for (const target of this.#targets.values()) if (target.source === source) count++;
    return count;
  }

  /** True when a connected peer link has this listening address. */
  hasPeerAt(address: string): boolean {
    return this.peerAt(address) !== undefined;
  }

  /** A connected peer link with this listening address, if any. */
  peerAt(address: string): PeerLink | undefined {
    for (const link of this.#links.values()) if (isPeerLink(link) && link.state.address === address) return link;
    return undefined;
  }

  /** Remembers a peer whose inbound link was lost, so that `peers` shows it down (the last 64). */
  lostInbound(link: PeerLink, reason: string): void {
    const { peerId, address } = link.state;
    this.#lost.delete(peerId);
    this.#lost.set(peerId, { address: address ?? 'unknown', id: peerId, direction: 'inbound', connected: false, lastError: reason });
    if (this.#lost.size > MAX_LOST_PEERS) this.#lost.delete(this.#lost.keys().next().value!);
  }

  /** A peer is back: it is no longer listed as lost. */
  found(peerId: string): void {
    this.#lost.delete(peerId);
  }

  /** Every link whose handshake is done. */
  peerLinkList(): PeerLink[] {
    return [...this.#links.values()].filter(isPeerLink);
  }

  /** One link per connected peer id, for fan-out. */
  peerLinks(): Map<string, PeerLink> {
    const byPeer = new Map<string, PeerLink>();
    for (const link of this.#links.values()) {
      if (isPeerLink(link) && !byPeer.has(link.state.peerId)) byPeer.set(link.state.peerId, link);
    }
    return byPeer;
  }

  /** Number of links that act as clients. */
  clientCount(): number {
    let count = 0;
    for (const link of this.#links.values()) if (isClientState(link.state)) count++;
    return count;
  }

  /**
   * Every outbound target, every inbound peer link, and the inbound peers lost
   * lately (down), for `peers`. A target reached through a link the peer
   * dialed is one row: the inbound link.
   */
  list(): PeerInfo[] {
    return this.rows().map((row) => row.info);
  }

  /** The rows of `list`, each with its link (when connected, or dialing) and its dial target (when it has one). */
  rows(): { readonly info: PeerInfo; readonly link: Link | undefined; readonly target: DialTarget | undefined }[] {
    const rows: { info: PeerInfo; link: Link | undefined; target: DialTarget | undefined }[] = [];
    const shown = new Set<LinkId>();
    for (const target of this.#targets.values()) {
      const link = target.link === null ? undefined : this.#links.get(target.link);
      if (link?.state.kind !== 'peer') {
        const inbound = (target.peerId === null ? undefined : this.peerLink(target.peerId)) ?? this.peerAt(target.address);
        if (inbound !== undefined) {
          shown.add(inbound.id);
          rows.push({ info: { address: target.address, id: inbound.state.peerId, direction: inbound.direction, connected: true }, link: inbound, target });
          continue;
        }
      }
      const connected = link?.state.kind === 'peer';
      const info: PeerInfo = {
        address: target.address,
        id: target.peerId,
        direction: 'outbound',
        connected,
        ...(!connected && target.lastError !== null ? { lastError: target.lastError } : {}),
      };
      rows.push({ info, link, target });
    }
    const connectedIds = new Set<string>();
    for (const link of this.#links.values()) {
      if (!isPeerLink(link)) continue;
      connectedIds.add(link.state.peerId);
      if (!shown.has(link.id) && (link.direction === 'inbound' || this.targetOfLink(link.id) === undefined)) {
        rows.push({ info: { address: link.state.address ?? 'unknown', id: link.state.peerId, direction: link.direction, connected: true }, link, target: undefined });
      }
    }
    for (const lost of this.#lost.values()) if (!connectedIds.has(lost.id!)) rows.push({ info: lost, link: undefined, target: undefined });
    return rows;
  }

  /** Every open link. */
  links(): IterableIterator<Link> {
    return this.#links.values();
  }
}
