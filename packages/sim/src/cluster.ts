/**
 * The Cluster: @bby/sim's preset for the core's tests. An in-memory,
 * deterministic mesh of real sans-I/O cores on the simulator's network
 * engine (network.ts), with no latency, no faults and no disk (a batch goes
 * out as it is taken).
 *
 * Every node runs the real core; this file plays the adapter: it drains each
 * node's batches and carries them out over the engine. There are no sockets,
 * timers or wall clock: time is `cluster.nowMs`, moved only by `advance()`,
 * and randomness comes from a seeded PRNG, so a test run is a pure function
 * of its inputs.
 *
 * What travels (a dial, a frame, a close, a write report) waits in one queue,
 * first in, first out (`#inFlight`; which also keeps each link in order), and
 * `step()` carries out the next one; what an end hears from its socket
 * (opened, closed) it hears at once. Tests count deliveries exactly, so that
 * order is part of the contract.
 */
import { type BbyNode, createNode, type Effect, type Entry, type LinkId, type Message, type ResponseMessage, randomBytesFrom, seededRandom, type Timing } from '@bby/core';
import { readyEffects } from '@bby/core/internal';
import { type Connection, Network, type Port, type TravelKind } from './network.js';
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

/** One end of a connection: a node's link or a client. */
interface End extends Port {
  /** The node's id, or the client's name. */
  readonly name: string;
  /** Set on a node's end. */
  readonly node?: string;
}

/** Something on its way, in the order it was queued. */
interface InFlight {
  readonly kind: TravelKind;
  readonly run: () => void;
  readonly what: () => string;
}

