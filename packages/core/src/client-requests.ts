/**
 * Client requests: `get`, `set` (with or without `acks`), `set-many`, `keys`,
 * `peers`, `stats`, `watch`, `add-peer`, `remove-peer` (docs/protocol.md).
 * Writes and `add-peer` are refused while the disk fails (STORAGE_FAILED);
 * reads are always answered. Each request goes to the concern that owns it.
 */
import { type AckRounds } from './ack-rounds.js';
import { type Broadcast } from './broadcast.js';
import { type Dials } from './dials.js';
import { ProtocolError } from './errors.js';
import { hashKey } from './key-index.js';
import { MAX_BATCH_CHARS } from './limits.js';
import { type NodeContext } from './node-context.js';
import { type Link, MAX_PEERS_LISTED } from './peer-table.js';
import { type Request, type Stats } from './protocol.js';
import { type Watchers } from './watchers.js';

/** A `keys` reply holds at most about this many characters of keys, to stay far below the message limit. */
export const MAX_KEYS_PAGE_LENGTH = MAX_BATCH_CHARS;

/** The concerns client requests go to. */
export interface RequestHandlers {
  readonly broadcast: Broadcast;
  readonly acks: AckRounds;
  readonly watchers: Watchers;
  readonly dials: Dials;
}

/** The client requests of one node; see the file header. */
export class ClientRequests {
  readonly #ctx: NodeContext;
  readonly #parts: RequestHandlers;
  /** The node's counters and counts, for `stats`. */
  readonly #stats: () => Stats;

  constructor(ctx: NodeContext, parts: RequestHandlers, stats: () => Stats) {
    this.#ctx = ctx;
    this.#parts = parts;
    this.#stats = stats;
  }

  /** Answers a client's request (a peer may make requests too). */
  handle(link: Link, request: Request): void {
    switch (request.type) {
      case 'get':
        return this.#ctx.reply(link.id, request.id, this.#ctx.store.get(request.key)?.value ?? null);
      case 'set':
      case 'set-many':
      case 'add-peer':
        if (this.#ctx.storageFailure !== null) return this.#ctx.reject(link, request.id, this.#ctx.storageError());
        break;
    }
    switch (request.type) {
      case 'set':
        if (request.acks !== undefined) return this.#parts.acks.start(link, request);
        // The parser already checked the key and the value.
        return this.#ctx.reply(link.id, request.id, this.#parts.broadcast.write(request.key, request.value, undefined));
      case 'set-many':
        return this.#ctx.reply(link.id, request.id, this.#parts.broadcast.writeMany(request.entries));
      case 'keys':
        return this.#keysPage(link, request);
      case 'peers': {
        const rows = this.#ctx.table.list();
        const omitted = Math.max(0, rows.length - MAX_PEERS_LISTED);
        return this.#ctx.send(link.id, { type: 'reply', id: request.id, result: rows.slice(0, MAX_PEERS_LISTED), ...(omitted > 0 ? { omitted } : {}) });
      }
      case 'stats':
        return this.#ctx.reply(link.id, request.id, this.#stats());
      case 'watch':
        return this.#parts.watchers.watch(link, request);
      case 'add-peer':
        return this.#parts.dials.addPeerRequest(link, request.id, request.address);
      case 'remove-peer':
        return this.#parts.dials.removePeerRequest(link, request.id, request.address);
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
        return this.#ctx.reject(link, request.id, new ProtocolError('BAD_MESSAGE', 'bad "cursor": not one this node gave; pass the "cursor" of the previous keys reply as it is, or none to start'));
      }
      const previous = Number.isSafeInteger(start) && start > 0 && start <= this.#ctx.store.size ? this.#ctx.store.keysPage(start - 1, 1, Infinity).keys[0] : undefined;
      if (previous === undefined || keyCheck(previous) !== hash) {
        return this.#ctx.reject(link, request.id, new ProtocolError('STALE_CURSOR', 'this cursor is not from this run of the node (it restarted since the listing began); list again from the start'));
      }
    }
    const { keys, next } = this.#ctx.store.keysPage(start, request.limit ?? Infinity, MAX_KEYS_PAGE_LENGTH);
    const more = next < this.#ctx.store.size;
    this.#ctx.send(link.id, { type: 'reply', id: request.id, result: keys, ...(more ? { cursor: `${next}.${keyCheck(keys.at(-1)!)}` } : {}) });
  }
}

/** The part of a `keys` cursor that ties it to the key before its slot. */
function keyCheck(key: string): string {
  return (hashKey(key, 0) >>> 0).toString(16);
}
