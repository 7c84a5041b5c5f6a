/**
 * Disk errors in words: what an errno code means to someone running a node,
 * and what to do about it. Used by the storage engine (StorageFailure) and by
 * the start-up checks of the data folder (DataDirError), so that a full or
 * broken disk is told in one line, never as a stack trace.
 */

/** One disk error, described: its stable code, the cause in words, and the fix. */
export interface DiskProblem {
  /** The errno code (ENOSPC, EIO, ...), or EUNKNOWN when the error has none. */
  readonly code: string;
  /** The cause in a few words, e.g. "no space left on device". */
  readonly words: string;
  /** What the person running the node can do. */
  readonly fix: string;
}

const PROBLEMS: Readonly<Record<string, Omit<DiskProblem, 'code'>>> = {
  ENOSPC: { words: 'no space left on device', fix: 'free space on that disk' },
  EDQUOT: { words: 'disk quota exceeded', fix: 'raise the quota of the user running the node, or free space' },
  EFBIG: { words: 'file too large', fix: 'raise the file size limit (ulimit -f)' },
  EIO: { words: 'input/output error', fix: 'check the disk and the kernel log (dmesg): the disk may be failing' },
  EROFS: { words: 'read-only file system', fix: 'remount that file system read-write' },
  EMFILE: { words: 'too many open files in this process', fix: 'raise the limit of open files (ulimit -n)' },
  ENFILE: { words: 'too many open files on this machine', fix: 'raise the system limit of open files (fs.file-max)' },
  EACCES: { words: 'permission denied', fix: "fix the folder's owner or permissions" },
  EPERM: { words: 'operation not permitted', fix: "fix the folder's owner or permissions" },
  ENOENT: { words: 'no such file or folder', fix: 'check that the folder still exists and was not removed under the node' },
  ENOTDIR: { words: 'a part of the path is not a folder', fix: 'fix "dataDir"' },
  EISDIR: { words: 'a folder stands where a file should be', fix: 'move that folder away' },
  EBUSY: { words: 'device or resource busy', fix: 'check what else uses the disk' },
};

/** Describes any error thrown by a file operation; never throws. */
export function describeDiskError(error: unknown): DiskProblem {
  const code = typeof (error as NodeJS.ErrnoException | null)?.code === 'string' ? (error as NodeJS.ErrnoException).code! : 'EUNKNOWN';
  const known = PROBLEMS[code];
  if (known !== undefined) return { code, ...known };
  const message = error instanceof Error ? error.message : String(error);
  return { code, words: firstLine(message) || 'unknown error', fix: 'check the disk' };
}

/** True when `error` carries an errno code, i.e. it came from the file system rather than from a bug. */
export function isDiskError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]!.trim();
}
