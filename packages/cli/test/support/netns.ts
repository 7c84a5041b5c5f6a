/**
 * Test support: a small network of Linux network namespaces on one bridge, so
 * that end-to-end tests run bby nodes as on separate machines (each its own
 * address, its own loopback, its own ports) and can cut one off the network
 * and bring it back.
 *
 * One network, for hosts 1..n (`tag` = this process's pid in base 36 and a
 * two-character counter: unique per run and per network, and short enough for
 * interface names, which Linux caps at 15 characters):
 *
 *     root namespace   bridge bb<tag>br, up, no address
 *                      veth   bb<tag>h<i>   host side, on the bridge   (cut: set down)
 *     namespace bbyt-<pid>-<counter>-<name>
 *                      veth   bb<tag>n<i>   10.A.B.<i>/24, up
 *                      lo     up (a node on "0.0.0.0" is reached by `bby` on 127.0.0.1)
 *
 * The /24 is picked among private candidates that no address or route of the
 * root namespace overlaps. The root namespace takes no part: the bridge has no
 * address, so the test process cannot reach the nodes; everything, `bby`
 * included, runs inside a namespace with `ip netns exec` (which execs the
 * command: the tracked pid is the node's own).
 *
 * Clean-up: `useNetworks()` registers an `afterEach` that destroys every
 * network made in the test, passed or failed: its processes first (SIGTERM,
 * then SIGKILL for any process still in a namespace), then the namespaces, the
 * veths, the bridge, and checks that none of its interfaces is left. The same
 * runs synchronously on process exit and on SIGINT, SIGTERM and SIGHUP.
 * Namespaces left by a run that was killed with SIGKILL (whose pid is gone)
 * are removed by the next run. Every `ip` run has a timeout,
 * every loop a bound.
 */
import { execFile, spawnSync } from 'node:child_process';
import { type CliResult, type ExitStatus, BBY_BIN, BBY_NODE_BIN, TrackedProcess, NODE_START_TIMEOUT_MS, CLI_TIMEOUT_MS, runToExit, waitFor } from './processes.js';

/** A failure of the namespace machinery (an `ip` run), with the command and what it printed. */
export class NetnsError extends Error {
  override readonly name = 'NetnsError';
}

// --- limits -------------------------------------------------------------------

/** How long one `ip` run may take, in milliseconds. */
const IP_TIMEOUT_MS = 5_000;
/** How long one `ip` run may take in the synchronous exit path, in milliseconds. */
const IP_SYNC_TIMEOUT_MS = 2_000;
/** Hosts in one network: the host index is one base-36 character of the interface names. */
export const MAX_HOSTS = 16;
/** Networks one process may make: the counter is two base-36 characters. */
const MAX_NETWORKS = 36 * 36;
/** Candidate /24s tried before giving up. */
const SUBNET_ATTEMPTS = 64;
/** How long the processes of a namespace get to exit once killed, and its interfaces to disappear, in milliseconds. */
const TEARDOWN_WAIT_MS = 3_000;
/** Stale namespaces (of dead runs) removed at most per start. */
const MAX_STALE_SWEPT = 64;

/** Prefix of every namespace this module makes: `bbyt-<pid>-<counter>-<host>`. */
const NAMESPACE_PREFIX = 'bbyt-';
/** Prefix of every interface this module makes. */
const INTERFACE_PREFIX = 'bb';
/** Host names: short and plain, since they go into namespace names. */
const HOST_NAME_PATTERN = /^[a-z][a-z0-9]{0,11}$/;

// --- running ip -------------------------------------------------------------------

/** Runs `ip ARGS` (bounded); resolves to its stdout, rejects with the command and its stderr. */
function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: IP_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new NetnsError(`\`ip ${args.join(' ')}\` failed: ${(stderr.trim() || error.message).split('\n')[0]}`));
    });
  });
}

/** Runs `ip ARGS` synchronously (exit and signal path); true when it succeeded. */
function ipSync(args: readonly string[]): boolean {
  return spawnSync('ip', args, { timeout: IP_SYNC_TIMEOUT_MS, stdio: 'ignore' }).status === 0;
}

/**
 * `ip ARGS` for a removal: an object already gone is not an error. A veth's
 * host end can vanish between the namespace's deletion and its own (the
 * kernel tears a namespace down in the background): "No such device".
 */
async function ipRemove(args: readonly string[]): Promise<string | undefined> {
  try {
    await ip(args);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    return /Cannot find device|No such device|No such file|does not exist|Invalid argument/i.test(message) ? undefined : message;
  }
}

