/**
 * End to end on a real full disk: a bby-node whose data folder is on a small
 * tmpfs (mounted for the test, root only) keeps running when the disk fills:
 * writes are refused with one clear line, reads are answered, and it takes
 * writes again on its own once space is freed, having lost nothing it
 * acknowledged. A clean stop releases its LOCK; a start on a full disk fails
 * with one line. Skipped, saying why, when not root or when mount fails.
 */
import { execFile } from 'node:child_process';
import { access, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { restartNode, runNodeToExit, startNode, useCleanup, waitFor, writeConfig, type NodeStats } from './support/processes.js';

const run = promisify(execFile);
const log = (line: string) => console.log(`      ${line}`);

/** Writes `path` until the disk is full; returns how many bytes it wrote. */
async function fillUp(path: string): Promise<number> {
  const file = await open(path, 'a');
  const chunk = Buffer.alloc(16 * 1024, 1);
  let written = 0;
  try {
    for (let i = 0; i < 10_000; i++) written += (await file.write(chunk)).bytesWritten;
    throw new Error('the disk never filled up');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    return written;
  } finally {
    await file.close();
  }
}

describe('e2e: a real full disk (tmpfs, root only)', function () {
  this.timeout(60_000);
  let mountPoint: string | undefined;
  useCleanup();

  beforeEach(async function () {
    const skip = (reason: string) => {
      console.log(`      skipped: ${reason}`);
      this.skip();
    };
    if (process.getuid?.() !== 0) return skip(`mounting a tmpfs needs root, and this runs as uid ${process.getuid?.()}`);
    // Outside the test's temp folder: useCleanup removes that one before this suite unmounts.
    const dir = await mkdtemp(join(tmpdir(), 'bby-e2e-disk-'));
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
      mountPoint = dir;
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      return skip(`mount -t tmpfs failed: ${((error as { stderr?: string }).stderr || (error as Error).message).trim()}`);
    }
  });

  // Registered after useCleanup's hook, so it runs after the nodes are stopped.
  afterEach(async () => {
    if (mountPoint === undefined) return;
    await run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint!]));
    await rm(mountPoint, { recursive: true, force: true });
    mountPoint = undefined;
  });

  it('refuses writes in one line while the disk is full, answers reads, and takes writes again once space is freed', async () => {
    const config = await writeConfig({ id: 'full', dataDir: join(mountPoint!, 'data') });
    const node = await startNode(config);
    expect((await node.bby('set', 'before', 'kept')).stdout).to.equal('true\n');
    const filler = join(mountPoint!, 'filler');
    log(`filled the disk with ${await fillUp(filler)} bytes`);

    const refused = await node.bby('set', 'during', 'x'.repeat(20_000));
    expect(refused.code).to.equal(2);
    expect(refused.stderr.trim().split('\n')).to.have.length(1);
    expect(refused.stderr).to.match(/STORAGE_FAILED/).and.to.match(/no space left on device/);
    expect((await node.bby('get', 'before')).stdout).to.equal('kept\n');
    const stats = await node.json<NodeStats>('stats');
    expect(stats.writable).to.equal(false);
    expect(node.process.stderr).to.match(/writes are refused until it works again/);

    await rm(filler);
    await waitFor(async () => (await node.query<NodeStats>({ type: 'stats' })).writable, { what: 'the node to find space again', timeoutMs: 15_000 });
    expect((await node.bby('set', 'after', 'v')).stdout).to.equal('true\n');

    // A clean stop: exit 0, one line at most about the data folder, LOCK released; everything acknowledged is back.
    const stopped = await node.stop();
    expect(stopped.code).to.equal(0);
    await access(join(mountPoint!, 'data', 'LOCK')).then(
      () => expect.fail('LOCK left behind'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    );
    const again = await restartNode(config);
    expect((await again.bby('get', 'before')).stdout).to.equal('kept\n');
    expect((await again.bby('get', 'after')).stdout).to.equal('v\n');
  });

  it('stops cleanly while the disk is still full, and a start on a full disk fails with one line', async () => {
    const config = await writeConfig({ id: 'full-stop', dataDir: join(mountPoint!, 'data') });
    const node = await startNode(config);
    await fillUp(join(mountPoint!, 'filler'));
    expect((await node.bby('set', 'during', 'x'.repeat(20_000))).code).to.equal(2);
    const stopped = await node.stop();
    expect(stopped.code).to.equal(0);
    expect(node.process.stderr).to.not.match(/\n\s+at /);
    await access(join(mountPoint!, 'data', 'LOCK')).then(
      () => expect.fail('LOCK left behind'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    );
    const fresh = await writeConfig({ id: 'fresh', dataDir: join(mountPoint!, 'fresh-data'), file: 'fresh.json' });
    const start = await runNodeToExit([fresh.path]);
    log(`a fresh node on the full disk said: ${start.stderr.trim()}`);
    expect(start.code).to.equal(1);
    expect(start.stderr.trim().split('\n')).to.have.length(1);
    expect(start.stderr).to.match(/no space left on device/);
  });
});
