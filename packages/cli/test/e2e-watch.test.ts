/**
 * End to end: `bby CONFIG watch` and `bby CONFIG health` against real
 * bby-node processes (monitor.ts, the watch subscription, /health).
 */
import { expect } from 'chai';
import { BBY_BIN, NODE_START_TIMEOUT_MS, startNode, TrackedProcess, useCleanup, waitFor, waitForConnected } from './support/processes.js';

describe('e2e: bby watch and bby health', function () {
  this.timeout(30_000);
  useCleanup();

  it('watch prints one line per write as it reaches the node, from its clients and from its peers, escaped, until Ctrl-C', async () => {
    const one = await startNode({ id: 'watch-one' });
    const two = await startNode({ id: 'watch-two', peers: [one.address] });
    await waitForConnected(two, ['watch-one']);
    const watcher = new TrackedProcess('bby watch', process.execPath, [BBY_BIN, one.path, 'watch']);
    await watcher.waitForOutput(/watching the writes that reach node watch-one/, NODE_START_TIMEOUT_MS, 'stderr');
    expect(await two.bby('set', 'MonChamp', '42')).to.include({ code: 0 });
    expect(await one.bby('set', 'evil\u001b[2Jkey', 'line\nbreak')).to.include({ code: 0 });
    await waitFor(() => watcher.stdout.split('\n').length >= 3, { timeoutMs: 10_000 });
    const lines = watcher.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^\d\d:\d\d:\d\d\.\d{3} watch-two "MonChamp" "42" {2}\(from watch-two\)$/);
    // A key or value cannot move the cursor or forge a line: quoted, control characters escaped.
    expect(lines[1]).to.match(/^\d\d:\d\d:\d\d\.\d{3} watch-one "evil\\u001b\[2Jkey" "line\\nbreak" {2}\(client\)$/);
    expect(watcher.stdout).to.not.include('\u001b');
    watcher.child.kill('SIGINT');
    expect(await watcher.exited).to.deep.equal({ code: 0, signal: null });
  });

  it('watch --json prints one JSON object per write, a conflict marked', async () => {
    const a = await startNode({ id: 'json-a' });
    expect(await a.bby('set', 'k', 'first')).to.include({ code: 0 });
    // Node b writes the same key while not connected, later (a CLI run after the first one ended): it loses.
    const b = await startNode({ id: 'json-b' });
    expect(await b.bby('set', 'k', 'second')).to.include({ code: 0 });
    const watcher = new TrackedProcess('bby watch --json', process.execPath, [BBY_BIN, '--json', b.path, 'watch']);
    await watcher.waitForOutput(/watching/, NODE_START_TIMEOUT_MS, 'stderr');
    expect(await b.bby('add-peer', a.address)).to.include({ code: 0 });
    await waitFor(() => watcher.stdout.includes('"conflict":true'), { timeoutMs: 10_000 });
    const writes = watcher.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(writes.find((write) => write.conflict === true)).to.deep.include({ key: 'k', origin: 'json-a', value: 'first', from: 'json-a' });
    watcher.child.kill('SIGINT');
    expect((await watcher.exited).code).to.equal(0);
  });

  it('watch exits 1 saying so when the node goes away', async () => {
    const node = await startNode({ id: 'watch-gone' });
    const watcher = new TrackedProcess('bby watch', process.execPath, [BBY_BIN, node.path, 'watch']);
    await watcher.waitForOutput(/watching/, NODE_START_TIMEOUT_MS, 'stderr');
    await node.stop();
    expect((await watcher.exited).code).to.equal(1);
    expect(watcher.stderr).to.match(/the node closed the connection/);
  });

  it('health says ready with keys and peers (exit 0), and cannot reach a stopped node (exit 1)', async () => {
    const one = await startNode({ id: 'health-one' });
    const two = await startNode({ id: 'health-two', peers: [one.address] });
    await waitForConnected(two, ['health-one']);
    expect(await two.bby('set', 'k', 'v')).to.include({ code: 0 });
    const health = await two.bby('health');
    expect(health).to.include({ code: 0, stdout: 'ready\nkeys: 1\npeers: 1 up, 0 down, 0 connecting\n' });
    const json = JSON.parse((await two.bby('--json', 'health')).stdout) as Record<string, unknown>;
    expect(json).to.deep.include({ ready: true, node: 'health-two' });
    await one.stop();
    const down = await waitFor(
      async () => {
        const result = await two.bby('--json', 'health');
        return (JSON.parse(result.stdout) as { peers: { up: number } }).peers.up === 0 ? result : undefined;
      },
      { timeoutMs: 10_000 },
    );
    // A peer down does not make a node unready: it serves and takes writes alone.
    expect(down.code).to.equal(0);
    const unreachable = await one.bby('health');
    expect(unreachable.code).to.equal(1);
    expect(unreachable.stderr).to.match(/cannot reach the node at ws:\/\/127\.0\.0\.1:\d+ .*bby-node/);
  });
});
