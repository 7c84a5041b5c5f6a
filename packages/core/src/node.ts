/**
 * A bby node without I/O: it reacts to events (a frame from a link, a link
 * opening or closing, a client call, a tick) and queues effects (frames to
 * send, entries to persist, addresses to dial, links to close, lines to log)
 * that an adapter takes as one typed batch with `takeReady()` and carries out
 * (ready.ts says in what order; durability.ts decides when).
 *
 * House rules, as in etcd's raft: no sockets, no timers, no disk, no
 * reading the clock, no random numbers of its own here; time and randomness come from the
 * options, so many nodes can run in one test process, deterministically.
 *
 * Ordering duty of the adapter (ready.ts): a batch's `persist` is durable
 * before anything else of it is carried out, because a `set` reply that says
 * `true` promises the write is kept.
 */
import { dialableAddress, parseAddress } from './address.js';
import { AUTH_TIMEOUT_MS, type AuthTranscript, authProof, findSecret, newNonce, proofMatches } from './auth.js';
import { differingBuckets } from './anti-entropy.js';
import { retryDelayMs } from './backoff.js';
import { compareEntries, type Entry } from './entry.js';
import { BbyError, ProtocolError } from './errors.js';
import { hashKey } from './key-index.js';
import { type DialTarget, type Link, type LinkId, MAX_DIAL_TARGETS, MAX_PEERS_LISTED, PeerTable, type TargetSource, type Watcher } from './peer-table.js';
import { addressesToLearn, LEARNED_MAX_FAILURES, LearningBudget, MAX_LEARNED_PEERS, MAX_PEER_LIST } from './peer-exchange.js';
import {
  type AddPeerResult,
  checkKey,
  checkValue,
  type Cursor,
  DEFAULT_ACK_TIMEOUT_MS,
  encodeMessage,
  makeJSONEncodable,
  type EntriesMessage,
  type Message,
  type PeerInfo,
  PROTOCOL_VERSION,
  parseIncoming,
  type Request,
  type RequestId,
  type Stats,
  isRequest,
  type PeerMessage,
  type ParseResult,
  type RemovePeerResult,
  type IncomingMessage,
  type NodeStatus,
  type PeerStatus,
  type WatchRequest,
} from './protocol.js';
import { type Change, Store } from './store.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from './config.js';
import { BUCKET_COUNT } from './digest.js';
import { frameLength, MAX_HELD_BYTES, OUTBOUND_BUDGET_BYTES, OUTBOUND_RESUME_BYTES, PEER_OUTBOUND_LIMIT_BYTES, SLOW_LINK_TIMEOUT_MS, STREAM_WINDOW_BATCHES } from './flow-control.js';
import { isWellFormed, MAX_BATCH_CHARS } from './limits.js';
import { LogLimiter } from './log-limiter.js';
import { printable, quoted } from './log-text.js';
import { batchChanges, batchEntries, coalesceEntries, jsonStringLength } from './sync.js';
import { DEFAULT_TIMING, type Timing } from './timing.js';
import { type Effect, groupEffects, type LogFields, type Ready, type SendEffect } from './ready.js';

/** A forwarded write names at most this many nodes it was already sent to. */
export const MAX_SEEN = 64;

/** A node remembers the way back for this many acknowledgement rounds (oldest forgotten first). */
export const MAX_ACK_ROUTES = 4096;

/** A node remembers at most this many node ids for `acks: "all"`. */
export const MAX_KNOWN_NODES = 1024;

/** A watcher gets the node's mesh state this often, in milliseconds. */
export const WATCH_STATE_INTERVAL_MS = 1_000;

/**
 * A watcher is sent nothing more while this much text waits for it, in bytes
 * (as characters of JSON): what it misses is counted and it is told how many.
 * Half the outbound budget, so that watching never pauses the watcher's own
 * requests; it holds at most this plus one message per watcher.
 */
export const WATCH_BUDGET_BYTES = OUTBOUND_RESUME_BYTES;

/**
 * Writes wait for the next `watch-writes` up to this many characters of JSON
 * per watcher; past it they are dropped and counted. Keeps a message far below
 * the 1 MiB frame limit (a character is at most 3 bytes) under a burst.
 */
export const MAX_WATCH_PENDING_CHARS = 256 * 1024;

/** A joining node logs the progress of a catch-up this often, in milliseconds. */
export const CATCH_UP_LOG_INTERVAL_MS = 1_000;

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

/** What a node needs from its environment. */
export interface NodeOptions {
  /** This node's id, unique in the mesh. */
  readonly id: string;
  /** This node's own listening address `host:port`, announced to peers. */
  readonly address?: string;
  /** Addresses to dial at start and keep connected. */
  readonly peers?: readonly string[];
  /**
   * The wall clock, in milliseconds since the Unix epoch (`Date.now`): it
   * stamps this node's writes, and incoming entries stamped more than
   * `maxClockSkewMs` ahead of it are refused. No timer reads it.
   */
  readonly now: () => number;
  /**
   * The monotonic clock, in milliseconds from any origin (`performance.now`):
   * every timer runs on it (heartbeats, the peer timeout, the handshake,
   * authentication and idle timeouts, dial retries and their backoff, the
   * anti-entropy and peer-exchange periods, ack-round deadlines, the
   * crossed-dials window, log rate limits, catch-up progress, slow links), so
   * a wall clock that steps back or jumps ahead neither suppresses nor fires
   * a timeout. It must never go backwards. When omitted, timers run on `now`,
   * and a step of the wall clock then moves them too: adapters should pass one.
   */
  readonly monotonic?: () => number;
  /** Uniform random numbers in [0, 1), for retry jitter. */
  readonly random: () => number;
  /** Entries to start with (no effects); they get fresh sequence numbers. */
  readonly entries?: Iterable<Entry>;
  /** Changes recovered from storage with their sequence numbers (no effects). */
  readonly changes?: Iterable<Change>;
  /**
   * Names this node's change feed: peers' cursors into the feed are honoured
   * only within one epoch. Keep it across restarts only when every change that
   * was sent out is also recovered; default: a new random epoch.
   */
  readonly epoch?: string;
  /** Where this node stood in its peers' change feeds, by peer id (recovered from storage). */
  readonly cursors?: Readonly<Record<string, Cursor>>;
  /** Periods of heartbeats, anti-entropy and peer exchange; see DEFAULT_TIMING. */
  readonly timing?: Partial<Timing>;
  /** Learn and dial the peers of peers (default true). */
  readonly peerExchange?: boolean;
  /** Characters of entries per `entries` message (default MAX_BATCH_CHARS); tests shrink it to cut catch-ups into many batches. */
  readonly batchLength?: number;
  /**
   * Secrets of the mesh (auth.ts): with any, every connection authenticates
   * before anything else it sends is acted on. This node presents the first
   * and accepts any of them from peers (and from clients). Default: none.
   */
  readonly secrets?: readonly string[];
  /** Secrets clients may present, besides `secrets`. */
  readonly clientSecrets?: readonly string[];
  /** Cryptographically strong random bytes, for the nonces of authentication; needed with `secrets`. */
  readonly randomBytes?: (size: number) => Uint8Array;
  /** Entries stamped further than this ahead of this node's clock are refused, in milliseconds (default DEFAULT_MAX_CLOCK_SKEW_MS). */
  readonly maxClockSkewMs?: number;
}

/** An inbound connection that sends nothing (no request, no hello) for this long is closed, in milliseconds. */
export const IDLE_CONNECTION_TIMEOUT_MS = 10_000;

/** An effect as the node queues it: a `send` gets its `text` as it is taken (after `coalesceEntries` merged what it could). */
type QueuedEffect = Exclude<Effect, SendEffect> | { readonly type: 'send'; readonly link: LinkId; readonly message: Message; readonly bytes: number };

/** Encodes the messages of queued effects, each message once (a broadcast shares one message between links). */
function withText(effects: readonly QueuedEffect[]): Effect[] {
  const out: Effect[] = new Array(effects.length);
  let texts: Map<Message, string> | undefined;
  for (let i = 0; i < effects.length; i++) {
    const effect = effects[i]!;
    if (effect.type !== 'send') {
      out[i] = effect;
      continue;
    }
    texts ??= new Map();
    let text = texts.get(effect.message);
    if (text === undefined) {
      makeJSONEncodable(effect.message);
      text = encodeMessage(effect.message);
      texts.set(effect.message, text);
    }
    out[i] = { type: 'send', link: effect.link, text, message: effect.message, bytes: effect.bytes };
  }
  return out;
}

/** WebSocket close codes the core uses (4000-4999 is the application range). */
export const CLOSE_CODES = {
  /** The link leads back to this very node. */
  SELF: 4001,
  /** The peer speaks another protocol version. */
  PROTOCOL_MISMATCH: 4002,
  /** The dialed node did not complete the handshake in time. */
  HANDSHAKE_TIMEOUT: 4003,
  /** The peer sent nothing, not even a heartbeat, for too long. */
  PEER_TIMEOUT: 4004,
  /** A second link to a node already connected: one link per pair (docs/security.md). */
  DUPLICATE_LINK: 4005,
  /** This node cannot write to its disk: it leaves its peers until it can (storageFailed). */
  STORAGE_FAILED: 4007,
  /** The other side does not read what it is sent (over its outbound budget too long, flow-control.ts). */
  TOO_SLOW: 4008,
  /** The connection sent nothing within IDLE_CONNECTION_TIMEOUT_MS. */
  IDLE: 4009,
  /** The other side's proof did not check out: it does not hold the secret. */
  AUTH_FAILED: 4010,
  /** A message came before the authentication handshake. */
  AUTH_REQUIRED: 4011,
  /** The authentication handshake did not finish in time. */
  AUTH_TIMEOUT: 4012,
  /** A connection authenticated as a client sent a message of the peer protocol. */
  FORBIDDEN: 4013,
} as const;

/** How long a dial may wait for the socket and the welcome, in milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * Two links to one peer in opposite directions whose handshakes finished
 * within this long of each other are dials that crossed, resolved by the
 * rule of the smaller id; a later one is a second link to a live peer,
 * refused. As long as a dial may take, in milliseconds.
 */
export const CROSSED_DIALS_WINDOW_MS = HANDSHAKE_TIMEOUT_MS;

