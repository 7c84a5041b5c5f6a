/**
 * Deterministic simulation of a bby mesh under faults, in the style of
 * FoundationDB's and TigerBeetle's simulators: many real sans-I/O cores in one
 * process, simulated time, a simulated network, and one seed that decides
 * everything (topology, latencies, faults, client writes, the nodes' own
 * randomness: each comes from its own stream forked from the seed's PRNG, so
 * that a change in one does not reshuffle the others). `runSeed(seed)` is a
 * pure function of the seed and options; `SEED=<n> npm test` replays it.
 *
 * A run has two phases:
 * 1. fault phase (20 to 60 s simulated): clients write to random running
 *    nodes (a small moving key window, so that writes conflict) while the
 *    network loses, duplicates, delays and (optionally) reorders frames,
 *    partitions come and heal, links reset, nodes pause (SIGSTOP/SIGCONT) and
 *    crash, restarting with or without their disk; every node ticks every 100 ms;
 * 2. liveness phase: the faults stop, partitions heal, paused nodes resume,
 *    crashed nodes restart, and the run goes on until every node holds the
 *    identical store, or LIVENESS_BOUND_MS of simulated time pass.
 * It then checks: every store identical; every acknowledged write (its client
 * received a `reply` of true to its `set` request) is on every node with the
 * same or an older entry (oldest wins); nothing in a store that no client
 * wrote. During the run: a node never persists an entry that loses to the one
 * it already persisted, every `error` frame between nodes is of an expected
 * class (peer-errors.ts), and a client gets nothing it did not ask for (an
 * answer to no request of its link, an error other than STORAGE_FAILED to a
 * `set`, a result other than true or false).
 *
 * Each seed also draws how the nodes run: with or without peer exchange (off,
 * a line stays a line and writes must be relayed), and, when no frame is lost
 * or reordered, sometimes without anti-entropy (writes must then arrive by
 * forwarding and catch-up alone).
 *
 * The network, as an adapter over WebSocket/TCP would see it (network.ts
 * carries the connections; this file adds the latencies and the faults):
 * - a `dial` effect becomes a connection attempt that arrives after the
 *   pair's latency; the target `accept()`s it, and the dialer hears `opened()`
 *   one trip later. A dial to a node that is down or across a partition is
 *   refused (the dialer gets `closed()`) or times out (nothing comes back; the
 *   core's handshake timeout ends it);
 * - a frame arrives after the pair's latency plus jitter; links between
 *   different pairs have different latencies, so frames on different links
 *   reorder. On one link frames stay in order (TCP), unless the `reorder`
 *   fault is on. `loss` drops a frame, `duplication` delivers it twice;
 * - a `close` effect is a graceful close: frames already sent still arrive,
 *   then both ends get `closed()`. A partition, a link reset or a crash cuts a
 *   link abruptly: frames in flight are lost and the surviving ends get
 *   `closed()` after one trip. A silent partition cuts nothing: frames across
 *   it wait for the heal (TCP retransmits), and only heartbeats notice;
 * - a paused node runs no ticks; what reaches it waits, in order, until it
 *   resumes, and then its timers run before the backlog (as in Node.js);
 * - the disk is bby-node's own: each node's batches (`takeReady()`) go
 *   through the production disk side, @bby/node's DiskPipeline (core's
 *   DurabilityPipeline carried out on a Persistence and its Storage), over an
 *   in-memory file system (machine-disk.ts) whose fsyncs take simulated time.
 *   A batch's frames go out when the pipeline releases it. The clients are
 *   on each machine's loopback: a client link per node, over which the
 *   workload sends `set` and `add-peer` requests as `bby` does (answering the
 *   challenge first when the mesh has a secret); a frame the node sends a
 *   client is received at once. The seed may make fsyncs fail (EIO), the disk fill up
 *   for a while (ENOSPC), bits flip on read, and a crash tear the unsynced
 *   writes (keep a prefix of them);
 * - a crash loses the node's memory and what its disk had not made durable.
 *   Restarting "with state" recovers the data folder as bby-node does
 *   (`Persistence.recover`: node.json, snapshot and logs, the epoch rule);
 *   restarting "without state" starts from an empty disk, with the same id or
 *   a new one, at the same address (a replaced disk or machine). A start that
 *   fails (a flipped bit reads as damage, a failed write of node.json) is
 *   tried again a second later, as a supervisor would. An acknowledged write
 *   whose only copies were on lost disks is not required afterwards (counted
 *   in `writesLostWithDisk`).
 */
import { authProof, type AuthTranscript, type BbyNode, carryOut, compareEntries, createNode, encodeMessage, type Entry, isEmptyReady, type LinkId, type Message, newNonce, type Ready, type ReadyHandlers, type SendEffect, randomBytesFrom, seededRandom } from '@bby/core';
import { DataDirError, DiskPipeline, Persistence, type Scheduler } from '@bby/node';
import { DATA_DIR, MachineDisk } from './machine-disk.js';
import { type Connection, type Direction, Network, type Port } from './network.js';
import { classifyPeerError, type DirectionFaults, describeFaults, type ErrorContext } from './peer-errors.js';

/** The simulated clock starts here (a plausible epoch time, in ms); the nodes' wall clocks read START_MS + simulated ms + their skew. */
export const START_MS = 1_700_000_000_000;

/** The mesh's secret when a seed draws authenticated links. */
const SIM_SECRET = 'the simulated mesh secret';

// --- public types -------------------------------------------------------

/** How the configured peers are wired. */
export type TopologyKind = 'line' | 'ring' | 'star' | 'full' | 'random';

/** Which faults a run injects, and how often. */
export interface FaultProfile {
  /** Probability that a frame between nodes is lost. */
  loss: number;
  /** Probability that a frame between nodes is delivered twice. */
  duplication: number;
  /** Frames on one link may overtake each other (a real link is TCP, so mostly off). */
  reorder: boolean;
  /** Mean simulated ms between partitions; 0 for none. */
  partitionEveryMs: number;
  /** Mean simulated ms between node crashes; 0 for none. */
  crashEveryMs: number;
  /** Share of crashes that lose the disk (the rest restart with their stored state). */
  diskLoss: number;
  /** Mean simulated ms between resets of one random link; 0 for none. */
  resetEveryMs: number;
  /** Share of partitions that are silent (frames wait for the heal, as TCP retransmits; only heartbeats notice) rather than cutting links. */
  silentPartitions: number;
  /** Mean simulated ms between pauses of one node (SIGSTOP, then SIGCONT); 0 for none. */
  pauseEveryMs: number;
  /**
   * Whether nodes run periodic anti-entropy. Off, writes must reach every node
   * by forwarding and catch-up alone (drawn off only when frames are neither
   * lost nor reordered, where that is a fair demand).
   */
  antiEntropy: boolean;
  /** Whether nodes learn and dial their peers' peers; off, a line stays a line and writes must be relayed. */
  peerExchange: boolean;
  /** Whether the nodes share a secret, so that every link authenticates (auth.ts) before anything else, under the same faults. */
  secrets: boolean;
  /** Largest offset of a node's clock from simulated time, in ms (each incarnation draws its own). */
  clockSkewMs: number;
  /**
   * Mean simulated ms between steps of one node's wall clock, forwards or
   * backwards, as NTP or an operator may step it; 0 for none. Timers run on
   * the monotonic clock and must not mind. A step lands within
   * MAX_WALL_OFFSET_MS of simulated time, so that two clocks stay within the
   * nodes' maxClockSkewMs (60 s) of each other: beyond it, peers refuse a
   * node's writes by design.
   */
  clockJumpEveryMs: number;
  /** Probability that an fsync fails with EIO (the storage then refuses writes until a retry succeeds). */
  syncFailure: number;
  /**
   * Whether a failed fsync marks its bytes clean without writing them, as
   * Linux does (memory-fs.ts `loseWriteback`); drawn for half the seeds, and
   * matters only where `syncFailure` is drawn.
   */
  writebackLoss: boolean;
  /** Probability that a read returns one bit flipped (at start: the folder reads as damaged, and the start is tried again). */
  readBitFlip: number;
  /** Mean simulated ms between episodes of one node's disk being full (ENOSPC); 0 for none. */
  diskFullEveryMs: number;
  /** Whether a crash keeps a drawn prefix of each file's unsynced bytes (a torn write), rather than only synced bytes. */
  tornWrites: boolean;
  /** Simulated ms an fsync takes. */
  syncMs: number;
  /** Backlog bound of the durability pipeline, in bytes: above it a node stops reading its links; 0 for bby-node's (4 MiB). */
  backlogBytes: number;
}

/** Options of `runSeed`; everything not given is drawn from the seed. */
export interface SimOptions {
  /** Overrides parts of the drawn fault profile (the rest of the run is drawn as without it). */
  faults?: Partial<FaultProfile>;
  /** Number of nodes (3 to 7 when drawn). */
  nodes?: number;
  topology?: TopologyKind;
  /** Simulated length of the fault phase, in ms. */
  faultPhaseMs?: number;
  /** Simulated time the liveness phase may take to converge, in ms. */
  livenessBoundMs?: number;
  /** 0: no trace; 1: setup, faults and phases; 2: also dials, closes, losses and node logs; 3: also every frame delivered. */
  trace?: 0 | 1 | 2 | 3;
  /** Receives trace lines as they happen (they are also kept in `result.trace`). */
  onTrace?: (line: string) => void;
  /** Characters of entries per message (the nodes' `batchLength`): small values cut catch-ups into many batches. */
  batchLength?: number;
  /** TEST ONLY: the durability pipeline releases batches before their changes are durable (core's DurabilityOptions), to check that the checks catch it. */
  unsafeReleaseBeforeDurable?: boolean;
  /** TEST ONLY: the durability pipeline releases a batch whose append failed as if it were kept (core's DurabilityOptions), to check that the checks catch it. */
  unsafeReleaseFailedAsKept?: boolean;
}