type Conn = Connection<End, undefined>;

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
  /** Open (or closing) connections, in the order they opened. */
  readonly #open = new Set<Conn>();
  readonly #inFlight: InFlight[] = [];
  /** Node link ends (`node/link`) whose reading is paused, with the deliveries of the frames that reached them meanwhile, in order. */
  readonly #paused = new Map<string, (() => void)[]>();
  readonly #net = new Network<End, undefined>({
    now: () => this.nowMs,
    travel: (_at, kind, run, what) => {
      this.#inFlight.push({ kind, run, what });
    },
    // An adapter hears its socket's events at once.
    hear: (_at, run) => run(),
    trip: () => 0,
    heldUntil: () => null,
    reordered: () => {
      throw new Error('cluster: frames never overtake each other here');
    },
  });
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
    this.#net.open(this.#clientEnd(client), this.#nodeEnd(sim, link), undefined);
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
    for (const conn of [...this.#open]) {
      if (conn.dialer.node === id || conn.acceptor?.node === id) this.#cut(conn, 'ECONNRESET');
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
        throw new Error(`cluster: still busy after ${maxSteps} deliveries (a message loop?); next: ${this.#inFlight[0]!.what()}`);
      }
      if (this.step()) steps++;
    }
  }

  /** Delivers one packet (and the write reports before it, which are not deliveries); false when nothing was in flight. */
  step(): boolean {
    for (;;) {
      this.#collect();
      const next = this.#inFlight.shift();
      if (next === undefined) return false;
      next.run();
      if (next.kind !== 'written') return true;
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
    return this.#open.size;
  }

  // --- used by Client ---------------------------------------------------

  /** @internal Queues a frame from a client. */
  clientSend(client: Client, text: string): void {
    this.#send(this.#clientEnd(client), text);
  }

  /** @internal A stalled client reads again: what it had not read counts as written. */
  clientReads(client: Client): void {
    for (const report of client.unwritten.splice(0)) this.#inFlight.push({ kind: 'written', run: report, what: () => `a write report ${client.name} had held` });
  }

  /** @internal Queues a client's close. */
  clientClose(client: Client): void {
    this.#net.close(this.#clientEnd(client), 'closed with code 1000: client closed', () => this.counters.closes++);
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
      case 'send': {
        const end = this.#nodeEnd(this.#sim(node), effect.link);
        this.#send(end, effect.text);
        this.#net.written(end, effect.bytes, this.nowMs);
        return;
      }
      case 'pause':
        this.counters.pauses++;
        if (!this.#paused.has(`${node}/${effect.link}`)) this.#paused.set(`${node}/${effect.link}`, []);
        return;
      case 'resume': {
        const held = this.#paused.get(`${node}/${effect.link}`) ?? [];
        this.#paused.delete(`${node}/${effect.link}`);
        // What waited in the socket is read first.
        this.#inFlight.unshift(...held.map((deliver) => ({ kind: 'frame' as const, run: deliver, what: () => `a frame ${node} had not read on ${effect.link}` })));
        return;
      }
      case 'dial':
        this.counters.dials++;
        this.#dial(this.#sim(node), effect.link, effect.address);
        return;
      case 'close':
        this.#net.close(this.#nodeEnd(this.#sim(node), effect.link), `closed with code ${effect.code}: ${effect.reason}`, () => {
          this.counters.closeCodes.push(effect.code);
          this.counters.closes++;
        });
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

  /** A node's link as the network engine sees it. */
  #nodeEnd(sim: SimNode, link: LinkId): End {
    const key = `${sim.id}/${link}`;
    return {
      key,
      name: sim.id,
      node: sim.id,
      alive: () => true,
      whenRunning: (fn) => fn(),
      holdsFrame: (deliver) => {
        const held = this.#paused.get(key);
        if (held === undefined) return false;
        // The node does not read this link: the frame waits in the socket, uncounted.
        held.push(deliver);
        return true;
      },
      holdsWritten: () => false,
      opened: () => sim.node.opened(link),
      closed: (reason) => sim.node.closed(link, reason),
      receive: (text) => sim.node.receive(link, text),
      written: (bytes) => {
        if (sim.up) sim.node.written(link, bytes);
      },
      attached: (conn) => this.#attached(conn as Conn),
      detached: (conn) => this.#open.delete(conn as Conn),
    };
  }

  /** A client's end of its connection. */
  #clientEnd(client: Client): End {
    return {
      key: `client/${client.name}`,
      name: client.name,
      alive: () => true,
      whenRunning: (fn) => fn(),
      holdsFrame: () => false,
      // A stalled client does not read: what the node wrote stays unwritten on its side.
      holdsWritten: (report) => {
        if (!client.stalled) return false;
        client.unwritten.push(report);
        return true;
      },
      opened: () => undefined,
      closed: (reason) => client.closedBy(reason),
      receive: (text) => client.received(text),
      written: () => undefined,
      attached: (conn) => this.#attached(conn as Conn),
      detached: (conn) => this.#open.delete(conn as Conn),
    };
  }

  /** Counts a connection once it is open (a dial joins the table before it connects). */
  #attached(conn: Conn): void {
    if (conn.carries) this.#open.add(conn);
  }

  #dial(dialer: SimNode, link: LinkId, address: string): void {
    this.#net.dial(this.#nodeEnd(dialer, link), undefined, this.nowMs, () => `${dialer.id} dials ${address}`, (conn) => {
      if (conn.state !== 'connecting') return; // the dialer closed the link meanwhile
      const target = [...this.#nodes.values()].find((sim) => sim.address === address);
      if (!dialer.up || target === undefined || !target.up) {
        this.counters.refused++;
        this.#net.refuse(conn, 'ECONNREFUSED', this.nowMs);
        return;
      }
      this.counters.connects++;
      this.#net.accept(conn, this.#nodeEnd(target, target.node.accept()));
    });
  }

  /** Sends a frame from this end; a frame on a link already gone is dropped. */
  #send(from: End, text: string): void {
    const found = this.#net.sender(from.key);
    if (found === undefined) {
      this.counters.dropped++;
      return;
    }
    const { connection, dir } = found;
    const to = connection.to(dir);
    const fate = {
      lost: () => {
        this.counters.dropped++;
      },
      delivering: () => {
        this.counters.deliveries++;
        const type = frameType(text);
        this.counters.deliveriesByType[type] = (this.counters.deliveriesByType[type] ?? 0) + 1;
        if (this.recordFrames && from.node !== undefined && to.node !== undefined) this.frames.push({ from: from.node, to: to.node, text, type });
      },
    };
    this.#net.transmit(connection, dir, text, true, fate, () => `${from.name} sends ${text.slice(0, 120)}`);
  }

  /** Cuts a connection: both ends hear about it. */
  #cut(conn: Conn, reason: string): void {
    if (this.#net.cut(conn, reason)) this.counters.closes++;
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

/** A client connected to one node: sends raw text frames, collects what comes back. */
export class Client {
  /** Every frame received, parsed, in order (replies and errors, or peer messages for a client posing as a peer). */
  readonly inbox: Message[] = [];
  /** Why the connection closed, once it did. */
  closeReason: string | null = null;
  /** True while the client does not read its socket: the node's frames reach it, but are not written out (flow-control.ts). */
  stalled = false;
  /** @internal The node's write reports held while the client was stalled, carried out once it reads. */
  readonly unwritten: (() => void)[] = [];
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
