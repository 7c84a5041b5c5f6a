import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { type Entry } from '@bby/core';
import { BACKGROUND_SYNC_INTERVAL_MS, CorruptionError, Storage, StorageFailure, type StorageOptions } from '../src/storage/engine.js';
import { LOCK_FILE, LockedError, lockDataDir } from '../src/storage/lock.js';
import { META_FILE, type NodeMeta, readMeta, writeMeta } from '../src/storage/meta.js';
import { encodeRecord, LOG_MAGIC, RECORD_HEADER_BYTES, SNAPSHOT_MAGIC } from '../src/storage/record.js';
import { ManualScheduler } from './support/manual-scheduler.js';
import { Crash, MemoryFileSystem } from '../src/storage/memory-fs.js';
import { rejection } from './support/rejection.js';
import { waitFor } from './support/wait.js';

const DIR = '/data';
const LOG0 = `${DIR}/log-00000000.bby`;

const entry = (i: number, origin = 'node-a'): Entry => ({ key: `key-${String(i).padStart(4, '0')}`, value: `value ${i} ✓`, timestamp: 1_700_000_000_000 + i, origin });
const range = (from: number, to: number): Entry[] => Array.from({ length: to - from }, (_, i) => entry(from + i));
const sorted = (entries: readonly Entry[]): Entry[] => [...entries].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.origin < b.origin ? -1 : 1));

async function open(fs: MemoryFileSystem, options: Partial<StorageOptions> = {}) {
  return Storage.open({ dir: DIR, fs, ...options });
}

/** Entries a fresh open of `fs` recovers (the storage is closed again). */
async function recovered(fs: MemoryFileSystem): Promise<Entry[]> {
  const { storage, recovery } = await open(fs);
  await storage.close();
  return recovery.entries;
}

/** Opens a storage and appends `count` entries one by one. */
async function filled(count: number, options: Partial<StorageOptions> = {}) {
  const fs = new MemoryFileSystem();
  const { storage } = await open(fs, options);
  const acked: Entry[] = [];
  for (const e of range(0, count)) {
    await storage.append([e]);
    acked.push(e);
  }
  return { fs, storage, acked };
}

describe('memory file system (test support)', () => {
  it('keeps only synced bytes of durable names at a crash', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const a = await fs.openAppend('/d/a');
    await a.append(Buffer.from('synced'));
    await a.sync();
    await fs.syncDir('/d');
    await a.append(Buffer.from(' lost'));
    const b = await fs.openAppend('/d/b');
    await b.append(Buffer.from('b'));
    await b.sync();
    expect(fs.names('/d')).to.deep.equal(['a', 'b']);
    const after = fs.crash();
    expect(after.names('/d')).to.deep.equal(['a']);
    expect(after.peek('/d/a')!.toString()).to.equal('synced');
    // crash() leaves the live file system alone.
    expect(fs.peek('/d/a')!.toString()).to.equal('synced lost');
  });

  it('undoes renames and removals not followed by syncDir', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    for (const name of ['x', 'y']) {
      const f = await fs.openAppend(`/d/${name}`);
      await f.append(Buffer.from(name));
      await f.sync();
    }
    await fs.syncDir('/d');
    await fs.rename('/d/x', '/d/y');
    await fs.remove('/d/nothing');
    expect(fs.names('/d')).to.deep.equal(['y']);
    expect(fs.crash().names('/d')).to.deep.equal(['x', 'y']);
    expect(fs.crash().peek('/d/y')!.toString()).to.equal('y');
    await fs.syncDir('/d');
    expect(fs.crash().names('/d')).to.deep.equal(['y']);
    expect(fs.crash().peek('/d/y')!.toString()).to.equal('x');
  });

  it('injects faults, crash points and torn appends', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir('/d');
    const f = await fs.openAppend('/d/f');
    await f.append(Buffer.from('abc'));
    await f.sync();
    await fs.syncDir('/d');
    fs.faults.failEvery = { kind: 'sync', code: 'ENOSPC' };
    expect(await rejection(f.sync())).to.have.property('code', 'ENOSPC');
    fs.faults = { failAt: { op: fs.operations + 1, code: 'EIO' } };
    expect(await rejection(f.append(Buffer.from('x')))).to.have.property('code', 'EIO');
    await f.append(Buffer.from('defgh'));
    expect(fs.crash({ tearLastAppend: 2 }).peek('/d/f')!.toString()).to.equal('abcde');
    fs.faults.crashAt = fs.operations + 2;
    await f.append(Buffer.from('!'));
    expect(await rejection(f.sync())).to.be.instanceOf(Crash);
    expect(await rejection(fs.list('/d'))).to.be.instanceOf(Crash);
    expect(fs.crash().peek('/d/f')!.toString()).to.equal('abc');
  });
});

