/**
 * The storage engine on a disk that fails under it (full, broken, read-only):
 * a failed state that keeps every record it could not write, refuses appends
 * at once, and writes them all, in order, when a retry finds the disk working
 * again. Never a torn record mid-log, never an acknowledged record lost.
 */
import { expect } from 'chai';
import { type Entry } from '@bby/core';
import { CorruptionError, Storage, StorageFailure, tornTailNote, type StorageOptions } from '../src/storage/engine.js';
import { encodeRecord, LOG_MAGIC } from '../src/storage/record.js';
import { type FaultCode, MemoryFileSystem, type OpKind } from '../src/storage/memory-fs.js';
import { waitFor } from './support/wait.js';
import { rejection } from './support/rejection.js';

const DIR = '/data';
const LOG0 = `${DIR}/log-00000000.bby`;

const entry = (i: number): Entry => ({ key: `key-${String(i).padStart(4, '0')}`, value: `value ${i} `.padEnd(40 + (i % 7) * 13, '.'), timestamp: 1_700_000_000_000 + i, origin: 'node-a' });
const range = (from: number, to: number): Entry[] => Array.from({ length: to - from }, (_, i) => entry(from + i));

async function open(fs: MemoryFileSystem, options: Partial<StorageOptions> = {}) {
  return Storage.open({ dir: DIR, fs, ...options });
}

/** What a fresh open of `fs` recovers, with its notes; throws CorruptionError for damage. */
async function reopen(fs: MemoryFileSystem): Promise<{ entries: Entry[]; notes: string[] }> {
  const { storage, recovery } = await open(fs);
  await storage.close();
  return { entries: recovery.entries, notes: recovery.notes };
}

/** A storage holding `count` acknowledged entries. */
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

