/**
 * Watchers: clients that sent `watch` get the writes that reach this node,
 * gathered into one `watch-writes` per take of the node's effects, and a
 * `watch-state` snapshot every WATCH_STATE_INTERVAL_MS. A watcher is never
 * let hold the node back: what it does not read in time is counted as
 * dropped, and one that reads nothing for too long is closed (4008).
 */
import { type Entry } from './entry.js';
import { OUTBOUND_RESUME_BYTES, SLOW_LINK_TIMEOUT_MS } from './flow-control.js';
import { type NodeContext } from './node-context.js';
import { type Link, type LinkId } from './peer-table.js';
import { type NodeStatus, type Stats, type WatchRequest, type WatchWrite } from './protocol.js';
import { jsonStringLength } from './sync.js';

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

/**
 * A client's `watch` subscription: writes wait here until the node's effects
 * are next taken, then go out in one `watch-writes`, unless the watcher has
 * not read what it was sent (then they are counted in `dropped`).
 */
export interface Watcher {
  readonly requestId: string | number;
  /** Characters of each value to include. */
  readonly valueChars: number;
  /** Whether it gets `watch-state` every second. */
  readonly state: boolean;
  readonly pending: WatchWrite[];
  /** JSON characters of `pending`, about (flow-control.ts). */
  pendingChars: number;
  /** Writes and states left out since the last message that went out. */
  dropped: number;
  /** Since when it has been too far behind to be sent anything, in the clock's milliseconds; null while it reads. */
  droppingSinceMs: number | null;
}

/** The watchers of one node; see the file header. */
export class Watchers {
  readonly #ctx: NodeContext;
  /** What a `watch-state` shows: the node's status and stats. */
  readonly #snapshot: () => { status: NodeStatus; stats: Stats };
  /** Links that sent `watch`, with their subscription, by id: a write costs nothing more while there are none. A second `watch` replaces the first. */
  readonly #links = new Map<LinkId, { readonly link: Link; readonly watcher: Watcher }>();
  #nextStateAtMs = 0;

  constructor(ctx: NodeContext, snapshot: () => { status: NodeStatus; stats: Stats }) {
    this.#ctx = ctx;
    this.#snapshot = snapshot;
  }

  /** How many links watch. */
  get count(): number {
    return this.#links.size;
  }

  /** A link closed: it watches no more. */
  forget(link: LinkId): void {
    this.#links.delete(link);
  }

  /** A client subscribes to the writes and, unless it says otherwise, to the mesh state (WatchRequest). */
  watch(link: Link, request: WatchRequest): void {
    const watcher: Watcher = { requestId: request.id, valueChars: request.values ?? 0, state: request.state ?? true, pending: [], pendingChars: 0, dropped: 0, droppingSinceMs: null };
    this.#links.set(link.id, { link, watcher });
    this.#ctx.reply(link.id, request.id, { watching: true, node: this.#ctx.id, stateIntervalMs: watcher.state ? WATCH_STATE_INTERVAL_MS : 0 });
    if (watcher.state) this.#sendState(link, watcher);
  }

  /** Queues a write for every watcher; it goes out with the next `takeReady` (flush), or is counted as dropped. */
  write(entry: Entry, from: string | null, conflict: boolean): void {
    for (const { watcher } of this.#links.values()) {
      const cut = entry.value.length > watcher.valueChars;
      const value = watcher.valueChars === 0 ? undefined : cut ? entry.value.slice(0, watcher.valueChars) : entry.value;
      const chars = 64 + jsonStringLength(entry.key) + entry.origin.length + (from?.length ?? 0) + (value === undefined ? 0 : jsonStringLength(value));
      if (watcher.pendingChars + chars > MAX_WATCH_PENDING_CHARS) {
        watcher.dropped++;
        this.#ctx.counters.watchEventsDropped++;
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

  /** Sends each watcher the writes queued for it (BbyNode.takeReady calls it), unless it is behind on reading (then they are counted as dropped). */
  flush(): void {
    for (const { link, watcher } of this.#links.values()) {
      if (watcher.pending.length === 0) continue;
      const writes = watcher.pending.splice(0, watcher.pending.length);
      watcher.pendingChars = 0;
      if (!this.#mayWatch(link, watcher, writes.length)) continue;
      this.#ctx.send(link.id, { type: 'watch-writes', id: watcher.requestId, writes, ...(watcher.dropped > 0 ? { dropped: watcher.dropped } : {}) });
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
    this.#ctx.counters.watchEventsDropped += count;
    watcher.droppingSinceMs ??= this.#ctx.nowMs();
    return false;
  }

  #sendState(link: Link, watcher: Watcher): void {
    if (!this.#mayWatch(link, watcher, 1)) return;
    this.#ctx.send(link.id, { type: 'watch-state', id: watcher.requestId, ...this.#snapshot(), ...(watcher.dropped > 0 ? { dropped: watcher.dropped } : {}) });
    watcher.dropped = 0;
  }

  /**
   * Every WATCH_STATE_INTERVAL_MS, the mesh state to each watcher that asked
   * for it; a watcher that has read nothing for SLOW_LINK_TIMEOUT_MS while
   * events were left out for it is closed (4008), as any slow link.
   */
  tick(nowMs: number): void {
    const due = nowMs >= this.#nextStateAtMs;
    if (due) this.#nextStateAtMs = nowMs + WATCH_STATE_INTERVAL_MS;
    for (const { link, watcher } of [...this.#links.values()]) {
      if (link.unsentBytes <= WATCH_BUDGET_BYTES) watcher.droppingSinceMs = null;
      if (watcher.droppingSinceMs !== null && nowMs - watcher.droppingSinceMs > SLOW_LINK_TIMEOUT_MS) {
        this.#ctx.closeTooSlow(link, `a watcher that read nothing for ${nowMs - watcher.droppingSinceMs} ms`);
        continue;
      }
      if (due && watcher.state) this.#sendState(link, watcher);
    }
  }
}
