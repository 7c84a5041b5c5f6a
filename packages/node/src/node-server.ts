/**
 * The adapter between sockets and the sans-I/O core: it runs a `ws` server,
 * dials what the core asks for, turns socket events into core events, and
 * carries out the core's batches (`takeReady()`, ready.ts). It holds no
 * replication or durability logic of its own: each batch goes through the
 * disk side (disk-pipeline.ts), which hands it back once it may go out, and
 * this file carries out the socket side of it.
 */
import { announcedAddress, AUTH_HEADER, AUTH_HEADER_VALUE, type BacklogBounds, type BbyNode, carryOut, CLOSE_CODES, type CloseEffect, createNode, formatAddress, isEmptyReady, type LinkId, MAX_MESSAGE_BYTES, type NodeConfig, type PauseEffect, printable, type Ready, type ReadyHandlers, type ResumeEffect, type SendEffect, type Timing } from '@bby/core';
import { randomBytes } from 'node:crypto';
import { type IncomingMessage } from 'node:http';
import { type Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { describeSocketError } from '@bby/client';
import { DiskPipeline } from './disk-pipeline.js';
import { httpRoutes, type RouteSource } from './http-routes.js';
import { type MetricsSnapshot, NodeMetrics, type RefusalReason, TIMED_REQUEST_TYPES } from './metrics.js';
import { createLogSink, type LogSink } from './log-sink.js';
import { DataDirError, Persistence } from './persistence.js';
import { StartError } from './start-error.js';
import { type FileSystem } from './storage/file-system.js';
import { type ClientTlsOptions, clientTlsOptions, createHttpServer, dialUrl, type HttpServer, refuseUpgrade, urlScheme } from './transport.js';

export { type StartCode, StartError } from './start-error.js';

/** How often the core is ticked to dial peers whose retry time has come, in milliseconds. */
export const TICK_INTERVAL_MS = 100;

/** How long a dial may take before it counts as failed, in milliseconds. */
export const DIAL_TIMEOUT_MS = 3_000;

/** How long a stopping node waits for its peers to acknowledge the close, in milliseconds. */
export const CLOSE_GRACE_MS = 500;

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
  /** Backlog bounds, in bytes (tests lower them); see the core's BACKLOG_PAUSE_BYTES (durability.ts). */
  readonly backlog?: BacklogBounds;
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
    if (error instanceof DataDirError) throw new StartError(error.message, error.startCode);
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
  adapter = new Adapter(core, config, server, tls, persistence, log, options.backlog);
  log('info', `listening on ${urlScheme(config)}://${address} as node ${recovered.id}${config.secrets.length > 0 ? ' (members authenticate with the secret)' : ''}`, { event: 'listening', fields: { url: `${urlScheme(config)}://${address}`, id: recovered.id } });
  if (persistence.dir === null) log('info', 'no "dataDir" in the config: keys are kept in memory only', { event: 'memory-only' });
  else log('info', `data in ${persistence.dir} (fsync ${config.fsync}): ${core.stats().keys} keys loaded`, { event: 'data-loaded', fields: { dir: persistence.dir, fsync: config.fsync, keys: core.stats().keys } });
  adapter.flush();
  const running = adapter;
  return { id: recovered.id, address, core, close: () => running.close() };
}

class Adapter implements RouteSource {
  readonly #sockets = new Map<LinkId, WebSocket>();
  /** The byte stream under each link's WebSocket (a net.Socket, or a TLS one), as ws hands it over: corked around bursts (#cork). */
  readonly #streams = new Map<LinkId, Duplex>();
  readonly metrics: NodeMetrics;
  readonly durable: boolean;
  /** Request frames handed to the core since the last flush: their latency ends when that flush's batch is carried out. */
  #timings: { readonly type: string; readonly startMs: number }[] = [];
  /** The request timings of each batch submitted to the disk side and not released yet, oldest first (batches come back in order). */
  readonly #timingsWaiting: (readonly { readonly type: string; readonly startMs: number }[])[] = [];
  readonly #timer: NodeJS.Timeout;
  /** The disk side: every batch goes through it, and comes back through #release once it may go out. */
  readonly #disk: DiskPipeline;
  /** Links the core asked not to read (clients over their outbound budget), whatever the backlog. */
  readonly #pausedLinks = new Set<LinkId>();
  readonly #corked = new Set<Duplex>();
  #flushScheduled = false;
  /** Bytes written out per link, reported to the core together after the next poll of the sockets (#written). */
  readonly #writtenBytes = new Map<LinkId, number>();
  #writtenScheduled = false;
  /** Set once close() began: no new connection is taken. */
  #closing = false;
  /** Set once close() closed the sockets: nothing more is carried out. */
  #closed = false;

  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
  /** Inbound WebSockets open now, against "maxConnections". */
  #inbound = 0;

