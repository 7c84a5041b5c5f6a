/**
 * An in-memory network of bby nodes in one process, for tests and embedders:
 * it plays the adapter for every node it makes, carrying out their `send`,
 * `dial`, `close`, `pause` and `resume` effects over simulated links, and
 * hands the rest (`persist`, `cursor`, `log`, `peer-added`, `peer-removed`)
 * to `onEffect`.
 *
 * House rules, as in the rest of the core: no timers, no clock, no random
 * numbers of its own. Time is the injected `now`, and nothing moves unless
 * `flush()` or `tick()` is called; a frame with a delay waits until `now()`
 * reaches its due time. Each link keeps its frames in order, as a WebSocket
 * does, whatever the delays. Loss drops frames (and only frames, never a
 * connect or close) with the injected `random`; the mesh repairs what was lost
 * by anti-entropy, as it does over a real network.
 *
 * Ideas taken from the core tests' Cluster (@bby/sim's src/cluster.ts): each
 * node's batch (`takeReady()`) becomes packets in one queue, one method picks
 * what is delivered next, one carries it out. Without a disk, a batch goes
 * out as it is taken.
 */
import { parseAddress } from './address.js';
import { createNode, type BbyNode, type NodeOptions } from './node.js';
import { carryOut, type Effect, isEmptyReady, type ReadyHandlers } from './ready.js';
import { type LinkId } from './peer-table.js';

/** Options of `createMemoryNetwork`. */
export interface MemoryNetworkOptions {
  /** The clock every node of the network reads, in milliseconds since the Unix epoch. */
  readonly now: () => number;
  /** The monotonic clock of the nodes' timers (NodeOptions.monotonic; without it they run on `now`). */
  readonly monotonic?: () => number;
  /** Uniform random numbers in [0, 1): each node's retry jitter, and which frames are lost. */
  readonly random: () => number;
  /** How long a frame, a connect or a close travels, in milliseconds: a number, or a function called once per packet (default 0). */
  readonly delayMs?: number | (() => number);
  /** The chance that a frame is lost, in [0, 1) (default 0). */
  readonly lossRate?: number;
  /** Called with every effect the network does not carry out itself: persist, cursor, log, peer-added, peer-removed. */
  readonly onEffect?: (nodeId: string, effect: Effect) => void;
  /** `flush()` throws after this many deliveries in one call (a message loop), default 1,000,000. */
  readonly maxDeliveries?: number;
}

/** Options of `MemoryNetwork.addNode`: those of `createNode`, with `now`, `random` and `address` given by the network. */
export interface MemoryNodeOptions extends Omit<NodeOptions, 'now' | 'random' | 'address' | 'peers'> {
  /** Nodes to dial and keep connected: ids of this network's nodes (added before or after), or their addresses. */
  readonly peers?: readonly string[];
}

/** Counters since the network was made. */
export interface MemoryNetworkStats {
  /** Frames handed to a node's `receive`. */
  delivered: number;
  /** Frames dropped by `lossRate`. */
  lost: number;
  /** Frames sent on a link that had closed meanwhile. */
  dropped: number;
  /** Dials that reached their node. */
  connected: number;
  /** Dials refused: no such address, or one side isolated. */
  refused: number;
}

/** The address a node of a memory network listens on. */
export function memoryAddress(id: string): string {
  return `memory-${id}:1`;
}

/** One end of a link: a node, and its link id there. */
interface End {
  readonly node: string;
  readonly link: LinkId;
}

type Packet =
  | { readonly kind: 'connect'; readonly dueMs: number; readonly from: End; readonly address: string }
  | { readonly kind: 'frame'; readonly dueMs: number; readonly from: End; readonly text: string }
  | { readonly kind: 'close'; readonly dueMs: number; readonly from: End; readonly code: number; readonly reason: string };

/** A packet before it has a due time. */
type Unqueued = Packet extends infer P ? (P extends Packet ? Omit<P, 'dueMs'> : never) : never;

interface MemberNode {
  readonly id: string;
  readonly address: string;
  readonly node: BbyNode;
  isolated: boolean;
}

function endKey(end: End): string {
  return `${end.node}/${end.link}`;
}

/** A network of nodes in one process; see the file header. */
export class MemoryNetwork {
  /** Counters since the network was made. */
  readonly stats: MemoryNetworkStats = { delivered: 0, lost: 0, dropped: 0, connected: 0, refused: 0 };

  readonly #options: MemoryNetworkOptions;
  readonly #maxDeliveries: number;
  readonly #members = new Map<string, MemberNode>();
  /** Open links: each end's key maps to the other end. */
  readonly #wires = new Map<string, End>();
  /** Packets in flight, by due time, first in first out among equals. */
  readonly #inFlight: Packet[] = [];
  /** The latest due time queued on each link end, so that a shorter delay never overtakes a frame sent before it. */
  readonly #lastDueMs = new Map<string, number>();
  /** Link ends whose node stopped reading (`pause`), with the frames that reached them meanwhile. */
  readonly #paused = new Map<string, Packet[]>();

