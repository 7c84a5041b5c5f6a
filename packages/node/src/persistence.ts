/**
 * What a node keeps in its dataDir, behind one object: the lock, node.json
 * (id, added peers, change-feed epoch, cursors) and the storage engine.
 * Without a dataDir every method is a no-op and the node keeps keys in memory
 * only. When to append, save cursors or compact is not decided here but by
 * the core's durability pipeline, which disk-pipeline.ts carries out on this
 * object.
 *
 * At start the epoch rule (core's `epochRule`, durability.ts) decides whether
 * the recovered change-feed epoch and cursors are kept.
 *
 * Disk trouble: the storage has a failed state (see storage/engine.ts), which
 * this object passes on (`failure`, `onStorageStateChange`, `retry`). A
 * failed node.json write keeps the change in memory and is tried again; no
 * failure ever makes `close()` throw or keep the LOCK.
 */
import { dirname, resolve } from 'node:path';
import { type Change, type Cursor, epochRule, type FsyncPolicy, type NodeConfig } from '@bby/core';
import { nanoid } from 'nanoid';
import { describeDiskError, isDiskError } from './storage/disk-error.js';
import { fileInPath, unusableDataDir } from './storage/data-dir-check.js';
import { CorruptionError, type Recovery, Storage, StorageFailure } from './storage/engine.js';
import { type FileSystem, nodeFileSystem, pathIn } from './storage/file-system.js';
import { LOCK_FILE, lockDataDir, LockedError } from './storage/lock.js';
import { META_FILE, readMeta, writeMeta, type NodeMeta } from './storage/meta.js';
import { realScheduler, type Scheduler } from './scheduler.js';
import { type StartCode } from './start-error.js';

/**
 * Why the data folder cannot be used, in one line: what could not be done,
 * the folder, the config, the cause in words and the fix.
 */
export class DataDirError extends Error {
  override name = 'DataDirError';
  /** The errno code when a file operation failed (ENOSPC, EACCES, EROFS, ...); undefined for other reasons (a lock held, damage, a wrong id). */
  readonly code: string | undefined;
  /** The registry code (core errors.ts) a start that fails with it carries: DATA_DIR_LOCKED, DATA_DAMAGED, or START_FAILED for the rest. */
  readonly startCode: StartCode;

  constructor(message: string, options: { code?: string | undefined; cause?: unknown; startCode?: StartCode } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.startCode = options.startCode ?? 'START_FAILED';
  }
}

/** Characters of a node id or epoch made at start (nanoid's 64-letter alphabet: 72 random bits). */
const ID_LENGTH = 12;

/** How long after a failed node.json write the next attempt is made, in milliseconds (a full disk is not freed in less). */
export const META_RETRY_INTERVAL_MS = 5_000;

/** What a node starts from. */
export interface Recovered {
  /** The node's id: from the config, else from node.json, else new. */
  readonly id: string;
  /** The change-feed epoch to run with. */
  readonly epoch: string;
  /** Peers added at run time in earlier lives of this node. */
  readonly addedPeers: readonly string[];
  /** Changes recovered from disk, with their sequence numbers. */
  readonly changes: readonly Change[];
  /** Where this node stood in its peers' change feeds. */
  readonly cursors: Readonly<Record<string, Cursor>>;
  /** What recovery had to do, one line each. */
  readonly notes: readonly string[];
}

/** Options of `Persistence.recover`: a data folder already checked and locked, or one in a simulator's file system. */
export interface RecoverOptions {
  /** Absolute path of the data folder in `fs`. */
  readonly dir: string;
  readonly fs: FileSystem;
  readonly fsync: FsyncPolicy;
  /** The id the config gives the node, if any: the folder must belong to it. */
  readonly id?: string | undefined;
  /** Salvage a damaged folder instead of refusing it. */
  readonly repair?: boolean | undefined;
  /** What errors name as the config (its path). */
  readonly source: string;
  /** Makes a new node id or change-feed epoch; 12 random characters (nanoid) by default, a seeded source in a simulator. */
  readonly newId?: (() => string) | undefined;
  /** Runs every timer of the disk side (node.json retries, the storage's background fsync, the DiskPipeline's); `realScheduler` by default. */
  readonly scheduler?: Scheduler | undefined;
}

/** Changes to the peers added at run time, for `Persistence.updatePeers`. */
export interface PeerChanges {
  /** Addresses to add (those already there are left where they are). */
  readonly added?: readonly string[];
  /** Addresses to forget; an address both added and removed in one call is removed. */
  readonly removed?: readonly string[];
}

