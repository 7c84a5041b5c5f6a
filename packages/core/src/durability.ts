/**
 * The durability policy between the core and the disk, without I/O: what to
 * append, when a batch's messages may go out, when to stop reading the
 * sockets, what a failed append turns a batch into, when to look at
 * compaction, and when moved cursors are saved. The adapter carries out its
 * decisions (appends, socket pauses, a timer for cursor saves) and reports
 * back (`appended`, `appendFailed`, `cursorSaveDue`); the simulator runs this
 * very code.
 *
 * Rules:
 * - Group commit, in order: each batch's changes are appended as the batch
 *   comes (the storage engine writes appends in order and groups their
 *   syncs); a batch is released (its messages, cursors... carried out, ready.ts)
 *   only once its own append and every earlier batch's are settled, so
 *   batches go out in the order they were taken.
 * - Backlog: the bytes of the batches not yet released (`estimateBytes`) above
 *   `pauseAboveBytes` stop the reading of every socket; below
 *   `resumeBelowBytes` it starts again (BACKLOG_PAUSE_BYTES says why).
 * - Fail-stop: a batch whose append failed is released `unkept`: no frame may
 *   promise its changes, and the core is told `storageFailed`.
 * - Cursors are saved only from released batches (their entries are durable),
 *   at most once per CURSOR_SAVE_INTERVAL_MS.
 * - Compaction: after a released batch that appended changes, the storage is
 *   asked whether its log is worth compacting; `compactionDue` is the rule.
 * - Epoch: `epochRule` says at start whether the recovered change feed and
 *   cursors may be kept.
 *
 * House rules: no timers, no clock, no promises; decisions are taken with
 * `takeDecisions()`, as the core's `takeReady()`.
 */
import { BbyError } from './errors.js';
import { type Cursor, encodeMessage, type ErrorMessage } from './protocol.js';
import { EMPTY_READY, type PersistEffect, type Ready, type SendEffect } from './ready.js';

/**
 * Backpressure from the disk to the sockets. The batches wait, in order,
 * behind the durable appends of the batches before them, so every frame this
 * node sends (heartbeats and replies included) waits behind the whole backlog
 * of not-yet-durable entries. Sockets are read as fast as frames come (a
 * streamed catch-up, a bulk import), faster than a disk with fsync "always"
 * writes, so without a bound the backlog grows until the node goes silent for
 * longer than its peers' timeout (4 s, `timing.ts`).
 *
 * When the bytes waiting for durability go above `BACKLOG_PAUSE_BYTES`, the
 * node stops reading all its sockets (TCP then slows the senders, and a
 * peer's catch-up, which waits for its send callbacks, follows); when they
 * drop below `BACKLOG_RESUME_BYTES`, it reads them all again. 4 MiB is some
 * 25 catch-up batches or 4 full `set-many` frames, enough that the disk
 * always has a large group commit to write, and even a slow disk (40 MB/s
 * with its fsyncs) writes it in about 100 ms, well under the 1 s heartbeat
 * period. Resuming only below 1 MiB keeps the node from pausing again after
 * every read.
 */
export const BACKLOG_PAUSE_BYTES = 4 * 1024 * 1024;

/** See BACKLOG_PAUSE_BYTES. */
export const BACKLOG_RESUME_BYTES = 1024 * 1024;

/**
 * Bytes counted per persisted entry on top of its key, value and origin
 * (record header, timestamp, sequence number, JSON punctuation): a little
 * more than a log record takes, so tiny entries count too.
 */
export const RECORD_OVERHEAD_BYTES = 64;

/** How long after the first unsaved cursor move the moved cursors are saved, in milliseconds (a stale cursor is safe). */
export const CURSOR_SAVE_INTERVAL_MS = 1_000;

/** Identifies a batch given to the pipeline; appends are reported back with it. */
export type BatchId = number;

/** When the adapter stops reading its sockets (more than `pauseAboveBytes` of changes wait for durability) and starts again (below `resumeBelowBytes`). */
export interface BacklogBounds {
  readonly pauseAboveBytes: number;
  readonly resumeBelowBytes: number;
}

