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
 * (`append` resolves) only after it is synced under fsync "always".
 */
import { type FsyncPolicy } from '@bby/core';
import { type AppendFile, type FileSystem, nodeFileSystem, pathIn } from './file-system.js';
import { encodeRecord, LOG_MAGIC, readRecords, salvageRecords, SNAPSHOT_MAGIC, type StoredEntry } from './record.js';

/** The log is compacted once it is larger than this and than the live data. */
export const COMPACT_MIN_BYTES = 64 * 1024 * 1024;

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
}

/** The folder holds damaged data; the message names the file, the offset and the way out. */
export class CorruptionError extends Error {
  override name = 'CorruptionError';
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(
      `${file} is damaged at byte ${offset} (${reason}); refusing to start so that nothing is lost. ` +
        'Run bby-node again with --repair to keep every intact record (the damaged file is kept aside as *.damaged), ' +
        'or move the data folder away to resync from the peers',
    );
  }
}

/** A write or fsync failed: nothing after it can be promised. */
export class StorageFailure extends Error {
  override name = 'StorageFailure';
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

/** An open storage folder. Appends are group-committed: one write and one fsync per batch of concurrent appends. */
export class Storage {
  readonly #dir: string;
  readonly #fs: FileSystem;
  readonly #fsync: FsyncPolicy;
  readonly #compactMinBytes: number;
  #log: AppendFile;
  #generation: number;
  #logBytes: number;
  #snapshotBytes: number;
  #queue: { records: Buffer[]; waiters: { resolve: () => void; reject: (error: Error) => void }[] } = { records: [], waiters: [] };
  #switchWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  #flushing: Promise<void> | null = null;
  #compacting = false;
  #dirty = false;
  #failure: StorageFailure | null = null;
  #timer: NodeJS.Timeout | null = null;

  private constructor(dir: string, fs: FileSystem, fsync: FsyncPolicy, compactMinBytes: number, log: AppendFile, generation: number, logBytes: number, snapshotBytes: number) {
    this.#dir = dir;
    this.#fs = fs;
    this.#fsync = fsync;
    this.#compactMinBytes = compactMinBytes;
    this.#log = log;
    this.#generation = generation;
    this.#logBytes = logBytes;
    this.#snapshotBytes = snapshotBytes;
    if (fsync === 'everysec') {
      this.#timer = setInterval(() => void this.#syncIfDirty(), 1000);
      this.#timer.unref();
    }
  }