/** A node's durable state, opened at start. */
export class Persistence {
  readonly #fs: FileSystem;
  /** node.json as it should be; written by #writeMetaSoon. Replaced, never mutated, on every change. */
  #meta: NodeMeta | null;
  /** True while #meta holds a change not yet on disk (waiting, being written, or whose write failed). */
  #metaDirty = false;
  /** The node.json write in flight. */
  #metaWrite: Promise<void> | null = null;
  /** The write that follows it, not started yet: it takes every change made before it starts. */
  #nextMetaWrite: Promise<void> | null = null;
  /** Cancels the retry of a failed node.json write, while one is scheduled. */
  #cancelMetaRetry: (() => void) | null = null;
  #closing: Promise<string[]> | null = null;

  private constructor(
    /** What the node starts from. */
    readonly recovered: Recovered,
    /** Absolute data folder, or null in memory-only mode. */
    readonly dir: string | null,
    readonly storage: Storage | null,
    /** Whether cursors are worth keeping (entries they vouch for are synced before they move). */
    readonly keepsCursors: boolean,
    readonly release: () => Promise<void>,
    meta: NodeMeta | null,
    fs: FileSystem,
    /** Runs the disk side's timers: this object's retries, and those of the DiskPipeline over it. */
    readonly scheduler: Scheduler,
  ) {
    this.#meta = meta;
    this.#fs = fs;
  }

