/**
 * End to end: bby-node refuses what it cannot use at start with one line that
 * names the path and the fix (never a stack trace, never a hang), a stop
 * signal ends it whatever it is doing, its command line errors are one line,
 * and `pgrep -f 'bby-node CONFIG'` finds it.
 *
 * A full disk at start is tested in e2e-disk-full.test.ts. The cases that need
 * root (a read-only mount, another user, chattr +i) are skipped, saying why,
 * when they cannot run; every mount is undone, even when a test fails.
 */
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { BBY_NODE_BIN, inBatches, runNodeToExit, runToExit, spawnNode, startNode, type TrackedProcess, useCleanup, waitFor, writeConfig } from './support/processes.js';

const run = promisify(execFile);
const log = (line: string) => console.log(`      ${line}`);

/** What a refused start must look like: exit 1, one line, naming the path, no stack trace. */
function expectOneLineRefusal(result: { code: number | null; stdout: string; stderr: string }, path: string, says: RegExp, what: string): void {
  expect(result.code, `${what}: exit code\n${result.stderr}`).to.equal(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, `${what}: one line\n${result.stderr}`).to.have.length(1);
  expect(lines[0], what).to.match(/^bby-node: /).and.include(path).and.match(says);
  expect(result.stderr, `${what}: no stack`).not.to.match(/^\s+at /m);
  expect(result.stdout, `${what}: stdout`).not.to.match(/listening on/);
}