  /** Opens a folder, recovering what it holds; throws CorruptionError for damage other than a torn tail. */
  static async open(options: StorageOptions): Promise<{ storage: Storage; recovery: Recovery }> {
    const fs = options.fs ?? nodeFileSystem;
    const dir = options.dir;
    const notes: string[] = [];
    await fs.mkdir(dir);
    const names = await fs.list(dir);
    for (const name of names.filter((n) => n.endsWith('.tmp'))) await fs.remove(pathIn(dir, name));
    const generations = (pattern: RegExp) => names.flatMap((n) => (pattern.exec(n) ? [Number(pattern.exec(n)![1])] : [])).sort((a, b) => a - b);
    const snapshots = generations(SNAPSHOT_FILE);
    const logs = generations(LOG_FILE);
    const snapshotGeneration = snapshots.at(-1) ?? 0;
    const entries: StoredEntry[] = [];
    let damaged = false;
    let snapshotBytes = 0;

    const load = async (name: string, magic: Buffer, last: boolean): Promise<number> => {
      const path = pathIn(dir, name);
      const data = (await fs.read(path)) ?? new Uint8Array();
      const result = readRecords(data, magic);
      if (result.status === 'ok') {
        appendAll(entries, result.entries);
        return data.length;
      }
      if (result.status === 'torn' && last) {
        appendAll(entries, result.entries);
        const file = await fs.openAppend(path);
        await file.truncate(result.validBytes);
        await file.sync();
        await file.close();
        notes.push(`dropped a torn record of ${result.tornBytes} bytes at the end of ${name} (a crash during a write; that write was never acknowledged)`);
        return result.validBytes;
      }
      const offset = result.status === 'corrupt' ? result.offset : result.validBytes;
      const reason = result.status === 'corrupt' ? result.reason : 'the file ends inside a record, but a newer file exists';
      if (!options.repair) throw new CorruptionError(path, offset, reason);
      const salvaged = salvageRecords(data, magic);
      appendAll(entries, salvaged.entries);
      damaged = true;
      await fs.rename(path, `${path}.damaged`);
      const lost = salvaged.damaged.map((d) => `${d.bytes} bytes at ${d.offset}`).join(', ');
      notes.push(`repaired ${name}: kept ${salvaged.entries.length} intact records, skipped ${lost}; the original is kept as ${name}.damaged`);
      return 0;
    };

    if (snapshots.length > 0) snapshotBytes = await load(generationName('snapshot', snapshotGeneration), SNAPSHOT_MAGIC, false);
    const replayed = logs.filter((g) => g >= snapshotGeneration);
    let logBytes = 0;
    for (const generation of replayed) {
      logBytes = await load(generationName('log', generation), LOG_MAGIC, generation === replayed.at(-1));
    }
    // Leftovers of a compaction that crashed before its clean-up.
    for (const g of snapshots.filter((g) => g < snapshotGeneration)) await fs.remove(pathIn(dir, generationName('snapshot', g)));
    for (const g of logs.filter((g) => g < snapshotGeneration)) await fs.remove(pathIn(dir, generationName('log', g)));

    let generation = Math.max(snapshotGeneration, replayed.at(-1) ?? 0);
    let log: AppendFile;
    if (damaged) {
      // Rewrite everything that survived into a fresh snapshot and log.
      generation += 1;
      snapshotBytes = await writeSnapshot(fs, dir, generation, entries);
      log = await createLog(fs, dir, generation);
      logBytes = LOG_MAGIC.length;
      for (const name of (await fs.list(dir)).filter((n) => (LOG_FILE.test(n) || SNAPSHOT_FILE.test(n)) && !n.includes(String(generation).padStart(8, '0')))) {
        await fs.remove(pathIn(dir, name));
      }
      await fs.syncDir(dir);
    } else if (replayed.length === 0 || logBytes === 0) {
      log = await createLog(fs, dir, generation);
      logBytes = LOG_MAGIC.length;
    } else {
      log = await fs.openAppend(pathIn(dir, generationName('log', generation)));
    }
    const storage = new Storage(dir, fs, options.fsync ?? 'always', options.compactMinBytes ?? COMPACT_MIN_BYTES, log, generation, logBytes, snapshotBytes);
    return { storage, recovery: { entries, notes, repaired: damaged } };
  }

  /** Bytes in the current log file. */
  get logBytes(): number {
    return this.#logBytes;
  }

