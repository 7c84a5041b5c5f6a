/**
 * What a node keeps in its dataDir, behind one object: the lock, node.json
 * (id, added peers, change-feed epoch, cursors) and the storage engine.
 * Without a dataDir every method is a no-op and the node keeps keys in memory
 * only.
 *
 * Epoch rule: peers may resume this node's change feed from their cursors
 * only if every change it ever sent out is recovered with the same sequence
 * number. That holds under fsync "always" (a batch's messages go out after its
 * records are synced) when recovery repaired nothing; otherwise the node
 * starts a new epoch, and its peers fall back to one full transfer.
 */
import { dirname, resolve } from 'node:path';
import { type Change, type Cursor, type NodeConfig } from '@bby/core';
import { nanoid } from 'nanoid';
import { CorruptionError, Storage } from './storage/engine.js';
import { type FileSystem, nodeFileSystem } from './storage/file-system.js';
import { lockDataDir, LockedError } from './storage/lock.js';
import { readMeta, writeMeta, type NodeMeta } from './storage/meta.js';

/** Why the data folder cannot be used, in one line naming the fix. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

/** How often moved cursors are written to node.json, at most, in milliseconds. */
export const CURSOR_SAVE_INTERVAL_MS = 1_000;

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

/** A node's durable state, opened at start. */
export class Persistence {
  readonly #fs: FileSystem;
  #meta: NodeMeta | null;
  #metaWrites: Promise<void> = Promise.resolve();
  #cursorsDirty = false;
  #cursorTimer: NodeJS.Timeout | null = null;

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
  ) {
    this.#meta = meta;
    this.#fs = fs;
  }

  /**
   * Locks and loads the config's dataDir (relative to the config file's
   * folder). Throws DataDirError.
   */
  static async open(config: NodeConfig, source: string, options: { repair?: boolean; fs?: FileSystem } = {}): Promise<Persistence> {
    const fs = options.fs ?? nodeFileSystem;
    if (config.dataDir === undefined) {
      const recovered: Recovered = { id: config.id ?? nanoid(12), epoch: nanoid(12), addedPeers: [], changes: [], cursors: {}, notes: [] };
      return new Persistence(recovered, null, null, false, async () => undefined, null, fs);
    }
    const dir = resolve(dirname(source), config.dataDir);
    try {
      await fs.mkdir(dir);
    } catch (error) {
      throw new DataDirError(`cannot create the data folder ${dir} (config ${source}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; fix "dataDir" or the folder's permissions`);
    }
    let release: () => Promise<void>;
    try {
      release = await lockDataDir(dir, source);
    } catch (error) {
      if (error instanceof LockedError) throw new DataDirError(error.message);
      throw error;
    }
    try {
      let meta: NodeMeta | null;
      try {
        meta = await readMeta(fs, dir);
      } catch (error) {
        throw new DataDirError((error as Error).message);
      }
      if (meta !== null && config.id !== undefined && meta.id !== config.id) {
        throw new DataDirError(`data folder ${dir} belongs to node ${meta.id}, but ${source} says "id": "${config.id}"; use that node's config, or another dataDir`);
      }
      let storage: Storage;
      let recovery;
      try {
        ({ storage, recovery } = await Storage.open({ dir, fs, fsync: config.fsync, repair: options.repair ?? false }));
      } catch (error) {
        if (error instanceof CorruptionError) throw new DataDirError(`${error.message} (config ${source})`);
        throw error;
      }
      const changes = recovery.entries.map(({ seq, ...entry }) => ({ entry, seq: seq ?? 0 }));
      const sequenced = changes.every((change) => change.seq > 0);
      const durable = config.fsync === 'always' && !recovery.repaired;
      const keepEpoch = durable && sequenced && meta?.epoch !== undefined;
      const id = config.id ?? meta?.id ?? nanoid(12);
      const epoch = keepEpoch ? meta!.epoch! : nanoid(12);
      const cursors = durable ? (meta?.cursors ?? {}) : {};
      const next: NodeMeta = { id, peers: meta?.peers ?? [], epoch, cursors };
      if (meta === null || meta.epoch !== epoch || !durable) await writeMeta(fs, dir, next);
      const recovered: Recovered = {
        id,
        epoch,
        addedPeers: next.peers,
        // Unsequenced records (none are written today) get fresh numbers in a new epoch.
        changes: sequenced ? changes : changes.map((change, index) => ({ entry: change.entry, seq: index + 1 })),
        cursors,
        notes: recovery.notes,
      };
      return new Persistence(recovered, dir, storage, durable, release, next, fs);
    } catch (error) {
      await release();
      throw error;
    }
  }

  /** Makes changes durable according to the fsync policy; resolves at once in memory-only mode. */
  append(changes: readonly Change[]): Promise<void> {
    if (this.storage === null) return Promise.resolve();
    return this.storage.append(changes.map(({ entry, seq }) => ({ ...entry, seq })));
  }

  /** Records a peer added at run time, so that a restarted node dials it again. */
  rememberPeer(address: string): Promise<void> {
    return this.#updateMeta((meta) => (meta.peers.includes(address) ? meta : { ...meta, peers: [...meta.peers, address] }));
  }

  /** Records a moved cursor; written to node.json at most once per CURSOR_SAVE_INTERVAL_MS (a stale cursor is safe). */
  recordCursor(peerId: string, cursor: Cursor): void {
    if (!this.keepsCursors || this.#meta === null) return;
    this.#meta = { ...this.#meta, cursors: { ...this.#meta.cursors, [peerId]: cursor } };
    this.#cursorsDirty = true;
    this.#cursorTimer ??= setTimeout(() => {
      this.#cursorTimer = null;
      void this.#saveCursors();
    }, CURSOR_SAVE_INTERVAL_MS);
  }

  /** Flushes and closes the storage, saves the cursors, then releases the lock. */
  async close(): Promise<void> {
    if (this.#cursorTimer) clearTimeout(this.#cursorTimer);
    this.#cursorTimer = null;
    await this.#saveCursors();
    await this.#metaWrites.catch(() => undefined);
    await this.storage?.close();
    await this.release();
  }

  #saveCursors(): Promise<void> {
    if (!this.#cursorsDirty) return this.#metaWrites;
    this.#cursorsDirty = false;
    return this.#updateMeta((meta) => meta);
  }

  #updateMeta(change: (meta: NodeMeta) => NodeMeta): Promise<void> {
    if (this.dir === null || this.#meta === null) return Promise.resolve();
    const dir = this.dir;
    this.#metaWrites = this.#metaWrites
      .catch(() => undefined)
      .then(async () => {
        this.#meta = change(this.#meta!);
        await writeMeta(this.#fs, dir, this.#meta);
      });
    return this.#metaWrites;
  }
}
