import { expect } from 'chai';
import {
  CLOSE_CODES,
  createNode,
  DEFAULT_TIMING,
  encodeMessage,
  type Entry,
  type Message,
  PROTOCOL_VERSION,
} from '../src/index.js';
import {
  BUCKET_COUNT,
  DIGEST_HEX_DIGITS,
  LEARNED_MAX_FAILURES,
  MAX_PEER_LIST,
  readyEffects,
  RETRY_CAP_MS,
} from '../src/internal.js';
import { Cluster, type Client, START_MS } from '@bby/sim';

const hello = (nodeId: string) => JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId, address: `sim-${nodeId}:1` });
const entriesIn = (messages: Message[]) => messages.flatMap((m) => (m.type === 'entries' ? m.entries : []));
const entry = (key: string, value: string, origin = 'p'): Entry => ({ key, value, timestamp: START_MS, origin });

/** A client that poses as peer `p` of node `a`. */
function fakePeer(cluster: Cluster, nodeId = 'p'): Client {
  const client = cluster.client('a');
  client.exchange(hello(nodeId));
  return client;
}

describe('catch-up at (re)connection', () => {
  it('a peer that reconnects receives only the writes it missed, not the whole store', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    for (let i = 0; i < 100; i++) a.set(`old-${i}`, 'v');
    cluster.stabilize();
    expect(b.keys()).to.have.length(100);
    expect(b.cursors()).to.have.property('a');

    cluster.stop('b');
    for (let i = 0; i < 10; i++) a.set(`new-${i}`, 'v');
    const sentBefore = a.stats().catchUpEntriesSent;
    const receivedBefore = b.stats().catchUpEntriesReceived;
    cluster.start('b');
    cluster.advance(RETRY_CAP_MS);

    expect(b.keys()).to.have.length(110);
    expect(a.stats().catchUpEntriesSent - sentBefore).to.equal(10);
    expect(b.stats().catchUpEntriesReceived - receivedBefore).to.equal(10);
    expect(a.stats().fullTransfersSent).to.equal(1); // only the very first connection
  });

  it('a reconnection does not send back what the peer gave: idle pings move its cursor', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    for (let i = 0; i < 50; i++) a.set(`from-a-${i}`, 'v');
    cluster.stabilize();
    // b's 50 changes all came from a; b's idle pings tell a that it has them all.
    cluster.advance(DEFAULT_TIMING.heartbeatIntervalMs * 2);
    expect(a.cursors().b!.seq).to.equal(50);
    cluster.stop('b');
    cluster.start('b');
    const sentBefore = b.stats().catchUpEntriesSent;
    cluster.advance(RETRY_CAP_MS);
    expect(b.stats().peers).to.equal(1);
    expect(b.stats().catchUpEntriesSent - sentBefore).to.equal(0);
  });

  it('answers a cursor of its own epoch with the changes after it, and anything else with the whole store', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    for (let i = 0; i < 5; i++) a.set(`k${i}`, 'v');
    const peer = fakePeer(cluster);

    const since = (cursor: unknown) => peer.exchange(JSON.stringify({ type: 'catch-up', since: cursor }));
    const partial = since({ epoch: a.epoch, seq: 3 });
    expect(entriesIn(partial).map((e) => e.key)).to.deep.equal(['k3', 'k4']);
    expect(partial.at(-1)).to.deep.equal({ type: 'caught-up', epoch: a.epoch, seq: 5, full: false, entries: 2 });

    for (const cursor of [null, { epoch: 'another-epoch', seq: 3 }, { epoch: a.epoch, seq: 99 }]) {
      const full = since(cursor);
      expect(entriesIn(full), JSON.stringify(cursor)).to.have.length(5);
      expect(full.at(-1)).to.include({ type: 'caught-up', full: true, entries: 5 });
    }
    expect(a.stats().fullTransfersSent).to.equal(3);
  });

  it('a node restarted with its changes, epoch and cursors resumes where it was', () => {
    const a = createNode({ id: 'a', now: () => START_MS, random: () => 0.5 });
    a.set('x', '1');
    a.set('y', '2');
    const persisted = readyEffects(a.takeReady()).flatMap((e) => (e.type === 'persist' ? [{ entry: e.entry, seq: e.seq }] : []));
    const again = createNode({ id: 'a', now: () => START_MS, random: () => 0.5, epoch: a.epoch, changes: persisted, cursors: { b: { epoch: 'e', seq: 7 } } });
    expect(again.keys()).to.deep.equal(['x', 'y']);
    expect(again.epoch).to.equal(a.epoch);
    expect(again.cursors()).to.deep.equal({ b: { epoch: 'e', seq: 7 } });
    expect(again.set('z', '3')).to.equal(true);
    const seqs = readyEffects(again.takeReady()).flatMap((e) => (e.type === 'persist' ? [e.seq] : []));
    expect(seqs).to.deep.equal([3]);
  });
});