describe('e2e: bby-node at start', function () {
  this.timeout(60_000);
  useCleanup();

  describe('a dataDir it cannot use', () => {
    it('a file, a folder under a file, a folder under /proc or /sys: exit 1 at once, in one line naming the path and the fix', async () => {
      const marker = await writeConfig({ id: 'marker' });
      const dir = join(marker.path, '..');
      await writeFile(join(dir, 'a-file'), 'not a folder\n');
      const cases = [
        { what: 'a file', dataDir: 'a-file', path: join(dir, 'a-file'), says: /is a file, not a folder .*set "dataDir" to a folder, or move that file away$/ },
        { what: 'under a file (ENOTDIR)', dataDir: 'a-file/data', path: join(dir, 'a-file', 'data'), says: /a-file is a file, not a folder; set "dataDir" to a folder/ },
        // Node's recursive mkdir loops for ever there, at full CPU: the run would time out.
        { what: 'under /proc', dataDir: '/proc/bby-e2e/data', path: '/proc/bby-e2e/data', says: /is on \/proc, a kernel file system .*: set "dataDir" to a folder on a disk$/ },
        { what: 'under /sys', dataDir: '/sys/bby-e2e', path: '/sys/bby-e2e', says: /is on \/sys, a kernel file system .*: set "dataDir" to a folder on a disk$/ },
      ];
      const configs = await Promise.all(cases.map((c, i) => writeConfig({ id: `bad-dir-${i}`, dataDir: c.dataDir })));
      const started = Date.now();
      const results = await inBatches(configs, 2, (config) => runNodeToExit([config.path], 10_000));
      cases.forEach((c, i) => {
        expectOneLineRefusal(results[i]!, c.path, c.says, c.what);
      });
      expect(Date.now() - started, 'at once').to.be.below(8_000);
    });

    describe('as root: a read-only mount (EROFS), another user (EACCES), chattr +i (EPERM)', () => {
      const mounts: string[] = [];
      const folders: string[] = [];

      beforeEach(function () {
        if (process.getuid?.() !== 0) {
          log(`skipped: these need root (mount, setpriv, chattr), and this runs as uid ${process.getuid?.()}`);
          this.skip();
        }
      });

      // Registered after useCleanup's hook: the nodes are stopped first. Folders outside the test's temp folder, which useCleanup removes.
      afterEach(async () => {
        for (const point of mounts.splice(0)) await run('umount', [point]).catch(() => run('umount', ['-l', point]));
        for (const folder of folders.splice(0)) {
          await run('chattr', ['-R', '-i', folder]).catch(() => undefined);
          await rm(folder, { recursive: true, force: true });
        }
      });

      async function folder(): Promise<string> {
        const dir = await mkdtemp(join(tmpdir(), 'bby-e2e-start-'));
        folders.push(dir);
        return dir;
      }

      it('a read-only tmpfs: one line naming the LOCK and "remount that file system read-write"', async function () {
        const point = await folder();
        try {
          await run('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', point]);
        } catch (error) {
          log(`skipped: mount -t tmpfs -o ro failed: ${((error as { stderr?: string }).stderr || (error as Error).message).trim()}`);
          this.skip();
        }
        mounts.push(point);
        const config = await writeConfig({ id: 'read-only', dataDir: point });
        expectOneLineRefusal(await runNodeToExit([config.path], 10_000), join(point, 'LOCK'), /read-only file system \(EROFS\); remount that file system read-write$/, 'EROFS');
      });

      it("a folder the user running the node may not write: one line naming the LOCK and \"fix the folder's owner or permissions\"", async function () {
        // A folder and a config that user nobody can read but not write, outside /root (which nobody cannot enter).
        const dir = await folder();
        await chmod(dir, 0o755);
        await mkdir(join(dir, 'data'), { mode: 0o755 });
        try {
          await run('setpriv', ['--version']);
        } catch {
          log('skipped: no setpriv on this machine');
          return this.skip();
        }
        // The node listens before it opens its data folder: a free port, taken from a config the helper writes.
        const { port } = await writeConfig({ id: 'port-probe' });
        const config = join(dir, 'node.json');
        await writeFile(config, JSON.stringify({ id: 'not-mine', port, dataDir: 'data' }));
        await chmod(config, 0o644);
        const result = await runToExit(BBY_NODE_BIN, [config], 10_000, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
        if (!result.stderr.startsWith('bby-node: ')) {
          log(`skipped: user nobody cannot run bby-node from here: ${result.stderr.trim().split('\n')[0]}`);
          return this.skip();
        }
        expectOneLineRefusal(result, join(dir, 'data', 'LOCK'), /permission denied \(EACCES\); fix the folder's owner or permissions$/, 'EACCES');
      });

      it('an immutable folder (chattr +i): one line naming the LOCK and "fix the folder\'s owner or permissions"', async function () {
        const dir = await folder();
        await mkdir(join(dir, 'data'));
        try {
          await run('chattr', ['+i', join(dir, 'data')]);
        } catch (error) {
          log(`skipped: chattr +i failed (the file system of ${tmpdir()} may not support it): ${((error as { stderr?: string }).stderr || (error as Error).message).trim()}`);
          return this.skip();
        }
        const config = await writeConfig({ id: 'immutable', dataDir: join(dir, 'data') });
        expectOneLineRefusal(await runNodeToExit([config.path], 10_000), join(dir, 'data', 'LOCK'), /operation not permitted \(EPERM\); fix the folder's owner or permissions$/, 'EPERM');
      });
    });
  });

  describe('stop signals', () => {
    /** A config whose node.json is a FIFO: the node takes its LOCK, then waits in open() until someone writes the FIFO. */
    async function stuckNode(id: string): Promise<{ node: TrackedProcess; fifo: string } | undefined> {
      const config = await writeConfig({ id, dataDir: `${id}-data` });
      await mkdir(config.dataDir!);
      const fifo = join(config.dataDir!, 'node.json');
      try {
        await run('mkfifo', [fifo]);
      } catch (error) {
        log(`skipped: mkfifo failed: ${(error as Error).message}`);
        return undefined;
      }
      const node = spawnNode([config.path]);
      // The LOCK is taken before node.json is read: once it is there, the load is under way.
      await waitFor(() => access(join(config.dataDir!, 'LOCK')).then(() => true, () => false), { what: 'the LOCK of the starting node' });
      return { node, fifo };
    }

    it('SIGTERM ends a node stuck while it loads (on a FIFO nobody writes) within the stop deadline, saying so', async function () {
      const stuck = await stuckNode('stuck');
      if (stuck === undefined) return this.skip();
      const { node } = stuck;
      const sent = Date.now();
      node.child.kill('SIGTERM');
      const status = await node.waitForExit(10_000);
      const tookMs = Date.now() - sent;
      log(`stuck node ended ${tookMs} ms after SIGTERM (${status.signal ?? `code ${status.code}`})`);
      expect(tookMs).to.be.within(4_000, 9_000);
      // A thread stuck in open() of the FIFO holds process.exit for ever: only SIGKILL ends the process.
      expect(status.signal ?? status.code).to.be.oneOf(['SIGKILL', 1]);
      expect(node.stdout).to.match(/info stopping \(SIGTERM\)/);
      expect(node.stderr).to.match(/warn not stopped 5 s after SIGTERM \(still starting: a disk that does not answer\?\); ending now/);
      expect(node.stderr).not.to.match(/^\s+at /m);
    });

    it('SIGTERM while it loads, the load ends: a clean stop, exit 0', async function () {
      const stuck = await stuckNode('early-stop');
      if (stuck === undefined) return this.skip();
      const { node, fifo } = stuck;
      node.child.kill('SIGTERM');
      await node.waitForOutput(/info stopping \(SIGTERM\)/, 5_000);
      // Unblock the load: node.json arrives through the FIFO.
      await writeFile(fifo, JSON.stringify({ id: 'early-stop', peers: [] }));
      const status = await node.waitForExit(10_000);
      expect(status, node.describe()).to.deep.equal({ code: 0, signal: null });
    });
  });

  describe('the command line', () => {
    it('an unknown option or a missing config: exit 2 with one line naming it and a pointer to --help, no help text', async () => {
      const cases = [
        { args: ['--bogus', 'node.json'], says: 'bby-node: unknown option "--bogus" (bby-node --help says more)' },
        { args: ['-x'], says: 'bby-node: unknown option "-x" (bby-node --help says more)' },
        { args: [], says: 'bby-node: the config file is missing (bby-node --help says more)' },
        { args: ['a.json', 'b.json'], says: 'bby-node: expected one config file, got 2: "a.json" "b.json" (bby-node --help says more)' },
      ];
      const results = await inBatches(cases, 2, (c) => runNodeToExit(c.args, 10_000));
      cases.forEach((c, i) => {
        expect(results[i], c.args.join(' ')).to.include({ code: 2, stdout: '', stderr: `${c.says}\n` });
      });
    });

    it("is found by pgrep -f 'bby-node CONFIG', as the docs say, however it was started", async function () {
      try {
        await run('pgrep', ['--version']);
      } catch {
        log('skipped: no pgrep on this machine');
        return this.skip();
      }
      const node = await startNode({ id: 'titled' });
      // The test starts it as `node .../bin/bby-node.js /tmp/.../titled.json`; the docs' pattern still matches.
      const { stdout } = await waitFor(() => run('pgrep', ['-f', `bby-node ${node.path}`]).catch(() => undefined), { what: 'pgrep to find the node' });
      expect(stdout.trim().split('\n')).to.deep.equal([String(node.process.pid)]);
      const { stdout: shown } = await run('ps', ['-o', 'args=', '-p', String(node.process.pid)]);
      expect(shown.trim()).to.equal(`bby-node ${node.path}`);
    });
  });
});
