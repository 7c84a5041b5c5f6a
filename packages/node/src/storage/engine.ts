/**
 * The storage engine: an append-only log of entries plus snapshots, in one
 * folder. docs/storage.md is the prose version.
 *
 * Files, by generation g (8 digits):
 *   snapshot-g.bby  every entry the node held when log g was started
 *   log-g.bby       entries stored after that, in order
 *   node.json       the node's id and the peers added at run time
 *
 * Recovery loads the newest snapshot S and replays the logs of generation
 * ≥ S. Merging is idempotent and order-free (see @bby/core store.ts), so a
 * crash that leaves an extra log or an old snapshot behind can only cost
 * time, never correctness.
 *
 * Invariants: a snapshot's name appears only after its bytes are synced; a log
 * is synced before a newer log takes the appends; an append is acknowledged
 * (`append` resolves) only after it is synced under fsync "always". After a
 * failed fsync, no byte of the log written since its last good fsync is
 * trusted (Linux may have marked it clean without writing it): a retry cuts
 * the log back to that size and writes those bytes again.
 */
import { BbyError, COMPACT_MIN_BYTES, compactionDue, type FsyncPolicy } from '@bby/core';
import { describeDiskError, isDiskError } from './disk-error.js';
import { type AppendFile, type FileSystem, nodeFileSystem, pathIn } from './file-system.js';
import { realScheduler, type Scheduler } from '../scheduler.js';
import { encodeRecord, LOG_MAGIC, readRecords, salvageRecords, SNAPSHOT_MAGIC, type StoredEntry } from './record.js';

/** Options of `Storage.open`. */
export interface StorageOptions {
  readonly dir: string;
  readonly fsync?: FsyncPolicy;
  readonly fs?: FileSystem;
  /** Salvage damaged files instead of refusing to start. */
  readonly repair?: boolean;
  /** Compaction threshold, in bytes of log; default COMPACT_MIN_BYTES. */
  readonly compactMinBytes?: number;
  readonly log?: (level: 'info' | 'warn', message: string) => void;
  /** Runs the background fsync of "everysec"; `realScheduler` by default (a simulator passes its own clock's). */
  readonly scheduler?: Scheduler;
}

/** How often "everysec" syncs what was appended, in milliseconds. */
export const BACKGROUND_SYNC_INTERVAL_MS = 1_000;

/** The folder holds damaged data; the message names the file, the offset and the way out. */
export class CorruptionError extends BbyError {
  override name = 'CorruptionError';
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(
      'DATA_DAMAGED',
      `${file} is damaged at byte ${offset} (${reason}); refusing to start so that nothing is lost. ` +
        'Run bby-node again with --repair to keep every intact record (the damaged file is kept aside as *.damaged), ' +
        'or move the data folder away to resync from the peers',
    );
  }
}

/**
 * A write, fsync or truncate in the data folder failed: the storage is in its
 * failed state (see `Storage.append` and `Storage.retry`), or a compaction or
 * a start-up step failed. The message is one line: what could not be done,
 * the folder, the cause in words and the fix.
 */
export class StorageFailure extends Error {
  override name = 'StorageFailure';
  /** The errno code of the cause (ENOSPC, EIO, EDQUOT, EROFS, EMFILE, ...), or EUNKNOWN: stable, for programs. */
  readonly code: string;
  /** The cause in words, e.g. "no space left on device". */
  readonly words: string;
  /** What to do about it. */
  readonly fix: string;

  constructor(
    /** The data folder. */
    readonly dir: string,
    /** What could not be done, as in "cannot <doing> in the data folder", e.g. "write to log-00000003.bby". */
    readonly doing: string,
    cause: unknown,
  ) {
    const problem = describeDiskError(cause);
    super(`cannot ${doing} in the data folder ${dir}: ${problem.words} (${problem.code}); ${problem.fix}`, { cause });
    this.code = problem.code;
    this.words = problem.words;
    this.fix = problem.fix;
  }
}

const LOG_FILE = /^log-(\d{8})\.bby$/;
const SNAPSHOT_FILE = /^snapshot-(\d{8})\.bby$/;
const generationName = (kind: 'log' | 'snapshot', generation: number) => `${kind}-${String(generation).padStart(8, '0')}.bby`;