/** A node of the mesh; see the file header for the event/effect contract. */
export interface BbyNode {
  readonly id: string;
  /** Writes a key once: true when stored or already equal, false when it holds another value. Throws ProtocolError for an empty or oversized key or value. */
  set(key: string, value: string): boolean;
  /** The value of a key, or null. */
  get(key: string): string | null;
  /** Every key, sorted. */
  keys(): string[];
  /** The stored entry of a key (value, timestamp, origin), if any. */
  entry(key: string): Entry | undefined;
  /** This node's change-feed epoch. */
  readonly epoch: string;
  /** Where this node stands in each peer's change feed, by peer id. */
  cursors(): Record<string, Cursor>;
  /** Every stored entry. */
  entries(): IterableIterator<Entry>;
  /** Every stored entry with its local sequence number, in the store's slot order (what storage keeps). */
  changes(): IterableIterator<Change>;
  /** Configured, added and inbound peers. */
  peers(): PeerInfo[];
  /** Counters since start. */
  stats(): Stats;
  /** What the node is doing (links, catch-ups, lag, storage), for monitors. */
  status(): NodeStatus;
  /** Starts dialing an address and keeps it connected; throws BbyError('BAD_ADDRESS') or BbyError('TOO_MANY_PEERS'). */
  addPeer(address: string): string;
  /** Stops dialing an address and forgets it; false when it was not dialed. Throws BbyError('BAD_ADDRESS'). */
  removePeer(address: string): boolean;
  /** Lets time pass: dials the peers whose retry time has come. */
  tick(): void;
  /** An inbound connection was accepted; returns its link id. `remote` (an IP address) names it in logs. */
  accept(remote?: string): LinkId;
  /** The outbound connection of a `dial` effect is open. */
  opened(link: LinkId): void;
  /** A text frame arrived on a link; `byteLength`, when the transport knows it, is its size in UTF-8 bytes (spares measuring it). */
  receive(link: LinkId, text: string, byteLength?: number): void;
  /** Frames of this link whose `bytes` add up to `bytes` were written out to its socket (flow-control.ts). */
  written(link: LinkId, bytes: number): void;
  /**
   * The adapter cannot make writes durable (a full or failing disk; `reason`
   * says why, in one line): until `storageRecovered`, the node refuses writes
   * (STORAGE_FAILED), leaves its peers (close 4007) and does not take their
   * entries, and keeps answering reads.
   */
  storageFailed(reason: string): void;
  /** Writes are durable again: the node takes writes and rejoins its peers, which catch it up from its cursors. */
  storageRecovered(): void;
  /** A link closed or a dial failed; `reason` says why, for logs and `peers`. */
  closed(link: LinkId, reason: string): void;
  /** Takes what the node asks for since the last take, as one batch (ready.ts: carry out its `persist` first, then the rest in `READY_ORDER`). */
  takeReady(): Ready;
}

/** Creates a node; it queues dials to its configured peers at once, and retries them on `tick()`. */
export function createNode(options: NodeOptions): BbyNode {
  return new Node(options);
}

class Node implements BbyNode {
  readonly id: string;
  readonly epoch: string;
  readonly #address: string;
  readonly #timing: Timing;
  readonly #peerExchange: boolean;
  readonly #batchLength: number;
  readonly #cursors = new Map<string, Cursor>();
  #nextAntiEntropyAtMs: number;
  /** The store's seq at the last tick, and when a tick last saw it move: anti-entropy waits for a pause in writes. */
  #seqAtLastTick = 0;
  #lastChangeAtMs = -Infinity;
  #nextPeerExchangeAtMs: number;
  readonly #pendingAcks = new Map<string, PendingAck>();
  /** Acknowledgement round id to the link it came from, to relay acks back. */
  readonly #ackRoutes = new Map<string, LinkId>();
  /** Every node id heard of (peers, origins, seen lists, ackers): what `acks: "all"` waits for. */
  readonly #knownNodes = new Set<string>();
  #ackRounds = 0;
  /** The wall clock: entry timestamps and the clock-skew check only. */
  readonly #now: () => number;
  /** The monotonic clock: every timer. */
  readonly #monotonic: () => number;
  readonly #random: () => number;
  readonly #randomBytes: ((size: number) => Uint8Array) | undefined;
  readonly #secrets: readonly string[];
  /** What a client may present: its own secrets, then the mesh's. */
  readonly #clientSecrets: readonly string[];
  readonly #maxClockSkewMs: number;
  /** Lines caused from outside (refused handshakes, errors reported to this node), rate limited. */
  readonly #outsideLog = new LogLimiter();
  readonly #store: Store;
  readonly #table = new PeerTable();
  readonly #learning = new LearningBudget();
  /** Why writes cannot be made durable now, or null while they can (storageFailed). */
  #storageFailure: string | null = null;
  readonly #effects: QueuedEffect[] = [];
  /** add-peer requests waiting for their dial's outcome, by address. */
  readonly #addPeerWaiters = new Map<string, { link: LinkId; id: RequestId }[]>();
  readonly #counters = {
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
  /** Links that sent `watch`, by id: a write costs nothing more while there are none. */
  readonly #watching = new Map<LinkId, Link>();
  #nextWatchStateAtMs = 0;

  constructor(options: NodeOptions) {
    if (typeof options.id !== 'string' || options.id === '') throw new BbyError('BAD_CONFIG', 'createNode: "id" must be a non-empty string');
    this.id = options.id;
    this.#address = options.address ?? '';
    this.#now = options.now;
    this.#monotonic = options.monotonic ?? options.now;
    this.#random = options.random;
    this.#secrets = options.secrets ?? [];
    this.#clientSecrets = [...(options.clientSecrets ?? []), ...this.#secrets];
    this.#randomBytes = options.randomBytes;
    if (this.#secrets.length > 0 && this.#randomBytes === undefined) throw new BbyError('BAD_CONFIG', 'createNode: "secrets" need "randomBytes" (a cryptographically strong source, such as crypto.randomBytes) for the nonces');
    this.#maxClockSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.#peerExchange = options.peerExchange ?? true;
    this.#batchLength = options.batchLength ?? MAX_BATCH_CHARS;
    this.epoch = options.epoch ?? randomId(this.#random);
    // The epoch is random (or recovered): its hash seeds the store's key hash without another draw.
    this.#store = new Store({ hashSeed: hashKey(this.epoch, 0) });
    // Before protocol 2 a lone surrogate was accepted; the store cannot hold one (arena.ts).
    const storable = (entry: Entry) => isWellFormed(entry.key) && isWellFormed(entry.value);
    let malformed = 0;
    for (const change of options.changes ?? []) {
      if (storable(change.entry)) this.#store.restore(change);
      else malformed++;
    }
    for (const entry of options.entries ?? []) {
      if (storable(entry)) this.#store.merge(entry);
      else malformed++;
    }
    if (malformed > 0) {
      this.#log('warn', 'stored-entries-dropped', `left out ${malformed} stored entries whose key or value is not well-formed Unicode (a lone surrogate, accepted before protocol 2); the next compaction drops them from the data folder`, { count: malformed });
    }
    for (const [peerId, cursor] of Object.entries(options.cursors ?? {})) this.#cursors.set(peerId, cursor);
    const nowMs = this.#monotonic();
    this.#nextAntiEntropyAtMs = nowMs + this.#timing.antiEntropyIntervalMs;
    this.#nextPeerExchangeAtMs = nowMs + this.#timing.peerExchangeIntervalMs;
    for (const peer of options.peers ?? []) this.#addTarget(peer, 'config');
  }

  // --- client API -------------------------------------------------------

  set(key: string, value: string): boolean {
    checkKey(key);
    checkValue(value);
    if (this.#storageFailure !== null) throw this.#storageError();
    return this.#write(key, value, undefined);
  }

  /** Why a write is refused while the disk fails. */
  #storageError(): BbyError {
    this.#counters.writesRefusedStorage++;
    return new BbyError('STORAGE_FAILED', `the node cannot write to its data folder (${this.#storageFailure}); nothing was written; it keeps answering reads and retries the disk every few seconds`);
  }

  storageFailed(reason: string): void {
    const first = this.#storageFailure === null;
    this.#storageFailure = reason;
    if (!first) return;
    this.#log('warn', 'storage-failed', `refusing writes and leaving the peers until the data folder can be written again (${reason}); reads are still answered`, { reason });
    // Entries from peers could not be kept either, and what this node sends must never vouch for a write it lost.
    for (const link of this.#table.peerLinkList()) {
      this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.STORAGE_FAILED, reason: 'storage failed' });
      this.closed(link.id, 'this node cannot write to its disk');
    }
  }

