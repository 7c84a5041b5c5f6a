/**
 * The contract between the core and its adapter, as etcd's raft `Ready`:
 * `takeReady()` hands over one typed batch of everything the node asks for
 * since the last take, grouped by what the adapter does with it.
 *
 * Ordering duties of the adapter, which this file's `READY_ORDER` and
 * `carryOut` spell out in code:
 * 1. `persist` first: the batch's changes must be durable before anything
 *    else of the batch is carried out (a `set` reply that says `true`
 *    promises the write is kept; a forward or a cursor may vouch for it).
 * 2. Batches are carried out in the order they were taken: a batch waits for
 *    the durability of its own changes and of every earlier batch's
 *    (durability.ts decides when).
 * 3. Within a batch: state for node.json (`peers`, `cursors`), then `dials`,
 *    `messages`, `flow`, `closes`, `logs`. A link's frames go out before its
 *    close (a refusal's error frame before the close that follows it), and a
 *    dial before the close that abandons it.
 * Within each field, items are in the order the node queued them.
 *
 * Adding a field to `Ready` fails to compile until `READY_ORDER` names it
 * and every `ReadyHandlers` table carries it out.
 */
import { type Entry } from './entry.js';
import { type LinkId } from './peer-table.js';
import { type Cursor, type Message } from './protocol.js';
import { type Change } from './store.js';

/** The facts of a log line, by name. */
export type LogFields = Readonly<Record<string, string | number | boolean | null | undefined>>;

/**
 * Send a frame: write `text` to the link's socket as one text frame.
 * `text` is `message` encoded by the node (`encodeMessage`: JSON, with
 * entries as tuples); `message` is there to look inside (its type, its id),
 * and `JSON.stringify(message)` gives the same text. `bytes` is the core's
 * estimate of the frame's size: once the frames of a link are written out,
 * report their `bytes` with `written(link, sum)` (flow-control.ts); frames
 * on a link that closed need no report.
 */
export interface SendEffect {
  readonly type: 'send';
  readonly link: LinkId;
  /** The frame to write, `encodeMessage(message)`. */
  readonly text: string;
  readonly message: Message;
  readonly bytes: number;
}

/** Store this change durably; `seq` is its local sequence number, to recover with `changes`. It is a `Change`, as it goes to disk. */
export interface PersistEffect extends Change {
  readonly type: 'persist';
  readonly entry: Entry;
  readonly seq: number;
}

/** Stop reading this link's socket (its client is over its outbound budget) until `resume`. */
export interface PauseEffect {
  readonly type: 'pause';
  readonly link: LinkId;
}

/** Read this link's socket again. */
export interface ResumeEffect {
  readonly type: 'resume';
  readonly link: LinkId;
}

/** This node's cursor into a peer's change feed moved: keep it with the node's state (a stale one is safe). */
export interface CursorEffect {
  readonly type: 'cursor';
  readonly peerId: string;
  readonly cursor: Cursor;
}

/** Open a connection to `address` (host:port; ws:// or wss:// as the adapter's transport says), then report `opened` or `closed`. */
export interface DialEffect {
  readonly type: 'dial';
  readonly link: LinkId;
  readonly address: string;
}

/** Close a link with a WebSocket close code and reason. */
export interface CloseEffect {
  readonly type: 'close';
  readonly link: LinkId;
  readonly code: number;
  readonly reason: string;
}

/** A client added a peer at run time: keep its address with the node's state. */
export interface PeerAddedEffect {
  readonly type: 'peer-added';
  readonly address: string;
}

/** A client removed a peer: forget its address in the node's state. */
export interface PeerRemovedEffect {
  readonly type: 'peer-removed';
  readonly address: string;
}

/**
 * A log line: `message` for people (text from outside already escaped),
 * `event` a stable kebab-case name of what happened, `fields` its facts
 * (ids, addresses, counts; strings as they came: escape them when printing).
 */
export interface LogEffect {
  readonly type: 'log';
  readonly level: 'info' | 'warn';
  readonly event: string;
  readonly message: string;
  readonly fields?: LogFields;
}

/** One thing the node asks its adapter to do, as it queues it; `takeReady()` hands them over grouped (`Ready`). */
export type Effect = SendEffect | PauseEffect | ResumeEffect | PersistEffect | CursorEffect | DialEffect | CloseEffect | PeerAddedEffect | PeerRemovedEffect | LogEffect;

/** One batch of what the node asks for, grouped by duty; see the file header for the order rules. */
export interface Ready {
  /** Changes to make durable before anything else of this batch (or of a later one) is carried out. */
  readonly persist: readonly PersistEffect[];
  /** Peers added or removed at run time, in order: keep them with the node's state (node.json). */
  readonly peers: readonly (PeerAddedEffect | PeerRemovedEffect)[];
  /** Cursor moves to keep with the node's state; saved only once `persist` is durable (a saved cursor never vouches for a lost entry). */
  readonly cursors: readonly CursorEffect[];
  /** Connections to open. */
  readonly dials: readonly DialEffect[];
  /** Frames to write, per link in order; only once `persist` is durable. */
  readonly messages: readonly SendEffect[];
  /** Links to stop or start reading, in order (a pause then a resume of one link leaves it read). */
  readonly flow: readonly (PauseEffect | ResumeEffect)[];
  /** Links to close, after their `messages`. */
  readonly closes: readonly CloseEffect[];
  /** Lines to log. */
  readonly logs: readonly LogEffect[];
}

/** The order in which an adapter carries out the fields of a batch once its `persist` is durable (`persist` first, by the durability pipeline). */
export const READY_ORDER = ['persist', 'peers', 'cursors', 'dials', 'messages', 'flow', 'closes', 'logs'] as const satisfies readonly (keyof Ready)[];

// Compile-time check that READY_ORDER names every field of Ready.
type Missing = Exclude<keyof Ready, (typeof READY_ORDER)[number]>;
const everyFieldOrdered: Missing extends never ? true : Missing = true;
void everyFieldOrdered;

/** How an adapter carries out each field of a batch: one handler per field, so that a new field fails to compile until it is handled. */
export type ReadyHandlers = { readonly [K in keyof Ready]: (items: Ready[K]) => void };

/** Calls each handler with its field, in `READY_ORDER`, skipping empty fields. */
export function carryOut(ready: Ready, handlers: ReadyHandlers): void {
  for (const field of READY_ORDER) {
    const items = ready[field];
    if (items.length > 0) (handlers[field] as (items: Ready[typeof field]) => void)(items);
  }
}

/** Whether a batch asks for nothing. */
export function isEmptyReady(ready: { readonly [K in keyof Ready]: readonly unknown[] }): boolean {
  return READY_ORDER.every((field) => ready[field].length === 0);
}

/** A batch that asks for nothing. */
export const EMPTY_READY: Ready = Object.freeze({ persist: [], peers: [], cursors: [], dials: [], messages: [], flow: [], closes: [], logs: [] });

/** The items of a batch as one list, field after field in `READY_ORDER` (for tests and for adapters that carry out one item at a time). */
export function readyEffects(ready: Ready): Effect[] {
  const out: Effect[] = [];
  for (const field of READY_ORDER) out.push(...ready[field]);
  return out;
}
