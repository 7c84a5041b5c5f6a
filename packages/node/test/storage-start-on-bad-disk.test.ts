/**
 * Starting on a disk that is full, read-only or failing: Persistence.open
 * throws a DataDirError whose one line names the folder, the config, the
 * cause in words and the fix, and leaves no LOCK behind.
 */
import { expect } from 'chai';
import { DataDirError, Persistence } from '../src/persistence.js';
import { encodeRecord, LOG_MAGIC } from '../src/storage/record.js';
import { tempDataFolder, type TempDataFolder } from './support/data-folder.js';
import { type FaultCode, MemoryFileSystem, type OpKind } from '../src/storage/memory-fs.js';
import { rejection } from './support/rejection.js';

describe('starting on a failing disk', () => {
  let folder: TempDataFolder;

  beforeEach(async () => {
    folder = await tempDataFolder();
  });

  afterEach(async () => {
    await folder.remove();
  });

  /** A data folder holding one log whose last record is cut short. */
  function tornLog(fs: MemoryFileSystem): void {
    const record = encodeRecord({ key: 'k', value: 'v', timestamp: 1, origin: 'node-a', seq: 1 });
    fs.poke(`${folder.dataDir}/log-00000000.bby`, Buffer.concat([LOG_MAGIC, record, record.subarray(0, 9)]));
  }

  const cases: { what: string; prepare?: (fs: MemoryFileSystem) => Promise<void> | void; fault: (fs: MemoryFileSystem) => void; code: FaultCode | 'EACCES'; says: string }[] = [
    { what: 'the folder cannot be created', fault: (fs) => (fs.faults.failEvery = { kind: 'mkdir', code: 'EROFS' }), code: 'EROFS', says: 'cannot create the data folder' },
    { what: 'node.json cannot be read', fault: (fs) => (fs.faults.failEvery = { kind: 'read', code: 'EIO' }), code: 'EIO', says: 'cannot read' },
    {
      what: 'the torn tail of the log cannot be cut',
      prepare: tornLog,
      fault: (fs) => (fs.faults.failEvery = { kind: 'truncate' as OpKind, code: 'EROFS' }),
      code: 'EROFS',
      says: 'cannot cut the unreadable tail of log-00000000.bby',
    },
    { what: 'a fresh folder has no room for its first log', fault: (fs) => (fs.faults.diskBytes = 0), code: 'ENOSPC', says: 'cannot create log-00000000.bby' },
    { what: 'a fresh folder has no room for node.json', fault: (fs) => (fs.faults.diskBytes = LOG_MAGIC.length), code: 'ENOSPC', says: 'cannot write' },
  ];

  for (const { what, prepare, fault, code, says } of cases) {
    it(`when ${what}: a DataDirError of code ${code} in one line, and no LOCK left`, async () => {
      const fs = new MemoryFileSystem();
      await fs.mkdir(folder.dataDir);
      await prepare?.(fs);
      fault(fs);
      const error = await rejection(Persistence.open(folder.config(), folder.source, { fs }));
      expect(error).to.be.instanceOf(DataDirError).and.include({ code });
      expect(error.message).to.include(says).and.include(folder.dataDir).and.include(`(config ${folder.source})`).and.include(`(${code})`);
      expect(error.message).not.to.include('\n');
      expect(error.message).not.to.match(/\n\s+at /);
      expect(await folder.realNames()).to.deep.equal([]);
      // Once the disk works, the same folder opens.
      fs.faults = {};
      const persistence = await Persistence.open(folder.config(), folder.source, { fs });
      expect(await persistence.close()).to.deep.equal([]);
    });
  }
});