  /** Generation of the current log. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * Appends entries. Resolves once they are as durable as the fsync policy
   * promises; rejects with StorageFailure if a write or fsync failed, after
   * which every later append fails too.
   */
  append(entries: readonly StoredEntry[]): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      for (const entry of entries) this.#queue.records.push(encodeRecord(entry));
      this.#queue.waiters.push({ resolve, reject });
      this.#flushing ??= this.#flushLoop();
    });
  }

  /** True when the log has grown past the compaction threshold and past the live data (`liveEntries` is asked only then). */
  shouldCompact(liveEntries: () => number): boolean {
    // The cheap test first: this runs after every durable batch.
    if (this.#logBytes <= this.#compactMinBytes) return false;
    return this.#logBytes > Math.max(this.#snapshotBytes, liveEntries() * 32);
  }

  /**
   * Writes a snapshot of `entries` (the node's whole store, read now) and
   * starts a new log. Appends made while it runs go to the new log. Returns
   * false when a compaction is already running.
   */
  async compact(entries: Iterable<StoredEntry>): Promise<boolean> {
    if (this.#compacting) return false;
    this.#compacting = true;
    try {
      const snapshot = [...entries];
      const previousGeneration = this.#generation;
      // 1-2. Between two batches of appends: seal the log, move appends to a new one.
      await new Promise<void>((resolve, reject) => {
        this.#switchWaiters.push({ resolve, reject });
        this.#flushing ??= this.#flushLoop();
      });
      // 3. The snapshot of generation g holds everything of the logs before g.
      this.#snapshotBytes = await writeSnapshot(this.#fs, this.#dir, this.#generation, snapshot);
      // 4. Older files are now redundant.
      await this.#fs.remove(pathIn(this.#dir, generationName('log', previousGeneration)));
      await this.#fs.remove(pathIn(this.#dir, generationName('snapshot', previousGeneration)));
      await this.#fs.syncDir(this.#dir);
      return true;
    } finally {
      this.#compacting = false;
    }
  }

  /** Syncs what is pending and closes the log. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    while (this.#flushing) await this.#flushing;
    if (this.#failure === null) await this.#log.sync().catch(() => undefined);
    await this.#log.close().catch(() => undefined);
  }

  /** Writes queued appends batch by batch, and switches logs between batches when asked. */
  async #flushLoop(): Promise<void> {
    try {
      while (this.#queue.waiters.length > 0 || this.#switchWaiters.length > 0) {
        if (this.#switchWaiters.length > 0) {
          const waiters = this.#switchWaiters.splice(0);
          try {
            await this.#switchLog();
            for (const waiter of waiters) waiter.resolve();
          } catch (error) {
            // The old log may not be durable, or a new log may be half made: promise nothing more.
            this.#failure ??= new StorageFailure(`cannot start a new log in ${this.#dir}: ${(error as Error).message}`);
            for (const waiter of waiters) waiter.reject(error as Error);
          }
          continue;
        }
        const batch = this.#queue;
        this.#queue = { records: [], waiters: [] };
        try {
          if (this.#failure) throw this.#failure;
          const data = Buffer.concat(batch.records);
          await this.#log.append(data);
          this.#logBytes += data.length;
          if (this.#fsync === 'always') await this.#log.sync();
          else this.#dirty = true;
          for (const waiter of batch.waiters) waiter.resolve();
        } catch (error) {
          this.#failure ??= new StorageFailure(`cannot write to ${this.#dir}: ${(error as Error).message}`);
          for (const waiter of [...batch.waiters, ...this.#queue.waiters]) waiter.reject(this.#failure);
          this.#queue = { records: [], waiters: [] };
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #switchLog(): Promise<void> {
    await this.#log.sync();
    const generation = this.#generation + 1;
    const next = await createLog(this.#fs, this.#dir, generation);
    await this.#log.close();
    this.#log = next;
    this.#generation = generation;
    this.#logBytes = LOG_MAGIC.length;
    this.#dirty = false;
  }

  async #syncIfDirty(): Promise<void> {
    if (!this.#dirty || this.#failure) return;
    this.#dirty = false;
    try {
      await this.#log.sync();
    } catch (error) {
      this.#failure ??= new StorageFailure(`cannot fsync ${this.#dir}: ${(error as Error).message}`);
    }
  }
}

async function createLog(fs: FileSystem, dir: string, generation: number): Promise<AppendFile> {
  const path = pathIn(dir, generationName('log', generation));
  const file = await fs.openAppend(path);
  await file.truncate(0);
  await file.append(LOG_MAGIC);
  await file.sync();
  await fs.syncDir(dir);
  return file;
}

/** Writes snapshot-g.bby through a temporary file; returns its size. */
async function writeSnapshot(fs: FileSystem, dir: string, generation: number, entries: readonly StoredEntry[]): Promise<number> {
  const name = generationName('snapshot', generation);
  const temporary = pathIn(dir, `${name}.tmp`);
  const file = await fs.openAppend(temporary);
  await file.truncate(0);
  let size = 0;
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
  await file.close();
  await fs.rename(temporary, pathIn(dir, name));
  await fs.syncDir(dir);
  return size;
}

/** Appends `more` to `entries` one by one: a spread `push(...more)` overflows the stack past about 120,000 items. */
function appendAll<T>(entries: T[], more: readonly T[]): void {
  for (const item of more) entries.push(item);
}
