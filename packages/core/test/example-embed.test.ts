/** examples/embed/index.js runs as its README says, and its mesh converges. */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// This file runs as packages/core/dist/test/example-embed.test.js.
const EXAMPLE = fileURLToPath(new URL('../../../../examples/embed/index.js', import.meta.url));

describe('examples/embed', () => {
  it('runs three nodes over the in-memory network, which converge despite lost frames', () => {
    const run = spawnSync(process.execPath, [EXAMPLE], { encoding: 'utf8', timeout: 20_000 });
    expect(run.error, 'the example could not be run').to.equal(undefined);
    expect(run.stderr).to.equal('');
    expect(run.status, run.stdout).to.equal(0);
    expect(run.stdout).to.include('a sets MonChamp=42: true');
    expect(run.stdout).to.match(/^ {2}c: 101 keys, MonChamp=42$/m);
    expect(run.stdout).to.include('converged: every node holds the same keys');
    expect(run.stdout).to.match(/lost [1-9]/);
  });
});
