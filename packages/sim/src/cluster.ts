/**
 * An in-memory, deterministic network of bby nodes for the core's tests.
 *
 * Every node runs the real sans-I/O core; this file plays the adapter: it
 * drains each node's effects and carries them out over simulated links. There
 * are no sockets, timers or wall clock: time is `cluster.nowMs`, moved only by
 * `advance()`, and randomness comes from a seeded PRNG, so a test run is a pure
 * function of its inputs.
 *
 * Shape, so that faults can be added later without a rewrite:
 * - effects become `Packet`s in one in-flight queue (`#inFlight`);
 * - `#nextPacket()` is the single place that picks what is delivered next
 *   (today: first in, first out, which also keeps each link in order);
 * - `#deliver()` is the single place that carries a packet out.
 * Loss, duplication, reordering and partitions belong in those two methods.
 */
import { type BbyNode, createNode, type Effect, type Entry, type LinkId, type Message, type ResponseMessage, randomBytesFrom, seededRandom, type Timing } from '@bby/core';
import { readyEffects } from '@bby/core/internal';
import { START_MS } from './simulation.js';

/** mulberry32: a tiny seeded PRNG returning numbers in [0, 1) (the core's `seededRandom`). */
export const mulberry32 = seededRandom;

export { randomBytesFrom };

/** How `Cluster.addNode` makes a node. */
export interface NodeSpec {
  readonly peers?: readonly string[];
  readonly address?: string;
  readonly entries?: Iterable<Entry>;
  readonly timing?: Partial<Timing>;
  /** The mesh's secrets: the node then authenticates every connection. */
  readonly secrets?: readonly string[];
  readonly clientSecrets?: readonly string[];
  readonly maxClockSkewMs?: number;
}

/** The address a simulated node listens on. */
export function simAddress(id: string): string {
  return `sim-${id}:1`;
}

/** One end of a simulated connection. */
type End = { readonly kind: 'node'; readonly node: string; readonly link: LinkId } | { readonly kind: 'client'; readonly client: Client };

/** Something travelling on the network, produced by an effect or a client. */
type Packet =
  | { readonly kind: 'connect'; readonly from: string; readonly link: LinkId; readonly address: string }
  | { readonly kind: 'frame'; readonly from: End; readonly text: string }
  | { readonly kind: 'close'; readonly from: End; readonly code: number; readonly reason: string }
  /** A node's frame is written out (it goes in the queue right behind the frame; a stalled client holds it back). */
  | { readonly kind: 'written'; readonly node: string; readonly link: LinkId; readonly bytes: number };

/** A log effect, with the node that emitted it. */
export interface LogLine {
  readonly node: string;
  readonly level: 'info' | 'warn';
  readonly message: string;
}

/** A frame as it was delivered. */
export interface FrameRecord {
  readonly from: string;
  readonly to: string;
  readonly text: string;
  /** The parsed frame's `type`. */
  readonly type: string;
}

/** Network counters since the cluster was made (or since `resetCounters()`). */
export interface Counters {
  /** Frames handed to a node's `receive()` or to a client. */
  deliveries: number;
  /** Delivered frames by message type (`entries`, `hello`, `reply`...). */
  deliveriesByType: Record<string, number>;
  /** Dial effects seen, and how many of them connected / were refused. */
  dials: number;
  connects: number;
  refused: number;
  /** Closes carried out, and the codes of those a node asked for (`close` effects). */
  closes: number;
  closeCodes: number[];
  /** Frames sent on a link that was already gone. */
  dropped: number;
  /** `pause` effects carried out (a node stopped reading a link). */
  pauses: number;
}

function zeroCounters(): Counters {
  return { deliveries: 0, deliveriesByType: {}, dials: 0, connects: 0, refused: 0, closes: 0, closeCodes: [], dropped: 0, pauses: 0 };
}

interface SimNode {
  readonly id: string;
  readonly address: string;
  readonly node: BbyNode;
  up: boolean;
}

