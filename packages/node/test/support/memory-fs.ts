/**
 * An in-memory FileSystem that models what a crash keeps, for storage tests.
 *
 * Model (the durability contract of src/storage/file-system.ts):
 * - A file is an inode with `current` bytes (what reads see) and `synced`
 *   bytes (its content as of its last `sync()`).
 * - A folder maps names to inodes twice: `current` (what list/read see) and
 *   `durable` (the names as of the last `syncDir()` of that folder).
 * - `crash()` returns a new MemoryFileSystem holding only what was durable:
 *   each folder's durable names, each file with its synced bytes. So a file
 *   created and synced in a folder that was not synced afterwards is lost, a
 *   rename or remove not followed by syncDir is undone, and unsynced appends
 *   are lost. `crash()` does not change this file system.
 * - Folders themselves (mkdir) are durable at once.
 *
 * Faults, set on `faults` at any time:
 * - `failAt: {op, code}`: operation number `op` (see `operations`) fails with
 *   an error whose `code` is ENOSPC, EIO, EDQUOT, EROFS or EMFILE, without
 *   doing anything.
 * - `failEvery: {kind, code}`: every operation of that kind (or of those
 *   kinds, given a list) fails so.
 * - `diskBytes: n`: the disk holds n bytes in all (the current bytes of every
 *   file); an append that does not fit writes the part that fits, as a real
 *   write does, then fails with ENOSPC. Removing or truncating a file frees
 *   its bytes.
 * - `crashAt: n`: operation number n throws `Crash` without doing anything,
 *   and so does every later operation (the machine is down): run an
 *   operation with crashAt = 1, 2, ... to stop it at every step, then
 *   recover from `crash()`.
 * `crash({ tearLastAppend: k })` also keeps the first k bytes of the most
 * recent append if that append was not synced (a write that reached the disk
 * partly).
 *
 * `operations` counts every call (all kinds, including reads) and `counts`
 * counts them per kind. `onOperation`, if set, is called at the start of
 * every operation (after counting, before faults), e.g. to start concurrent
 * work at every step; it must not call the file system synchronously.
 */
import { posix } from 'node:path';
import { type AppendFile, type FileSystem } from '../../src/storage/file-system.js';

export type OpKind = 'mkdir' | 'list' | 'read' | 'openAppend' | 'rename' | 'remove' | 'syncDir' | 'append' | 'sync' | 'truncate' | 'close';
export type FaultCode = 'ENOSPC' | 'EIO' | 'EDQUOT' | 'EROFS' | 'EMFILE';

/** Thrown by the operation at the crash point and every one after it. */
export class Crash extends Error {
  override name = 'Crash';
}

export interface Faults {
  failAt?: { op: number; code: FaultCode };
  failEvery?: { kind: OpKind | readonly OpKind[]; code: FaultCode };
  diskBytes?: number;
  crashAt?: number;
}

interface Inode {
  current: Buffer;
  synced: Buffer;
}

interface Folder {
  current: Map<string, Inode>;
  durable: Map<string, Inode>;
}