/** What recovery found. */
export interface Recovery {
  readonly entries: StoredEntry[];
  /** One line per thing recovery had to do (a torn tail dropped, a repair). */
  readonly notes: string[];
  /** True when damaged files were salvaged: some records may be gone. */
  readonly repaired: boolean;
}

/** Bytes written per call when a retry writes the pending records: no second copy of a large backlog in memory. */
const RETRY_CHUNK_BYTES = 4 * 1024 * 1024;

type Waiter<T> = { resolve: (value: T) => void; reject: (error: Error) => void };

/** Appends waiting to be written together: one write and one fsync for all. */
interface Batch {
  records: Buffer[];
  waiters: Waiter<void>[];
}

/**
 * An open storage folder. Appends are group-committed: one write and one
 * fsync per batch of concurrent appends.
 *
 * Failed state: when a write or fsync of the log fails (ENOSPC, EIO, ...), the
 * storage keeps every record it could not make durable, in order, in a
 * pending list, and `append` rejects at once with the StorageFailure, keeping
 * the new records after them. `retry()` cuts the log back to its last good
 * fsync (a whole record; under "everysec" and "no" it first reads back the
 * records written since, to write them again), writes the pending records
 * and fsyncs; once it succeeds, appends are
 * accepted again. So the log never holds a torn record before a whole one,
 * and records reach it in the order they were appended.
 *
 * One writer: batches, log switches and retries run one at a time in
 * #flushLoop; only the fsync of "everysec" runs beside a batch.
 */
export class Storage {
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #fsync: FsyncPolicy;
  readonly #compactMinBytes: number;
  #log: AppendFile;
  #generation: number;
  /** End of the last record known whole in the current log: written, and synced under "always". */
  #logBytes: number;
  /** Size of the current log at its last good fsync (≤ #logBytes; equal under "always" between batches). A retry cuts the log back to it. */
  #durableBytes: number;
  /** The records that were past #durableBytes when a retry cut them off (read back from the page cache); the retry that succeeds writes them first. */
  #unsyncedTail: Buffer = Buffer.alloc(0);
  #snapshotBytes: number;
  #queue: Batch = { records: [], waiters: [] };
  #switchWaiters: Waiter<boolean>[] = [];
  #retryWaiters: Waiter<boolean>[] = [];
  #flushing: Promise<void> | null = null;
  #compacting = false;
  #dirty = false;
  #backgroundSync: Promise<void> | null = null;
  #failure: StorageFailure | null = null;
  /** Records refused while failed (and the batch that failed), oldest first; written by the next successful retry. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** A half-made log left by a failed switch that could not be removed: it must go before the current log grows again. */
  #strayLog: string | null = null;
  readonly #listeners = new Set<(failure: StorageFailure | null) => void>();
  readonly #scheduler: Scheduler;
  /** Cancels the next background fsync ("everysec"), while one is scheduled. */
  #cancelBackgroundSync: (() => void) | null = null;
  #closing: Promise<string[]> | null = null;

  private constructor(dir: string, fs: FileSystem, fsync: FsyncPolicy, compactMinBytes: number, log: AppendFile, generation: number, logBytes: number, snapshotBytes: number, scheduler: Scheduler) {
    this.#dir = dir;
    this.#fs = fs;
    this.#fsync = fsync;
    this.#compactMinBytes = compactMinBytes;
    this.#log = log;
    this.#generation = generation;
    this.#logBytes = logBytes;
    this.#durableBytes = logBytes;
    this.#snapshotBytes = snapshotBytes;
    this.#scheduler = scheduler;
    if (fsync === 'everysec') this.#scheduleBackgroundSync();
  }