function endKey(end: End): string {
  return end.kind === 'node' ? `${end.node}/${end.link}` : `client/${end.client.name}`;
}

function endName(end: End): string {
  return end.kind === 'node' ? end.node : end.client.name;
}

/** A deterministic in-memory mesh. */
export class Cluster {
  /** The simulated clock, in ms; shared by every node. */
  nowMs = START_MS;
  /** Network counters; see `Counters`. */
  counters: Counters = zeroCounters();
  /** Every `log` effect, in order. */
  readonly logs: LogLine[] = [];
  /** Every `persist` effect's entry key, per node, in order. */
  readonly persisted = new Map<string, string[]>();
  /** Every `peer-added` effect's address, per node, in order. */
  readonly peersAdded = new Map<string, string[]>();
  /** Every delivered frame between nodes (not clients), when `recordFrames` is on. */
  readonly frames: FrameRecord[] = [];
  recordFrames = false;

  readonly #seed: number;
  readonly #nodes = new Map<string, SimNode>();
  /** Open connections: each end's key maps to the other end. */
  readonly #wires = new Map<string, End>();
  readonly #inFlight: Packet[] = [];
  /** Node link ends (`node/link`) whose reading is paused, with the frames that reached them meanwhile, in order. */
  readonly #paused = new Map<string, Packet[]>();
  #clients = 0;

  /** `peerExchange` (default off here, so that tests keep the topology they wire) is passed to every node. */
  constructor(options: { seed?: number; peerExchange?: boolean } = {}) {
    this.#seed = options.seed ?? 1;
    this.#peerExchange = options.peerExchange ?? false;
  }

  readonly #peerExchange: boolean;

