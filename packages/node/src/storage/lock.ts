/**
 * One node per data folder: a LOCK file holding the owner's pid, created
 * exclusively. A lock left by a process that no longer runs (a crash, kill -9)
 * is taken over.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Another live process holds the data folder. */
export class LockedError extends Error {
  override name = 'LockedError';
}

/** Name of the lock file in the data folder. */
export const LOCK_FILE = 'LOCK';

/** Lock files held by this process: its own pid in a LOCK does not tell a holder from a stale lock. */
const heldHere = new Set<string>();

/** Takes the folder's lock; returns a function that releases it. Throws LockedError. */
export async function lockDataDir(dir: string, source: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const key = resolve(path);
  if (heldHere.has(key)) {
    throw new LockedError(`data folder ${dir} is already in use by this process (${process.pid}) (config ${source}): two nodes must never share a dataDir; give each node its own`);
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      heldHere.add(key);
      return async () => {
        heldHere.delete(key);
        await unlink(path).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new LockedError(
        `data folder ${dir} is in use by process ${pid} (config ${source}): two nodes must never share a dataDir; give each node its own, or stop process ${pid}. If no bby-node runs, delete ${path}`,
      );
    }
    // The holder is gone: the lock is stale.
    await unlink(path).catch(() => undefined);
  }
  throw new LockedError(`cannot take the lock ${path} (config ${source}): another process keeps creating it`);
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