function fault(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

export class MemoryFileSystem implements FileSystem {
  readonly #folders = new Map<string, Folder>();
  faults: Faults = {};
  operations = 0;
  readonly counts: Record<OpKind, number> = { mkdir: 0, list: 0, read: 0, openAppend: 0, rename: 0, remove: 0, syncDir: 0, append: 0, sync: 0, truncate: 0, close: 0 };
  onOperation: ((kind: OpKind, operation: number) => void) | null = null;
  /** True once the crash point was hit. */
  crashed = false;
  #lastAppend: { inode: Inode; offset: number; length: number } | null = null;

  /** Counts an operation and applies the faults; called first by every operation. */
  #step(kind: OpKind, what: string): void {
    this.operations++;
    this.counts[kind]++;
    this.onOperation?.(kind, this.operations);
    if (this.crashed || (this.faults.crashAt !== undefined && this.operations >= this.faults.crashAt)) {
      this.crashed = true;
      throw new Crash(`crash at operation ${this.operations} (${kind} ${what})`);
    }
    if (this.faults.failAt?.op === this.operations) throw fault(this.faults.failAt.code, `${kind} ${what}`);
    const every = this.faults.failEvery;
    if (every !== undefined && (every.kind === kind || (Array.isArray(every.kind) && every.kind.includes(kind)))) throw fault(every.code, `${kind} ${what}`);
  }

  #folder(dir: string): Folder {
    const folder = this.#folders.get(posix.normalize(dir));
    if (!folder) throw fault('ENOENT', `no folder ${dir}`);
    return folder;
  }

  #locate(path: string): { folder: Folder; name: string } {
    return { folder: this.#folder(posix.dirname(path)), name: posix.basename(path) };
  }

  async mkdir(dir: string): Promise<void> {
    this.#step('mkdir', dir);
    let path = posix.normalize(dir);
    for (;;) {
      if (!this.#folders.has(path)) this.#folders.set(path, { current: new Map(), durable: new Map() });
      const parent = posix.dirname(path);
      if (parent === path) break;
      path = parent;
    }
  }

  async list(dir: string): Promise<string[]> {
    this.#step('list', dir);
    return [...this.#folder(dir).current.keys()].sort();
  }

  async read(path: string): Promise<Uint8Array | null> {
    this.#step('read', path);
    const { folder, name } = this.#locate(path);
    const inode = folder.current.get(name);
    return inode ? Buffer.from(inode.current) : null;
  }

  async openAppend(path: string): Promise<AppendFile> {
    this.#step('openAppend', path);
    const { folder, name } = this.#locate(path);
    let inode = folder.current.get(name);
    if (!inode) {
      inode = { current: Buffer.alloc(0), synced: Buffer.alloc(0) };
      folder.current.set(name, inode);
    }
    const target = inode;
    let closed = false;
    const live = (kind: OpKind) => {
      this.#step(kind, path);
      if (closed) throw fault('EBADF', `${kind} on closed ${path}`);
    };
    return {
      append: async (data) => {
        live('append');
        const room = this.faults.diskBytes === undefined ? Infinity : Math.max(0, this.faults.diskBytes - this.usedBytes());
        const written = data.length <= room ? data : data.subarray(0, room);
        this.#lastAppend = { inode: target, offset: target.current.length, length: written.length };
        target.current = Buffer.concat([target.current, written]);
        if (written.length < data.length) throw fault('ENOSPC', `append ${path}: ${written.length} of ${data.length} bytes written`);
      },
      sync: async () => {
        live('sync');
        target.synced = Buffer.from(target.current);
      },
      truncate: async (size) => {
        live('truncate');
        const next = Buffer.alloc(size);
        target.current.copy(next, 0, 0, Math.min(size, target.current.length));
        target.current = next;
      },
      close: async () => {
        live('close');
        closed = true;
      },
    };
  }

  async rename(from: string, to: string): Promise<void> {
    this.#step('rename', `${from} -> ${to}`);
    const source = this.#locate(from);
    const target = this.#locate(to);
    const inode = source.folder.current.get(source.name);
    if (!inode) throw fault('ENOENT', `no file ${from}`);
    source.folder.current.delete(source.name);
    target.folder.current.set(target.name, inode);
  }

  async remove(path: string): Promise<void> {
    this.#step('remove', path);
    const { folder, name } = this.#locate(path);
    folder.current.delete(name);
  }

  async syncDir(dir: string): Promise<void> {
    this.#step('syncDir', dir);
    const folder = this.#folder(dir);
    folder.durable = new Map(folder.current);
  }

  /** What survives a crash now, as a new file system (faults and counters reset). */
  crash(options: { tearLastAppend?: number } = {}): MemoryFileSystem {
    const after = new MemoryFileSystem();
    const survivors = new Map<Inode, Inode>();
    const survivor = (inode: Inode): Inode => {
      const torn = this.#lastAppend;
      let content = inode.synced;
      if (options.tearLastAppend !== undefined && torn?.inode === inode && inode.synced.length <= torn.offset) {
        content = inode.current.subarray(0, torn.offset + Math.min(options.tearLastAppend, torn.length));
      }
      return { current: Buffer.from(content), synced: Buffer.from(content) };
    };
    for (const [path, folder] of this.#folders) {
      const durable = new Map<string, Inode>();
      for (const [name, inode] of folder.durable) {
        if (!survivors.has(inode)) survivors.set(inode, survivor(inode));
        durable.set(name, survivors.get(inode)!);
      }
      after.#folders.set(path, { current: new Map(durable), durable });
    }
    return after;
  }

  /** Test helper, not an operation: the current bytes of a file, or null. */
  peek(path: string): Buffer | null {
    const inode = this.#folders.get(posix.dirname(path))?.current.get(posix.basename(path));
    return inode ? Buffer.from(inode.current) : null;
  }

  /** Test helper, not an operation: replaces a file's bytes, durably (as damage on disk would be). */
  poke(path: string, data: Uint8Array): void {
    const folder = this.#folders.get(posix.dirname(path));
    if (!folder) throw new Error(`no folder for ${path}`);
    const inode = { current: Buffer.from(data), synced: Buffer.from(data) };
    folder.current.set(posix.basename(path), inode);
    folder.durable.set(posix.basename(path), inode);
  }

  /** Test helper, not an operation: bytes held by the files of every folder (what `diskBytes` bounds). */
  usedBytes(): number {
    const inodes = new Set<Inode>();
    for (const folder of this.#folders.values()) for (const inode of folder.current.values()) inodes.add(inode);
    let bytes = 0;
    for (const inode of inodes) bytes += inode.current.length;
    return bytes;
  }

  /** Test helper, not an operation: names in a folder, sorted. */
  names(dir: string): string[] {
    return [...(this.#folders.get(posix.normalize(dir))?.current.keys() ?? [])].sort();
  }
}