describe('storage engine', () => {
  describe('appends', () => {
    it('survive close and reopen, in order', async () => {
      const { fs, storage, acked } = await filled(20);
      await storage.append([entry(100), entry(101), entry(102)]);
      await storage.close();
      const { storage: again, recovery } = await open(fs);
      expect(recovery.entries).to.deep.equal([...acked, entry(100), entry(101), entry(102)]);
      expect(recovery.notes).to.deep.equal([]);
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
      await again.append([entry(200)]);
      await again.close();
      expect(await recovered(fs)).to.deep.equal([...acked, entry(100), entry(101), entry(102), entry(200)]);
    });

    it('a log of 300,000 records (more than a spread call takes) reopens whole', async function () {
      this.timeout(30_000);
      const fs = new MemoryFileSystem();
      const { storage } = await open(fs, { fsync: 'no' });
      const all = range(0, 300_000);
      for (let i = 0; i < all.length; i += 10_000) await storage.append(all.slice(i, i + 10_000));
      await storage.close();
      const entries = await recovered(fs);
      expect(entries).to.have.length(300_000);
      expect(entries.at(-1)).to.deep.equal(all.at(-1));
    });

    it('with fsync "always", every append that resolved survives a crash', async () => {
      const fs = new MemoryFileSystem();
      const { storage } = await open(fs, { fsync: 'always' });
      const acked: Entry[] = [];
      for (const e of range(0, 10)) {
        await storage.append([e]);
        acked.push(e);
        expect(await recovered(fs.crash())).to.deep.equal(acked);
      }
    });

    it('concurrent appends are group-committed, and all resolve', async () => {
      const { fs, storage, acked } = await filled(1);
      const syncsBefore = fs.counts.sync;
      const appendsBefore = fs.counts.append;
      const batch = range(1, 101);
      await Promise.all(batch.map((e) => storage.append([e])));
      const syncs = fs.counts.sync - syncsBefore;
      expect(syncs).to.be.at.least(1).and.at.most(5);
      expect(fs.counts.append - appendsBefore).to.equal(syncs);
      expect(await recovered(fs.crash())).to.deep.equal([...acked, ...batch]);
    });

    it('with fsync "no", appends do not sync, and close() does', async () => {
      const { fs, storage } = await filled(0, { fsync: 'no' });
      const syncsBefore = fs.counts.sync;
      for (const e of range(0, 30)) await storage.append([e]);
      await Promise.all(range(30, 60).map((e) => storage.append([e])));
      expect(fs.counts.sync).to.equal(syncsBefore);
      expect(await recovered(fs.crash())).to.deep.equal([]);
      await storage.close();
      expect(fs.counts.sync).to.equal(syncsBefore + 1);
      expect(await recovered(fs.crash())).to.deep.equal(range(0, 60));
    });

    it('with fsync "everysec", appends do not sync each, and close() does', async () => {
      const { fs, storage } = await filled(0, { fsync: 'everysec' });
      const syncsBefore = fs.counts.sync;
      await Promise.all(range(0, 20).map((e) => storage.append([e])));
      expect(fs.counts.sync).to.equal(syncsBefore);
      await storage.close();
      expect(fs.counts.sync).to.equal(syncsBefore + 1);
      expect(await recovered(fs.crash())).to.deep.equal(range(0, 20));
    });
  });

  it('with fsync "everysec", the background fsync runs on the scheduler it is given', async () => {
    const fs = new MemoryFileSystem();
    const scheduler = new ManualScheduler();
    const { storage } = await open(fs, { fsync: 'everysec', scheduler });
    expect(scheduler.pending, 'the next background fsync waits on the given scheduler').to.equal(1);
    await storage.append([entry(1)]);
    expect(await recovered(fs.crash()), 'not synced before its time').to.deep.equal([]);
    const syncsBefore = fs.counts.sync;
    scheduler.advance(BACKGROUND_SYNC_INTERVAL_MS);
    await waitFor(() => fs.counts.sync > syncsBefore, 'the background fsync');
    expect(await recovered(fs.crash())).to.deep.equal([entry(1)]);
    await storage.close();
    expect(scheduler.pending, 'close cancels the next one').to.equal(0);
  });

  describe('write failures', () => {
    for (const [kind, code] of [['append', 'ENOSPC'], ['sync', 'EIO']] as const) {
      it(`a failed ${kind} (${code}) rejects with StorageFailure, and so does every later append until a retry`, async () => {
        const { fs, storage, acked } = await filled(5);
        fs.faults.failEvery = { kind, code };
        const failure = await rejection(storage.append([entry(5)]));
        expect(failure).to.be.instanceOf(StorageFailure);
        expect(failure).to.include({ code, dir: DIR });
        expect(failure.message).to.include(code).and.include(DIR);
        fs.faults = {};
        for (const e of range(6, 9)) expect(await rejection(storage.append([e]))).to.equal(failure);
        const concurrent = await Promise.allSettled(range(10, 20).map((e) => storage.append([e])));
        expect(concurrent.every((r) => r.status === 'rejected' && r.reason instanceof StorageFailure)).to.equal(true);
        expect(storage.pendingRecords).to.equal(14);
        // What was acknowledged is still there; close's last retry writes the refused records after it, in order.
        expect(await recovered(fs.crash())).to.deep.equal(acked);
        expect(await storage.close()).to.deep.equal([]);
        expect(await recovered(fs.crash())).to.deep.equal([...acked, ...range(5, 9), ...range(10, 20)]);
      });
    }

    it('every append waiting behind a failed batch is rejected', async () => {
      const { fs, storage } = await filled(1);
      fs.faults.failAt = { op: fs.operations + 1, code: 'ENOSPC' };
      const results = await Promise.allSettled(range(1, 30).map((e) => storage.append([e])));
      expect(results.map((r) => r.status)).to.deep.equal(Array(29).fill('rejected'));
      expect(await rejection(storage.append([entry(99)]))).to.be.instanceOf(StorageFailure);
    });
  });

  describe('recovery', () => {
    it('drops a torn last append, says so with its size, and then works and survives another crash', async () => {
      const { fs, storage, acked } = await filled(5);
      // The write of entry 5 reaches the disk partly: the crash is at its fsync.
      fs.faults.crashAt = fs.operations + 2;
      expect(await rejection(storage.append([entry(5)]))).to.be.instanceOf(StorageFailure);
      expect(fs.counts.append).to.be.greaterThan(0);
      const torn = encodeRecord(entry(5)).length - 7;
      const after = fs.crash({ tearLastAppend: torn });
      expect(after.peek(LOG0)!.length).to.equal(fs.peek(LOG0)!.length - 7);
      const { storage: reopened, recovery } = await open(after);
      expect(recovery.entries).to.deep.equal(acked);
      expect(recovery.notes).to.have.length(1);
      expect(recovery.notes[0]).to.include(`${torn} bytes`).and.include('log-00000000.bby');
      await reopened.append([entry(6)]);
      const second = await open(after.crash());
      expect(second.recovery.entries).to.deep.equal([...acked, entry(6)]);
      expect(second.recovery.notes).to.deep.equal([]);
    });

    it('a tail torn inside the record header, or inside the magic of a new log, is dropped too', async () => {
      for (const keep of [1, 3, 7]) {
        const { fs, storage, acked } = await filled(3);
        fs.faults.crashAt = fs.operations + 2;
        await rejection(storage.append([entry(3), entry(4)]));
        const { recovery } = await open(fs.crash({ tearLastAppend: keep }));
        expect(recovery.entries, `keep ${keep}`).to.deep.equal(acked);
        expect(recovery.notes[0], `keep ${keep}`).to.include(`${keep} bytes`);
      }
      const fs = new MemoryFileSystem();
      await fs.mkdir(DIR);
      fs.poke(LOG0, LOG_MAGIC.subarray(0, 5));
      const { storage, recovery } = await open(fs);
      expect(recovery.entries).to.deep.equal([]);
      await storage.append([entry(1)]);
      expect(await recovered(fs.crash())).to.deep.equal([entry(1)]);
    });

    it('removes temporary files left by a crash', async () => {
      const { fs, storage } = await filled(2);
      await storage.close();
      fs.poke(`${DIR}/snapshot-00000001.bby.tmp`, Buffer.from('half a snapshot'));
      fs.poke(`${DIR}/node.json.tmp`, Buffer.from('{"id":'));
      expect(await recovered(fs)).to.deep.equal(range(0, 2));
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
    });
  });

  describe('corruption', () => {
    /** A closed log of 6 entries whose record `index` is damaged by `damage`. */
    async function damagedLog(index: number, damage: (bytes: Buffer, start: number) => void) {
      const { fs, storage, acked } = await filled(6);
      await storage.close();
      const bytes = fs.peek(LOG0)!;
      const start = LOG_MAGIC.length + acked.slice(0, index).reduce((sum, e) => sum + encodeRecord(e).length, 0);
      damage(bytes, start);
      fs.poke(LOG0, bytes);
      return { fs, acked, bytes, start };
    }

    const flipPayload = (bytes: Buffer, start: number) => {
      bytes[start + RECORD_HEADER_BYTES + 4]! ^= 0x01;
    };

    it('in the middle of a log, open throws CorruptionError naming the file, the offset and --repair', async () => {
      const { fs, bytes, start } = await damagedLog(2, flipPayload);
      const error = await rejection(open(fs));
      expect(error).to.be.instanceOf(CorruptionError);
      expect(error).to.include({ file: LOG0, offset: start });
      expect(error.message).to.include(LOG0).and.include(`byte ${start}`).and.include('--repair');
      // Nothing was touched.
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
      expect(fs.peek(LOG0)!.equals(bytes)).to.equal(true);
    });

    it('a damaged length in the middle of the last log is corruption, not a torn tail to cut', async () => {
      const { fs, bytes, start } = await damagedLog(2, (b, s) => b.writeUInt32LE(b.readUInt32LE(s) + 64, s));
      const error = await rejection(open(fs));
      expect(error).to.be.instanceOf(CorruptionError);
      expect(error).to.include({ file: LOG0, offset: start });
      expect(fs.peek(LOG0)!.equals(bytes)).to.equal(true);
    });

    it('a torn tail in a log that is not the last is corruption', async () => {
      const fs = new MemoryFileSystem();
      await fs.mkdir(DIR);
      const record = encodeRecord(entry(1));
      fs.poke(LOG0, Buffer.concat([LOG_MAGIC, encodeRecord(entry(0)), record.subarray(0, 10)]));
      fs.poke(`${DIR}/log-00000001.bby`, Buffer.concat([LOG_MAGIC, encodeRecord(entry(2))]));
      const error = await rejection(open(fs));
      expect(error).to.be.instanceOf(CorruptionError);
      expect(error).to.include({ file: LOG0, offset: LOG_MAGIC.length + encodeRecord(entry(0)).length });
    });

    it('with repair, keeps every intact record before and after the damage and the damaged file aside; the next open is clean', async () => {
      const { fs, acked, bytes } = await damagedLog(2, flipPayload);
      const { storage, recovery } = await open(fs, { repair: true });
      const kept = acked.filter((_, i) => i !== 2);
      expect(recovery.entries).to.deep.equal(kept);
      expect(recovery.notes).to.have.length(1);
      expect(recovery.notes[0]).to.include('log-00000000.bby').and.include('log-00000000.bby.damaged').and.include('kept 5 intact records');
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby.damaged', 'log-00000001.bby', 'snapshot-00000001.bby']);
      expect(fs.peek(`${LOG0}.damaged`)!.equals(bytes)).to.equal(true);
      await storage.append([entry(50)]);
      await storage.close();
      const again = await open(fs);
      expect(again.recovery.notes).to.deep.equal([]);
      expect(sorted(again.recovery.entries)).to.deep.equal(sorted([...kept, entry(50)]));
      await again.storage.close();
      // The repair itself was made durable.
      expect(sorted(await recovered(fs.crash()))).to.deep.equal(sorted([...kept, entry(50)]));
    });

    it('with repair, a damaged snapshot keeps its intact records and the log', async () => {
      const { fs, storage, acked } = await filled(6);
      await storage.compact(acked);
      await storage.append([entry(6), entry(7)]);
      await storage.close();
      const path = `${DIR}/snapshot-00000001.bby`;
      const bytes = fs.peek(path)!;
      bytes[SNAPSHOT_MAGIC.length + encodeRecord(acked[0]!).length + RECORD_HEADER_BYTES + 2]! ^= 0x40;
      fs.poke(path, bytes);
      expect(await rejection(open(fs))).to.be.instanceOf(CorruptionError).and.include({ file: path });
      const { recovery } = await open(fs, { repair: true });
      const kept = [...acked.filter((_, i) => i !== 1), entry(6), entry(7)];
      expect(sorted(recovery.entries)).to.deep.equal(sorted(kept));
      expect(fs.names(DIR)).to.include('snapshot-00000001.bby.damaged');
      expect(sorted(await recovered(fs.crash()))).to.deep.equal(sorted(kept));
    });
  });

  describe('compaction', () => {
    it('keeps the same entries across reopen and removes the old log', async () => {
      const { fs, storage, acked } = await filled(30);
      expect(await storage.compact(acked)).to.equal(true);
      expect(storage.generation).to.equal(1);
      expect(fs.names(DIR)).to.deep.equal(['log-00000001.bby', 'snapshot-00000001.bby']);
      await storage.append([entry(30)]);
      expect(await storage.compact([...acked, entry(30)])).to.equal(true);
      expect(fs.names(DIR)).to.deep.equal(['log-00000002.bby', 'snapshot-00000002.bby']);
      await storage.append([entry(31)]);
      await storage.close();
      const { recovery } = await open(fs);
      expect(sorted(recovery.entries)).to.deep.equal(sorted([...acked, entry(30), entry(31)]));
      expect(recovery.notes).to.deep.equal([]);
      expect(sorted(await recovered(fs.crash()))).to.deep.equal(sorted([...acked, entry(30), entry(31)]));
    });

    it('a second compact while one runs returns false', async () => {
      const { storage, acked } = await filled(3);
      const first = storage.compact(acked);
      expect(await storage.compact(acked)).to.equal(false);
      expect(await first).to.equal(true);
    });

    /**
     * Crashes `compact()` at operation 1, 2, ... until it completes without
     * reaching the crash point; after each crash, recovery must give exactly
     * the acknowledged entries, and the node must work on.
     */
    async function crashEveryStep(prepare: () => Promise<{ fs: MemoryFileSystem; storage: Storage; acked: Entry[] }>) {
      let steps = 0;
      for (let step = 1; ; step++) {
        expect(step, 'compact never completed').to.be.below(200);
        const { fs, storage, acked } = await prepare();
        fs.faults.crashAt = fs.operations + step;
        let completed = false;
        try {
          completed = await storage.compact(acked);
          expect(completed).to.equal(true);
        } catch (error) {
          expect(error, `step ${step}`).to.be.instanceOf(Crash);
        }
        const after = fs.crash();
        const { storage: reopened, recovery } = await open(after);
        expect(sorted(recovery.entries), `crash at step ${step}`).to.deep.equal(sorted(acked));
        await reopened.append([entry(999)]);
        expect(sorted(await recovered(after.crash())), `append after step ${step}`).to.deep.equal(sorted([...acked, entry(999)]));
        steps = step;
        if (completed) break;
      }
      return steps;
    }

    it('a crash at every step of a first compaction loses nothing and adds nothing', async () => {
      const steps = await crashEveryStep(async () => {
        const { fs, storage, acked } = await filled(10);
        await storage.append([entry(10), entry(11)]);
        return { fs, storage, acked: [...acked, entry(10), entry(11)] };
      });
      expect(steps).to.be.greaterThan(10);
    });

    it('a crash at every step of a later compaction loses nothing and adds nothing', async () => {
      await crashEveryStep(async () => {
        const { fs, storage, acked } = await filled(8);
        await storage.compact(acked);
        await storage.append([entry(8)]);
        await storage.compact([...acked, entry(8)]);
        await storage.append([entry(9), entry(10)]);
        return { fs, storage, acked: [...acked, entry(8), entry(9), entry(10)] };
      });
    });

    /**
     * Runs a compaction while appends keep arriving (one started at every
     * file operation), optionally crashing at operation `crashAt` (relative).
     */
    async function compactWhileAppending(crashAt?: number) {
      const { fs, storage, acked } = await filled(10);
      const snapshot = [...acked];
      const attempted = [...acked];
      const appends: Promise<void>[] = [];
      let next = 100;
      let running = true;
      fs.onOperation = () => {
        if (!running || next >= 160) return;
        const e = entry(next++);
        attempted.push(e);
        queueMicrotask(() => {
          appends.push(storage.append([e]).then(() => void acked.push(e)));
        });
      };
      if (crashAt !== undefined) fs.faults.crashAt = fs.operations + crashAt;
      let completed = false;
      try {
        completed = await storage.compact(snapshot);
      } catch (error) {
        expect(error).to.be.instanceOf(Crash);
      }
      running = false;
      await Promise.allSettled(appends);
      await Promise.allSettled(appends);
      fs.onOperation = null;
      return { fs, storage, acked, attempted, completed };
    }

    it('appends concurrent with compaction are not lost', async () => {
      const { fs, storage, acked, attempted, completed } = await compactWhileAppending();
      expect(completed).to.equal(true);
      expect(attempted.length).to.be.greaterThan(20);
      expect(acked).to.have.length(attempted.length);
      expect(sorted(await recovered(fs.crash()))).to.deep.equal(sorted(acked));
      await storage.close();
      expect(sorted(await recovered(fs))).to.deep.equal(sorted(acked));
    });

    it('appends concurrent with compaction are not lost across a crash at any step', async () => {
      let stepsWithConcurrentAcks = 0;
      for (let step = 1; ; step++) {
        expect(step, 'compact never completed').to.be.below(300);
        const { fs, acked, attempted, completed } = await compactWhileAppending(step);
        const { recovery } = await open(fs.crash());
        const keys = recovery.entries.map((e) => e.key);
        expect(new Set(keys).size, `duplicates at step ${step}`).to.equal(keys.length);
        const attemptedKeys = new Set(attempted.map((e) => e.key));
        expect(keys.every((k) => attemptedKeys.has(k)), `step ${step}`).to.equal(true);
        const recoveredKeys = new Set(keys);
        expect(acked.filter((e) => !recoveredKeys.has(e.key)), `lost at step ${step}`).to.deep.equal([]);
        if (acked.length > 10 && !completed) stepsWithConcurrentAcks++;
        if (completed) break;
      }
      // The sweep did crash with concurrent appends already acknowledged, at many steps.
      expect(stepsWithConcurrentAcks).to.be.greaterThan(10);
    });

    it('an append in flight when compaction starts is kept', async () => {
      const { fs, storage, acked } = await filled(3);
      const inFlight = storage.append([entry(3)]);
      expect(await storage.compact([...acked, entry(3)])).to.equal(true);
      await inFlight;
      expect(sorted(await recovered(fs.crash()))).to.deep.equal(sorted([...acked, entry(3)]));
    });

    it('a failed fsync of the old log while switching logs fails later appends too', async () => {
      const { fs, storage } = await filled(0, { fsync: 'no' });
      await storage.append([entry(0)]);
      fs.faults.failEvery = { kind: 'sync', code: 'EIO' };
      expect(await rejection(storage.compact([entry(0)]))).to.have.property('code', 'EIO');
      fs.faults = {};
      expect(await rejection(storage.append([entry(1)]))).to.be.instanceOf(StorageFailure);
    });

    it('a failure to create the new log (ENOSPC) rejects the compaction, removes the half-made log, and appends go on in the old one', async () => {
      const { fs, storage, acked } = await filled(4);
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      const error = await rejection(storage.compact(acked));
      expect(error).to.be.instanceOf(StorageFailure).and.include({ code: 'ENOSPC' });
      expect(storage.failure).to.equal(null);
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
      fs.faults = {};
      await storage.append([entry(4)]);
      await storage.close();
      expect(await recovered(fs.crash())).to.deep.equal([...acked, entry(4)]);
    });
  });
});

