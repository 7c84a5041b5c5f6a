/**
 * `npm install` on a fresh clone leaves package-lock.json as it is: npm 11
 * rewrote a lock that listed a package both in a workspace's dependencies and
 * its optionalDependencies (bufferutil did), and a user then found their
 * clone modified. Resolving the lock again offline, from the manifests alone,
 * must give the same bytes.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './support/processes.js';

/** The root's workspaces: each one's package.json takes part in the lock. */
const WORKSPACES = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;

describe('package-lock.json', function () {
  this.timeout(60_000);

  it('is what npm install writes for these package.json files (a fresh clone stays clean)', async function () {
    if (spawnSync('npm', ['--version']).status !== 0) {
      console.log('      skipped: npm cannot be run here');
      this.skip();
    }
    const dir = await mkdtemp(join(tmpdir(), 'bby-lock-'));
    try {
      for (const file of ['package.json', 'package-lock.json']) await copyFile(join(REPO_ROOT, file), join(dir, file));
      for (const workspace of WORKSPACES) {
        await mkdir(join(dir, workspace), { recursive: true });
        await copyFile(join(REPO_ROOT, workspace, 'package.json'), join(dir, workspace, 'package.json'));
      }
      const result = spawnSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8', timeout: 50_000 });
      expect(result.status, `npm install --package-lock-only: ${result.stderr}`).to.equal(0);
      expect(result.stderr, 'npm printed a warning').to.not.match(/npm warn/i);
      const rewritten = readFileSync(join(dir, 'package-lock.json'), 'utf8');
      expect(rewritten === readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8'), 'npm install rewrote package-lock.json: run npm install and commit the lock').to.equal(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
