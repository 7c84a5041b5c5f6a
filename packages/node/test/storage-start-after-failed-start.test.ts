/**
 * A start that fails after it created the log (its fsync of the folder
 * failed) leaves a log whose name is not durable. The next start reuses that
 * log: it must make it durable before it acknowledges an append, or a crash
 * takes every acknowledged write with it. Found by the simulator (@bby/sim,
 * seed 1488793337).
 */
import { expect } from 'chai';
import { Storage, StorageFailure } from '../src/storage/engine.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { rejection } from './support/rejection.js';

const DIR = '/data';
const written = { key: 'k', value: 'v', timestamp: 1_700_000_000_000, origin: 'node-a', seq: 1 };

describe('starting again after a start that failed creating the log', () => {
  for (const kind of ['syncDir', 'sync'] as const) {
    it(`keeps the acknowledged writes through a crash (the first start's ${kind} failed)`, async () => {
      const fs = new MemoryFileSystem();
      fs.faults.failEvery = { kind, code: 'EIO' };
      expect(await rejection(Storage.open({ dir: DIR, fs }))).to.be.instanceOf(StorageFailure);
      expect(fs.names(DIR)).to.deep.equal(['log-00000000.bby']);
      fs.faults = {};
      const { storage } = await Storage.open({ dir: DIR, fs });
      await storage.append([written]);
      const { storage: after, recovery } = await Storage.open({ dir: DIR, fs: fs.crash() });
      await after.close();
      expect(recovery.entries).to.deep.equal([written]);
      await storage.close();
    });
  }
});
