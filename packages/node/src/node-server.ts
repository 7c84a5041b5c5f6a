/**
 * The adapter between sockets and the sans-I/O core: it runs a `ws` server,
 * dials what the core asks for, turns socket events into core events, and
 * carries out the core's effects. It holds no replication logic of its own.
 */
import { announcedAddress, AUTH_HEADER, AUTH_HEADER_VALUE, type BbyNode, type Change, CLOSE_CODES, createNode, type Effect, encodeMessage, formatAddress, type LinkId, MAX_MESSAGE_BYTES, type Message, type NodeConfig, printable, type Timing } from '@bby/core';
import { randomBytes } from 'node:crypto';
import { type IncomingMessage } from 'node:http';
import { type Socket } from 'node:net';
import { type Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { describeSocketError } from '@bby/client';
import { httpRoutes, type RouteSource } from './http-routes.js';
import { type MetricsSnapshot, NodeMetrics, type RefusalReason, TIMED_REQUEST_TYPES } from './metrics.js';
import { createLogSink, type LogSink } from './log-sink.js';
import { DataDirError, Persistence } from './persistence.js';
import { StartError } from './start-error.js';
import { type FileSystem } from './storage/file-system.js';
import { type ClientTlsOptions, clientTlsOptions, createHttpServer, dialUrl, type HttpServer, refuseUpgrade, urlScheme } from './transport.js';

export { StartError } from './start-error.js';

/** How often the core is ticked to dial peers whose retry time has come, in milliseconds. */
export const TICK_INTERVAL_MS = 100;

/** How long a dial may take before it counts as failed, in milliseconds. */
export const DIAL_TIMEOUT_MS = 3_000;

/** How long a stopping node waits for its peers to acknowledge the close, in milliseconds. */
export const CLOSE_GRACE_MS = 500;

/** How often a node whose disk failed tries it again, in milliseconds. */
export const DISK_RETRY_INTERVAL_MS = 2_000;

/**
 * Backpressure from the disk to the sockets. The effects of a batch wait,
 * in order, behind the durable appends of the batches before it, so every
 * frame this node sends (heartbeats and replies included) waits behind the
 * whole backlog of not-yet-durable entries. Sockets are read as fast as
 * frames come (a streamed catch-up, a bulk import), faster than a disk with
 * fsync "always" writes, so without a bound the backlog grows until the
 * node goes silent for longer than its peers' timeout (4 s, `timing.ts`).
 *
 * When the bytes waiting for durability go above `BACKLOG_PAUSE_BYTES`, the
 * node stops reading all its sockets (ws `pause()` stops the net.Socket: TCP
 * then slows the senders, and a peer's catch-up, which waits for its send
 * callbacks, follows); when they drop below `BACKLOG_RESUME_BYTES`, it reads
 * them all again. 4 MiB is some 25 catch-up batches or 4 full `set-many`
 * frames, enough that the disk always has a large group commit to write, and
 * even a slow disk (40 MB/s with its fsyncs) writes it in about 100 ms, well
 * under the 1 s heartbeat period. Resuming only below 1 MiB keeps the node
 * from pausing again after every read.
 */
export const BACKLOG_PAUSE_BYTES = 4 * 1024 * 1024;

/** See BACKLOG_PAUSE_BYTES. */
export const BACKLOG_RESUME_BYTES = 1024 * 1024;

/**
 * Bytes counted per persisted entry on top of its key, value and origin
 * (record header, timestamp, sequence number, JSON punctuation): a little
 * more than a log record takes, so tiny entries count too.
 */
const RECORD_OVERHEAD_BYTES = 64;


/** Options of `startNode`. */
export interface StartOptions {
  /** Path of the config file: names it in errors, and anchors a relative dataDir. */
  readonly source: string;
  readonly log?: LogSink;
  /** Salvage a damaged data folder instead of refusing to start. */
  readonly repair?: boolean;
  /** File layer of the data folder; tests inject failures through it. */
  readonly fs?: FileSystem;
  /** Periods of heartbeats, anti-entropy and peer exchange (tests shorten them). */
  readonly timing?: Partial<Timing>;
  /** Backlog bounds, in bytes (tests lower them); see BACKLOG_PAUSE_BYTES. */
  readonly backlog?: { readonly pauseAboveBytes: number; readonly resumeBelowBytes: number };
}

/** A node that listens and dials; `close()` stops it. */
export interface RunningNode {
  readonly id: string;
  /** `host:port` the node listens on. */
  readonly address: string;
  readonly core: BbyNode;
  close(): Promise<void>;
}

/** The default sink: text lines, everything logged (`createLogSink()`). */
export const consoleLog: LogSink = createLogSink();

/**
 * Listens on the config's host and port, loads the dataDir, then dials the
 * peers. It listens first, so that a port in use is said at once; until the
 * data is loaded, upgrades are answered 503 (a client never hangs on a node
 * that is starting).
 */
export async function startNode(config: NodeConfig, options: StartOptions): Promise<RunningNode> {
  const log = options.log ?? consoleLog;
  const tls = clientTlsOptions(config, options.source);
  let adapter: Adapter | undefined;
  const server = await createHttpServer(config, options.source, { onWarning: (message) => log('warn', message, { event: 'config-warning' }), onRequest: httpRoutes(config, () => adapter) });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (adapter === undefined) refuseUpgrade(socket, 503, 'starting: loading its data');
    else adapter.upgrade(request, socket, head);
  });
  let persistence: Persistence;
  try {
    persistence = await Persistence.open(config, options.source, { repair: options.repair ?? false, ...(options.fs ? { fs: options.fs } : {}) });
  } catch (error) {
    await new Promise((resolve) => server.close(resolve));
    if (error instanceof DataDirError) throw new StartError(error.message);
    throw error;
  }
  const recovered = persistence.recovered;
  for (const note of recovered.notes) log('warn', note, { event: 'recovery-note' });
  const address = formatAddress(config.host, config.port);
  const peers = [...config.peers, ...recovered.addedPeers];
  const core = createNode({
    id: recovered.id,
    address: announcedAddress(config) ?? '',
    peers,
    now: Date.now,
    monotonic: () => performance.now(),
    random: Math.random,
    randomBytes,
    secrets: config.secrets,
    clientSecrets: config.clientSecrets,
    maxClockSkewMs: config.maxClockSkewMs,
    epoch: recovered.epoch,
    changes: recovered.changes,
    cursors: recovered.cursors,
    peerExchange: config.peerExchange,
    timing: { ...(config.antiEntropyIntervalMs === undefined ? {} : { antiEntropyIntervalMs: config.antiEntropyIntervalMs }), ...options.timing },
  });
  const backlog = options.backlog ?? { pauseAboveBytes: BACKLOG_PAUSE_BYTES, resumeBelowBytes: BACKLOG_RESUME_BYTES };
  adapter = new Adapter(core, config, server, tls, persistence, log, backlog);
  log('info', `listening on ${urlScheme(config)}://${address} as node ${recovered.id}${config.secrets.length > 0 ? ' (members authenticate with the secret)' : ''}`, { event: 'listening', fields: { url: `${urlScheme(config)}://${address}`, id: recovered.id } });
  if (persistence.dir === null) log('info', 'no "dataDir" in the config: keys are kept in memory only', { event: 'memory-only' });
  else log('info', `data in ${persistence.dir} (fsync ${config.fsync}): ${core.stats().keys} keys loaded`, { event: 'data-loaded', fields: { dir: persistence.dir, fsync: config.fsync, keys: core.stats().keys } });
  adapter.flush();
  const running = adapter;
  return { id: recovered.id, address, core, close: () => running.close() };
}

