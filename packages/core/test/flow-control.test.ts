/**
 * What a connection can make a node hold (flow-control.ts): a client that
 * does not read, a peer that floods repair requests, a peer that falls behind.
 */
import { expect } from 'chai';
import { CLOSE_CODES, type Message } from '../src/index.js';
import { frameLength, OUTBOUND_BUDGET_BYTES, PEER_OUTBOUND_LIMIT_BYTES, SLOW_LINK_TIMEOUT_MS, STREAM_WINDOW_BATCHES } from '../src/internal.js';
import { Cluster } from '@bby/sim';

const BIG_VALUE = 'v'.repeat(200 * 1024);

describe('flow control: a client that does not read', () => {
  it('is answered up to its budget, then paused with its requests held, and answered in order once it reads', () => {
    const cluster = new Cluster();
    const node = cluster.addNode('a');
    node.set('big', BIG_VALUE);
    const client = cluster.client('a');
    client.stall();
    const count = 200;
    for (let id = 1; id <= count; id++) client.sendRaw(JSON.stringify({ type: 'get', id, key: 'big' }));
    cluster.stabilize();
    const answered = client.inbox.filter((m) => m.type === 'reply').length;
    // Answers stop once what waits for the client passes its budget: one answer past it at most.
    expect(answered).to.equal(Math.floor(OUTBOUND_BUDGET_BYTES / frameLength({ type: 'reply', id: 1, result: BIG_VALUE })) + 1);
    expect(cluster.counters.pauses).to.equal(1);
    client.read();
    cluster.stabilize();
    const replies = client.inbox.filter((m): m is Extract<Message, { type: 'reply' }> => m.type === 'reply');
    expect(replies.map((m) => m.id)).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    expect(replies.every((m) => m.result === BIG_VALUE)).to.equal(true);
    expect(client.closeReason).to.equal(null);
  });

  it('keeps serving other clients while one is paused', () => {
    const cluster = new Cluster();
    const node = cluster.addNode('a');
    node.set('big', BIG_VALUE);
    const slow = cluster.client('a');
    slow.stall();
    for (let id = 1; id <= 100; id++) slow.sendRaw(JSON.stringify({ type: 'get', id, key: 'big' }));
    cluster.stabilize();
    const other = cluster.client('a');
    expect(other.request({ type: 'set', key: 'k', value: 'v' })).to.include({ type: 'reply', result: true });
  });

  it('is closed with 4008 once it stays over its budget longer than the timeout, and counted', () => {
    const cluster = new Cluster();
    const node = cluster.addNode('a');
    node.set('big', BIG_VALUE);
    const client = cluster.client('a');
    client.stall();
    for (let id = 1; id <= 50; id++) client.sendRaw(JSON.stringify({ type: 'get', id, key: 'big' }));
    cluster.advance(SLOW_LINK_TIMEOUT_MS - 1_000, { stepMs: 500 });
    expect(client.closeReason).to.equal(null);
    cluster.advance(2_000, { stepMs: 500 });
    expect(client.closeReason).to.not.equal(null);
    expect(cluster.counters.closeCodes).to.include(CLOSE_CODES.TOO_SLOW);
    expect(node.stats().slowLinksClosed).to.equal(1);
    expect(cluster.logs.some((l) => l.message.includes('does not read what it is sent'))).to.equal(true);
  });
});

describe('flow control: repair', () => {
  it('answers a flood of bucket requests with one stream at a time, a few batches ahead of the socket', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    for (let i = 0; i < 4_000; i++) a.set(`key-${i}`, 'x'.repeat(1_000));
    const peer = cluster.client('a');
    peer.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'flooder', address: 'sim-flooder:1' }));
    peer.stall();
    const all = Array.from({ length: 256 }, (_, i) => i);
    for (let i = 0; i < 10; i++) peer.sendRaw(JSON.stringify({ type: 'bucket-request', buckets: all }));
    cluster.stabilize();
    const sentWhileStalled = peer.inbox.filter((m) => m.type === 'entries').length;
    // A window of batches went out, not ten passes over four megabytes of store.
    expect(sentWhileStalled).to.be.within(1, STREAM_WINDOW_BATCHES + 1);
    expect(a.stats().repairRequestsMerged).to.be.greaterThan(0);
    peer.read();
    cluster.stabilize();
    const keys = peer.inbox.flatMap((m) => (m.type === 'entries' ? m.entries.map((e) => e.key) : []));
    // The merged requests cost one more pass at most: every key, at most twice.
    expect(new Set(keys).size).to.equal(4_000);
    expect(keys.length).to.be.at.most(8_000);
  });

});

describe('flow control: a peer that asks for repairs without end', () => {
  it('gets one pass over the store per half anti-entropy period, however often it asks', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    for (let i = 0; i < 500; i++) a.set(`key-${i}`, 'x'.repeat(100));
    const peer = cluster.client('a');
    peer.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'asker', address: 'sim-asker:1' }));
    const all = Array.from({ length: 256 }, (_, i) => i);
    // 10 s of a request every 100 ms, each answered at once by a reader that keeps up (and pings, to stay a peer).
    for (let step = 0; step < 100; step++) {
      peer.sendRaw(JSON.stringify({ type: 'bucket-request', buckets: all }));
      peer.sendRaw(JSON.stringify({ type: 'ping' }));
      cluster.advance(100, { stepMs: 100 });
    }
    const received = peer.inbox.reduce((sum, m) => sum + (m.type === 'entries' ? m.entries.length : 0), 0);
    // Passes start at 0 s, 5 s and 10 s at most: three stores' worth, not a hundred.
    expect(received).to.be.within(500, 3 * 500);
    expect(a.stats().repairRequestsMerged).to.be.greaterThan(90);
  });
});

describe('flow control: a peer that falls behind', () => {
  it('is let go once far more than its budget waits for it', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const peer = cluster.client('a');
    peer.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'laggard', address: 'sim-laggard:1' }));
    peer.stall();
    const value = 'z'.repeat(100 * 1024);
    let written = 0;
    for (; written < 1_000 && peer.closeReason === null; written++) {
      a.set(`k${written}`, value);
      cluster.stabilize();
    }
    expect(peer.closeReason).to.not.equal(null);
    expect(written * value.length).to.be.within(PEER_OUTBOUND_LIMIT_BYTES, PEER_OUTBOUND_LIMIT_BYTES + 2 * value.length + OUTBOUND_BUDGET_BYTES);
    expect(cluster.counters.closeCodes).to.include(CLOSE_CODES.TOO_SLOW);
    expect(a.stats().slowLinksClosed).to.equal(1);
  });
});

