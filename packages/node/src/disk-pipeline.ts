/**
 * The disk side of a node: the core's durability pipeline (durability.ts)
 * carried out on a data folder (persistence.ts). It takes each batch the core
 * hands over (`submit`), appends its changes, keeps node.json (added peers,
 * cursors) and hands the batch back to the socket side (`hooks.release`) once
 * it may go out, in order; it tells the core when the disk fails or works
 * again, retries it, compacts the log, and says when to stop reading the
 * sockets. No policy of its own: the pipeline decides, this class does.
 *
 * House rules: no sockets, no timers of its own (the Persistence's
 * `scheduler` runs them), no clock; so a simulator drives the very code
 * `bby-node` runs, over an in-memory FileSystem (`Persistence.recover`).
 */
import { type BacklogBounds, type BbyNode, type BatchId, type DurabilityDecisions, DurabilityPipeline, type PeerAddedEffect, type PeerRemovedEffect, type PersistEffect, type Ready } from '@bby/core';
import { type LogSink } from './log-sink.js';
import { type Persistence } from './persistence.js';

/** How often a node whose disk failed tries it again, in milliseconds. */
export const DISK_RETRY_INTERVAL_MS = 2_000;

/** What the disk side asks of the socket side. */
export interface DiskPipelineHooks {
  /** Carry out a batch that may go out now, in the order given; its `persist`, `peers` and `cursors` are done here. */
  release(ready: Ready): void;
  /** Stop ('pause') or start ('resume') reading every socket: the backlog of not-yet-durable changes crossed a bound. */
  reading(state: 'pause' | 'resume'): void;
  /** The core was told the storage failed or works again: take its next batch soon. */
  wake(): void;
  readonly log: LogSink;
}

/** Options of a DiskPipeline. */
export interface DiskPipelineOptions {
  readonly hooks: DiskPipelineHooks;
  /** Backlog bounds, in bytes (tests lower them); see the core's BACKLOG_PAUSE_BYTES. */
  readonly backlog?: BacklogBounds | undefined;
  /** TEST ONLY (see the core's DurabilityOptions): releases batches before their changes are durable. */
  readonly unsafeReleaseBeforeDurable?: boolean | undefined;
  /** TEST ONLY (see the core's DurabilityOptions): releases a batch whose append failed as if it were kept. */
  readonly unsafeReleaseFailedAsKept?: boolean | undefined;
}

/** What the disk side needs of the core: to tell it about the disk, and to read its store for a snapshot. */
export type DiskCore = Pick<BbyNode, 'storageFailed' | 'storageRecovered' | 'stats' | 'changes'>;

/** The disk side of a node; see the file header. */
export class DiskPipeline {
  readonly #core: DiskCore;
  readonly #persistence: Persistence;
  readonly #hooks: DiskPipelineHooks;
  readonly #pipeline: DurabilityPipeline;
  readonly #unsubscribe: () => void;
  /** Cancels the timer of the next cursor save, while one is set. */
  #cancelCursorSave: (() => void) | null = null;
  /** Cancels the next disk retry, while the disk fails. */
  #cancelRetry: (() => void) | null = null;
  #retrying = false;
  /** Resolves the callers of `#settled()` once no batch waits. */
  #onSettled: (() => void)[] = [];
  #stopped = false;

