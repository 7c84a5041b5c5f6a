/**
 * An in-memory FileSystem that models what a crash keeps, for the storage
 * tests and the simulator (@bby/sim, through `@bby/node/internal`).
 *
 * Model (the durability contract of file-system.ts):
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
 *   its bytes. Set it to `usedBytes()` to fill the disk up now.
 * - `crashAt: n`: operation number n throws `Crash` without doing anything,
 *   and so does every later operation (the machine is down): run an
 *   operation with crashAt = 1, 2, ... to stop it at every step, then
 *   recover from `crash()`.
 * - `random: {random, syncFailure, readBitFlip}`: faults drawn from a seeded
 *   source (the same seed, the same faults): a `sync` fails with EIO with
 *   probability `syncFailure`, and a `read` returns the file with one bit
 *   flipped with probability `readBitFlip` (a bad read: the bytes stored stay
 *   intact, and the next read may be right).
 * A failed sync makes nothing durable; a later successful sync writes what
 * it had to. With `random.loseWriteback` it is what Linux does after a
 * writeback error instead: the bytes the sync should have made durable (those
 * appended or cut since the last sync) stay in the page cache (reads see
 * them) but are marked clean, so no later sync writes them: after a crash
 * they read as zeros, unless they were cut off (truncate) and written again.
 * A failed sync with nothing to write loses nothing, and bytes a later sync
 * wrote stay durable.
 * `crash({ tearLastAppend: k })` also keeps the first k bytes of the most
 * recent append if that append was not synced (a write that reached the disk
 * partly); `crash({ tornWrites: random })` keeps, of every file whose
 * unsynced bytes follow its synced ones, a prefix of those unsynced bytes of
 * a length drawn from `random` (none to all).
 *
 * `operations` counts every call (all kinds, including reads) and `counts`
 * counts them per kind. `onOperation`, if set, is called at the start of
 * every operation (after counting, before faults), e.g. to start concurrent
 * work at every step; it must not call the file system synchronously.
 * `wait`, if set, is called before every operation, and the operation waits
 * for the promise it returns, if any: the simulator makes operations take
 * simulated time with it. `struck` counts the seeded faults that struck.
 */
import { posix } from 'node:path';
import { type AppendFile, type FileSystem } from './file-system.js';

export type OpKind = 'mkdir' | 'list' | 'read' | 'openAppend' | 'rename' | 'remove' | 'syncDir' | 'append' | 'sync' | 'truncate' | 'close';
export type FaultCode = 'ENOSPC' | 'EIO' | 'EDQUOT' | 'EROFS' | 'EMFILE';

/** Thrown by the operation at the crash point and every one after it. */
export class Crash extends Error {
  override name = 'Crash';
}

/** The faults of a MemoryFileSystem; see the file header. */
export interface Faults {
  failAt?: { op: number; code: FaultCode };
  failEvery?: { kind: OpKind | readonly OpKind[]; code: FaultCode };
  diskBytes?: number;
  crashAt?: number;
  random?: RandomFaults;
}

/** Faults drawn at every operation of their kind from a seeded source. */
export interface RandomFaults {
  /** The source of the draws, in [0, 1). */
  readonly random: () => number;
  /** Probability that a `sync` fails with EIO (see the file header for what it leaves). */
  readonly syncFailure?: number;
  /** Probability that a `read` returns the file with one bit flipped. */
  readonly readBitFlip?: number;
  /** A failed sync marks its bytes clean without writing them, as Linux does (see the file header). */
  readonly loseWriteback?: boolean;
}

/** Options of `crash()`: which unsynced bytes reached the disk anyway. */
export interface CrashOptions {
  /** Keep the first k bytes of the most recent append, if it was not synced. */
  readonly tearLastAppend?: number;
  /** Keep, of every file, a prefix of its unsynced bytes of a length drawn from this source. */
  readonly tornWrites?: () => number;
}

interface Inode {
  current: Buffer;
  synced: Buffer;
  /** Lowest byte changed (appended, cut) since the last sync that wrote or lost them; `current.length` when clean. */
  dirtyFrom: number;
  /** Byte ranges [from, to) whose sync failed: marked clean but never written (zeros on the disk), until cut off. */
  lostWriteback: { from: number; to: number }[];
}

/** A fresh inode holding `data`, clean and synced. */
function inodeOf(data: Uint8Array): Inode {
  return { current: Buffer.from(data), synced: Buffer.from(data), dirtyFrom: data.length, lostWriteback: [] };
}

interface Folder {
  current: Map<string, Inode>;
  durable: Map<string, Inode>;
}

