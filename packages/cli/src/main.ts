/**
 * bby: `bby [--json] [--timeout MS] <configFile> <command> [args...]`.
 * Exit codes: 0 when the node answered, 1 when it could not be reached, did
 * not answer in time or is busy, 2 for usage, config and request errors and
 * for a connection the config cannot make (secret, TLS), 3 for `set --acks`
 * not acknowledged in time: decided from the error's code in exit-code.ts.
 *
 * Warnings about the config's files (a secret file other users can read) go
 * to stderr as `bby: warning: ...` and do not change the exit code: the
 * answer on stdout stays as it is for scripts.
 */
import { BbyError, MAX_ACK_TIMEOUT_MS, MAX_ACKS } from '@bby/core';
import { BbyClient, type ConnectionTarget, connectionTarget, DEFAULT_TIMEOUT_MS, readConfigFile, type RequestBody } from '@bby/client';
import { runBulkCommand } from './bulk.js';
import { BULK_COMMANDS, type BulkCommand, type Command, COMMANDS, findBulkCommand, findCommand, findMonitorCommand, MONITOR_COMMANDS, type MonitorCommand } from './commands.js';
import { runHealth, runWatch } from './monitor.js';
import { exitCodeFor, reportFailure } from './exit-code.js';

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
  --             end of options: what follows is arguments, such as a value
                 that starts with - (bby CONFIG set -- KEY -h)

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

/** The command line is wrong; the message says how (main prints it with where the usage is). */
class UsageError extends BbyError {
  override name = 'UsageError';
  constructor(message: string) {
    super('BAD_USAGE', message);
  }
}

interface Invocation {
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly help: boolean;
  /** For set: how many nodes must hold the write before the answer (`all`: every node known). */
  readonly acks: number | 'all' | undefined;
  readonly positionals: readonly string[];
  /** Options met after the command, as written: a value that looks like an option lands here, not among the arguments. */
  readonly optionsAfterCommand: readonly string[];
}

/** A word as a shell would need it written (single quotes when it holds anything but plain characters). */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

/** The value of an option that takes one (`--timeout 500`, `--timeout=500`); undefined when there is none. */
function optionValue(argv: readonly string[], i: number): { text: string | undefined; next: number } {
  const arg = argv[i]!;
  if (arg.includes('=')) return { text: arg.slice(arg.indexOf('=') + 1), next: i };
  const text = argv[i + 1];
  // `set k --acks` or `--acks --json`: the value is missing, not "--json".
  if (text === undefined || text.startsWith('--')) return { text: undefined, next: i };
  return { text, next: i + 1 };
}