describe('storage engine: disk trouble is a state', () => {
  describe('entering the failed state', () => {
    const cases: { code: FaultCode; kind: OpKind; words: string; fix: string }[] = [
      { code: 'ENOSPC', kind: 'append', words: 'no space left on device', fix: 'free space' },
      { code: 'EIO', kind: 'sync', words: 'input/output error', fix: 'check the disk' },
      { code: 'EDQUOT', kind: 'append', words: 'disk quota exceeded', fix: 'quota' },
      { code: 'EROFS', kind: 'append', words: 'read-only file system', fix: 'remount' },
      { code: 'EMFILE', kind: 'sync', words: 'too many open files in this process', fix: 'ulimit -n' },
    ];
    for (const { code, kind, words, fix } of cases) {
      it(`a failed ${kind} (${code}) rejects with a StorageFailure of code ${code}, in one line naming the folder, the cause and the fix`, async () => {
        const { fs, storage, acked } = await filled(3);
        fs.faults.failEvery = { kind, code };
        const failure = await rejection(storage.append([entry(3)]));
        expect(failure).to.be.instanceOf(StorageFailure).and.include({ code, dir: DIR, words });
        expect(failure.message).to.include(DIR).and.include(words).and.include(`(${code})`).and.include(fix);
        expect(failure.message).not.to.include('\n');
        expect(storage.failure).to.equal(failure);
        // Nothing acknowledged is lost, even if the machine crashed now.
        expect((await reopen(fs.crash())).entries).to.deep.equal(acked);
      });
    }

    it('while failed, append rejects at once, without touching the disk, and keeps the records in order', async () => {
      const { fs, storage } = await filled(2);
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      const failure = await rejection(storage.append([entry(2), entry(3)]));
      const operations = fs.operations;
      const refused = await Promise.allSettled(range(4, 10).map((e) => storage.append([e])));
      expect(refused.every((r) => r.status === 'rejected' && r.reason === failure)).to.equal(true);
      expect(fs.operations).to.equal(operations);
      expect(storage.pendingRecords).to.equal(8);
      expect(storage.pendingBytes).to.equal(range(2, 10).reduce((sum, e) => sum + encodeRecord({ ...e }).length, 0));
    });

    it('every append queued behind the failed batch is refused and kept after it', async () => {
      const { fs, storage, acked } = await filled(1);
      fs.faults.failAt = { op: fs.operations + 1, code: 'EIO' };
      const results = await Promise.allSettled(range(1, 30).map((e) => storage.append([e])));
      expect(results.every((r) => r.status === 'rejected')).to.equal(true);
      expect(storage.pendingRecords).to.equal(29);
      fs.faults = {};
      expect(await storage.retry()).to.equal(true);
      expect((await reopen(fs.crash())).entries).to.deep.equal([...acked, ...range(1, 30)]);
    });

    it('a failed fsync of "everysec" enters the failed state without an append, and tells the listener', async function () {
      this.timeout(10_000);
      const { fs, storage } = await filled(0, { fsync: 'everysec' });
      const told: (StorageFailure | null)[] = [];
      storage.onStateChange((failure) => told.push(failure));
      await storage.append([entry(0)]);
      fs.faults.failEvery = { kind: 'sync', code: 'EIO' };
      await waitFor(() => storage.failure !== null, 'the background fsync to fail', 5_000);
      expect(told).to.deep.equal([storage.failure]);
      expect(storage.failure).to.include({ code: 'EIO' });
      expect(await rejection(storage.append([entry(1)]))).to.equal(storage.failure);
      fs.faults = {};
      expect(await storage.retry()).to.equal(true);
      expect(told).to.have.length(2);
      expect(told[1]).to.equal(null);
      expect(await storage.close()).to.deep.equal([]);
      expect((await reopen(fs.crash())).entries).to.deep.equal([entry(0), entry(1)]);
    });
  });

  describe('retry', () => {
    it('returns true at once when nothing failed', async () => {
      const { fs, storage } = await filled(1);
      const operations = fs.operations;
      expect(await storage.retry()).to.equal(true);
      expect(fs.operations).to.equal(operations);
    });

    it('returns false while the disk still fails, then writes the pending records in order and takes appends again', async () => {
      const { fs, storage, acked } = await filled(4);
      const told: (StorageFailure | null)[] = [];
      storage.onStateChange((failure) => told.push(failure));
      fs.faults.diskBytes = fs.usedBytes() + 30;
      const refused = range(4, 12);
      for (const e of refused) await rejection(storage.append([e]));
      expect(await storage.retry()).to.equal(false);
      expect(await storage.retry()).to.equal(false);
      expect(storage.failure).to.include({ code: 'ENOSPC' });
      // The same cause is told once, not at every retry.
      expect(told).to.have.length(1);
      delete fs.faults.diskBytes;
      expect(await storage.retry()).to.equal(true);
      expect(storage.failure).to.equal(null);
      expect(storage.pendingRecords).to.equal(0);
      expect(told).to.deep.equal([told[0], null]);
      await storage.append([entry(50)]);
      // Durable as soon as retry and append resolved, in the order they were appended.
      const { entries, notes } = await reopen(fs.crash());
      expect(entries).to.deep.equal([...acked, ...refused, entry(50)]);
      expect(notes).to.deep.equal([]);
    });

    it('cuts off the part of a record that a full disk wrote, so the log never holds a torn record mid-log', async () => {
      const { fs, storage, acked } = await filled(3);
      const whole = fs.peek(LOG0)!.length;
      // Room for part of the next record: the write is partial, as on a real disk.
      fs.faults.diskBytes = fs.usedBytes() + 17;
      expect(await rejection(storage.append([entry(3)]))).to.include({ code: 'ENOSPC' });
      expect(fs.peek(LOG0)!.length).to.equal(whole + 17);
      // Recovery sees only a torn tail now; after a successful retry, the log is clean.
      expect((await reopen(fs.crash())).entries).to.deep.equal(acked);
      delete fs.faults.diskBytes;
      expect(await storage.retry()).to.equal(true);
      await storage.append([entry(4)]);
      const { entries, notes } = await reopen(fs.crash());
      expect(entries).to.deep.equal([...acked, entry(3), entry(4)]);
      expect(notes).to.deep.equal([]);
      expect(fs.peek(LOG0)!.length).to.equal(LOG_MAGIC.length + range(0, 5).reduce((sum, e) => sum + encodeRecord(e).length, 0));
    });

    it('under fsync "always", a batch whose fsync failed is written again, once', async () => {
      const { fs, storage, acked } = await filled(2);
      fs.faults.failEvery = { kind: 'sync', code: 'EIO' };
      await rejection(storage.append([entry(2), entry(3)]));
      fs.faults = {};
      expect(await storage.retry()).to.equal(true);
      await storage.close();
      const { entries, notes } = await reopen(fs);
      expect(entries).to.deep.equal([...acked, entry(2), entry(3)]);
      expect(notes).to.deep.equal([]);
    });

    it('a failed truncate keeps the failed state, with the new cause told to the listener', async () => {
      const { fs, storage } = await filled(1);
      const told: (StorageFailure | null)[] = [];
      storage.onStateChange((failure) => told.push(failure));
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      await rejection(storage.append([entry(1)]));
      fs.faults.failEvery = { kind: 'truncate', code: 'EIO' };
      expect(await storage.retry()).to.equal(false);
      expect(storage.failure).to.include({ code: 'EIO' });
      expect(storage.failure!.message).to.include('cut log-00000000.bby back to its last whole record');
      expect(told.map((f) => f?.code)).to.deep.equal(['ENOSPC', 'EIO']);
      expect(await rejection(storage.append([entry(2)]))).to.include({ code: 'EIO' });
      fs.faults = {};
      expect(await storage.retry()).to.equal(true);
      expect((await reopen(fs.crash())).entries).to.deep.equal(range(0, 3));
    });

    it('records refused while a retry runs are written right after it, before anything newer', async () => {
      const { fs, storage, acked } = await filled(2);
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      await rejection(storage.append([entry(2)]));
      fs.faults = {};
      let next = 3;
      const during: Promise<unknown>[] = [];
      fs.onOperation = () => {
        if (next >= 8) return;
        const e = entry(next++);
        queueMicrotask(() => during.push(storage.append([e]).catch((error: unknown) => error)));
      };
      const retried = storage.retry();
      expect(await retried).to.equal(true);
      fs.onOperation = null;
      const outcomes = await Promise.all(during);
      expect(outcomes.length).to.be.greaterThan(0);
      await storage.append([entry(100)]);
      const { entries } = await reopen(fs.crash());
      expect(entries).to.deep.equal([...acked, ...range(2, next), entry(100)]);
    });

    it('whatever the disk does, a crash at any point recovers every acknowledged record, and the final log is clean', async () => {
      // A deterministic walk: room for a few bytes at a time, retries that fail and succeed, appends all along.
      const { fs, storage, acked } = await filled(2);
      const attempted = [...acked];
      let seed = 12345;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      for (let i = 2; i < 120; i++) {
        if (random() < 0.15) fs.faults.diskBytes = fs.usedBytes() + Math.floor(random() * 120);
        if (random() < 0.1) delete fs.faults.diskBytes;
        const e = entry(i);
        attempted.push(e);
        try {
          await storage.append([e]);
          acked.push(e);
        } catch (error) {
          expect(error).to.be.instanceOf(StorageFailure);
        }
        if (random() < 0.3) await storage.retry();
        const { entries } = await reopen(fs.crash());
        const keys = new Set(entries.map((x) => x.key));
        expect(acked.filter((x) => !keys.has(x.key)), `lost after step ${i}`).to.deep.equal([]);
      }
      delete fs.faults.diskBytes;
      expect(await storage.retry()).to.equal(true);
      expect(await storage.close()).to.deep.equal([]);
      const { entries, notes } = await reopen(fs);
      expect(entries).to.deep.equal(attempted);
      expect(notes).to.deep.equal([]);
      expect(acked.length).to.be.lessThan(attempted.length);
    });
  });

  describe('compaction', () => {
    it('is skipped while failed', async () => {
      const { fs, storage, acked } = await filled(3, { compactMinBytes: 0 });
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      await rejection(storage.append([entry(3)]));
      expect(storage.shouldCompact(() => 0)).to.equal(false);
      const names = fs.names(DIR);
      expect(await storage.compact(acked)).to.equal(false);
      expect(fs.names(DIR)).to.deep.equal(names);
    });

    it('a snapshot that does not fit leaves the old files as they were, frees its temporary file, and appends go on', async () => {
      const { fs, storage, acked } = await filled(6);
      const log = fs.peek(LOG0)!;
      // Room for the new log's magic, not for the snapshot.
      fs.faults.diskBytes = fs.usedBytes() + LOG_MAGIC.length + 20;
      const error = await rejection(storage.compact(acked));
      expect(error).to.be.instanceOf(StorageFailure).and.include({ code: 'ENOSPC' });
      expect(error.message).to.include('snapshot-00000001.bby');
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby', 'log-00000001.bby']);
      expect(fs.peek(LOG0)!.equals(log)).to.equal(true);
      expect(storage.failure).to.equal(null);
      delete fs.faults.diskBytes;
      await storage.append([entry(6)]);
      expect((await reopen(fs.crash())).entries).to.deep.equal([...acked, entry(6)]);
      // The next compaction also removes what the failed one left.
      expect(await storage.compact([...acked, entry(6)])).to.equal(true);
      expect(fs.names(DIR)).to.deep.equal(['log-00000002.bby', 'snapshot-00000002.bby']);
      expect((await reopen(fs.crash())).entries).to.have.deep.members([...acked, entry(6)]);
    });

    it('a half-made new log that cannot be removed blocks appends until a retry removes it', async () => {
      const { fs, storage, acked } = await filled(2);
      fs.faults.failEvery = { kind: ['syncDir', 'remove'], code: 'EIO' };
      expect(await rejection(storage.compact(acked))).to.include({ code: 'EIO' });
      expect(storage.failure).to.include({ code: 'EIO' });
      expect(await rejection(storage.append([entry(2)]))).to.be.instanceOf(StorageFailure);
      fs.faults = {};
      expect(await storage.retry()).to.equal(true);
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
      await storage.append([entry(3)]);
      expect((await reopen(fs.crash())).entries).to.deep.equal([...acked, entry(2), entry(3)]);
    });
  });

  describe('close', () => {
    it('while the disk still fails, resolves with one line saying how many refused records are lost; the acknowledged ones are kept', async () => {
      const { fs, storage, acked } = await filled(3);
      fs.faults.failEvery = { kind: 'append', code: 'ENOSPC' };
      await rejection(storage.append([entry(3)]));
      await rejection(storage.append([entry(4), entry(5)]));
      const problems = await storage.close();
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^3 refused records \(\d+ bytes\) could not be written and are lost: cannot .* no space left on device \(ENOSPC\)/);
      expect(problems[0]).not.to.include('\n');
      expect(await storage.retry()).to.equal(false);
      fs.faults = {};
      const { entries, notes } = await reopen(fs);
      expect(entries).to.deep.equal(acked);
      expect(notes).to.deep.equal([]);
    });

    it('once the disk works again, writes the refused records', async () => {
      const { fs, storage, acked } = await filled(3);
      fs.faults.failEvery = { kind: 'sync', code: 'EIO' };
      await rejection(storage.append([entry(3)]));
      fs.faults = {};
      expect(await storage.close()).to.deep.equal([]);
      expect((await reopen(fs.crash())).entries).to.deep.equal([...acked, entry(3)]);
    });
  });

  describe('the note for an unreadable tail', () => {
    it('says how many bytes of which file, that a crash leaves such a tail, and that acknowledged writes may be among them if the file was cut short', async () => {
      const { fs, storage } = await filled(4);
      await storage.close();
      const log = fs.peek(LOG0)!;
      fs.poke(LOG0, log.subarray(0, log.length - 5));
      const cut = encodeRecord(entry(3)).length - 5;
      const { entries, notes } = await reopen(fs);
      expect(entries).to.deep.equal(range(0, 3));
      expect(notes).to.deep.equal([tornTailNote('log-00000000.bby', cut)]);
      const note = notes[0]!;
      expect(note).to.include(`dropped a torn record of ${cut} bytes at the end of log-00000000.bby`);
      expect(note).to.include('A crash during a write leaves such a tail');
      expect(note).to.include('cut short').and.include('acknowledged writes may be among them');
      expect(note).not.to.include('\n');
    });
  });

  it('a torn record is never left before a whole one, so reopening never finds corruption', async () => {
    // Every step of a failure and retry, crashed: recovery sees at most a torn tail, never CorruptionError.
    for (let step = 1; step < 40; step++) {
      const { fs, storage } = await filled(3);
      fs.faults.diskBytes = fs.usedBytes() + 11;
      await rejection(storage.append([entry(3)]));
      await rejection(storage.append([entry(4)]));
      delete fs.faults.diskBytes;
      fs.faults.crashAt = fs.operations + step;
      const recovered = await storage.retry().catch(() => false);
      const after = fs.crash({ tearLastAppend: 9 });
      const result = await reopen(after).catch((error: unknown) => error);
      expect(result, `step ${step}`).not.to.be.instanceOf(CorruptionError);
      const { entries } = result as { entries: Entry[] };
      expect(entries.slice(0, 3), `step ${step}`).to.deep.equal(range(0, 3));
      if (recovered) {
        expect(entries, `step ${step}`).to.deep.equal(range(0, 5));
        break;
      }
    }
  });
});
