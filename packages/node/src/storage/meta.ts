/**
 * node.json in the data folder: what makes a restarted node the same node,
 * its id and the peers added at run time. Rewritten whole, atomically
 * (temporary file, fsync, rename, fsync of the folder).
 */
import { type Cursor, NODE_ID_PATTERN } from '@bby/core';
import { type FileSystem, pathIn } from './file-system.js';

/** Contents of node.json. */
export interface NodeMeta {
  readonly id: string;
  /** Addresses added with add-peer, in the order they were added. */
  readonly peers: readonly string[];
  /** Epoch of this node's change feed, kept while its sequence numbers stay valid. */
  readonly epoch?: string;
  /** Where this node stands in each peer's change feed, by peer id. */
  readonly cursors?: Readonly<Record<string, Cursor>>;
}

/** Name of the file in the data folder. */
export const META_FILE = 'node.json';

/** Reads node.json, or null when the folder has none yet. */
export async function readMeta(fs: FileSystem, dir: string): Promise<NodeMeta | null> {
  const path = pathIn(dir, META_FILE);
  const data = await fs.read(path);
  if (data === null) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw new Error(`${path} is not valid JSON; restore it or delete it (the node then gets a new id)`);
  }
  const meta = raw as Partial<NodeMeta>;
  if (typeof meta.id !== 'string' || !NODE_ID_PATTERN.test(meta.id) || !Array.isArray(meta.peers) || !meta.peers.every((p) => typeof p === 'string')) {
    throw new Error(`${path} does not hold {"id": "...", "peers": [...]}; restore it or delete it (the node then gets a new id)`);
  }
  const epoch = typeof meta.epoch === 'string' && meta.epoch !== '' ? meta.epoch : undefined;
  // Cursors are hints: a malformed one is dropped, which only costs a full transfer.
  const cursors: Record<string, Cursor> = {};
  for (const [peerId, cursor] of Object.entries(typeof meta.cursors === 'object' && meta.cursors !== null ? meta.cursors : {})) {
    const c = cursor as Partial<Cursor>;
    if (typeof c.epoch === 'string' && typeof c.seq === 'number' && Number.isSafeInteger(c.seq) && c.seq >= 0) cursors[peerId] = { epoch: c.epoch, seq: c.seq };
  }
  return { id: meta.id, peers: meta.peers, ...(epoch === undefined ? {} : { epoch }), ...(Object.keys(cursors).length > 0 ? { cursors } : {}) };
}

/**
 * Replaces node.json atomically. If it fails before the rename, the old
 * node.json is untouched and the temporary file is removed (its space freed).
 */
export async function writeMeta(fs: FileSystem, dir: string, meta: NodeMeta): Promise<void> {
  const path = pathIn(dir, META_FILE);
  const temporary = `${path}.tmp`;
  const file = await fs.openAppend(temporary);
  try {
    await file.truncate(0);
    await file.append(Buffer.from(`${JSON.stringify(meta, null, 2)}\n`, 'utf8'));
    await file.sync();
  } catch (error) {
    await file.close().catch(() => undefined);
    await fs.remove(temporary).catch(() => undefined);
    throw error;
  }
  await file.close();
  await fs.rename(temporary, path);
  await fs.syncDir(dir);
}
