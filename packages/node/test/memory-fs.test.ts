/**
 * The seeded faults of the in-memory file system (src/storage/memory-fs.ts),
 * which the simulator (@bby/sim) puts under the real Storage: a torn write, a
 * failed fsync, a full disk, a bit flipped on read, and simulated time.
 * The deterministic faults (failAt, failEvery, crashAt, tearLastAppend) are
 * tested with the storage engine (storage-engine.test.ts).
 */
import { expect } from 'chai';
import { seededRandom } from '@bby/core';
import { CorruptionError, Storage } from '../src/storage/engine.js';
import { MemoryFileSystem } from '../src/internal.js';
import { rejection } from './support/rejection.js';

/** A source that returns the given values in turn. */
const draws = (...values: number[]) => () => values.shift() ?? 0;

async function fileWith(fs: MemoryFileSystem, synced: string, unsynced: string) {
  await fs.mkdir('/d');
  const file = await fs.openAppend('/d/f');
  await file.append(Buffer.from(synced));
  await file.sync();
  await fs.syncDir('/d');
  await file.append(Buffer.from(unsynced));
  return file;
}

describe('memory file system: seeded faults', () => {
  it('a torn write: a crash keeps a drawn prefix of the unsynced bytes, none to all', async () => {
    const fs = new MemoryFileSystem();
    await fileWith(fs, 'kept', '0123456789');
    expect(fs.crash({ tornWrites: draws(0) }).peek('/d/f')!.toString()).to.equal('kept');
    expect(fs.crash({ tornWrites: draws(0.5) }).peek('/d/f')!.toString()).to.equal('kept01234');
    expect(fs.crash({ tornWrites: draws(0.999) }).peek('/d/f')!.toString()).to.equal('kept0123456789');
    // Without tornWrites only synced bytes survive, as before.
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('kept');
  });

  it('a failed fsync: EIO, nothing durable, and a later sync writes it all', async () => {
    const fs = new MemoryFileSystem();
    const file = await fileWith(fs, 'ok ', 'late');
    fs.faults.random = { random: draws(0), syncFailure: 0.5 };
    expect(await rejection(file.sync())).to.have.property('code', 'EIO');
    expect(fs.struck.syncFailure).to.equal(1);
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('ok ');
    fs.faults = {};
    await file.sync();
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('ok late');
  });

  it('a failed fsync with loseWriteback (Linux): the bytes it should have written never reach the disk, even after a later sync', async () => {
    const fs = new MemoryFileSystem();
    const file = await fileWith(fs, 'ok ', 'lost');
    fs.faults.random = { random: draws(0), syncFailure: 0.5, loseWriteback: true };
    expect(await rejection(file.sync())).to.have.property('code', 'EIO');
    // Reads still see the page cache.
    expect(fs.peek('/d/f')!.toString()).to.equal('ok lost');
    fs.faults.random = { random: draws(0.9), syncFailure: 0.5, loseWriteback: true };
    await file.append(Buffer.from(' later'));
    await file.sync();
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('ok \0\0\0\0 later');
  });

  it('a failed fsync is healed by cutting the bytes off and writing them again (what Storage.retry does)', async () => {
    const fs = new MemoryFileSystem();
    const file = await fileWith(fs, 'ok ', 'lost');
    fs.faults.random = { random: draws(0), syncFailure: 0.5, loseWriteback: true };
    expect(await rejection(file.sync())).to.have.property('code', 'EIO');
    fs.faults = {};
    await file.truncate(3);
    await file.append(Buffer.from('again'));
    await file.sync();
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('ok again');
  });

  it('a full disk: diskBytes at usedBytes() makes the next append write nothing and fail with ENOSPC, until space is freed', async () => {
    const fs = new MemoryFileSystem();
    const file = await fileWith(fs, 'abc', '');
    fs.faults.diskBytes = fs.usedBytes();
    expect(await rejection(file.append(Buffer.from('x')))).to.have.property('code', 'ENOSPC');
    expect(fs.peek('/d/f')!.toString()).to.equal('abc');
    delete fs.faults.diskBytes;
    await file.append(Buffer.from('x'));
    expect(fs.peek('/d/f')!.toString()).to.equal('abcx');
  });

  it('a bit flipped on read: one bit of what is returned, never of what is stored', async () => {
    const fs = new MemoryFileSystem();
    await fileWith(fs, 'abcd', '');
    fs.faults.random = { random: draws(0, 0.25 + 1 / 64), readBitFlip: 0.5 };
    const read = Buffer.from((await fs.read('/d/f'))!);
    // The second draw picks bit 8 of 32: the lowest bit of byte 1 ('b', 0x62, becomes 'c', 0x63).
    expect(read.toString()).to.equal('accd');
    expect(fs.peek('/d/f')!.toString()).to.equal('abcd');
    fs.faults.random = { random: draws(0.9), readBitFlip: 0.5 };
    expect(Buffer.from((await fs.read('/d/f'))!).toString()).to.equal('abcd');
  });

  it('under the Storage: a flipped bit at start is damage (CorruptionError), and a read without it recovers every entry', async () => {
    const fs = new MemoryFileSystem();
    const entries = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, timestamp: 1_700_000_000_000 + i, origin: 'a' }));
    const { storage } = await Storage.open({ dir: '/data', fs });
    await storage.append(entries);
    await storage.close();
    const after = fs.crash();
    after.faults.random = { random: seededRandom(1), readBitFlip: 1 };
    expect(await rejection(Storage.open({ dir: '/data', fs: after }))).to.be.instanceOf(CorruptionError);
    after.faults = {};
    const { storage: reopened, recovery } = await Storage.open({ dir: '/data', fs: after });
    await reopened.close();
    expect(recovery.entries).to.have.length(20);
  });

  it('wait: every operation waits for it first (simulated time)', async () => {
    const fs = new MemoryFileSystem();
    const waited: string[] = [];
    let release = () => {};
    fs.wait = (kind) => {
      waited.push(kind);
      return kind === 'mkdir' ? new Promise((resolve) => (release = resolve)) : Promise.resolve();
    };
    let done = false;
    const made = fs.mkdir('/d').then(() => (done = true));
    await Promise.resolve();
    expect(done).to.equal(false);
    expect(fs.operations).to.equal(0);
    release();
    await made;
    expect(fs.operations).to.equal(1);
    await fs.list('/d');
    expect(waited).to.deep.equal(['mkdir', 'list']);
    // No promise: no wait.
    fs.wait = () => undefined;
    await fs.list('/d');
    expect(fs.operations).to.equal(3);
  });
});