describe('anti-entropy', () => {
  it('repairs a write whose broadcast was lost, within one period, and costs one digest per peer when nothing differs', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    // The fake peer claims b already got it: a does not forward it, as if the message to b was lost.
    fakePeer(cluster).exchange(encodeMessage({ type: 'entries', entries: [entry('lost', 'v')], seen: ['b'] }));
    expect(a.get('lost')).to.equal('v');
    expect(b.get('lost')).to.equal(null);

    cluster.advance(DEFAULT_TIMING.antiEntropyIntervalMs + 100);
    expect(b.get('lost')).to.equal('v');
    expect(a.stats().repairEntriesSent).to.equal(1);
    expect(b.stats().repairEntriesSent).to.equal(0);

    cluster.resetCounters();
    cluster.advance(DEFAULT_TIMING.antiEntropyIntervalMs);
    expect(cluster.counters.deliveriesByType.digest).to.be.at.least(1);
    expect(cluster.counters.deliveriesByType.buckets ?? 0).to.equal(0);
    expect(cluster.counters.deliveriesByType.entries ?? 0).to.equal(0);
  });

  it('waits for a pause in writes before comparing, and no longer than half a period under steady writes', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    fakePeer(cluster).exchange(encodeMessage({ type: 'entries', entries: [entry('lost', 'v')], seen: ['b'] }));
    const interval = DEFAULT_TIMING.antiEntropyIntervalMs;
    const rounds = () => a.stats().antiEntropyRounds;
    const writeFor = (ms: number, prefix: string) => {
      for (let elapsed = 0; elapsed < ms; elapsed += 200) {
        expect(a.set(`${prefix}${elapsed}`, 'v')).to.equal(true);
        cluster.advance(200);
      }
    };
    // A write every 200 ms past the round's due time: the round waits.
    const before = rounds();
    writeFor(interval + interval / 4, 'burst-');
    expect(rounds()).to.equal(before);
    expect(b.get('lost')).to.equal(null);
    // A tenth of a period without writes: it runs and repairs.
    cluster.advance(interval / 10 + 200);
    expect(rounds()).to.equal(before + 1);
    expect(b.get('lost')).to.equal('v');

    // Writes that never pause: the next round runs anyway, at most half a period late.
    fakePeer(cluster).exchange(encodeMessage({ type: 'entries', entries: [entry('lost-2', 'v')], seen: ['b'] }));
    writeFor(interval + interval / 2 + 400, 'steady-');
    expect(rounds()).to.equal(before + 2);
    cluster.stabilize();
    expect(b.get('lost-2')).to.equal('v');
  });

  it('answers a different digest with its bucket digests, and sends and asks for exactly the buckets that differ', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    a.set('only-on-a', 'v');
    const peer = fakePeer(cluster);
    const buckets = peer.exchange(JSON.stringify({ type: 'digest', root: '0'.repeat(DIGEST_HEX_DIGITS) }));
    const answer = buckets.find((m) => m.type === 'buckets');
    if (answer?.type !== 'buckets') throw new Error('expected buckets');
    expect(answer.digests).to.have.length(BUCKET_COUNT);
    const nonEmpty = answer.digests.flatMap((d, i) => (d === '0'.repeat(DIGEST_HEX_DIGITS) ? [] : [i]));
    expect(nonEmpty).to.have.length(1);

    const repair = peer.exchange(JSON.stringify({ type: 'buckets', digests: Array(BUCKET_COUNT).fill('0'.repeat(DIGEST_HEX_DIGITS)) }));
    expect(repair[0]).to.deep.equal({ type: 'bucket-request', buckets: nonEmpty });
    expect(entriesIn(repair).map((e) => e.key)).to.deep.equal(['only-on-a']);
    // With one non-empty bucket, a's root is that bucket's digest: equal roots get no answer.
    expect(peer.exchange(JSON.stringify({ type: 'digest', root: answer.digests[nonEmpty[0]!] }))).to.deep.equal([]);
  });
});

