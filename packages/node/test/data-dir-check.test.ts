/**
 * A dataDir that can never hold data is refused before anything is created:
 * the kernel's file systems (/proc, /sys), a file in the place of the folder
 * or of one of its parents. And the real file system's mkdir of missing
 * folders answers at once where Node's recursive mkdir loops for ever.
 */
import { expect } from 'chai';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@bby/core';
import { DataDirError, Persistence } from '../src/persistence.js';
import { fileInPath, unusableDataDir } from '../src/storage/data-dir-check.js';
import { nodeFileSystem } from '../src/storage/file-system.js';
import { rejection } from './support/rejection.js';

describe('data-dir-check', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'bby-data-dir-check-'));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  describe('unusableDataDir', () => {
    it('refuses folders under /proc and /sys, existing or not, naming the file system', () => {
      expect(unusableDataDir('/proc/bby')).to.equal('on /proc, a kernel file system (proc) that holds no files');
      expect(unusableDataDir('/proc/bby/deeper/still')).to.match(/^on \/proc, a kernel file system/);
      expect(unusableDataDir('/proc')).to.match(/^on \/proc/);
      expect(unusableDataDir('/sys/bby')).to.match(/^on \/sys, a kernel file system/);
      expect(unusableDataDir('/sys/kernel')).to.match(/^on \/sys/);
    });

    it('follows symbolic links: a link into /proc is refused, /proc/self/root/... (the root folder) is not', async () => {
      await symlink('/proc/self', join(root, 'link'));
      expect(unusableDataDir(join(root, 'link', 'data'))).to.match(/^on \/proc, .* \(it resolves to \/proc\/\d+\/data\)$/);
      expect(unusableDataDir(`/proc/self/root${root}/data`)).to.equal(undefined);
    });

    it('accepts an ordinary folder, existing or not', () => {
      expect(unusableDataDir(root)).to.equal(undefined);
      expect(unusableDataDir(join(root, 'a', 'b'))).to.equal(undefined);
      expect(unusableDataDir('/procfoo/data')).to.equal(undefined);
    });
  });

  describe('fileInPath', () => {
    it('names the file that stands in the place of the folder or of a parent', async () => {
      await writeFile(join(root, 'file'), '');
      expect(fileInPath(join(root, 'file'))).to.equal(join(root, 'file'));
      expect(fileInPath(join(root, 'file', 'sub', 'deeper'))).to.equal(join(root, 'file'));
      expect(fileInPath(join(root, 'missing', 'sub'))).to.equal(undefined);
      expect(fileInPath(root)).to.equal(undefined);
    });
  });

  describe('nodeFileSystem.mkdir', () => {
    it('creates missing parents, accepts an existing folder and says EEXIST for a file', async () => {
      await nodeFileSystem.mkdir(join(root, 'a', 'b', 'c'));
      await nodeFileSystem.mkdir(join(root, 'a', 'b', 'c'));
      await writeFile(join(root, 'file'), '');
      expect(await rejection(nodeFileSystem.mkdir(join(root, 'file')))).to.include({ code: 'EEXIST' });
      expect(await rejection(nodeFileSystem.mkdir(join(root, 'file', 'sub')))).to.include({ code: 'ENOTDIR' });
    });

    it('fails at once under /proc, where mkdir says ENOENT though the parent exists (a recursive mkdir loops there)', async () => {
      const started = Date.now();
      const error = await rejection(nodeFileSystem.mkdir('/proc/bby-test/data'));
      expect((error as NodeJS.ErrnoException).code).to.be.oneOf(['ENOENT', 'EACCES', 'EPERM']);
      expect(Date.now() - started).to.be.below(1_000);
    });
  });

  describe('Persistence.open', () => {
    const open = (dataDir: string) => {
      const source = join(root, 'node.config.json');
      return rejection(Persistence.open(parseConfig(JSON.stringify({ port: 7000, dataDir }), source), source));
    };

    it('refuses a dataDir under /proc in one line, before creating anything', async () => {
      const error = await open('/proc/bby-test');
      expect(error).to.be.instanceOf(DataDirError);
      expect(error.message).to.equal(`data folder /proc/bby-test is on /proc, a kernel file system (proc) that holds no files (config ${join(root, 'node.config.json')}): set "dataDir" to a folder on a disk`);
    });

    it('says "is a file, not a folder" for a dataDir that is a file, and names the file for a parent that is one', async () => {
      await writeFile(join(root, 'data'), 'not a folder');
      const error = await open('data');
      expect(error).to.be.instanceOf(DataDirError).and.include({ code: 'EEXIST' });
      expect(error.message).to.include(`data folder ${join(root, 'data')} is a file, not a folder`).and.not.include('\n');
      const below = await open('data/sub');
      expect(below).to.be.instanceOf(DataDirError).and.include({ code: 'ENOTDIR' });
      expect(below.message).to.include(`cannot create the data folder ${join(root, 'data', 'sub')}`).and.include(`${join(root, 'data')} is a file, not a folder`);
    });
  });
});
