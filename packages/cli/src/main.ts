/**
 * bby: `bby [--json] [--timeout MS] <configFile> <command> [args...]`.
 * Exit codes: 0 when the node answered, 1 when it could not be reached, did
 * not answer in time or is busy, 2 for usage, config and request errors and
 * for a connection the config cannot make (secret, TLS), 3 for `set --acks`
 * not acknowledged in time.
 *
 * Warnings about the config's files (a secret file other users can read) go
 * to stderr as `bby: warning: ...` and do not change the exit code: the
 * answer on stdout stays as it is for scripts.
 */
import { BbyError, ConfigError, MAX_ACK_TIMEOUT_MS } from '@bby/core';
// The config reader alone: the package's index would load the whole server, which costs every command about 0.1 s.
import { readConfigFile } from '@bby/node/config-file';
import { BbyClient, DEFAULT_TIMEOUT_MS, NodeError, type RequestBody } from './client.js';
import { runBulkCommand } from './bulk.js';
import { BULK_COMMANDS, COMMANDS, findBulkCommand, findCommand, findMonitorCommand, MONITOR_COMMANDS } from './commands.js';
import { runHealth, runWatch } from './monitor.js';
import { ConnectionError, type ConnectionTarget, connectionTarget, printable, UnreachableError } from './connection.js';

/** The first line of the usage text, also printed after a usage error. */
const SYNOPSIS = 'usage: bby [--json] [--timeout MS] [--acks N|all] <configFile> <command> [args...]';

/** Width of the command column of `bby --help`: the longest command and its arguments. */
const COMMAND_COLUMN_WIDTH = Math.max(...[...COMMANDS, ...BULK_COMMANDS, ...MONITOR_COMMANDS].map((c) => [c.name, ...c.args].join(' ').length));

/** The text of `bby --help`. */
export const USAGE = `${SYNOPSIS}

Sends one command to the node that <configFile> describes and prints its answer.

Commands:
${[...COMMANDS, ...BULK_COMMANDS, ...MONITOR_COMMANDS].map((c) => `  ${[c.name, ...c.args].join(' ').padEnd(COMMAND_COLUMN_WIDTH)} ${c.summary}${c.aliases.length > 0 ? ` (alias: ${c.aliases.join(', ')})` : ''}`).join('\n')}

Options:
  --json         print the answer as JSON
  --timeout MS   how long to wait for the node (default ${DEFAULT_TIMEOUT_MS})
  --acks N|all   with set: answer once N nodes (this one included) hold the
                 write, or every node this one knows of; exit 3 if not in time
  -h, --help     show this help
  --             end of options (for a value that starts with --)

Examples:
  bby examples/node1.json set MonChamp 42
  bby examples/node2.json get MonChamp
  bby examples/node3.json keys
  bby examples/node1.json export > backup.jsonl
  bby examples/node2.json import backup.jsonl

The config's "secret" (or "clientSecret", "clientSecretFile", ...) and "tls"
are used to connect: bby connects to "advertise" when the config has one,
else to "host" (127.0.0.1 for 0.0.0.0). See docs/security.md.

Exit codes: 0 the node answered; 1 the node cannot be reached, did not answer
in time, or is busy (HTTP 503: starting, too many connections): try again;
2 usage, config or request error, or the config cannot connect (wrong or
missing secret, the node has no secret but the config has one, TLS on one
side only, certificate not trusted); 3 set --acks was not acknowledged by
enough nodes in time.`;

class UsageError extends Error {}

interface Invocation {
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly help: boolean;
  /** For set: how many nodes must hold the write before the answer (`all`: every node known). */
  readonly acks: number | 'all' | undefined;
  readonly positionals: readonly string[];
}