describe('node.json', () => {
  const first: NodeMeta = { id: 'node-a', peers: [] };
  const second: NodeMeta = { id: 'node-a', peers: ['ws://10.0.0.2:7000', 'ws://[::1]:7001'] };

  it('round-trips through writeMeta and readMeta, and is null when absent', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    expect(await readMeta(fs, DIR)).to.equal(null);
    await writeMeta(fs, DIR, first);
    expect(await readMeta(fs, DIR)).to.deep.equal(first);
    await writeMeta(fs, DIR, second);
    expect(await readMeta(fs, DIR)).to.deep.equal(second);
    expect(await readMeta(fs.crash(), DIR)).to.deep.equal(second);
    expect(fs.names(DIR)).to.deep.equal([META_FILE]);
  });

  it('refuses a node.json that is not JSON or not a node', async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    for (const text of ['{"id":', '{"id": "bad id!", "peers": []}', '{"id": "a"}', '{"id": "a", "peers": [1]}']) {
      fs.poke(`${DIR}/${META_FILE}`, Buffer.from(text));
      const error = await rejection(readMeta(fs, DIR));
      expect(error.message, text).to.include(`${DIR}/${META_FILE}`);
    }
  });

  it('a crash at every step of writeMeta leaves the old or the new node.json', async () => {
    const seen = new Set<string>();
    for (let step = 1; ; step++) {
      expect(step).to.be.below(50);
      const fs = new MemoryFileSystem();
      await fs.mkdir(DIR);
      await writeMeta(fs, DIR, first);
      fs.faults.crashAt = fs.operations + step;
      let completed = false;
      try {
        await writeMeta(fs, DIR, second);
        completed = true;
      } catch (error) {
        expect(error).to.be.instanceOf(Crash);
      }
      const meta = await readMeta(fs.crash(), DIR);
      expect([first, second], `step ${step}`).to.deep.include(meta);
      if (completed) expect(meta).to.deep.equal(second);
      seen.add(JSON.stringify(meta));
      if (completed) break;
    }
    expect(seen.size).to.equal(2);
  });
});