class Adapter implements RouteSource {
  readonly #sockets = new Map<LinkId, WebSocket>();
  readonly metrics: NodeMetrics;
  readonly durable: boolean;
  /** Request frames handed to the core since the last flush: their latency ends when that flush's batch is carried out. */
  #timings: { readonly type: string; readonly startMs: number }[] = [];
  readonly #timer: NodeJS.Timeout;
  /** Effects of earlier batches still waiting for their entries to be durable. */
  #waiting: Promise<void> = Promise.resolve();
  #batchesWaiting = 0;
  /** Estimated bytes of the entries of the batches waiting for durability (see BACKLOG_PAUSE_BYTES). */
  #bytesWaiting = 0;
  /** Whether reading from the sockets is paused until the backlog drains. */
  #paused = false;
  /** Links the core asked not to read (clients over their outbound budget), whatever the backlog. */
  readonly #pausedLinks = new Set<LinkId>();
  readonly #corked = new Set<Socket>();
  #flushScheduled = false;
  /** Bytes written out per link, reported to the core together after the next poll of the sockets (#written). */
  readonly #writtenBytes = new Map<LinkId, number>();
  #writtenScheduled = false;
  /** Set once close() began: no new connection is taken. */
  #closing = false;
  /** Set once close() closed the sockets: nothing more is carried out. */
  #closed = false;
  /** Retries the disk while it fails (#storageFailed); null while it works. */
  #retryTimer: NodeJS.Timeout | null = null;
  #retrying = false;
  readonly #unsubscribe: () => void;

  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
  /** Inbound WebSockets open now, against "maxConnections". */
  #inbound = 0;

