/**
 * The client of one bby node over WebSocket, for `bby`, its import and
 * export, the tests and the bench's load generator: numbered requests
 * matched to their replies by id, as many in flight as the caller wants
 * (`requestReply` with a timer each, or `sendRequest` for a pipeline that
 * bounds the wait itself); frames sent as they are (`send`), whose answers and
 * every other frame (a watch stream's) reach `onFrame`; and `cork`, which
 * makes a burst of frames leave in one write.
 */
import { type Socket } from 'node:net';
import { type ErrorMessage, type ReplyMessage, type Request, type ResponseMessage, type WatchStateMessage, type WatchWritesMessage } from '@bby/core';
import { type ConnectionTarget, openConnection, UnreachableError } from './connection.js';
import { type WebSocket } from './ws.js';

export { UnreachableError } from './connection.js';

/** A request without its id; the client numbers requests itself. */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never;

/** The node answered with an error message. */
export class NodeError extends Error {
  override name = 'NodeError';
  constructor(
    readonly code: string,
    message: string,
    /** For ACK_TIMEOUT: how many nodes held the write in time. */
    readonly acks?: number,
  ) {
    super(message);
  }
}

/** A node's answer to one of this client's numbered requests, or null for anything else. */
export function parseResponse(text: string): ((ReplyMessage | ErrorMessage) & { readonly id: number }) | null {
  let message: ResponseMessage;
  try {
    message = JSON.parse(text) as ResponseMessage;
  } catch {
    return null;
  }
  if ((message.type !== 'reply' && message.type !== 'error') || typeof message.id !== 'number') return null;
  return message as (ReplyMessage | ErrorMessage) & { readonly id: number };
}

/** Default time to wait for a connection or an answer, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 5_000;

/** What ends a numbered request: its reply, or the NodeError or UnreachableError that fails it. */
export type Answer = ReplyMessage | NodeError | UnreachableError;

/** A numbered request waiting for its answer. */
interface Pending {
  readonly onAnswer: (answer: Answer) => void;
  readonly timer?: NodeJS.Timeout;
}

/** An open connection to a node. */
export class BbyClient {
  readonly #socket: WebSocket;
  readonly #transport: Socket;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #closedReason: string | undefined;
  #closeCode = 0;
  /** Gets every frame that answers no numbered request (see `onFrame`). */
  #onFrame: ((text: string) => void) | undefined;
  readonly #onClose: ((reason: string, code: number) => void)[] = [];
  #corked = false;

