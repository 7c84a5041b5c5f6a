/**
 * Checks of a data folder's path made before anything is created in it, each
 * giving the reason in words, so that a wrong "dataDir" is refused with one
 * line at once.
 *
 * Why before: the kernel's own file systems (/proc, /sys, ...) hold no files,
 * and Node's recursive mkdir loops for ever under /proc (mkdir answers ENOENT
 * for a folder whose parent exists), at full CPU, in a thread that no signal
 * can stop. These checks use the real file system, whatever FileSystem the
 * storage is given: they look at where the path is, not at the data.
 */
import { realpathSync, statfsSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** Magic numbers of statfs(2) `f_type` for the kernel's file systems that hold no data, by name. */
const KERNEL_FILE_SYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x63677270, 'cgroup2'],
  [0x27e0eb, 'cgroup'],
  [0xcafe4a11, 'bpf'],
  [0x1cd1, 'devpts'],
  [0x42494e4d, 'binfmt_misc'],
  [0x6e736673, 'nsfs'],
  [0xde5e81e4, 'efivarfs'],
  [0x19800202, 'mqueue'],
  [0x50495045, 'pipefs'],
]);

/** Folders of the kernel's file systems, refused by path too (statfs may be unavailable). */
const KERNEL_FOLDERS = ['/proc', '/sys'];

/** The path itself if it exists, else its nearest existing parent, with symbolic links resolved; and what is left below it. */
function existingPart(path: string): { readonly existing: string; readonly rest: string } {
  let existing = path;
  for (;;) {
    try {
      const real = realpathSync.native(existing);
      return { existing: real, rest: relative(existing, path) };
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return { existing, rest: relative(existing, path) };
      existing = parent;
    }
  }
}

/**
 * Why `dir` can never hold a node's data, in words that complete "data folder
 * DIR is ..." (e.g. "on /proc, a kernel file system (proc) that holds no
 * files"), or undefined when it may. Never throws.
 */
export function unusableDataDir(dir: string): string | undefined {
  const { existing, rest } = existingPart(dir);
  const real = rest === '' ? existing : join(existing, rest);
  const under = KERNEL_FOLDERS.find((folder) => real === folder || real.startsWith(`${folder}${sep}`));
  let type: string | undefined;
  try {
    type = KERNEL_FILE_SYSTEMS.get(Number(statfsSync(existing).type));
  } catch {
    type = undefined;
  }
  if (under !== undefined) return `on ${under}, a kernel file system${type === undefined ? '' : ` (${type})`} that holds no files${real === dir ? '' : ` (it resolves to ${real})`}`;
  if (type !== undefined) return `on a kernel file system (${type}) that holds no files${real === dir ? '' : ` (it resolves to ${real})`}`;
  return undefined;
}

/**
 * The first part of `dir` (itself or a parent) that exists and is not a
 * folder, or undefined: what an EEXIST or ENOTDIR from mkdir is about.
 */
export function fileInPath(dir: string): string | undefined {
  const parts: string[] = [];
  for (let path = dir; ; path = dirname(path)) {
    parts.unshift(path);
    if (dirname(path) === path) break;
  }
  for (const path of parts) {
    try {
      if (!statSync(path).isDirectory()) return path;
    } catch {
      return undefined;
    }
  }
  return undefined;
}