  /** Syncs in the background every BACKGROUND_SYNC_INTERVAL_MS, until close. */
  #scheduleBackgroundSync(): void {
    this.#cancelBackgroundSync = this.#scheduler.after(BACKGROUND_SYNC_INTERVAL_MS, () => {
      if (this.#closing !== null) return;
      this.#scheduleBackgroundSync();
      this.#syncInBackground();
    });
  }

  /**
   * Opens a folder, recovering what it holds. Throws CorruptionError for
   * damage other than a torn tail, and StorageFailure (naming the step, the
   * cause in words and the fix) when a file operation fails.
   */
  static async open(options: StorageOptions): Promise<{ storage: Storage; recovery: Recovery }> {
    const fs = options.fs ?? nodeFileSystem;
    const dir = options.dir;
    let doing = 'create the folder';
    try {
      return await Storage.#open(options, fs, (step) => (doing = step));
    } catch (error) {
      if (isDiskError(error)) throw new StorageFailure(dir, doing, error);
      throw error;
    }
  }

  static async #open(options: StorageOptions, fs: FileSystem, step: (doing: string) => void): Promise<{ storage: Storage; recovery: Recovery }> {
    const dir = options.dir;
    const at: Opening = { fs, dir, repair: options.repair ?? false, step };
    const { snapshots, logs } = await scanFolder(at);
    const snapshotGeneration = snapshots.at(-1) ?? 0;
    const replayed = logs.filter((g) => g >= snapshotGeneration);
    const recovered: Recovered = { entries: [], notes: [], repaired: false };
    let snapshotBytes = snapshots.length > 0 ? await loadFile(at, generationName('snapshot', snapshotGeneration), SNAPSHOT_MAGIC, false, recovered) : 0;
    let logBytes = 0;
    for (const generation of replayed) {
      logBytes = await loadFile(at, generationName('log', generation), LOG_MAGIC, generation === replayed.at(-1), recovered);
    }
    await removeInterruptedCompaction(at, snapshotGeneration, snapshots, logs);

    let generation = Math.max(snapshotGeneration, replayed.at(-1) ?? 0);
    let log: AppendFile;
    if (recovered.repaired) {
      generation += 1;
      ({ log, snapshotBytes } = await rewriteRepaired(at, generation, recovered.entries));
      logBytes = LOG_MAGIC.length;
    } else if (replayed.length === 0 || logBytes === 0) {
      step(`create ${generationName('log', generation)}`);
      log = await createLog(fs, dir, generation);
      logBytes = LOG_MAGIC.length;
    } else {
      step(`open ${generationName('log', generation)}`);
      log = await fs.openAppend(pathIn(dir, generationName('log', generation)));
      // A start that failed in createLog may have left this log's bytes or its name not durable: make them so before any append is acknowledged.
      try {
        await log.sync();
        await fs.syncDir(dir);
      } catch (error) {
        await log.close().catch(() => undefined);
        throw error;
      }
    }
    const storage = new Storage(dir, fs, options.fsync ?? 'always', options.compactMinBytes ?? COMPACT_MIN_BYTES, log, generation, logBytes, snapshotBytes, options.scheduler ?? realScheduler);
    return { storage, recovery: recovered };
  }

  /** Bytes in the current log file. */
  get logBytes(): number {
    return this.#logBytes;
  }

  /** Generation of the current log. */
  get generation(): number {
    return this.#generation;
  }

  /** Why the storage refuses appends, or null when it accepts them. */
  get failure(): StorageFailure | null {
    return this.#failure;
  }

  /** Records kept in memory until a retry writes them (refused appends, and the batch that failed). */
  get pendingRecords(): number {
    return this.#pending.length;
  }

  /** Bytes of the pending records, as they will take in the log. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Calls `listener` when the storage enters the failed state (with the
   * failure, also when no append saw it: a failed fsync of "everysec"), when
   * a failed retry finds another cause (with the new failure), and when a
   * retry succeeds (with null). Returns a function that removes the listener.
   */
  onStateChange(listener: (failure: StorageFailure | null) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Appends entries. Resolves once they are as durable as the fsync policy
   * promises. Rejects with StorageFailure when their write or fsync failed,
   * and at once while the storage is failed; either way the records are kept,
   * in order, and written by the next successful `retry()` (before any record
   * appended after them). A rejected append is therefore not acknowledged,
   * but it may still reach the disk.
   */
  append(entries: readonly StoredEntry[]): Promise<void> {
    if (this.#failure) {
      for (const entry of entries) this.#keep(encodeRecord(entry));
      return Promise.reject(this.#failure);
    }
    return new Promise((resolve, reject) => {
      for (const entry of entries) this.#queue.records.push(encodeRecord(entry));
      this.#queue.waiters.push({ resolve, reject });
      this.#kick();
    });
  }

  /**
   * Tries the disk again while the storage is failed: cuts the log back to
   * its last good fsync (truncating needs no free space), writes again the
   * records written since (read back), then every pending record in order,
   * and fsyncs. Resolves to true when the storage
   * accepts appends again (at once if it was not failed), false when the disk
   * still fails (the cause may have changed: see `failure`). Never rejects.
   * Records refused while the retry ran are written right after it, still
   * before anything newer.
   */
  retry(): Promise<boolean> {
    if (this.#failure === null) return Promise.resolve(true);
    if (this.#closing) return Promise.resolve(false);
    return this.#retryInLoop();
  }

  #retryInLoop(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#retryWaiters.push({ resolve, reject });
      this.#kick();
    });
  }

  /** Whether the log is worth compacting now (the core's `compactionDue`); never while failed. */
  shouldCompact(liveEntries: () => number): boolean {
    if (this.#failure) return false;
    return compactionDue({ logBytes: this.#logBytes, snapshotBytes: this.#snapshotBytes, minBytes: this.#compactMinBytes }, liveEntries);
  }

  /**
   * Writes a snapshot of `entries` (the node's whole store, read now) and
   * starts a new log. Appends made while it runs go to the new log. Returns
   * false when a compaction is already running or the storage is failed.
   * A compaction never makes things worse: if it fails, the files it did not
   * finish are removed (their space freed) and the files before it stay as
   * they were; it rejects with StorageFailure (for a disk error).
   */
  async compact(entries: Iterable<StoredEntry>): Promise<boolean> {
    if (this.#compacting || this.#failure) return false;
    this.#compacting = true;
    try {
      const snapshot = [...entries];
      // 1-2. Between two batches of appends: seal the log, move appends to a new one.
      const switched = await new Promise<boolean>((resolve, reject) => {
        this.#switchWaiters.push({ resolve, reject });
        this.#kick();
      });
      if (!switched) return false;
      const generation = this.#generation;
      // 3. The snapshot of generation g holds everything of the logs before g.
      try {
        this.#snapshotBytes = await writeSnapshot(this.#fs, this.#dir, generation, snapshot);
      } catch (error) {
        throw this.#asFailure(`write ${generationName('snapshot', generation)}`, error);
      }
      // 4. Older files are now redundant (also those left by a compaction that failed).
      try {
        for (const name of await this.#fs.list(this.#dir)) {
          const older = LOG_FILE.exec(name) ?? SNAPSHOT_FILE.exec(name);
          if (older && Number(older[1]) < generation) await this.#fs.remove(pathIn(this.#dir, name));
        }
        await this.#fs.syncDir(this.#dir);
      } catch (error) {
        throw this.#asFailure('remove the files before the new snapshot', error);
      }
      return true;
    } finally {
      this.#compacting = false;
    }
  }

  /**
   * Writes what it can and closes the log; never rejects. If the storage is
   * failed, it tries once more to write the pending records. Resolves to one
   * line per problem (empty when all went well), e.g. pending records that
   * are lost because the disk still fails.
   */
  close(): Promise<string[]> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<string[]> {
    this.#cancelBackgroundSync?.();
    this.#cancelBackgroundSync = null;
    const problems: string[] = [];
    while (this.#flushing || this.#backgroundSync) await (this.#flushing ?? this.#backgroundSync);
    if (this.#failure) {
      await this.#retryInLoop();
      while (this.#flushing) await this.#flushing;
    }
    if (this.#failure) {
      // Leave the log at its last good fsync: the next start then finds no torn tail to wonder about, and reads
      // no bytes from the page cache that a failed fsync marked clean without writing them.
      await this.#log.truncate(this.#durableBytes).catch(() => undefined);
      problems.push(`${this.#pending.length} refused ${this.#pending.length === 1 ? 'record' : 'records'} (${this.#pendingBytes} bytes) could not be written and are lost: ${this.#failure.message}`);
      const unsynced = this.#unsyncedTail.length + this.#logBytes - this.#durableBytes;
      if (unsynced > 0) problems.push(`${unsynced} bytes of records acknowledged under fsync "${this.#fsync}" since the last good fsync could not be written again and are lost from this disk: ${this.#failure.message}`);
    } else {
      try {
        await this.#log.sync();
      } catch (error) {
        problems.push(new StorageFailure(this.#dir, `write to ${this.#logName()} (fsync at close)`, error).message);
      }
    }
    await this.#log.close().catch((error: unknown) => problems.push(new StorageFailure(this.#dir, `close ${this.#logName()}`, error).message));
    return problems;
  }

  #logName(): string {
    return generationName('log', this.#generation);
  }

  #kick(): void {
    this.#flushing ??= this.#flushLoop();
  }

  #keep(record: Buffer): void {
    this.#pending.push(record);
    this.#pendingBytes += record.length;
  }

  /** Disk errors become a StorageFailure; anything else (a bug, a simulated crash) goes on as it is. */
  #asFailure(doing: string, error: unknown): unknown {
    return isDiskError(error) && !(error instanceof StorageFailure) ? new StorageFailure(this.#dir, doing, error) : error;
  }

  /** Enters the failed state (or records a new cause): every queued append is refused and kept. */
  #fail(failure: StorageFailure, failedBatch?: Batch): void {
    const entering = this.#failure === null;
    this.#failure ??= failure;
    // The batch that failed was appended before anything queued or pending now.
    const refused = [...(failedBatch?.records ?? []), ...this.#queue.records];
    const waiters = [...(failedBatch?.waiters ?? []), ...this.#queue.waiters];
    this.#queue = { records: [], waiters: [] };
    const bytes = refused.reduce((sum, record) => sum + record.length, 0);
    this.#pending = refused.concat(this.#pending);
    this.#pendingBytes += bytes;
    for (const waiter of waiters) waiter.reject(this.#failure);
    if (entering) this.#tell(this.#failure);
  }

  #tell(failure: StorageFailure | null): void {
    for (const listener of this.#listeners) {
      try {
        listener(failure);
      } catch {
        // A listener's bug must not break the storage.
      }
    }
  }

  /** Runs batches, log switches and retries one at a time, switches and retries first. */
  async #flushLoop(): Promise<void> {
    try {
      for (;;) {
        if (this.#switchWaiters.length > 0) await this.#runSwitch(this.#switchWaiters.splice(0));
        else if (this.#retryWaiters.length > 0) {
          const waiters = this.#retryWaiters.splice(0);
          const recovered = await this.#retryNow();
          for (const waiter of waiters) waiter.resolve(recovered);
        } else if (this.#queue.records.length > 0 || this.#queue.waiters.length > 0) await this.#writeBatch();
        else break;
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #writeBatch(): Promise<void> {
    const batch = this.#queue;
    this.#queue = { records: [], waiters: [] };
    if (this.#failure) {
      this.#fail(this.#failure, batch);
      return;
    }
    const data = Buffer.concat(batch.records);
    try {
      await this.#log.append(data);
    } catch (error) {
      this.#fail(new StorageFailure(this.#dir, `write to ${this.#logName()}`, error), batch);
      return;
    }
    if (this.#fsync === 'always') {
      try {
        await this.#log.sync();
      } catch (error) {
        // The bytes were written but may not be on disk (Linux can drop pages it failed to write back):
        // the batch is not counted as whole, so a retry cuts it off and writes it again.
        this.#fail(new StorageFailure(this.#dir, `write to ${this.#logName()} (fsync)`, error), batch);
        return;
      }
    } else {
      this.#dirty = true;
    }
    this.#logBytes += data.length;
    if (this.#fsync === 'always') this.#durableBytes = this.#logBytes;
    for (const waiter of batch.waiters) waiter.resolve();
  }

  async #runSwitch(waiters: Waiter<boolean>[]): Promise<void> {
    if (this.#failure) {
      for (const waiter of waiters) waiter.resolve(false);
      return;
    }
    try {
      await this.#switchLog();
      for (const waiter of waiters) waiter.resolve(true);
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error as Error);
    }
  }

  async #switchLog(): Promise<void> {
    await this.#backgroundSync;
    try {
      await this.#log.sync();
    } catch (error) {
      // The old log's last records may not be durable: promise nothing more until a retry.
      const failure = new StorageFailure(this.#dir, `write to ${this.#logName()} (fsync)`, error);
      this.#fail(failure);
      throw isDiskError(error) ? failure : error;
    }
    const generation = this.#generation + 1;
    const name = generationName('log', generation);
    let next: AppendFile;
    try {
      next = await createLog(this.#fs, this.#dir, generation);
    } catch (error) {
      // Appends go on in the old log. A half-made newer log must not stay beside it: a torn tail in a
      // log that is not the newest is corruption at the next start.
      try {
        await this.#fs.remove(pathIn(this.#dir, name));
        await this.#fs.syncDir(this.#dir);
      } catch (cleanup) {
        this.#strayLog = pathIn(this.#dir, name);
        this.#fail(new StorageFailure(this.#dir, `remove ${name}, half made`, cleanup));
      }
      throw this.#asFailure(`start ${name}`, error);
    }
    await this.#log.close().catch(() => undefined);
    this.#log = next;
    this.#generation = generation;
    this.#logBytes = LOG_MAGIC.length;
    this.#durableBytes = LOG_MAGIC.length;
    this.#dirty = false;
  }

  /** See `retry()`; runs inside the flush loop. */
  async #retryNow(): Promise<boolean> {
    if (this.#failure === null) return true;
    await this.#backgroundSync;
    let doing = `remove ${this.#strayLog ?? ''}`;
    try {
      if (this.#strayLog !== null) {
        await this.#fs.remove(this.#strayLog);
        await this.#fs.syncDir(this.#dir);
        this.#strayLog = null;
      }
      if (this.#durableBytes < this.#logBytes) {
        // Records written since the last good fsync ("everysec", "no") may be marked clean without being written: read them
        // back from the page cache, kept until a retry has written them again after the cut.
        doing = `read back ${this.#logName()}`;
        this.#unsyncedTail = Buffer.concat([this.#unsyncedTail, await this.#readBackUnsynced()]);
        this.#logBytes = this.#durableBytes;
      }
      // A failed write may have left part of a record at the end: cut it off, so no torn record ends up mid-log.
      doing = `cut ${this.#logName()} back to its last whole record`;
      await this.#log.truncate(this.#durableBytes);
      doing = `write to ${this.#logName()}`;
      const tail = this.#unsyncedTail;
      if (tail.length > 0) await this.#log.append(tail);
      let written = 0;
      let bytes = 0;
      while (written < this.#pending.length) {
        const chunk: Buffer[] = [];
        let chunkBytes = 0;
        while (written + chunk.length < this.#pending.length && (chunk.length === 0 || chunkBytes < RETRY_CHUNK_BYTES)) {
          const record = this.#pending[written + chunk.length]!;
          chunk.push(record);
          chunkBytes += record.length;
        }
        await this.#log.append(Buffer.concat(chunk));
        written += chunk.length;
        bytes += chunkBytes;
      }
      doing = `write to ${this.#logName()} (fsync)`;
      await this.#log.sync();
      this.#logBytes += tail.length + bytes;
      this.#durableBytes = this.#logBytes;
      this.#unsyncedTail = Buffer.alloc(0);
      this.#pending.splice(0, written);
      this.#pendingBytes -= bytes;
    } catch (error) {
      const failure = new StorageFailure(this.#dir, doing, error);
      if (failure.code !== this.#failure.code) {
        this.#failure = failure;
        this.#tell(failure);
      }
      return false;
    }
    this.#failure = null;
    this.#dirty = false;
    // Refused while this retry ran: already answered, still before anything newer.
    this.#queue = { records: this.#pending.concat(this.#queue.records), waiters: this.#queue.waiters };
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#tell(null);
    return true;
  }

  /**
   * The whole records of the current log past its last good fsync, as the page cache holds them. If a page was dropped
   * meanwhile (it then reads as zeros or old bytes), the records from the first one that does not read whole on are gone
   * from this node's disk, as a machine crash would have taken them ("everysec" and "no" allow it).
   */
  async #readBackUnsynced(): Promise<Buffer> {
    const data = (await this.#fs.read(pathIn(this.#dir, this.#logName()))) ?? new Uint8Array();
    const tail = Buffer.concat([LOG_MAGIC, Buffer.from(data.buffer, data.byteOffset, data.byteLength).subarray(this.#durableBytes, this.#logBytes)]);
    const read = readRecords(tail, LOG_MAGIC);
    const whole = read.status === 'ok' ? tail.length : read.status === 'torn' ? read.validBytes : read.offset;
    return tail.subarray(LOG_MAGIC.length, whole);
  }

  /** The fsync of "everysec": beside the batches, but never beside a retry or a close. */
  #syncInBackground(): void {
    if (!this.#dirty || this.#failure || this.#backgroundSync || this.#closing) return;
    this.#dirty = false;
    const log = this.#log;
    const covered = this.#logBytes;
    this.#backgroundSync = log
      .sync()
      .then(() => {
        if (log === this.#log && this.#failure === null) this.#durableBytes = Math.max(this.#durableBytes, covered);
      })
      .catch((error: unknown) => {
        // Appends acknowledged since the last fsync may not be on disk: refuse more until a retry syncs.
        if (log === this.#log) this.#fail(new StorageFailure(this.#dir, `write to ${this.#logName()} (fsync)`, error));
      })
      .finally(() => {
        this.#backgroundSync = null;
      });
  }
}

/**
 * The start-up note for a last log that ends inside a record. Recovery cannot
 * tell how the tail came to be: a crash during a write leaves one (and that
 * write was never acknowledged), but so does a file cut short by a copy or a
 * truncation, which may have taken acknowledged records with it. The note
 * begins as it always has ("dropped a torn record of N bytes at the end of
 * FILE"): scripts and tests look for it.
 */
export function tornTailNote(name: string, tornBytes: number): string {
  return (
    `dropped a torn record of ${tornBytes} bytes at the end of ${name}: the last ${tornBytes} bytes of ${name} could not be read as a whole record. ` +
    'A crash during a write leaves such a tail, and that write was never acknowledged; ' +
    'but if the file was cut short instead (copied while the node ran, or truncated), acknowledged writes may be among them, and only the peers can send them back'
  );
}

/** What each step of `Storage.open` works with. */
interface Opening {
  readonly fs: FileSystem;
  readonly dir: string;
  /** Salvage damaged files instead of refusing to start. */
  readonly repair: boolean;
  /** Names the step about to run, for the StorageFailure should it fail. */
  readonly step: (doing: string) => void;
}

/** The Recovery being made, as the files are read. */
type Recovered = { -readonly [K in keyof Recovery]: Recovery[K] };

/** Creates the folder if need be, removes temporary files, and lists the generations of its snapshots and logs, oldest first. */
async function scanFolder(at: Opening): Promise<{ snapshots: number[]; logs: number[] }> {
  await at.fs.mkdir(at.dir);
  at.step('list the files');
  const names = await at.fs.list(at.dir);
  at.step('remove temporary files');
  for (const name of names.filter((n) => n.endsWith('.tmp'))) await at.fs.remove(pathIn(at.dir, name));
  const generations = (pattern: RegExp) => names.flatMap((n) => (pattern.exec(n) ? [Number(pattern.exec(n)![1])] : [])).sort((a, b) => a - b);
  return { snapshots: generations(SNAPSHOT_FILE), logs: generations(LOG_FILE) };
}

/**
 * Reads the snapshot or log `name` into `recovered`; returns the bytes of it
 * that stay (0 when it was set aside). A torn tail of the newest log (`newest`)
 * is cut off; any other damage throws CorruptionError, or is salvaged under
 * `repair`.
 */
async function loadFile(at: Opening, name: string, magic: Buffer, newest: boolean, recovered: Recovered): Promise<number> {
  const path = pathIn(at.dir, name);
  at.step(`read ${name}`);
  const data = (await at.fs.read(path)) ?? new Uint8Array();
  const result = readRecords(data, magic);
  if (result.status === 'ok') {
    appendAll(recovered.entries, result.entries);
    return data.length;
  }
  if (result.status === 'torn' && newest) {
    appendAll(recovered.entries, result.entries);
    await cutTornTail(at, name, result.validBytes);
    recovered.notes.push(tornTailNote(name, result.tornBytes));
    return result.validBytes;
  }
  const offset = result.status === 'corrupt' ? result.offset : result.validBytes;
  const reason = result.status === 'corrupt' ? result.reason : 'the file ends inside a record, but a newer file exists';
  if (!at.repair) throw new CorruptionError(path, offset, reason);
  await salvageFile(at, name, data, magic, recovered);
  return 0;
}

/** Cuts the newest log back to its last whole record, and syncs it. */
async function cutTornTail(at: Opening, name: string, validBytes: number): Promise<void> {
  at.step(`cut the unreadable tail of ${name}`);
  const file = await at.fs.openAppend(pathIn(at.dir, name));
  try {
    await file.truncate(validBytes);
    await file.sync();
  } finally {
    await file.close().catch(() => undefined);
  }
}

/** Keeps every intact record of a damaged file in `recovered` and sets the file aside as *.damaged. */
async function salvageFile(at: Opening, name: string, data: Uint8Array, magic: Buffer, recovered: Recovered): Promise<void> {
  const path = pathIn(at.dir, name);
  const salvaged = salvageRecords(data, magic);
  appendAll(recovered.entries, salvaged.entries);
  recovered.repaired = true;
  at.step(`set ${name} aside`);
  await at.fs.rename(path, `${path}.damaged`);
  const lost = salvaged.damaged.map((d) => `${d.bytes} bytes at ${d.offset}`).join(', ');
  recovered.notes.push(`repaired ${name}: kept ${salvaged.entries.length} intact records, skipped ${lost}; the original is kept as ${name}.damaged`);
}

/** Removes the snapshots and logs older than the newest snapshot: leftovers of a compaction that crashed before its clean-up. */
async function removeInterruptedCompaction(at: Opening, snapshotGeneration: number, snapshots: readonly number[], logs: readonly number[]): Promise<void> {
  at.step('remove the files of an interrupted compaction');
  for (const g of snapshots.filter((g) => g < snapshotGeneration)) await at.fs.remove(pathIn(at.dir, generationName('snapshot', g)));
  for (const g of logs.filter((g) => g < snapshotGeneration)) await at.fs.remove(pathIn(at.dir, generationName('log', g)));
}

/** After a repair: rewrites everything that survived into a fresh snapshot and log of `generation`, then removes every other snapshot and log. */
async function rewriteRepaired(at: Opening, generation: number, entries: readonly StoredEntry[]): Promise<{ log: AppendFile; snapshotBytes: number }> {
  at.step(`write ${generationName('snapshot', generation)} (repair)`);
  const snapshotBytes = await writeSnapshot(at.fs, at.dir, generation, entries);
  at.step(`create ${generationName('log', generation)}`);
  const log = await createLog(at.fs, at.dir, generation);
  at.step('remove the repaired files');
  try {
    for (const name of (await at.fs.list(at.dir)).filter((n) => (LOG_FILE.test(n) || SNAPSHOT_FILE.test(n)) && !n.includes(String(generation).padStart(8, '0')))) {
      await at.fs.remove(pathIn(at.dir, name));
    }
    await at.fs.syncDir(at.dir);
  } catch (error) {
    await log.close().catch(() => undefined);
    throw error;
  }
  return { log, snapshotBytes };
}

async function createLog(fs: FileSystem, dir: string, generation: number): Promise<AppendFile> {
  const path = pathIn(dir, generationName('log', generation));
  const file = await fs.openAppend(path);
  try {
    await file.truncate(0);
    await file.append(LOG_MAGIC);
    await file.sync();
    await fs.syncDir(dir);
    return file;
  } catch (error) {
    // Nothing of this log is durable: cut it back to empty. After a failed fsync Linux may keep its bytes in the page
    // cache, marked clean but never written, and a later start would read them as a whole log and append after them.
    await file.truncate(0).catch(() => undefined);
    await file.close().catch(() => undefined);
    throw error;
  }
}

/** Writes snapshot-g.bby through a temporary file; returns its size. On failure the temporary file is removed (its space freed). */
async function writeSnapshot(fs: FileSystem, dir: string, generation: number, entries: readonly StoredEntry[]): Promise<number> {
  const name = generationName('snapshot', generation);
  const temporary = pathIn(dir, `${name}.tmp`);
  const file = await fs.openAppend(temporary);
  let size = 0;
  try {
    await file.truncate(0);
    let chunk: Buffer[] = [SNAPSHOT_MAGIC];
    let chunkBytes = SNAPSHOT_MAGIC.length;
    for (const entry of entries) {
      const record = encodeRecord(entry);
      chunk.push(record);
      chunkBytes += record.length;
      if (chunkBytes >= 1024 * 1024) {
        await file.append(Buffer.concat(chunk));
        size += chunkBytes;
        chunk = [];
        chunkBytes = 0;
      }
    }
    await file.append(Buffer.concat(chunk));
    size += chunkBytes;
    await file.sync();
  } catch (error) {
    await file.close().catch(() => undefined);
    await fs.remove(temporary).catch(() => undefined);
    throw error;
  }
  await file.close();
  await fs.rename(temporary, pathIn(dir, name));
  await fs.syncDir(dir);
  return size;
}

/** Appends `more` to `entries` one by one: a spread `push(...more)` overflows the stack past about 120,000 items. */
function appendAll<T>(entries: T[], more: readonly T[]): void {
  for (const item of more) entries.push(item);
}