  /**
   * Locks and loads the config's dataDir (relative to the config file's
   * folder). Throws DataDirError, in one line, whatever went wrong with the
   * folder: held by another node, damaged, or a disk that is full, read-only
   * or unwritable (then `code` is the errno code).
   */
  static async open(config: NodeConfig, source: string, options: { repair?: boolean; fs?: FileSystem; scheduler?: Scheduler } = {}): Promise<Persistence> {
    const fs = options.fs ?? nodeFileSystem;
    const scheduler = options.scheduler ?? realScheduler;
    if (config.dataDir === undefined) {
      const recovered: Recovered = { id: config.id ?? nanoid(ID_LENGTH), epoch: nanoid(ID_LENGTH), addedPeers: [], changes: [], cursors: {}, notes: [] };
      return new Persistence(recovered, null, null, false, async () => undefined, null, fs, scheduler);
    }
    const dir = resolve(dirname(source), config.dataDir);
    const unusable = unusableDataDir(dir);
    if (unusable !== undefined) throw new DataDirError(`data folder ${dir} is ${unusable} (config ${source}): set "dataDir" to a folder on a disk`);
    try {
      await fs.mkdir(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const file = code === 'EEXIST' || code === 'ENOTDIR' ? fileInPath(dir) : undefined;
      if (file === dir) throw new DataDirError(`data folder ${dir} is a file, not a folder (config ${source}): set "dataDir" to a folder, or move that file away`, { code, cause: error });
      if (file !== undefined) throw new DataDirError(`cannot create the data folder ${dir} (config ${source}): ${file} is a file, not a folder; set "dataDir" to a folder, or move that file away`, { code, cause: error });
      throw startFailure(`cannot create the data folder ${dir}`, source, error);
    }
    let release: () => Promise<void>;
    try {
      release = await lockDataDir(dir, source);
    } catch (error) {
      if (error instanceof LockedError) throw new DataDirError(error.message, { startCode: 'DATA_DIR_LOCKED', cause: error });
      throw startFailure(`cannot take the lock ${pathIn(dir, LOCK_FILE)}`, source, error);
    }
    try {
      return await Persistence.#load({ dir, fs, fsync: config.fsync, id: config.id, repair: options.repair, source, scheduler }, release);
    } catch (error) {
      await release().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Creates (if needed) and loads a data folder in `options.fs` without the
   * checks of the path and the LOCK that `open` makes on the real disk: for
   * a simulator that runs the node over its own in-memory file system.
   * Throws DataDirError as `open` does.
   */
  static async recover(options: RecoverOptions): Promise<Persistence> {
    try {
      await options.fs.mkdir(options.dir);
    } catch (error) {
      throw startFailure(`cannot create the data folder ${options.dir}`, options.source, error);
    }
    return Persistence.#load(options, async () => undefined);
  }

  static async #load(options: RecoverOptions, release: () => Promise<void>): Promise<Persistence> {
    const { dir, fs, source } = options;
    const scheduler = options.scheduler ?? realScheduler;
    let storage: Storage | null = null;
    try {
      let meta: NodeMeta | null;
      try {
        meta = await readMeta(fs, dir);
      } catch (error) {
        if (isDiskError(error)) throw startFailure(`cannot read ${pathIn(dir, META_FILE)}`, source, error);
        throw new DataDirError((error as Error).message);
      }
      if (meta !== null && options.id !== undefined && meta.id !== options.id) {
        throw new DataDirError(`data folder ${dir} belongs to node ${meta.id}, but ${source} says "id": "${options.id}"; use that node's config, or another dataDir`);
      }
      let recovery: Recovery;
      try {
        ({ storage, recovery } = await Storage.open({ dir, fs, fsync: options.fsync, repair: options.repair ?? false, scheduler }));
      } catch (error) {
        if (error instanceof CorruptionError) throw new DataDirError(`${error.message} (config ${source})`, { startCode: 'DATA_DAMAGED', cause: error });
        if (error instanceof StorageFailure) throw startFailure(`cannot ${error.doing} in the data folder ${dir}`, source, error.cause);
        throw error;
      }
      const changes = recovery.entries.map(({ seq, ...entry }) => ({ entry, seq: seq ?? 0 }));
      const sequenced = changes.every((change) => change.seq > 0);
      const { keepEpoch, keepsCursors } = epochRule({ fsyncAlways: options.fsync === 'always', repaired: recovery.repaired, sequenced, hadEpoch: meta?.epoch !== undefined });
      const newId = options.newId ?? (() => nanoid(ID_LENGTH));
      const id = options.id ?? meta?.id ?? newId();
      const epoch = keepEpoch ? meta!.epoch! : newId();
      const cursors = keepsCursors ? (meta?.cursors ?? {}) : {};
      const next: NodeMeta = { id, peers: meta?.peers ?? [], epoch, cursors };
      if (meta === null || meta.epoch !== epoch || !keepsCursors) {
        try {
          await writeMeta(fs, dir, next);
        } catch (error) {
          if (isDiskError(error)) throw startFailure(`cannot write ${pathIn(dir, META_FILE)}`, source, error);
          throw error;
        }
      }
      const recovered: Recovered = {
        id,
        epoch,
        addedPeers: next.peers,
        // Unsequenced records (none are written today) get fresh numbers in a new epoch.
        changes: sequenced ? changes : changes.map((change, index) => ({ entry: change.entry, seq: index + 1 })),
        cursors,
        notes: recovery.notes,
      };
      return new Persistence(recovered, dir, storage, keepsCursors, release, next, fs, scheduler);
    } catch (error) {
      await storage?.close();
      throw error;
    }
  }

  /**
   * Makes changes durable according to the fsync policy; resolves at once in
   * memory-only mode. Rejects with StorageFailure when the disk fails, and at
   * once while the storage is failed; the changes are then kept and written
   * by a later successful `retry()` (see `Storage.append`).
   */
  append(changes: readonly Change[]): Promise<void> {
    if (this.storage === null) return Promise.resolve();
    return this.storage.append(changes.map(({ entry, seq }) => ({ ...entry, seq })));
  }

  /** See `Storage.onStateChange`; never called in memory-only mode. Returns a function that removes the listener. */
  onStorageStateChange(listener: (failure: StorageFailure | null) => void): () => void {
    return this.storage?.onStateChange(listener) ?? (() => undefined);
  }

  /**
   * Tries the disk again (see `Storage.retry`): true when the storage takes
   * appends again. Once it does, an unsaved node.json change is written too.
   * Never rejects.
   */
  async retry(): Promise<boolean> {
    const recovered = this.storage === null ? true : await this.storage.retry();
    if (recovered && this.#metaDirty && this.#metaWrite === null && this.#nextMetaWrite === null && this.#closing === null) {
      await this.#writeMetaSoon().catch(() => undefined);
    }
    return recovered;
  }

  /**
   * Adds and removes peers added at run time, so that a restarted node dials
   * the same ones. Changes are coalesced: at most one node.json write is in
   * flight, and every change made meanwhile goes into the one write after
   * it. Resolves once a write holding this change is durable; rejects with
   * StorageFailure if that write failed, in which case the change is kept
   * and written by the next write (another change, a cursor save, a retry
   * a few seconds later, or close()).
   */
  updatePeers(changes: PeerChanges): Promise<void> {
    if (this.dir === null || this.#meta === null) return Promise.resolve();
    const removed = new Set(changes.removed ?? []);
    const peers = [...this.#meta.peers];
    const known = new Set(peers);
    for (const address of changes.added ?? []) {
      if (!known.has(address)) {
        known.add(address);
        peers.push(address);
      }
    }
    const kept = removed.size === 0 ? peers : peers.filter((address) => !removed.has(address));
    const unchanged = kept.length === this.#meta.peers.length && kept.every((address, i) => address === this.#meta!.peers[i]);
    if (unchanged) {
      // Already wanted: the write that holds it may still be waiting or running.
      if (this.#nextMetaWrite ?? this.#metaWrite) return (this.#nextMetaWrite ?? this.#metaWrite)!;
      return this.#metaDirty ? this.#writeMetaSoon() : Promise.resolve();
    }
    this.#meta = { ...this.#meta, peers: kept };
    this.#metaDirty = true;
    return this.#writeMetaSoon();
  }

  /**
   * Writes moved cursors to node.json soon (when to save them is the
   * durability pipeline's choice: only once the entries they vouch for are
   * durable). A failed write is kept and tried again (see #writeMetaSoon).
   */
  saveCursors(cursors: Readonly<Record<string, Cursor>>): void {
    if (!this.keepsCursors || this.#meta === null || this.#closing) return;
    this.#meta = { ...this.#meta, cursors: { ...this.#meta.cursors, ...cursors } };
    this.#metaDirty = true;
    this.#writeMetaSoon().catch(() => undefined);
  }

  /**
   * Compacts the log if it is worth it (`Storage.shouldCompact`): a snapshot
   * of `changes`, the node's whole store read now, which already holds every
   * change whose append was called. Rejects with the failure of the
   * compaction (the log is then kept as it is).
   */
  async compactIfWorth(liveEntries: () => number, changes: () => Iterable<Change>): Promise<void> {
    if (this.storage === null || !this.storage.shouldCompact(liveEntries)) return;
    await this.storage.compact(Array.from(changes(), ({ entry, seq }) => ({ ...entry, seq })));
  }

  /**
   * Saves node.json if it has unsaved changes, closes the storage (which
   * tries once more to write what it holds pending), and releases the LOCK,
   * whatever failed before. Never rejects: resolves to one line per problem
   * (empty when all went well), for the caller to log.
   */
  close(): Promise<string[]> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<string[]> {
    const problems: string[] = [];
    this.#cancelMetaRetry?.();
    this.#cancelMetaRetry = null;
    try {
      try {
        await (this.#nextMetaWrite ?? this.#metaWrite)?.catch(() => undefined);
        if (this.#metaDirty) await this.#writeMetaSoon();
      } catch (error) {
        problems.push(`the last changes of node.json (peers added or removed, cursors) are not saved: ${(error as Error).message}`);
      }
      if (this.storage !== null) problems.push(...(await this.storage.close()));
    } catch (error) {
      problems.push(`closing the data folder ${this.dir}: ${(error as Error).message}`);
    } finally {
      try {
        await this.release();
      } catch (error) {
        const { words, code } = describeDiskError(error);
        problems.push(`cannot delete ${pathIn(this.dir ?? '.', LOCK_FILE)}: ${words} (${code}); delete it by hand before the next start`);
      }
    }
    return problems;
  }

  /**
   * Writes node.json soon: joins the write that has not started yet, or
   * starts one after the write in flight. A write takes #meta as it is when
   * it starts, so changes made while another write runs share one write.
   */
  #writeMetaSoon(): Promise<void> {
    if (this.dir === null || this.#meta === null) return Promise.resolve();
    if (this.#nextMetaWrite) return this.#nextMetaWrite;
    const dir = this.dir;
    const previous = this.#metaWrite ?? Promise.resolve();
    const write: Promise<void> = previous
      .catch(() => undefined)
      .then(async () => {
        this.#nextMetaWrite = null;
        this.#metaWrite = write;
        const meta = this.#meta!;
        try {
          await writeMeta(this.#fs, dir, meta);
          if (this.#meta === meta) this.#metaDirty = false;
        } catch (error) {
          if (this.#closing === null) {
            this.#cancelMetaRetry ??= this.scheduler.after(META_RETRY_INTERVAL_MS, () => {
              this.#cancelMetaRetry = null;
              if (this.#metaDirty && this.#closing === null) this.#writeMetaSoon().catch(() => undefined);
            });
          }
          throw isDiskError(error) ? new StorageFailure(dir, `write ${META_FILE}`, error) : error;
        } finally {
          if (this.#metaWrite === write) this.#metaWrite = null;
        }
      });
    // Callers see the rejection; nobody listening must not crash the process.
    write.catch(() => undefined);
    this.#nextMetaWrite = write;
    return write;
  }
}

/** A DataDirError for a failed file operation at start: `what` names the file or folder. */
function startFailure(what: string, source: string, error: unknown): DataDirError {
  const { code, words, fix } = describeDiskError(error);
  return new DataDirError(`${what} (config ${source}): ${words} (${code}); ${fix}`, { code, cause: error });
}
