import { expect } from 'chai';
import { type BbyNode, compareEntries, encodeMessage, type Entry, PROTOCOL_VERSION } from '../src/index.js';
import { Cluster, mulberry32, resultOf, START_MS } from '@bby/sim';

/** Every node holds exactly the same entries. */
function expectConverged(cluster: Cluster): Entry[] {
  const [first, ...rest] = cluster.ids.map((id) => cluster.node(id));
  const reference = first!.keys().map((key) => first!.entry(key)!);
  for (const node of rest) {
    expect(node.keys().map((key) => node.entry(key)!), `node ${node.id}`).to.deep.equal(reference);
  }
  return reference;
}

function applied(cluster: Cluster): Record<string, number> {
  return Object.fromEntries(cluster.ids.map((id) => [id, cluster.node(id).stats().entriesApplied]));
}

function sum(cluster: Cluster, counter: 'duplicatesDropped' | 'conflicts' | 'entriesApplied'): number {
  return cluster.ids.reduce((total, id) => total + cluster.node(id).stats()[counter], 0);
}

describe('replication in a line A-B-C', () => {
  function line(): { cluster: Cluster; a: BbyNode; b: BbyNode; c: BbyNode } {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    const c = cluster.addNode('c', { peers: ['b'] });
    cluster.stabilize();
    return { cluster, a, b, c };
  }

  it('a write on A reaches C through B', () => {
    const { cluster, a, c } = line();
    expect(a.set('k', 'from-a')).to.equal(true);
    cluster.stabilize();
    expect(c.get('k')).to.equal('from-a');
    expect(c.entry('k')).to.deep.equal({ key: 'k', value: 'from-a', timestamp: START_MS, origin: 'a' });
    expect(applied(cluster)).to.deep.equal({ a: 0, b: 1, c: 1 });
    expectConverged(cluster);
  });

  it('a write on C reaches A through B', () => {
    const { cluster, a } = line();
    const client = cluster.client('c');
    expect(resultOf(client.request({ type: 'set', key: 'k', value: 'from-c' }))).to.equal(true);
    expect(resultOf(cluster.client('a').request({ type: 'get', key: 'k' }))).to.equal('from-c');
    expect(a.entry('k')!.origin).to.equal('c');
    expect(applied(cluster)).to.deep.equal({ a: 1, b: 1, c: 0 });
  });

  it('a write crosses the line in two hops and is never sent back', () => {
    const { cluster, a } = line();
    cluster.resetCounters();
    a.set('k', 'v');
    const steps = cluster.stabilize();
    expect(cluster.counters.deliveriesByType).to.deep.equal({ entries: 2 });
    expect(steps).to.equal(2);
    expect(sum(cluster, 'duplicatesDropped')).to.equal(0);
  });

  it('writes made while the middle node is down arrive once it is back', () => {
    const { cluster, a, b, c } = line();
    cluster.stop('b');
    a.set('left', '1');
    c.set('right', '2');
    cluster.stabilize();
    expect(a.get('right')).to.equal(null);
    expect(c.get('left')).to.equal(null);
    cluster.start('b');
    cluster.advance(1000);
    expect(b.keys()).to.deep.equal(['left', 'right']);
    expectConverged(cluster);
  });
});

