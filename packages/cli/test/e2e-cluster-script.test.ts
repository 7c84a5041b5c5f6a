/**
 * End to end: `scripts/cluster.js` (what `npm start` runs) with three temp
 * configs on free ports, driven by the bby CLI, then stopped with SIGINT; a
 * node killed with SIGKILL (found with pgrep, as the docs do) leaves the
 * others serving and comes back when `r 2` is typed into the script.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
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

const run = promisify(execFile);

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

  /** Output of the cluster after `mark` characters, for waiting on what it prints next. */
  const since = (cluster: TrackedProcess, mark: number) => cluster.stdout.slice(mark);

  it('keeps the others running and serving when one is killed with SIGKILL, restarts it on "r 2", and it catches up', async () => {
    const node1 = await writeConfig({ id: 'node1', file: 'node1.json' });
    const node2 = await writeConfig({ id: 'node2', file: 'node2.json', peers: [node1.address] });
    const node3 = await writeConfig({ id: 'node3', file: 'node3.json', peers: [node2.address] });
    const files = [node1, node2, node3];
    const cluster = new TrackedProcess('scripts/cluster.js', process.execPath, [CLUSTER_SCRIPT, ...files.map((f) => f.path)], { stdin: 'pipe' });
    for (const file of files) await cluster.waitForOutput(new RegExp(`^\\[${file.id}\\] \\S+ info listening on `, 'm'), NODE_START_TIMEOUT_MS);
    expect(await runBby(node1.path, 'set', 'Avant', 'panne')).to.include({ code: 0, stdout: 'true\n' });
    // node1 and node3 learn each other through node2: wait for their own link, which outlives node2.
    await waitFor(
      async () => {
        const result = await runBby('--json', node3.path, 'peers');
        return result.code === 0 && (JSON.parse(result.stdout) as { id: string; connected: boolean }[]).some((p) => p.id === 'node1' && p.connected);
      },
      { timeoutMs: 15_000, intervalMs: 250, what: 'node3 connected to node1 directly' },
    );

    // As docs/course.md does it: the process is found by its title.
    const { stdout: found } = await run('pgrep', ['-f', `bby-node ${node2.path}`]);
    const pids = found.trim().split('\n');
    expect(pids, `pgrep -f 'bby-node ${node2.path}'`).to.have.length(1);
    let mark = cluster.stdout.length;
    process.kill(Number(pids[0]), 'SIGKILL');
    await waitFor(() => /^\[node2\] exited \(SIGKILL\); the others keep running\. Type r 2 \(or restart node2\) and Enter to start it again$/m.test(since(cluster, mark)), {
      what: 'the cluster to say node2 exited',
    });
    expect(cluster.exitStatus, 'the cluster still runs').to.equal(undefined);

    // The two others still serve, and their direct link carries writes.
    expect(await runBby(node1.path, 'set', 'Pendant', 'panne')).to.include({ code: 0, stdout: 'true\n' });
    await waitFor(async () => (await runBby(node3.path, 'get', 'Pendant')).stdout === 'panne\n', { intervalMs: 200, what: 'Pendant on node3' });
    expect((await runBby(node2.path, 'get', 'Pendant')).code, 'node2 is down').to.equal(1);

    // Typed into the script's terminal: node2 starts again, and catches up.
    mark = cluster.stdout.length;
    cluster.child.stdin!.write('r 2\n');
    await cluster.waitForOutput(/^\[node2\] restarting$/m, 5_000);
    await waitFor(() => /^\[node2\] \S+ info listening on /m.test(since(cluster, mark)), { timeoutMs: NODE_START_TIMEOUT_MS, what: 'node2 listening again' });
    await waitFor(async () => (await runBby(node2.path, 'get', 'Pendant')).stdout === 'panne\n', { intervalMs: 200, what: 'Pendant on the restarted node2' });
    expect(await runBby(node2.path, 'get', 'Avant')).to.include({ code: 0, stdout: 'panne\n' });

    // A node that is running is not restarted twice.
    mark = cluster.stdout.length;
    cluster.child.stdin!.write('restart node2\n');
    await waitFor(() => /^\[node2\] is running \(pid \d+\); nothing to restart$/m.test(since(cluster, mark)), { what: 'the cluster to refuse a second node2' });

    cluster.child.kill('SIGINT');
    const status = await cluster.waitForExit(10_000);
    expect(status, cluster.describe()).to.deep.equal({ code: 0, signal: null });
    await waitFor(async () => (await Promise.all(files.map((f) => isPortFree(f.port)))).every(Boolean), { timeoutMs: 5_000, what: 'the three ports to be free again' });
  });

  it('stops every node and exits 1 when one fails at its first start (a port in use)', async () => {
    const node1 = await writeConfig({ id: 'node1', file: 'node1.json' });
    const clash = await writeConfig({ id: 'clash', file: 'clash.json', port: node1.port });
    const cluster = new TrackedProcess('scripts/cluster.js', process.execPath, [CLUSTER_SCRIPT, node1.path, clash.path]);
    const status = await cluster.waitForExit(15_000);
    expect(status, cluster.describe()).to.deep.equal({ code: 1, signal: null });
    expect(cluster.stdout).to.match(/^\[(node1|clash)\] exited \(code 1\) before it started; stopping the others$/m);
    expect(await isPortFree(node1.port)).to.equal(true);
  });
});
