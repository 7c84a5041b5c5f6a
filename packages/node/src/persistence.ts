/**
 * What a node keeps in its dataDir, behind one object: the lock, node.json
 * (id and added peers) and the storage engine. Without a dataDir every method
 * is a no-op and the node keeps keys in memory only.
 */
import { dirname, resolve } from 'node:path';
import { type Entry, type NodeConfig } from '@bby/core';
import { nanoid } from 'nanoid';
import { CorruptionError, Storage } from './storage/engine.js';
import { type FileSystem, nodeFileSystem } from './storage/file-system.js';
import { lockDataDir, LockedError } from './storage/lock.js';
import { readMeta, writeMeta, type NodeMeta } from './storage/meta.js';

/** Why the data folder cannot be used, in one line naming the fix. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

/** A node's durable state, opened at start. */
export class Persistence {
  private constructor(
    /** The node's id: from the config, else from node.json, else new. */
    readonly id: string,
    /** Absolute data folder, or null in memory-only mode. */
    readonly dir: string | null,
    /** Peers added at run time in earlier lives of this node. */
    readonly addedPeers: readonly string[],
    /** Entries recovered from disk. */
    readonly entries: readonly Entry[],
    /** What recovery had to do, one line each. */
    readonly notes: readonly string[],
    readonly storage: Storage | null,
    readonly release: () => Promise<void>,
    meta: NodeMeta | null,
    fs: FileSystem,
  ) {
    this.#meta = meta;
    this.#fs = fs;
  }

  readonly #fs: FileSystem;

  #meta: NodeMeta | null;
  #metaWrites: Promise<void> = Promise.resolve();

  /**
   * Locks and loads the config's dataDir (relative to the config file's
   * folder). Throws DataDirError or CorruptionError.
   */
  static async open(config: NodeConfig, source: string, options: { repair?: boolean; fs?: FileSystem } = {}): Promise<Persistence> {
    const fs = options.fs ?? nodeFileSystem;
    if (config.dataDir === undefined) {
      return new Persistence(config.id ?? nanoid(12), null, [], [], [], null, async () => undefined, null, fs);
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
      const id = config.id ?? meta?.id ?? nanoid(12);
      if (meta === null) {
        meta = { id, peers: [] };
        await writeMeta(fs, dir, meta);
      }
      const { storage, recovery } = await Storage.open({ dir, fs, fsync: config.fsync, repair: options.repair ?? false });
      return new Persistence(id, dir, meta.peers, recovery.entries, recovery.notes, storage, release, meta, fs);
    } catch (error) {
      await release();
      if (error instanceof CorruptionError) throw new DataDirError(`${error.message} (config ${source})`);
      throw error;
    }
  }

  /** Makes entries durable according to the fsync policy; resolves at once in memory-only mode. */
  append(entries: readonly Entry[]): Promise<void> {
    return this.storage === null ? Promise.resolve() : this.storage.append(entries);
  }

  /** Records a peer added at run time, so that a restarted node dials it again. */
  rememberPeer(address: string): Promise<void> {
    if (this.dir === null || this.#meta === null) return Promise.resolve();
    const dir = this.dir;
    this.#metaWrites = this.#metaWrites.then(async () => {
      if (this.#meta!.peers.includes(address)) return;
      this.#meta = { ...this.#meta!, peers: [...this.#meta!.peers, address] };
      await writeMeta(this.#fs, dir, this.#meta);
    });
    return this.#metaWrites;
  }

  /** Flushes and closes the storage, then releases the lock. */
  async close(): Promise<void> {
    await this.#metaWrites.catch(() => undefined);
    await this.storage?.close();
    await this.release();
  }
}