describe('data folder lock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-lock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const isRunning = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  };

  it('a second lock by another process throws LockedError naming its pid; once it is gone, the lock is taken over', async () => {
    const lockModule = new URL('../src/storage/lock.js', import.meta.url).href;
    const code = `const { lockDataDir } = await import(${JSON.stringify(lockModule)}); await lockDataDir(${JSON.stringify(dir)}, 'child'); console.log('locked'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (data: Buffer) => data.toString().includes('locked') && resolve());
        child.on('exit', (status) => reject(new Error(`child exited with ${status}`)));
      });
      expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).to.equal(String(child.pid));
      const error = await rejection(lockDataDir(dir, 'second.json'));
      expect(error).to.be.instanceOf(LockedError);
      expect(error.message).to.include(`process ${child.pid}`).and.include('second.json');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    const release = await lockDataDir(dir, 'second.json');
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).to.equal(String(process.pid));
    await release();
  });

  it('a second lock in the same process throws LockedError, until the first is released', async () => {
    const release = await lockDataDir(dir, 'a.json');
    const error = await rejection(lockDataDir(dir, 'b.json'));
    expect(error).to.be.instanceOf(LockedError);
    expect(error.message).to.include(String(process.pid));
    await release();
    const again = await lockDataDir(dir, 'b.json');
    await again();
  });

  it('takes over a stale LOCK whose pid no longer runs, and release removes it', async () => {
    let pid = 999999;
    while (isRunning(pid)) pid++;
    await writeFile(join(dir, LOCK_FILE), `${pid}\n`);
    const release = await lockDataDir(dir, 'config.json');
    expect((await readFile(join(dir, LOCK_FILE), 'utf8')).trim()).to.equal(String(process.pid));
    await release();
    expect(await readFile(join(dir, LOCK_FILE)).catch((error: NodeJS.ErrnoException) => error.code)).to.equal('ENOENT');
  });
});
