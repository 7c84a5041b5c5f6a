/**
 * The packages as a user gets them: `npm pack` of the four workspaces, then
 * `npm install --prefer-offline` of the tarballs into an empty project, where
 * - TypeScript consumers of @bby/core type-check under every module
 *   resolution a project may use (node10, node16, nodenext for CommonJS,
 *   bundler), with the repo's own `typescript`;
 * - the ESM and the CommonJS consumer run a two-node mesh in one process;
 * - `npx bby-node` and `npx bby` run from the installed bins, two nodes on
 *   free loopback ports, stopped (process group) even when the test fails.
 * Skips, saying why, only when npm cannot be run.
 *
 * Why --prefer-offline and not --offline: the repo's `npm ci` fills npm's
 * cache with the tarballs of the lock's versions, but not with the registry's
 * documents of those packages (packuments), which `npm install` needs to
 * resolve `ws@^8.18.0` in a project without a lock; --offline then fails
 * with ENOTCACHED. --prefer-offline takes every tarball from the cache and
 * asks the registry only for what the cache lacks (the documents of ws,
 * nanoid, bufferutil and node-gyp-build, a few kB).
 */
import { expect } from 'chai';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, REPO_ROOT, waitFor } from './support/processes.js';

const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const WORKSPACES = ['packages/core', 'packages/client', 'packages/node', 'packages/cli'];
/** npm pack (with prepack's incremental build) and npm install each take a few seconds; a cold machine, more. */
const NPM_TIMEOUT_MS = 60_000;