// Hand-rolled rather than util.parseArgs: values such as "-5" must pass as arguments.
function parseCommandLine(argv: readonly string[]): Invocation {
  let json = false;
  let help = false;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  let acks: number | 'all' | undefined;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '--json') json = true;
    else if (arg === '-h' || arg === '--help') help = true;
    else if (arg === '--timeout' || arg.startsWith('--timeout=')) {
      const text = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      timeoutMs = Number(text);
      if (text === undefined || !Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout needs a whole number of milliseconds, got ${JSON.stringify(text ?? '')}`);
    } else if (arg === '--acks' || arg.startsWith('--acks=')) {
      const text = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      acks = text === 'all' ? 'all' : Number(text);
      if (text === undefined || (acks !== 'all' && !(Number.isInteger(acks) && acks >= 1 && acks <= 1024))) {
        throw new UsageError(`--acks needs a number of nodes from 1 to 1024, or "all", got ${JSON.stringify(text ?? '')}`);
      }
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else positionals.push(arg);
  }
  return { json, timeoutMs, help, acks, positionals };
}

/** Writes text to stdout and stderr; replaced in tests. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: import and export show a progress line there. */
  readonly errIsTTY?: boolean;
  /** Resolves when a long-running command (watch) should stop; default: on SIGINT (Ctrl-C) or SIGTERM. */
  readonly stopped?: Promise<void>;
  /** Writes to stdout and resolves once it is written (export's backpressure); default `out`. */
  outAndWait?(text: string): Promise<void>;
}

const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  get errIsTTY() {
    return process.stderr.isTTY === true;
  },
  outAndWait: (text) =>
    new Promise((resolve, reject) => {
      // A closed pipe (`bby ... export | head`) fails the write: reported here, not as an uncaught 'error'.
      if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => undefined);
      process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
    }),
};

/** Resolves on the first SIGINT (Ctrl-C) or SIGTERM. */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** Runs the CLI and resolves to its exit code. */
export async function main(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const usageError = (message: string) => {
    output.err(`bby: ${message}\n${SYNOPSIS}\ncommands: ${[...COMMANDS, ...BULK_COMMANDS, ...MONITOR_COMMANDS].map((c) => c.name).join(', ')}; bby --help says more\n`);
    return 2;
  };
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(argv);
  } catch (error) {
    return usageError((error as Error).message);
  }
  if (invocation.help) {
    output.out(`${USAGE}\n`);
    return 0;
  }
  const [configPath, name, ...args] = invocation.positionals;
  if (configPath === undefined) return usageError('the config file is missing');
  if (name === undefined) return usageError('the command is missing');
  const bulk = findBulkCommand(name);
  const command = findCommand(name);
  const monitor = findMonitorCommand(name);
  const spec = bulk ?? command ?? monitor;
  if (spec === undefined) return usageError(`unknown command ${JSON.stringify(name)}`);
  if (args.length !== spec.args.length) {
    const usage = [spec.name, ...spec.args].join(' ');
    const hint = spec.name === 'set' && args.length > 2 ? '; quote a value that has spaces' : '';
    return usageError(`${spec.name} takes ${spec.args.length} argument(s), got ${args.length}: bby ${configPath} ${usage}${hint}`);
  }
  let body;
  try {
    body = command?.request(args);
  } catch (error) {
    if (error instanceof BbyError) {
      output.err(`bby: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  let target: ConnectionTarget;
  try {
    const config = await readConfigFile(configPath, { onWarning: (message) => output.err(`bby: warning: ${message}\n`) });
    target = await connectionTarget(config, configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      output.err(`bby: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (monitor?.name === 'health') return runHealth(target, { json: invocation.json, timeoutMs: invocation.timeoutMs, configPath }, output);
  if (bulk !== undefined) return runBulkCommand(bulk.name, args, { target, configPath, json: invocation.json, timeoutMs: invocation.timeoutMs }, output);
  if (invocation.acks !== undefined && command!.name !== 'set') return usageError('--acks goes with set only');
  let client: BbyClient | undefined;
  try {
    if (monitor?.name === 'watch') return await runWatch(target, { json: invocation.json, timeoutMs: invocation.timeoutMs }, output, output.stopped ?? interrupted());
    client = await BbyClient.connect(target, invocation.timeoutMs);
    let result: unknown;
    let omitted: number | undefined;
    if (command!.name === 'keys') result = await client.allKeys();
    else if (invocation.acks !== undefined) {
      // The node gives up a little before this client does, so that its count arrives.
      const timeoutMs = Math.max(1, Math.min(invocation.timeoutMs - 250, MAX_ACK_TIMEOUT_MS));
      result = (await client.requestReply({ ...body!, acks: invocation.acks, timeoutMs } as RequestBody, invocation.timeoutMs + 1000)).result;
    } else {
      const reply = await client.requestReply(body!);
      result = reply.result;
      omitted = reply.omitted;
    }
    if (invocation.json) {
      output.out(`${JSON.stringify(result)}\n`);
      // stdout stays one JSON value; the count of rows left out goes beside it.
      if (omitted !== undefined && omitted > 0) output.err(`bby: ... and ${omitted} more (left out of the answer to fit one message)\n`);
    } else output.out(command!.format(result, omitted));
    return 0;
  } catch (error) {
    if (error instanceof UnreachableError) {
      output.err(`bby: ${error.message}; is the node started? Start it with: bby-node ${configPath}\n`);
      return 1;
    }
    if (error instanceof ConnectionError) {
      output.err(`bby: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof NodeError && error.code === 'ACK_TIMEOUT') {
      output.err(`bby: not acknowledged by enough nodes in time: ${error.message}\n`);
      return 3;
    }
    if (error instanceof NodeError) {
      output.err(`bby: the node refused the request: ${printable(error.message)} (${printable(error.code)})\n`);
      return 2;
    }
    throw error;
  } finally {
    client?.close();
  }
}