  /** Adds (and starts) a node listening on `sim-<id>:1`; `peers` are node ids or raw addresses; `entries` as if recovered from disk. */
  addNode(id: string, options: NodeSpec = {}): BbyNode {
    if (this.#nodes.has(id)) throw new Error(`cluster: node ${id} already exists`);
    const address = options.address ?? simAddress(id);
    const peers = (options.peers ?? []).map((peer) => (peer.includes(':') ? peer : simAddress(peer)));
    const node = createNode({
      id,
      address,
      peers,
      now: () => this.nowMs,
      monotonic: () => this.nowMs,
      // One PRNG per node, so network randomness added later does not shift node randomness.
      random: mulberry32(this.#seed * 1000 + this.#nodes.size + 1),
      ...(options.entries === undefined ? {} : { entries: options.entries }),
      ...(options.timing === undefined ? {} : { timing: options.timing }),
      ...(options.secrets === undefined ? {} : { secrets: options.secrets, randomBytes: randomBytesFrom(mulberry32(this.#seed * 7919 + this.#nodes.size + 1)) }),
      ...(options.clientSecrets === undefined ? {} : { clientSecrets: options.clientSecrets }),
      ...(options.maxClockSkewMs === undefined ? {} : { maxClockSkewMs: options.maxClockSkewMs }),
      peerExchange: this.#peerExchange,
    });
    this.#nodes.set(id, { id, address, node, up: true });
    this.persisted.set(id, []);
    this.peersAdded.set(id, []);
    return node;
  }

  /** The node with this id. */
  node(id: string): BbyNode {
    return this.#sim(id).node;
  }

  /** Ids of every node, in creation order. */
  get ids(): string[] {
    return [...this.#nodes.keys()];
  }

  /** Connects a new client to a node. */
  client(id: string): Client {
    const sim = this.#sim(id);
    if (!sim.up) throw new Error(`cluster: node ${id} is stopped`);
    const client = new Client(this, `client-${++this.#clients}@${id}`);
    const link = sim.node.accept(`10.0.0.${this.#clients}`);
    this.#wire({ kind: 'client', client }, { kind: 'node', node: id, link });
    return client;
  }

  /**
   * Cuts a node off the network, as if its machine lost its network: every link
   * it has closes on both sides, and until `start()` every dial from or to it is
   * refused. The node keeps running (memory, clock, ticks); its effects are
   * carried out and fail like any other.
   */
  stop(id: string): void {
    const sim = this.#sim(id);
    sim.up = false;
    for (const [key, other] of [...this.#wires]) {
      if (key.startsWith(`${id}/`)) this.#cut({ kind: 'node', node: id, link: key.slice(id.length + 1) }, other, 'ECONNRESET');
    }
  }

  /** Puts a stopped node back on the network. */
  start(id: string): void {
    this.#sim(id).up = true;
  }

  /** True when the node is on the network. */
  isUp(id: string): boolean {
    return this.#sim(id).up;
  }

  /** Delivers packets until nothing is in flight and no node has effects; throws after `maxSteps` deliveries. */
  stabilize(options: { maxSteps?: number } = {}): number {
    const maxSteps = options.maxSteps ?? 20_000;
    let steps = 0;
    for (;;) {
      this.#collect();
      if (this.#inFlight.length === 0) return steps;
      if (steps >= maxSteps) {
        throw new Error(`cluster: still busy after ${maxSteps} deliveries (a message loop?); next: ${describe(this.#inFlight[0]!)}`);
      }
      if (this.step()) steps++;
    }
  }

  /** Delivers one packet (and the write reports before it, which are not deliveries); false when nothing was in flight. */
  step(): boolean {
    for (;;) {
      this.#collect();
      const packet = this.#nextPacket();
      if (packet === undefined) return false;
      this.#deliver(packet);
      if (packet.kind !== 'written') return true;
    }
  }

  /** Moves the clock by `ms` in steps of `stepMs`, ticking every running node and stabilizing at each step. */
  advance(ms: number, options: { stepMs?: number } = {}): void {
    const stepMs = options.stepMs ?? 10;
    let left = ms;
    this.stabilize();
    while (left > 0) {
      const step = Math.min(stepMs, left);
      this.nowMs += step;
      left -= step;
      for (const sim of this.#nodes.values()) sim.node.tick();
      this.stabilize();
    }
  }

  /** Zeroes the network counters (logs, persisted and frames are kept). */
  resetCounters(): void {
    this.counters = zeroCounters();
  }

  /** Number of open simulated connections. */
  get openWires(): number {
    return this.#wires.size / 2;
  }

  // --- used by Client ---------------------------------------------------

  /** @internal Queues a frame from a client. */
  clientSend(client: Client, text: string): void {
    this.#inFlight.push({ kind: 'frame', from: { kind: 'client', client }, text });
  }

  /** @internal A stalled client reads again: what it had not read counts as written. */
  clientReads(client: Client): void {
    this.#inFlight.push(...(client.unwritten.splice(0) as Packet[]));
  }

  /** @internal Queues a client's close. */
  clientClose(client: Client): void {
    this.#inFlight.push({ kind: 'close', from: { kind: 'client', client }, code: 1000, reason: 'client closed' });
  }

  // --- the network ------------------------------------------------------

  #sim(id: string): SimNode {
    const sim = this.#nodes.get(id);
    if (sim === undefined) throw new Error(`cluster: no node ${id}`);
    return sim;
  }

  /** Turns every node's pending effects into packets (or records them). */
  #collect(): void {
    for (const sim of this.#nodes.values()) {
      for (const effect of readyEffects(sim.node.takeReady())) this.#effect(sim.id, effect);
    }
  }

  #effect(node: string, effect: Effect): void {
    switch (effect.type) {
      case 'send':
        this.#inFlight.push({ kind: 'frame', from: { kind: 'node', node, link: effect.link }, text: effect.text });
        this.#inFlight.push({ kind: 'written', node, link: effect.link, bytes: effect.bytes });
        return;
      case 'pause':
        this.counters.pauses++;
        if (!this.#paused.has(`${node}/${effect.link}`)) this.#paused.set(`${node}/${effect.link}`, []);
        return;
      case 'resume': {
        const held = this.#paused.get(`${node}/${effect.link}`) ?? [];
        this.#paused.delete(`${node}/${effect.link}`);
        this.#inFlight.unshift(...held);
        return;
      }
      case 'dial':
        this.counters.dials++;
        this.#inFlight.push({ kind: 'connect', from: node, link: effect.link, address: effect.address });
        return;
      case 'close':
        this.#inFlight.push({ kind: 'close', from: { kind: 'node', node, link: effect.link }, code: effect.code, reason: effect.reason });
        return;
      case 'persist':
        this.persisted.get(node)!.push(effect.entry.key);
        return;
      case 'peer-added':
        this.peersAdded.get(node)!.push(effect.address);
        return;
      case 'peer-removed':
        this.peersAdded.set(node, this.peersAdded.get(node)!.filter((address) => address !== effect.address));
        return;
      case 'cursor':
        // Only storage keeps cursors; the cluster has none.
        return;
      case 'log':
        this.logs.push({ node, level: effect.level, message: effect.message });
        return;
      default: {
        const unknown: never = effect; // a new effect type must be carried out here
        throw new Error(`cluster: unknown effect ${JSON.stringify(unknown)}`);
      }
    }
  }

  /** Picks the next packet to deliver. FIFO for now; the hook for reordering and loss. */
  #nextPacket(): Packet | undefined {
    return this.#inFlight.shift();
  }

  #deliver(packet: Packet): void {
    switch (packet.kind) {
      case 'connect': {
        const dialer = this.#sim(packet.from);
        const target = [...this.#nodes.values()].find((sim) => sim.address === packet.address);
        if (!dialer.up || target === undefined || !target.up) {
          this.counters.refused++;
          dialer.node.closed(packet.link, 'ECONNREFUSED');
          return;
        }
        this.counters.connects++;
        const accepted = target.node.accept();
        this.#wire({ kind: 'node', node: dialer.id, link: packet.link }, { kind: 'node', node: target.id, link: accepted });
        dialer.node.opened(packet.link);
        return;
      }
      case 'frame': {
        const to = this.#wires.get(endKey(packet.from));
        if (to === undefined) {
          this.counters.dropped++;
          return;
        }
        this.counters.deliveries++;
        const type = frameType(packet.text);
        this.counters.deliveriesByType[type] = (this.counters.deliveriesByType[type] ?? 0) + 1;
        if (to.kind === 'client') {
          to.client.received(packet.text);
          return;
        }
        const paused = this.#paused.get(endKey(to));
        if (paused !== undefined) {
          // The node does not read this link: the frame waits in the socket, uncounted.
          this.counters.deliveries--;
          this.counters.deliveriesByType[type]!--;
          paused.push(packet);
          return;
        }
        if (this.recordFrames && packet.from.kind === 'node') this.frames.push({ from: packet.from.node, to: to.node, text: packet.text, type });
        this.#sim(to.node).node.receive(to.link, packet.text);
        return;
      }
      case 'written': {
        const sim = this.#sim(packet.node);
        const to = this.#wires.get(`${packet.node}/${packet.link}`);
        if (to?.kind === 'client' && to.client.stalled) {
          to.client.unwritten.push(packet);
          return;
        }
        if (sim.up) sim.node.written(packet.link, packet.bytes);
        return;
      }
      case 'close': {
        const to = this.#wires.get(endKey(packet.from));
        if (to === undefined) return; // already closed from the other side
        if (packet.from.kind === 'node') this.counters.closeCodes.push(packet.code);
        this.#cut(packet.from, to, `closed with code ${packet.code}: ${packet.reason}`);
        return;
      }
    }
  }

  #wire(a: End, b: End): void {
    this.#wires.set(endKey(a), b);
    this.#wires.set(endKey(b), a);
  }

  /** Closes a connection: both ends hear about it. */
  #cut(a: End, b: End, reason: string): void {
    this.#wires.delete(endKey(a));
    this.#wires.delete(endKey(b));
    this.counters.closes++;
    for (const end of [a, b]) {
      if (end.kind === 'client') end.client.closedBy(reason);
      else this.#sim(end.node).node.closed(end.link, reason);
    }
  }
}

function frameType(text: string): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { type?: unknown }).type === 'string') return (parsed as { type: string }).type;
  } catch {
    // counted as "invalid" below
  }
  return 'invalid';
}

function describe(packet: Packet): string {
  switch (packet.kind) {
    case 'connect':
      return `${packet.from} dials ${packet.address}`;
    case 'frame':
      return `${endName(packet.from)} sends ${packet.text.slice(0, 120)}`;
    case 'close':
      return `${endName(packet.from)} closes (${packet.code})`;
    case 'written':
      return `${packet.node} wrote out a frame on ${packet.link}`;
  }
}

/** A client connected to one node: sends raw text frames, collects what comes back. */
export class Client {
  /** Every frame received, parsed, in order (replies and errors, or peer messages for a client posing as a peer). */
  readonly inbox: Message[] = [];
  /** Why the connection closed, once it did. */
  closeReason: string | null = null;
  /** True while the client does not read its socket: the node's frames reach it, but are not written out (flow-control.ts). */
  stalled = false;
  /** @internal What the node wrote while the client was stalled, reported written once it reads. */
  readonly unwritten: unknown[] = [];
  #nextId = 1;