for (const n of [4, 5]) {
  for (const wiring of ['each node dials the ones before it', 'every node dials every other'] as const) {
    describe(`replication in a full mesh of ${n} nodes (${wiring})`, () => {
      const ids = ['a', 'b', 'c', 'd', 'e'].slice(0, n);

      function mesh(): Cluster {
        const cluster = new Cluster();
        ids.forEach((id, i) => {
          cluster.addNode(id, { peers: wiring === 'every node dials every other' ? ids.filter((p) => p !== id) : ids.slice(0, i) });
        });
        cluster.advance(1000); // early dials to nodes not yet created are retried
        for (const id of ids) expect(cluster.node(id).stats().peers, id).to.equal(n - 1);
        cluster.resetCounters();
        return cluster;
      }

      it(`each write is applied exactly once by each other node, in exactly ${n - 1} deliveries`, () => {
        const cluster = mesh();
        const warnsBefore = cluster.logs.filter((l) => l.level === 'warn').length;
        for (const [i, id] of ids.entries()) {
          const before = applied(cluster);
          const duplicatesBefore = sum(cluster, 'duplicatesDropped');
          cluster.resetCounters();

          expect(cluster.node(id).set(`key-${id}`, `value-${i}`)).to.equal(true);
          const steps = cluster.stabilize();

          // The origin sends to its n-1 peers and names them in "seen": nobody forwards again.
          expect(cluster.counters.deliveries).to.equal(n - 1);
          expect(cluster.counters.deliveriesByType).to.deep.equal({ entries: n - 1 });
          expect(steps).to.equal(n - 1);
          const after = applied(cluster);
          for (const other of ids) expect(after[other]! - before[other]!, `${other} applying key-${id}`).to.equal(other === id ? 0 : 1);
          expect(sum(cluster, 'duplicatesDropped') - duplicatesBefore).to.equal(0);
        }
        for (const id of ids) {
          expect(cluster.node(id).stats()).to.include({ entriesApplied: n - 1, writesAccepted: 1, conflicts: 0, errors: 0 });
          expect(cluster.persisted.get(id)!.filter((key) => key.startsWith('key-'))).to.have.length(n);
        }
        expect(cluster.logs.filter((l) => l.level === 'warn')).to.have.length(warnsBefore);
        expect(expectConverged(cluster).map((e) => e.key)).to.deep.equal(ids.map((id) => `key-${id}`));
      });

      it('concurrent writes on every node converge, each applied once per node, with no warning', () => {
        const cluster = mesh();
        const logsBefore = cluster.logs.length;
        for (const id of ids) for (let k = 0; k < 3; k++) cluster.node(id).set(`${id}-${k}`, `${id}${k}`);
        const steps = cluster.stabilize();
        // Each node's 3 writes leave in one message per peer (coalesced when the effects are taken).
        expect(steps).to.equal(ids.length * (n - 1));
        for (const id of ids) expect(cluster.node(id).stats().entriesApplied, id).to.equal(3 * (n - 1));
        expect(sum(cluster, 'duplicatesDropped')).to.equal(0);
        expect(cluster.logs.slice(logsBefore).filter((l) => l.level === 'warn')).to.deep.equal([]);
        expect(expectConverged(cluster)).to.have.length(3 * n);
      });
    });
  }
}

describe('a node that joins late', () => {
  function running(): Cluster {
    const cluster = new Cluster();
    cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.addNode('c', { peers: ['a', 'b'] });
    cluster.stabilize();
    for (let i = 0; i < 30; i++) cluster.node(['a', 'b', 'c'][i % 3]!).set(`key-${String(i).padStart(2, '0')}`, `v${i}`);
    cluster.stabilize();
    return cluster;
  }

  it('receives every existing key from the one peer it knows', () => {
    const cluster = running();
    const d = cluster.addNode('d', { peers: ['c'] });
    cluster.stabilize();
    expect(d.keys()).to.have.length(30);
    expect(d.stats()).to.include({ entriesApplied: 30, peers: 1 });
    expectConverged(cluster);
  });

  it('receives later writes made anywhere, and its own writes reach everyone', () => {
    const cluster = running();
    const d = cluster.addNode('d', { peers: ['c'] });
    cluster.stabilize();
    cluster.node('a').set('after-a', '1');
    cluster.stabilize();
    expect(d.get('after-a')).to.equal('1');
    d.set('from-d', '2');
    cluster.stabilize();
    for (const id of ['a', 'b', 'c']) expect(cluster.node(id).get('from-d'), id).to.equal('2');
    expect(d.stats().entriesApplied).to.equal(31);
    expect(cluster.node('a').stats().entriesApplied).to.equal(20 + 1);
    expectConverged(cluster);
  });

  it('brings the keys it already had to the others', () => {
    const cluster = running();
    const d = cluster.addNode('d');
    d.set('only-on-d', 'x');
    d.addPeer('sim-c:1');
    cluster.stabilize();
    for (const id of ['a', 'b', 'c']) expect(cluster.node(id).get('only-on-d'), id).to.equal('x');
    expect(expectConverged(cluster)).to.have.length(31);
  });
});