/** Pids of the processes inside a namespace (none when it is gone). */
async function namespacePids(namespace: string): Promise<number[]> {
  try {
    return (await ip(['netns', 'pids', namespace])).split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
  } catch {
    return [];
  }
}

/** Names of the root namespace's interfaces that start with `prefix`. */
async function interfacesNamed(prefix: string): Promise<string[]> {
  const links = JSON.parse(await ip(['-j', 'link', 'show'])) as { ifname: string }[];
  return links.map((l) => l.ifname).filter((name) => name.startsWith(prefix));
}

// --- addresses --------------------------------------------------------------------

interface Prefix {
  readonly network: number;
  readonly bits: number;
}

const toInt = (dotted: string): number => dotted.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const mask = (bits: number): number => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);
const overlaps = (a: Prefix, b: Prefix): boolean => {
  const bits = Math.min(a.bits, b.bits);
  return ((a.network & mask(bits)) >>> 0) === ((b.network & mask(bits)) >>> 0);
};

/** Every IPv4 prefix the root namespace uses: its addresses and its routes (all tables), default routes aside. */
async function usedPrefixes(): Promise<Prefix[]> {
  const used: Prefix[] = [];
  const addresses = JSON.parse(await ip(['-j', '-4', 'addr', 'show'])) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
  for (const link of addresses) {
    for (const info of link.addr_info ?? []) if (info.local !== undefined) used.push({ network: toInt(info.local), bits: info.prefixlen ?? 32 });
  }
  const routes = JSON.parse(await ip(['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst?: string }[];
  for (const route of routes) {
    const match = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(route.dst ?? '');
    if (match !== null) used.push({ network: toInt(match[1]!), bits: match[2] === undefined ? 32 : Number(match[2]) });
  }
  return used;
}

/** A private /24 (as its first three octets, `10.A.B`) that nothing in the root namespace overlaps. */
async function pickSubnet(seed: number): Promise<string> {
  const used = await usedPrefixes();
  // Candidates: 10.200.0.0/24 to 10.255.255.0/24, starting from a place that depends on the run.
  const candidates = 56 * 256;
  for (let attempt = 0; attempt < SUBNET_ATTEMPTS; attempt++) {
    const k = (seed + attempt * 257) % candidates;
    const base = `10.${200 + Math.floor(k / 256)}.${k % 256}`;
    const candidate = { network: toInt(`${base}.0`), bits: 24 };
    if (!used.some((prefix) => overlaps(prefix, candidate))) return base;
  }
  throw new NetnsError(`no free private /24 among ${SUBNET_ATTEMPTS} candidates in 10.200.0.0/10; the root namespace uses ${used.length} prefixes`);
}

// --- the network ------------------------------------------------------------------

/** One host of a network: a namespace with one address on the bridge. */
export interface NetnsHost {
  /** The test's name for it, such as `a`. */
  readonly name: string;
  /** The network namespace (`ip netns exec NAMESPACE ...`). */
  readonly namespace: string;
  /** Its IPv4 address on the bridge (a /24 the module picked). */
  readonly address: string;
  /** The veth end on the bridge, in the root namespace: down while the host is cut off. */
  readonly bridgeVeth: string;
  /** The veth end inside the namespace, holding `address`. */
  readonly innerVeth: string;
}

const networks = new Set<Network>();
let networkCounter = 0;

/** A bridge and hosts on it; made by `createNetwork`, removed by `destroy()` (or `destroyNetworks()`). */
export class Network {
  readonly #hosts = new Map<string, NetnsHost>();
  /** What has been made so far, so that a half-made network is removed too. */
  readonly #namespaces: string[] = [];
  readonly #veths: string[] = [];
  #bridge: string | undefined;
  readonly #processes = new Set<TrackedProcess>();
  #destroyed: Promise<void> | undefined;

  /** @internal use `createNetwork`. */
  constructor(
    /** Prefix of every interface of this network (`bb<tag>`). */
    readonly interfacePrefix: string,
    /** Prefix of every namespace of this network. */
    readonly namespacePrefix: string,
    /** First three octets of the network's /24, such as `10.201.7`. */
    readonly subnet: string,
  ) {}

  /** The hosts, in the order they were asked for. */
  get hosts(): readonly NetnsHost[] {
    return [...this.#hosts.values()];
  }

  /** The host named `name`; throws when there is none. */
  host(name: string): NetnsHost {
    const host = this.#hosts.get(name);
    if (host === undefined) throw new NetnsError(`no host ${JSON.stringify(name)} in this network; its hosts are ${[...this.#hosts.keys()].join(', ')}`);
    return host;
  }

  /** Makes the bridge. */
  async addBridge(): Promise<void> {
    const bridge = `${this.interfacePrefix}br`;
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    this.#bridge = bridge;
    await ip(['link', 'set', bridge, 'up']);
  }

  /** Makes one host: a namespace, a veth pair from it to the bridge, its address, its links up. */
  async addHost(name: string): Promise<NetnsHost> {
    if (!HOST_NAME_PATTERN.test(name)) throw new NetnsError(`host name ${JSON.stringify(name)} must be 1 to 12 lowercase letters or digits, starting with a letter`);
    if (this.#hosts.has(name)) throw new NetnsError(`host ${JSON.stringify(name)} is already in this network`);
    if (this.#bridge === undefined) throw new NetnsError('addBridge() comes before addHost()');
    const index = this.#hosts.size + 1;
    if (index > MAX_HOSTS) throw new NetnsError(`a network holds at most ${MAX_HOSTS} hosts`);
    const host: NetnsHost = {
      name,
      namespace: `${this.namespacePrefix}${name}`,
      address: `${this.subnet}.${index}`,
      bridgeVeth: `${this.interfacePrefix}h${index.toString(36)}`,
      innerVeth: `${this.interfacePrefix}n${index.toString(36)}`,
    };
    // Taken before the first await, so that hosts can be added concurrently.
    this.#hosts.set(name, host);
    await ip(['netns', 'add', host.namespace]);
    this.#namespaces.push(host.namespace);
    await ip(['link', 'add', host.bridgeVeth, 'type', 'veth', 'peer', 'name', host.innerVeth]);
    this.#veths.push(host.bridgeVeth);
    await ip(['link', 'set', host.innerVeth, 'netns', host.namespace]);
    await ip(['link', 'set', host.bridgeVeth, 'master', this.#bridge]);
    await ip(['link', 'set', host.bridgeVeth, 'up']);
    await ip(['-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', host.innerVeth]);
    await ip(['-n', host.namespace, 'link', 'set', host.innerVeth, 'up']);
    await ip(['-n', host.namespace, 'link', 'set', 'lo', 'up']);
    return host;
  }

  /**
   * Starts `node SCRIPT ARGS` inside the host's namespace, tracked like every
   * test process (its output is printed when the test fails) and stopped when
   * the network is destroyed.
   */
  spawn(host: NetnsHost, label: string, script: string, args: readonly string[]): TrackedProcess {
    this.#checkUsable();
    const proc = new TrackedProcess(`[${host.name} ${host.address}] ${label}`, 'ip', ['netns', 'exec', host.namespace, process.execPath, script, ...args]);
    this.#processes.add(proc);
    void proc.exited.then(() => this.#processes.delete(proc));
    return proc;
  }

  /** Runs `node SCRIPT ARGS` inside the host's namespace until it exits (bounded by `timeoutMs`). */
  run(host: NetnsHost, script: string, args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
    this.#checkUsable();
    return runToExit(script, args, timeoutMs, ['ip', 'netns', 'exec', host.namespace]);
  }

  /** Cuts the host off the network: its veth end on the bridge goes down (its own end loses carrier). */
  async cut(host: NetnsHost): Promise<void> {
    this.#checkUsable();
    await ip(['link', 'set', host.bridgeVeth, 'down']);
  }

  /** Brings a cut host back, and waits (bounded) until its own end has carrier again. */
  async heal(host: NetnsHost): Promise<void> {
    this.#checkUsable();
    await ip(['link', 'set', host.bridgeVeth, 'up']);
    await waitFor(
      async () => {
        const [link] = JSON.parse(await ip(['-n', host.namespace, '-j', 'link', 'show', host.innerVeth])) as { operstate?: string }[];
        return link?.operstate === 'UP';
      },
      { timeoutMs: TEARDOWN_WAIT_MS, intervalMs: 20, what: `${host.innerVeth} in ${host.namespace} to be up after the heal` },
    );
  }

  /**
   * Removes everything the network made: its processes first (SIGTERM, then
   * SIGKILL for anything still inside a namespace), then the namespaces, the
   * veths and the bridge; then checks that none of its interfaces is left.
   * Runs once; later calls wait for the first.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#destroy();
    return this.#destroyed;
  }

  async #destroy(): Promise<void> {
    const problems: string[] = [];
    await Promise.all([...this.#processes].map((p) => p.stop('SIGTERM')));
    // Anything else in the namespaces (a `bby` run still going) was started here too.
    await waitFor(
      async () => {
        const pids = (await Promise.all(this.#namespaces.map(namespacePids))).flat();
        for (const pid of pids) killQuietly(pid, 'SIGKILL');
        return pids.length === 0;
      },
      { timeoutMs: TEARDOWN_WAIT_MS, intervalMs: 50, what: `the processes in ${this.namespacePrefix}* to exit` },
    ).catch((error: Error) => problems.push(error.message));
    for (const namespace of [...this.#namespaces].reverse()) {
      const problem = await ipRemove(['netns', 'delete', namespace]);
      if (problem !== undefined) problems.push(problem);
    }
    // Deleting one end of a veth deletes both; the inner end usually went with its namespace already.
    for (const veth of [...this.#veths].reverse()) {
      const problem = await ipRemove(['link', 'delete', veth]);
      if (problem !== undefined) problems.push(problem);
    }
    if (this.#bridge !== undefined) {
      const problem = await ipRemove(['link', 'delete', this.#bridge]);
      if (problem !== undefined) problems.push(problem);
    }
    await waitFor(async () => (await interfacesNamed(this.interfacePrefix)).length === 0, {
      timeoutMs: TEARDOWN_WAIT_MS,
      intervalMs: 50,
      what: `every interface named ${this.interfacePrefix}* to be gone`,
    }).catch((error: Error) => problems.push(error.message));
    networks.delete(this);
    if (problems.length > 0) throw new NetnsError(`removing network ${this.interfacePrefix} left problems:\n  ${problems.join('\n  ')}`);
  }

  /** The exit and signal path: kills, then removes, without waiting for anything but `ip`. */
  destroySync(): void {
    for (const proc of this.#processes) if (proc.exitStatus === undefined) proc.child.kill('SIGKILL');
    for (const namespace of this.#namespaces) {
      const listed = spawnSync('ip', ['netns', 'pids', namespace], { timeout: IP_SYNC_TIMEOUT_MS, encoding: 'utf8' });
      for (const line of (listed.stdout ?? '').split('\n')) if (/^\d+$/.test(line.trim())) killQuietly(Number(line), 'SIGKILL');
    }
    for (const namespace of [...this.#namespaces].reverse()) ipSync(['netns', 'delete', namespace]);
    for (const veth of [...this.#veths].reverse()) ipSync(['link', 'delete', veth]);
    if (this.#bridge !== undefined) ipSync(['link', 'delete', this.#bridge]);
    this.#destroyed ??= Promise.resolve();
    networks.delete(this);
  }

  #checkUsable(): void {
    if (this.#destroyed !== undefined) throw new NetnsError(`network ${this.interfacePrefix} has been destroyed`);
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Makes a bridge and one namespace per name, each with its own address on the
 * bridge. A failure half-way removes what was made, then throws.
 */
export async function createNetwork(hostNames: readonly string[]): Promise<Network> {
  if (hostNames.length === 0 || hostNames.length > MAX_HOSTS) throw new NetnsError(`a network has 1 to ${MAX_HOSTS} hosts, got ${hostNames.length}`);
  if (networkCounter >= MAX_NETWORKS) throw new NetnsError(`this process has made ${MAX_NETWORKS} networks already`);
  installExitHooks();
  await sweepStaleNamespaces();
  const counter = networkCounter++;
  const tag = `${process.pid.toString(36)}${counter.toString(36).padStart(2, '0')}`;
  const subnet = await pickSubnet(process.pid * 31 + counter);
  const network = new Network(`${INTERFACE_PREFIX}${tag}`, `${NAMESPACE_PREFIX}${process.pid}-${counter}-`, subnet);
  networks.add(network);
  try {
    await network.addBridge();
    // Hosts are independent once the bridge exists: made side by side (each `ip` run is a process start).
    // All settled before a failure is acted on: the clean-up must not race a host still being made.
    const results = await Promise.allSettled(hostNames.map((name) => network.addHost(name)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await network.destroy().catch(() => undefined);
    throw error;
  }
  return network;
}

/** Destroys every network not destroyed yet; throws the first failure after trying them all. */
export async function destroyNetworks(): Promise<void> {
  const results = await Promise.allSettled([...networks].map((n) => n.destroy()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** Removes the namespaces of earlier runs of this module whose process is gone (killed with SIGKILL: no clean-up ran). */
async function sweepStaleNamespaces(): Promise<void> {
  const listed = (await ip(['netns', 'list'])).split('\n').map((line) => line.split(' ')[0] ?? '');
  let swept = 0;
  for (const namespace of listed) {
    const match = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-(\\d+)-`).exec(namespace);
    if (match === null || swept >= MAX_STALE_SWEPT) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    swept++;
    // Its processes are the dead run's; the namespace's interfaces go with it, its bridge and veths are named after the dead run.
    for (const stalePid of await namespacePids(namespace)) killQuietly(stalePid, 'SIGKILL');
    await ipRemove(['netns', 'delete', namespace]);
    const prefix = `${INTERFACE_PREFIX}${pid.toString(36)}${Number(match[2]).toString(36).padStart(2, '0')}`;
    for (const name of await interfacesNamed(prefix)) await ipRemove(['link', 'delete', name]);
    console.log(`      (removed namespace ${namespace} and interfaces ${prefix}*, left by process ${pid}, which is gone)`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let exitHooksInstalled = false;

/** On exit and on SIGINT/SIGTERM/SIGHUP, removes every network left, synchronously. */
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  const destroyAll = () => {
    for (const network of [...networks]) network.destroySync();
  };
  process.once('exit', destroyAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      destroyAll();
      // Ours was the only handler: let the signal do what it does by default.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

// --- availability -------------------------------------------------------------------

let availability: Promise<string | undefined> | undefined;

/**
 * Why namespaces cannot be used here (not Linux, not root, no `ip`, or a probe
 * network cannot be made), or undefined when they can. Probed once per process.
 */
export function netnsUnavailableReason(): Promise<string | undefined> {
  availability ??= (async () => {
    if (process.platform !== 'linux') return `network namespaces need Linux; this is ${process.platform}`;
    const uid = process.getuid?.();
    if (uid !== 0) return `network namespaces need root; this runs as uid ${uid}`;
    try {
      await ip(['-V']);
    } catch (error) {
      return `the ip command (iproute2) cannot be run: ${(error as Error).message}`;
    }
    try {
      const probe = await createNetwork(['probe']);
      await probe.destroy();
    } catch (error) {
      return `cannot make a network namespace on a bridge: ${(error as Error).message}`;
    }
    return undefined;
  })();
  return availability;
}

/**
 * For a `describe`: skips its tests, with the reason printed, where namespaces
 * cannot be made; destroys after each test every network it made. Call it
 * after `useCleanup()`, so that the tracked processes are stopped first.
 */
export function useNetworks(): void {
  before(async function () {
    const reason = await netnsUnavailableReason();
    if (reason !== undefined) {
      console.log(`      skipped: ${reason}`);
      this.skip();
    }
  });
  afterEach(destroyNetworks);
}

// --- bby in a namespace ---------------------------------------------------------------

/** A `bby-node` running inside a namespace. */
export interface NetnsNode {
  readonly id: string;
  readonly host: NetnsHost;
  /** The config file (absolute path). */
  readonly configPath: string;
  /** The URL the node printed in its `listening on` line. */
  readonly listeningOn: string;
  readonly process: TrackedProcess;
  /** Runs `bby [options] <config> COMMAND ARGS` inside the node's namespace; options such as `--json` go first. */
  bby(...args: string[]): Promise<CliResult>;
  /** Stops the node (SIGTERM). */
  stop(): Promise<ExitStatus>;
}

/** Starts `bby-node CONFIG` inside the host's namespace and waits (bounded) for its `listening on` line naming `id`. */
export async function startNodeIn(network: Network, host: NetnsHost, configPath: string, id: string): Promise<NetnsNode> {
  const proc = network.spawn(host, `bby-node ${id}`, BBY_NODE_BIN, [configPath]);
  const match = await proc.waitForOutput(/listening on (wss?:\/\/\S+) as node (\S+)/, NODE_START_TIMEOUT_MS);
  if (match[2] !== id) throw new Error(`${proc.label} announced ${match[0]}, expected node ${id}`);
  return {
    id,
    host,
    configPath,
    listeningOn: match[1]!,
    process: proc,
    bby: (...args) => runBbyIn(network, host, bbyArgs(configPath, args)),
    stop: () => proc.stop('SIGTERM'),
  };
}

/** Options (`--json`, `--timeout MS`) stay before the config path. */
function bbyArgs(configPath: string, args: readonly string[]): string[] {
  let options = 0;
  while (options < args.length && args[options]!.startsWith('--')) options += args[options] === '--timeout' ? 2 : 1;
  return [...args.slice(0, options), configPath, ...args.slice(options)];
}

/** Runs `bby ARGS` (exactly these) inside the host's namespace. */
export function runBbyIn(network: Network, host: NetnsHost, args: readonly string[], timeoutMs = CLI_TIMEOUT_MS): Promise<CliResult> {
  return network.run(host, BBY_BIN, args, timeoutMs);
}

// --- certificates (TEST-ONLY) ---------------------------------------------------------