/** What a run did; every field is a count, so results add up (`addCounts`). */
export interface SimCounts {
  runs: number;
  nodes: number;
  /** Client `set` requests; acknowledged (the client received `true`); refused (`false`, or a STORAGE_FAILED error); the rest got no answer (the node crashed, or the client's link closed). */
  writes: number;
  acked: number;
  refused: number;
  /** Frames nodes sent to each other on open links; delivered to a node. */
  framesSent: number;
  framesDelivered: number;
  /** Frames lost by the loss fault, delivered twice, overtaken on their own link. */
  dropped: number;
  duplicated: number;
  reordered: number;
  /** Frames in flight on a link when it was cut; frames sent on a link already closing or closed. */
  lostInFlight: number;
  sentOnClosed: number;
  /** Dial effects; connected; refused; left unanswered (timed out). */
  dials: number;
  connects: number;
  refusedDials: number;
  timedOutDials: number;
  /** Graceful closes asked by nodes; abrupt cuts of links (partitions, resets, crashes). */
  closes: number;
  cuts: number;
  partitions: number;
  silentPartitions: number;
  pauses: number;
  linkResets: number;
  crashesWithState: number;
  crashesWithoutState: number;
  /** Of the crashes without state, those that came back under a new id. */
  newIds: number;
  restarts: number;
  /** Acknowledged writes whose every copy was on lost disks (not required afterwards). */
  writesLostWithDisk: number;
  /** Disk faults that struck: failed fsyncs, bits flipped on read, full-disk episodes; times a node's storage failed; starts that failed. */
  syncFailures: number;
  readBitFlips: number;
  diskFulls: number;
  storageFailures: number;
  failedStarts: number;
  /** `error` frames between nodes (a peer refused something a node sent); each is of an expected class (peer-errors.ts) or fails the run. */
  protocolErrors: number;
  /** The error frames between nodes by class (EXPECTED_PEER_ERRORS' names). */
  peerErrorsByClass: Record<string, number>;
  /** `add-peer` requests made by clients. */
  addPeers: number;
  /** Steps of a node's wall clock. */
  clockJumps: number;
  simulatedMs: number;
  /** Simulated ms from the start of the liveness phase to convergence (converged runs only). */
  convergenceMs: number;
  converged: number;
}

/** The outcome of one seed. */
export interface SimResult {
  seed: number;
  ok: boolean;
  /** Why the run failed; empty when ok. */
  failures: string[];
  /** One line: nodes, topology, faults, durations. */
  setup: string;
  /** Simulated ms the liveness phase took to converge, or null if it did not. */
  convergedAfterMs: number | null;
  counts: SimCounts;
  /** A hash of the final stores and the counts: equal for equal runs. */
  fingerprint: string;
  /** Trace lines (empty unless `trace` was asked for). */
  trace: string[];
  /** Wall-clock ms the run took. */
  wallMs: number;
}

// --- defaults ------------------------------------------------------------

/** Every node ticks this often, in simulated ms. */
export const TICK_MS = 100;
/** Drawn length of the fault phase, in simulated ms. */
export const FAULT_PHASE_MS: readonly [number, number] = [20_000, 60_000];
/** How long the liveness phase may take, in simulated ms. */
export const LIVENESS_BOUND_MS = 120_000;
/** A run that sends more frames than this is stopped and failed: a message storm. */
export const MAX_FRAMES = 100_000;

export function zeroCounts(): SimCounts {
  return {
    runs: 0, nodes: 0, writes: 0, acked: 0, refused: 0, framesSent: 0, framesDelivered: 0, dropped: 0, duplicated: 0, reordered: 0,
    lostInFlight: 0, sentOnClosed: 0, dials: 0, connects: 0, refusedDials: 0, timedOutDials: 0, closes: 0, cuts: 0, partitions: 0, silentPartitions: 0, pauses: 0,
    linkResets: 0, crashesWithState: 0, crashesWithoutState: 0, newIds: 0, restarts: 0, writesLostWithDisk: 0, syncFailures: 0, readBitFlips: 0,
    diskFulls: 0, storageFailures: 0, failedStarts: 0, protocolErrors: 0,
    peerErrorsByClass: {}, addPeers: 0, clockJumps: 0, simulatedMs: 0, convergenceMs: 0, converged: 0,
  };
}

/** Adds `b` into `a` and returns `a`. */
export function addCounts(a: SimCounts, b: SimCounts): SimCounts {
  for (const key of Object.keys(a) as (keyof SimCounts)[]) {
    if (key === 'peerErrorsByClass') for (const [name, n] of Object.entries(b.peerErrorsByClass)) a.peerErrorsByClass[name] = (a.peerErrorsByClass[name] ?? 0) + n;
    else a[key] += b[key];
  }
  return a;
}

/** A short human summary of (summed) counts. */
export function formatCounts(c: SimCounts): string {
  const avgConv = c.converged > 0 ? `${(c.convergenceMs / c.converged / 1000).toFixed(1)} s` : 'n/a';
  const classes = Object.entries(c.peerErrorsByClass).sort((x, y) => y[1] - x[1]).map(([name, n]) => `${name} ${n}`).join(', ');
  return [
    `${c.runs} runs, ${c.nodes} nodes, ${(c.simulatedMs / 1000).toFixed(0)} s simulated`,
    `writes ${c.writes} (acked ${c.acked}, refused ${c.refused})`,
    `frames sent ${c.framesSent}, delivered ${c.framesDelivered}, dropped ${c.dropped}, duplicated ${c.duplicated}, reordered ${c.reordered}, lost on cut links ${c.lostInFlight}`,
    `dials ${c.dials} (connected ${c.connects}, refused ${c.refusedDials}, timed out ${c.timedOutDials}), graceful closes ${c.closes}, cuts ${c.cuts}`,
    `partitions ${c.partitions} (silent ${c.silentPartitions}), pauses ${c.pauses}, wall clock steps ${c.clockJumps}, link resets ${c.linkResets}, crashes with state ${c.crashesWithState}, without state ${c.crashesWithoutState} (new id ${c.newIds}), acked writes lost with a disk ${c.writesLostWithDisk}`,
    `disk: failed fsyncs ${c.syncFailures}, bits flipped on read ${c.readBitFlips}, full ${c.diskFulls} times; storage failed ${c.storageFailures} times, failed starts ${c.failedStarts}`,
    `protocol errors ${c.protocolErrors}${classes === '' ? '' : ` (${classes})`}, add-peer ${c.addPeers}; converged ${c.converged}/${c.runs}, mean convergence ${avgConv} after the faults stop`,
  ].join('\n');
}

// --- randomness --------------------------------------------------------------