  constructor(
    readonly core: BbyNode,
    readonly config: NodeConfig,
    readonly server: HttpServer,
    readonly tls: ClientTlsOptions,
    readonly persistence: Persistence,
    readonly log: LogSink,
    readonly backlog: { readonly pauseAboveBytes: number; readonly resumeBelowBytes: number },
  ) {
    this.metrics = new NodeMetrics(core.id);
    this.durable = persistence.dir !== null;
    // Before the first frame, so that a client knows at once whether the node expects a secret (docs/protocol.md).
    if (config.secrets.length > 0) this.#wss.on('headers', (headers) => headers.push(`${AUTH_HEADER}: ${AUTH_HEADER_VALUE}`));
    // A failure no append sees (a background fsync under "everysec") must stop the acknowledgements too.
    this.#unsubscribe = persistence.onStorageStateChange((failure) => {
      if (failure !== null) this.#storageFailed(failure);
    });
    this.#timer = setInterval(() => {
      core.tick();
      this.flush();
    }, TICK_INTERVAL_MS);
  }

  /**
   * Flushes once the frames of the current read are all handled, so that the
   * core can merge the forwards of a burst of writes into one frame per peer.
   */
  #flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /**
   * Carries out the queued effects. The entries a batch persists are made
   * durable before any of its messages goes out (a `set` reply promises the
   * write is kept), and batches go out in order.
   */
  flush(): void {
    if (this.#closed) return;
    const effects = this.core.takeEffects();
    const timings = this.#timings;
    if (timings.length > 0) this.#timings = [];
    if (effects.length === 0) {
      this.#observe(timings);
      return;
    }
    const changes: Change[] = [];
    if (this.persistence.storage !== null) for (const effect of effects) if (effect.type === 'persist') changes.push(effect);
    if (this.#batchesWaiting === 0 && changes.length === 0) {
      this.#execute(effects);
      this.#observe(timings);
      return;
    }
    this.#batchesWaiting++;
    const bytes = estimateBytes(changes);
    this.#bytesWaiting += bytes;
    // Frames already read still arrive after the pause: the backlog can pass the bound by one read per socket.
    if (!this.#paused && this.#bytesWaiting > this.backlog.pauseAboveBytes) this.#pauseReading();
    // Settled at once, so that a failure is never an unhandled rejection while earlier batches wait.
    const durable = this.persistence.append(changes).then(
      () => null,
      (error: Error) => error,
    );
    // Batches go out in order: each waits for the one before it, and for its own entries.
    this.#waiting = this.#waiting
      .then(() => durable)
      .then((failure) => {
        this.#batchesWaiting--;
        this.#bytesWaiting -= bytes;
        if (this.#paused && this.#bytesWaiting < this.backlog.resumeBelowBytes) this.#resumeReading();
        if (failure === null) {
          this.#execute(effects);
          this.#maybeCompact();
        } else this.#executeUnkept(effects, failure);
        this.#observe(timings);
      });
  }

  /** Request latencies whose batch was just carried out (metrics.ts). */
  #observe(timings: readonly { readonly type: string; readonly startMs: number }[]): void {
    if (timings.length === 0) return;
    const nowMs = performance.now();
    for (const { type, startMs } of timings) this.metrics.requestDuration.observe({ type }, (nowMs - startMs) / 1000);
  }

  snapshot(): MetricsSnapshot {
    return {
      stats: this.core.stats(),
      status: this.core.status(),
      diskQueue: { bytes: this.#bytesWaiting, batches: this.#batchesWaiting },
      connections: { open: this.#inbound, max: this.config.maxConnections },
    };
  }

  #refuse(socket: Duplex, status: number, reason: RefusalReason, text: string): void {
    this.metrics.refused(reason);
    refuseUpgrade(socket, status, text);
  }

  /** Stops reading every socket: the peers' and clients' frames wait in TCP until the backlog drains. */
  #pauseReading(): void {
    this.#paused = true;
    // A socket still connecting ignores pause(): #dial pauses it when it opens.
    for (const socket of this.#sockets.values()) socket.pause();
  }

  #resumeReading(): void {
    this.#paused = false;
    for (const [link, socket] of this.#sockets) if (!this.#pausedLinks.has(link)) socket.resume();
  }

  #execute(effects: readonly Effect[]): void {
    const burst = linksWithSeveralFrames(effects);
    // One write callback per link and batch, on its last frame, reports the whole batch written (writes finish in order).
    const written = writtenPerLink(effects);
    this.#savePeers(effects);
    for (let index = 0; index < effects.length; index++) {
      const effect = effects[index]!;
      switch (effect.type) {
        case 'send': {
          const socket = this.#sockets.get(effect.link);
          if (socket?.readyState !== WebSocket.OPEN) break;
          if (burst.has(effect.link)) this.#cork(socket);
          const report = written.get(effect.link)!;
          if (report.lastIndex === index) socket.send(effect.text, () => this.#written(effect.link, report.bytes));
          else socket.send(effect.text);
          break;
        }
        case 'pause':
          this.#pausedLinks.add(effect.link);
          this.#sockets.get(effect.link)?.pause();
          break;
        case 'resume':
          this.#pausedLinks.delete(effect.link);
          if (!this.#paused) this.#sockets.get(effect.link)?.resume();
          break;
        case 'dial':
          this.#dial(effect.link, effect.address);
          break;
        case 'close': {
          const socket = this.#sockets.get(effect.link);
          socket?.close(effect.code, effect.reason);
          // A link closed for not reading will not read the close frame either: without this, ws holds its socket for 30 s.
          if (socket !== undefined && effect.code === CLOSE_CODES.TOO_SLOW) setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
          break;
        }
        case 'log':
          this.log(effect.level, effect.message, { event: effect.event, fields: effect.fields });
          break;
        case 'persist':
          // Done in flush(), before this batch's messages.
          break;
        case 'cursor':
          // After this batch's entries are durable: a saved cursor never vouches for a lost entry.
          this.persistence.recordCursor(effect.peerId, effect.cursor);
          break;
        case 'peer-added':
        case 'peer-removed':
          // Saved below, in one node.json write for the batch.
          break;
        default: {
          const unknown: never = effect; // a new effect type must be carried out here
          throw new Error(`bby-node: unknown effect ${JSON.stringify(unknown)}`);
        }
      }
    }
  }

  /** Records the peers a batch added or removed, in one node.json write (coalesced with the writes in flight). */
  #savePeers(effects: readonly Effect[]): void {
    const added: string[] = [];
    const removed: string[] = [];
    for (const effect of effects) {
      if (effect.type === 'peer-added') added.push(effect.address);
      else if (effect.type === 'peer-removed') removed.push(effect.address);
    }
    if (added.length + removed.length === 0) return;
    this.persistence.updatePeers({ added, removed }).catch((error: Error) => this.log('warn', `cannot save the peers in node.json yet (${error.message}); they are saved with its next write`, { event: 'peers-save-failed' }));
  }

  /**
   * Frames of a link left for the kernel (or failed with its socket, which
   * then closes): the core may send it more. Reported after the sockets were
   * polled (setImmediate), not at once: a write to a fast reader completes
   * within the same turn of the loop, and reporting it there sent the next
   * batch of a stream at once, and the next, so that a catch-up or repair to a
   * reader that kept up held the event loop for seconds.
   */
  #written(link: LinkId, bytes: number): void {
    this.#writtenBytes.set(link, (this.#writtenBytes.get(link) ?? 0) + bytes);
    if (this.#writtenScheduled) return;
    this.#writtenScheduled = true;
    setImmediate(() => {
      this.#writtenScheduled = false;
      for (const [written, sum] of this.#writtenBytes) this.core.written(written, sum);
      this.#writtenBytes.clear();
      this.flush();
    });
  }

  /**
   * Holds a socket's writes until the current burst of events is handled, so
   * that many small frames leave in one system call instead of one each
   * (the profile showed a writev per frame as the largest cost under load).
   */
  #cork(socket: WebSocket): void {
    const raw = (socket as unknown as { _socket?: Socket })._socket;
    if (raw === undefined || this.#corked.has(raw)) return;
    raw.cork();
    this.#corked.add(raw);
    if (this.#corked.size === 1) {
      process.nextTick(() => {
        for (const corked of this.#corked) corked.uncork();
        this.#corked.clear();
      });
    }
  }

  #maybeCompact(): void {
    const storage = this.persistence.storage;
    if (storage === null || !storage.shouldCompact(() => this.core.stats().keys)) return;
    // The store already holds every entry whose append was called: the snapshot covers the old log.
    storage.compact(Array.from(this.core.changes(), ({ entry, seq }) => ({ ...entry, seq }))).catch((error: Error) => this.log('warn', `compaction failed, the log is kept as it is: ${error.message}`, { event: 'compaction-failed' }));
  }

  /**
   * The effects of a batch whose entries could not be made durable: no frame
   * may promise them. Replies become STORAGE_FAILED errors (a `true` would
   * promise the write is kept); entries, acknowledgements, the end of a
   * catch-up and pings (which may vouch with `upTo`) are dropped, and so are
   * cursor moves; the rest goes out. The entries stay pending in the storage,
   * written by the retry that succeeds.
   */
  #executeUnkept(effects: readonly Effect[], error: Error): void {
    this.#storageFailed(error);
    const kept = effects.flatMap((effect): Effect[] => {
      if (effect.type === 'cursor') return [];
      if (effect.type !== 'send') return [effect];
      const message = effect.message;
      if (message.type === 'entries' || message.type === 'ack' || message.type === 'caught-up' || message.type === 'ping') return [];
      if (message.type !== 'reply') return [effect];
      const answer: Message = { type: 'error', id: message.id, code: 'STORAGE_FAILED', message: `the node could not write to its data folder: ${error.message}; the write is not acknowledged` };
      return [{ ...effect, message: answer, text: encodeMessage(answer) }];
    });
    this.#execute(kept);
  }

  /** The disk failed (an append, or a background fsync): the core refuses writes until a retry succeeds. */
  #storageFailed(error: Error): void {
    this.core.storageFailed(error.message);
    if (this.#retryTimer === null) {
      this.log('warn', `${error.message}; writes are refused until it works again, retrying every ${DISK_RETRY_INTERVAL_MS / 1000} s`, { event: 'storage-failed' });
      this.#retryTimer = setInterval(() => void this.#retryDisk(), DISK_RETRY_INTERVAL_MS);
    }
    this.#flushSoon();
  }

  async #retryDisk(): Promise<void> {
    if (this.#retrying || this.#closed) return;
    this.#retrying = true;
    try {
      if (await this.persistence.retry()) this.#storageRecovered();
    } finally {
      this.#retrying = false;
    }
  }

  #storageRecovered(): void {
    if (this.#retryTimer === null) return;
    clearInterval(this.#retryTimer);
    this.#retryTimer = null;
    this.log('info', 'the data folder can be written again: every pending write is on disk', { event: 'storage-recovered' });
    this.core.storageRecovered();
    this.flush();
  }

  /** Says goodbye on every link (close code 1001), then stops listening, and closes the data folder (never throws). */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    if (this.#retryTimer !== null) clearInterval(this.#retryTimer);
    this.#unsubscribe();
    // A paused socket would not read its peer's answer to the close.
    if (this.#paused) this.#resumeReading();
    const sockets = [...this.#sockets.values()];
    const closed = sockets.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    for (const socket of sockets) socket.close(1001, 'node shutting down');
    // A peer that does not answer the close handshake is cut off.
    const cutOff = setTimeout(() => sockets.forEach((socket) => socket.terminate()), CLOSE_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(cutOff);
    // Connections still in their HTTP upgrade (or being refused) would hold close() for their timeout.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.#waiting;
    this.#closed = true;
    for (const problem of await this.persistence.close()) this.log('warn', problem, { event: 'close-problem' });
  }

  /** An HTTP upgrade request: a WebSocket, unless "maxConnections" are open already (then 503, which bby shows). */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closing) return this.#refuse(socket, 503, 'shutting_down', 'shutting down');
    // A web page of another site must not talk to the node through the visitor's browser (bby and nodes send no Origin).
    const origin = request.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, request.headers.host)) {
      return this.#refuse(socket, 403, 'cross_origin', 'cross-origin WebSocket refused: only the node\'s own page may connect from a browser');
    }
    if (this.#inbound >= this.config.maxConnections) {
      return this.#refuse(socket, 503, 'too_many_connections', `too many connections (this node takes ${this.config.maxConnections}, its "maxConnections")`);
    }
    // Counted once open: ws answers a malformed upgrade itself, without calling back.
    this.#wss.handleUpgrade(request, socket, head, (websocket) => {
      this.#inbound++;
      websocket.once('close', () => this.#inbound--);
      this.#wire(this.core.accept(request.socket.remoteAddress), websocket);
      this.flush();
    });
  }

  #dial(link: LinkId, address: string): void {
    const socket = new WebSocket(dialUrl(this.config, address), { handshakeTimeout: DIAL_TIMEOUT_MS, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false, ...this.tls });
    socket.once('open', () => {
      if (this.#paused) socket.pause();
      this.core.opened(link);
      this.flush();
    });
    this.#wire(link, socket);
  }

  /** Turns a socket's events into core events; the first error is the reason reported at close. */
  #wire(link: LinkId, socket: WebSocket): void {
    this.#sockets.set(link, socket);
    if (this.#paused) socket.pause();
    let failure: string | undefined;
    socket.on('message', (data: RawData) => {
      const frame = frameBytes(data);
      const type = requestType(frame);
      if (type !== undefined) this.#timings.push({ type, startMs: performance.now() });
      // ws has checked the frame against maxPayload and UTF-8: the core need not measure it again.
      this.core.receive(link, frame.toString('utf8'), frame.length);
      this.#flushSoon();
    });
    socket.on('error', (error) => {
      failure ??= describeSocketError(error);
    });
    socket.on('close', (code, reason) => {
      this.#sockets.delete(link);
      this.#pausedLinks.delete(link);
      this.core.closed(link, failure ?? closeReason(code, reason.toString()));
      this.flush();
    });
  }
}

