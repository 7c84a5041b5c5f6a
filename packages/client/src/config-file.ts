/**
 * Reading a config file from disk. Validation lives in @bby/core
 * (`parseConfig`, `parseSecretFile`); this adds what only files can have:
 * reading the secret files, resolving paths against the config file's folder,
 * and warning about secrets and keys other users can read.
 *
 * Paths: "secretFile", "clientSecretFile" and the "tls" files are relative to
 * the config file; the config returned holds them as absolute paths, so that
 * nothing after this reads a file relative to the working directory.
 * ("dataDir" is resolved by the node's persistence, against `source`.)
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, parseConfig, parseSecretFile, type NodeConfig, type TlsConfig } from '@bby/core';

/** A secret file larger than this is refused unread: it holds a few lines of at most 1024 characters. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Options of `readConfigFile`. */
export interface ReadConfigOptions {
  /**
   * Gets one line per problem that does not stop the config from working (a
   * secret file or TLS key other users can read). bby-node prints them at
   * start; bby prints them on stderr. Default: ignored.
   */
  readonly onWarning?: (message: string) => void;
}

/** Reads and validates a node config file and the secret files it names; throws ConfigError with a one-line message. */
export async function readConfigFile(path: string, options: ReadConfigOptions = {}): Promise<NodeConfig> {
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
  const config = parseConfig(text, path);
  const warn = options.onWarning ?? (() => undefined);
  const folder = dirname(path);
  let result: NodeConfig = config;
  if (config.secretFile !== undefined) {
    const file = resolve(folder, config.secretFile);
    result = { ...result, secretFile: file, secrets: await readSecretFile(file, path, 'secretFile', warn) };
  }
  if (config.clientSecretFile !== undefined) {
    const file = resolve(folder, config.clientSecretFile);
    result = { ...result, clientSecretFile: file, clientSecrets: await readSecretFile(file, path, 'clientSecretFile', warn) };
  }
  if (config.tls !== undefined) {
    const tls: TlsConfig = {
      ...(config.tls.cert === undefined ? {} : { cert: resolve(folder, config.tls.cert) }),
      ...(config.tls.key === undefined ? {} : { key: resolve(folder, config.tls.key) }),
      ...(config.tls.ca === undefined ? {} : { ca: resolve(folder, config.tls.ca) }),
    };
    // A missing key is the transport's error to report (bby, which needs only "ca", never reads it).
    if (tls.key !== undefined) await warnIfShared(tls.key, `it is the private key of "tls"."key" in ${path}`, warn).catch(() => undefined);
    result = { ...result, tls };
  }
  return result;
}

async function readSecretFile(file: string, source: string, field: 'secretFile' | 'clientSecretFile', warn: (message: string) => void): Promise<string[]> {
  const where = `${source}: ${JSON.stringify(field)} ${file}`;
  let text: string;
  try {
    const info = await stat(file);
    if (info.isDirectory()) throw new ConfigError(`${where} is a folder; give the path of a file holding one secret per line`);
    if (info.size > MAX_SECRET_FILE_BYTES) throw new ConfigError(`${where} is ${info.size} bytes, too large for a secret file (at most ${MAX_SECRET_FILE_BYTES}); give a file holding one secret per line`);
    await warnIfShared(file, `it holds the secret of ${JSON.stringify(field)} in ${source}`, warn);
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`${where}: no such file (paths are relative to the config file); make it with: openssl rand -hex 32 > ${file}; chmod 600 ${file}`);
    if (code === 'EACCES') throw new ConfigError(`${where}: permission denied; let the user running bby read it, and nobody else: chmod 600 ${file}`);
    throw new ConfigError(`${where}: cannot read it (${code ?? (error as Error).message})`);
  }
  return parseSecretFile(text, source, field, file);
}

/** Warns when `file` can be read by its group or by other users (POSIX modes only). */
async function warnIfShared(file: string, what: string, warn: (message: string) => void): Promise<void> {
  if (process.platform === 'win32') return;
  const { mode } = await stat(file);
  if ((mode & 0o044) === 0) return;
  warn(`${file} is readable by other users (mode ${(mode & 0o777).toString(8)}) and ${what}; make it private: chmod 600 ${file}`);
}