  constructor(options: MemoryNetworkOptions) {
    const lossRate = options.lossRate ?? 0;
    if (!(lossRate >= 0 && lossRate < 1)) throw new RangeError(`lossRate must be in [0, 1), got ${lossRate}`);
    if (typeof options.delayMs === 'number' && !(options.delayMs >= 0)) throw new RangeError(`delayMs must be 0 or more, got ${options.delayMs}`);
    this.#options = options;
    this.#maxDeliveries = options.maxDeliveries ?? 1_000_000;
  }

  /** Makes a node listening on `memoryAddress(id)`, dialing `peers`; carry on with `flush()`. */
  addNode(options: MemoryNodeOptions): BbyNode {
    const { id } = options;
    if (this.#members.has(id)) throw new Error(`memory network: a node ${JSON.stringify(id)} is already in the network`);
    const address = memoryAddress(id);
    const peers = (options.peers ?? []).map((peer) => (peer.includes(':') ? peer : memoryAddress(peer)));
    const node = createNode({ ...options, address, peers, now: this.#options.now, ...(this.#options.monotonic === undefined ? {} : { monotonic: this.#options.monotonic }), random: this.#options.random });
    this.#members.set(id, { id, address, node, isolated: false });
    return node;
  }

  /** The node with this id; throws when there is none. */
  node(id: string): BbyNode {
    return this.#member(id).node;
  }

  /** Ids of every node, in the order they were added. */
  get ids(): string[] {
    return [...this.#members.keys()];
  }

  /**
   * Cuts a node off, as if its machine lost its network: its links close on
   * both sides, and its dials and the dials to it are refused until `rejoin`.
   * The node keeps its store and keeps running.
   */
  isolate(id: string): void {
    const member = this.#member(id);
    member.isolated = true;
    for (const [key, other] of [...this.#wires]) {
      if (key.startsWith(`${id}/`)) this.#cut({ node: id, link: key.slice(id.length + 1) }, other, 'ECONNRESET');
    }
  }

  /** Puts an isolated node back on the network: it redials its peers on its next ticks. */
  rejoin(id: string): void {
    this.#member(id).isolated = false;
  }

  /**
   * Carries out every node's effects and delivers every packet due by `now()`,
   * until nothing more is due; returns the number of frames delivered.
   * Throws after `maxDeliveries` (a message loop).
   */
  flush(): number {
    let delivered = 0;
    for (;;) {
      this.#collect();
      const packet = this.#nextDue();
      if (packet === undefined) return delivered;
      if (packet.kind === 'frame' && ++delivered > this.#maxDeliveries) {
        throw new Error(`memory network: still busy after ${this.#maxDeliveries} deliveries (a message loop?)`);
      }
      this.#deliver(packet);
    }
  }

  /** Lets time pass: ticks every node (retries, heartbeats, anti-entropy), then `flush()`. */
  tick(): number {
    for (const member of this.#members.values()) member.node.tick();
    return this.flush();
  }

  /** When the next packet in flight is due, in milliseconds (the clock of `now`), or undefined when nothing travels. */
  nextDueMs(): number | undefined {
    return this.#inFlight[0]?.dueMs;
  }

  /** Number of open links (each counted once). */
  get openLinks(): number {
    return this.#wires.size / 2;
  }

  // --- internals --------------------------------------------------------

  #member(id: string): MemberNode {
    const member = this.#members.get(id);
    if (member === undefined) throw new Error(`memory network: no node ${JSON.stringify(id)}`);
    return member;
  }

  #delayMs(): number {
    const delay = this.#options.delayMs ?? 0;
    return typeof delay === 'number' ? delay : Math.max(0, delay());
  }

  /** Queues a packet behind every packet of its link end that is due before it, and never before them. */
  #enqueue(packet: Unqueued): void {
    const key = endKey(packet.from);
    const dueMs = Math.max(this.#options.now() + this.#delayMs(), this.#lastDueMs.get(key) ?? -Infinity);
    this.#lastDueMs.set(key, dueMs);
    const queued: Packet = { ...packet, dueMs };
    let index = this.#inFlight.length;
    while (index > 0 && this.#inFlight[index - 1]!.dueMs > dueMs) index--;
    this.#inFlight.splice(index, 0, queued);
  }

  #nextDue(): Packet | undefined {
    const first = this.#inFlight[0];
    if (first === undefined || first.dueMs > this.#options.now()) return undefined;
    return this.#inFlight.shift();
  }

  #collect(): void {
    for (const member of this.#members.values()) {
      const ready = member.node.takeReady();
      if (isEmptyReady(ready)) continue;
      const written = new Map<LinkId, number>();
      carryOut(ready, this.#handlers(member, written));
      // The frames are in the simulated socket at once: report them written, one report per link.
      for (const [link, bytes] of written) member.node.written(link, bytes);
    }
  }

  /** How a member's batch is carried out: the links' side here, the rest (no disk, no log) handed to `onEffect`. */
  #handlers(member: MemberNode, written: Map<LinkId, number>): ReadyHandlers {
    const from: End = { node: member.id, link: '' };
    const handOver = (effects: readonly Effect[]): void => {
      for (const effect of effects) this.#options.onEffect?.(member.id, effect);
    };
    return {
      persist: handOver,
      peers: handOver,
      cursors: handOver,
      dials: (dials) => {
        for (const { link, address } of dials) this.#enqueue({ kind: 'connect', from: { ...from, link }, address });
      },
      messages: (sends) => {
        for (const { link, bytes, text } of sends) {
          if (this.#wires.has(endKey({ ...from, link }))) written.set(link, (written.get(link) ?? 0) + bytes);
          if (this.#options.lossRate !== undefined && this.#options.lossRate > 0 && this.#options.random() < this.#options.lossRate) {
            this.stats.lost++;
            continue;
          }
          this.#enqueue({ kind: 'frame', from: { ...from, link }, text });
        }
      },
      flow: (flow) => {
        for (const { type, link } of flow) {
          const key = endKey({ ...from, link });
          if (type === 'pause') {
            if (!this.#paused.has(key)) this.#paused.set(key, []);
            continue;
          }
          const held = this.#paused.get(key) ?? [];
          this.#paused.delete(key);
          for (const packet of held) this.#deliver(packet);
        }
      },
      closes: (closes) => {
        for (const { link, code, reason } of closes) this.#enqueue({ kind: 'close', from: { ...from, link }, code, reason });
      },
      logs: handOver,
    };
  }

  #deliver(packet: Packet): void {
    switch (packet.kind) {
      case 'connect': {
        const dialer = this.#members.get(packet.from.node)!;
        const target = this.#target(packet.address);
        if (dialer.isolated || target === undefined || target.isolated) {
          this.stats.refused++;
          dialer.node.closed(packet.from.link, 'ECONNREFUSED');
          return;
        }
        this.stats.connected++;
        const accepted = target.node.accept();
        this.#wire(packet.from, { node: target.id, link: accepted });
        dialer.node.opened(packet.from.link);
        return;
      }
      case 'frame': {
        const to = this.#wires.get(endKey(packet.from));
        if (to === undefined) {
          this.stats.dropped++;
          return;
        }
        const paused = this.#paused.get(endKey(to));
        if (paused !== undefined) {
          // The node does not read this link: the frame waits in its socket.
          paused.push(packet);
          return;
        }
        this.stats.delivered++;
        this.#members.get(to.node)!.node.receive(to.link, packet.text);
        return;
      }
      case 'close': {
        const to = this.#wires.get(endKey(packet.from));
        if (to === undefined) return; // already closed from the other side
        this.#cut(packet.from, to, `closed with code ${packet.code}: ${packet.reason}`);
        return;
      }
    }
  }

  #target(address: string): MemberNode | undefined {
    let host: string;
    let port: number;
    try {
      ({ host, port } = parseAddress(address));
    } catch {
      return undefined;
    }
    for (const member of this.#members.values()) {
      const own = parseAddress(member.address);
      if (own.host === host && own.port === port) return member;
    }
    return undefined;
  }

  #wire(a: End, b: End): void {
    this.#wires.set(endKey(a), b);
    this.#wires.set(endKey(b), a);
  }

  /** Closes a link: both ends hear about it, and what was in flight on it is dropped on arrival. */
  #cut(a: End, b: End, reason: string): void {
    this.#wires.delete(endKey(a));
    this.#wires.delete(endKey(b));
    for (const end of [a, b]) {
      this.#paused.delete(endKey(end));
      this.#lastDueMs.delete(endKey(end));
      this.#members.get(end.node)!.node.closed(end.link, reason);
    }
  }
}

/**
 * Creates an in-memory network; add nodes with `addNode`, then drive it with
 * `flush()` (after calls such as `set`) and `tick()` (as time passes).
 *
 * @example
 * import { createMemoryNetwork } from '@bby/core';
 * let nowMs = 0;
 * const network = createMemoryNetwork({ now: () => nowMs, random: Math.random });
 * const a = network.addNode({ id: 'a' });
 * const b = network.addNode({ id: 'b', peers: ['a'] });
 * network.flush();           // b dials a, they shake hands
 * a.set('MonChamp', '42');
 * network.flush();
 * b.get('MonChamp');         // '42'
 */
export function createMemoryNetwork(options: MemoryNetworkOptions): MemoryNetwork {
  return new MemoryNetwork(options);
}