/** What a batch's entries add to the durability backlog, about what their log records take. */
function estimateBytes(changes: readonly Change[]): number {
  let bytes = 0;
  for (const { entry } of changes) bytes += entry.key.length + entry.value.length + entry.origin.length + RECORD_OVERHEAD_BYTES;
  return bytes;
}

/** Per link of a batch: the index of its last frame, and the estimated bytes of all its frames. */
function writtenPerLink(effects: readonly Effect[]): Map<LinkId, { lastIndex: number; bytes: number }> {
  const perLink = new Map<LinkId, { lastIndex: number; bytes: number }>();
  effects.forEach((effect, index) => {
    if (effect.type !== 'send') return;
    const report = perLink.get(effect.link);
    if (report === undefined) perLink.set(effect.link, { lastIndex: index, bytes: effect.bytes });
    else {
      report.lastIndex = index;
      report.bytes += effect.bytes;
    }
  });
  return perLink;
}

/** Links that get more than one frame in this batch of effects: only those are worth corking. */
function linksWithSeveralFrames(effects: readonly Effect[]): Set<LinkId> {
  const seen = new Set<LinkId>();
  const several = new Set<LinkId>();
  for (const effect of effects) {
    if (effect.type !== 'send') continue;
    if (seen.has(effect.link)) several.add(effect.link);
    else seen.add(effect.link);
  }
  return several;
}

