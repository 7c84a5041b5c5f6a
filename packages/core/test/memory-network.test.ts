import { expect } from 'chai';
import { createMemoryNetwork, createNode, type Effect, type LinkId, memoryAddress } from '../src/index.js';
import { readyEffects } from '../src/internal.js';
import { mulberry32, START_MS } from '@bby/sim';

/** A clock the test moves. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let nowMs = START_MS;
  return { now: () => nowMs, advance: (ms) => void (nowMs += ms) };
}

describe('MemoryNetwork', () => {
  describe('#addNode', () => {
    it('connects nodes named by id, in either order, and replicates a write to every node', () => {
      const time = clock();
      const network = createMemoryNetwork({ now: time.now, random: mulberry32(1) });
      const a = network.addNode({ id: 'a', peers: ['b'] });
      const b = network.addNode({ id: 'b' });
      const c = network.addNode({ id: 'c', peers: [memoryAddress('b')] });
      network.flush();
      expect(network.openLinks).to.equal(3); // a-b, c-b, and a-c through peer exchange
      expect(a.set('MonChamp', '42')).to.equal(true);
      network.flush();
      expect([b.get('MonChamp'), c.get('MonChamp')]).to.deep.equal(['42', '42']);
      expect(c.set('MonChamp', '43')).to.equal(false);
      expect(network.ids).to.deep.equal(['a', 'b', 'c']);
    });

    it('refuses a second node with the same id', () => {
      const network = createMemoryNetwork({ now: clock().now, random: mulberry32(1) });
      network.addNode({ id: 'a' });
      expect(() => network.addNode({ id: 'a' })).to.throw(/already in the network/);
    });
  });

  describe('delayMs', () => {
    it('holds a frame until the clock reaches its due time', () => {
      const time = clock();
      const network = createMemoryNetwork({ now: time.now, random: mulberry32(2), delayMs: 50 });
      const a = network.addNode({ id: 'a' });
      const b = network.addNode({ id: 'b', peers: ['a'] });
      for (let i = 0; i < 10 && !(a.stats().peers === 1 && b.stats().peers === 1); i++) {
        time.advance(50);
        network.flush();
      }
      expect(a.stats().peers).to.equal(1);
      a.set('k', 'v');
      network.flush();
      expect(b.get('k')).to.equal(null);
      expect(network.nextDueMs()).to.equal(time.now() + 50);
      time.advance(49);
      network.flush();
      expect(b.get('k')).to.equal(null);
      time.advance(1);
      network.flush();
      expect(b.get('k')).to.equal('v');
    });

    it('keeps each link in order whatever the random delays', () => {
      const time = clock();
      const random = mulberry32(3);
      const network = createMemoryNetwork({ now: time.now, random, delayMs: () => Math.floor(random() * 100) });
      const a = network.addNode({ id: 'a' });
      const b = network.addNode({ id: 'b', peers: ['a'] });
      for (let i = 0; i < 100 && !(a.stats().peers === 1 && b.stats().peers === 1); i++) {
        time.advance(10);
        network.flush();
      }
      expect(a.stats().peers).to.equal(1);
      const received: string[] = [];
      for (let i = 0; i < 20; i++) {
        a.set(`key-${i}`, `${i}`);
        network.flush(); // one entries message per write
        time.advance(3);
      }
      for (let i = 0; i < 100; i++) {
        time.advance(10);
        network.flush();
        for (let k = 0; k < 20; k++) if (b.get(`key-${k}`) !== null && !received.includes(`key-${k}`)) received.push(`key-${k}`);
      }
      expect(received).to.deep.equal(Array.from({ length: 20 }, (_, i) => `key-${i}`));
    });
  });

  describe('lossRate', () => {
    it('drops frames, and the mesh converges anyway (retries, heartbeats, anti-entropy), the same way for the same seed', () => {
      const run = (seed: number) => {
        const time = clock();
        const network = createMemoryNetwork({ now: time.now, random: mulberry32(seed), lossRate: 0.2 });
        const timing = { antiEntropyIntervalMs: 500 };
        const nodes = ['a', 'b', 'c'].map((id, index) => network.addNode({ id, timing, peers: index === 0 ? [] : ['a'] }));
        for (let i = 0; i < 50; i++) nodes[i % 3]!.set(`key-${i}`, `${i}`);
        for (let step = 0; step < 3000 && !nodes.every((node) => node.keys().length === 50); step++) {
          time.advance(100);
          network.tick();
        }
        return { keys: nodes.map((node) => node.keys().length), lost: network.stats.lost, delivered: network.stats.delivered };
      };
      const first = run(4);
      expect(first.keys).to.deep.equal([50, 50, 50]);
      expect(first.lost).to.be.greaterThan(0);
      expect(run(4)).to.deep.equal(first);
    });

    it('must be in [0, 1)', () => {
      expect(() => createMemoryNetwork({ now: clock().now, random: mulberry32(1), lossRate: 1 })).to.throw(RangeError);
    });
  });

  describe('#isolate', () => {
    it('cuts a node off until it rejoins, then the node catches up', () => {
      const time = clock();
      const network = createMemoryNetwork({ now: time.now, random: mulberry32(5) });
      const a = network.addNode({ id: 'a' });
      const b = network.addNode({ id: 'b', peers: ['a'] });
      network.flush();
      network.isolate('b');
      expect(network.openLinks).to.equal(0);
      a.set('while-away', '1');
      network.flush();
      time.advance(1000);
      network.tick();
      expect(b.get('while-away')).to.equal(null);
      expect(network.stats.refused).to.be.greaterThan(0);
      network.rejoin('b');
      for (let i = 0; i < 100 && b.get('while-away') === null; i++) {
        time.advance(100);
        network.tick();
      }
      expect(b.get('while-away')).to.equal('1');
    });
  });

  describe('onEffect', () => {
    it('receives the effects the network does not carry out', () => {
      const seen: string[] = [];
      const network = createMemoryNetwork({ now: clock().now, random: mulberry32(6), onEffect: (id, effect) => seen.push(`${id} ${effect.type}`) });
      const a = network.addNode({ id: 'a' });
      network.addNode({ id: 'b', peers: ['a'] });
      network.flush();
      a.set('k', 'v');
      network.flush();
      expect(seen).to.include.members(['a persist', 'b persist', 'a log', 'b log']);
      expect(seen.some((line) => line.endsWith(' send') || line.endsWith(' dial'))).to.equal(false);
    });
  });
});

describe('an adapter that writes JSON.stringify(effect.message)', () => {
  it('replicates as well as one that writes effect.text', () => {
    const now = () => START_MS;
    const a = createNode({ id: 'a', address: 'a:1', now, random: mulberry32(7) });
    const b = createNode({ id: 'b', address: 'b:1', peers: ['a:1'], now, random: mulberry32(8) });
    const links = new Map<string, { node: typeof a; link: LinkId }>();
    const carryOut = (from: typeof a, effect: Effect) => {
      if (effect.type === 'dial') {
        const accepted = a.accept();
        links.set(`b/${effect.link}`, { node: a, link: accepted });
        links.set(`a/${accepted}`, { node: b, link: effect.link });
        b.opened(effect.link);
      } else if (effect.type === 'send') {
        const to = links.get(`${from.id}/${effect.link}`)!;
        from.written(effect.link, effect.bytes);
        to.node.receive(to.link, JSON.stringify(effect.message));
      }
    };
    for (let round = 0; round < 20; round++) {
      if (round === 5) a.set('MonChamp', '42');
      for (const node of [a, b]) for (const effect of readyEffects(node.takeReady())) carryOut(node, effect);
    }
    expect(b.get('MonChamp')).to.equal('42');
    expect(a.stats()).to.include({ errors: 0, peers: 1 });
    expect(b.stats()).to.include({ errors: 0, entriesApplied: 1 });
  });
});