describe('conflicting writes', () => {
  it('two nodes that accepted different values before connecting converge to the oldest on every node', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b');
    const c = cluster.addNode('c', { peers: ['b'] });
    cluster.stabilize();
    expect(a.set('color', 'red')).to.equal(true);
    cluster.advance(5);
    expect(b.set('color', 'blue')).to.equal(true);
    cluster.stabilize();
    expect(c.get('color')).to.equal('blue');

    b.addPeer('sim-a:1');
    cluster.stabilize();
    for (const node of [a, b, c]) {
      expect(node.entry('color'), node.id).to.deep.equal({ key: 'color', value: 'red', timestamp: START_MS, origin: 'a' });
      expect(node.stats().conflicts, node.id).to.equal(1);
    }
    expect(b.set('color', 'blue')).to.equal(false);
    expect(cluster.logs.filter((l) => l.message.startsWith('conflict on key "color"'))).to.have.length(3);
  });

  for (const dialer of ['alpha', 'beta']) {
    it(`writes with equal timestamps are won by the lowest origin id on every node (${dialer} dials)`, () => {
      const cluster = new Cluster();
      const alpha = cluster.addNode('alpha');
      const beta = cluster.addNode('beta');
      expect(beta.set('k', 'aaa')).to.equal(true);
      expect(alpha.set('k', 'zzz')).to.equal(true);
      expect(alpha.entry('k')!.timestamp).to.equal(beta.entry('k')!.timestamp);
      cluster.node(dialer).addPeer(dialer === 'alpha' ? 'sim-beta:1' : 'sim-alpha:1');
      cluster.stabilize();
      expect(alpha.entry('k')).to.deep.equal({ key: 'k', value: 'zzz', timestamp: START_MS, origin: 'alpha' });
      expectConverged(cluster);
      expect(alpha.stats().conflicts + beta.stats().conflicts).to.equal(2);
    });
  }

  it('entries with equal timestamp and origin are won by the lowest value on every node', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    // A client posing as a peer sends two writes that differ only by value.
    const fake = cluster.client('a');
    fake.sendRaw(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: 'x', address: '' }));
    fake.sendRaw(encodeMessage({ type: 'entries', entries: [{ key: 'k', value: 'pear', timestamp: 5, origin: 'x' }] }));
    fake.sendRaw(encodeMessage({ type: 'entries', entries: [{ key: 'k', value: 'apple', timestamp: 5, origin: 'x' }] }));
    fake.sendRaw(encodeMessage({ type: 'entries', entries: [{ key: 'k', value: 'cherry', timestamp: 5, origin: 'x' }] }));
    cluster.stabilize();
    expect(expectConverged(cluster)).to.deep.equal([{ key: 'k', value: 'apple', timestamp: 5, origin: 'x' }]);
    expect(cluster.node('b').stats()).to.include({ entriesApplied: 2, conflicts: 1 });
  });
});

describe('random scenarios (seeded)', () => {
  for (let seed = 1; seed <= 30; seed++) {
    it(`seed ${seed}: a random connected mesh with conflicting writes, stops and restarts converges to the oldest writes`, () => {
      const random = mulberry32(seed);
      const int = (n: number) => Math.floor(random() * n);
      const cluster = new Cluster({ seed });
      const n = 3 + int(4);
      const ids = Array.from({ length: n }, (_, i) => `n${i}`);
      // A random spanning tree (so the mesh is connected) plus a few extra links.
      ids.forEach((id, i) => {
        const peers = i === 0 ? [] : [ids[int(i)]!];
        if (i > 1 && random() < 0.4) peers.push(ids[int(i)]!);
        cluster.addNode(id, { peers: [...new Set(peers)] });
      });
      const accepted: Entry[] = [];
      for (let round = 0; round < 40; round++) {
        const id = ids[int(n)]!;
        const action = random();
        if (action < 0.6 && cluster.isUp(id)) {
          const key = `k${int(6)}`;
          const node = cluster.node(id);
          if (node.set(key, `${id}-${round}`) && node.entry(key)!.origin === id && node.entry(key)!.value === `${id}-${round}`) accepted.push(node.entry(key)!);
        } else if (action < 0.7 && cluster.isUp(id) && id !== ids[0]) {
          cluster.stop(id);
        } else if (action < 0.8 && !cluster.isUp(id)) {
          cluster.start(id);
        }
        if (random() < 0.5) cluster.advance(int(3) * 10);
      }
      for (const id of ids) if (!cluster.isUp(id)) cluster.start(id);
      cluster.advance(20_000);
      const final = expectConverged(cluster);
      for (const e of final) {
        const candidates = accepted.filter((a) => a.key === e.key).sort(compareEntries);
        expect(e, e.key).to.deep.equal(candidates[0]);
      }
      expect(final.map((e) => e.key)).to.deep.equal([...new Set(accepted.map((a) => a.key))].sort());
      for (const id of ids) expect(cluster.node(id).stats().errors, id).to.equal(0);
      expect(cluster.logs.filter((l) => l.level === 'warn' && !l.message.startsWith('cannot reach'))).to.deep.equal([]);
    });
  }
});
