/**
 * A real temporary folder for tests of Persistence: the LOCK always lives on
 * the real disk, while the data may go to an injected MemoryFileSystem under
 * the same path.
 */
import { access, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NodeConfig, parseConfig } from '@bby/core';

export interface TempDataFolder {
  /** Path of the (never written) config file: Persistence resolves dataDir from its folder. */
  readonly source: string;
  /** Absolute data folder. */
  readonly dataDir: string;
  /** A node config with `"dataDir": "data"` and the given fields. */
  config(fields?: Record<string, unknown>): NodeConfig;
  /** True while the real LOCK file exists. */
  locked(): Promise<boolean>;
  /** Names in the real data folder (LOCK and its private temporary names). */
  realNames(): Promise<string[]>;
  remove(): Promise<void>;
}

export async function tempDataFolder(): Promise<TempDataFolder> {
  const root = await mkdtemp(join(tmpdir(), 'bby-persistence-'));
  const dataDir = join(root, 'data');
  await mkdir(dataDir);
  const source = join(root, 'node-config.json');
  return {
    source,
    dataDir,
    config: (fields = {}) => parseConfig(JSON.stringify({ port: 7000, id: 'node-a', dataDir: 'data', ...fields }), source),
    locked: () => access(join(dataDir, 'LOCK')).then(() => true, () => false),
    realNames: () => readdir(dataDir),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
