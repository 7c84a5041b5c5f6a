/**
 * A bby node without I/O: it reacts to events (a frame from a link, a link
 * opening or closing, a client call, a tick) and queues effects (frames to
 * send, entries to persist, addresses to dial, links to close, lines to log)
 * that an adapter takes as one typed batch with `takeReady()` and carries out
 * (ready.ts says in what order; durability.ts decides when).
 *
 * This file is the dispatcher: it parses a frame, checks what the link's
 * state allows (link-state.ts), and hands the event to the concern that owns
 * it, one file each: handshake.ts, client-requests.ts, broadcast.ts,
 * ack-rounds.ts, catch-up.ts, anti-entropy.ts (both stream through
 * outbound-stream.ts), failure-detector.ts, watchers.ts, dials.ts. They share
 * one NodeContext (node-context.ts), which queues every effect in order.
 *
 * House rules, as in etcd's raft: no sockets, no timers, no disk, no
 * reading the clock, no random numbers of its own here; time and randomness come from the
 * options, so many nodes can run in one test process, deterministically.
 *
 * Ordering duty of the adapter (ready.ts): a batch's `persist` is durable
 * before anything else of it is carried out, because a `set` reply that says
 * `true` promises the write is kept.
 */
import { AckRounds } from './ack-rounds.js';
import { AntiEntropy } from './anti-entropy.js';
import { Broadcast } from './broadcast.js';
import { CatchUp } from './catch-up.js';
import { ClientRequests } from './client-requests.js';
import { CLOSE_CODES } from './close-codes.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from './config.js';
import { Dials } from './dials.js';
import { type Entry } from './entry.js';
import { BbyError, ProtocolError } from './errors.js';
import { closeSlowLinks, detectSilentPeers } from './failure-detector.js';
import { MAX_HELD_BYTES, OUTBOUND_BUDGET_BYTES, OUTBOUND_RESUME_BYTES } from './flow-control.js';
import { Handshake } from './handshake.js';
import { hashKey } from './key-index.js';
import { isWellFormed, MAX_BATCH_CHARS } from './limits.js';
import { isAuthenticating, isClientState, moveLink, peerIdOf } from './link-state.js';
import { printable, quoted } from './log-text.js';
import { NodeContext, type QueuedSend } from './node-context.js';
import { OutboundStreams } from './outbound-stream.js';
import { isPeerLink, type Link, type LinkId, MAX_PEERS_LISTED, type PeerLink } from './peer-table.js';
import {
  checkKey,
  checkValue,
  type Cursor,
  encodeMessage,
  isRequest,
  makeJSONEncodable,
  type Message,
  type NodeStatus,
  type PeerInfo,
  type PeerMessage,
  type PeerStatus,
  parseIncoming,
  PROTOCOL_VERSION,
  type Stats,
} from './protocol.js';
import { EMPTY_READY, isEmptyReady, type Ready, type SendEffect } from './ready.js';
import { type Change, Store } from './store.js';
import { coalesceEntries } from './sync.js';
import { DEFAULT_TIMING, type Timing } from './timing.js';
import { Watchers } from './watchers.js';

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