describe('failure detection', () => {
  it('a peer that goes silent is marked down after the peer timeout and its link closed with 4004', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    fakePeer(cluster); // never answers pings
    expect(a.stats().peers).to.equal(1);
    cluster.advance(DEFAULT_TIMING.peerTimeoutMs - 500);
    expect(a.stats().peers).to.equal(1);
    cluster.advance(1000);
    expect(a.stats()).to.include({ peers: 0, peersTimedOut: 1 });
    expect(cluster.counters.closeCodes).to.include(CLOSE_CODES.PEER_TIMEOUT);
  });

  it('a silent peer that had dialed in stays listed in peers, as down with the reason, until it is back', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    fakePeer(cluster);
    cluster.advance(DEFAULT_TIMING.peerTimeoutMs + 1000);
    const rows = a.peers().filter((row) => row.id === 'p');
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ address: 'sim-p:1', direction: 'inbound', connected: false });
    expect(rows[0]!.lastError).to.match(/^no message for \d+ ms$/);
    fakePeer(cluster);
    expect(a.peers().filter((row) => row.id === 'p')).to.deep.equal([{ address: 'sim-p:1', id: 'p', direction: 'inbound', connected: true }]);
  });

  it('live peers keep each other up with heartbeats when nothing else is sent', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    cluster.resetCounters();
    cluster.advance(30_000);
    expect(a.stats()).to.include({ peers: 1, peersTimedOut: 0 });
    expect(cluster.counters.deliveriesByType.ping).to.be.within(40, 70);
  });
});

describe('peer exchange', () => {
  it('a node started with one peer finds the rest of the mesh', () => {
    const cluster = new Cluster({ peerExchange: true });
    cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    const c = cluster.addNode('c', { peers: ['b'] });
    cluster.advance(1000);
    for (const id of ['a', 'b', 'c']) expect(cluster.node(id).stats().peers, id).to.equal(2);
    // a and c each heard of the other from b; whichever dials first makes the link.
    expect(cluster.node('a').stats().peersLearned + c.stats().peersLearned).to.be.within(1, 2);
    const write = c.set('from-c', '1');
    cluster.stabilize();
    expect(write).to.equal(true);
    expect(cluster.node('a').get('from-c')).to.equal('1');
  });

  it('takes a bounded number of addresses from one list, and forgets a learnt address that keeps failing', () => {
    const cluster = new Cluster({ peerExchange: true });
    const a = cluster.addNode('a');
    const peer = fakePeer(cluster);
    const ghosts = Array.from({ length: MAX_PEER_LIST }, (_, i) => `sim-ghost${i}:1`);
    peer.exchange(JSON.stringify({ type: 'peer-list', addresses: ghosts }));
    expect(a.stats().peersLearned).to.equal(4);
    cluster.advance(RETRY_CAP_MS * (LEARNED_MAX_FAILURES + 2));
    expect(a.peers().filter((p) => p.address.startsWith('sim-ghost'))).to.deep.equal([]);
  });
});

