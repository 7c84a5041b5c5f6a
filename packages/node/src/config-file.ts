/**
 * Reading a config file from disk. Validation lives in @bby/core
 * (`parseConfig`); this adds the errors that only a file can have.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, parseConfig, type NodeConfig } from '@bby/core';

/** Reads and validates a node config file; throws ConfigError with a one-line message. */
export async function readConfigFile(path: string): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`${path}: no such file; pass the path of a node config such as examples/node1.json`);
    if (code === 'EISDIR') throw new ConfigError(`${path}: is a folder; pass the path of a JSON config file such as examples/node1.json`);
    if (code === 'EACCES') throw new ConfigError(`${path}: permission denied; make the file readable`);
    throw new ConfigError(`${path}: cannot read it (${code ?? (error as Error).message})`);
  }
  return parseConfig(text, path);
}
