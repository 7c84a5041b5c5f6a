/**
 * End to end: `scripts/cluster.js` (what `npm start` runs) with three temp
 * configs on free ports, driven by the bby CLI, then stopped with SIGINT.
 */
import { expect } from 'chai';
import {
  CLUSTER_SCRIPT,
  isPortFree,
  NODE_START_TIMEOUT_MS,
  runBby,
  TrackedProcess,
  useCleanup,
  waitFor,
  writeConfig,
} from './support/processes.js';

describe('e2e: scripts/cluster.js (npm start)', function () {
  this.timeout(30_000);
  useCleanup();

  it('starts three nodes that replicate, and stops them all on SIGINT', async () => {
    const node1 = await writeConfig({ id: 'node1', file: 'node1.json' });
    const node2 = await writeConfig({ id: 'node2', file: 'node2.json', peers: [node1.address] });
    const node3 = await writeConfig({ id: 'node3', file: 'node3.json', peers: [node2.address] });
    const files = [node1, node2, node3];

    const cluster = new TrackedProcess('scripts/cluster.js', process.execPath, [CLUSTER_SCRIPT, ...files.map((f) => f.path)]);
    for (const file of files) {
      await cluster.waitForOutput(new RegExp(`^\\[${file.id}\\] \\S+ info listening on ws://${file.address.replace(/\./g, '\\.')} as node ${file.id}$`, 'm'), NODE_START_TIMEOUT_MS);
    }
    expect(cluster.stdout).to.match(/^started 3 nodes; /m);

    expect(await runBby(node2.path, 'set', 'MonChamp', '42')).to.include({ code: 0, stdout: 'true\n' });
    await waitFor(
      async () => {
        const result = await runBby(node3.path, 'get', 'MonChamp');
        return result.code === 0 && result.stdout === '42\n';
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'MonChamp=42 on node3' },
    );
    // node1 got it too, through node2.
    expect(await runBby(node1.path, 'get', 'MonChamp')).to.include({ code: 0, stdout: '42\n' });

    cluster.child.kill('SIGINT');
    const status = await cluster.waitForExit(10_000);
    expect(status, cluster.describe()).to.deep.equal({ code: 0, signal: null });
    for (const file of files) expect(cluster.stdout).to.match(new RegExp(`^\\[${file.id}\\] .*stopping \\(SIGTERM\\)$`, 'm'));
    expect(cluster.stdout).not.to.match(/exited \(/);

    // The nodes are gone: their ports are free again and the CLI cannot reach them.
    await waitFor(async () => (await Promise.all(files.map((f) => isPortFree(f.port)))).every(Boolean), {
      timeoutMs: 5_000,
      what: 'the three ports to be free again',
    });
    const after = await runBby(node3.path, 'get', 'MonChamp');
    expect(after.code).to.equal(1);
  });
});
