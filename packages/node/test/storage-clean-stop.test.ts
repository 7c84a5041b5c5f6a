/**
 * Stopping a node whose disk failed: Persistence.close() never throws, says
 * what it could not save in one line each, and always releases the LOCK.
 */
import { expect } from 'chai';
import { type Change } from '@bby/core';
import { Persistence } from '../src/persistence.js';
import { StorageFailure } from '../src/storage/engine.js';
import { readMeta } from '../src/storage/meta.js';
import { tempDataFolder, type TempDataFolder } from './support/data-folder.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { rejection } from './support/rejection.js';

const change = (seq: number): Change => ({ entry: { key: `k${seq}`, value: `v${seq}`, timestamp: 1_700_000_000_000 + seq, origin: 'node-a' }, seq });

describe('stopping after disk trouble', () => {
  let folder: TempDataFolder;

  beforeEach(async () => {
    folder = await tempDataFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  it('after a failed node.json write, close resolves with one line saying what is not saved, and releases the LOCK', async () => {
    const fs = new MemoryFileSystem();
    const persistence = await Persistence.open(folder.config(), folder.source, { fs });
    expect(await folder.locked()).to.equal(true);
    fs.faults.failEvery = { kind: ['openAppend', 'append'], code: 'ENOSPC' };
    await rejection(persistence.updatePeers({ added: ['10.0.0.2:7000'] }));
    const problems = await persistence.close();
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include('node.json').and.include('no space left on device (ENOSPC)').and.not.include('\n');
    expect(await folder.locked()).to.equal(false);
    // The folder can be used again at once.
    fs.faults = {};
    const again = await Persistence.open(folder.config(), folder.source, { fs });
    expect(again.recovered.addedPeers).to.deep.equal([]);
    expect(await again.close()).to.deep.equal([]);
  });

  it('after a failed append, close resolves with one line per problem, keeps what was acknowledged, and releases the LOCK', async () => {
    const fs = new MemoryFileSystem();
    const persistence = await Persistence.open(folder.config(), folder.source, { fs });
    await persistence.append([change(1)]);
    fs.faults.failEvery = { kind: 'sync', code: 'EIO' };
    expect(await rejection(persistence.append([change(2)]))).to.be.instanceOf(StorageFailure);
    expect(persistence.storage!.failure).to.include({ code: 'EIO' });
    expect(await persistence.retry()).to.equal(false);
    const problems = await persistence.close();
    expect(problems).to.have.length(1);
    expect(problems[0]).to.match(/^1 refused record \(\d+ bytes\) could not be written and are lost: .* input\/output error \(EIO\)/);
    expect(await folder.locked()).to.equal(false);
    fs.faults = {};
    const again = await Persistence.open(folder.config(), folder.source, { fs });
    expect(again.recovered.changes).to.deep.equal([change(1)]);
    await again.close();
  });

  it('once the disk works again, close writes the refused changes and unsaved cursors, and has nothing to say', async () => {
    const fs = new MemoryFileSystem();
    const persistence = await Persistence.open(folder.config(), folder.source, { fs });
    fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
    await rejection(persistence.append([change(1), change(2)]));
    persistence.saveCursors({ 'node-b': { epoch: 'e1', seq: 7 } });
    fs.faults = {};
    expect(await persistence.close()).to.deep.equal([]);
    expect(await persistence.close()).to.deep.equal([]);
    expect(await folder.locked()).to.equal(false);
    expect((await readMeta(fs, folder.dataDir))!.cursors).to.deep.equal({ 'node-b': { epoch: 'e1', seq: 7 } });
    const again = await Persistence.open(folder.config(), folder.source, { fs });
    expect(again.recovered.changes).to.deep.equal([change(1), change(2)]);
    await again.close();
  });

  it('tells a listener when the storage fails and when a retry brings it back', async () => {
    const fs = new MemoryFileSystem();
    const persistence = await Persistence.open(folder.config(), folder.source, { fs });
    const told: (string | null)[] = [];
    persistence.onStorageStateChange((failure) => told.push(failure?.code ?? null));
    fs.faults.failEvery = { kind: 'append', code: 'EDQUOT' };
    await rejection(persistence.append([change(1)]));
    fs.faults = {};
    expect(await persistence.retry()).to.equal(true);
    expect(told).to.deep.equal(['EDQUOT', null]);
    await persistence.append([change(2)]);
    await persistence.close();
  });
});
