/**
 * End to end: replication between real bby-node processes, driven by the real
 * bby CLI. Every test starts its own nodes on free loopback ports.
 */
import { expect } from 'chai';
import {
  startNode,
  startNodes,
  useCleanup,
  waitFor,
  waitForConnected,
  waitForValue,
  writeConfig,
  type NodeHandle,
  type NodeStats,
  type PeerRow,
} from './support/processes.js';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('e2e: replication between bby-node processes', function () {
  this.timeout(30_000);
  useCleanup();

  it('runs several nodes side by side, each on its own port with its own store', async () => {
    const [a, b, c] = await startNodes([await writeConfig({ id: 'side-a' }), await writeConfig({ id: 'side-b' }), await writeConfig({ id: 'side-c' })]);
    // Each answers on its own port, as itself.
    for (const node of [a!, b!, c!]) expect(await node.query<NodeStats>({ type: 'stats' })).to.include({ id: node.id, keys: 0 });
    expect(await a!.bby('set', 'only-on-a', '1')).to.include({ code: 0, stdout: 'true\n' });
    // Not peers: the others do not get it.
    expect(await b!.bby('get', 'only-on-a')).to.include({ code: 0, stdout: 'null\n' });
    expect(await c!.bby('get', 'only-on-a')).to.include({ code: 0, stdout: 'null\n' });
  });

  it('retries a configured peer that is not up yet until it is', async () => {
    const aFile = await writeConfig({ id: 'late-a' });
    const b = await startNode({ id: 'early-b', peers: [aFile.address] });
    // B cannot reach A yet and says so, but keeps running.
    const down = await waitFor(
      async () => {
        const rows = await b.query<PeerRow[]>({ type: 'peers' });
        return rows.find((r) => r.address === aFile.address && !r.connected && r.lastError !== undefined);
      },
      { what: 'early-b to report late-a as down with a reason' },
    );
    expect(down.direction).to.equal('outbound');
    const shown = await b.bby('peers');
    expect(shown.stdout).to.match(new RegExp(`^${escapeRegExp(aFile.address)}\\s+-\\s+outbound\\s+down \\(connection refused\\)$`, 'm'));
    expect(b.process.exitStatus).to.equal(undefined);

    const a = await startNode(aFile);
    await waitForConnected(b, ['late-a'], 15_000);
    expect((await a.bby('set', 'came-up', 'yes')).stdout).to.equal('true\n');
    await waitForValue(b, 'came-up', 'yes');
  });

  it('treats a node that dialed in as a peer: listed as inbound and connected, and written to', async () => {
    const a = await startNode({ id: 'dialed' });
    const b = await startNode({ id: 'dialer', peers: [a.address] });
    await waitFor(async () => (await a.query<PeerRow[]>({ type: 'peers' })).some((r) => r.id === 'dialer' && r.connected), {
      what: 'the dialed node to list the dialer',
    });
    const rows = await a.json<PeerRow[]>('peers');
    expect(rows).to.deep.equal([{ address: b.address, id: 'dialer', direction: 'inbound', connected: true }]);

    // The text form shows the same row.
    const text = await a.bby('peers');
    expect(text.code).to.equal(0);
    expect(text.stdout).to.match(new RegExp(`^${escapeRegExp(b.address)}\\s+dialer\\s+inbound\\s+connected$`, 'm'));

    // The dialed node writes to its inbound peer as to any peer.
    expect((await a.bby('set', 'to-the-dialer', 'v')).stdout).to.equal('true\n');
    await waitForValue(b, 'to-the-dialer', 'v');
  });

  it('carries writes both ways along a line A-B-C', async () => {
    // Without peer exchange, so that A and C stay unaware of each other.
    const aFile = await writeConfig({ id: 'line-a', peerExchange: false });
    const bFile = await writeConfig({ id: 'line-b', peers: [aFile.address], peerExchange: false });
    const cFile = await writeConfig({ id: 'line-c', peers: [bFile.address], peerExchange: false });
    const [a, b, c] = (await startNodes([aFile, bFile, cFile])) as [NodeHandle, NodeHandle, NodeHandle];
    await waitForConnected(b, ['line-a', 'line-c']);
    await waitForConnected(c, ['line-b']);

    expect((await a.bby('set', 'from-a', 'alpha')).stdout).to.equal('true\n');
    await waitForValue(c, 'from-a', 'alpha');
    expect((await c.bby('set', 'from-c', 'gamma')).stdout).to.equal('true\n');
    await waitForValue(a, 'from-c', 'gamma');

    // A and C are not connected to each other: the entries went through B.
    const aPeers = await a.json<PeerRow[]>('peers');
    expect(aPeers.map((r) => r.id)).to.deep.equal(['line-b']);
    for (const node of [a, b, c]) expect((await node.query<string[]>({ type: 'keys' })).sort()).to.deep.equal(['from-a', 'from-c']);
  });

  it('applies each write once per node in a full mesh of 3, each delivered once: no duplicate to drop', async () => {
    const files = [await writeConfig({ id: 'mesh-a' }), await writeConfig({ id: 'mesh-b' }), await writeConfig({ id: 'mesh-c' })];
    // Every node lists both others: each pair dials both ways, and keeps one link (the dial of the smaller id).
    const withPeers = await Promise.all(
      files.map((f) => writeConfig({ id: f.id, port: f.port, peers: files.filter((o) => o !== f).map((o) => o.address) })),
    );
    const nodes = (await startNodes(withPeers)) as [NodeHandle, NodeHandle, NodeHandle];
    const ids = nodes.map((n) => n.id);
    for (const node of nodes) await waitForConnected(node, ids.filter((id) => id !== node.id), 15_000);
    // Each link's catch-up is done once both sides logged it and no second link is still being closed:
    // a link that comes up after a write may catch it up again (a duplicate, dropped: by design),
    // which is not what this test counts.
    for (const node of nodes) {
      await waitFor(
        async () => {
          const rows = await node.query<PeerRow[]>({ type: 'peers' });
          const others = ids.filter((id) => id !== node.id);
          return rows.length === others.length && others.every((id) => rows.some((r) => r.id === id && r.connected));
        },
        { what: `${node.id} to list each of its two peers once, connected`, timeoutMs: 15_000 },
      );
    }
    // Two dials of one pair that crossed end with one link closed; wait until no link comes or goes for a second.
    const linkEvents = () => nodes.map((n) => n.process.stdout.match(/connected to peer|lost peer/g)?.length ?? 0).join(',');
    let lastEvents = linkEvents();
    let stableSinceMs = Date.now();
    await waitFor(
      () => {
        const events = linkEvents();
        if (events !== lastEvents) [lastEvents, stableSinceMs] = [events, Date.now()];
        return Date.now() - stableSinceMs >= 1_000;
      },
      { what: 'the links of the mesh to settle', timeoutMs: 15_000 },
    );

    // 3 writes on A, 1 on B, 1 on C.
    const writes: [NodeHandle, string][] = [
      [nodes[0], 'a1'],
      [nodes[0], 'a2'],
      [nodes[0], 'a3'],
      [nodes[1], 'b1'],
      [nodes[2], 'c1'],
    ];
    for (const [node, key] of writes) expect((await node.bby('set', key, `value-of-${key}`)).stdout).to.equal('true\n');
    const total = writes.length;

    // The origin sends each write to both others and names them in "seen", so the third
    // node does not forward it again: applied once everywhere, and no copy to drop.
    await waitFor(
      async () => {
        const all = await Promise.all(nodes.map((n) => n.query<NodeStats>({ type: 'stats' })));
        return all.every((s) => s.keys === total);
      },
      { what: `every node to hold ${total} keys` },
    );
    const stats: NodeStats[] = [];
    for (const node of nodes) stats.push(await node.json<NodeStats>('stats'));
    for (const [index, node] of nodes.entries()) {
      const s = stats[index]!;
      const own = writes.filter(([origin]) => origin === node).length;
      expect(s.writesAccepted, `${node.id} writesAccepted`).to.equal(own);
      expect(s.entriesApplied, `${node.id} entriesApplied`).to.equal(total - own);
      expect(s.conflicts, `${node.id} conflicts`).to.equal(0);
      expect(s.errors, `${node.id} errors`).to.equal(0);
      expect(s.duplicatesDropped, `${node.id} duplicatesDropped`).to.equal(0);
      expect(s.peers, `${node.id} peers`).to.equal(2);
    }
    for (const node of nodes) {
      expect((await node.query<string[]>({ type: 'keys' })).sort()).to.deep.equal(writes.map(([, k]) => k).sort());
      // Duplicates are routine: they are counted, not reported as errors.
      expect(node.process.stdout + node.process.stderr, `${node.id} output`).not.to.match(/error/i);
      expect(node.process.stdout + node.process.stderr, `${node.id} output`).not.to.match(/conflict/i);
    }
  });

  it('gives a node that joins later every existing key, through a single peer, and later writes too', async () => {
    // Without peer exchange: C must get everything through the one peer it knows.
    const aFile = await writeConfig({ id: 'old-a', peerExchange: false });
    const bFile = await writeConfig({ id: 'old-b', peers: [aFile.address], peerExchange: false });
    const [a, b] = (await startNodes([aFile, bFile])) as [NodeHandle, NodeHandle];
    await waitForConnected(b, ['old-a']);

    const keys = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    // Half written on A, half on B. Setup only, so through the client library rather
    // than 20 CLI processes (the CLI's set is tested on its own elsewhere); one with the CLI.
    for (const key of keys.slice(1)) {
      const node = Number(key.slice(1)) % 2 === 0 ? a : b;
      expect(await node.query({ type: 'set', key, value: `v-${key}` }), `set ${key}`).to.equal(true);
    }
    expect((await a.bby('set', 'k00', 'v-k00')).stdout).to.equal('true\n');
    await waitFor(async () => (await b.query<string[]>({ type: 'keys' })).length === 20, { what: 'old-b to hold the 20 keys' });

    // C knows only B.
    const c = await startNode({ id: 'new-c', peers: [b.address], peerExchange: false });
    await waitFor(async () => (await c.query<string[]>({ type: 'keys' })).length === 20, { what: 'new-c to receive the 20 existing keys' });
    expect((await c.bby('keys')).stdout).to.equal(`${keys.join('\n')}\n`);
    for (const key of ['k00', 'k07', 'k19']) expect((await c.bby('get', key)).stdout).to.equal(`v-${key}\n`);
    const cStats = await c.json<NodeStats>('stats');
    expect(cStats.entriesApplied).to.equal(20);

    // A write made later on A (not a peer of C) reaches C through B.
    expect((await a.bby('set', 'after-join', 'later')).stdout).to.equal('true\n');
    await waitForValue(c, 'after-join', 'later');
    const cPeers = await c.json<PeerRow[]>('peers');
    expect(cPeers.map((r) => r.id)).to.deep.equal(['old-b']);
  });

  it('settles a key written differently on two unconnected nodes on the oldest write once they meet', async () => {
    const a = await startNode({ id: 'split-a' });
    const b = await startNode({ id: 'split-b' });
    expect((await a.bby('set', 'contested', 'first')).stdout).to.equal('true\n');
    // B's write is later: the CLI run alone takes far more than the 1 ms timestamp resolution.
    expect((await b.bby('set', 'contested', 'second')).stdout).to.equal('true\n');
    expect(await b.query({ type: 'get', key: 'contested' })).to.equal('second');

    const added = await b.bby('add-peer', a.address);
    expect(added.code).to.equal(0);
    expect(added.stdout).to.equal(`connected to ${a.address} (node split-a)\n`);

    await waitForValue(b, 'contested', 'first');
    expect((await a.bby('get', 'contested')).stdout).to.equal('first\n');
    const sb = await b.json<NodeStats>('stats');
    const sa = await a.query<NodeStats>({ type: 'stats' });
    expect(sa.conflicts + sb.conflicts).to.be.at.least(1);
    expect(sb.conflicts, 'split-b saw the older value arrive').to.be.at.least(1);

    // Once settled, the key is write-once again: the value B wrote is refused there now.
    expect(await b.bby('set', 'contested', 'second')).to.include({ code: 0, stdout: 'false\n' });
  });
});