  constructor(core: DiskCore, persistence: Persistence, options: DiskPipelineOptions) {
    this.#core = core;
    this.#persistence = persistence;
    this.#hooks = options.hooks;
    this.#pipeline = new DurabilityPipeline({
      disk: persistence.storage !== null,
      keepsCursors: persistence.keepsCursors,
      ...(options.backlog === undefined ? {} : { backlog: options.backlog }),
      ...(options.unsafeReleaseBeforeDurable === true ? { unsafeReleaseBeforeDurable: true } : {}),
      ...(options.unsafeReleaseFailedAsKept === true ? { unsafeReleaseFailedAsKept: true } : {}),
    });
    // A failure no append sees (a background fsync under "everysec") must stop the acknowledgements too.
    this.#unsubscribe = persistence.onStorageStateChange((failure) => {
      if (failure !== null) this.#storageFailed(failure.message);
    });
  }

  /** Estimated bytes of the changes waiting for durability. */
  get bytesWaiting(): number {
    return this.#pipeline.bytesWaiting;
  }

  /** Batches waiting for durability. */
  get batchesWaiting(): number {
    return this.#pipeline.batchesWaiting;
  }

  /** Whether the sockets should not be read now (the backlog is over its bound). */
  get paused(): boolean {
    return this.#pipeline.paused;
  }

  /** Takes a batch from the core's `takeReady()`; it comes back through `hooks.release` once it may go out. */
  submit(ready: Ready): void {
    this.#pipeline.submit(ready);
    this.#carryOut(this.#pipeline.takeDecisions());
  }

  /** No more retries or timed saves (the node is stopping); batches still in flight are released as their appends settle. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#unsubscribe();
    this.#cancelRetry?.();
    this.#cancelRetry = null;
    this.#cancelCursorSave?.();
    this.#cancelCursorSave = null;
  }

  /**
   * Stops (`stop`), waits for every batch to be released, saves the cursors
   * still waiting for their timer, and closes the data folder. Never rejects:
   * resolves to one line per problem, for the caller to log.
   */
  async close(): Promise<string[]> {
    this.stop();
    await this.#settled();
    this.#pipeline.cursorSaveDue();
    this.#carryOut(this.#pipeline.takeDecisions());
    return this.#persistence.close();
  }

  /** Resolves once no batch waits for the disk. */
  #settled(): Promise<void> {
    if (this.#pipeline.batchesWaiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onSettled.push(resolve));
  }

  /** Carries out the pipeline's decisions, in their order (DurabilityDecisions). */
  #carryOut(decisions: DurabilityDecisions): void {
    if (decisions.storageFailed !== null) this.#storageFailed(decisions.storageFailed);
    for (const { id, changes } of decisions.appends) this.#append(id, changes);
    if (decisions.reading !== null) this.#hooks.reading(decisions.reading);
    for (const ready of decisions.release) {
      this.#savePeers(ready.peers);
      this.#hooks.release(ready);
    }
    if (decisions.compact) this.#compact();
    if (decisions.saveCursorsInMs !== null && !this.#stopped) this.#scheduleCursorSave(decisions.saveCursorsInMs);
    if (decisions.saveCursors !== null) this.#persistence.saveCursors(decisions.saveCursors);
    if (this.#pipeline.batchesWaiting === 0 && this.#onSettled.length > 0) for (const resolve of this.#onSettled.splice(0)) resolve();
  }

  #append(id: BatchId, changes: readonly PersistEffect[]): void {
    this.#persistence.append(changes).then(
      () => {
        this.#pipeline.appended(id);
        this.#carryOut(this.#pipeline.takeDecisions());
      },
      (error: Error) => {
        this.#pipeline.appendFailed(id, error.message);
        this.#carryOut(this.#pipeline.takeDecisions());
      },
    );
  }

  #scheduleCursorSave(delayMs: number): void {
    this.#cancelCursorSave?.();
    this.#cancelCursorSave = this.#persistence.scheduler.after(delayMs, () => {
      this.#cancelCursorSave = null;
      this.#pipeline.cursorSaveDue();
      this.#carryOut(this.#pipeline.takeDecisions());
    });
  }

  /** Records the peers a batch added or removed, in one node.json write (coalesced with the writes in flight). */
  #savePeers(changes: readonly (PeerAddedEffect | PeerRemovedEffect)[]): void {
    if (changes.length === 0) return;
    const added = changes.filter((change) => change.type === 'peer-added').map((change) => change.address);
    const removed = changes.filter((change) => change.type === 'peer-removed').map((change) => change.address);
    this.#persistence.updatePeers({ added, removed }).catch((error: Error) => this.#hooks.log('warn', `cannot save the peers in node.json yet (${error.message}); they are saved with its next write`, { event: 'peers-save-failed' }));
  }

  #compact(): void {
    this.#persistence
      .compactIfWorth(
        () => this.#core.stats().keys,
        () => this.#core.changes(),
      )
      .catch((error: Error) => this.#hooks.log('warn', `compaction failed, the log is kept as it is: ${error.message}`, { event: 'compaction-failed' }));
  }

  /** The disk failed (an append, or a background fsync): the core refuses writes until a retry succeeds. */
  #storageFailed(reason: string): void {
    this.#core.storageFailed(reason);
    if (this.#cancelRetry === null && !this.#stopped) {
      this.#hooks.log('warn', `${reason}; writes are refused until it works again, retrying every ${DISK_RETRY_INTERVAL_MS / 1000} s`, { event: 'storage-failed' });
      this.#scheduleRetry();
    }
    this.#hooks.wake();
  }

  /** Tries the disk every DISK_RETRY_INTERVAL_MS while it fails; a try still running when the next is due is not doubled. */
  #scheduleRetry(): void {
    this.#cancelRetry = this.#persistence.scheduler.after(DISK_RETRY_INTERVAL_MS, () => {
      this.#scheduleRetry();
      void this.#retryDisk();
    });
  }

  async #retryDisk(): Promise<void> {
    if (this.#retrying || this.#stopped) return;
    this.#retrying = true;
    try {
      if (await this.#persistence.retry()) this.#storageRecovered();
    } finally {
      this.#retrying = false;
    }
  }

  #storageRecovered(): void {
    if (this.#cancelRetry === null) return;
    this.#cancelRetry();
    this.#cancelRetry = null;
    this.#hooks.log('info', 'the data folder can be written again: every pending write is on disk', { event: 'storage-recovered' });
    this.#pipeline.storageRecovered();
    this.#core.storageRecovered();
    this.#hooks.wake();
  }
}