describe('write acknowledgement level (set with acks)', () => {
  function line(): Cluster {
    const cluster = new Cluster();
    cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.addNode('c', { peers: ['b'] });
    cluster.stabilize();
    return cluster;
  }

  it('answers true once the asked number of nodes hold the write, through intermediate nodes', () => {
    const cluster = line();
    const client = cluster.client('a');
    expect(client.request({ type: 'set', key: 'k', value: 'v', acks: 3 })).to.deep.equal({ type: 'reply', id: 1, result: true, acks: 3 });
    for (const id of ['a', 'b', 'c']) expect(cluster.node(id).get('k')).to.equal('v');
    // "all" is every node a has heard of: b directly, c through b's forward.
    expect(client.request({ type: 'set', key: 'k2', value: 'v', acks: 'all' })).to.deep.include({ result: true, acks: 3 });
    // A value already in place is acknowledged again rather than written again.
    expect(client.request({ type: 'set', key: 'k', value: 'v', acks: 3 })).to.deep.include({ result: true, acks: 3 });
    expect(cluster.node('c').stats().entriesApplied).to.equal(2);
  });

  it('says how many nodes held the write when the others do not answer in time', () => {
    const cluster = line();
    cluster.stop('c');
    const client = cluster.client('a');
    client.sendRaw(JSON.stringify({ type: 'set', id: 7, key: 'k', value: 'v', acks: 3, timeoutMs: 2000 }));
    cluster.stabilize();
    expect(client.inbox).to.deep.equal([]);
    cluster.advance(2100);
    expect(client.inbox).to.have.length(1);
    expect(client.inbox[0]).to.deep.include({ type: 'error', id: 7, code: 'ACK_TIMEOUT', acks: 2 });
    expect(cluster.node('a').get('k')).to.equal('v');
  });

  it('answers false when a node holds an older, different value: the write lost', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const peer = fakePeer(cluster);
    const client = cluster.client('a');
    client.sendRaw(JSON.stringify({ type: 'set', id: 1, key: 'k', value: 'mine', acks: 2 }));
    cluster.stabilize();
    const round = peer.inbox.find((m) => m.type === 'entries' && m.ack !== undefined);
    if (round?.type !== 'entries') throw new Error('expected an acknowledgement round');
    peer.exchange(JSON.stringify({ type: 'ack', ack: round.ack, node: 'p', ok: false }));
    expect(client.inbox).to.deep.equal([{ type: 'reply', id: 1, result: false, acks: 1 }]);
    expect(a.get('k')).to.equal('mine');
  });

  it('refuses an acks value that is not a count or "all"', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const response = cluster.client('a').request({ type: 'set', key: 'k', value: 'v', acks: 0 });
    expect(response).to.include({ type: 'error', code: 'BAD_MESSAGE' });
  });
});

describe('add-peer of a learnt address', () => {
  it('keeps it as an added peer: a peer-added effect, so that a restart dials it again', () => {
    const cluster = new Cluster({ peerExchange: true });
    cluster.addNode('a');
    const c = cluster.addNode('c');
    // A peer tells c about a: c learns it and dials it.
    const teller = cluster.client('c');
    teller.exchange(hello('p'));
    teller.exchange(JSON.stringify({ type: 'peer-list', addresses: ['sim-a:1'] }));
    cluster.advance(100);
    expect(c.stats().peersLearned).to.equal(1);
    expect(c.peers().find((p) => p.direction === 'outbound' && p.address === 'sim-a:1')).to.include({ connected: true });
    expect(cluster.peersAdded.get('c')).to.deep.equal([]);

    const reply = cluster.client('c').request({ type: 'add-peer', address: 'sim-a:1' });
    expect(reply).to.deep.include({ type: 'reply', result: { address: 'sim-a:1', connected: true, id: 'a', retrying: false } });
    expect(cluster.peersAdded.get('c')).to.deep.equal(['sim-a:1']);
  });
});