class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  /** A new independent stream, seeded from this one. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 4294967296));
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** Exponentially distributed, with this mean. */
  exp(mean: number): number {
    return Math.max(1, Math.round(-Math.log(1 - this.next()) * mean));
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** A binary min-heap of events ordered by time, then by insertion. */
class EventQueue {
  readonly #heap: { at: number; seq: number; run: () => void }[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(at: number, run: () => void): void {
    const heap = this.#heap;
    heap.push({ at, seq: this.#seq++, run });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  pop(): { at: number; run: () => void } | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

// --- the simulated world ------------------------------------------------------

/** An anti-entropy period that never comes (about 30 years). */
const NO_ANTI_ENTROPY_MS = 1e12;

/** The farthest a stepped wall clock lands from simulated time, in ms (see FaultProfile.clockJumpEveryMs). */
const MAX_WALL_OFFSET_MS = 25_000;

/** How long after a failed start the machine's supervisor starts the node again, in simulated ms. */
const RESTART_AFTER_FAILED_START_MS = 1_000;

/** A machine: one address, a disk, and the node running on it (if up). */
interface Slot {
  readonly index: number;
  readonly address: string;
  readonly configPeers: readonly string[];
  /** Id of the current (or last) node here. */
  id: string;
  /** Bumped when the node comes back under a new id. */
  generation: number;
  node: BbyNode | null;
  /** Unique per node instance, so that events aimed at a crashed instance are dropped. */
  incarnation: number;
  /** The machine's disk (its file system survives crashes, or is replaced when lost). */
  readonly disk: MachineDisk;
  /** The running node's disk side (bby-node's): each of its batches goes through it. */
  pipeline: DiskPipeline | null;
  /** Per key, the latest entry whose batch the pipeline released (durable), or recovered at start: what the disk keeps through a crash. */
  durable: Map<string, Entry>;
  /** Per key, the latest entry this incarnation asked to persist (to check that a key only moves to older entries). */
  persisted: Map<string, Entry>;
  /** Links this instance has (or is dialing). */
  readonly conns: Set<Conn>;
  /** The session of the simulated client of this machine's node (its writes and add-peer requests), while its link is open. */
  client: ClientSession | null;
  /** Why the machine has no node: never started yet, crashed, or starting (recovering its data folder). */
  down: 'never-started' | 'crashed' | 'starting' | null;
  /** The offset of its wall clock from simulated time, in ms: the incarnation's skew, moved by steps (clockJumpEveryMs). */
  wallOffsetMs: number;
  /** Stopped (SIGSTOP): no ticks; what reaches it waits in `held`, in order, until it resumes. */
  paused: boolean;
  held: (() => void)[];
  /** Not reading its links (the durability backlog is over its bound): frames that arrive wait in `unread`, in order. */
  readingPaused: boolean;
  unread: (() => void)[];
}

/** One end of a connection: a link of one node instance. */
interface End extends Port {
  readonly slot: Slot;
  readonly incarnation: number;
  readonly link: LinkId;
}

/** What the simulation keeps on a connection of the network (network.ts). */
interface ConnData {
  /** A client's link to a node (only `dialer` is set: the node's end). */
  readonly client: boolean;
  /** What the network did to the frames of each direction, to classify the error frames sent back (peer-errors.ts). */
  readonly faults: readonly [MutableDirectionFaults, MutableDirectionFaults];
  /** Whether either end was paused while the link was open. */
  paused: boolean;
  /** Directions whose sender refused the link because its disk failed (a "disk failed" error frame). */
  readonly refusedByDisk: Set<0 | 1>;
}

/** A simulated connection. Direction 0 is dialer to acceptor, 1 the reverse. */
type Conn = Connection<End, ConnData>;

/** DirectionFaults, as they accumulate. */
interface MutableDirectionFaults extends DirectionFaults {
  readonly dropped: Set<string>;
  readonly duplicated: Set<string>;
  reordered: boolean;
  held: boolean;
}

function noFaults(): [MutableDirectionFaults, MutableDirectionFaults] {
  const none = (): MutableDirectionFaults => ({ dropped: new Set(), duplicated: new Set(), reordered: false, held: false });
  return [none(), none()];
}

interface AckedWrite {
  readonly key: string;
  readonly entry: Entry;
  readonly node: string;
  readonly atMs: number;
  /** Set when every copy was on disks that were lost. */
  lostWithDisk: boolean;
}

/**
 * A simulated client's link to one node, as `bby` holds one: with a secret it
 * answers the node's challenge and checks its proof before it sends a request.
 */
interface ClientSession {
  readonly conn: Conn;
  /** 'challenge': waiting for the node's; 'proof': its auth sent, waiting for `authenticated` with this proof; 'ready': requests go out. */
  auth: { readonly step: 'challenge' } | { readonly step: 'proof'; readonly expected: string } | { readonly step: 'ready' };
  /** Requests made before the link was ready, in order. */
  readonly queued: ClientRequest[];
}

/** A request a simulated client sent, until its answer comes. */
interface ClientRequest {
  readonly id: number;
  readonly frame: { readonly type: 'set'; readonly key: string; readonly value: string } | { readonly type: 'add-peer'; readonly address: string };
  readonly session: ClientSession;
  readonly atMs: number;
  /** For a `set`: the entry the key held once the node read the request (the write's, or the equal one already there). */
  entry: Entry | undefined;
}

/**
 * Resolves once every microtask queued so far, and every one they queue, has
 * run: the storage's promise chains between two simulated events. A
 * `process.nextTick` queued from a microtask runs only once the microtask
 * queue is empty. Nothing else (no timer, no I/O) runs in between, so the
 * order stays the seed's.
 */
function settled(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

function entryId(entry: Entry): string {
  return `${entry.key}\u0000${entry.origin}\u0000${entry.timestamp}\u0000${entry.value}`;
}

function showEntry(entry: Entry | undefined): string {
  return entry === undefined ? '-' : `${JSON.stringify(entry.value)}@${entry.origin}/${entry.timestamp - START_MS}`;
}

function sortedEntries(node: BbyNode): Entry[] {
  return node.keys().map((key) => node.entry(key)!);
}

/** A store as text, whatever the property order of its entry objects. */
function storeText(entries: readonly Entry[]): string {
  return JSON.stringify(entries.map((e) => [e.key, e.value, e.timestamp, e.origin]));
}

/** FNV-1a, 32 bits, as hex. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * Compares final stores and checks acknowledged writes; returns failure lines.
 * Exported so that the checker itself can be tested.
 */
export function checkStores(
  stores: ReadonlyMap<string, readonly Entry[]>,
  acked: readonly { key: string; entry: Entry; node: string; lostWithDisk?: boolean }[],
  written?: ReadonlySet<string>,
  explain: (entry: Entry) => string = () => '',
): string[] {
  const failures: string[] = [];
  const ids = [...stores.keys()];
  const byNode = new Map<string, Map<string, Entry>>();
  for (const [id, entries] of stores) byNode.set(id, new Map(entries.map((e) => [e.key, e])));
  const reference = storeText(stores.get(ids[0]!) ?? []);
  if (ids.some((id) => storeText(stores.get(id)!) !== reference)) {
    const keys = [...new Set([...byNode.values()].flatMap((m) => [...m.keys()]))].sort();
    const differing = keys.filter((key) => new Set(ids.map((id) => storeText([byNode.get(id)!.get(key)].filter((e): e is Entry => e !== undefined)))).size > 1);
    const sizes = ids.map((id) => `${id}:${byNode.get(id)!.size}`).join(' ');
    const sample = differing.slice(0, 6).map((key) => {
      const held = ids.map((id) => byNode.get(id)!.get(key)).filter((e): e is Entry => e !== undefined);
      const oldest = held.sort(compareEntries)[0];
      return `    ${key}: ${ids.map((id) => `${id}=${showEntry(byNode.get(id)!.get(key))}`).join(' ')}${oldest === undefined ? '' : explain(oldest)}`;
    });
    failures.push(`stores differ on ${differing.length} of ${keys.length} keys (keys per node ${sizes}):\n${sample.join('\n')}${differing.length > 6 ? '\n    ...' : ''}`);
  }
  const problems: string[] = [];
  for (const write of acked) {
    if (write.lostWithDisk === true) continue;
    for (const id of ids) {
      const held = byNode.get(id)!.get(write.key);
      if (held === undefined) problems.push(`${write.key}=${showEntry(write.entry)} (acked by ${write.node}) is missing on ${id}${explain(write.entry)}`);
      else if (compareEntries(held, write.entry) > 0) problems.push(`${write.key}=${showEntry(write.entry)} (acked by ${write.node}) lost to the newer ${showEntry(held)} on ${id}`);
    }
  }
  if (problems.length > 0) failures.push(`${problems.length} acknowledged write copies missing or overwritten:\n${problems.slice(0, 6).map((p) => `    ${p}`).join('\n')}${problems.length > 6 ? '\n    ...' : ''}`);
  if (written !== undefined) {
    const invented = [...byNode].flatMap(([id, m]) => [...m.values()].filter((e) => !written.has(entryId(e))).map((e) => `${id} holds ${e.key}=${showEntry(e)}`));
    if (invented.length > 0) failures.push(`entries that no client wrote: ${invented.slice(0, 6).join('; ')}`);
  }
  return failures;
}

class Simulation {
  readonly #seed: number;
  readonly #options: SimOptions;
  readonly #queue = new EventQueue();
  /** Simulated ms since the start. */
  #now = 0;
  #phase: 'fault' | 'liveness' | 'done' = 'fault';
  readonly #setupRng: Rng;
  readonly #netRng: Rng;
  readonly #faultRng: Rng;
  readonly #workRng: Rng;
  readonly #nodeRng: Rng;
  /** Draws the secret setting and the nonces' bytes. */
  readonly #authRng: Rng;
  /** Draws the disk faults, and what they do (torn bytes, failed fsyncs, flipped bits). */
  readonly #diskRng: Rng;
  /** Draws the steps of the wall clocks; forked last. */
  readonly #clockRng: Rng;
  readonly #profile: FaultProfile;
  /** The link faults in force: the profile's during the fault phase, none after. */
  #link: Pick<FaultProfile, 'loss' | 'duplication' | 'reorder'>;
  readonly #slots: Slot[] = [];
  readonly #byAddress = new Map<string, Slot>();
  /** Base one-way latency per pair of slots, ms. */
  readonly #latency: number[][] = [];
  #jitterMs = 0;
  readonly #net: Network<End, ConnData> = new Network<End, ConnData>({
    now: () => this.#now,
    travel: (at, _kind, run) => this.#at(at, run),
    hear: (at, run) => this.#at(at, run),
    trip: (conn) => this.#connLatency(conn as Conn),
    heldUntil: (conn, dir) => this.#heldUntil(conn as Conn, dir),
    reordered: (conn, dir) => {
      this.#counts.reordered++;
      (conn as Conn).data.faults[dir].reordered = true;
    },
  });
  #nextIncarnation = 1;
  /** The partition in force: group of each slot; silent ones hold frames until `healAt`. */
  #partition: { readonly groups: readonly number[]; readonly silent: boolean; readonly healAt: number } | null = null;
  readonly #acked: AckedWrite[] = [];
  /** Requests of the simulated clients by id, until their answer comes. */
  readonly #requests = new Map<number, ClientRequest>();
  /** Every entry a client's set created. */
  readonly #written = new Set<string>();
  /** Per entry: frames carrying it that the loss fault dropped, were lost on cut links, were sent on closed links, arrived after the receiver closed the link. */
  readonly #entryFate = new Map<string, { dropped: number; cut: number; closed: number; ignored: number }>();
  readonly #violations: string[] = [];
  readonly #sentByType = new Map<string, number>();
  readonly #droppedByType = new Map<string, number>();
  readonly #cutByType = new Map<string, number>();
  readonly #closedByType = new Map<string, number>();
  readonly #ignoredByType = new Map<string, number>();
  readonly #counts = zeroCounts();
  readonly #trace: string[] = [];
  readonly #traceLevel: number;
  readonly #faultPhaseMs: number;
  readonly #livenessBoundMs: number;
  readonly #topology: string;
  /** Write workload: keys are drawn from a window that moves, so that fresh keys see concurrent writes. */
  readonly #writeEveryMs: number;
  readonly #keysPerWindow: number;
  readonly #keyWindowMs: number;
  readonly #addPeerEveryMs: number;
  #convergedAt: number | null = null;
  #requestId = 1;
  /** An exception thrown by an async step (a start, a hook of the disk side): it fails the run. */
  #failure: unknown = null;

  constructor(seed: number, options: SimOptions) {
    this.#seed = seed;
    this.#options = options;
    this.#traceLevel = options.trace ?? 0;
    const master = new Rng(seed);
    this.#setupRng = master.fork();
    this.#netRng = master.fork();
    this.#faultRng = master.fork();
    this.#workRng = master.fork();
    this.#nodeRng = master.fork();
    this.#authRng = master.fork();
    this.#diskRng = master.fork();
    this.#clockRng = master.fork();
    const rng = this.#setupRng;

    // Everything is drawn whatever the options, so that an override changes only what it overrides.
    const n = rng.int(3, 7);
    const kind = rng.pick<TopologyKind>(['line', 'ring', 'star', 'full', 'random', 'random']);
    const drawn: FaultProfile = {
      loss: rng.chance(0.5) ? rng.pick([0.002, 0.01, 0.03, 0.1]) : 0,
      duplication: rng.chance(0.35) ? rng.pick([0.01, 0.05, 0.2]) : 0,
      reorder: rng.chance(0.2),
      partitionEveryMs: rng.chance(0.6) ? rng.int(2_000, 12_000) : 0,
      crashEveryMs: rng.chance(0.6) ? rng.int(2_000, 12_000) : 0,
      diskLoss: rng.pick([0, 0.25, 0.5]),
      resetEveryMs: rng.chance(0.4) ? rng.int(1_000, 8_000) : 0,
      clockSkewMs: rng.chance(0.5) ? rng.int(1, 2_000) : 0,
      silentPartitions: rng.pick([0, 0.5, 1]),
      pauseEveryMs: rng.chance(0.3) ? rng.int(3_000, 15_000) : 0,
      antiEntropy: true,
      peerExchange: !rng.chance(0.3),
      secrets: false,
      syncFailure: 0,
      writebackLoss: false,
      readBitFlip: 0,
      diskFullEveryMs: 0,
      tornWrites: false,
      syncMs: 0,
      backlogBytes: 0,
      clockJumpEveryMs: 0,
    };
    const noAntiEntropy = rng.chance(0.3);
    const faultPhaseMs = rng.int(FAULT_PHASE_MS[0], FAULT_PHASE_MS[1]);
    const maxLatency = rng.pick([2, 10, 50, 200]);
    this.#jitterMs = rng.pick([0, 5, 30]);
    this.#writeEveryMs = rng.int(50, 400);
    this.#keysPerWindow = rng.int(1, 8);
    this.#keyWindowMs = rng.int(500, 5_000);
    this.#addPeerEveryMs = rng.chance(0.3) ? rng.int(2_000, 10_000) : 0;

    if (noAntiEntropy && (options.faults?.loss ?? drawn.loss) === 0 && !(options.faults?.reorder ?? drawn.reorder)) drawn.antiEntropy = false;
    drawn.secrets = this.#authRng.chance(0.5);
    const disk = this.#diskRng;
    drawn.syncFailure = disk.chance(0.3) ? disk.pick([0.001, 0.01, 0.05]) : 0;
    // From a stream of its own, so that every other draw of a seed stays what it was before it was drawn.
    drawn.writebackLoss = master.fork().chance(0.5);
    drawn.readBitFlip = disk.chance(0.2) ? disk.pick([0.01, 0.05]) : 0;
    drawn.diskFullEveryMs = disk.chance(0.25) ? disk.int(3_000, 15_000) : 0;
    drawn.tornWrites = disk.chance(0.7);
    drawn.syncMs = disk.pick([0, 1, 5, 20]);
    drawn.backlogBytes = disk.chance(0.3) ? disk.int(2_000, 30_000) : 0;
    drawn.clockJumpEveryMs = this.#clockRng.chance(0.3) ? this.#clockRng.int(2_000, 15_000) : 0;
    this.#profile = { ...drawn, ...options.faults };
    this.#link = { loss: this.#profile.loss, duplication: this.#profile.duplication, reorder: this.#profile.reorder };
    this.#faultPhaseMs = options.faultPhaseMs ?? faultPhaseMs;
    this.#livenessBoundMs = options.livenessBoundMs ?? LIVENESS_BOUND_MS;
    const count = options.nodes ?? n;
    const topologyKind = options.topology ?? kind;

    for (let i = 0; i < count; i++) {
      this.#latency.push([]);
      for (let j = 0; j < count; j++) this.#latency[i]![j] = j < i ? this.#latency[j]![i]! : rng.int(1, maxLatency);
    }
    const { edges, dials } = makeTopology(rng, count, topologyKind);
    const peers: string[][] = Array.from({ length: count }, () => []);
    for (const [from, to] of dials) peers[from]!.push(addressOf(to));
    for (let i = 0; i < count; i++) {
      const slot: Slot = {
        index: i, address: addressOf(i), configPeers: peers[i]!, id: `n${i}`, generation: 0, node: null, incarnation: 0,
        disk: new MachineDisk(this.#profile, { random: () => this.#diskRng.next(), later: (fs, delayMs, run) => this.#diskLater(slot, fs, delayMs, run) }),
        pipeline: null, durable: new Map(), persisted: new Map(), conns: new Set(), client: null, down: 'never-started', wallOffsetMs: 0, paused: false, held: [],
        readingPaused: false, unread: [],
      };
      this.#slots.push(slot);
      this.#byAddress.set(slot.address, slot);
    }
    this.#topology = `${topologyKind} ${edges.map(([a, b]) => `${a}-${b}`).join(',')}; dials ${dials.map(([a, b]) => `${a}>${b}`).join(',')}`;
    this.#counts.nodes = count;
  }

  get setup(): string {
    const p = this.#profile;
    const faults = [
      p.loss > 0 ? `loss ${p.loss * 100}%` : '',
      p.duplication > 0 ? `duplication ${p.duplication * 100}%` : '',
      p.reorder ? 'reorder' : '',
      p.partitionEveryMs > 0 ? `partitions ~${p.partitionEveryMs} ms` : '',
      p.crashEveryMs > 0 ? `crashes ~${p.crashEveryMs} ms (disk loss ${p.diskLoss * 100}%)` : '',
      p.partitionEveryMs > 0 && p.silentPartitions > 0 ? `${p.silentPartitions * 100}% of partitions silent` : '',
      p.resetEveryMs > 0 ? `link resets ~${p.resetEveryMs} ms` : '',
      p.pauseEveryMs > 0 ? `pauses ~${p.pauseEveryMs} ms` : '',
      p.antiEntropy ? '' : 'NO anti-entropy',
      p.peerExchange ? '' : 'no peer exchange',
      p.secrets ? 'authenticated links' : '',
      p.clockSkewMs > 0 ? `clock skew ±${p.clockSkewMs} ms` : '',
      p.clockJumpEveryMs > 0 ? `wall clock steps ~${p.clockJumpEveryMs} ms` : '',
      p.syncFailure > 0 ? `failed fsyncs ${p.syncFailure * 100}%${p.writebackLoss ? ' (losing their writeback)' : ''}` : '',
      p.readBitFlip > 0 ? `bits flipped on ${p.readBitFlip * 100}% of reads` : '',
      p.diskFullEveryMs > 0 ? `a disk full ~${p.diskFullEveryMs} ms` : '',
      p.crashEveryMs > 0 && p.tornWrites ? 'torn writes' : '',
      p.backlogBytes > 0 ? `backlog bound ${p.backlogBytes} bytes` : '',
    ].filter((s) => s !== '');
    return (
      `${this.#slots.length} nodes, ${this.#topology}; faults: ${faults.length > 0 ? faults.join(', ') : 'none'}; ` +
      `fault phase ${this.#faultPhaseMs} ms, a write every ~${this.#writeEveryMs} ms on ${this.#keysPerWindow} fresh keys per ${this.#keyWindowMs} ms, fsync ${this.#profile.syncMs} ms`
    );
  }

  async run(): Promise<SimResult> {
    const started = performance.now();
    this.#log(1, `seed ${this.#seed}: ${this.setup}`);
    let failure: string | null = null;
    try {
      this.#schedule();
      await settled();
      while (this.#phase !== 'done') {
        const event = this.#queue.pop();
        if (event === undefined) break;
        this.#now = event.at;
        event.run();
        // The storage's promise chains that this event started or resumed run to their next wait (an fsync, a timer) before the next event.
        await settled();
        if (this.#failure !== null) throw this.#failure;
        if (this.#counts.framesSent > MAX_FRAMES) {
          failure = `message storm: ${this.#counts.framesSent} frames sent by ${this.#time()}, ${this.#counts.protocolErrors} of them errors (by type: ${this.#topTypes()}); stopped`;
          this.#log(1, failure);
          break;
        }
      }
    } catch (error) {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      failure = `exception at ${this.#time()}: ${text}`;
      this.#log(1, failure);
    }
    this.#counts.simulatedMs = this.#now;
    this.#counts.runs = 1;
    for (const slot of this.#slots) {
      this.#counts.syncFailures += slot.disk.struck.syncFailure;
      this.#counts.readBitFlips += slot.disk.struck.readBitFlip;
    }
    const failures: string[] = [...this.#violations];
    if (failure !== null) failures.push(failure);
    const stores = new Map<string, Entry[]>();
    for (const slot of this.#slots) {
      if (slot.node === null) continue;
      stores.set(slot.id, sortedEntries(slot.node));
    }
    if (failure === null) {
      if (stores.size !== this.#slots.length) failures.push(`only ${stores.size} of ${this.#slots.length} nodes are up at the end`);
      if (this.#convergedAt === null) failures.push(`no convergence within ${this.#livenessBoundMs} ms of simulated time after the faults stopped`);
      const found = checkStores(stores, this.#acked, this.#written, (entry) => this.#explain(entry));
      failures.push(...found);
      if (found.length > 0 || this.#convergedAt === null) failures.push(this.#networkNote());
    }
    const convergedAfterMs = this.#convergedAt === null ? null : this.#convergedAt - this.#faultPhaseMs;
    if (convergedAfterMs !== null) {
      this.#counts.converged = 1;
      this.#counts.convergenceMs = convergedAfterMs;
    }
    const fingerprint = hash([...stores].map(([id, entries]) => `${id}:${storeText(entries)}`).join('\n') + JSON.stringify(this.#counts));
    return {
      seed: this.#seed, ok: failures.length === 0, failures, setup: this.setup, convergedAfterMs, counts: this.#counts, fingerprint,
      trace: this.#trace, wallMs: performance.now() - started,
    };
  }

  // --- schedule -------------------------------------------------------------

  #schedule(): void {
    // Machines boot within the first second, in any order.
    for (const slot of this.#slots) {
      const bootAt = this.#setupRng.int(0, 1_000);
      this.#at(bootAt, () => this.#boot(slot));
      const phase = this.#setupRng.int(0, TICK_MS - 1);
      const tick = () => {
        if (slot.node !== null && !slot.paused) {
          slot.node.tick();
          this.#drain(slot);
        }
        this.#at(this.#now + TICK_MS, tick);
      };
      this.#at(phase, tick);
    }
    this.#at(this.#workRng.exp(this.#writeEveryMs), () => this.#write());
    if (this.#addPeerEveryMs > 0) this.#at(this.#workRng.exp(this.#addPeerEveryMs), () => this.#addPeer());
    const p = this.#profile;
    if (p.partitionEveryMs > 0) this.#at(this.#faultRng.exp(p.partitionEveryMs), () => this.#partitionStart());
    if (p.crashEveryMs > 0) this.#at(this.#faultRng.exp(p.crashEveryMs), () => this.#crash());
    if (p.resetEveryMs > 0) this.#at(this.#faultRng.exp(p.resetEveryMs), () => this.#reset());
    if (p.pauseEveryMs > 0) this.#at(this.#faultRng.exp(p.pauseEveryMs), () => this.#pause());
    if (p.diskFullEveryMs > 0) this.#at(this.#diskRng.exp(p.diskFullEveryMs), () => this.#diskFull());
    if (p.clockJumpEveryMs > 0) this.#at(this.#clockRng.exp(p.clockJumpEveryMs), () => this.#clockJump());
    this.#at(this.#faultPhaseMs, () => this.#startLiveness());
  }

  #at(at: number, run: () => void): void {
    this.#queue.push(at, run);
  }

  #startLiveness(): void {
    this.#phase = 'liveness';
    this.#log(1, 'faults stop: liveness phase');
    this.#link = { loss: 0, duplication: 0, reorder: false };
    if (this.#partition !== null) this.#heal();
    for (const slot of this.#slots) slot.disk.heal();
    for (const slot of this.#slots) if (slot.paused) this.#resume(slot);
    for (const slot of this.#slots) if (slot.node === null) this.#boot(slot);
    const deadline = this.#faultPhaseMs + this.#livenessBoundMs;
    const check = () => {
      if (this.#converged()) {
        this.#convergedAt = this.#now;
        this.#phase = 'done';
        this.#log(1, `every node holds the identical store (${this.#slots[0]!.node!.keys().length} keys), ${this.#now - this.#faultPhaseMs} ms after the faults stopped`);
        return;
      }
      if (this.#now >= deadline) {
        this.#phase = 'done';
        this.#log(1, 'liveness bound reached without convergence');
        return;
      }
      this.#at(this.#now + TICK_MS, check);
    };
    this.#at(this.#now, check);
  }

  /** Every node up and holding the same entries (compared in place: this runs every tick of the liveness phase). */
  #converged(): boolean {
    const nodes: BbyNode[] = [];
    for (const slot of this.#slots) {
      if (slot.node === null) return false;
      nodes.push(slot.node);
    }
    const [first, ...rest] = nodes;
    let count = 0;
    for (const entry of first!.entries()) {
      count++;
      for (const node of rest) {
        const other = node.entry(entry.key);
        if (other === undefined || compareEntries(other, entry) !== 0) return false;
      }
    }
    return rest.every((node) => node.stats().keys === count);
  }

  // --- nodes ----------------------------------------------------------------

  #boot(slot: Slot): void {
    if (slot.node !== null || slot.down === 'starting') return;
    const restart = slot.down === 'crashed';
    slot.down = 'starting';
    const incarnation = this.#nextIncarnation++;
    slot.incarnation = incarnation;
    // Drawn now, in event order, whatever the disk makes of the start.
    const skew = this.#profile.clockSkewMs > 0 ? this.#nodeRng.int(-this.#profile.clockSkewMs, this.#profile.clockSkewMs) : 0;
    slot.wallOffsetMs = skew;
    const random = seededRandom(Math.floor(this.#nodeRng.next() * 4294967296));
    const epoch = Math.floor(this.#nodeRng.next() * 2 ** 48).toString(36).padStart(10, '0');
    const randomBytes = this.#profile.secrets ? randomBytesFrom(seededRandom(this.#authRng.int(0, 2 ** 31))) : undefined;
    this.#guard(this.#start(slot, incarnation, { restart, skew, random, epoch, randomBytes }));
  }

  /** Recovers the data folder as bby-node does, then starts the node on it; a start that fails is tried again later. */
  async #start(slot: Slot, incarnation: number, drawn: { restart: boolean; skew: number; random: () => number; epoch: string; randomBytes: ((size: number) => Uint8Array) | undefined }): Promise<void> {
    let persistence: Persistence;
    try {
      // A new epoch (a blank disk, or one the epoch rule does not keep) is the seed's, not nanoid's.
      persistence = await Persistence.recover({
        dir: DATA_DIR, fs: slot.disk.fs, fsync: 'always', id: slot.id, source: `${slot.id}'s config`, scheduler: this.#scheduler(slot, incarnation), newId: () => drawn.epoch,
      });
    } catch (error) {
      if (!(error instanceof DataDirError)) throw error;
      this.#counts.failedStarts++;
      this.#log(1, `${slot.id} cannot start: ${error.message}; starting again in ${RESTART_AFTER_FAILED_START_MS} ms`);
      slot.down = drawn.restart ? 'crashed' : 'never-started';
      this.#at(this.#now + RESTART_AFTER_FAILED_START_MS, () => this.#boot(slot));
      return;
    }
    const recovered = persistence.recovered;
    const peers = [...slot.configPeers, ...recovered.addedPeers.filter((a) => !slot.configPeers.includes(a))];
    const node = createNode({
      id: recovered.id,
      address: slot.address,
      peers,
      now: () => START_MS + this.#now + slot.wallOffsetMs,
      monotonic: () => this.#now,
      random: drawn.random,
      epoch: recovered.epoch,
      changes: recovered.changes,
      cursors: recovered.cursors,
      ...(this.#profile.antiEntropy ? {} : { timing: { antiEntropyIntervalMs: NO_ANTI_ENTROPY_MS } }),
      peerExchange: this.#profile.peerExchange,
      ...(this.#options.batchLength === undefined ? {} : { batchLength: this.#options.batchLength }),
      ...(drawn.randomBytes === undefined ? {} : { secrets: [SIM_SECRET], randomBytes: drawn.randomBytes }),
    });
    const alive = () => slot.incarnation === incarnation && slot.node === node;
    const backlog = this.#profile.backlogBytes > 0 ? { pauseAboveBytes: this.#profile.backlogBytes, resumeBelowBytes: Math.floor(this.#profile.backlogBytes / 4) } : undefined;
    slot.pipeline = new DiskPipeline(node, persistence, {
      backlog,
      unsafeReleaseBeforeDurable: this.#options.unsafeReleaseBeforeDurable === true,
      unsafeReleaseFailedAsKept: this.#options.unsafeReleaseFailedAsKept === true,
      hooks: {
        release: (ready) => alive() && this.#release(slot, ready),
        reading: (state) => alive() && this.#reading(slot, state),
        wake: () => this.#at(this.#now, () => alive() && this.#whenRunning(slot, () => alive() && this.#drain(slot))),
        log: (level, message, details) => {
          if (!alive()) return;
          if (details?.event === 'storage-failed') this.#counts.storageFailures++;
          this.#log(level === 'warn' ? 1 : 2, `${slot.id} ${level}: ${message}`);
        },
      },
    });
    slot.node = node;
    slot.down = null;
    slot.durable = new Map(recovered.changes.map(({ entry }) => [entry.key, entry]));
    slot.persisted = new Map(slot.durable);
    if (drawn.restart) this.#counts.restarts++;
    const cursors = Object.keys(recovered.cursors).length;
    const notes = recovered.notes.length > 0 ? `; recovery: ${recovered.notes.join('; ')}` : '';
    this.#log(1, `${drawn.restart ? 'restart' : 'start'} ${slot.id} at ${slot.address} with ${recovered.changes.length} stored entries, epoch ${node.epoch}${cursors > 0 ? `, ${cursors} cursors` : ''}${drawn.skew !== 0 ? `, clock ${drawn.skew > 0 ? '+' : ''}${drawn.skew} ms` : ''}${notes}`);
    this.#drain(slot);
  }

  /** Timers of a node's disk side on simulated time: they run while its instance lives, after a pause ends (as Node.js timers). */
  #scheduler(slot: Slot, incarnation: number): Scheduler {
    return {
      after: (delayMs, run) => {
        let cancelled = false;
        this.#at(this.#now + delayMs, () => {
          if (cancelled || slot.incarnation !== incarnation) return;
          this.#whenRunning(slot, () => !cancelled && slot.incarnation === incarnation && run());
        });
        return () => {
          cancelled = true;
        };
      },
    };
  }

  /** An fsync of this disk ends `delayMs` from now; the process sees it once it runs (not while paused). A crashed disk's fsyncs never end. */
  #diskLater(slot: Slot, fs: unknown, delayMs: number, run: () => void): void {
    this.#at(this.#now + delayMs, () => {
      if (slot.disk.fs !== fs) return;
      this.#whenRunning(slot, () => slot.disk.fs === fs && run());
    });
  }

  /** Runs an async step of the simulation; an exception in it fails the run (at the next event). */
  #guard(work: Promise<void>): void {
    work.catch((error: unknown) => {
      this.#failure ??= error;
    });
  }

  #alive(end: End): boolean {
    return end.slot.node !== null && end.slot.incarnation === end.incarnation;
  }

  /** The network's view of a node's link (network.ts `Port`). */
  #end(slot: Slot, link: LinkId): End {
    const incarnation = slot.incarnation;
    const end: End = {
      key: `${incarnation}:${link}`,
      slot,
      incarnation,
      link,
      alive: () => this.#alive(end),
      whenRunning: (fn) => this.#whenRunning(slot, fn),
      // Not reading (durability backlog): the frame waits in the socket, in order.
      holdsFrame: (deliver) => {
        if (!slot.readingPaused && slot.unread.length === 0) return false;
        slot.unread.push(deliver);
        return true;
      },
      holdsWritten: () => false,
      opened: () => {
        slot.node!.opened(link);
        this.#drain(slot);
      },
      closed: (reason) => {
        slot.node!.closed(link, reason);
        this.#drain(slot);
      },
      receive: (text) => {
        slot.node!.receive(link, text);
        this.#drain(slot);
      },
      written: (bytes) => {
        slot.node!.written(link, bytes);
        this.#drain(slot);
      },
      attached: (conn) => slot.conns.add(conn as Conn),
      detached: (conn) => slot.conns.delete(conn as Conn),
    };
    return end;
  }

  /** Hands a node's batches to its disk side, which releases them (#release) once they may go out. */
  #drain(slot: Slot): void {
    const node = slot.node;
    if (node === null) return;
    for (let ready = node.takeReady(); !isEmptyReady(ready); ready = node.takeReady()) this.#submit(slot, ready);
  }

  #submit(slot: Slot, ready: Ready): void {
    for (const { entry } of ready.persist) this.#checkPersist(slot, entry);
    slot.pipeline!.submit(ready);
  }

  /** A batch the disk side released: its changes are durable (unless a test-only unsafe option is on); its socket side is carried out now. */
  #release(slot: Slot, ready: Ready): void {
    for (const { entry } of ready.persist) slot.durable.set(entry.key, entry);
    carryOut(ready, this.#handlers(slot));
  }

  /** The socket side of a released batch, as bby-node's node-server.ts carries it out. */
  #handlers(slot: Slot): ReadyHandlers {
    return {
      // The disk side made these durable, and saved these peers and cursors, before it released the batch.
      persist: () => undefined,
      peers: () => undefined,
      cursors: () => undefined,
      dials: (dials) => {
        for (const { link, address } of dials) this.#dial(slot, link, address);
      },
      messages: (sends) => this.#sendAll(slot, sends),
      // The core holds the frames of a paused client itself; simulated sockets have no read buffer to stop.
      flow: () => undefined,
      closes: (closes) => {
        for (const { link, code, reason } of closes) this.#close(slot, link, code, reason);
      },
      logs: (logs) => {
        for (const { level, message } of logs) this.#log(2, `${slot.id} ${level}: ${message}`);
      },
    };
  }

  /** Sends a batch's frames; ws calls back once per send, so one report per link and batch says the same (writes finish in order). */
  #sendAll(slot: Slot, sends: readonly SendEffect[]): void {
    const written = new Map<LinkId, number>();
    for (const { link, message, bytes } of sends) {
      this.#send(slot, link, message);
      written.set(link, (written.get(link) ?? 0) + bytes);
    }
    for (const [link, bytes] of written) this.#writtenSoon(slot, link, bytes);
  }

  /** The disk side stops or starts the reading of every link of a node (the backlog of changes waiting for durability crossed a bound). */
  #reading(slot: Slot, state: 'pause' | 'resume'): void {
    this.#log(2, `${slot.id} ${state === 'pause' ? 'stops' : 'starts'} reading its links (durability backlog)`);
    slot.readingPaused = state === 'pause';
    if (state === 'resume') this.#at(this.#now, () => this.#readUnread(slot, slot.incarnation));
  }

  #readUnread(slot: Slot, incarnation: number): void {
    if (slot.incarnation !== incarnation) return;
    for (const fn of slot.unread.splice(0)) fn();
  }

  /** A node asks to persist an entry: one a client wrote, never one that loses to the entry it persisted before for that key. */
  #checkPersist(slot: Slot, entry: Entry): void {
    if (!this.#written.has(entryId(entry))) this.#violate(`${slot.id} persisted ${entry.key}=${showEntry(entry)}, which no client wrote`);
    const before = slot.persisted.get(entry.key);
    if (before !== undefined && compareEntries(entry, before) > 0) {
      this.#violate(`${slot.id} persisted ${entry.key}=${showEntry(entry)} over the older ${showEntry(before)} (a stored entry must only move to an older write)`);
      return;
    }
    slot.persisted.set(entry.key, entry);
  }

  #violate(text: string): void {
    if (this.#violations.length < 20) this.#violations.push(`at ${this.#time()}: ${text}`);
    this.#log(1, `VIOLATION ${text}`);
  }

  // --- the network (network.ts carries it; the faults are added here) --------

  #pairLatency(a: Slot, b: Slot): number {
    return this.#latency[a.index]![b.index]! + (this.#jitterMs > 0 ? Math.floor(this.#netRng.next() * (this.#jitterMs + 1)) : 0);
  }

  #connLatency(conn: Conn): number {
    return this.#pairLatency(conn.dialer.slot, conn.acceptor?.slot ?? conn.dialer.slot);
  }

  #partitioned(a: Slot, b: Slot): boolean {
    return this.#partition !== null && this.#partition.groups[a.index] !== this.#partition.groups[b.index];
  }

  /** Runs `fn` now, or, while the node is paused, when it resumes (in arrival order). */
  #whenRunning(slot: Slot, fn: () => void): void {
    if (slot.paused) slot.held.push(fn);
    else fn();
  }

  /** A silent partition between the ends holds a frame until the heal (TCP retransmits). */
  #heldUntil(conn: Conn, dir: Direction): number | null {
    const partition = this.#partition;
    if (partition === null || !partition.silent || conn.acceptor === null || !this.#partitioned(conn.dialer.slot, conn.acceptor.slot)) return null;
    conn.data.faults[dir].held = true;
    return partition.healAt;
  }

  #dial(slot: Slot, link: LinkId, address: string): void {
    this.#counts.dials++;
    const target = this.#byAddress.get(address);
    const data: ConnData = { client: false, faults: noFaults(), paused: slot.paused, refusedByDisk: new Set() };
    this.#net.dial(this.#end(slot, link), data, this.#now + this.#pairLatency(slot, target ?? slot), () => `${slot.id} dials ${address}`, (conn) => this.#connectArrives(conn, target, address));
  }

  #connectArrives(conn: Conn, target: Slot | undefined, address: string): void {
    if (conn.state !== 'connecting') return; // the dialer gave up meanwhile
    const dialer = conn.dialer;
    if (!this.#alive(dialer)) {
      this.#net.drop(conn);
      return;
    }
    if (target === undefined || target.node === null || this.#partitioned(dialer.slot, target)) {
      const why = target === undefined ? 'no such host' : target.node === null ? 'node down' : 'partitioned';
      // Across a silent partition nothing comes back; otherwise the dial is refused or left unanswered.
      const silent = target !== undefined && target.node !== null && this.#partition!.silent;
      if (!silent && (target === undefined || this.#netRng.chance(0.5))) {
        this.#counts.refusedDials++;
        this.#log(2, `${dialer.slot.id} dials ${address}: refused (${why})`);
        this.#net.refuse(conn, target?.node === null || target === undefined ? 'ECONNREFUSED' : 'EHOSTUNREACH', this.#now + this.#pairLatency(dialer.slot, target ?? dialer.slot));
      } else {
        this.#counts.timedOutDials++;
        this.#log(2, `${dialer.slot.id} dials ${address}: no answer (${why})`);
        this.#net.blackhole(conn);
      }
      return;
    }
    if (target.paused) {
      // The kernel takes the connection, the stopped process answers the upgrade when it resumes.
      target.held.push(() => this.#connectArrives(conn, target, address));
      return;
    }
    const accepted = target.node.accept();
    if (conn.dialer.slot.paused) conn.data.paused = true;
    // The dialer hears that the socket is open one trip later, behind what the acceptor sends at once.
    this.#net.accept(conn, this.#end(target, accepted), () => {
      this.#counts.connects++;
      this.#log(2, `${dialer.slot.id} connected to ${target.id} (conn ${conn.id})`);
      this.#drain(target);
    });
  }

  #send(slot: Slot, link: LinkId, message: Message): void {
    // A client's link is never closing: its close takes it down at once.
    const found = this.#net.sender(`${slot.incarnation}:${link}`);
    if (found === undefined) {
      this.#counts.sentOnClosed++;
      this.#noteLost(message, 'closed');
      return;
    }
    const { connection: conn, dir } = found;
    if (conn.data.client) return this.#clientReceives(slot, conn, message);
    this.#counts.framesSent++;
    this.#sentByType.set(message.type, (this.#sentByType.get(message.type) ?? 0) + 1);
    if (message.type === 'error') this.#peerError(slot, conn, dir, message);
    if (this.#netRng.chance(this.#link.loss)) {
      this.#counts.dropped++;
      conn.data.faults[dir].dropped.add(message.type);
      this.#noteLost(message, 'dropped');
      this.#log(2, `lost: ${slot.id} > ${message.type}`);
      return;
    }
    const text = encodeMessage(message);
    this.#transmit(conn, dir, message, text);
    if (this.#netRng.chance(this.#link.duplication)) {
      this.#counts.duplicated++;
      conn.data.faults[dir].duplicated.add(message.type);
      this.#transmit(conn, dir, message, text);
    }
  }

  /** Counts an error frame a node sends a peer by its class, or fails the run: see peer-errors.ts. */
  #peerError(slot: Slot, conn: Conn, dir: Direction, error: Extract<Message, { type: 'error' }>): void {
    this.#counts.protocolErrors++;
    const faults: ErrorContext = { toSender: conn.data.faults[dir === 0 ? 1 : 0], fromSender: conn.data.faults[dir], paused: conn.data.paused,
      senderCannotWrite: slot.node?.status().storageFailure != null, senderRefusedLink: conn.data.refusedByDisk.has(dir),
    };
    const peer = conn.to(dir).slot.id;
    const found = classifyPeerError(error, faults);
    if ('unexpected' in found) {
      this.#violate(`${slot.id} sent ${peer} an unexpected error frame ${JSON.stringify(error)}: ${found.unexpected}`);
      return;
    }
    const name = found.expected.name;
    if (error.code === 'STORAGE_FAILED') conn.data.refusedByDisk.add(dir);
    this.#counts.peerErrorsByClass[name] = (this.#counts.peerErrorsByClass[name] ?? 0) + 1;
    this.#log(2, `${slot.id} sends ${peer} an error (${name}; link faults: ${describeFaults(faults)}): ${JSON.stringify(error)}`);
  }

  /** Reports frames written out a moment after they were sent, as `ws` calls back once a send is done. */
  #writtenSoon(slot: Slot, link: LinkId, bytes: number): void {
    this.#net.written(this.#end(slot, link), bytes, this.#now + 1);
  }

  #noteLost(message: Message, how: 'dropped' | 'cut' | 'closed' | 'ignored'): void {
    const byType = { dropped: this.#droppedByType, cut: this.#cutByType, closed: this.#closedByType, ignored: this.#ignoredByType }[how];
    byType.set(message.type, (byType.get(message.type) ?? 0) + 1);
    if (message.type !== 'entries') return;
    for (const entry of message.entries) {
      const id = entryId(entry);
      const fate = this.#entryFate.get(id) ?? { dropped: 0, cut: 0, closed: 0, ignored: 0 };
      fate[how]++;
      this.#entryFate.set(id, fate);
    }
  }

  #transmit(conn: Conn, dir: Direction, message: Message, text: string): void {
    const fate = {
      lost: () => {
        this.#counts.lostInFlight++;
        this.#noteLost(message, 'cut');
      },
      delivering: () => {
        this.#counts.framesDelivered++;
        // The receiver closed this link already: the core drops what still arrives on it.
        if (conn.closingFrom === 1 - dir) this.#noteLost(message, 'ignored');
        if (this.#traceLevel >= 3) this.#log(3, `${conn.from(dir).slot.id} > ${conn.to(dir).slot.id}: ${text.length > 300 ? `${text.slice(0, 300)}...` : text}`);
      },
    };
    this.#net.transmit(conn, dir, text, !this.#link.reorder, fate, () => `${conn.from(dir).slot.id} sends ${text.slice(0, 120)}`);
  }

  #close(slot: Slot, link: LinkId, code: number, reason: string): void {
    if (this.#net.close(this.#end(slot, link), `closed with code ${code}: ${reason}`)) this.#counts.closes++;
  }

  /** Cuts a link abruptly: frames in flight are lost, surviving ends hear it one trip later. */
  #cut(conn: Conn, reason: string): void {
    if (this.#net.cut(conn, reason)) this.#counts.cuts++;
  }

  // --- faults ---------------------------------------------------------------

  #partitionStart(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#faultRng;
    const n = this.#slots.length;
    let groups: number[];
    if (rng.chance(0.4)) {
      const alone = rng.int(0, n - 1);
      groups = this.#slots.map((s) => (s.index === alone ? 1 : 0));
    } else {
      const k = n >= 4 && rng.chance(0.3) ? 3 : 2;
      do groups = this.#slots.map(() => rng.int(0, k - 1));
      while (new Set(groups).size < 2);
    }
    const silent = rng.chance(this.#profile.silentPartitions);
    const lasts = rng.int(300, 10_000);
    const partition = { groups, silent, healAt: Math.min(this.#now + lasts, this.#faultPhaseMs) };
    this.#partition = partition;
    this.#counts.partitions++;
    if (silent) this.#counts.silentPartitions++;
    const sides = [...new Set(groups)].sort().map((g) => `{${this.#slots.filter((s) => groups[s.index] === g).map((s) => s.id).join(',')}}`);
    this.#log(1, `${silent ? 'silent ' : ''}partition ${sides.join(' | ')} for ${lasts} ms`);
    if (!silent) {
      for (const conn of this.#openConns()) {
        if (this.#partitioned(conn.dialer.slot, conn.acceptor!.slot)) this.#cut(conn, 'ETIMEDOUT (partition)');
      }
    }
    this.#at(partition.healAt, () => {
      if (this.#partition !== partition) return;
      this.#heal();
      if (this.#phase === 'fault') this.#at(this.#now + rng.exp(this.#profile.partitionEveryMs), () => this.#partitionStart());
    });
  }

  #heal(): void {
    this.#partition = null;
    this.#log(1, 'partition heals');
  }

  /** SIGSTOP one running node for a while, then SIGCONT. */
  #pause(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#faultRng;
    const running = this.#slots.filter((s) => s.node !== null && !s.paused);
    if (running.length > 0) {
      const slot = rng.pick(running);
      const lasts = rng.int(200, 8_000);
      const resumeAt = Math.min(this.#now + lasts, this.#faultPhaseMs);
      const incarnation = slot.incarnation;
      slot.paused = true;
      for (const conn of slot.conns) conn.data.paused = true;
      this.#counts.pauses++;
      this.#log(1, `pause ${slot.id} for ${resumeAt - this.#now} ms`);
      this.#at(resumeAt, () => {
        if (slot.incarnation !== incarnation || !slot.paused) return;
        this.#resume(slot);
      });
    }
    this.#at(this.#now + rng.exp(this.#profile.pauseEveryMs), () => this.#pause());
  }

  #resume(slot: Slot): void {
    slot.paused = false;
    this.#log(1, `resume ${slot.id} (${slot.held.length} events waiting)`);
    // As in Node.js after SIGCONT: timers run first, then the I/O that piled up.
    if (slot.node !== null) {
      slot.node.tick();
      this.#drain(slot);
    }
    for (const fn of slot.held.splice(0)) fn();
  }

  /** Open links between nodes, in a deterministic order. */
  #openConns(): Conn[] {
    const seen = new Set<Conn>();
    for (const slot of this.#slots) for (const conn of slot.conns) if (!conn.data.client && conn.acceptor !== null && conn.carries) seen.add(conn);
    return [...seen].sort((a, b) => a.id - b.id);
  }

  #reset(): void {
    if (this.#phase !== 'fault') return;
    const conns = this.#openConns();
    if (conns.length > 0) {
      const conn = this.#faultRng.pick(conns);
      this.#counts.linkResets++;
      this.#log(1, `reset link ${conn.dialer.slot.id}>${conn.acceptor!.slot.id}`);
      this.#cut(conn, 'ECONNRESET');
    }
    this.#at(this.#now + this.#faultRng.exp(this.#profile.resetEveryMs), () => this.#reset());
  }

  #crash(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#faultRng;
    const up = this.#slots.filter((s) => s.node !== null);
    if (up.length >= 2) {
      const slot = rng.pick(up);
      const loseDisk = rng.chance(this.#profile.diskLoss);
      const newId = loseDisk && rng.chance(0.5);
      const downFor = rng.int(100, 8_000);
      const oldId = slot.id;
      slot.node = null;
      slot.pipeline?.stop();
      slot.pipeline = null;
      slot.down = 'crashed';
      slot.client = null;
      slot.paused = false;
      slot.held = [];
      slot.readingPaused = false;
      slot.unread = [];
      for (const conn of [...slot.conns]) this.#cut(conn, 'ECONNRESET (peer crashed)');
      // The disk keeps what it made durable (and, with torn writes, part of the rest), or is replaced.
      slot.disk.crash(!loseDisk);
      if (loseDisk) {
        this.#counts.crashesWithoutState++;
        slot.durable = new Map();
        if (newId) {
          this.#counts.newIds++;
          slot.generation++;
          slot.id = `n${slot.index}g${slot.generation}`;
        }
        this.#markLostWrites();
      } else {
        this.#counts.crashesWithState++;
      }
      this.#log(1, `crash ${oldId} ${loseDisk ? `losing its disk (comes back as ${slot.id})` : 'keeping its disk'}; down for ${downFor} ms`);
      this.#at(this.#now + downFor, () => {
        if (this.#phase === 'fault') this.#boot(slot);
      });
    }
    this.#at(this.#now + rng.exp(this.#profile.crashEveryMs), () => this.#crash());
  }

  /** After a disk is lost: an acknowledged write with no copy as old or older on any remaining disk is no longer required. */
  #markLostWrites(): void {
    for (const write of this.#acked) {
      if (write.lostWithDisk) continue;
      const kept = this.#slots.some((s) => {
        const stored = s.durable.get(write.key);
        return stored !== undefined && compareEntries(stored, write.entry) <= 0;
      });
      if (!kept) {
        write.lostWithDisk = true;
        this.#counts.writesLostWithDisk++;
        this.#log(1, `acked write ${write.key}=${showEntry(write.entry)} had no copy left but on lost disks`);
      }
    }
  }

  // --- clients --------------------------------------------------------------

  #write(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#workRng;
    const up = this.#slots.filter((s) => s.node !== null && !s.paused);
    if (up.length > 0) {
      const slot = rng.pick(up);
      const window = Math.floor(this.#now / this.#keyWindowMs);
      const index = rng.chance(0.85) ? window * this.#keysPerWindow + rng.int(0, this.#keysPerWindow - 1) : rng.int(0, (window + 1) * this.#keysPerWindow - 1);
      const key = `k${index}`;
      const value = rng.chance(0.2) ? 'same' : `${slot.id}.${this.#counts.writes}`;
      this.#counts.writes++;
      this.#request(slot, { type: 'set', key, value });
    }
    this.#at(this.#now + rng.exp(this.#writeEveryMs), () => this.#write());
  }

  /** The client of a machine sends a request over its link to the node (dialing it first if it has none). */
  #request(slot: Slot, frame: ClientRequest['frame']): void {
    const session = this.#clientSession(slot);
    const request: ClientRequest = { id: this.#requestId++, frame, session, atMs: this.#now, entry: undefined };
    this.#requests.set(request.id, request);
    if (session.auth.step === 'ready') this.#clientSends(slot, request);
    else session.queued.push(request);
    this.#drain(slot);
  }

  /** The client's open link to the node, or a new one (with a secret, the node's challenge comes first). */
  #clientSession(slot: Slot): ClientSession {
    if (slot.client !== null && slot.client.conn.state !== 'dead') return slot.client;
    const link = slot.node!.accept();
    const conn = this.#net.open(this.#end(slot, link), null, { client: true, faults: noFaults(), paused: false, refusedByDisk: new Set() });
    slot.client = { conn, auth: { step: this.#profile.secrets ? 'challenge' : 'ready' }, queued: [] };
    return slot.client;
  }

  /** The node reads a client's request; a `set` is a client write from here on (its entry may be persisted). */
  #clientSends(slot: Slot, request: ClientRequest): void {
    const { frame } = request;
    slot.node!.receive(request.session.conn.dialer.link, JSON.stringify({ ...frame, id: request.id }));
    if (frame.type !== 'set') return;
    request.entry = slot.node!.entry(frame.key);
    if (request.entry !== undefined) this.#written.add(entryId(request.entry));
  }

  /**
   * A frame the node sent its client, received at once (the client is on the
   * machine's loopback): a write is acknowledged when its client receives
   * `true`, whatever the node does next. Anything a client would not expect
   * is a violation.
   */
  #clientReceives(slot: Slot, conn: Conn, message: Message): void {
    const session = slot.client;
    if (session === null || session.conn !== conn) return this.#violate(`${slot.id} sent ${JSON.stringify(message)} on a client link the simulation does not know`);
    switch (message.type) {
      case 'challenge': {
        if (session.auth.step !== 'challenge') return this.#violate(`${slot.id} challenged its client twice: ${JSON.stringify(message)}`);
        const nonce = newNonce((size) => Uint8Array.from({ length: size }, () => this.#workRng.int(0, 255)));
        const transcript: AuthTranscript = { role: 'client', acceptorId: message.nodeId, initiatorId: '', acceptorNonce: message.nonce, initiatorNonce: nonce };
        session.auth = { step: 'proof', expected: authProof(SIM_SECRET, 'acceptor', transcript) };
        const auth = JSON.stringify({ type: 'auth', role: 'client', nonce, proof: authProof(SIM_SECRET, 'initiator', transcript) });
        return this.#clientLater(slot, session, () => slot.node!.receive(conn.dialer.link, auth));
      }
      case 'authenticated':
        if (session.auth.step !== 'proof' || session.auth.expected !== message.proof) return this.#violate(`${slot.id} sent its client a wrong or unasked proof: ${JSON.stringify(message)}`);
        session.auth = { step: 'ready' };
        return this.#clientLater(slot, session, () => {
          for (const request of session.queued.splice(0)) this.#clientSends(slot, request);
        });
      case 'reply':
      case 'error':
        return this.#answer(slot, session, message);
      default:
        return this.#violate(`${slot.id} sent its client a ${JSON.stringify(message.type)} frame: ${JSON.stringify(message)}`);
    }
  }

  /** What the client does in answer to a frame, as its next step (not within the node's own send); nothing once its link is gone. */
  #clientLater(slot: Slot, session: ClientSession, run: () => void): void {
    this.#at(this.#now, () =>
      this.#whenRunning(slot, () => {
        if (slot.client !== session || session.conn.state === 'dead' || !this.#alive(session.conn.dialer)) return;
        run();
        this.#drain(slot);
      }),
    );
  }

  /** The answer to a request: `true` acknowledges a write; `false` or STORAGE_FAILED refuses it; any other answer, or one to no request of this link, is a violation. */
  #answer(slot: Slot, session: ClientSession, message: Extract<Message, { type: 'reply' | 'error' }>): void {
    const request = message.id === null ? undefined : this.#requests.get(Number(message.id));
    if (request === undefined || request.session !== session) return this.#violate(`${slot.id} answered a request its client did not make: ${JSON.stringify(message)}`);
    this.#requests.delete(request.id);
    const { frame } = request;
    if (frame.type !== 'set') return;
    if (message.type === 'error') {
      if (message.code !== 'STORAGE_FAILED') return this.#violate(`${slot.id} refused the write ${frame.key}=${JSON.stringify(frame.value)} with ${JSON.stringify(message)}`);
      this.#counts.refused++;
      return;
    }
    if (message.result === false) {
      this.#counts.refused++;
      return;
    }
    const entry = request.entry;
    if (message.result !== true || entry === undefined) return this.#violate(`${slot.id} answered the write ${frame.key}=${JSON.stringify(frame.value)} with ${JSON.stringify(message)} (the key held ${showEntry(entry)})`);
    this.#counts.acked++;
    this.#acked.push({ key: frame.key, entry, node: slot.id, atMs: request.atMs, lostWithDisk: false });
  }

  /** One node's disk is full for a while (ENOSPC), then has room again. */
  #diskFull(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#diskRng;
    const up = this.#slots.filter((s) => s.node !== null && !s.disk.full);
    if (up.length > 0) {
      const slot = rng.pick(up);
      const lasts = rng.int(200, 6_000);
      const disk = slot.disk;
      disk.setFull(true);
      this.#counts.diskFulls++;
      this.#log(1, `the disk of ${slot.id} is full for ${lasts} ms`);
      this.#at(Math.min(this.#now + lasts, this.#faultPhaseMs), () => {
        if (!disk.full) return;
        disk.setFull(false);
        this.#log(1, `the disk of ${slot.id} has room again`);
      });
    }
    this.#at(this.#now + rng.exp(this.#profile.diskFullEveryMs), () => this.#diskFull());
  }

  /** One node's wall clock steps forwards or backwards (its monotonic clock, which its timers run on, does not). */
  #clockJump(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#clockRng;
    const up = this.#slots.filter((s) => s.node !== null);
    if (up.length > 0) {
      const slot = rng.pick(up);
      const offset = rng.int(-MAX_WALL_OFFSET_MS, MAX_WALL_OFFSET_MS);
      const step = offset - slot.wallOffsetMs;
      slot.wallOffsetMs = offset;
      this.#counts.clockJumps++;
      this.#log(1, `the wall clock of ${slot.id} steps ${step > 0 ? 'forwards' : 'backwards'} by ${Math.abs(step)} ms (now ${slot.wallOffsetMs > 0 ? '+' : ''}${slot.wallOffsetMs} ms)`);
    }
    this.#at(this.#now + rng.exp(this.#profile.clockJumpEveryMs), () => this.#clockJump());
  }

  /** A client asks a node to add a peer (another node's address), as `bby add-peer` does. */
  #addPeer(): void {
    if (this.#phase !== 'fault') return;
    const rng = this.#workRng;
    const up = this.#slots.filter((s) => s.node !== null && !s.paused);
    if (up.length > 0) {
      const slot = rng.pick(up);
      const other = rng.pick(this.#slots.filter((s) => s !== slot));
      this.#counts.addPeers++;
      this.#log(1, `client asks ${slot.id} to add peer ${other.address}`);
      this.#request(slot, { type: 'add-peer', address: other.address });
    }
    this.#at(this.#now + rng.exp(this.#addPeerEveryMs), () => this.#addPeer());
  }

  // --- reporting ------------------------------------------------------------

  /** Frames sent by type, most first. */
  #topTypes(): string {
    return [...this.#sentByType].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([type, n]) => `${type} ${n}`).join(', ');
  }

  #time(): string {
    return `${(this.#now / 1000).toFixed(3)} s`;
  }

  #log(level: number, text: string): void {
    if (this.#traceLevel < level) return;
    const line = `[${(this.#now / 1000).toFixed(3).padStart(8)} s] ${text}`;
    this.#trace.push(line);
    this.#options.onTrace?.(line);
  }

  /** What the network lost, by frame type, for failure messages. */
  #networkNote(): string {
    const byType = (m: Map<string, number>) => ([...m].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n}`).join(', ') || 'none');
    return (
      `network: frames dropped by the loss fault: ${byType(this.#droppedByType)}; lost in flight on cut links: ${byType(this.#cutByType)}; ` +
      `sent on links already closed: ${byType(this.#closedByType)}; arrived after the receiver closed the link: ${byType(this.#ignoredByType)}; error frames between nodes: ${this.#counts.protocolErrors}`
    );
  }

  /** What the network did to frames carrying this entry, for failure messages. */
  #explain(entry: Entry): string {
    const fate = this.#entryFate.get(entryId(entry));
    if (fate === undefined) return ' [no frame carrying it was lost]';
    const parts = [
      fate.dropped > 0 ? `${fate.dropped} dropped by the loss fault` : '',
      fate.cut > 0 ? `${fate.cut} lost on cut links` : '',
      fate.closed > 0 ? `${fate.closed} sent on links already closed` : '',
      fate.ignored > 0 ? `${fate.ignored} arrived after the receiver closed the link` : '',
    ].filter((p) => p !== '');
    return ` [frames carrying it: ${parts.join(', ')}]`;
  }
}

