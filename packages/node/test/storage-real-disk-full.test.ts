/**
 * One test on a real full file system, not a simulated one: a tmpfs of
 * 512 KiB, mounted for the test (root only), filled with a filler file.
 * It shows what the in-memory tests assume of Linux: a write to a full disk
 * fails with ENOSPC (possibly after writing part of the data), truncating
 * needs no free space, and freeing space lets the same open file be written
 * again. Skipped, saying why, when not root or when mount fails.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { type Change, parseConfig } from '@bby/core';
import { DataDirError, Persistence } from '../src/persistence.js';
import { StorageFailure } from '../src/storage/engine.js';
import { rejection } from './support/rejection.js';

const run = promisify(execFile);

/** About 3 KB per record: a write to a full disk is likely to stop inside one. */
const change = (seq: number): Change => ({ entry: { key: `key-${seq}`, value: `${seq} `.padEnd(3000, 'x'), timestamp: 1_700_000_000_000 + seq, origin: 'full' }, seq });

/** Writes `path` until the disk is full. */
async function fillUp(path: string): Promise<void> {
  const file = await open(path, 'a');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let i = 0; i < 1000; i++) await file.write(chunk);
    throw new Error('the disk never filled up');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await file.close();
  }
}

describe('a real full disk (tmpfs of 512 KiB, root only)', function () {
  this.timeout(30_000);
  let root: string;
  let mounted = false;
  const opened: Persistence[] = [];

  beforeEach(async function () {
    root = await mkdtemp(join(tmpdir(), 'bby-full-disk-'));
    const skip = async (reason: string) => {
      console.log(`      skipped: ${reason}`);
      await rm(root, { recursive: true, force: true });
      this.skip();
    };
    if (process.getuid?.() !== 0) return skip(`mounting a tmpfs needs root, and this runs as uid ${process.getuid?.()}`);
    try {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', root]);
      mounted = true;
    } catch (error) {
      return skip(`mount -t tmpfs failed: ${((error as { stderr?: string }).stderr || (error as Error).message).trim()}`);
    }
  });

  afterEach(async () => {
    // Whatever happened: files closed, LOCK released, then the tmpfs goes.
    for (const persistence of opened.splice(0)) await persistence.close();
    if (mounted) {
      await run('umount', [root]).catch(() => run('umount', ['-l', root]));
      mounted = false;
    }
    await rm(root, { recursive: true, force: true });
  });

  it('refuses to start in one line, refuses writes with ENOSPC, takes them again once space is freed, and loses nothing', async () => {
    const source = join(root, 'node-config.json');
    const dataDir = join(root, 'data');
    const filler = join(root, 'filler');
    const config = parseConfig(JSON.stringify({ port: 7000, id: 'full', dataDir: 'data' }), source);

    // A fresh node on a full disk: one line, no LOCK left.
    await fillUp(filler);
    const refusedStart = await rejection(Persistence.open(config, source));
    expect(refusedStart).to.be.instanceOf(DataDirError).and.include({ code: 'ENOSPC' });
    expect(refusedStart.message).to.include(dataDir).and.include('no space left on device').and.not.include('\n');
    expect(await readdir(dataDir).catch(() => [])).to.deep.equal([]);
    await rm(filler);

    // Room again: the node starts and writes until the disk is full once more.
    const persistence = await Persistence.open(config, source);
    opened.push(persistence);
    const acked: Change[] = [];
    for (let seq = 1; seq <= 20; seq++) {
      await persistence.append([change(seq)]);
      acked.push(change(seq));
    }
    await fillUp(filler);
    const refused: Change[] = [];
    let failure: Error | undefined;
    for (let seq = 21; seq < 200 && failure === undefined; seq++) {
      // The log's last page may still have room for a record or two.
      try {
        await persistence.append([change(seq)]);
        acked.push(change(seq));
      } catch (error) {
        failure = error as Error;
        refused.push(change(seq));
      }
    }
    expect(failure).to.be.instanceOf(StorageFailure).and.include({ code: 'ENOSPC' });
    expect(failure!.message).to.include(dataDir).and.include('no space left on device').and.not.include('\n');
    expect(persistence.storage!.failure).to.equal(failure);
    // While failed: refused at once, kept in order.
    for (let seq = 200; seq < 205; seq++) {
      expect(await rejection(persistence.append([change(seq)]))).to.equal(failure);
      refused.push(change(seq));
    }
    expect(await persistence.retry()).to.equal(false);

    // Space freed: a retry writes what was refused, and writes are taken again.
    await rm(filler);
    expect(await persistence.retry()).to.equal(true);
    expect(persistence.storage!.failure).to.equal(null);
    await persistence.append([change(300)]);
    expect(await persistence.close()).to.deep.equal([]);

    // Everything is there, in order, and the log is clean.
    const again = await Persistence.open(config, source);
    opened.push(again);
    expect(again.recovered.notes).to.deep.equal([]);
    expect(again.recovered.changes).to.deep.equal([...acked, ...refused, change(300)]);
  });
});
