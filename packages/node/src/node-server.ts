/**
 * The adapter between sockets and the sans-I/O core: it runs a `ws` server,
 * dials what the core asks for, turns socket events into core events, and
 * carries out the core's effects. It holds no replication logic of its own.
 */
import { createNode, formatAddress, MAX_MESSAGE_BYTES, type BbyNode, type LinkId, type Message, type NodeConfig } from '@bby/core';
import { nanoid } from 'nanoid';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { describeSocketError } from './describe-error.js';

/** How often the core is ticked to dial peers whose retry time has come, in milliseconds. */
export const TICK_INTERVAL_MS = 100;

/** How long a dial may take before it counts as failed, in milliseconds. */
export const DIAL_TIMEOUT_MS = 3_000;

/** How long a stopping node waits for its peers to acknowledge the close, in milliseconds. */
export const CLOSE_GRACE_MS = 500;

/** Writes one log line; the default prints to stdout (info) or stderr (warn). */
export type LogSink = (level: 'info' | 'warn', message: string) => void;

/** Options of `startNode`. */
export interface StartOptions {
  /** Name of the config file, used in error messages. */
  readonly source: string;
  readonly log?: LogSink;
}

/** A node that listens and dials; `close()` stops it. */
export interface RunningNode {
  readonly id: string;
  /** `host:port` the node listens on. */
  readonly address: string;
  readonly core: BbyNode;
  close(): Promise<void>;
}

/** Why a node could not start, in one line naming the fix. */
export class StartError extends Error {
  override name = 'StartError';
}

/** Prints `HH:MM:SS.mmm level message`. */
export const consoleLog: LogSink = (level, message) => {
  const line = `${new Date().toISOString().slice(11, 23)} ${level} ${message}\n`;
  (level === 'warn' ? process.stderr : process.stdout).write(line);
};

/** Listens on the config's host and port, then dials the configured peers. */
export async function startNode(config: NodeConfig, options: StartOptions): Promise<RunningNode> {
  const log = options.log ?? consoleLog;
  const server = await listen(config, options.source);
  const id = config.id ?? nanoid(12);
  const address = formatAddress(config.host, config.port);
  const core = createNode({ id, address, peers: config.peers, now: Date.now, random: Math.random });
  const adapter = new Adapter(core, server, log);
  log('info', `listening on ws://${address} as node ${id}`);
  if (config.dataDir === undefined) log('info', 'no "dataDir" in the config: keys are kept in memory only');
  else log('warn', `"dataDir" is set but durable storage is not built yet: keys are kept in memory only`);
  adapter.flush();
  return { id, address, core, close: () => adapter.close() };
}

function listen(config: NodeConfig, source: string): Promise<WebSocketServer> {
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({ host: config.host, port: config.port, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
    const where = `port ${config.port} on ${config.host}`;
    server.once('listening', () => resolve(server));
    server.once('error', (error: NodeJS.ErrnoException) => {
      server.close();
      if (error.code === 'EADDRINUSE') reject(new StartError(`${where} is already in use (config ${source}): another node, maybe started with the same config, is running; stop it or change "port"`));
      else if (error.code === 'EACCES') reject(new StartError(`permission denied to listen on ${where} (config ${source}): choose a port above 1023`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND') reject(new StartError(`cannot listen on ${where} (config ${source}): "${config.host}" is not an address of this machine; use "127.0.0.1"`));
      else reject(new StartError(`cannot listen on ${where} (config ${source}): ${error.message}`));
    });
  });
}

class Adapter {
  readonly #sockets = new Map<LinkId, WebSocket>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly core: BbyNode,
    readonly server: WebSocketServer,
    readonly log: LogSink,
  ) {
    server.on('connection', (socket) => this.#onInbound(socket));
    this.#timer = setInterval(() => {
      core.tick();
      this.flush();
    }, TICK_INTERVAL_MS);
  }

  /** Carries out every queued effect, in order. */
  flush(): void {
    // A broadcast queues the same message object for several links: serialize it once.
    let lastMessage: Message | undefined;
    let lastText = '';
    for (const effect of this.core.takeEffects()) {
      switch (effect.type) {
        case 'send': {
          const socket = this.#sockets.get(effect.link);
          if (socket?.readyState !== WebSocket.OPEN) break;
          if (effect.message !== lastMessage) {
            lastMessage = effect.message;
            lastText = JSON.stringify(effect.message);
          }
          socket.send(lastText);
          break;
        }
        case 'dial':
          this.#dial(effect.link, effect.url);
          break;
        case 'close':
          this.#sockets.get(effect.link)?.close(effect.code, effect.reason);
          break;
        case 'log':
          this.log(effect.level, effect.message);
          break;
        case 'persist':
          // Memory only until durable storage lands.
          break;
      }
    }
  }

  /** Says goodbye on every link (close code 1001), then stops listening. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    const sockets = [...this.#sockets.values()];
    const closed = sockets.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())));
    for (const socket of sockets) socket.close(1001, 'node shutting down');
    // A peer that does not answer the close handshake is cut off.
    const cutOff = setTimeout(() => sockets.forEach((socket) => socket.terminate()), CLOSE_GRACE_MS);
    await Promise.all(closed);
    clearTimeout(cutOff);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #onInbound(socket: WebSocket): void {
    const link = this.core.accept();
    this.#wire(link, socket, () => undefined);
  }

  #dial(link: LinkId, url: string): void {
    const socket = new WebSocket(url, { handshakeTimeout: DIAL_TIMEOUT_MS, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
    let failure: string | undefined;
    socket.once('open', () => {
      this.core.opened(link);
      this.flush();
    });
    this.#wire(link, socket, (error) => {
      failure ??= describeSocketError(error);
      return failure;
    });
  }

  /** Turns a socket's events into core events; `onError` returns the reason to report at close. */
  #wire(link: LinkId, socket: WebSocket, onError: (error: Error) => string | undefined): void {
    this.#sockets.set(link, socket);
    let failure: string | undefined;
    socket.on('message', (data: RawData) => {
      this.core.receive(link, rawToString(data));
      this.flush();
    });
    socket.on('error', (error) => {
      failure = onError(error) ?? describeSocketError(error);
    });
    socket.on('close', (code, reason) => {
      this.#sockets.delete(link);
      this.core.closed(link, failure ?? closeReason(code, reason.toString()));
      this.flush();
    });
  }
}

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function closeReason(code: number, reason: string): string {
  if (reason !== '') return reason;
  if (code === 1006) return 'connection lost';
  if (code === 1001) return 'peer shut down';
  return `closed with code ${code}`;
}