/** Options of a DurabilityPipeline. */
export interface DurabilityOptions {
  /** Whether there is a disk: without one nothing is appended and batches go out at once. */
  readonly disk: boolean;
  /** Whether moved cursors are saved (the epoch rule, `epochRule`, says whether they are worth keeping). */
  readonly keepsCursors: boolean;
  /** Backlog bounds, in bytes; see BACKLOG_PAUSE_BYTES. */
  readonly backlog?: BacklogBounds;
  /**
   * TEST ONLY: breaks the ordering rule on purpose, releasing each batch as
   * soon as it comes, before its changes are durable, so that a test can
   * check that its checker catches the lost acknowledgement. Never set it
   * anywhere else.
   */
  readonly unsafeReleaseBeforeDurable?: boolean;
  /**
   * TEST ONLY: breaks the fail-stop rule on purpose, releasing a batch whose
   * append failed as it is (its replies say true, its entries go out) rather
   * than `unkept`, so that a test can check that its checker catches a reply
   * for a write that is not durable. Never set it anywhere else.
   */
  readonly unsafeReleaseFailedAsKept?: boolean;
}

/** What the adapter must do now, in this order. */
export interface DurabilityDecisions {
  /** Tell the core `storageFailed(reason)` (and start retrying the disk), or null. */
  readonly storageFailed: string | null;
  /** Start these appends, in order, and report each with `appended(id)` or `appendFailed(id, reason)`. */
  readonly appends: readonly { readonly id: BatchId; readonly changes: readonly PersistEffect[] }[];
  /** Stop ('pause') or start ('resume') reading every socket, or null for no change. */
  readonly reading: 'pause' | 'resume' | null;
  /** Carry out these batches, in order (ready.ts; their `persist` is done). */
  readonly release: readonly Ready[];
  /** Ask the storage whether the log is worth compacting (it is, once it is large beside the store). */
  readonly compact: boolean;
  /** Call `cursorSaveDue()` in this many milliseconds, or null (no save waiting to be timed). */
  readonly saveCursorsInMs: number | null;
  /** Write these cursors with the node's state (node.json) now, or null. */
  readonly saveCursors: Readonly<Record<string, Cursor>> | null;
}

interface Waiting {
  readonly id: BatchId;
  readonly ready: Ready;
  readonly bytes: number;
  /** 'pending' until the append is settled, then the outcome. */
  state: 'pending' | 'durable' | { readonly failure: string };
}

/** The durability policy; see the file header. */
export class DurabilityPipeline {
  readonly #options: DurabilityOptions;
  readonly #pauseAboveBytes: number;
  readonly #resumeBelowBytes: number;
  /** Batches not yet released, oldest first. */
  readonly #waiting: Waiting[] = [];
  #nextId: BatchId = 1;
  #bytesWaiting = 0;
  #paused = false;
  /** Why the last append failed, until `storageRecovered`. */
  #failure: string | null = null;
  /** Cursor moves of released batches not saved yet, or null when none wait. */
  #unsavedCursors: Record<string, Cursor> | null = null;
  // Decisions taken since the last takeDecisions().
  #storageFailed: string | null = null;
  #appends: { id: BatchId; changes: readonly PersistEffect[] }[] = [];
  #reading: 'pause' | 'resume' | null = null;
  #release: Ready[] = [];
  #compact = false;
  #saveCursorsInMs: number | null = null;
  #saveCursors: Record<string, Cursor> | null = null;

  constructor(options: DurabilityOptions) {
    this.#options = options;
    this.#pauseAboveBytes = options.backlog?.pauseAboveBytes ?? BACKLOG_PAUSE_BYTES;
    this.#resumeBelowBytes = options.backlog?.resumeBelowBytes ?? BACKLOG_RESUME_BYTES;
  }

  /** Estimated bytes of the changes waiting for durability (see BACKLOG_PAUSE_BYTES). */
  get bytesWaiting(): number {
    return this.#bytesWaiting;
  }

  /** Batches waiting for durability. */
  get batchesWaiting(): number {
    return this.#waiting.length;
  }