// Hand-rolled rather than util.parseArgs: values such as "-5" must pass as arguments.
function parseCommandLine(argv: readonly string[]): Invocation {
  let json = false;
  let help = false;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  let acks: number | 'all' | undefined;
  const positionals: string[] = [];
  const optionsAfterCommand: string[] = [];
  /** Where the command stands in argv, once met. */
  let commandAt = -1;
  /** After `bby CONFIG COMMAND`, a word that looks like an option may have been meant as a value. */
  const afterCommand = () => positionals.length >= 2;
  /** The same command line with `--` after the command: what to write to pass option-looking words as values. */
  const withEndOfOptions = () => {
    return ['bby', ...argv.slice(0, commandAt + 1), '--', ...argv.slice(commandAt + 1)].map(shellWord).join(' ');
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const known = /^--(json|timeout|acks)(=|$)/.test(arg);
    if (afterCommand() && (arg === '-h' || arg === '--help' || (arg.startsWith('--') && !known))) {
      // `bby CONFIG set h -h` must not print the help and exit 0: a script would read success.
      const command = positionals[1]!;
      const takesArguments = (findCommand(command) ?? findBulkCommand(command))?.args.length !== 0;
      const what = `${arg} after the command is read as an option${arg === '-h' || arg === '--help' ? '' : ' (an unknown one)'}`;
      throw new UsageError(takesArguments ? `${what}; to pass it as a value, put -- before the arguments: ${withEndOfOptions()}` : `${what}, and ${command} takes no arguments`);
    }
    if (arg === '--json') json = true;
    else if (arg === '-h' || arg === '--help') help = true;
    else if (arg === '--timeout' || arg.startsWith('--timeout=')) {
      const { text, next } = optionValue(argv, i);
      i = next;
      if (text === undefined) throw new UsageError('--timeout needs a value: a whole number of milliseconds (as in --timeout 5000)');
      timeoutMs = Number(text);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout needs a whole number of milliseconds, got ${JSON.stringify(text)}`);
    } else if (arg === '--acks' || arg.startsWith('--acks=')) {
      const { text, next } = optionValue(argv, i);
      i = next;
      if (text === undefined) throw new UsageError(`--acks needs a value: a number of nodes from 1 to ${MAX_ACKS}, or all (as in --acks 2)`);
      acks = text === 'all' ? 'all' : Number(text);
      if (acks !== 'all' && !(Number.isInteger(acks) && acks >= 1 && acks <= MAX_ACKS)) {
        throw new UsageError(`--acks needs a number of nodes from 1 to ${MAX_ACKS}, or "all", got ${JSON.stringify(text)}`);
      }
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else {
      positionals.push(arg);
      if (positionals.length === 2) commandAt = i;
      continue;
    }
    if (afterCommand()) optionsAfterCommand.push(arg);
  }
  return { json, timeoutMs, help, acks, positionals, optionsAfterCommand };
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

/** Where to report an internal error. */
const REPORT_TO = 'please report it (an issue of the bby repository) with the command and the output of the same command run with BBY_DEBUG=1';

/**
 * One line for an unexpected exception (a bug of bby), where to report it,
 * and the stack only when BBY_DEBUG=1.
 */
export function describeInternalError(error: unknown, debug = process.env.BBY_DEBUG === '1'): string {
  const message = error instanceof Error ? `${error.name}: ${error.message.split('\n', 1)[0]}` : String(error);
  const stack = debug && error instanceof Error && error.stack !== undefined ? `\n${error.stack}` : '';
  return `bby: internal error (a bug of bby): ${message}; ${REPORT_TO}${stack}\n`;
}

/**
 * What the `bby` launcher runs: main() with the process's streams, as a
 * Unix tool behaves. A reader that goes away (`bby CONFIG keys | head -1`)
 * ends it quietly with 0; a bug is one line (exit 1, as Node's own uncaught
 * exception) rather than a stack trace.
 */
export async function run(argv: readonly string[]): Promise<number> {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    process.stderr.write(`bby: cannot write the answer: ${error.message}\n`);
    process.exit(1);
  });
  // Nowhere left to say anything.
  process.stderr.on('error', () => undefined);
  process.on('uncaughtException', (error) => {
    process.stderr.write(describeInternalError(error));
    process.exit(1);
  });
  try {
    return await main(argv);
  } catch (error) {
    process.stderr.write(describeInternalError(error));
    return 1;
  }
}

/** The command a command line names, with its config and arguments. */
interface ChosenCommand {
  readonly configPath: string;
  readonly args: readonly string[];
  /** One of the three is set: a request and its answer, import or export, or watch and health. */
  readonly command: Command | undefined;
  readonly bulk: BulkCommand | undefined;
  readonly monitor: MonitorCommand | undefined;
}

/** The command of `invocation` with its arguments checked, or the usage error to print (unknown command, wrong number of arguments). */
function chooseCommand(invocation: Invocation): ChosenCommand | string {
  const [configPath, name, ...args] = invocation.positionals;
  if (configPath === undefined) return 'the config file is missing';
  if (name === undefined) return 'the command is missing';
  const bulk = findBulkCommand(name);
  const command = findCommand(name);
  const monitor = findMonitorCommand(name);
  const spec = bulk ?? command ?? monitor;
  if (spec === undefined) return `unknown command ${JSON.stringify(name)}; the commands are ${[...COMMANDS, ...BULK_COMMANDS, ...MONITOR_COMMANDS].map((c) => c.name).join(', ')}`;
  if (args.length !== spec.args.length) {
    const usage = [spec.name, ...spec.args].join(' ');
    const options = invocation.optionsAfterCommand;
    const hint =
      args.length < spec.args.length && options.length > 0
        ? `; ${options.join(' ')} ${options.length === 1 ? 'was' : 'were'} read as ${options.length === 1 ? 'an option' : 'options'}: to pass ${options.length === 1 ? 'it' : 'them'} as a value, put -- before the arguments`
        : spec.name === 'set' && args.length > 2
          ? '; quote a value that has spaces'
          : '';
    return `${spec.name} takes ${spec.args.length} argument(s), got ${args.length}: bby ${configPath} ${usage}${hint}`;
  }
  return { configPath, args, command, bulk, monitor };
}

/** A command's answer: its result, and the rows the node left out of it (`peers`). */
interface Answer {
  readonly result: unknown;
  readonly omitted?: number | undefined;
}

/** Sends the request of `command` (every page of them for `keys`; with `acks` for `set --acks`) and resolves with the answer. */
async function ask(client: BbyClient, command: Command, body: RequestBody, invocation: Invocation): Promise<Answer> {
  if (command.name === 'keys') return { result: await client.allKeys() };
  if (invocation.acks !== undefined) {
    // The node gives up a little before this client does, so that its count arrives.
    const timeoutMs = Math.max(1, Math.min(invocation.timeoutMs - 250, MAX_ACK_TIMEOUT_MS));
    return { result: (await client.requestReply({ ...body, acks: invocation.acks, timeoutMs } as RequestBody, invocation.timeoutMs + 1000)).result };
  }
  const reply = await client.requestReply(body);
  return { result: reply.result, omitted: reply.omitted };
}

/** Prints an answer on stdout: as the command formats it, or as one JSON value with `--json`. */
function printAnswer({ result, omitted }: Answer, command: Command, json: boolean, output: Output): void {
  if (!json) {
    output.out(command.format(result, omitted));
    return;
  }
  output.out(`${JSON.stringify(result)}\n`);
  // stdout stays one JSON value; the count of rows left out goes beside it.
  if (omitted !== undefined && omitted > 0) output.err(`bby: ... and ${omitted} more (left out of the answer to fit one message)\n`);
}

/** Runs the CLI and resolves to its exit code. */
export async function main(argv: readonly string[], output: Output = processOutput): Promise<number> {
  // One line: what is wrong, and where the usage is.
  const usageError = (message: string) => {
    output.err(`bby: ${message} (bby --help says more)\n`);
    return exitCodeFor('BAD_USAGE');
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
  const chosen = chooseCommand(invocation);
  if (typeof chosen === 'string') return usageError(chosen);
  const { configPath, args, bulk, command, monitor } = chosen;
  let body: RequestBody | undefined;
  try {
    body = command?.request(args);
  } catch (error) {
    return reportFailure(error, configPath, output);
  }
  let target: ConnectionTarget;
  try {
    const config = await readConfigFile(configPath, { onWarning: (message) => output.err(`bby: warning: ${message}\n`) });
    target = await connectionTarget(config, configPath);
  } catch (error) {
    return reportFailure(error, configPath, output);
  }
  if (monitor?.name === 'health') return runHealth(target, { json: invocation.json, timeoutMs: invocation.timeoutMs, configPath }, output);
  if (bulk !== undefined) return runBulkCommand(bulk.name, args, { target, configPath, json: invocation.json, timeoutMs: invocation.timeoutMs }, output);
  if (invocation.acks !== undefined && command!.name !== 'set') return usageError('--acks goes with set only');
  let client: BbyClient | undefined;
  try {
    if (monitor?.name === 'watch') return await runWatch(target, { json: invocation.json, timeoutMs: invocation.timeoutMs }, output, output.stopped ?? interrupted());
    client = await BbyClient.connect(target, invocation.timeoutMs);
    printAnswer(await ask(client, command!, body!, invocation), command!, invocation.json, output);
    return 0;
  } catch (error) {
    return reportFailure(error, configPath, output);
  } finally {
    client?.close();
  }
}