  private constructor(
    readonly url: string,
    socket: WebSocket,
    transport: Socket,
    timeoutMs: number,
  ) {
    this.#socket = socket;
    this.#transport = transport;
    this.#timeoutMs = timeoutMs;
    socket.on('message', (data) => this.#onMessage(String(data)));
    socket.on('close', (code, reason) => {
      this.#closedReason = reason.length > 0 ? reason.toString() : code === 1009 ? 'message too large' : 'connection closed';
      this.#closeCode = code;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const { onAnswer, timer } of pending) {
        clearTimeout(timer);
        onAnswer(new UnreachableError(url, `the node closed the connection: ${this.#closedReason}`));
      }
      for (const listener of this.#onClose) listener(this.#closedReason, code);
    });
  }

  /**
   * Connects to a node: a `ws://` URL, or a target made from a config by
   * `connectionTarget` (TLS, secret). Rejects with UnreachableError or
   * ConnectionError (connection.ts).
   */
  static async connect(target: ConnectionTarget | string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<BbyClient> {
    const url = typeof target === 'string' ? target : target.url;
    const { webSocket, transport } = await openConnection(target, timeoutMs);
    return new BbyClient(url, webSocket, transport, timeoutMs);
  }

  /**
   * Subscribes to the node's writes (and its mesh state every second, unless
   * `state` is false): `onMessage` gets each `watch-writes` and `watch-state`
   * message until the connection closes. Resolves with the reply.
   */
  async watch(options: { values?: number; state?: boolean }, onMessage: (message: WatchWritesMessage | WatchStateMessage) => void): Promise<ReplyMessage> {
    this.onFrame((text) => {
      if (text.startsWith('{"type":"watch-writes"') || text.startsWith('{"type":"watch-state"')) onMessage(JSON.parse(text) as WatchWritesMessage | WatchStateMessage);
    });
    return await this.requestReply({ type: 'watch', ...options } as RequestBody);
  }

  /** Calls `listener` with the reason (and the WebSocket close code) once the connection closes. */
  onClose(listener: (reason: string, code: number) => void): void {
    if (this.#closedReason !== undefined) listener(this.#closedReason, this.#closeCode);
    else this.#onClose.push(listener);
  }

  /**
   * Sets (or, with undefined, removes) what gets every frame that answers no
   * numbered request in flight, as text, in the order received: the answers
   * to frames sent with `send`, a watch stream, a peer's messages.
   */
  onFrame(listener: ((text: string) => void) | undefined): void {
    this.#onFrame = listener;
  }

  /** Sends one request and resolves with its result; rejects with NodeError or UnreachableError. */
  async request(body: RequestBody): Promise<unknown> {
    return (await this.requestReply(body)).result;
  }

  /** Sends one request and resolves with the whole reply (`acks`, `more`); rejects like `request`, and with UnreachableError after `timeoutMs` without an answer. */
  requestReply(body: RequestBody, timeoutMs = this.#timeoutMs): Promise<ReplyMessage> {
    if (this.#closedReason !== undefined) return Promise.reject(new UnreachableError(this.url, this.#closedReason));
    return new Promise((resolve, reject) => {
      const id = this.#nextId;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new UnreachableError(this.url, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#register((answer) => (answer instanceof Error ? reject(answer) : resolve(answer)), timer);
      this.#socket.send(JSON.stringify({ ...body, id }));
    });
  }

  /**
   * Sends a numbered request without a timer of its own, for a pipeline that
   * bounds the wait itself (import, export): `write(id)` gives the frame, as
   * JSON text or its UTF-8 bytes; `onAnswer` gets its reply, or the error
   * that fails it (a NodeError, or an UnreachableError when the connection
   * closes). Throws UnreachableError when the connection is closed already.
   */
  sendRequest(write: (id: number) => string | Buffer, onAnswer: (answer: Answer) => void): void {
    if (this.#closedReason !== undefined) throw new UnreachableError(this.url, `the node closed the connection: ${this.#closedReason}`);
    const id = this.#register(onAnswer);
    this.#socket.send(write(id), { binary: false });
  }

  /** Numbered requests sent and not answered yet. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends a frame as it is: its answers reach `onFrame`. Its id is the
   * caller's: it must not be a number this client is waiting on (the client
   * numbers its own requests from 1; the bench sends its frames only while
   * none is in flight).
   */
  send(frame: string | Buffer): void {
    this.#socket.send(frame, { binary: false });
  }

  /**
   * Frames sent from now until the end of this turn of the event loop leave
   * in one write rather than one system call each: the TCP or TLS socket
   * (the upgrade's, a public handle) is corked until setImmediate.
   */
  cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    const transport = this.#transport;
    transport.cork();
    setImmediate(() => {
      this.#corked = false;
      transport.uncork();
    });
  }

  /** Every key of the node, sorted, asked page after page (a reply holds about 168 K characters of keys; the node pages in its own order). */
  async allKeys(): Promise<string[]> {
    const keys: string[] = [];
    for (let cursor: string | undefined; ; ) {
      const reply = await this.requestReply(cursor === undefined ? { type: 'keys' } : { type: 'keys', cursor });
      // One by one: a page of short keys can hold more items than a spread call takes.
      for (const key of reply.result as string[]) keys.push(key);
      cursor = reply.cursor;
      if (cursor === undefined) return keys.sort();
    }
  }

  /** Closes the connection (once: closing again, or a closed one, does nothing). */
  close(): void {
    if (this.#closedReason === undefined) this.#socket.close(1000, 'done');
  }

  /** Numbers a request and keeps what waits for its answer; returns its id. */
  #register(onAnswer: (answer: Answer) => void, timer?: NodeJS.Timeout): number {
    const id = this.#nextId++;
    this.#pending.set(id, timer === undefined ? { onAnswer } : { onAnswer, timer });
    return id;
  }

  #onMessage(text: string): void {
    // Parsed only while a numbered request waits: a stream of other frames costs no JSON.parse here.
    if (this.#pending.size > 0) {
      const message = parseResponse(text);
      const pending = message === null ? undefined : this.#pending.get(message.id);
      if (message !== null && pending !== undefined) {
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        pending.onAnswer(message.type === 'reply' ? message : new NodeError(message.code, message.message, message.acks));
        return;
      }
    }
    this.#onFrame?.(text);
  }
}
