// Processes of the benchmark: bby-node and bare ws servers on free loopback
// ports, with temp configs. Every process started here is tracked and killed
// when the benchmark ends, even on an error or Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BBY_NODE_BIN = join(REPO_ROOT, 'packages', 'node', 'bin', 'bby-node.js');
export const BBY_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'bby.js');
export const BARE_SERVER = join(REPO_ROOT, 'bench', 'bare-server.js');

const live = new Set();

/** Kills every process still running (SIGKILL); used on exit. */
export function killAll() {
  for (const proc of live) {
    try {
      proc.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

process.once('exit', killAll);

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Checks `condition` until it is truthy (bounded); returns its value. */
export async function waitFor(condition, { timeoutMs = 10_000, intervalMs = 50, what = 'the condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await condition();
      lastError = undefined;
      if (last) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError.message}` : `; last value ${JSON.stringify(last)?.slice(0, 200)}`}`);
    }
    await sleep(intervalMs);
  }
}

/** A temp folder for configs and data, removed by `removeTempRoot`. */
let tempRoot; // a promise: nodes started at the same time share one root
export async function tempDir(name) {
  tempRoot ??= mkdtemp(join(tmpdir(), 'bby-bench-'));
  const dir = join(await tempRoot, name);
  await mkdir(dir, { recursive: true });
  return dir;
}
export async function removeTempRoot() {
  const root = tempRoot;
  tempRoot = undefined;
  if (root !== undefined) await rm(await root, { recursive: true, force: true });
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A child process whose output is kept (the last 64 KiB) and which is killed at exit. */
export class Proc {
  constructor(label, args, { execArgv = [] } = {}) {
    this.label = label;
    this.stdout = '';
    this.stderr = '';
    this.exitStatus = undefined;
    this.listeners = new Set();
    this.child = spawn(process.execPath, [...execArgv, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const keep = (text) => (text.length > 65536 ? text.slice(-65536) : text);
    this.child.stdout.setEncoding('utf8').on('data', (chunk) => {
      this.stdout = keep(this.stdout + chunk);
      this.notify();
    });
    this.child.stderr.setEncoding('utf8').on('data', (chunk) => {
      this.stderr = keep(this.stderr + chunk);
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        live.delete(this);
        this.notify();
        resolve(this.exitStatus);
      });
      this.child.once('error', (error) => {
        this.stderr += `[spawn error: ${error.message}]`;
        this.exitStatus ??= { code: null, signal: null };
        live.delete(this);
        this.notify();
        resolve(this.exitStatus);
      });
    });
    live.add(this);
  }

  get pid() {
    return this.child.pid;
  }

  notify() {
    for (const listener of [...this.listeners]) listener();
  }

  /** Resolves with the match (and the time it was seen) once stdout matches; fails if the process exits first. */
  waitForOutput(pattern, timeoutMs) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.stdout.match(pattern);
        if (match !== null) {
          done();
          resolve({ match, at: performance.now() });
        } else if (this.exitStatus !== undefined) {
          done();
          reject(new Error(`${this.label} exited before printing ${pattern}:\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label} did not print ${pattern} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  tail(lines = 20) {
    return [...this.stdout.split('\n'), ...this.stderr.split('\n').map((l) => (l ? `err| ${l}` : l))]
      .filter((l) => l !== '')
      .slice(-lines)
      .join('\n');
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000) {
    if (this.exitStatus !== undefined) return this.exitStatus;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Memory of the process from /proc: VmRSS and VmHWM (peak RSS), in bytes; undefined when not available. */
  memory() {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const field = (name) => {
        const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
        return match === null ? undefined : Number(match[1]) * 1024;
      };
      return { rss: field('VmRSS'), hwm: field('VmHWM') };
    } catch {
      return { rss: undefined, hwm: undefined };
    }
  }

  /** CPU time used so far (user + system), in milliseconds, from /proc. */
  cpuMs() {
    try {
      const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    } catch {
      return undefined;
    }
  }
}

/** Options of the processes started: CPU profiling of bby-node. */
export const processOptions = { profileDir: undefined, security: 'none' };

/**
 * How the bby nodes of a run are secured (`--security`): 'none'; 'secret',
 * every connection authenticates (docs/security.md); 'tls', a secret and
 * wss:// with certificates made by scripts/make-certs.sh. Bare servers stay
 * plain: the rows compare bby, secured, with the transport alone.
 */
const secured = new Map();
let securityMaterial; // a promise: nodes started at the same time share one secret and one CA

async function securityFor() {
  if (processOptions.security === 'none') return {};
  securityMaterial ??= (async () => {
    const secret = randomBytes(32).toString('hex');
    if (processOptions.security !== 'tls') return { secret };
    const dir = await tempDir('certs');
    execFileSync('bash', [join(REPO_ROOT, 'scripts', 'make-certs.sh'), dir, 'node:127.0.0.1'], { stdio: 'ignore' });
    return { secret, tls: { cert: join(dir, 'node.pem'), key: join(dir, 'node-key.pem'), ca: join(dir, 'ca.pem') } };
  })();
  return securityMaterial;
}

/** The secret and CA a client needs for a bby node's URL, or undefined for a plain one (a bare server). */
export function securityOf(url) {
  return secured.get(url);
}

/**
 * Writes a config and starts `bby-node`; resolves once it listens.
 * `spec`: { id, group?, port?, peers?: [address], dataDir?: bool, fsync?, peerExchange? (default false) }.
 */
export async function startBbyNode(spec) {
  const dir = await tempDir(spec.group ?? 'nodes');
  const port = spec.port ?? (await freePort());
  // The benchmark wires every topology itself: no peer exchange, which would turn a line into a mesh.
  const config = { id: spec.id, port, peers: spec.peers ?? [], peerExchange: spec.peerExchange ?? false };
  if (spec.dataDir) config.dataDir = join(dir, `${spec.id}-data`);
  if (spec.fsync) config.fsync = spec.fsync;
  const security = await securityFor();
  Object.assign(config, security);
  const path = join(dir, `${spec.id}.json`);
  await writeFile(path, JSON.stringify(config));
  const execArgv = processOptions.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${processOptions.profileDir}`, `--cpu-prof-name=${spec.id}-${Date.now()}.cpuprofile`] : [];
  const proc = new Proc(`bby-node ${spec.id}`, [BBY_NODE_BIN, path], { execArgv });
  const started = await proc.waitForOutput(/listening on wss?:\/\/(\S+) as node (\S+)/, 20_000);
  const url = `${security.tls === undefined ? 'ws' : 'wss'}://127.0.0.1:${port}`;
  if (security.secret !== undefined) secured.set(url, { secret: security.secret, ...(security.tls === undefined ? {} : { ca: readFileSync(security.tls.ca) }) });
  return { id: spec.id, port, address: `127.0.0.1:${port}`, url, configPath: path, proc, startedAt: started.at };
}

/** Starts a bare ws server (bench/bare-server.js); `forward` is the URL of the next hop, if any. */
export async function startBareServer({ id, forward } = {}) {
  const port = await freePort();
  const args = [BARE_SERVER, '--port', String(port), '--id', id];
  if (forward) args.push('--forward', forward);
  const proc = new Proc(`bare ${id}`, args);
  await proc.waitForOutput(/listening on ws:\/\/\S+/, 20_000);
  return { id, port, address: `127.0.0.1:${port}`, url: `ws://127.0.0.1:${port}`, proc };
}

/** Stops processes, all of them even if one fails. */
export async function stopAll(procs) {
  await Promise.allSettled(procs.filter(Boolean).map((p) => (p.proc ?? p).stop()));
}

/** Runs `bby` with arguments to its end (bounded); resolves with code, output and wall time in ms. */
export async function runBby(args, timeoutMs) {
  const started = performance.now();
  const proc = new Proc(`bby ${args.join(' ')}`, [BBY_BIN, ...args]);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  try {
    const status = await proc.exited;
    return { ...status, stdout: proc.stdout, stderr: proc.stderr, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}
