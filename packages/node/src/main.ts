/**
 * bby-node: `bby-node <configFile>` runs one node until SIGINT or SIGTERM.
 * Exit codes: 0 after a clean stop, 1 when the node cannot start or run,
 * 2 for usage and config errors (an exposed node without a secret included).
 * A stop that takes over STOP_DEADLINE_MS ends with 1, or with SIGKILL when
 * a file operation is still pending (the only way out of a thread stuck in
 * the kernel: a disk that does not answer).
 */
import { BbyError, checkExposure, exposureWarnings } from '@bby/core';
import { readConfigFile } from '@bby/client';
import { createLogSink, LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, type LogSink } from './log-sink.js';
import { type RunningNode, startNode } from './node-server.js';

const USAGE = `usage: bby-node [--repair] [--log-level info|warn] [--log-format text|json] <configFile>

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
  --repair             start even if the data folder is damaged, keeping
                       every intact record (the damaged file is kept as
                       *.damaged)
  --log-level LEVEL    info (default: everything) or warn (warnings only)
  --log-format FORMAT  text (default: for people) or json (one object a
                       line: time, level, node, event, message, fields)
  -h, --help           show this help

Stop with Ctrl-C.`;

/** How long a stop (SIGINT, SIGTERM) may take before the process ends itself, in milliseconds: a disk that does not answer must not keep it. */
export const STOP_DEADLINE_MS = 5_000;

/** Where to report an internal error. */
const REPORT_TO = 'please report it (an issue of the bby repository) with the command, the config and the output of BBY_DEBUG=1';

