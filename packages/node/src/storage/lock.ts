/**
 * One node per data folder: a LOCK file holding the owner's pid, created
 * exclusively. A lock left by a process that no longer runs (a crash, kill -9)
 * is taken over.
 *
 * Two processes may start at the same moment, so: LOCK appears with its pid
 * already in it (written to a private file, then hard-linked into place, which
 * fails if LOCK exists), and a stale LOCK is first renamed aside and checked
 * there, so that a process never deletes a LOCK that another one has just
 * taken over.
 */
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BbyError } from '@bby/core';

/** Another live process holds the data folder. */
export class LockedError extends BbyError {
  override name = 'LockedError';
  constructor(message: string) {
    super('DATA_DIR_LOCKED', message);
  }
}

/** Name of the lock file in the data folder. */
export const LOCK_FILE = 'LOCK';

/** Lock files held by this process: its own pid in a LOCK does not tell a holder from a stale lock. */
const heldHere = new Set<string>();

/**
 * Takes the folder's lock; returns a function that releases it (and rejects
 * only if LOCK cannot be deleted). Throws LockedError when another process
 * holds it, or the file system's error (ENOSPC, EACCES, ...) as it is.
 */
export async function lockDataDir(dir: string, source: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const key = resolve(path);
  if (heldHere.has(key)) {
    throw new LockedError(`data folder ${dir} is already in use by this process (${process.pid}) (config ${source}): two nodes must never share a dataDir; give each node its own`);
  }
  const inUse = (pid: number) =>
    new LockedError(
      `data folder ${dir} is in use by process ${pid}, so ${source} cannot use it: two nodes must never share a dataDir; give each node its own, or stop process ${pid}. If no bby-node runs, delete ${path}`,
    );
  // Names private to this process (not *.tmp: the storage engine deletes those at start).
  const mine = `${path}.${process.pid}.new`;
  const aside = `${path}.${process.pid}.stale`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(mine, `${process.pid}\n`);
    } catch (error) {
      // A full disk can create the name and then fail to write the pid: leave nothing behind.
      await unlink(mine).catch(() => undefined);
      throw error;
    }
    try {
      await link(mine, path);
      heldHere.add(key);
      return async () => {
        heldHere.delete(key);
        try {
          await unlink(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      await unlink(mine).catch(() => undefined);
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (isHolder(pid)) throw inUse(pid);
    // The holder seems gone. Move the LOCK aside, then look at what was moved: another process may have taken it over meanwhile.
    try {
      await rename(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const moved = Number((await readFile(aside, 'utf8').catch(() => '')).trim());
    if (isHolder(moved)) {
      // A live lock: put it back.
      await link(aside, path).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      throw inUse(moved);
    }
    // Stale: the holder is gone.
    await unlink(aside).catch(() => undefined);
  }
  throw new LockedError(`cannot take the lock ${path} (config ${source}): another process keeps creating it`);
}

/** True when `pid` names another process that is running. */
function isHolder(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process that its parent has not reaped yet (a zombie) still answers kill(pid, 0).
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
