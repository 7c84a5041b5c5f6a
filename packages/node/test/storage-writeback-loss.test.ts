/**
 * Linux after a failed fsync ("fsyncgate"): the pages it could not write are
 * marked clean, reads still see them, and no later fsync writes them. A start
 * whose fsync of the new log failed left the log's magic in that state; the
 * next start read the log from the page cache, took it as whole and appended
 * to it, its fsyncs succeeded, and after a crash the log read as zeros at
 * byte 0: damaged, the node refused to start for ever. Found by the simulator
 * (@bby/sim, SEED=187 SIM_FAULTS=writebackLoss=1).
 */
import { expect } from 'chai';
import { BACKGROUND_SYNC_INTERVAL_MS, Storage, StorageFailure } from '../src/storage/engine.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { ManualScheduler } from './support/manual-scheduler.js';
import { rejection } from './support/rejection.js';
import { waitFor } from './support/wait.js';

const DIR = '/data';
const written = { key: 'k', value: 'v', timestamp: 1_700_000_000_000, origin: 'node-a', seq: 1 };

/** A file system whose first `failures` fsyncs fail and lose their writeback; every later one succeeds. */
function failingFirstSyncs(failures: number): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  let syncs = 0;
  fs.faults.random = { random: () => (syncs++ < failures ? 0 : 0.99), syncFailure: 0.5, loseWriteback: true };
  return fs;
}

describe('a failed fsync that loses its writeback (Linux)', () => {
  it('a start after a start whose fsync of the new log failed keeps the acknowledged writes through a crash', async () => {
    const fs = failingFirstSyncs(1);
    expect(await rejection(Storage.open({ dir: DIR, fs }))).to.be.instanceOf(StorageFailure);
    const { storage } = await Storage.open({ dir: DIR, fs });
    await storage.append([written]);
    const { storage: after, recovery } = await Storage.open({ dir: DIR, fs: fs.crash() });
    await after.close();
    expect(recovery.entries).to.deep.equal([written]);
    await storage.close();
  });

  it('a failed fsync with nothing to write, then a failed fsync of a batch and a retry, keep every acknowledged write through a crash', async () => {
    // SEED=242 SIM_FAULTS=writebackLoss=1: the start's fsync of the reused log fails (nothing to write), later a batch's.
    const fs0 = new MemoryFileSystem();
    const { storage: before } = await Storage.open({ dir: DIR, fs: fs0 });
    await before.append([{ ...written, key: 'a' }]);
    const fs = fs0.crash();
    let failNext = 1;
    fs.faults.random = { random: () => (failNext-- > 0 ? 0 : 0.99), syncFailure: 0.5, loseWriteback: true };
    expect(await rejection(Storage.open({ dir: DIR, fs }))).to.be.instanceOf(StorageFailure);
    const { storage } = await Storage.open({ dir: DIR, fs });
    await storage.append([{ ...written, key: 'b' }]);
    failNext = 1;
    expect(await rejection(storage.append([{ ...written, key: 'c' }]))).to.be.instanceOf(StorageFailure);
    expect(await storage.retry()).to.equal(true);
    await storage.append([{ ...written, key: 'd' }]);
    const { storage: after, recovery } = await Storage.open({ dir: DIR, fs: fs.crash() });
    await after.close();
    expect(recovery.entries.map((entry) => entry.key)).to.deep.equal(['a', 'b', 'c', 'd']);
    await storage.close();
    await before.close();
  });

  it('under "everysec", a failed background fsync then a retry keep the writes acknowledged before it through a crash', async () => {
    const fs = new MemoryFileSystem();
    const scheduler = new ManualScheduler();
    const { storage } = await Storage.open({ dir: DIR, fs, fsync: 'everysec', scheduler });
    await storage.append([{ ...written, key: 'a' }]);
    let failNext = 1;
    fs.faults.random = { random: () => (failNext-- > 0 ? 0 : 0.99), syncFailure: 0.5, loseWriteback: true };
    scheduler.advance(BACKGROUND_SYNC_INTERVAL_MS);
    await waitFor(() => storage.failure !== null, 'the failed background fsync');
    expect(await storage.retry()).to.equal(true);
    await storage.append([{ ...written, key: 'b' }]);
    await storage.close();
    const { storage: after, recovery } = await Storage.open({ dir: DIR, fs: fs.crash() });
    await after.close();
    expect(recovery.entries.map((entry) => entry.key)).to.deep.equal(['a', 'b']);
  });

  it('under "everysec", a stop while the disk still fails cuts the log back to its last good fsync, reports the bytes, and the next start opens', async () => {
    const fs = new MemoryFileSystem();
    const scheduler = new ManualScheduler();
    const { storage } = await Storage.open({ dir: DIR, fs, fsync: 'everysec', scheduler });
    await storage.append([{ ...written, key: 'a' }]);
    fs.faults.random = { random: () => 0, syncFailure: 0.5, loseWriteback: true };
    scheduler.advance(BACKGROUND_SYNC_INTERVAL_MS);
    await waitFor(() => storage.failure !== null, 'the failed background fsync');
    const problems = await storage.close();
    expect(problems.join('\n')).to.match(/bytes of records acknowledged under fsync "everysec" since the last good fsync could not be written again/);
    // The same boot: the page cache no longer holds the bytes that were never written.
    fs.faults = {};
    const { storage: again, recovery } = await Storage.open({ dir: DIR, fs });
    await again.append([{ ...written, key: 'b' }]);
    await again.close();
    const { storage: after, recovery: afterCrash } = await Storage.open({ dir: DIR, fs: fs.crash() });
    await after.close();
    expect(recovery.entries).to.deep.equal([]);
    expect(afterCrash.entries.map((entry) => entry.key)).to.deep.equal(['b']);
  });
});