/** What bby-node was asked to run: the config file and the options. */
interface CommandLine {
  readonly configPath: string | undefined;
  readonly repair: boolean;
  readonly help: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

/** The value of an option that takes one of `choices`, as `--name VALUE` or `--name=VALUE`; advances `i` past it. */
function choice<T extends string>(argv: readonly string[], i: { at: number }, name: string, choices: readonly T[]): T {
  const arg = argv[i.at]!;
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i.at];
  if (value === undefined) throw new BbyError('BAD_USAGE', `${name} needs a value: ${choices.join(' or ')}`);
  if (!(choices as readonly string[]).includes(value)) throw new BbyError('BAD_USAGE', `${name} is ${choices.join(' or ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

/** The command line: the config file and the options. Throws a BbyError (BAD_USAGE) whose message is the usage problem. */
function parseCommandLine(argv: readonly string[]): CommandLine {
  let repair = false;
  let help = false;
  let logLevel: LogLevel = 'info';
  let logFormat: LogFormat = 'text';
  const positionals: string[] = [];
  for (const i = { at: 0 }; i.at < argv.length; i.at++) {
    const arg = argv[i.at]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i.at + 1));
      break;
    }
    if (arg === '--repair') repair = true;
    else if (arg === '-h' || arg === '--help') help = true;
    else if (arg === '--log-level' || arg.startsWith('--log-level=')) logLevel = choice(argv, i, '--log-level', LOG_LEVELS);
    else if (arg === '--log-format' || arg.startsWith('--log-format=')) logFormat = choice(argv, i, '--log-format', LOG_FORMATS);
    else if (arg.startsWith('-') && arg !== '-') throw new BbyError('BAD_USAGE', `unknown option ${JSON.stringify(arg)}`);
    else positionals.push(arg);
  }
  if (help) return { configPath: undefined, repair, help, logLevel, logFormat };
  if (positionals.length !== 1) throw new BbyError('BAD_USAGE', positionals.length === 0 ? 'the config file is missing' : `expected one config file, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  return { configPath: positionals[0]!, repair, help, logLevel, logFormat };
}

/**
 * One line for an unexpected exception (a bug of bby-node), where to report
 * it, and the stack only when BBY_DEBUG=1.
 */
export function describeInternalError(error: unknown, debug = process.env.BBY_DEBUG === '1'): string {
  const message = error instanceof Error ? `${error.name}: ${error.message.split('\n', 1)[0]}` : String(error);
  const stack = debug && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : '';
  return `bby-node: internal error (a bug of bby-node): ${message}; ${REPORT_TO}${stack}\n`;
}

/**
 * Ends the process with exit code 1, even when a thread is stuck in the
 * kernel on a file operation: process.exit would wait for that thread for
 * ever, so then only SIGKILL ends it.
 */
function endNow(): void {
  const fileOperations = process.getActiveResourcesInfo().filter((name) => name.startsWith('FSReq'));
  if (fileOperations.length > 0) process.kill(process.pid, 'SIGKILL');
  process.exit(1);
}

/**
 * bby-node's exit code for an error's code (the registry of @bby/core's
 * errors.ts), decided here alone: 2 when the command line or the config must
 * change (BAD_USAGE, BAD_CONFIG), 1 when the node could not start (a port in
 * use, a locked or damaged data folder, a TLS file it cannot use).
 */
export function exitCodeFor(code: string): 1 | 2 {
  return code === 'BAD_USAGE' || code === 'BAD_CONFIG' ? 2 : 1;
}

/** Runs bby-node with command-line arguments; resolves to an exit code or runs until stopped. Never rejects. */
export async function main(argv: string[]): Promise<number | undefined> {
  let configPath: string;
  let repair = false;
  let log: LogSink;
  let nodeId: string | null = null;
  try {
    const line = parseCommandLine(argv);
    if (line.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    configPath = line.configPath!;
    repair = line.repair;
    log = createLogSink({ level: line.logLevel, format: line.logFormat, nodeId: () => nodeId });
  } catch (error) {
    process.stderr.write(`bby-node: ${(error as Error).message} (bby-node --help says more)\n`);
    return exitCodeFor('BAD_USAGE');
  }
  // What `pgrep -f 'bby-node CONFIG'` finds, however the node was started (npm start, npx, node bin/bby-node.js).
  process.title = ['bby-node', ...argv].join(' ');
  process.on('uncaughtException', (error) => {
    process.stderr.write(describeInternalError(error));
    process.exit(1);
  });
  try {
    // Handlers first: a signal that arrives while the node starts still stops it.
    let node: RunningNode | undefined;
    let stopSignal: string | undefined;
    const stop = (signal: string) => {
      // Ctrl-C under npm start delivers SIGINT and then SIGTERM: stop once.
      if (stopSignal !== undefined) return;
      stopSignal = signal;
      log('info', `stopping (${signal})`, { event: 'stopping', fields: { signal } });
      // Whatever holds the stop (a start stuck on the disk, a close waiting for a disk that does not answer), the process ends.
      setTimeout(() => {
        log('warn', `not stopped ${STOP_DEADLINE_MS / 1000} s after ${signal} (${node === undefined ? 'still starting' : 'still closing'}: a disk that does not answer?); ending now`, { event: 'stop-deadline', fields: { signal } });
        endNow();
      }, STOP_DEADLINE_MS);
      if (node !== undefined) void node.close().then(() => process.exit(0));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    const config = await readConfigFile(configPath, { onWarning: (message) => log('warn', message, { event: 'config-warning' }) });
    checkExposure(config, configPath);
    nodeId = config.id ?? null;
    for (const warning of exposureWarnings(config, configPath)) log('warn', warning, { event: 'config-warning' });
    const logAsNode: LogSink = (level, message, details) => {
      // A generated id is known from the node's first line on.
      if (details?.event === 'listening' && typeof details.fields?.id === 'string') nodeId = details.fields.id;
      log(level, message, details);
    };
    node = await startNode(config, { source: configPath, repair, log: logAsNode });
    if (stopSignal !== undefined) await node.close().then(() => process.exit(0));
    return undefined;
  } catch (error) {
    if (error instanceof BbyError) {
      process.stderr.write(`bby-node: ${error.message}\n`);
      return exitCodeFor(error.code);
    }
    process.stderr.write(describeInternalError(error));
    return 1;
  }
}
