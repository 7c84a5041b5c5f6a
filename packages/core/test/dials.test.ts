/**
 * What a remote party can make a node dial, and what `peers` answers: every
 * list bounded (issue "Bounded under abuse").
 */
import { expect } from 'chai';
import { createNode, type Effect, type Message } from '../src/index.js';
import { readyEffects, MAX_DIAL_TARGETS, MAX_LEARNED_PER_MINUTE, MAX_PEERS_LISTED } from '../src/internal.js';
import { Cluster, mulberry32, START_MS } from '@bby/sim';

function lone() {
  const clock = { now: START_MS };
  const node = createNode({ id: 'a', address: 'sim-a:1', now: () => clock.now, random: mulberry32(1) });
  return { node, clock };
}

describe('dials: bounded', () => {
  it(`keeps at most ${MAX_DIAL_TARGETS} dial targets: add-peer past it answers TOO_MANY_PEERS naming remove-peer`, () => {
    const { node } = lone();
    for (let i = 0; i < MAX_DIAL_TARGETS; i++) node.addPeer(`10.0.${i >> 8}.${i & 255}:7000`);
    const link = node.accept();
    node.receive(link, JSON.stringify({ type: 'add-peer', id: 1, address: '10.9.9.9:7000' }));
    const answer = readyEffects(node.takeReady()).find((e): e is Extract<Effect, { type: 'send' }> => e.type === 'send' && e.message.type === 'error')!.message;
    expect(answer).to.include({ id: 1, code: 'TOO_MANY_PEERS' });
    expect(answer.type === 'error' && answer.message).to.include('remove-peer');
    expect(() => node.addPeer('10.9.9.9:7000')).to.throw().with.property('code', 'TOO_MANY_PEERS');
    // An address already dialed is still fine.
    expect(node.addPeer('10.0.0.0:7000')).to.equal('10.0.0.0:7000');
  });

  it('remove-peer stops dialing an address, closes its link, forgets it, and says when it was not dialed', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.addNode('b');
    const client = cluster.client('a');
    expect(client.request({ type: 'add-peer', address: 'sim-b:1' })).to.deep.include({ result: { address: 'sim-b:1', connected: true, id: 'b', retrying: false } });
    expect(cluster.peersAdded.get('a')).to.deep.equal(['sim-b:1']);
    expect(client.request({ type: 'remove-peer', address: 'sim-b:1' })).to.deep.include({ result: { address: 'sim-b:1', removed: true } });
    cluster.advance(10_000);
    expect(a.peers()).to.deep.equal([]);
    expect(cluster.peersAdded.get('a')).to.deep.equal([]);
    expect(client.request({ type: 'remove-peer', address: 'sim-b:1' })).to.deep.include({ result: { address: 'sim-b:1', removed: false } });
    expect(client.request({ type: 'remove-peer', address: 'nonsense' })).to.include({ type: 'error', code: 'BAD_ADDRESS' });
  });

  it(`learns at most ${MAX_LEARNED_PER_MINUTE} new addresses a minute, and does not learn again one it forgot`, () => {
    const cluster = new Cluster({ peerExchange: true });
    const a = cluster.addNode('a');
    const flooder = cluster.client('a');
    flooder.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'flooder', address: 'sim-flooder:1' }));
    let learnt = 0;
    for (let list = 0; list < 20; list++) {
      const addresses = Array.from({ length: 32 }, (_, i) => `10.1.${list}.${i}:7000`);
      flooder.exchange(JSON.stringify({ type: 'peer-list', addresses }));
      learnt = a.stats().peersLearned;
    }
    expect(learnt).to.equal(MAX_LEARNED_PER_MINUTE);
    // Those fail (nobody listens there) and are forgotten; room comes back after a minute, but not for them.
    cluster.advance(61_000, { stepMs: 100 });
    expect(cluster.logs.filter((l) => l.message.startsWith('forgot learnt peer')).length).to.equal(MAX_LEARNED_PER_MINUTE);
    // The flooder fell silent meanwhile and was dropped: it comes back.
    const again = cluster.client('a');
    again.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'flooder2', address: 'sim-flooder2:1' }));
    const dialsBefore = cluster.counters.dials;
    const forgotten = cluster.logs.flatMap((l) => /^forgot learnt peer (\S+)/.exec(l.message)?.[1] ?? []);
    again.exchange(JSON.stringify({ type: 'peer-list', addresses: forgotten }));
    expect(a.stats().peersLearned).to.equal(MAX_LEARNED_PER_MINUTE);
    again.exchange(JSON.stringify({ type: 'peer-list', addresses: ['10.2.0.1:7000'] }));
    expect(a.stats().peersLearned).to.equal(MAX_LEARNED_PER_MINUTE + 1);
    expect(cluster.counters.dials).to.be.greaterThan(dialsBefore);
  });

  it('never keeps nor relays a wildcard address a peer announced (0.0.0.0, ::), which nobody can dial', () => {
    const cluster = new Cluster({ peerExchange: true });
    const a = cluster.addNode('a');
    const old = cluster.client('a');
    old.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'old', address: '0.0.0.0:7000' }));
    const lister = cluster.client('a');
    lister.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'lister', address: 'sim-lister:1' }));
    lister.exchange(JSON.stringify({ type: 'peer-list', addresses: ['0.0.0.0:7001', '[::]:7002', '[::ffff:0.0.0.0]:7003', '10.3.0.1:7000'] }));
    expect(a.stats().peersLearned).to.equal(1);
    const listed = a.peers().map((p) => p.address);
    expect(listed).to.include('10.3.0.1:7000');
    expect(listed.filter((address) => address !== null && /^(0\.0\.0\.0|\[::|\[::ffff:0)/.test(address))).to.deep.equal([]);
    // A newcomer's peer list names neither.
    const newcomer = cluster.client('a');
    newcomer.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'newcomer', address: 'sim-newcomer:1' }));
    const relayed = newcomer.inbox.filter((m): m is Extract<Message, { type: 'peer-list' }> => m.type === 'peer-list').flatMap((m) => m.addresses);
    expect(relayed).to.include('sim-lister:1');
    expect(relayed.filter((address) => address.includes('0.0.0.0') || address.startsWith('[::'))).to.deep.equal([]);
  });

  it(`answers peers with at most ${MAX_PEERS_LISTED} rows and the count it left out, within one frame`, () => {
    const { node } = lone();
    for (let i = 0; i < MAX_DIAL_TARGETS; i++) node.addPeer(`10.0.${i >> 8}.${i & 255}:7000`);
    for (let i = 0; i < 400; i++) {
      const link = node.accept();
      node.receive(link, JSON.stringify({ type: 'hello', protocol: 3, nodeId: `peer-${i}`, address: `10.5.${i >> 8}.${i & 255}:7000` }));
    }
    readyEffects(node.takeReady());
    const client = node.accept();
    node.receive(client, JSON.stringify({ type: 'peers', id: 1 }));
    const reply = readyEffects(node.takeReady()).find((e): e is Extract<Effect, { type: 'send' }> => e.type === 'send' && e.link === client)!.message as Extract<Message, { type: 'reply' }>;
    expect(reply.result).to.have.length(MAX_PEERS_LISTED);
    expect(reply.omitted).to.equal(MAX_DIAL_TARGETS + 400 - MAX_PEERS_LISTED);
    expect(JSON.stringify(reply).length).to.be.below(1024 * 1024);
  });
});