function fault(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** The in-memory file system; see the file header. */
export class MemoryFileSystem implements FileSystem {
  readonly #folders = new Map<string, Folder>();
  faults: Faults = {};
  operations = 0;
  readonly counts: Record<OpKind, number> = { mkdir: 0, list: 0, read: 0, openAppend: 0, rename: 0, remove: 0, syncDir: 0, append: 0, sync: 0, truncate: 0, close: 0 };
  onOperation: ((kind: OpKind, operation: number) => void) | null = null;
  /** Called before every operation, which then waits for the promise returned, if any (simulated time); null: none. */
  wait: ((kind: OpKind) => Promise<void> | undefined) | null = null;
  /** Seeded faults that struck, by kind. */
  readonly struck = { syncFailure: 0, readBitFlip: 0 };
  /** True once the crash point was hit. */
  crashed = false;
  #lastAppend: { inode: Inode; offset: number; length: number } | null = null;

  /** Waits (`wait`), then counts an operation and applies the faults; called first by every operation. */
  async #enter(kind: OpKind, what: string): Promise<void> {
    const waiting = this.wait?.(kind);
    if (waiting !== undefined) await waiting;
    this.#step(kind, what);
  }

  /** True when a seeded fault of this probability strikes now. */
  #strikes(probability: number | undefined): boolean {
    const random = this.faults.random;
    return random !== undefined && probability !== undefined && probability > 0 && random.random() < probability;
  }

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
    await this.#enter('mkdir', dir);
    let path = posix.normalize(dir);
    for (;;) {
      if (!this.#folders.has(path)) this.#folders.set(path, { current: new Map(), durable: new Map() });
      const parent = posix.dirname(path);
      if (parent === path) break;
      path = parent;
    }
  }

  async list(dir: string): Promise<string[]> {
    await this.#enter('list', dir);
    return [...this.#folder(dir).current.keys()].sort();
  }

  async read(path: string): Promise<Uint8Array | null> {
    await this.#enter('read', path);
    const { folder, name } = this.#locate(path);
    const inode = folder.current.get(name);
    if (!inode) return null;
    const bytes = Buffer.from(inode.current);
    if (bytes.length > 0 && this.#strikes(this.faults.random?.readBitFlip)) {
      this.struck.readBitFlip++;
      const bit = Math.floor(this.faults.random!.random() * bytes.length * 8);
      bytes[bit >> 3]! ^= 1 << (bit & 7);
    }
    return bytes;
  }

  async openAppend(path: string): Promise<AppendFile> {
    await this.#enter('openAppend', path);
    const { folder, name } = this.#locate(path);
    let inode = folder.current.get(name);
    if (!inode) {
      inode = inodeOf(Buffer.alloc(0));
      folder.current.set(name, inode);
    }
    const target = inode;
    let closed = false;
    const live = async (kind: OpKind) => {
      await this.#enter(kind, path);
      if (closed) throw fault('EBADF', `${kind} on closed ${path}`);
    };
    return {
      append: async (data) => {
        await live('append');
        const room = this.faults.diskBytes === undefined ? Infinity : Math.max(0, this.faults.diskBytes - this.usedBytes());
        const written = data.length <= room ? data : data.subarray(0, room);
        this.#lastAppend = { inode: target, offset: target.current.length, length: written.length };
        target.dirtyFrom = Math.min(target.dirtyFrom, target.current.length);
        target.current = Buffer.concat([target.current, written]);
        if (written.length < data.length) throw fault('ENOSPC', `append ${path}: ${written.length} of ${data.length} bytes written`);
      },
      sync: async () => {
        await live('sync');
        if (this.#strikes(this.faults.random?.syncFailure)) {
          this.struck.syncFailure++;
          if (this.faults.random?.loseWriteback !== true) throw fault('EIO', `sync ${path}`);
          // Linux after a writeback error: the dirty pages are marked clean, so no later sync writes them.
          if (target.dirtyFrom < target.current.length) target.lostWriteback.push({ from: target.dirtyFrom, to: target.current.length });
          target.dirtyFrom = target.current.length;
          throw fault('EIO', `sync ${path}`);
        }
        target.synced = Buffer.from(target.current);
        for (const lost of target.lostWriteback) target.synced.fill(0, lost.from, Math.min(lost.to, target.synced.length));
        target.dirtyFrom = target.current.length;
      },
      truncate: async (size) => {
        await live('truncate');
        const next = Buffer.alloc(size);
        target.current.copy(next, 0, 0, Math.min(size, target.current.length));
        target.dirtyFrom = Math.min(target.dirtyFrom, size, target.current.length);
        target.current = next;
        target.lostWriteback = target.lostWriteback.filter((lost) => lost.from < size).map((lost) => ({ from: lost.from, to: Math.min(lost.to, size) }));
      },
      close: async () => {
        await live('close');
        closed = true;
      },
    };
  }

  async rename(from: string, to: string): Promise<void> {
    await this.#enter('rename', `${from} -> ${to}`);
    const source = this.#locate(from);
    const target = this.#locate(to);
    const inode = source.folder.current.get(source.name);
    if (!inode) throw fault('ENOENT', `no file ${from}`);
    source.folder.current.delete(source.name);
    target.folder.current.set(target.name, inode);
  }

  async remove(path: string): Promise<void> {
    await this.#enter('remove', path);
    const { folder, name } = this.#locate(path);
    folder.current.delete(name);
  }

  async syncDir(dir: string): Promise<void> {
    await this.#enter('syncDir', dir);
    const folder = this.#folder(dir);
    folder.durable = new Map(folder.current);
  }

  /** What survives a crash now, as a new file system (faults and counters reset). */
  crash(options: CrashOptions = {}): MemoryFileSystem {
    const after = new MemoryFileSystem();
    const survivors = new Map<Inode, Inode>();
    const survivor = (inode: Inode): Inode => {
      const torn = this.#lastAppend;
      let content = inode.synced;
      if (options.tearLastAppend !== undefined && torn?.inode === inode && inode.synced.length <= torn.offset) {
        content = inode.current.subarray(0, torn.offset + Math.min(options.tearLastAppend, torn.length));
      } else if (options.tornWrites !== undefined && inode.current.length > inode.synced.length && inode.current.subarray(0, inode.synced.length).equals(inode.synced)) {
        const unsynced = inode.current.length - inode.synced.length;
        content = inode.current.subarray(0, inode.synced.length + Math.floor(options.tornWrites() * (unsynced + 1)));
      }
      content = Buffer.from(content);
      // Bytes whose writeback failed never reached the disk.
      for (const lost of inode.lostWriteback) content.fill(0, Math.max(lost.from, inode.synced.length), Math.min(lost.to, content.length));
      return inodeOf(content);
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
    const inode = inodeOf(data);
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