/** `{"type":"` as bytes: a request frame of bby's clients starts with it. */
const TYPE_PREFIX = Buffer.from('{"type":"');

/**
 * The request type of a frame that starts `{"type":"<request>"`, for the
 * latency histogram; undefined for anything else (peer frames, a client
 * that writes fields in another order: not timed). A few byte compares.
 */
function requestType(frame: Buffer): string | undefined {
  if (frame.length < 16 || frame.compare(TYPE_PREFIX, 0, TYPE_PREFIX.length, 0, TYPE_PREFIX.length) !== 0) return undefined;
  const end = frame.indexOf(34, TYPE_PREFIX.length);
  if (end < 0 || end - TYPE_PREFIX.length > 12) return undefined;
  const type = frame.toString('latin1', TYPE_PREFIX.length, end);
  return TIMED_REQUEST_TYPES.has(type) ? type : undefined;
}

/** Whether a browser's `Origin` names the host the request was sent to (the node's own page). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

function frameBytes(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return data;
}

/** Why a socket closed, in words; a reason the other side gave is its text, escaped (it goes to logs and `peers`). */
function closeReason(code: number, reason: string): string {
  if (reason !== '') return printable(reason);
  if (code === 1006) return 'connection lost';
  if (code === 1001) return 'peer shut down';
  return `closed with code ${code}`;
}