function addressOf(index: number): string {
  return `n${index}.sim:7000`;
}

/** Configured-peer graph: undirected edges forming a connected graph, and who dials whom. */
function makeTopology(rng: Rng, n: number, kind: TopologyKind): { edges: [number, number][]; dials: [number, number][] } {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const edges: [number, number][] = [];
  switch (kind) {
    case 'line':
    case 'ring':
      for (let i = 1; i < n; i++) edges.push([order[i - 1]!, order[i]!]);
      if (kind === 'ring' && n > 2) edges.push([order[n - 1]!, order[0]!]);
      break;
    case 'star':
      for (let i = 1; i < n; i++) edges.push([order[0]!, order[i]!]);
      break;
    case 'full':
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) edges.push([i, j]);
      break;
    case 'random': {
      for (let i = 1; i < n; i++) edges.push([order[rng.int(0, i - 1)]!, order[i]!]);
      const extra = rng.next() * 0.5;
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) if (!edges.some(([a, b]) => (a === i && b === j) || (a === j && b === i)) && rng.chance(extra)) edges.push([i, j]);
      }
      break;
    }
  }
  const dials: [number, number][] = [];
  for (const [a, b] of edges) {
    if (rng.chance(0.25)) dials.push([a, b], [b, a]);
    else if (rng.chance(0.5)) dials.push([a, b]);
    else dials.push([b, a]);
  }
  return { edges, dials };
}