  constructor(
    private readonly cluster: Cluster,
    readonly name: string,
  ) {}

  /** Queues a raw text frame (delivered by the next `stabilize()`). */
  sendRaw(text: string): void {
    this.cluster.clientSend(this, text);
  }

  /** Sends a request (adding an `id` unless given), stabilizes, and returns the response with that id. */
  request(message: Record<string, unknown>): ResponseMessage {
    const id = 'id' in message ? (message.id as string | number) : this.#nextId++;
    this.sendRaw(JSON.stringify({ ...message, id }));
    this.cluster.stabilize();
    const response = this.inbox.find((m): m is ResponseMessage => (m.type === 'reply' || m.type === 'error') && m.id === id);
    if (response === undefined) throw new Error(`${this.name}: no response to request ${JSON.stringify(id)}`);
    return response;
  }

  /** Sends a raw frame, stabilizes, and returns the frames received meanwhile. */
  exchange(text: string): Message[] {
    const before = this.inbox.length;
    this.sendRaw(text);
    this.cluster.stabilize();
    return this.inbox.slice(before);
  }

  /** Stops reading: the node's frames pile up unwritten on its side, as on a socket nobody reads. */
  stall(): void {
    this.stalled = true;
  }

  /** Reads again. */
  read(): void {
    this.stalled = false;
    this.cluster.clientReads(this);
  }

  /** Delivers what is in flight (the challenge a node sends as it accepts a connection, say). */
  settle(): void {
    this.cluster.stabilize();
  }

  /** Closes the connection. */
  close(): void {
    this.cluster.clientClose(this);
  }

  /** @internal A frame arrived from the node. */
  received(text: string): void {
    const message = JSON.parse(text) as { type: string; entries?: unknown };
    // Entries travel as [key, value, timestamp, origin] tuples: read them back as entries.
    if (message.type === 'entries' && Array.isArray(message.entries)) {
      message.entries = (message.entries as [string, string, number, string][]).map(([key, value, timestamp, origin]) => ({ key, value, timestamp, origin }));
    }
    this.inbox.push(message as Message);
  }

  /** @internal The connection closed. */
  closedBy(reason: string): void {
    this.closeReason = reason;
  }
}

/** Narrowing helper: the `result` of a reply, failing loudly on an error. */
export function resultOf(response: Message): unknown {
  if (response.type !== 'reply') throw new Error(`expected a reply, got ${JSON.stringify(response)}`);
  return response.result;
}