/** What `npm pack --json` says of one tarball. */
interface PackResult {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

function run(command: string, args: readonly string[], cwd: string, timeoutMs = NPM_TIMEOUT_MS): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1', npm_config_update_notifier: 'false' } });
  if (result.error !== undefined) throw new Error(`${command} ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `run`, without blocking the event loop, so that two can go at once. */
function runAsync(command: string, args: readonly string[], cwd: string, timeoutMs = NPM_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`${command} ${args.join(' ')} failed (${error.code ?? error.signal}):\n${stdout}\n${stderr}`));
    });
  });
}

const npmMissing = (() => {
  const probe = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  return probe.error !== undefined ? `npm cannot be run (${probe.error.message})` : probe.status !== 0 ? `npm --version exited with ${probe.status}` : undefined;
})();

/** The consumer programs: each runs (or only type-checks) a two-node mesh of @bby/core. */
const MESH = `
let nowMs = 0;
const network = createMemoryNetwork({ now: () => nowMs, random: () => 0.5 });
const a: BbyNode = network.addNode({ id: 'a' });
const b = network.addNode({ id: 'b', peers: ['a'] });
network.flush();
const stored: boolean = a.set('MonChamp', '42');
network.flush();
nowMs += 100;
const ready: Ready = a.takeReady();
console.log(\`\${stored} \${b.get('MonChamp')} \${ready.messages.length >= 0}\`);
`;
const CONSUMERS: Record<string, string> = {
  'esm.ts': `import { createMemoryNetwork, type BbyNode, type Ready } from '@bby/core';\n${MESH}`,
  'cjs.cts': `import { createMemoryNetwork, type BbyNode, type Ready } from '@bby/core';\n${MESH}`,
  'check.ts': `import { createMemoryNetwork, type BbyNode, type Ready } from '@bby/core';\n${MESH}\nexport {};\n`,
};
/** A tsconfig per module resolution: [file name, compiler options, files]. */
const TSCONFIGS: [string, Record<string, unknown>, string[]][] = [
  ['tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16', outDir: 'out' }, ['esm.ts']],
  ['tsconfig.nodenext-cjs.json', { module: 'nodenext', moduleResolution: 'nodenext', outDir: 'out' }, ['cjs.cts']],
  ['tsconfig.node10.json', { module: 'commonjs', moduleResolution: 'node10', noEmit: true }, ['check.ts']],
  ['tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler', noEmit: true }, ['check.ts']],
];

describe('npm pack and install', () => {
  let root: string;
  let project: string;
  let packed: PackResult[];
  const nodes: ChildProcess[] = [];

  before(async function () {
    if (npmMissing !== undefined) {
      console.log(`      skipped: ${npmMissing}`);
      this.skip();
    }
    this.timeout(3 * NPM_TIMEOUT_MS);
    root = await mkdtemp(join(tmpdir(), 'bby-pack-'));
    const tarballs = join(root, 'tarballs');
    project = join(root, 'project');
    await mkdir(tarballs);
    await mkdir(project);
    packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tarballs, ...WORKSPACES.flatMap((w) => ['-w', w])], REPO_ROOT)) as PackResult[];
    await writeFile(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', allowScripts: { bufferutil: true } }, null, 2)}\n`,
    );
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...packed.map((p) => join(tarballs, p.filename))], project);
  });

  after(async function () {
    this.timeout(10_000);
    await Promise.all(nodes.map(stopGroup));
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  it('packs each workspace with a README, engines and what it needs, and no tests', () => {
    expect(packed.map((p) => p.name)).to.deep.equal(['@bby/core', '@bby/client', '@bby/node', '@bby/cli']);
    for (const { name, files } of packed) {
      const paths = new Set(files.map((f) => f.path));
      expect(paths, name).to.include.keys('README.md', 'LICENSE', 'package.json', 'dist/src/index.js', 'dist/src/index.d.ts');
      expect([...paths].filter((path) => path.includes('/test/') || path.startsWith('test/') || path.endsWith('.tsbuildinfo')), `${name}: tests or build info`).to.deep.equal([]);
      const manifest = JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest.engines, name).to.deep.equal({ node: '>=20.19' });
      expect(manifest.types, name).to.equal('./dist/src/index.d.ts');
    }
  });

  it('ships the sources every source map points to', () => {
    for (const { name, files } of packed) {
      const paths = new Set(files.map((f) => f.path));
      const maps = [...paths].filter((path) => path.endsWith('.map'));
      expect(maps.length, name).to.be.greaterThan(0);
      for (const map of maps) {
        const { sources } = JSON.parse(readFileSync(join(project, 'node_modules', name, map), 'utf8')) as { sources: string[] };
        for (const source of sources) expect(paths, `${name}: ${map} points to ${source}`).to.include.keys(join(dirname(map), source));
      }
    }
  });

  it('type-checks TypeScript consumers of @bby/core under node10, node16, nodenext (CommonJS) and bundler resolution', async function () {
    this.timeout(60_000);
    for (const [file, text] of Object.entries(CONSUMERS)) await writeFile(join(project, file), text);
    for (const [file, options, files] of TSCONFIGS) {
      await writeFile(join(project, file), JSON.stringify({ compilerOptions: { target: 'es2022', strict: true, types: [], skipLibCheck: false, ...options }, files }));
    }
    // Two at a time (the machine may have two cores): each run takes a few seconds.
    for (let i = 0; i < TSCONFIGS.length; i += 2) {
      await Promise.all(TSCONFIGS.slice(i, i + 2).map(([file]) => runAsync(process.execPath, [TSC, '-p', file], project)));
    }
    expect(existsSync(join(project, 'out', 'esm.js'))).to.equal(true);
    expect(existsSync(join(project, 'out', 'cjs.cjs'))).to.equal(true);
  });

  it('runs a two-node mesh in one process from ESM (import) and from CommonJS (require)', () => {
    expect(readFileSync(join(project, 'out', 'cjs.cjs'), 'utf8')).to.match(/require\("@bby\/core"\)/);
    for (const program of ['esm.js', 'cjs.cjs']) {
      expect(run(process.execPath, [join('out', program)], project, 10_000).trim(), program).to.equal('true 42 true');
    }
  });

  it('runs bby-node and bby with npx from the installed bins', async function () {
    this.timeout(30_000);
    const [portA, portB] = [await freePort(), await freePort()];
    const configA = join(project, 'a.json');
    const configB = join(project, 'b.json');
    await writeFile(configA, JSON.stringify({ port: portA, id: 'nodeA' }));
    await writeFile(configB, JSON.stringify({ port: portB, id: 'nodeB', peers: [`127.0.0.1:${portA}`] }));
    const outputs = [configA, configB].map((config) => {
      const child = spawn('npx', ['--no', '--', 'bby-node', config], { cwd: project, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      nodes.push(child);
      const output = { text: '' };
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.text += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.text += chunk));
      return output;
    });
    await waitFor(() => outputs.every((o) => o.text.includes('listening on')), { what: 'both nodes listening', timeoutMs: 15_000 });
    const bby = (...args: string[]) => run('npx', ['--no', '--', 'bby', ...args], project, 15_000).trim();
    expect(bby(configA, 'set', 'MonChamp', '42')).to.equal('true');
    const value = await waitFor(() => (bby(configB, 'get', 'MonChamp') === '42' ? '42' : undefined), { what: 'MonChamp on node B', timeoutMs: 10_000, intervalMs: 200 });
    expect(value).to.equal('42');
    expect(bby(configB, 'set', 'MonChamp', '43')).to.equal('false');
    expect(run('npx', ['--no', '--', 'bby-node', '--help'], project, 15_000)).to.match(/^usage: bby-node/);
    expect(outputs.map((o) => o.text).join('')).not.to.match(/not built yet|Error:/);
  });
});

/** Stops a process started with `detached` (npx and the node it runs) by its group: SIGTERM, then SIGKILL after 3 s. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 3_000)));
  if ((await Promise.race([exited, late])) === 'late') {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  clearTimeout(timer);
}
