/**
 * What `npm test` runs: `.mocharc.json` lists the test folders one package
 * at a time, the longest first (the simulator, then the end-to-end tests),
 * so that its two workers are not left with one long file at the end. A
 * package added to the workspaces must be added there too, or its tests
 * would silently not run.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './support/processes.js';

describe('npm test', () => {
  it("runs the test folder of every package that has one (.mocharc.json's spec lists each)", () => {
    const spec = (JSON.parse(readFileSync(join(REPO_ROOT, '.mocharc.json'), 'utf8')) as { spec: string[] }).spec;
    const withTests = readdirSync(join(REPO_ROOT, 'packages'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && readdirSync(join(REPO_ROOT, 'packages', entry.name)).includes('test'))
      .map((entry) => `packages/${entry.name}/dist/test/**/*.test.js`)
      .sort();
    expect([...spec].sort()).to.deep.equal(withTests);
  });
});