  storageRecovered(): void {
    if (this.#storageFailure === null) return;
    this.#storageFailure = null;
    this.#log('info', 'storage-recovered', 'the data folder can be written again: taking writes and rejoining the peers');
    for (const target of this.#table.dueTargets(Infinity)) target.nextDialAtMs = this.#monotonic();
    this.#dialDue();
  }

  /** `set` of a checked key and value, with an acknowledgement round id to attach to the broadcast, if any. */
  #write(key: string, value: string, ack: string | undefined): boolean {
    const outcome = this.#storeOwn(key, value, Math.floor(this.#now()));
    // A value already there travels again only for an acknowledgement round.
    const travelling = typeof outcome === 'object' ? outcome : outcome && ack !== undefined ? this.#store.get(key) : undefined;
    if (travelling !== undefined) this.#forward([travelling], null, [], ack);
    return outcome !== false;
  }

  /**
   * Write-once of a checked key and value: the new entry when it was stored
   * (persisted, not yet sent), true when the key already held this value,
   * false when it holds another.
   */
  #storeOwn(key: string, value: string, timestamp: number): Entry | boolean {
    const entry: Entry = { key, value, timestamp, origin: this.id };
    const stored = this.#store.insert(entry);
    if (stored !== undefined) {
      if (stored === value) return true;
      this.#counters.writesRefused++;
      return false;
    }
    this.#counters.writesAccepted++;
    this.#effects.push({ type: 'persist', entry, seq: this.#store.seq });
    if (this.#watching.size > 0) this.#watchWrite(entry, null, false);
    return entry;
  }

  /** Many writes in one request (one timestamp for all): the new entries travel together, in as few messages as fit. */
  #writeMany(entries: readonly { key: string; value: string }[]): boolean[] {
    const fresh: Entry[] = [];
    const timestamp = Math.floor(this.#now());
    const results = entries.map(({ key, value }) => {
      const outcome = this.#storeOwn(key, value, timestamp);
      if (typeof outcome !== 'object') return outcome;
      fresh.push(outcome);
      return true;
    });
    if (fresh.length > 0) this.#forward(fresh, null, []);
    return results;
  }

  get(key: string): string | null {
    return this.#store.get(key)?.value ?? null;
  }

  keys(): string[] {
    return this.#store.keys();
  }

  entry(key: string): Entry | undefined {
    return this.#store.get(key);
  }

  entries(): IterableIterator<Entry> {
    return this.#store.entries();
  }

  changes(): IterableIterator<Change> {
    return this.#store.changesSince(0);
  }

  cursors(): Record<string, Cursor> {
    return Object.fromEntries(this.#cursors);
  }

  peers(): PeerInfo[] {
    return this.#table.list();
  }

  status(): NodeStatus {
    let clients = 0;
    let pending = 0;
    let peerLinks = 0;
    for (const link of this.#table.links()) {
      if (link.role === 'peer') peerLinks++;
      else if (link.role === 'client') clients++;
      else pending++;
    }
    const peers: PeerStatus[] = this.#table
      .rows()
      .slice(0, MAX_PEERS_LISTED)
      .map(({ info, link, target }) => {
        const connected = info.connected && link !== undefined;
        const state = connected ? 'connected' : target?.halted != null ? 'stopped' : link !== undefined ? 'connecting' : 'down';
        const stream = connected ? link.stream : null;
        return {
          ...info,
          state,
          outboundBytes: connected ? link.unsentBytes : 0,
          catchUpIn: connected && link.catchUpIn !== null ? { entries: link.catchUpIn.entries, expected: link.catchUpIn.expected, done: link.catchUpIn.done } : null,
          streamOut: stream === null ? null : { kind: stream.kind, entries: stream.entries, expected: stream.expected, done: false },
          lagMs: connected ? link.lagMs : null,
          reportedPeers: connected ? link.reportedPeers : [],
        };
      });
    return {
      id: this.id,
      nowMs: this.#now(),
      epoch: this.epoch,
      seq: this.#store.seq,
      keys: this.#store.size,
      storeBytes: this.#store.heldBytes,
      storageFailure: this.#storageFailure,
      links: { peers: peerLinks, clients, pending, watchers: this.#watching.size },
      peers,
    };
  }

  stats(): Stats {
    return {
      id: this.id,
      keys: this.#store.size,
      peers: this.#table.peerLinks().size,
      clients: this.#table.clientCount(),
      writable: this.#storageFailure === null,
      ...this.#counters,
    };
  }

  addPeer(text: string): string {
    const address = this.#addTarget(text, 'added');
    const target = this.#table.target(address);
    if (target !== undefined && target.halted !== null && target.link === null) this.#resume(target);
    return address;
  }

  /** Dials a target now (a client asked for it); a halted one (#halt) is dialed again from scratch: whatever made it fail may be fixed. */
  #resume(target: DialTarget): void {
    if (target.halted !== null) {
      target.halted = null;
      target.failures = 0;
      target.failureLogged = false;
    }
    target.nextDialAtMs = this.#monotonic();
    this.#dialDue();
  }

  /**
   * Stops dialing `target` until a client adds it again: `why` (the node there
   * speaks another protocol version) is not fixed by redialing. Answers the
   * `add-peer`s waiting for it with `retrying: false`. A learnt address is
   * forgotten instead (peer-exchange.ts).
   */
  #halt(target: DialTarget, why: string): void {
    if (target.source === 'learned') {
      // Not asked for by anyone: forgotten (not learnt again for FORGOTTEN_FOR_MS) rather than kept in a learnt slot for ever.
      this.#table.removeTarget(target.address);
      this.#learning.forgot(target.address, this.#monotonic());
      this.#log('info', 'peer-forgotten', `forgot learnt peer ${target.address}: ${why}`, { address: target.address, reason: why });
      return;
    }
    target.halted = why;
    target.lastError = why;
    this.#log('warn', 'peer-halted', `stopped dialing peer ${target.address}: ${why}; add it again (add-peer ${target.address}) once it is fixed`, { address: target.address, reason: why });
    this.#answerAddPeer(target.address, { address: target.address, connected: false, id: target.peerId, error: why, retrying: false });
  }

  #addTarget(text: string, source: TargetSource): string {
    const { address } = parseAddress(text);
    if (this.#table.target(address) === undefined && this.#table.targetTotal >= MAX_DIAL_TARGETS) {
      throw new BbyError('TOO_MANY_PEERS', `this node already dials ${MAX_DIAL_TARGETS} addresses, the most it keeps; remove one first (bby CONFIG remove-peer HOST:PORT)`);
    }
    if (this.#table.addTarget(address, source, this.#monotonic())) this.#dialDue();
    return address;
  }

  removePeer(text: string): boolean {
    const { address } = parseAddress(text);
    const target = this.#table.target(address);
    if (target === undefined) return false;
    this.#table.removeTarget(address);
    if (target.link !== null) {
      this.#effects.push({ type: 'close', link: target.link, code: 1000, reason: 'peer removed' });
      this.closed(target.link, 'removed by a client');
    }
    this.#answerAddPeer(address, { address, connected: false, id: target.peerId, error: 'removed by a client', retrying: false });
    if (target.source !== 'learned') this.#effects.push({ type: 'peer-removed', address });
    this.#log('info', 'peer-removed', `removed peer ${address}${target.source === 'config' ? ' (it is in the config file: it comes back at the next start unless removed there)' : ''}`, { address });
    return true;
  }

  // --- adapter events ---------------------------------------------------

  tick(): void {
    const nowMs = this.#monotonic();
    this.#abandonStalledDials(nowMs);
    this.#closeIdleConnections(nowMs);
    this.#closeSlowLinks(nowMs);
    this.#detectSilentPeers(nowMs);
    if (this.#store.seq !== this.#seqAtLastTick) {
      this.#seqAtLastTick = this.#store.seq;
      this.#lastChangeAtMs = nowMs;
    }
    if (nowMs >= this.#nextAntiEntropyAtMs && this.#quietForAntiEntropy(nowMs)) {
      this.#nextAntiEntropyAtMs = nowMs + this.#timing.antiEntropyIntervalMs;
      this.#startAntiEntropy(nowMs);
    }
    this.#expireAckRounds(nowMs);
    this.#startPendingRepairs();
    this.#logCatchUps(nowMs);
    if (this.#watching.size > 0) this.#tickWatchers(nowMs);
    if (this.#peerExchange && nowMs >= this.#nextPeerExchangeAtMs) {
      this.#nextPeerExchangeAtMs = nowMs + this.#timing.peerExchangeIntervalMs;
      for (const linkId of this.#table.peerLinks().values()) this.#sendPeerList(linkId);
    }
    this.#dialDue();
  }

  /** A dial or handshake that never ends would keep its target from being dialed again. */
  #abandonStalledDials(nowMs: number): void {
    for (const link of this.#table.stalledDials(nowMs - HANDSHAKE_TIMEOUT_MS)) {
      this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.HANDSHAKE_TIMEOUT, reason: 'no welcome within the handshake timeout' });
      this.closed(link.id, `no answer to hello within ${HANDSHAKE_TIMEOUT_MS} ms`);
    }
  }