  /** Whether the pipeline asked to stop reading the sockets. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Takes a batch from the core (`takeReady()`): appends its changes, and releases it once it and every earlier batch are durable. */
  submit(ready: Ready): void {
    const changes = this.#options.disk ? ready.persist : [];
    if (this.#options.unsafeReleaseBeforeDurable === true) {
      // TEST ONLY (see the option): out at once, whatever the disk says.
      if (changes.length > 0) this.#appends.push({ id: this.#nextId++, changes });
      this.#released(ready, changes.length > 0);
      return;
    }
    if (this.#waiting.length === 0 && changes.length === 0) {
      this.#released(ready, false);
      return;
    }
    const id = this.#nextId++;
    const bytes = estimateBytes(changes);
    this.#waiting.push({ id, ready, bytes, state: changes.length === 0 ? 'durable' : 'pending' });
    this.#bytesWaiting += bytes;
    if (changes.length > 0) this.#appends.push({ id, changes });
    // Frames already read still arrive after the pause: the backlog can pass the bound by one read per socket.
    if (!this.#paused && this.#bytesWaiting > this.#pauseAboveBytes) this.#setReading('pause');
    this.#releaseSettled();
  }

  /** The append of batch `id` is durable. */
  appended(id: BatchId): void {
    const batch = this.#waiting.find((waiting) => waiting.id === id);
    if (batch === undefined) return;
    batch.state = 'durable';
    this.#releaseSettled();
  }

  /** The append of batch `id` failed (`reason` in one line): the batch goes out unkept, and the core refuses writes. */
  appendFailed(id: BatchId, reason: string): void {
    const batch = this.#waiting.find((waiting) => waiting.id === id);
    if (batch === undefined) return;
    batch.state = { failure: reason };
    this.#releaseSettled();
  }

  /** The disk works again (a retry wrote every pending change): the next failure is told to the core again. */
  storageRecovered(): void {
    this.#failure = null;
  }

  /** The time asked for by `saveCursorsInMs` has come: the moved cursors are saved now (`saveCursors`). */
  cursorSaveDue(): void {
    if (this.#unsavedCursors === null) return;
    this.#saveCursors = { ...this.#saveCursors, ...this.#unsavedCursors };
    this.#unsavedCursors = null;
  }

  /** Takes the decisions made since the last take. */
  takeDecisions(): DurabilityDecisions {
    const decisions: DurabilityDecisions = {
      storageFailed: this.#storageFailed,
      appends: this.#appends,
      reading: this.#reading,
      release: this.#release,
      compact: this.#compact,
      saveCursorsInMs: this.#saveCursorsInMs,
      saveCursors: this.#saveCursors,
    };
    this.#storageFailed = null;
    this.#appends = [];
    this.#reading = null;
    this.#release = [];
    this.#compact = false;
    this.#saveCursorsInMs = null;
    this.#saveCursors = null;
    return decisions;
  }

  /** Releases the oldest batches whose appends are settled, in order, up to the first still pending. */
  #releaseSettled(): void {
    while (this.#waiting.length > 0 && this.#waiting[0]!.state !== 'pending') {
      const batch = this.#waiting.shift()!;
      this.#bytesWaiting -= batch.bytes;
      if (this.#paused && this.#bytesWaiting < this.#resumeBelowBytes) this.#setReading('resume');
      if (batch.state === 'durable') this.#released(batch.ready, batch.ready.persist.length > 0 && this.#options.disk);
      else this.#releasedUnkept(batch.ready, (batch.state as { failure: string }).failure);
    }
  }

  #setReading(reading: 'pause' | 'resume'): void {
    this.#paused = reading === 'pause';
    // A pause and a resume within one take cancel out.
    this.#reading = this.#reading !== null && this.#reading !== reading ? null : reading;
  }

  /** A batch goes out; `appended` when it wrote changes (then compaction may be due). */
  #released(ready: Ready, appended: boolean): void {
    this.#release.push(ready);
    if (appended) this.#compact = true;
    if (!this.#options.keepsCursors || ready.cursors.length === 0) return;
    if (this.#unsavedCursors === null) {
      this.#unsavedCursors = {};
      this.#saveCursorsInMs = CURSOR_SAVE_INTERVAL_MS;
    }
    for (const { peerId, cursor } of ready.cursors) this.#unsavedCursors[peerId] = cursor;
  }

  #releasedUnkept(ready: Ready, failure: string): void {
    if (this.#failure === null) this.#storageFailed = failure;
    this.#failure = failure;
    // TEST ONLY (see the option): a copy, as the mutation that a checker going by batch identity missed.
    this.#release.push(this.#options.unsafeReleaseFailedAsKept === true ? { ...ready } : unkept(ready, failure));
  }
}

/**
 * What a batch whose changes could not be made durable may still do: no
 * frame may promise them. Replies become STORAGE_FAILED errors (a `true`
 * would promise the write is kept); entries, acknowledgements, the end of a
 * catch-up and pings (which may vouch with `upTo`) are dropped, and so are
 * cursor moves; the rest goes out. The changes stay pending in the storage,
 * written by the retry that succeeds.
 */
export function unkept(ready: Ready, failure: string): Ready {
  const messages = ready.messages.flatMap((send): SendEffect[] => {
    const message = send.message;
    if (message.type === 'entries' || message.type === 'ack' || message.type === 'caught-up' || message.type === 'ping') return [];
    if (message.type !== 'reply') return [send];
    const error = new BbyError('STORAGE_FAILED', `the node could not write to its data folder: ${failure}; the write is not acknowledged`);
    const answer: ErrorMessage = { type: 'error', id: message.id, code: error.code, message: error.message };
    return [{ ...send, message: answer, text: encodeMessage(answer) }];
  });
  return { ...ready, persist: EMPTY_READY.persist, cursors: EMPTY_READY.cursors, messages };
}

/** What a batch's changes add to the durability backlog, about what their log records take. */
export function estimateBytes(changes: readonly PersistEffect[]): number {
  let bytes = 0;
  for (const { entry } of changes) bytes += entry.key.length + entry.value.length + entry.origin.length + RECORD_OVERHEAD_BYTES;
  return bytes;
}

/** The log is compacted once it is larger than this, in bytes, and than the live data (`compactionDue`). */
export const COMPACT_MIN_BYTES = 64 * 1024 * 1024;

/** The fewest bytes a live entry takes in a log: a log smaller than the live entries times this has little to drop. */
const MIN_LIVE_RECORD_BYTES = 32;

/**
 * The compaction trigger: a log is worth replacing with a snapshot of the
 * store once it is past `minBytes` and larger than both the snapshot it
 * would replace and the live data. `liveEntries` is asked only when the
 * cheap tests pass, since this runs after every durable batch.
 */
export function compactionDue(log: { readonly logBytes: number; readonly snapshotBytes: number; readonly minBytes: number }, liveEntries: () => number): boolean {
  if (log.logBytes <= log.minBytes) return false;
  return log.logBytes > Math.max(log.snapshotBytes, liveEntries() * MIN_LIVE_RECORD_BYTES);
}

/** What the epoch rule decides at start; see `epochRule`. */
export interface EpochDecision {
  /** Keep the recovered epoch (peers may resume this node's feed from their cursors); otherwise start a new one. */
  readonly keepEpoch: boolean;
  /** Keep and save cursors into the peers' feeds (the entries they vouch for are synced before they move). */
  readonly keepsCursors: boolean;
}

/**
 * The epoch rule: peers may resume this node's change feed from their
 * cursors only if every change it ever sent out is recovered with the same
 * sequence number. That holds under fsync "always" (a batch's messages go out
 * after its records are synced) when recovery repaired nothing and every
 * record has its sequence number; otherwise the node starts a new epoch, and
 * its peers fall back to one full transfer. Its own cursors are kept under
 * the same condition of durability.
 */
export function epochRule(recovery: { readonly fsyncAlways: boolean; readonly repaired: boolean; readonly sequenced: boolean; readonly hadEpoch: boolean }): EpochDecision {
  const durable = recovery.fsyncAlways && !recovery.repaired;
  return { keepEpoch: durable && recovery.sequenced && recovery.hadEpoch, keepsCursors: durable };
}