/** Runs one seed: a fault phase, a liveness phase, then the checks. Deterministic for a given seed and options. */
export function runSeed(seed: number, options: SimOptions = {}): Promise<SimResult> {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`simulation: seed must be an integer from 0 to ${0xffffffff}, got ${seed}`);
  return new Simulation(seed, options).run();
}

/** Parses `loss=0,reorder=false,crashEveryMs=0` (the SIM_FAULTS / --faults syntax) into a fault override. */
export function parseFaults(text: string | undefined): Partial<FaultProfile> {
  const faults: Record<string, number | boolean> = {};
  if (text === undefined || text.trim() === '') return faults;
  const known: (keyof FaultProfile)[] = [
    'loss', 'duplication', 'reorder', 'partitionEveryMs', 'crashEveryMs', 'diskLoss', 'resetEveryMs', 'clockSkewMs', 'silentPartitions', 'pauseEveryMs', 'antiEntropy', 'peerExchange', 'secrets',
    'syncFailure', 'writebackLoss', 'readBitFlip', 'diskFullEveryMs', 'tornWrites', 'syncMs', 'backlogBytes', 'clockJumpEveryMs',
  ];
  for (const part of text.split(',')) {
    const [name, raw] = part.split('=').map((s) => s.trim());
    if (!known.includes(name as keyof FaultProfile) || raw === undefined) throw new Error(`simulation: bad fault override ${JSON.stringify(part)}; known: ${known.join(', ')}`);
    if (name === 'reorder' || name === 'antiEntropy' || name === 'peerExchange' || name === 'secrets' || name === 'tornWrites' || name === 'writebackLoss') faults[name] = raw === 'true' || raw === '1';
    else if (Number.isFinite(Number(raw))) faults[name!] = Number(raw);
    else throw new Error(`simulation: ${name} needs a number, got ${JSON.stringify(raw)}`);
  }
  return faults as Partial<FaultProfile>;
}