/** Encodes queued frames, each message once (a broadcast shares one message between links). */
function withText(sends: readonly QueuedSend[]): SendEffect[] {
  const texts = new Map<Message, string>();
  return sends.map(({ link, message, bytes }) => {
    let text = texts.get(message);
    if (text === undefined) {
      makeJSONEncodable(message);
      text = encodeMessage(message);
      texts.set(message, text);
    }
    return { type: 'send', link, text, message, bytes };
  });
}

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
  readonly #ctx: NodeContext;
  readonly #streams: OutboundStreams;
  readonly #catchUp: CatchUp;
  readonly #antiEntropy: AntiEntropy;
  readonly #acks: AckRounds;
  readonly #handshake: Handshake;
  readonly #requests: ClientRequests;
  readonly #broadcast: Broadcast;
  readonly #dials: Dials;
  readonly #watchers: Watchers;

  constructor(options: NodeOptions) {
    if (typeof options.id !== 'string' || options.id === '') throw new BbyError('BAD_CONFIG', 'createNode: "id" must be a non-empty string');
    this.id = options.id;
    const secrets = options.secrets ?? [];
    if (secrets.length > 0 && options.randomBytes === undefined) throw new BbyError('BAD_CONFIG', 'createNode: "secrets" need "randomBytes" (a cryptographically strong source, such as crypto.randomBytes) for the nonces');
    this.epoch = options.epoch ?? randomId(options.random);
    this.#ctx = new NodeContext({
      id: this.id,
      epoch: this.epoch,
      address: options.address ?? '',
      timing: { ...DEFAULT_TIMING, ...options.timing },
      peerExchange: options.peerExchange ?? true,
      batchLength: options.batchLength ?? MAX_BATCH_CHARS,
      now: options.now,
      monotonic: options.monotonic ?? options.now,
      random: options.random,
      // The epoch is random (or recovered): its hash seeds the store's key hash without another draw.
      store: new Store({ hashSeed: hashKey(this.epoch, 0) }),
      closed: (link, reason) => this.closed(link, reason),
    });
    // Before protocol 2 a lone surrogate was accepted; the store cannot hold one (arena.ts).
    const storable = (entry: Entry) => isWellFormed(entry.key) && isWellFormed(entry.value);
    let malformed = 0;
    for (const change of options.changes ?? []) {
      if (storable(change.entry)) this.#ctx.store.restore(change);
      else malformed++;
    }
    for (const entry of options.entries ?? []) {
      if (storable(entry)) this.#ctx.store.merge(entry);
      else malformed++;
    }
    if (malformed > 0) {
      this.#ctx.log('warn', 'stored-entries-dropped', `left out ${malformed} stored entries whose key or value is not well-formed Unicode (a lone surrogate, accepted before protocol 2); the next compaction drops them from the data folder`, { count: malformed });
    }
    this.#streams = new OutboundStreams(this.#ctx, {
      caughtUp: (link, stream, seq) => this.#catchUp.sent(link, stream, seq),
      ended: (link) => this.#antiEntropy.next(link),
    });
    this.#catchUp = new CatchUp(this.#ctx, this.#streams, options.cursors ?? {});
    this.#antiEntropy = new AntiEntropy(this.#ctx, this.#streams);
    this.#watchers = new Watchers(this.#ctx, () => ({ status: this.status(), stats: this.stats() }));
    this.#broadcast = new Broadcast(this.#ctx, this.#watchers, options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS);
    this.#acks = new AckRounds(this.#ctx, this.#broadcast);
    this.#dials = new Dials(this.#ctx, secrets.length > 0);
    this.#requests = new ClientRequests(this.#ctx, { broadcast: this.#broadcast, acks: this.#acks, watchers: this.#watchers, dials: this.#dials }, () => this.stats());
    this.#handshake = new Handshake(this.#ctx, { secrets, clientSecrets: [...(options.clientSecrets ?? []), ...secrets], randomBytes: options.randomBytes }, this.#dials, {
      joined: (link) => {
        this.#acks.know(link.state.peerId);
        this.#catchUp.withdrawClaims(link.state.peerId);
      },
      connected: (link) => {
        this.#catchUp.ask(link);
        if (this.#ctx.peerExchange) this.#dials.sendPeerList(link);
      },
    });
    for (const peer of options.peers ?? []) this.#dials.add(peer, 'config');
  }

  // --- client API -------------------------------------------------------

  set(key: string, value: string): boolean {
    checkKey(key);
    checkValue(value);
    if (this.#ctx.storageFailure !== null) throw this.#ctx.storageError();
    return this.#broadcast.write(key, value, undefined);
  }

  storageFailed(reason: string): void {
    const first = this.#ctx.storageFailure === null;
    this.#ctx.storageFailure = reason;
    if (!first) return;
    this.#ctx.log('warn', 'storage-failed', `refusing writes and leaving the peers until the data folder can be written again (${reason}); reads are still answered`, { reason });
    // Entries from peers could not be kept either, and what this node sends must never vouch for a write it lost.
    for (const link of this.#ctx.table.peerLinkList()) {
      this.#ctx.closeLink(link.id, CLOSE_CODES.STORAGE_FAILED, 'storage failed', 'this node cannot write to its disk');
    }
  }

  storageRecovered(): void {
    if (this.#ctx.storageFailure === null) return;
    this.#ctx.storageFailure = null;
    this.#ctx.log('info', 'storage-recovered', 'the data folder can be written again: taking writes and rejoining the peers');
    this.#dials.redialAll();
  }

  get(key: string): string | null {
    return this.#ctx.store.get(key)?.value ?? null;
  }

  keys(): string[] {
    return this.#ctx.store.keys();
  }

  entry(key: string): Entry | undefined {
    return this.#ctx.store.get(key);
  }

  entries(): IterableIterator<Entry> {
    return this.#ctx.store.entries();
  }

  changes(): IterableIterator<Change> {
    return this.#ctx.store.changesSince(0);
  }

  cursors(): Record<string, Cursor> {
    return this.#catchUp.cursors();
  }

  peers(): PeerInfo[] {
    return this.#ctx.table.list();
  }

  status(): NodeStatus {
    let clients = 0;
    let pending = 0;
    let peerLinks = 0;
    for (const { state } of this.#ctx.table.links()) {
      if (state.kind === 'peer') peerLinks++;
      else if (isClientState(state)) clients++;
      else pending++;
    }
    const peers: PeerStatus[] = this.#ctx.table
      .rows()
      .slice(0, MAX_PEERS_LISTED)
      .map(({ info, link, target }) => {
        const connected = info.connected && link !== undefined;
        const state = connected ? 'connected' : target?.halted != null ? 'stopped' : link !== undefined ? 'connecting' : 'down';
        const session = connected && isPeerLink(link) ? link.state.session : null;
        const stream = session?.stream ?? null;
        const catchUpIn = session?.catchUpIn ?? null;
        return {
          ...info,
          state,
          outboundBytes: connected ? link.unsentBytes : 0,
          catchUpIn: catchUpIn === null ? null : { entries: catchUpIn.entries, expected: catchUpIn.expected, done: catchUpIn.done },
          streamOut: stream === null ? null : { kind: stream.kind, entries: stream.entries, expected: stream.expected, done: false },
          lagMs: session?.lagMs ?? null,
          reportedPeers: session?.reportedPeers ?? [],
        };
      });
    return {
      id: this.id,
      nowMs: this.#ctx.wallMs(),
      epoch: this.epoch,
      seq: this.#ctx.store.seq,
      keys: this.#ctx.store.size,
      storeBytes: this.#ctx.store.heldBytes,
      storageFailure: this.#ctx.storageFailure,
      links: { peers: peerLinks, clients, pending, watchers: this.#watchers.count },
      peers,
    };
  }

  stats(): Stats {
    return {
      id: this.id,
      keys: this.#ctx.store.size,
      peers: this.#ctx.table.peerLinks().size,
      clients: this.#ctx.table.clientCount(),
      writable: this.#ctx.storageFailure === null,
      ...this.#ctx.counters,
    };
  }

  addPeer(text: string): string {
    return this.#dials.addPeer(text);
  }

  removePeer(text: string): boolean {
    return this.#dials.remove(text);
  }

  // --- adapter events ---------------------------------------------------

  accept(remote?: string): LinkId {
    return this.#handshake.accept(remote);
  }

  opened(link: LinkId): void {
    this.#handshake.opened(link);
  }

  tick(): void {
    const nowMs = this.#ctx.nowMs();
    this.#dials.abandonStalled(nowMs);
    this.#handshake.closeIdle(nowMs);
    closeSlowLinks(this.#ctx, nowMs);
    detectSilentPeers(this.#ctx, nowMs);
    this.#antiEntropy.tick(nowMs);
    this.#acks.expire(nowMs);
    this.#antiEntropy.startPendingRepairs();
    this.#catchUp.logProgress(nowMs);
    if (this.#watchers.count > 0) this.#watchers.tick(nowMs);
    this.#dials.tickPeerExchange(nowMs);
    this.#dials.dialDue();
  }

  receive(linkId: LinkId, text: string, byteLength?: number): void {
    const link = this.#ctx.table.link(linkId);
    if (link === undefined) return;
    if (link.state.kind !== 'peer' && (link.paused || link.held.length > 0 || link.unsentBytes > OUTBOUND_BUDGET_BYTES)) {
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
      this.#ctx.batch.flow.push({ type: 'pause', link: link.id });
    }
    if (link.heldBytes > MAX_HELD_BYTES) this.#ctx.closeTooSlow(link, `${link.held.length} requests waiting unread`);
  }

  /** Answers a paused client's frames while it is under its budget, and reads its socket again once they are all answered. */
  #release(link: Link): void {
    // Taken from the front in one splice at the end: shifting one by one would cost the square of the frames held.
    let taken = 0;
    while (taken < link.held.length && link.unsentBytes <= OUTBOUND_BUDGET_BYTES && this.#ctx.table.link(link.id) === link) {
      const frame = link.held[taken++]!;
      link.heldBytes -= frame.byteLength ?? frame.text.length;
      this.#process(link, frame.text, frame.byteLength);
    }
    link.held.splice(0, taken);
    if (link.paused && link.held.length === 0 && link.unsentBytes <= OUTBOUND_RESUME_BYTES && this.#ctx.table.link(link.id) === link) {
      link.paused = false;
      this.#ctx.batch.flow.push({ type: 'resume', link: link.id });
    }
  }

  /** Acts on one frame of a link. */
  #process(link: Link, text: string, byteLength: number | undefined): void {
    this.#ctx.counters.messagesReceived++;
    link.lastHeardAtMs = this.#ctx.nowMs();
    const parsed = parseIncoming(text, byteLength);
    // A refused link is being closed: nothing more it sends is read.
    if (link.state.kind === 'refused') return;
    if (isAuthenticating(link.state)) {
      this.#handshake.authenticate(link, link.state, parsed);
      return;
    }
    const credential = link.state.credential;
    if (!parsed.ok) {
      this.#ctx.reject(link, parsed.id, parsed.error);
      return;
    }
    const message = parsed.message;
    if (isRequest(message)) {
      if (link.state.kind === 'pending') moveLink(link, { kind: 'client', credential });
      this.#requests.handle(link, message);
      return;
    }
    switch (message.type) {
      case 'challenge':
      case 'auth':
      case 'authenticated':
        // A step of a handshake already done (a frame delivered twice) changes nothing.
        if (credential.role !== 'none') return;
        this.#ctx.reject(link, null, new ProtocolError('BAD_MESSAGE', `"${message.type}", but this node has no secret: it does not authenticate connections`));
        return;
      case 'reply':
      case 'error': {
        // Never answer an answer: two nodes would bounce errors forever. Logged (rate-limited) and dropped.
        const peerId = peerIdOf(link.state);
        const who = peerId === null ? `a client${link.remote === null ? '' : ` at ${link.remote}`}` : `peer ${peerId}`;
        const what = message.type === 'reply' ? `sent a reply (id ${printable(String(message.id))}) though this node asked nothing; dropped` : `reported: ${quoted(message.message)} (${printable(message.code)})`;
        this.#ctx.logFromOutside(peerId ?? link.remote ?? link.id, 'remote-report', `${who} ${what}`, { peer: peerId, remote: link.remote, code: message.type === 'error' ? printable(message.code) : null });
        // The node this one dialed refused its protocol version: it will refuse every dial.
        if (message.type !== 'error' || message.code !== 'PROTOCOL_MISMATCH' || link.direction !== 'outbound' || link.state.kind === 'peer') return;
        const target = this.#ctx.table.targetOfLink(link.id);
        if (target !== undefined) this.#dials.halt(target, `the node there refused this node's protocol ${PROTOCOL_VERSION} (${printable(message.message)})`);
        return;
      }
      default:
        if (credential.role === 'client') {
          this.#ctx.counters.forbiddenMessages++;
          this.#handshake.refuse(link, null, 'FORBIDDEN', CLOSE_CODES.FORBIDDEN, `"${message.type}" is a message of the peer protocol, and this connection authenticated as a client`);
          return;
        }
        if (message.type === 'hello' || message.type === 'welcome') {
          this.#handshake.greeted(link, credential, message.type, message.protocol, message.nodeId, message.address);
          return;
        }
        if (!isPeerLink(link)) {
          this.#ctx.reject(link, null, new ProtocolError('NOT_A_PEER', `"${message.type}" before the handshake; a peer must send "hello" first`));
          return;
        }
        this.#receiveFromPeer(link, message);
    }
  }

  #receiveFromPeer(link: PeerLink, message: Exclude<PeerMessage, { type: 'hello' | 'welcome' }>): void {
    switch (message.type) {
      case 'entries': {
        this.#catchUp.received(link, message);
        for (const nodeId of message.seen ?? []) this.#acks.know(nodeId);
        if (message.ack !== undefined) this.#acks.merge(link, message.entries, message.seen ?? [], message.ack);
        else this.#broadcast.merge(link, message.entries, message.seen ?? []);
        this.#catchUp.advanceCursor(link, message.upTo);
        return;
      }
      case 'catch-up':
        // A peer that asks again gets a new stream.
        if (link.state.session.stream !== null) this.#antiEntropy.cutShort(link, link.state.session.stream);
        this.#catchUp.answer(link, message);
        return;
      case 'caught-up':
        this.#catchUp.caughtUp(link, message);
        return;
      case 'ping':
        this.#catchUp.advanceCursor(link, message.upTo);
        return;
      case 'digest':
        this.#antiEntropy.digest(link, message);
        return;
      case 'buckets':
        this.#antiEntropy.buckets(link, message);
        return;
      case 'bucket-request':
        this.#antiEntropy.bucketRequest(link, message);
        return;
      case 'peer-list':
        link.state.session.reportedPeers = message.addresses;
        this.#dials.learnPeers(link.state.peerId, message.addresses);
        return;
      case 'ack':
        this.#acks.receive(message);
        return;
    }
  }

  written(linkId: LinkId, bytes: number): void {
    const link = this.#ctx.table.link(linkId);
    if (link === undefined) return;
    link.unsentBytes = Math.max(0, link.unsentBytes - bytes);
    if (link.unsentBytes <= OUTBOUND_BUDGET_BYTES) link.overBudgetSinceMs = null;
    if (link.paused) this.#release(link);
    if (isPeerLink(link) && link.state.session.stream !== null) this.#streams.pump(link);
  }

  closed(linkId: LinkId, reason: string): void {
    const link = this.#ctx.table.close(linkId);
    if (link === undefined) return;
    this.#watchers.forget(linkId);
    if (isPeerLink(link)) {
      const { peerId, address } = link.state;
      this.#ctx.log('info', 'peer-lost', `lost peer ${peerId} at ${address ?? 'unknown address'} (${reason})`, { peer: peerId, address, reason });
      this.#catchUp.withdrawClaims(peerId);
      if (link.direction === 'inbound') this.#ctx.table.lostInbound(link, reason);
    }
    this.#dials.linkClosed(link, reason);
  }

  takeReady(): Ready {
    if (this.#watchers.count > 0) this.#watchers.flush();
    // Most takes (a tick, a read that asked for nothing) find nothing: no new batch then.
    if (isEmptyReady(this.#ctx.batch)) return EMPTY_READY;
    const batch = this.#ctx.takeBatch();
    return { ...batch, messages: batch.messages.length === 0 ? [] : withText(coalesceEntries(batch.messages, this.#ctx.batchLength)) };
  }
}

/** A 12-character id from the injected random source. */
function randomId(random: () => number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let id = '';
  for (let i = 0; i < 12; i++) id += alphabet[Math.floor(random() * alphabet.length)];
  return id;
}
