/**
 * Helpers for the end-to-end tests: real `bby-node` processes on free loopback
 * ports, driven by the real `bby` CLI.
 *
 * Every process started here and every temp folder created here is tracked;
 * `useCleanup()` registers an `afterEach` hook that stops them all (SIGTERM,
 * then SIGKILL if a process does not exit in time) and removes the folders,
 * whether the test passed or failed. When a test fails, the hook prints the
 * output of the processes it started, to make the failure readable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { BbyClient, type ConnectionTarget, connectionTarget, readConfigFile, type RequestBody } from '@bby/client';
import { type PeerInfo, type Stats } from '@bby/core';

// --- paths -----------------------------------------------------------------

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'scripts', 'cluster.js')) && existsSync(join(dir, 'packages', 'cli', 'bin', 'bby.js'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the bby repository root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Root of the bby repository. */
export const REPO_ROOT = findRepoRoot();
/** Launcher of `bby-node`. */
export const BBY_NODE_BIN = join(REPO_ROOT, 'packages', 'node', 'bin', 'bby-node.js');
/** Launcher of `bby`. */
export const BBY_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'bby.js');
/** `npm start`. */
export const CLUSTER_SCRIPT = join(REPO_ROOT, 'scripts', 'cluster.js');

/** How long a node may take to print its `listening on` line. */
export const NODE_START_TIMEOUT_MS = 10_000;
/** How long one `bby` run may take before the test gives up on it. */
export const CLI_TIMEOUT_MS = 15_000;

// --- waiting ---------------------------------------------------------------

export interface WaitOptions {
  /** Give up after this long; default 10 s. */
  readonly timeoutMs?: number;
  /** Time between two checks; default 100 ms. */
  readonly intervalMs?: number;
  /** What is awaited, for the timeout message. */
  readonly what?: string;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Checks `condition` until it returns a truthy value, and returns that value.
 * A check that throws counts as "not yet". Throws a message naming what was
 * awaited, the last value seen and the last error once `timeoutMs` has passed.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = 10_000, intervalMs = 100, what = 'the condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  let checks = 0;
  for (;;) {
    checks++;
    try {
      last = await condition();
      lastError = undefined;
      if (last) return last as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError !== undefined ? `last error: ${(lastError as Error).message ?? String(lastError)}` : `last value: ${inspect(last, { depth: 4, breakLength: Infinity })}`;
      throw new Error(`timed out after ${timeoutMs} ms (${checks} checks) waiting for ${what}; ${detail}`);
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

// --- processes -------------------------------------------------------------

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A child process whose output is collected and which is stopped after the test. */
export class TrackedProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  /** Set once the process has exited. */
  exitStatus: ExitStatus | undefined;
  /** Resolves when the process exits. */
  readonly exited: Promise<ExitStatus>;
  readonly #listeners = new Set<() => void>();

  constructor(
    readonly label: string,
    command: string,
    args: readonly string[],
    /** `stdin: 'pipe'` to type into the process (`child.stdin`); default: none. */
    options: { readonly stdin?: 'pipe' | 'ignore' } = {},
  ) {
    this.child = spawn(command, args, { cwd: REPO_ROOT, stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#notify();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise((resolve) => {
      // 'close' rather than 'exit': the output is complete once the pipes are closed.
      this.child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        this.#notify();
        resolve(this.exitStatus);
      });
      this.child.once('error', (error) => {
        this.stderr += `\n[spawn error: ${error.message}]`;
        this.exitStatus ??= { code: null, signal: null };
        this.#notify();
        resolve(this.exitStatus);
      });
    });
    live.add(this);
    startedInThisTest.push(this);
    void this.exited.then(() => live.delete(this));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Both streams, each line prefixed by its stream, for failure messages. */
  describe(maxLines = 40): string {
    const tagged = [
      ...this.stdout.split('\n').filter((l) => l !== '').map((l) => `  out| ${l}`),
      ...this.stderr.split('\n').filter((l) => l !== '').map((l) => `  err| ${l}`),
    ];
    const shown = tagged.length > maxLines ? ['  ...', ...tagged.slice(-maxLines)] : tagged;
    const status = this.exitStatus === undefined ? 'running' : `exited (${this.exitStatus.signal ?? `code ${this.exitStatus.code}`})`;
    return `${this.label} [pid ${this.pid}, ${status}]\n${shown.join('\n')}`;
  }

  /** Waits until stdout matches `pattern`; fails early if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs: number, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this[stream].match(pattern);
        if (match !== null) {
          done();
          resolve(match);
        } else if (this.exitStatus !== undefined) {
          done();
          reject(new Error(`${this.label} exited before printing ${pattern} on ${stream}:\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label} did not print ${pattern} on ${stream} within ${timeoutMs} ms:\n${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Waits for the process to exit; throws if it is still running after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<ExitStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label} still running after ${timeoutMs} ms:\n${this.describe()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends `signal`, then SIGKILL if the process has not exited after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3_000): Promise<ExitStatus> {
    if (this.exitStatus !== undefined) return this.exitStatus;
    this.child.kill(signal);
    try {
      return await this.waitForExit(graceMs);
    } catch {
      this.child.kill('SIGKILL');
      return this.exited;
    }
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

const live = new Set<TrackedProcess>();
const clients = new Set<BbyClient>();
const tempDirs = new Set<string>();
let startedInThisTest: TrackedProcess[] = [];
let currentDir: string | undefined;

// Safety net: never leave a node running after mocha exits.
process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

/** Stops every tracked process and removes every temp folder. */
export async function cleanup(): Promise<void> {
  for (const client of clients) client.close();
  clients.clear();
  targets.clear();
  await Promise.all([...live].map((p) => p.stop('SIGTERM')));
  await Promise.all([...tempDirs].map((dir) => rm(dir, { recursive: true, force: true })));
  tempDirs.clear();
  currentDir = undefined;
  startedInThisTest = [];
}

/** Registers the `afterEach` hook that cleans up (and prints process output when a test failed). */
export function useCleanup(): void {
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && startedInThisTest.length > 0) {
      const text = startedInThisTest.map((p) => p.describe()).join('\n');
      process.stderr.write(`\n--- processes of the failed test "${this.currentTest.title}" ---\n${text}\n---\n`);
    }
    await cleanup();
  });
}