  /**
   * An inbound connection that did not authenticate within AUTH_TIMEOUT_MS,
   * or sent nothing at all within IDLE_CONNECTION_TIMEOUT_MS, holds a socket
   * for nothing: it is closed.
   */
  #closeIdleConnections(nowMs: number): void {
    for (const link of this.#table.idleInbound(nowMs - AUTH_TIMEOUT_MS)) {
      if (link.auth.state === 'challenged') {
        this.#counters.authTimeouts++;
        this.#refuse(link, null, 'AUTH_TIMEOUT', CLOSE_CODES.AUTH_TIMEOUT, `no authentication within ${AUTH_TIMEOUT_MS} ms; send "auth" in answer to "challenge" (docs/protocol.md)`);
      } else if (nowMs - link.openedAtMs > IDLE_CONNECTION_TIMEOUT_MS) {
        this.#counters.idleConnectionsClosed++;
        this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.IDLE, reason: `nothing received within ${IDLE_CONNECTION_TIMEOUT_MS} ms` });
        this.closed(link.id, 'idle');
      }
    }
  }

  /** A link over its outbound budget for too long does not read what it is sent: it is closed (flow-control.ts). */
  #closeSlowLinks(nowMs: number): void {
    for (const link of this.#table.overBudget(nowMs - SLOW_LINK_TIMEOUT_MS)) {
      this.#closeTooSlow(link, `over its outbound budget for ${nowMs - link.overBudgetSinceMs!} ms`);
    }
  }

  #closeTooSlow(link: Link, why: string): void {
    this.#counters.slowLinksClosed++;
    const who = link.role === 'peer' ? `peer ${link.peerId}` : `a client${link.remote === null ? '' : ` at ${link.remote}`}`;
    this.#logFromOutside(link.peerId ?? link.remote ?? link.id, 'link-too-slow', `closed the link to ${who}: it does not read what it is sent (${why}, ${link.unsentBytes} bytes waiting)`, { link: link.id, peer: link.peerId, unsentBytes: link.unsentBytes });
    this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.TOO_SLOW, reason: 'too slow: not reading its answers' });
    this.closed(link.id, 'too slow');
  }

  /** Failure detection: a peer that went silent (crashed, stopped, cut off) is marked down; quiet links get a ping. */
  #detectSilentPeers(nowMs: number): void {
    for (const link of this.#table.peerLinkList()) {
      if (nowMs - link.lastHeardAtMs > this.#timing.peerTimeoutMs) {
        this.#counters.peersTimedOut++;
        this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.PEER_TIMEOUT, reason: 'no heartbeat' });
        this.closed(link.id, `no message for ${nowMs - link.lastHeardAtMs} ms`);
      } else if (nowMs - link.lastSentAtMs >= this.#timing.heartbeatIntervalMs) {
        // Sent after everything queued before it on this link, so its upTo covers what went before.
        this.#send(link.id, link.claimsUpTo ? { type: 'ping', upTo: this.#store.seq } : { type: 'ping' });
      }
    }
  }

  /**
   * Whether a due anti-entropy round may start: once the store has not
   * changed for a tenth of the period, or once the round is half a period
   * late. Writes still being forwarded make whole buckets differ, and a
   * repair then sends those buckets both ways (a burst of duplicates), so a
   * round waits for a pause in writes, but no longer than that: under steady
   * writes it still runs.
   */
  #quietForAntiEntropy(nowMs: number): boolean {
    const interval = this.#timing.antiEntropyIntervalMs;
    return nowMs - this.#lastChangeAtMs >= interval / 10 || nowMs - this.#nextAntiEntropyAtMs >= interval / 2;
  }

  /** One round per pair and period: the node with the smaller id starts it; the repair goes both ways. */
  #startAntiEntropy(nowMs: number): void {
    const root = this.#store.digests.root();
    for (const [peerId, linkId] of this.#table.peerLinks()) {
      // Not while a young link's catch-up is under way (it would compare stores about to change);
      // a link whose catch-up never ended (a lost message) is compared all the same.
      const link = this.#table.link(linkId)!;
      if (peerId < this.id || (!link.caughtUp && nowMs - link.openedAtMs < this.#timing.antiEntropyIntervalMs)) continue;
      // Nor while this node is still sending the peer its catch-up: the repair would resend it whole.
      if (link.stream?.kind === 'catch-up') continue;
      this.#counters.antiEntropyRounds++;
      this.#send(linkId, { type: 'digest', root });
    }
  }

  /** A `set` with `acks` whose time is up is answered with the count it reached. */
  #expireAckRounds(nowMs: number): void {
    for (const [ack, pending] of this.#pendingAcks) {
      if (nowMs < pending.deadlineMs) continue;
      this.#pendingAcks.delete(ack);
      const have = pending.ackers.size + 1;
      const message = `the write is stored on ${have} of ${this.#wantedAcks(pending)} nodes after the timeout; it keeps spreading to the others`;
      this.#send(pending.link, { type: 'error', id: pending.requestId, code: 'ACK_TIMEOUT', message, acks: have });
    }
  }

  accept(remote?: string): LinkId {
    const link = this.#table.open('inbound', this.#monotonic(), remote ?? null);
    if (this.#secrets.length > 0) {
      const nonce = newNonce(this.#randomBytes!);
      link.auth = { state: 'challenged', nonce };
      this.#send(link.id, { type: 'challenge', nodeId: this.id, nonce });
    }
    return link.id;
  }

  opened(linkId: LinkId): void {
    const link = this.#table.link(linkId);
    if (link === undefined || link.direction !== 'outbound') return;
    // With a secret, hello waits for the acceptor's challenge (it goes right behind this node's proof).
    if (link.auth.state === 'open') this.#sendHello(link);
  }

  #sendHello(link: Link): void {
    this.#send(link.id, { type: 'hello', protocol: PROTOCOL_VERSION, nodeId: this.id, address: this.#address });
  }

  receive(linkId: LinkId, text: string, byteLength?: number): void {
    const link = this.#table.link(linkId);
    if (link === undefined) return;
    if (link.role !== 'peer' && (link.paused || link.held.length > 0 || link.unsentBytes > OUTBOUND_BUDGET_BYTES)) {
      this.#hold(link, text, byteLength);
      return;
    }
    this.#process(link, text, byteLength);
  }

  /**
   * A client over its outbound budget: its frame waits, unread, until it has
   * read what it was sent (`written`), and its socket is no longer read, so
   * that TCP slows it down. Only what its socket had already read can arrive
   * meanwhile; more means it is not paused, and it is closed.
   */
  #hold(link: Link, text: string, byteLength: number | undefined): void {
    link.held.push({ text, byteLength });
    link.heldBytes += byteLength ?? text.length;
    if (!link.paused) {
      link.paused = true;
      this.#effects.push({ type: 'pause', link: link.id });
    }
    if (link.heldBytes > MAX_HELD_BYTES) this.#closeTooSlow(link, `${link.held.length} requests waiting unread`);
  }

  /** Answers a paused client's frames while it is under its budget, and reads its socket again once they are all answered. */
  #release(link: Link): void {
    // Taken from the front in one splice at the end: shifting one by one would cost the square of the frames held.
    let taken = 0;
    while (taken < link.held.length && link.unsentBytes <= OUTBOUND_BUDGET_BYTES && this.#table.link(link.id) === link) {
      const frame = link.held[taken++]!;
      link.heldBytes -= frame.byteLength ?? frame.text.length;
      this.#process(link, frame.text, frame.byteLength);
    }
    link.held.splice(0, taken);
    if (link.paused && link.held.length === 0 && link.unsentBytes <= OUTBOUND_RESUME_BYTES && this.#table.link(link.id) === link) {
      link.paused = false;
      this.#effects.push({ type: 'resume', link: link.id });
    }
  }

  /** Acts on one frame of a link. */
  #process(link: Link, text: string, byteLength: number | undefined): void {
    this.#counters.messagesReceived++;
    link.lastHeardAtMs = this.#monotonic();
    const parsed = parseIncoming(text, byteLength);
    if (link.auth.state !== 'open' && link.auth.state !== 'done') {
      this.#authenticate(link, parsed);
      return;
    }
    if (!parsed.ok) {
      this.#reject(link, parsed.id, parsed.error);
      return;
    }
    const message = parsed.message;
    if (isRequest(message)) {
      if (link.role === 'pending') link.role = 'client';
      this.#handleRequest(link, message);
      return;
    }
    switch (message.type) {
      case 'challenge':
      case 'auth':
      case 'authenticated':
        // A step of a handshake already done (a frame delivered twice) changes nothing.
        if (link.auth.state === 'done') return;
        this.#reject(link, null, new ProtocolError('BAD_MESSAGE', `"${message.type}", but this node has no secret: it does not authenticate connections`));
        return;
      case 'reply':
      case 'error': {
        // Never answer an answer: two nodes would bounce errors forever. Logged (rate-limited) and dropped.
        const who = link.peerId === null ? `a client${link.remote === null ? '' : ` at ${link.remote}`}` : `peer ${link.peerId}`;
        const what = message.type === 'reply' ? `sent a reply (id ${printable(String(message.id))}) though this node asked nothing; dropped` : `reported: ${quoted(message.message)} (${printable(message.code)})`;
        this.#logFromOutside(link.peerId ?? link.remote ?? link.id, 'remote-report', `${who} ${what}`, { peer: link.peerId, remote: link.remote, code: message.type === 'error' ? printable(message.code) : null });
        // The node this one dialed refused its protocol version: it will refuse every dial.
        if (message.type !== 'error' || message.code !== 'PROTOCOL_MISMATCH' || link.direction !== 'outbound' || link.role === 'peer') return;
        const target = this.#table.targetOfLink(link.id);
        if (target !== undefined) this.#halt(target, `the node there refused this node's protocol ${PROTOCOL_VERSION} (${printable(message.message)})`);
        return;
      }
      default:
        if (link.auth.state === 'done' && link.auth.role === 'client') {
          this.#counters.forbiddenMessages++;
          this.#refuse(link, null, 'FORBIDDEN', CLOSE_CODES.FORBIDDEN, `"${message.type}" is a message of the peer protocol, and this connection authenticated as a client`);
          return;
        }
        if (message.type === 'hello' || message.type === 'welcome') {
          this.#handshake(link, message.type, message.protocol, message.nodeId, message.address);
          return;
        }
        if (link.role !== 'peer') {
          this.#reject(link, null, new ProtocolError('NOT_A_PEER', `"${message.type}" before the handshake; a peer must send "hello" first`));
          return;
        }
        this.#receiveFromPeer(link, message);
    }
  }

  /**
   * One step of the authentication handshake (auth.ts) on a link that has
   * not finished it: nothing but the expected message is acted on.
   */
  #authenticate(link: Link, parsed: ParseResult): void {
    const auth = link.auth;
    if (auth.state === 'refused') return;
    const message = parsed.ok ? parsed.message : undefined;
    switch (auth.state) {
      case 'challenged': {
        if (message?.type !== 'auth') {
          this.#counters.authFailures++;
          const id = parsed.ok ? ('id' in parsed.message && parsed.message.type !== 'error' && parsed.message.type !== 'reply' ? (parsed.message.id as RequestId) : null) : parsed.id;
          this.#refuse(link, id, 'AUTH_REQUIRED', CLOSE_CODES.AUTH_REQUIRED, 'this node requires authentication: present the secret of the mesh (the config\'s "secret" or "clientSecret"); docs/security.md');
          return;
        }
        const transcript: AuthTranscript = { role: message.role, acceptorId: this.id, initiatorId: message.nodeId ?? '', acceptorNonce: auth.nonce, initiatorNonce: message.nonce };
        const secret = findSecret(message.role === 'peer' ? this.#secrets : this.#clientSecrets, message.proof, 'initiator', transcript);
        if (secret === undefined) {
          this.#counters.authFailures++;
          this.#refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `wrong secret for a ${message.role}: the proof does not match any secret this node accepts`);
          return;
        }
        link.auth = { state: 'done', role: message.role, peerId: message.nodeId ?? null };
        if (message.role === 'client') link.role = 'client';
        this.#send(link.id, { type: 'authenticated', proof: authProof(secret, 'acceptor', transcript) });
        return;
      }
      case 'awaiting-challenge': {
        if (message?.type !== 'challenge') {
          this.#refuseOutbound(link, message);
          return;
        }
        const initiatorNonce = newNonce(this.#randomBytes!);
        const transcript: AuthTranscript = { role: 'peer', acceptorId: message.nodeId, initiatorId: this.id, acceptorNonce: message.nonce, initiatorNonce };
        const secret = this.#secrets[0]!;
        link.auth = { state: 'awaiting-proof', acceptorId: message.nodeId, acceptorNonce: message.nonce, expectedProof: authProof(secret, 'acceptor', transcript) };
        this.#send(link.id, { type: 'auth', role: 'peer', nodeId: this.id, nonce: initiatorNonce, proof: authProof(secret, 'initiator', transcript) });
        this.#sendHello(link);
        return;
      }
      case 'awaiting-proof': {
        // The same challenge again (a frame delivered twice) changes nothing.
        if (message?.type === 'challenge' && message.nonce === auth.acceptorNonce) return;
        if (message?.type !== 'authenticated') {
          this.#refuseOutbound(link, message);
          return;
        }
        if (!proofMatches(auth.expectedProof, message.proof)) {
          this.#counters.authFailures++;
          const target = this.#table.targetOfLink(link.id);
          this.#refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `the node at ${target?.address ?? 'this address'} (${auth.acceptorId}) could not prove it holds this mesh's secret`);
          return;
        }
        link.auth = { state: 'done', role: 'peer', peerId: auth.acceptorId };
        return;
      }
    }
  }

  /** An outbound link got something else than the next step of the handshake: the dial failed. */
  #refuseOutbound(link: Link, message: IncomingMessage | undefined): void {
    const target = this.#table.targetOfLink(link.id);
    const where = target?.address ?? 'a peer';
    // The acceptor explains a refusal in an error frame before it closes: say that rather than what it was not.
    const reason = message?.type === 'error' ? `${printable(message.code)}: ${printable(message.message)}` : `it sent ${message === undefined ? 'a malformed frame' : `"${message.type}"`} instead of the authentication handshake; does it run with the same secret?`;
    link.auth = { state: 'refused' };
    this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.AUTH_FAILED, reason: 'authentication failed' });
    this.closed(link.id, `authentication with ${where} failed (${reason})`);
  }

  /**
   * Refuses a link for good: an error frame that says why (with the request id
   * when there is one, so a client can print it), a close with `code`, and a
   * rate-limited log line naming where it came from.
   */
  #refuse(link: Link, id: RequestId | null, code: 'AUTH_REQUIRED' | 'AUTH_FAILED' | 'AUTH_TIMEOUT' | 'FORBIDDEN', closeCode: number, message: string): void {
    link.auth = { state: 'refused' };
    this.#send(link.id, { type: 'error', id, code: code === 'AUTH_TIMEOUT' ? 'AUTH_REQUIRED' : code, message });
    this.#effects.push({ type: 'close', link: link.id, code: closeCode, reason: code.toLowerCase().replace('_', ' ') });
    const source = link.remote ?? link.id;
    this.#logFromOutside(source, 'connection-refused', `refused a connection ${link.direction === 'inbound' ? `from ${source}` : `to ${this.#table.targetOfLink(link.id)?.address ?? source}`}: ${code} (${message})`, { remote: source, direction: link.direction, code });
  }

  /** A warning caused from outside, at most once per source and period (log-limiter.ts). */
  #logFromOutside(source: string, event: string, message: string, fields?: LogFields): void {
    const { log, suppressed } = this.#outsideLog.admit(source, this.#monotonic());
    if (log) this.#log('warn', event, suppressed > 0 ? `${message} [${suppressed} similar lines left out]` : message, suppressed > 0 ? { ...fields, suppressed } : fields);
  }

  #receiveFromPeer(link: Link, message: Exclude<PeerMessage, { type: 'hello' | 'welcome' }>): void {
    const peerId = link.peerId!;
    switch (message.type) {
      case 'entries': {
        if (message.expected !== undefined) {
          const progress = (link.catchUpIn ??= { entries: 0, expected: null, done: false, loggedAtMs: this.#monotonic(), loggedEntries: 0 });
          progress.expected = message.expected;
          progress.entries += message.entries.length;
        }
        for (const nodeId of message.seen ?? []) this.#know(nodeId);
        if (message.ack !== undefined) this.#mergeForAck(link, message.entries, message.seen ?? [], message.ack);
        else this.#merge(link, message.entries, message.seen ?? []);
        this.#advanceCursor(link, message.upTo);
        return;
      }
      case 'catch-up': {
        const since = message.since;
        const usable = since !== null && since.epoch === this.epoch && since.seq <= this.#store.seq;
        if (!usable) this.#counters.fullTransfersSent++;
        // The iteration is live: changes made while it runs are sent too, by rescans of the store
        // (store.ts), and when it ends it says up to which sequence number every change went out.
        const batches = batchChanges(this.#store.changesSince(usable ? since.seq : -Infinity), this.#batchLength);
        // A peer that asks again gets a new stream. A repair it cuts short goes again afterwards.
        if (link.stream?.kind === 'repair') this.#mergePendingRepair(link, link.stream.buckets!);
        const expected = usable ? this.#store.seq - since.seq : this.#store.size;
        link.stream = { kind: 'catch-up', batches, full: !usable, buckets: null, entries: 0, mayClaim: true, expected };
        this.#pump(link);
        return;
      }
      case 'caught-up':
        link.caughtUp = true;
        this.#endCatchUpProgress(link, message.entries);
        this.#counters.catchUpEntriesReceived += message.entries;
        this.#moveCursor(peerId, { epoch: message.epoch, seq: message.seq });
        // Every change here now came from this peer or was sent to it (this node answered the
        // peer's catch-up request first): say so at once, so a quick restart resends nothing.
        if (link.claimsUpTo) this.#send(link.id, { type: 'ping', upTo: this.#store.seq });
        return;
      case 'ping':
        this.#advanceCursor(link, message.upTo);
        return;
      case 'digest':
        // During this node's catch-up to the peer the stores differ by design; the next round compares.
        if (link.stream?.kind === 'catch-up') return;
        if (message.root !== this.#store.digests.root()) this.#send(link.id, { type: 'buckets', digests: this.#store.digests.buckets() });
        return;
      case 'buckets': {
        const buckets = differingBuckets(this.#store.digests.buckets(), message.digests);
        if (buckets.length === 0) return;
        // Ask first: the peer then answers with what it had, not with what this node is about to send it.
        this.#send(link.id, { type: 'bucket-request', buckets });
        this.#requestRepair(link, bucketFlags(buckets));
        return;
      }
      case 'bucket-request':
        this.#requestRepair(link, bucketFlags(message.buckets));
        return;
      case 'peer-list':
        link.reportedPeers = message.addresses;
        this.#learnPeers(peerId, message.addresses);
        return;
      case 'ack': {
        this.#know(message.node);
        const pending = this.#pendingAcks.get(message.ack);
        if (pending !== undefined) {
          if (message.ok) pending.ackers.add(message.node);
          else pending.refusedBy ??= message.node;
          this.#settleAck(message.ack, pending);
          return;
        }
        const route = this.#ackRoutes.get(message.ack);
        if (route !== undefined && this.#table.link(route) !== undefined) this.#send(route, message);
        return;
      }
    }
  }

  /**
   * An acknowledgement round: merge as usual, then, the first time this round
   * is seen, pass the entries on (changed or not, so that nodes that already
   * had them answer too) and answer along the way back.
   */
  #mergeForAck(link: Link, entries: readonly Entry[], seen: readonly string[], ack: string): void {
    const firstTime = !this.#ackRoutes.has(ack) && !this.#pendingAcks.has(ack);
    this.#merge(link, entries, seen, firstTime ? ack : undefined);
    if (!firstTime) return;
    this.#ackRoutes.set(ack, link.id);
    if (this.#ackRoutes.size > MAX_ACK_ROUTES) this.#ackRoutes.delete(this.#ackRoutes.keys().next().value!);
    const ok = entries.every((entry) => {
      const stored = this.#store.get(entry.key);
      return stored !== undefined && compareEntries(stored, entry) === 0;
    });
    this.#send(link.id, { type: 'ack', ack, node: this.id, ok });
  }

  #startAckRound(link: Link, request: Extract<Request, { type: 'set' }>): void {
    const ack = `${this.epoch}.${++this.#ackRounds}`;
    if (!this.#write(request.key, request.value, ack)) return this.#reply(link.id, request.id, false);
    const pending: PendingAck = {
      link: link.id,
      requestId: request.id,
      entry: this.#store.get(request.key)!,
      wanted: request.acks!,
      deadlineMs: this.#monotonic() + (request.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS),
      ackers: new Set(),
      refusedBy: null,
    };
    this.#pendingAcks.set(ack, pending);
    this.#settleAck(ack, pending);
  }

  #wantedAcks(pending: PendingAck): number {
    return pending.wanted === 'all' ? this.#knownNodes.size + 1 : pending.wanted;
  }

  /** Answers a pending `set` once enough nodes hold the write, or once it lost to an older write. */
  #settleAck(ack: string, pending: PendingAck): void {
    const stored = this.#store.get(pending.entry.key);
    const lost = pending.refusedBy !== null || stored === undefined || compareEntries(stored, pending.entry) !== 0;
    const have = pending.ackers.size + 1;
    if (!lost && have < this.#wantedAcks(pending)) return;
    this.#pendingAcks.delete(ack);
    this.#send(pending.link, { type: 'reply', id: pending.requestId, result: !lost, acks: have });
  }

  #know(nodeId: string): void {
    if (nodeId !== this.id && this.#knownNodes.size < MAX_KNOWN_NODES) this.#knownNodes.add(nodeId);
  }

  /** No link to this peer vouches with `upTo` any more (its links changed); see Link.claimsUpTo. */
  #withdrawClaims(peerId: string): void {
    for (const link of this.#table.peerLinkList()) {
      if (link.peerId !== peerId) continue;
      link.claimsUpTo = false;
      // A catch-up still going out on it may not grant the claim when it ends either.
      if (link.stream !== null) link.stream.mayClaim = false;
    }
  }

  /** Moves this node's cursor into the peer's feed to `upTo`, once the link's catch-up is done. */
  #advanceCursor(link: Link, upTo: number | undefined): void {
    const cursor = this.#cursors.get(link.peerId!);
    if (link.caughtUp && upTo !== undefined && cursor !== undefined && upTo > cursor.seq) {
      this.#moveCursor(link.peerId!, { epoch: cursor.epoch, seq: upTo });
    }
  }

  #moveCursor(peerId: string, cursor: Cursor): void {
    this.#cursors.set(peerId, cursor);
    this.#effects.push({ type: 'cursor', peerId, cursor });
  }

  /**
   * Sends a peer this node's entries of some buckets, as a stream: at most one
   * per link at a time, the buckets of requests that come meanwhile merged
   * into the next one, so that no number of requests queues more than one
   * pass over the store, and no more than one pass per half period starts.
   */
  #requestRepair(link: Link, buckets: readonly boolean[]): void {
    if (link.stream === null && link.pendingRepair === null && this.#mayRepair(link)) {
      this.#startRepair(link, buckets);
      return;
    }
    this.#counters.repairRequestsMerged++;
    this.#mergePendingRepair(link, buckets);
  }

  /** Adds buckets to the repair a link will get next. */
  #mergePendingRepair(link: Link, buckets: readonly boolean[]): void {
    const pending = (link.pendingRepair ??= new Array<boolean>(BUCKET_COUNT).fill(false));
    buckets.forEach((wanted, bucket) => {
      if (wanted) pending[bucket] = true;
    });
  }

  /**
   * A repair starts at most once per half anti-entropy period on a link: an
   * honest peer asks once per round, and a peer that asks without end gets
   * one pass over the store per half period, not one after the other.
   */
  #mayRepair(link: Link): boolean {
    return this.#monotonic() - link.repairStartedAtMs >= this.#timing.antiEntropyIntervalMs / 2;
  }

  #startRepair(link: Link, buckets: readonly boolean[]): void {
    link.repairStartedAtMs = this.#monotonic();
    const share = buckets.filter(Boolean).length / BUCKET_COUNT;
    link.stream = { kind: 'repair', batches: batchEntries(this.#store.entriesInBuckets(buckets), this.#batchLength), full: false, buckets, entries: 0, mayClaim: false, expected: Math.round(this.#store.size * share) };
    this.#pump(link);
  }

  /** Starts the repairs asked for meanwhile, on links whose stream ended and whose last repair is old enough. */
  #startPendingRepairs(): void {
    for (const link of this.#table.peerLinkList()) {
      if (link.pendingRepair === null || link.stream !== null || !this.#mayRepair(link)) continue;
      const buckets = link.pendingRepair;
      link.pendingRepair = null;
      this.#startRepair(link, buckets);
    }
  }

  #sendPeerList(linkId: LinkId): void {
    const recipient = this.#table.link(linkId)?.address;
    const addresses = [...this.#table.peerLinks().values()]
      .map((id) => this.#table.link(id)?.address)
      .filter((address): address is string => typeof address === 'string' && address !== recipient)
      .slice(0, MAX_PEER_LIST);
    if (addresses.length > 0) this.#send(linkId, { type: 'peer-list', addresses });
  }

  #learnPeers(fromPeerId: string, addresses: readonly string[]): void {
    if (!this.#peerExchange) return;
    const nowMs = this.#monotonic();
    const room = Math.min(MAX_LEARNED_PEERS - this.#table.targetCount('learned'), MAX_DIAL_TARGETS - this.#table.targetTotal, this.#learning.room(nowMs));
    const isKnown = (address: string) =>
      address === this.#address || this.#table.target(address) !== undefined || this.#table.hasPeerAt(address) || this.#learning.wasForgotten(address, nowMs);
    for (const address of addressesToLearn(addresses, isKnown, room)) {
      this.#counters.peersLearned++;
      this.#learning.learnt(nowMs);
      this.#log('info', 'peer-learnt', `learnt peer ${address} from ${fromPeerId}`, { address, from: fromPeerId });
      this.#addTarget(address, 'learned');
    }
  }

  written(linkId: LinkId, bytes: number): void {
    const link = this.#table.link(linkId);
    if (link === undefined) return;
    link.unsentBytes = Math.max(0, link.unsentBytes - bytes);
    if (link.unsentBytes <= OUTBOUND_BUDGET_BYTES) link.overBudgetSinceMs = null;
    if (link.paused) this.#release(link);
    if (link.stream !== null) this.#pump(link);
  }

  /**
   * Sends a link's stream batch by batch while less than STREAM_WINDOW_BATCHES
   * batches' worth wait on it, so that a node holding millions of keys never queues them all
   * at once; ends a catch-up with `caught-up`, then starts the repair asked
   * for meanwhile, if any.
   */
  #pump(link: Link): void {
    while (link.stream !== null && link.unsentBytes < STREAM_WINDOW_BATCHES * this.#batchLength) {
      const stream = link.stream;
      const next = stream.batches.next();
      if (next.done !== true) {
        stream.entries += next.value.length;
        if (stream.kind === 'catch-up') this.#counters.catchUpEntriesSent += next.value.length;
        else this.#counters.repairEntriesSent += next.value.length;
        this.#send(link.id, stream.kind === 'catch-up' ? { type: 'entries', entries: next.value, expected: stream.expected } : { type: 'entries', entries: next.value });
        continue;
      }
      link.stream = null;
      if (stream.kind === 'catch-up') {
        // The iteration's result: the sequence number up to which every change went out.
        this.#send(link.id, { type: 'caught-up', epoch: this.epoch, seq: next.value as number, full: stream.full, entries: stream.entries });
        // From here on this link may vouch for this node's changes, if they all go out on it: it
        // is the peer's fan-out link now, and loses the right when the set of links to the peer
        // changes (the fan-out link may change, and what went out on a lost link may be lost),
        // also while the catch-up was going out.
        link.claimsUpTo = stream.mayClaim && this.#table.peerLinks().get(link.peerId!) === link.id;
      }
      if (link.pendingRepair !== null && this.#mayRepair(link)) {
        const buckets = link.pendingRepair;
        link.pendingRepair = null;
        this.#startRepair(link, buckets);
      }
    }
  }

  closed(linkId: LinkId, reason: string): void {
    const link = this.#table.close(linkId);
    if (link === undefined) return;
    this.#watching.delete(linkId);
    const target = this.#table.targetOfLink(linkId);
    if (link.role === 'peer') {
      this.#log('info', 'peer-lost', `lost peer ${link.peerId} at ${link.address ?? 'unknown address'} (${reason})`, { peer: link.peerId, address: link.address, reason });
      this.#withdrawClaims(link.peerId!);
      if (link.direction === 'inbound') this.#table.lostInbound(link, reason);
    }
    if (target === undefined) return;
    target.link = null;
    // Halted (#halt): answered and logged already, and not dialed again.
    if (target.halted !== null) return;
    if (target.peerId !== null && this.#table.peerLink(target.peerId) !== undefined) {
      // The node is connected through another link (one link per pair): nothing failed. Dialed again once that link is gone.
      target.nextDialAtMs = this.#monotonic() + retryDelayMs(1, this.#random());
      return;
    }
    target.failures = link.role === 'peer' ? 1 : target.failures + 1;
    target.lastError = reason;
    target.nextDialAtMs = this.#monotonic() + retryDelayMs(target.failures, this.#random());
    if (target.source === 'learned' && target.failures >= LEARNED_MAX_FAILURES) {
      // A learnt address may be stale: stop dialing it rather than forever.
      this.#table.removeTarget(target.address);
      this.#learning.forgot(target.address, this.#monotonic());
      this.#log('info', 'peer-forgotten', `forgot learnt peer ${target.address} after ${target.failures} failed dials (${reason})`, { address: target.address, failures: target.failures, reason });
      return;
    }
    if (link.role !== 'peer' && !target.failureLogged) {
      target.failureLogged = true;
      this.#log('warn', 'peer-unreachable', `cannot reach peer ${target.address} (${reason}); retrying in the background`, { address: target.address, reason });
    }
    this.#answerAddPeer(target.address, { address: target.address, connected: false, id: target.peerId, error: reason, retrying: true });
  }

  takeReady(): Ready {
    if (this.#watching.size > 0) this.#flushWatchers();
    return groupEffects(withText(coalesceEntries(this.#effects.splice(0, this.#effects.length), this.#batchLength)));
  }

  // --- internals --------------------------------------------------------

  #dialDue(): void {
    // A node that cannot write leaves its peers until it can (storageFailed).
    if (this.#storageFailure !== null) return;
    for (const target of this.#table.dueTargets(this.#monotonic())) {
      const link = this.#table.open('outbound', this.#monotonic());
      // Waiting for the challenge from the start: it may come before the adapter reports the link open.
      if (this.#secrets.length > 0) link.auth = { state: 'awaiting-challenge' };
      target.link = link.id;
      this.#effects.push({ type: 'dial', link: link.id, address: target.address });
    }
  }

  #handshake(link: Link, type: 'hello' | 'welcome', protocol: number, peerId: string, address: string): void {
    const expected = link.direction === 'inbound' ? 'hello' : 'welcome';
    if (type !== expected || link.role === 'peer') {
      this.#reject(link, null, new ProtocolError('BAD_MESSAGE', `unexpected "${type}" on an ${link.direction} link that ${link.role === 'peer' ? 'already did its handshake' : `expects "${expected}"`}`));
      return;
    }
    if (link.auth.state === 'done' && link.auth.peerId !== peerId) {
      this.#counters.authFailures++;
      this.#refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `"${type}" names node ${peerId}, but the connection authenticated as ${link.auth.peerId}`);
      return;
    }
    const target = this.#table.targetOfLink(link.id);
    if (protocol !== PROTOCOL_VERSION) {
      this.#reject(link, null, new ProtocolError('PROTOCOL_MISMATCH', `peer speaks protocol ${protocol}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both`));
      this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.PROTOCOL_MISMATCH, reason: 'protocol version mismatch' });
      // A dialed node answered in another version: redialing gets the same answer.
      if (target !== undefined) this.#halt(target, `node ${peerId} speaks protocol ${protocol}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both`);
      return;
    }
    if (peerId === this.id) {
      // A node that dialed itself: answer, so that the dialing side sees its own id and stops.
      if (type === 'hello') {
        this.#send(link.id, { type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: this.id, address: this.#address });
        return;
      }
      if (target !== undefined) {
        this.#table.removeTarget(target.address);
        this.#log('warn', 'peer-is-self', `peer address ${target.address} is this node itself; not dialing it again (remove it from "peers")`, { address: target.address });
        this.#answerAddPeer(target.address, { address: target.address, connected: false, id: this.id, error: 'that address is this node itself', retrying: false });
      }
      this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.SELF, reason: 'connected to itself' });
      return;
    }
    if (target !== undefined) target.peerId = peerId;
    if (this.#storageFailure !== null) {
      this.#reject(link, null, new BbyError('STORAGE_FAILED', `node ${this.id} cannot write to its disk now; it rejoins the mesh once it can`));
      this.#effects.push({ type: 'close', link: link.id, code: CLOSE_CODES.STORAGE_FAILED, reason: 'storage failed' });
      return;
    }
    const existing = this.#table.peerLink(peerId);
    if (existing !== undefined && !this.#replaces(link, existing, peerId)) {
      this.#closeDuplicate(link, existing);
      return;
    }
    link.role = 'peer';
    link.peerId = peerId;
    link.peerSinceMs = this.#monotonic();
    if (existing !== undefined) this.#closeDuplicate(existing, link);
    this.#table.found(peerId);
    this.#know(peerId);
    this.#withdrawClaims(peerId);
    link.address = target?.address ?? dialableAddress(address);
    if (type === 'hello') {
      this.#send(link.id, { type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: this.id, address: this.#address });
    }
    if (target !== undefined) {
      target.failures = 0;
      target.lastError = null;
      target.failureLogged = false;
      this.#answerAddPeer(target.address, { address: target.address, connected: true, id: peerId, retrying: false });
    }
    this.#log('info', 'peer-connected', `connected to peer ${peerId} at ${link.address ?? 'unknown address'} (${link.direction})`, { peer: peerId, address: link.address, direction: link.direction });
    // Catch-up: ask for what changed since this node's cursor into the peer's feed (everything without one).
    this.#send(link.id, { type: 'catch-up', since: this.#cursors.get(peerId) ?? null });
    if (this.#peerExchange) this.#sendPeerList(link.id);
  }

  /**
   * Whether a new link to a connected peer replaces its `existing` one (one
   * link per pair). An existing link that looks dead (nothing heard on it for
   * two heartbeat periods, where a live peer pings every period) is replaced:
   * the peer restarted, or its network came back. Two dials that crossed
   * (the existing link is in the other direction and became a peer link less
   * than CROSSED_DIALS_WINDOW_MS ago) keep the dial of the smaller id, on both
   * nodes, whatever the order their handshakes finished in. Any other second
   * link is refused, and its dialer retries until the old link is gone: a
   * connection claiming the id of a live peer (an impostor) never takes its
   * place, whichever way it came.
   */
  #replaces(link: Link, existing: Link, peerId: string): boolean {
    const nowMs = this.#monotonic();
    if (nowMs - existing.lastHeardAtMs > 2 * this.#timing.heartbeatIntervalMs) return true;
    if (link.direction === existing.direction || nowMs - existing.peerSinceMs >= CROSSED_DIALS_WINDOW_MS) return false;
    // This node dialed its outbound link: that one is the dial of the smaller id when this node's id is the smaller.
    return (link.direction === 'outbound') === this.id < peerId;
  }

  /** Closes `loser`, a second link to the node `winner` leads to. */
  #closeDuplicate(loser: Link, winner: Link): void {
    this.#counters.duplicateLinksClosed++;
    const peerId = winner.peerId ?? loser.peerId;
    const reason = `duplicate link: already connected to node ${peerId ?? 'unknown'}`;
    this.#log('info', 'duplicate-link', `closed a second link to ${peerId ?? 'a peer'} (${loser.direction}); one link per pair is kept (${winner.direction})`, { peer: peerId, closed: loser.direction, kept: winner.direction });
    this.#effects.push({ type: 'close', link: loser.id, code: CLOSE_CODES.DUPLICATE_LINK, reason });
    const target = this.#table.targetOfLink(loser.id);
    if (target !== undefined && peerId !== null) this.#answerAddPeer(target.address, { address: target.address, connected: true, id: peerId, retrying: false });
    this.closed(loser.id, reason);
  }

  #merge(link: Link, entries: readonly Entry[], seen: readonly string[], ack?: string): void {
    const changed: Entry[] = [];
    const latestMs = this.#now() + this.#maxClockSkewMs;
    let fromFuture: Entry | undefined;
    for (const entry of entries) {
      if (entry.timestamp > latestMs) {
        // A clock far ahead must not decide which write is the oldest: the entry is refused here (anti-entropy offers it again later).
        this.#counters.entriesFromFuture++;
        fromFuture ??= entry;
        continue;
      }
      const result = this.#store.merge(entry);
      if (result.conflict) {
        this.#counters.conflicts++;
        const winner = this.#store.get(entry.key)!;
        this.#log('info', 'conflict', `conflict on key ${quoted(entry.key)}: kept the oldest write (from ${winner.origin} at ${winner.timestamp})`, { key: entry.key, origin: winner.origin, timestamp: winner.timestamp });
        if (this.#watching.size > 0) this.#watchWrite(winner, link.peerId, true);
      }
      if (result.duplicate) this.#counters.duplicatesDropped++;
      if (result.changed) {
        this.#counters.entriesApplied++;
        this.#effects.push({ type: 'persist', entry, seq: this.#store.seq });
        changed.push(entry);
        if (this.#watching.size > 0 && !result.conflict) this.#watchWrite(entry, link.peerId, false);
      }
    }
    // A live forward (catch-up and repair batches carry no `seen`): how old its newest write was on arrival.
    if (seen.length > 0 && changed.length > 0) {
      let newestMs = -Infinity;
      for (const entry of changed) if (entry.timestamp > newestMs) newestMs = entry.timestamp;
      link.lagMs = Math.max(0, this.#now() - newestMs);
    }
    if (fromFuture !== undefined) {
      const aheadMs = fromFuture.timestamp - this.#now();
      this.#logFromOutside(`future:${link.peerId}`, 'entries-from-future', `refused entries from peer ${link.peerId} stamped too far in the future (key ${quoted(fromFuture.key, 60)} from ${fromFuture.origin} is ${aheadMs} ms ahead of this node's clock; "maxClockSkewMs" is ${this.#maxClockSkewMs}): check the clocks of the mesh`, { peer: link.peerId, key: fromFuture.key, aheadMs });
    }
    // Only what changed this store travels on: an entry is forwarded at most once per node
    // (an acknowledgement round travels whole, once per round).
    if (ack !== undefined) this.#forward(entries.filter((entry) => entry.timestamp <= latestMs), link.peerId, seen, ack);
    else if (changed.length > 0) this.#forward(changed, link.peerId, seen);
  }

  /**
   * Sends entries to every peer that is neither their sender nor in `seen`
   * (nodes an earlier hop already sent them to), and names those peers in the
   * message's own `seen`. In a full mesh a write thus reaches each node once.
   */
  #forward(entries: readonly Entry[], fromPeerId: string | null, seen: readonly string[], ack?: string): void {
    const peers = this.#table.peerLinks();
    // A node alone (or whose peers are all down) has no one to tell: the common case of one node, at every set.
    if (peers.size === 0) return;
    const skip = new Set(seen);
    skip.add(this.id);
    if (fromPeerId !== null) skip.add(fromPeerId);
    const targets = [...peers].filter(([peerId]) => !skip.has(peerId));
    if (targets.length === 0) return;
    const nextSeen = [...skip, ...targets.map(([peerId]) => peerId)].slice(0, MAX_SEEN);
    const batches = [...batchEntries(entries, this.#batchLength)];
    batches.forEach((batch, index) => {
      const message: EntriesMessage = { type: 'entries', entries: batch, seen: nextSeen, ...(ack === undefined ? {} : { ack }) };
      // Only the last batch moves the receivers' cursors: the earlier ones may still be lost with the link.
      const withUpTo: EntriesMessage = index === batches.length - 1 ? { ...message, upTo: this.#store.seq } : message;
      for (const [, linkId] of targets) this.#send(linkId, this.#table.link(linkId)!.claimsUpTo ? withUpTo : message);
    });
  }

  #handleRequest(link: Link, request: Request): void {
    switch (request.type) {
      case 'get':
        return this.#reply(link.id, request.id, this.get(request.key));
      case 'set':
      case 'set-many':
      case 'add-peer':
        if (this.#storageFailure !== null) return this.#reject(link, request.id, this.#storageError());
        break;
    }
    switch (request.type) {
      case 'set':
        if (request.acks !== undefined) return this.#startAckRound(link, request);
        // The parser already checked the key and the value.
        return this.#reply(link.id, request.id, this.#write(request.key, request.value, undefined));
      case 'set-many':
        return this.#reply(link.id, request.id, this.#writeMany(request.entries));
      case 'keys':
        return this.#keysPage(link, request);
      case 'peers': {
        const rows = this.peers();
        const omitted = Math.max(0, rows.length - MAX_PEERS_LISTED);
        return this.#send(link.id, { type: 'reply', id: request.id, result: rows.slice(0, MAX_PEERS_LISTED), ...(omitted > 0 ? { omitted } : {}) });
      }
      case 'stats':
        return this.#reply(link.id, request.id, this.stats());
      case 'watch':
        return this.#watch(link, request);
      case 'add-peer':
        return this.#addPeerRequest(link, request.id, request.address);
      case 'remove-peer':
        return this.#removePeerRequest(link, request.id, request.address);
    }
  }

  /**
   * A page of keys in slot order. The cursor is the next slot and a hash of
   * the key before it: slots are never freed, so a listing sees every key
   * stored before it began, but they are numbered anew at each start, and the
   * hash tells a cursor from an earlier run.
   */
  #keysPage(link: Link, request: Extract<Request, { type: 'keys' }>): void {
    let start = 0;
    if (request.cursor !== undefined) {
      const [slotText, hash, ...rest] = request.cursor.split('.');
      start = Number(slotText);
      if (rest.length > 0 || hash === undefined || !/^[0-9]+$/.test(slotText!) || !/^[0-9a-f]{1,8}$/.test(hash)) {
        return this.#reject(link, request.id, new ProtocolError('BAD_MESSAGE', 'bad "cursor": not one this node gave; pass the "cursor" of the previous keys reply as it is, or none to start'));
      }
      const previous = Number.isSafeInteger(start) && start > 0 && start <= this.#store.size ? this.#store.keysPage(start - 1, 1, Infinity).keys[0] : undefined;
      if (previous === undefined || keyCheck(previous) !== hash) {
        return this.#reject(link, request.id, new ProtocolError('STALE_CURSOR', 'this cursor is not from this run of the node (it restarted since the listing began); list again from the start'));
      }
    }
    const { keys, next } = this.#store.keysPage(start, request.limit ?? Infinity, MAX_KEYS_PAGE_LENGTH);
    const more = next < this.#store.size;
    this.#send(link.id, { type: 'reply', id: request.id, result: keys, ...(more ? { cursor: `${next}.${keyCheck(keys.at(-1)!)}` } : {}) });
  }

  /** The normalized address of a request, or undefined once it was refused with BAD_ADDRESS. */
  #requestAddress(link: Link, id: RequestId, text: string): string | undefined {
    try {
      return parseAddress(text).address;
    } catch (error) {
      if (!(error instanceof BbyError)) throw error;
      this.#reject(link, id, error);
      return undefined;
    }
  }

  #addPeerRequest(link: Link, id: RequestId, text: string): void {
    const address = this.#requestAddress(link, id, text);
    if (address === undefined) return;
    const existing = this.#table.target(address);
    if (existing?.source === 'learned') {
      // Asked for by name now: keep it like any added peer (never forgotten, kept across restarts).
      existing.source = 'added';
      this.#effects.push({ type: 'peer-added', address });
    }
    if (existing === undefined && this.#table.targetTotal >= MAX_DIAL_TARGETS) {
      return this.#reject(link, id, new BbyError('TOO_MANY_PEERS', `this node already dials ${MAX_DIAL_TARGETS} addresses, the most it keeps; remove one first (bby CONFIG remove-peer HOST:PORT)`));
    }
    // Connected already, through its link or one the peer dialed (one link per pair): nothing to wait for.
    const existingLink = existing?.link == null ? undefined : this.#table.link(existing.link);
    const connected = existingLink?.role === 'peer' ? existingLink : (this.#table.peerAt(address) ?? (existing?.peerId == null ? undefined : this.#table.peerLink(existing.peerId)));
    if (existing === undefined) {
      this.#effects.push({ type: 'peer-added', address });
      this.#addTarget(address, 'added');
      this.#log('info', 'peer-added', `added peer ${address} at a client's request`, { address });
    }
    if (connected !== undefined) {
      const target = this.#table.target(address);
      if (target !== undefined) target.peerId ??= connected.peerId;
      return this.#reply(link.id, id, { address, connected: true, id: connected.peerId, retrying: false } satisfies AddPeerResult);
    }

    const waiters = this.#addPeerWaiters.get(address) ?? [];
    waiters.push({ link: link.id, id });
    this.#addPeerWaiters.set(address, waiters);
    if (existing !== undefined && existing.link === null) {
      // Asked explicitly: dial now rather than at the end of the backoff, halted (another protocol version) or not.
      this.#resume(existing);
    }
  }

  #removePeerRequest(link: Link, id: RequestId, text: string): void {
    const address = this.#requestAddress(link, id, text);
    if (address === undefined) return;
    const fromConfig = this.#table.target(address)?.source === 'config';
    const removed = this.removePeer(address);
    const note = fromConfig ? 'it is in the config file: it comes back at the next start unless removed there' : undefined;
    this.#reply(link.id, id, { address, removed, ...(note === undefined ? {} : { note }) } satisfies RemovePeerResult);
  }

  #answerAddPeer(address: string, result: AddPeerResult): void {
    const waiters = this.#addPeerWaiters.get(address);
    if (waiters === undefined) return;
    this.#addPeerWaiters.delete(address);
    for (const waiter of waiters) if (this.#table.link(waiter.link) !== undefined) this.#reply(waiter.link, waiter.id, result);
  }

  /** A client subscribes to the writes and, unless it says otherwise, to the mesh state (WatchRequest). */
  #watch(link: Link, request: WatchRequest): void {
    const watcher: Watcher = { requestId: request.id, valueChars: request.values ?? 0, state: request.state ?? true, pending: [], pendingChars: 0, dropped: 0, droppingSinceMs: null };
    link.watch = watcher;
    this.#watching.set(link.id, link);
    this.#reply(link.id, request.id, { watching: true, node: this.id, stateIntervalMs: watcher.state ? WATCH_STATE_INTERVAL_MS : 0 });
    if (watcher.state) this.#sendState(link, watcher);
  }

  /** Queues a write for every watcher; it goes out with the next `takeReady` (#flushWatchers), or is counted as dropped. */
  #watchWrite(entry: Entry, from: string | null, conflict: boolean): void {
    for (const link of this.#watching.values()) {
      const watcher = link.watch!;
      const cut = entry.value.length > watcher.valueChars;
      const value = watcher.valueChars === 0 ? undefined : cut ? entry.value.slice(0, watcher.valueChars) : entry.value;
      const chars = 64 + jsonStringLength(entry.key) + entry.origin.length + (from?.length ?? 0) + (value === undefined ? 0 : jsonStringLength(value));
      if (watcher.pendingChars + chars > MAX_WATCH_PENDING_CHARS) {
        watcher.dropped++;
        this.#counters.watchEventsDropped++;
        continue;
      }
      watcher.pendingChars += chars;
      watcher.pending.push({
        key: entry.key,
        origin: entry.origin,
        timestamp: entry.timestamp,
        from,
        ...(value === undefined ? {} : { value }),
        ...(cut && value !== undefined ? { cut: true } : {}),
        ...(conflict ? { conflict: true } : {}),
      });
    }
  }

  /** Sends each watcher the writes queued for it, in one message, unless it is behind on reading (then they are counted as dropped). */
  #flushWatchers(): void {
    for (const link of this.#watching.values()) {
      const watcher = link.watch!;
      if (watcher.pending.length === 0) continue;
      const writes = watcher.pending.splice(0, watcher.pending.length);
      watcher.pendingChars = 0;
      if (!this.#mayWatch(link, watcher, writes.length)) continue;
      this.#send(link.id, { type: 'watch-writes', id: watcher.requestId, writes, ...(watcher.dropped > 0 ? { dropped: watcher.dropped } : {}) });
      watcher.dropped = 0;
    }
  }

  /** Whether a watcher has read enough to be sent more; if not, `count` events are counted as dropped. */
  #mayWatch(link: Link, watcher: Watcher, count: number): boolean {
    if (link.unsentBytes <= WATCH_BUDGET_BYTES) {
      watcher.droppingSinceMs = null;
      return true;
    }
    watcher.dropped += count;
    this.#counters.watchEventsDropped += count;
    watcher.droppingSinceMs ??= this.#monotonic();
    return false;
  }

  #sendState(link: Link, watcher: Watcher): void {
    if (!this.#mayWatch(link, watcher, 1)) return;
    this.#send(link.id, { type: 'watch-state', id: watcher.requestId, status: this.status(), stats: this.stats(), ...(watcher.dropped > 0 ? { dropped: watcher.dropped } : {}) });
    watcher.dropped = 0;
  }

  /**
   * Every WATCH_STATE_INTERVAL_MS, the mesh state to each watcher that asked
   * for it; a watcher that has read nothing for SLOW_LINK_TIMEOUT_MS while
   * events were left out for it is closed (4008), as any slow link.
   */
  #tickWatchers(nowMs: number): void {
    const due = nowMs >= this.#nextWatchStateAtMs;
    if (due) this.#nextWatchStateAtMs = nowMs + WATCH_STATE_INTERVAL_MS;
    for (const link of [...this.#watching.values()]) {
      const watcher = link.watch!;
      if (link.unsentBytes <= WATCH_BUDGET_BYTES) watcher.droppingSinceMs = null;
      if (watcher.droppingSinceMs !== null && nowMs - watcher.droppingSinceMs > SLOW_LINK_TIMEOUT_MS) {
        this.#closeTooSlow(link, `a watcher that read nothing for ${nowMs - watcher.droppingSinceMs} ms`);
        continue;
      }
      if (due && watcher.state) this.#sendState(link, watcher);
    }
  }

  /** About once a second, one line per catch-up under way to this node: entries received of expected, and the rate. */
  #logCatchUps(nowMs: number): void {
    for (const link of this.#table.peerLinkList()) {
      const progress = link.catchUpIn;
      if (progress === null || progress.done || nowMs - progress.loggedAtMs < CATCH_UP_LOG_INTERVAL_MS) continue;
      const rate = ((progress.entries - progress.loggedEntries) * 1000) / (nowMs - progress.loggedAtMs);
      progress.loggedAtMs = nowMs;
      progress.loggedEntries = progress.entries;
      const of = progress.expected === null ? '' : ` of about ${progress.expected} (${Math.min(100, Math.floor((100 * progress.entries) / Math.max(1, progress.expected)))} %)`;
      this.#log('info', 'catch-up-progress', `catching up from ${link.peerId}: ${progress.entries} entries received${of}, ${Math.round(rate)}/s`, { peer: link.peerId, entries: progress.entries, expected: progress.expected, perSecond: Math.round(rate) });
    }
  }

  /** A catch-up to this node ended; said in the log when its progress was (it lasted more than a second). */
  #endCatchUpProgress(link: Link, entries: number): void {
    const progress = (link.catchUpIn ??= { entries, expected: entries, done: true, loggedAtMs: this.#monotonic(), loggedEntries: 0 });
    const logged = !progress.done && progress.loggedEntries > 0;
    progress.done = true;
    progress.entries = Math.max(progress.entries, entries);
    if (logged) this.#log('info', 'caught-up', `caught up from ${link.peerId}: ${progress.entries} entries received`, { peer: link.peerId, entries: progress.entries });
  }

  #reply(link: LinkId, id: RequestId, result: unknown): void {
    this.#send(link, { type: 'reply', id, result });
  }

  #reject(link: Link, id: RequestId | null, error: BbyError): void {
    this.#counters.errors++;
    this.#send(link.id, { type: 'error', id, code: error.code, message: error.message });
  }

  #send(link: LinkId, message: Message): void {
    this.#counters.messagesSent++;
    const bytes = frameLength(message);
    const state = this.#table.link(link);
    if (state !== undefined) {
      state.lastSentAtMs = this.#monotonic();
      state.unsentBytes += bytes;
      if (state.unsentBytes > OUTBOUND_BUDGET_BYTES) {
        state.overBudgetSinceMs ??= this.#monotonic();
        // A peer is never left unread (flow-control.ts): one far behind is let go, and catches up when it is back.
        if (state.role === 'peer' && state.unsentBytes > PEER_OUTBOUND_LIMIT_BYTES) this.#closeTooSlow(state, `more than ${PEER_OUTBOUND_LIMIT_BYTES} bytes waiting`);
      }
    }
    this.#effects.push({ type: 'send', link, message, bytes });
  }

  #log(level: 'info' | 'warn', event: string, message: string, fields?: LogFields): void {
    this.#effects.push(fields === undefined ? { type: 'log', level, event, message } : { type: 'log', level, event, message, fields });
  }
}

/** A flag per bucket, set for the given bucket indexes. */
function bucketFlags(buckets: readonly number[]): boolean[] {
  const flags = new Array<boolean>(BUCKET_COUNT).fill(false);
  for (const bucket of buckets) flags[bucket] = true;
  return flags;
}

/** A 12-character id from the injected random source. */
function randomId(random: () => number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let id = '';
  for (let i = 0; i < 12; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}

/** The part of a `keys` cursor that ties it to the key before its slot. */
function keyCheck(key: string): string {
  return (hashKey(key, 0) >>> 0).toString(16);
}

/** A `keys` reply holds at most about this many characters of keys, to stay far below the message limit. */
export const MAX_KEYS_PAGE_LENGTH = MAX_BATCH_CHARS;
