/**
 * A client of one bby node over WebSocket: sends requests, matches replies by
 * id. Used by the `bby` command, the tests and the benchmarks.
 */
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

/** An open connection to a node. */
export class BbyClient {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve: (reply: ReplyMessage) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  readonly #timeoutMs: number;
  #nextId = 1;
  #closedReason: string | undefined;
  /** Gets the `watch-writes` and `watch-state` messages of a `watch` (see `watch`). */
  #onWatch: ((message: WatchWritesMessage | WatchStateMessage) => void) | undefined;
  readonly #onClose: ((reason: string) => void)[] = [];

  private constructor(
    readonly url: string,
    socket: WebSocket,
    timeoutMs: number,
  ) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.on('message', (data) => this.#onMessage(String(data)));
    socket.on('close', (code, reason) => {
      this.#closedReason = reason.length > 0 ? reason.toString() : code === 1009 ? 'message too large' : 'connection closed';
      for (const { reject, timer } of this.#pending.values()) {
        clearTimeout(timer);
        reject(new UnreachableError(url, `the node closed the connection: ${this.#closedReason}`));
      }
      this.#pending.clear();
      for (const listener of this.#onClose) listener(this.#closedReason);
    });
  }

  /**
   * Subscribes to the node's writes (and its mesh state every second, unless
   * `state` is false): `onMessage` gets each `watch-writes` and `watch-state`
   * message until the connection closes. Resolves with the reply.
   */
  async watch(options: { values?: number; state?: boolean }, onMessage: (message: WatchWritesMessage | WatchStateMessage) => void): Promise<ReplyMessage> {
    this.#onWatch = onMessage;
    return await this.requestReply({ type: 'watch', ...options } as RequestBody);
  }

  /** Calls `listener` with the reason once the connection closes. */
  onClose(listener: (reason: string) => void): void {
    if (this.#closedReason !== undefined) listener(this.#closedReason);
    else this.#onClose.push(listener);
  }

  /**
   * Connects to a node: a `ws://` URL, or a target made from a config by
   * `connectionTarget` (TLS, secret). Rejects with UnreachableError or
   * ConnectionError (connection.ts).
   */
  static async connect(target: ConnectionTarget | string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<BbyClient> {
    const url = typeof target === 'string' ? target : target.url;
    return new BbyClient(url, await openConnection(target, timeoutMs), timeoutMs);
  }

  /** Sends one request and resolves with its result; rejects with NodeError or UnreachableError. */
  async request(body: RequestBody): Promise<unknown> {
    return (await this.requestReply(body)).result;
  }

  /** Sends one request and resolves with the whole reply (`acks`, `more`); rejects like `request`. */
  requestReply(body: RequestBody, timeoutMs = this.#timeoutMs): Promise<ReplyMessage> {
    if (this.#closedReason !== undefined) return Promise.reject(new UnreachableError(this.url, this.#closedReason));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new UnreachableError(this.url, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#socket.send(JSON.stringify({ ...body, id }));
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

  /** Closes the connection. */
  close(): void {
    this.#socket.close(1000, 'done');
  }

  #onMessage(text: string): void {
    if (this.#onWatch !== undefined && (text.startsWith('{"type":"watch-writes"') || text.startsWith('{"type":"watch-state"'))) {
      this.#onWatch(JSON.parse(text) as WatchWritesMessage | WatchStateMessage);
      return;
    }
    const message = parseResponse(text);
    if (message === null) return;
    const pending = this.#pending.get(message.id);
    if (pending === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(pending.timer);
    if (message.type === 'reply') pending.resolve(message);
    else pending.reject(new NodeError(message.code, message.message, message.acks));
  }
}