// --- temp files and ports ---------------------------------------------------

/** A fresh temp folder, removed after the test. */
export async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bby-e2e-'));
  tempDirs.add(dir);
  return dir;
}

/** The temp folder of the current test, created on first use. */
export async function testDir(): Promise<string> {
  currentDir ??= await makeTempDir();
  return currentDir;
}

/** Writes a file (an object is written as JSON) into the test's temp folder; returns its path. */
export async function writeTestFile(name: string, content: unknown): Promise<string> {
  const path = join(await testDir(), name);
  await writeFile(path, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  return path;
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('cannot read the port of a probe server'));
        return;
      }
      server.close((error) => (error ? reject(error) : resolve(address.port)));
    });
  });
}

/** True when a server can listen on 127.0.0.1:port right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

// --- configs and nodes -------------------------------------------------------

/** A node config as written to disk. */
export interface ConfigSpec {
  readonly id: string;
  /** Default: a free port. */
  readonly port?: number;
  readonly peers?: readonly string[];
  /** File name in the test's temp folder; default `<id>.json`. */
  readonly file?: string;
  /** Written as "dataDir" when given: relative to the config file's folder (the test's temp folder), or absolute. */
  readonly dataDir?: string;
  /** Written as "fsync" when given; any JSON value, so that tests can write invalid ones. */
  readonly fsync?: unknown;
  /** Leave "id" out of the file, so that the node generates its id or reloads it from its dataDir; `id` then only names the file. */
  readonly omitId?: boolean;
  /** Written as "peerExchange" when given: false keeps the topology the test wires. */
  readonly peerExchange?: boolean;
  /** More fields written as they are ("secret", "tls", "host", ...). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A config file written to disk. */
export interface NodeConfigFile {
  readonly id: string;
  readonly port: number;
  /** `127.0.0.1:port`. */
  readonly address: string;
  readonly path: string;
  /** Absolute data folder, when the config has a "dataDir". */
  readonly dataDir?: string;
  /** True when the file has no "id": the node's id is whatever it announces. */
  readonly omitId?: boolean;
}

/** Writes a node config with a free port (unless given) into the test's temp folder. */
export async function writeConfig(spec: ConfigSpec): Promise<NodeConfigFile> {
  const port = spec.port ?? (await freePort());
  const content: Record<string, unknown> = { ...(spec.omitId ? {} : { id: spec.id }), port, peers: spec.peers ?? [] };
  if (spec.dataDir !== undefined) content.dataDir = spec.dataDir;
  if (spec.fsync !== undefined) content.fsync = spec.fsync;
  if (spec.peerExchange !== undefined) content.peerExchange = spec.peerExchange;
  Object.assign(content, spec.extra ?? {});
  const path = await writeTestFile(spec.file ?? `${spec.id}.json`, content);
  return {
    id: spec.id,
    port,
    address: `127.0.0.1:${port}`,
    path,
    ...(spec.dataDir === undefined ? {} : { dataDir: resolve(dirname(path), spec.dataDir) }),
    ...(spec.omitId ? { omitId: true } : {}),
  };
}

/** The config-file part of a config or of a running node's handle (to restart a node with the same config). */
export function configOf(file: NodeConfigFile): NodeConfigFile {
  return {
    id: file.id,
    port: file.port,
    address: file.address,
    path: file.path,
    ...(file.dataDir === undefined ? {} : { dataDir: file.dataDir }),
    ...(file.omitId ? { omitId: true } : {}),
  };
}

/** A running `bby-node`. */
export interface NodeHandle extends NodeConfigFile {
  readonly process: TrackedProcess;
  /** Runs `bby <config> ...args`. */
  bby(...args: string[]): Promise<CliResult>;
  /** Runs `bby --json <config> ...args`, expects exit 0 and parses stdout. */
  json<T = unknown>(...args: string[]): Promise<T>;
  /**
   * Sends one request with the in-process client library (the one the CLI uses),
   * over a connection kept for the test. For polling only: a CLI run costs a
   * process start, a request costs a millisecond, so waits stay cheap and do
   * not slow the nodes down; what a test asserts goes through the CLI.
   */
  query<T = unknown>(body: RequestBody): Promise<T>;
  /** Stops the node (SIGTERM). */
  stop(): Promise<ExitStatus>;
  /** Kills the node with SIGKILL (no clean-up at all) and waits until it has exited. */
  kill(): Promise<ExitStatus>;
}

/** Options of `startNode`. */
export interface StartNodeOptions {
  /** Extra arguments before the config path, such as `--repair`. */
  readonly args?: readonly string[];
}

/** Spawns `bby-node` with these arguments without waiting for anything. */
export function spawnNode(args: readonly string[], label = `bby-node ${args.join(' ')}`): TrackedProcess {
  return new TrackedProcess(label, process.execPath, [BBY_NODE_BIN, ...args]);
}

/** Connection targets (URL, TLS, secret) of the nodes started here, by address, for in-process clients. */
const targets = new Map<string, ConnectionTarget>();

/** How the CLI reaches the node of a config file: its TLS and secret included. */
export async function targetOf(path: string): Promise<ConnectionTarget> {
  return connectionTarget(await readConfigFile(path), path);
}

/**
 * Starts a `bby-node` and waits (bounded) for its `listening on ws://...` (or wss://) line.
 * Takes a config spec (written to a temp file with a free port) or a config file already written.
 */
export async function startNode(config: ConfigSpec | NodeConfigFile, options: StartNodeOptions = {}): Promise<NodeHandle> {
  const written = 'path' in config ? configOf(config) : await writeConfig(config);
  const args = options.args ?? [];
  const proc = spawnNode([...args, written.path], `bby-node ${[...args, ''].join(' ')}${written.id} (${written.address})`);
  const match = await proc.waitForOutput(/listening on wss?:\/\/(\S+) as node (\S+)/, NODE_START_TIMEOUT_MS);
  if (match[1] !== written.address || (!written.omitId && match[2] !== written.id)) {
    throw new Error(`${proc.label} announced ${match[0]}, expected ws://${written.address} as node ${written.omitId ? '(any id)' : written.id}`);
  }
  const target = await targetOf(written.path);
  targets.set(written.address, target);
  // Without "id" in the file, the node's id is the one it announced.
  const file: NodeConfigFile = written.omitId ? { ...written, id: match[2]! } : written;
  let client: BbyClient | undefined;
  const query = async <T>(body: RequestBody): Promise<T> => {
    if (client === undefined) {
      client = await BbyClient.connect(target, 5_000);
      clients.add(client);
    }
    try {
      return (await client.request(body)) as T;
    } catch (error) {
      // A lost connection is re-made by the next query.
      client.close();
      clients.delete(client);
      client = undefined;
      throw error;
    }
  };
  return {
    ...file,
    process: proc,
    query,
    bby: (...args) => runBby(file.path, ...args),
    json: async <T>(...args: string[]) => {
      const result = await runBby('--json', file.path, ...args);
      if (result.code !== 0) throw new Error(`bby --json ${file.id} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
      return JSON.parse(result.stdout) as T;
    },
    stop: () => proc.stop('SIGTERM'),
    kill: () => {
      if (proc.exitStatus === undefined) proc.child.kill('SIGKILL');
      return proc.exited;
    },
  };
}

/** Starts a node again with the config of `node` (which must have exited). */
export function restartNode(node: NodeConfigFile, options: StartNodeOptions = {}): Promise<NodeHandle> {
  return startNode(configOf(node), options);
}

/** Connects an in-process client to a node; the connection is closed after the test. */
export async function connectClient(address: string, timeoutMs = 5_000): Promise<BbyClient> {
  const client = await BbyClient.connect(targets.get(address) ?? `ws://${address}`, timeoutMs);
  clients.add(client);
  return client;
}

/** Starts several nodes, one after the other (configs are written first, so they can name each other's ports). */
export async function startNodes(files: readonly NodeConfigFile[]): Promise<NodeHandle[]> {
  const nodes: NodeHandle[] = [];
  for (const file of files) nodes.push(await startNode(file));
  return nodes;
}

// --- the CLI -----------------------------------------------------------------

/** Outcome of one process run to its end. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a script with `node` until it exits (bounded by `timeoutMs`, then killed and reported).
 * `launcher`, when given, is the command that runs `node` (such as `ip netns exec NS`, which execs it: same pid).
 */
export async function runToExit(script: string, args: readonly string[], timeoutMs = CLI_TIMEOUT_MS, launcher: readonly string[] = []): Promise<CliResult> {
  const name = script === BBY_BIN ? 'bby' : script === BBY_NODE_BIN ? 'bby-node' : script;
  const [command, ...commandArgs] = [...launcher, process.execPath, script, ...args] as [string, ...string[]];
  const label = `${launcher.length > 0 ? `${launcher.join(' ')} ` : ''}${name} ${args.map((a) => (a.length > 60 ? `${a.slice(0, 20)}...(${a.length} chars)` : a)).join(' ')}`;
  const proc = new TrackedProcess(label, command, commandArgs);
  const status = await proc.waitForExit(timeoutMs);
  // A short run reports through its result; only long-running processes are printed when a test fails.
  startedInThisTest = startedInThisTest.filter((p) => p !== proc);
  return { code: status.code, signal: status.signal, stdout: proc.stdout, stderr: proc.stderr };
}

/** Runs `bby` with exactly these arguments. */
export function runBbyArgs(args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return runToExit(BBY_BIN, args, timeoutMs);
}

/** Runs `bby <configPath> ...args` (options such as `--json` may come first: `runBby('--json', path, 'keys')`). */
export function runBby(configPath: string, ...args: string[]): Promise<CliResult> {
  return runBbyArgs([configPath, ...args]);
}

/** Runs `bby-node` with these arguments until it exits. */
export function runNodeToExit(args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return runToExit(BBY_NODE_BIN, args, timeoutMs);
}

/**
 * Polls the node (in-process client) until KEY holds `expected`, then checks
 * it once with `bby get KEY`, whose result is returned.
 */
export async function waitForValue(node: NodeHandle, key: string, expected: string, timeoutMs = 10_000): Promise<CliResult> {
  await waitFor(async () => (await node.query({ type: 'get', key })) === expected, { timeoutMs, what: `${key}=${expected} on node ${node.id}` });
  const result = await node.bby('get', key);
  if (result.code !== 0 || result.stdout !== `${expected}\n`) {
    throw new Error(`bby get ${key} on node ${node.id} printed ${JSON.stringify(result.stdout)} (exit ${result.code}), expected ${JSON.stringify(`${expected}\n`)}`);
  }
  return result;
}

/** The node's `stats`, as JSON (the protocol's type). */
export type NodeStats = Stats;

/** One row of `peers --json` (the protocol's type). */
export type PeerRow = PeerInfo;

/** Polls `peers` until every outbound target of the node is connected and every id in `ids` is a connected peer. */
export function waitForConnected(node: NodeHandle, ids: readonly string[], timeoutMs = 10_000): Promise<PeerRow[]> {
  return waitFor(
    async () => {
      const rows = await node.query<PeerRow[]>({ type: 'peers' });
      const connectedIds = new Set(rows.filter((r) => r.connected).map((r) => r.id));
      const allOutboundUp = rows.filter((r) => r.direction === 'outbound').every((r) => r.connected);
      return allOutboundUp && ids.every((id) => connectedIds.has(id)) ? rows : undefined;
    },
    { timeoutMs, what: `node ${node.id} to be connected to ${ids.join(', ')} on every configured link` },
  );
}

/** Runs async tasks with at most `limit` at a time (CLI runs are processes: do not start 20 at once on 2 cores). */
export async function inBatches<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// --- signals and extra config fields (resilience tests) ----------------------

/** Processes stopped with SIGSTOP through `signalProcess` and not continued since. */
const stoppedProcesses = new Set<TrackedProcess>();

/**
 * Sends a signal (SIGSTOP, SIGCONT, SIGKILL, ...) to a node's process if it is
 * still running; returns false when it had already exited. A process stopped
 * here is remembered until SIGCONT or SIGKILL, so that `continueStopped()` can
 * wake it: a stopped process ignores SIGTERM until it is continued.
 */
export function signalProcess(target: NodeHandle | TrackedProcess, signal: NodeJS.Signals): boolean {
  const proc = target instanceof TrackedProcess ? target : target.process;
  if (proc.exitStatus !== undefined) return false;
  const sent = proc.child.kill(signal);
  if (signal === 'SIGSTOP') stoppedProcesses.add(proc);
  else if (signal === 'SIGCONT' || signal === 'SIGKILL') stoppedProcesses.delete(proc);
  return sent;
}

/**
 * Sends SIGCONT to every process still stopped by `signalProcess`. Register it
 * in an `afterEach` before `useCleanup()` (hooks run in the order they are
 * registered), so that the clean-up's SIGTERM is not left pending.
 */
export function continueStopped(): void {
  for (const proc of stoppedProcesses) if (proc.exitStatus === undefined) proc.child.kill('SIGCONT');
  stoppedProcesses.clear();
}

/** Writes a config as `writeConfig` does, plus fields it has no option for (such as "antiEntropyIntervalMs"). */
export async function writeConfigWith(spec: ConfigSpec, extra: Readonly<Record<string, unknown>>): Promise<NodeConfigFile> {
  const { readFile } = await import('node:fs/promises');
  const file = await writeConfig(spec);
  const content = JSON.parse(await readFile(file.path, 'utf8')) as Record<string, unknown>;
  await writeFile(file.path, `${JSON.stringify({ ...content, ...extra }, null, 2)}\n`);
  return file;
}
