/**
 * node.json writes of a running node: peers added and removed at run time
 * are coalesced (one write in flight, every change made meanwhile in the one
 * write after it), and a failed write keeps the change for the next one.
 */
import { expect } from 'chai';
import { Persistence } from '../src/persistence.js';
import { StorageFailure } from '../src/storage/engine.js';
import { readMeta } from '../src/storage/meta.js';
import { tempDataFolder, type TempDataFolder } from './support/data-folder.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { rejection } from './support/rejection.js';

const address = (i: number) => `10.0.${Math.floor(i / 250)}.${i % 250}:7000`;

describe('node.json writes for peers added and removed at run time', () => {
  let folder: TempDataFolder;
  let fs: MemoryFileSystem;
  let persistence: Persistence | undefined;

  beforeEach(async () => {
    folder = await tempDataFolder();
    fs = new MemoryFileSystem();
    persistence = await Persistence.open(folder.config(), folder.source, { fs });
  });

  afterEach(async () => {
    await persistence?.close();
    persistence = undefined;
    await folder.remove();
  });

  /** node.json writes so far: each ends with the rename of node.json.tmp (the storage renames nothing else here). */
  const writes = () => fs.counts.rename;
  const saved = async () => (await readMeta(fs.crash(), folder.dataDir))!;

  it('a hundred updatePeers calls in one tick make one write that holds them all', async () => {
    const before = writes();
    const addresses = Array.from({ length: 100 }, (_, i) => address(i));
    await Promise.all(addresses.map((a) => persistence!.updatePeers({ added: [a] })));
    expect(writes() - before).to.equal(1);
    expect((await saved()).peers).to.deep.equal(addresses);
  });

  it('changes made while a write is in flight all go into the one write after it', async () => {
    const before = writes();
    const calls: Promise<void>[] = [];
    let started = false;
    fs.onOperation = (kind) => {
      // The first write has begun: everything asked now must wait for, and share, the next one.
      if (kind !== 'openAppend' || started) return;
      started = true;
      queueMicrotask(() => {
        for (let i = 1; i < 60; i++) calls.push(persistence!.updatePeers({ added: [address(i)] }));
      });
    };
    calls.push(persistence!.updatePeers({ added: [address(0)] }));
    await Promise.all(calls);
    await Promise.all(calls);
    fs.onOperation = null;
    expect(started).to.equal(true);
    expect(calls).to.have.length(60);
    expect(writes() - before).to.equal(2);
    expect((await saved()).peers).to.deep.equal(Array.from({ length: 60 }, (_, i) => address(i)));
  });

  it('removes peers, and a reopened folder gives the peers left, in the order they were added', async () => {
    await persistence!.updatePeers({ added: [address(1), address(2), address(3)] });
    await persistence!.updatePeers({ removed: [address(2), address(9)] });
    await persistence!.updatePeers({ added: [address(4)], removed: [address(1)] });
    // Both in one call: removed.
    await persistence!.updatePeers({ added: [address(5)], removed: [address(5)] });
    expect((await saved()).peers).to.deep.equal([address(3), address(4)]);
    expect(await persistence!.close()).to.deep.equal([]);
    persistence = await Persistence.open(folder.config(), folder.source, { fs });
    expect(persistence.recovered.addedPeers).to.deep.equal([address(3), address(4)]);
  });

  it('a call that changes nothing writes nothing', async () => {
    await persistence!.updatePeers({ added: [address(1)] });
    const before = writes();
    await persistence!.updatePeers({ added: [address(1)], removed: [address(7)] });
    await persistence!.updatePeers({ added: [address(1)] });
    expect(writes()).to.equal(before);
  });

  it('a failed write rejects with a one-line StorageFailure; the change is kept and saved by the next write', async () => {
    fs.faults.failEvery = { kind: 'openAppend', code: 'EMFILE' };
    const error = await rejection(persistence!.updatePeers({ added: [address(1)] }));
    expect(error).to.be.instanceOf(StorageFailure).and.include({ code: 'EMFILE' });
    expect(error.message).to.include('node.json').and.include(folder.dataDir).and.include('too many open files').and.include('ulimit -n');
    expect(error.message).not.to.include('\n');
    expect((await saved()).peers).to.deep.equal([]);
    fs.faults = {};
    await persistence!.updatePeers({ added: [address(2)] });
    expect((await saved()).peers).to.deep.equal([address(1), address(2)]);
  });

  it('a change whose write failed on a full disk is saved by retry() once the disk works', async () => {
    fs.faults.diskBytes = fs.usedBytes() + 10;
    expect(await rejection(persistence!.updatePeers({ added: [address(1)] }))).to.include({ code: 'ENOSPC' });
    // The failed write freed what it had written.
    expect(fs.names(folder.dataDir)).not.to.include('node.json.tmp');
    delete fs.faults.diskBytes;
    expect(await persistence!.retry()).to.equal(true);
    expect((await saved()).peers).to.deep.equal([address(1)]);
  });
});
