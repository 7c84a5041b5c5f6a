/**
 * bby-node: `bby-node <configFile>` runs one node until SIGINT or SIGTERM.
 * Exit codes: 0 after a clean stop, 1 when the node cannot start or run,
 * 2 for usage and config errors (an exposed node without a secret included).
 */
import { parseArgs } from 'node:util';
import { checkExposure, ConfigError, exposureWarnings } from '@bby/core';
import { readConfigFile } from './config-file.js';
import { consoleLog, type RunningNode, StartError, startNode } from './node-server.js';
import { StartError as TransportStartError } from './start-error.js';

const USAGE = `usage: bby-node [--repair] <configFile>

Runs one bby node from a JSON config file, for example:
  bby-node examples/node1.json

Config fields: port (required), host (default 127.0.0.1),
peers (["host:port", ...]), id (default: generated),
dataDir (folder for the log; default: memory only),
fsync ("always" (default), "everysec" or "no"; see docs/storage.md),
antiEntropyIntervalMs (default 10000), peerExchange (default true),
maxClockSkewMs (default 60000), maxConnections (default 1000).

Security (docs/security.md): secret or secretFile (the members' secret,
16 to 1024 characters, or a list: the first is presented, all accepted;
make one with: openssl rand -hex 32), clientSecret or clientSecretFile
(for clients only), tls ({"cert": ..., "key": ..., "ca": ...}: listen and
dial with wss://; scripts/make-certs.sh makes them), advertise ("host:port"
the other nodes dial; needed with host 0.0.0.0 or ::), insecure (true to
run on a non-loopback host without a secret). Paths are relative to the
config file. A node whose host is not loopback needs a secret.

Options:
  --repair    start even if the data folder is damaged, keeping every
              intact record (the damaged file is kept as *.damaged)
  -h, --help  show this help

Stop with Ctrl-C.`;

/** Runs bby-node with command-line arguments; resolves to an exit code or runs until stopped. */
export async function main(argv: string[]): Promise<number | undefined> {
  let configPath: string;
  let repair = false;
  try {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' }, repair: { type: 'boolean' } } });
    repair = values.repair === true;
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new Error(positionals.length === 0 ? 'the config file is missing' : 'expected exactly one config file');
    configPath = positionals[0]!;
  } catch (error) {
    process.stderr.write(`bby-node: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  try {
    // Handlers first: a signal that arrives while the node starts still stops it cleanly.
    let node: RunningNode | undefined;
    let stopSignal: string | undefined;
    const stop = (signal: string) => {
      // Ctrl-C under npm start delivers SIGINT and then SIGTERM: stop once.
      if (stopSignal !== undefined) return;
      stopSignal = signal;
      consoleLog('info', `stopping (${signal})`);
      if (node !== undefined) void node.close().then(() => process.exit(0));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    const config = await readConfigFile(configPath, { onWarning: (message) => consoleLog('warn', message) });
    checkExposure(config, configPath);
    for (const warning of exposureWarnings(config, configPath)) consoleLog('warn', warning);
    node = await startNode(config, { source: configPath, repair });
    if (stopSignal !== undefined) await node.close().then(() => process.exit(0));
    return undefined;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`bby-node: ${error.message}\n`);
      return 2;
    }
    if (error instanceof StartError || error instanceof TransportStartError) {
      process.stderr.write(`bby-node: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