  /** The socket side of a released batch, one handler per field (a new field of Ready fails to compile here). */
  readonly #handlers: ReadyHandlers = {
    // The disk side (disk-pipeline.ts) made these durable, and saved these peers and cursors, before releasing the batch.
    persist: () => undefined,
    peers: () => undefined,
    cursors: () => undefined,
    dials: (dials) => {
      for (const { link, address } of dials) this.#dial(link, address);
    },
    messages: (sends) => this.#send(sends),
    flow: (flow) => {
      for (const effect of flow) this.#flow(effect);
    },
    closes: (closes) => {
      for (const effect of closes) this.#close(effect);
    },
    logs: (logs) => {
      for (const { level, message, event, fields } of logs) this.log(level, message, { event, fields });
    },
  };

  constructor(
    readonly core: BbyNode,
    readonly config: NodeConfig,
    readonly server: HttpServer,
    readonly tls: ClientTlsOptions,
    persistence: Persistence,
    readonly log: LogSink,
    backlog: BacklogBounds | undefined,
  ) {
    this.metrics = new NodeMetrics(core.id);
    this.durable = persistence.dir !== null;
    this.#disk = new DiskPipeline(core, persistence, {
      backlog,
      hooks: {
        release: (ready) => this.#release(ready),
        reading: (state) => (state === 'pause' ? this.#pauseReading() : this.#resumeReading()),
        wake: () => this.#flushSoon(),
        log,
      },
    });
    // Before the first frame, so that a client knows at once whether the node expects a secret (docs/protocol.md).
    if (config.secrets.length > 0) this.#wss.on('headers', (headers) => headers.push(`${AUTH_HEADER}: ${AUTH_HEADER_VALUE}`));
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

  /** Takes the core's batch and hands it to the disk side, which releases it (#release) once its changes are durable, in order. */
  flush(): void {
    if (this.#closed) return;
    const ready = this.core.takeReady();
    const timings = this.#timings;
    if (timings.length > 0) this.#timings = [];
    if (isEmptyReady(ready)) {
      this.#observe(timings);
      return;
    }
    this.#timingsWaiting.push(timings);
    this.#disk.submit(ready);
  }

  /** A batch the disk side released: its socket side is carried out now. */
  #release(ready: Ready): void {
    carryOut(ready, this.#handlers);
    this.#observe(this.#timingsWaiting.shift() ?? []);
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
      diskQueue: { bytes: this.#disk.bytesWaiting, batches: this.#disk.batchesWaiting },
      connections: { open: this.#inbound, max: this.config.maxConnections },
    };
  }

  #refuse(socket: Duplex, status: number, reason: RefusalReason, text: string): void {
    this.metrics.refused(reason);
    refuseUpgrade(socket, status, text);
  }

  /** Stops reading every socket: the peers' and clients' frames wait in TCP until the backlog drains. */
  #pauseReading(): void {
    // A socket still connecting ignores pause(): #dial pauses it when it opens.
    for (const socket of this.#sockets.values()) socket.pause();
  }

  #resumeReading(): void {
    for (const [link, socket] of this.#sockets) if (!this.#pausedLinks.has(link)) socket.resume();
  }

  /** Writes a batch's frames, in order per link; one write callback per link, on its last frame, reports them all written (writes finish in order). */
  #send(sends: readonly SendEffect[]): void {
    const burst = linksWithSeveralFrames(sends);
    const written = writtenPerLink(sends);
    sends.forEach((send, index) => {
      const socket = this.#sockets.get(send.link);
      if (socket?.readyState !== WebSocket.OPEN) return;
      if (burst.has(send.link)) this.#cork(send.link);
      const report = written.get(send.link)!;
      if (report.lastIndex === index) socket.send(send.text, () => this.#written(send.link, report.bytes));
      else socket.send(send.text);
    });
  }

  #flow(effect: PauseEffect | ResumeEffect): void {
    if (effect.type === 'pause') {
      this.#pausedLinks.add(effect.link);
      this.#sockets.get(effect.link)?.pause();
    } else {
      this.#pausedLinks.delete(effect.link);
      if (!this.#disk.paused) this.#sockets.get(effect.link)?.resume();
    }
  }

  #close(effect: CloseEffect): void {
    const socket = this.#sockets.get(effect.link);
    socket?.close(effect.code, effect.reason);
    // A link closed for not reading will not read the close frame either: without this, ws holds its socket for 30 s.
    if (socket !== undefined && effect.code === CLOSE_CODES.TOO_SLOW) setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
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
  #cork(link: LinkId): void {
    const stream = this.#streams.get(link);
    if (stream === undefined || this.#corked.has(stream)) return;
    stream.cork();
    this.#corked.add(stream);
    if (this.#corked.size === 1) {
      process.nextTick(() => {
        for (const corked of this.#corked) corked.uncork();
        this.#corked.clear();
      });
    }
  }

  /** Says goodbye on every link (close code 1001), then stops listening, and closes the data folder (never throws). */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    this.#disk.stop();
    // A paused socket would not read its peer's answer to the close.
    if (this.#disk.paused) this.#resumeReading();
    const sockets = [...this.#sockets.values()];
    const closed = sockets.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    for (const socket of sockets) socket.close(1001, 'node shutting down');
    // A peer that does not answer the close handshake is cut off.
    const cutOff = setTimeout(() => {
      for (const socket of sockets) socket.terminate();
    }, CLOSE_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(cutOff);
    // Connections still in their HTTP upgrade (or being refused) would hold close() for their timeout.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    const problems = await this.#disk.close();
    this.#closed = true;
    for (const problem of problems) this.log('warn', problem, { event: 'close-problem' });
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
      const link = this.core.accept(request.socket.remoteAddress);
      // The socket of the upgrade is the one ws writes to.
      this.#streams.set(link, socket);
      this.#wire(link, websocket);
      this.flush();
    });
  }

  #dial(link: LinkId, address: string): void {
    const socket = new WebSocket(dialUrl(this.config, address), { handshakeTimeout: DIAL_TIMEOUT_MS, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false, ...this.tls });
    socket.once('open', () => {
      if (this.#disk.paused) socket.pause();
      this.core.opened(link);
      this.flush();
    });
    // The socket of the upgrade response is the one ws writes to; it comes before 'open', so before any send.
    socket.once('upgrade', (response) => this.#streams.set(link, response.socket));
    this.#wire(link, socket);
  }

  /** Turns a socket's events into core events; the first error is the reason reported at close. */
  #wire(link: LinkId, socket: WebSocket): void {
    this.#sockets.set(link, socket);
    if (this.#disk.paused) socket.pause();
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
      this.#streams.delete(link);
      this.#pausedLinks.delete(link);
      this.core.closed(link, failure ?? closeReason(code, reason.toString()));
      this.flush();
    });
  }
}

/** Per link of a batch's frames: the index of its last frame, and the estimated bytes of all its frames. */
function writtenPerLink(sends: readonly SendEffect[]): Map<LinkId, { lastIndex: number; bytes: number }> {
  const perLink = new Map<LinkId, { lastIndex: number; bytes: number }>();
  sends.forEach((send, index) => {
    const report = perLink.get(send.link);
    if (report === undefined) perLink.set(send.link, { lastIndex: index, bytes: send.bytes });
    else {
      report.lastIndex = index;
      report.bytes += send.bytes;
    }
  });
  return perLink;
}

/** Links that get more than one frame in a batch: only those are worth corking. */
function linksWithSeveralFrames(sends: readonly SendEffect[]): Set<LinkId> {
  const seen = new Set<LinkId>();
  const several = new Set<LinkId>();
  for (const { link } of sends) {
    if (seen.has(link)) several.add(link);
    else seen.add(link);
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
