/**
 * The few file operations the storage engine needs, behind an interface so
 * that tests can inject a file layer that loses unsynced data on a simulated
 * crash, tears writes, or fails with ENOSPC.
 *
 * Durability contract, as on Linux: bytes written to a file survive a crash
 * only after `sync()` of that file; a created, renamed or deleted name
 * survives only after `syncDir()` of its folder.
 */
import { open, readdir, readFile, rename, unlink, mkdir, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** A file opened for appending. */
export interface AppendFile {
  /** Appends bytes at the end. */
  append(data: Uint8Array): Promise<void>;
  /** Makes every appended byte durable (fsync). */
  sync(): Promise<void>;
  /** Cuts the file to `size` bytes. */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

/** File operations used by the storage engine. Paths are absolute or relative to the process. */
export interface FileSystem {
  /** Creates a folder and its parents. */
  mkdir(dir: string): Promise<void>;
  /** Names of the files in a folder. */
  list(dir: string): Promise<string[]>;
  /** Whole content of a file, or null if it does not exist. */
  read(path: string): Promise<Uint8Array | null>;
  /** Opens (creating if needed) a file for appending. */
  openAppend(path: string): Promise<AppendFile>;
  /** Replaces `to` by `from` atomically. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file; no error if it is already gone. */
  remove(path: string): Promise<void>;
  /** Makes the folder's names durable (fsync of the folder). */
  syncDir(dir: string): Promise<void>;
}

class NodeAppendFile implements AppendFile {
  constructor(readonly handle: FileHandle) {}

  async append(data: Uint8Array): Promise<void> {
    // An append-mode handle writes at the end; loop because a write may be partial.
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await this.handle.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(size: number): Promise<void> {
    return this.handle.truncate(size);
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The real file system, through node:fs/promises. */
export const nodeFileSystem: FileSystem = {
  mkdir: makeFolders,
  list: (dir) => readdir(dir),
  async read(path) {
    try {
      return await readFile(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  },
  async openAppend(path) {
    return new NodeAppendFile(await open(path, 'a'));
  },
  rename: (from, to) => rename(from, to),
  async remove(path) {
    try {
      await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  },
  async syncDir(dir) {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

/**
 * Creates a folder and its missing parents, one by one. Not `mkdir(dir, {
 * recursive: true })`: under /proc it loops for ever (mkdir answers ENOENT
 * though the parent exists), and for a file in the place of the folder it
 * succeeds or says EEXIST depending on the Node version. Here an existing
 * folder is fine, an existing file is EEXIST, and each mkdir is tried once
 * after its parent exists.
 */
async function makeFolders(dir: string): Promise<void> {
  try {
    await mkdir(dir);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw error;
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
  }
  await makeFolders(dirname(dir));
  try {
    await mkdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(dir)).isDirectory()) return;
    throw error;
  }
}

/** Joins a folder and a file name. */
export const pathIn = (dir: string, name: string): string => join(dir, name);
