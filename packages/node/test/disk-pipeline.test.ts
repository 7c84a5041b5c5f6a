/**
 * The disk side of a node over an in-memory file system and a manual clock,
 * as a simulator drives it: no real timers, no real disk.
 */
import { expect } from 'chai';
import { type BbyNode, createNode, type Ready } from '@bby/core';
import { DISK_RETRY_INTERVAL_MS, DiskPipeline } from '../src/disk-pipeline.js';
import { Persistence } from '../src/persistence.js';
import { ManualScheduler } from './support/manual-scheduler.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { waitFor } from './support/wait.js';

const DIR = '/sim/a';

describe('DiskPipeline', () => {
  let fs: MemoryFileSystem;
  let scheduler: ManualScheduler;
  let core: BbyNode;
  let disk: DiskPipeline;
  let released: Ready[];
  let lines: string[];
  let ids: number;

  const open = async () => {
    const persistence = await Persistence.recover({ dir: DIR, fs, fsync: 'always', id: 'a', source: 'sim', scheduler, newId: () => `sim-${++ids}` });
    core = createNode({ id: 'a', now: () => 1_700_000_000_000 + scheduler.nowMs, random: () => 0.5, epoch: persistence.recovered.epoch, changes: persistence.recovered.changes });
    disk = new DiskPipeline(core, persistence, { hooks: { release: (ready) => released.push(ready), reading: () => undefined, wake: () => undefined, log: (_level, line) => lines.push(line) } });
    return persistence;
  };

  beforeEach(async () => {
    fs = new MemoryFileSystem();
    scheduler = new ManualScheduler();
    released = [];
    lines = [];
    ids = 0;
    expect((await open()).recovered.epoch, 'a new epoch from the injected source').to.equal('sim-1');
  });

  it('releases a batch once its changes are on the disk, and they are there after a restart', async () => {
    const client = core.accept();
    core.receive(client, JSON.stringify({ type: 'set', id: 1, key: 'k', value: 'v' }));
    disk.submit(core.takeReady());
    expect(released, 'not before the append is durable').to.deep.equal([]);
    await waitFor(() => released.length === 1, 'the batch to be released');
    expect(released[0]!.messages.map((send) => send.message)).to.deep.equal([{ type: 'reply', id: 1, result: true }]);
    expect(await disk.close()).to.deep.equal([]);
    const again = await open();
    expect(again.recovered.changes.map(({ entry }) => entry.key)).to.deep.equal(['k']);
    expect(again.recovered.epoch, 'kept: fsync "always", nothing repaired (epochRule)').to.equal('sim-1');
    await disk.close();
  });

  it('answers STORAGE_FAILED when the append fails, and takes writes again once a scheduled retry succeeds', async () => {
    const client = core.accept();
    fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
    core.receive(client, JSON.stringify({ type: 'set', id: 1, key: 'k', value: 'v' }));
    disk.submit(core.takeReady());
    await waitFor(() => released.length === 1, 'the unkept batch to be released');
    const [answer] = released[0]!.messages.map((send) => send.message);
    expect(answer).to.include({ type: 'error', id: 1, code: 'STORAGE_FAILED' });
    expect((answer as { message: string }).message).to.include('ENOSPC');
    expect(core.stats().writable).to.equal(false);
    expect(lines.some((line) => line.includes(`retrying every ${DISK_RETRY_INTERVAL_MS / 1000} s`))).to.equal(true);
    expect(scheduler.pending, 'the retry is on the injected scheduler').to.equal(1);

    delete fs.faults.failEvery;
    scheduler.advance(DISK_RETRY_INTERVAL_MS);
    await waitFor(() => core.stats().writable, 'the retry to bring the disk back');
    expect(scheduler.pending, 'no retry once the disk works').to.equal(0);
    expect(await disk.close()).to.deep.equal([]);
    const again = await open();
    expect(again.recovered.changes.map(({ entry }) => entry.key), 'the refused write was kept pending and written by the retry').to.deep.equal(['k']);
    await disk.close();
  });
});
