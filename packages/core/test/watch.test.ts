/**
 * The `watch` subscription (node.ts, docs/protocol.md): writes stream to a
 * watcher as they reach the node, with the mesh state every second, and a
 * watcher that does not read costs a bounded amount and is told what it missed.
 */
import { expect } from 'chai';
import {
  CLOSE_CODES,
  MAX_WATCH_VALUE_CHARS,
  type Message,
  parseIncoming,
  type WatchStateMessage,
  type WatchWrite,
  type WatchWritesMessage,
} from '../src/index.js';
import {
  SLOW_LINK_TIMEOUT_MS,
  WATCH_BUDGET_BYTES,
  WATCH_STATE_INTERVAL_MS,
} from '../src/internal.js';
import { Cluster } from '@bby/sim';

const writesIn = (inbox: readonly Message[]): WatchWrite[] => inbox.filter((m): m is WatchWritesMessage => m.type === 'watch-writes').flatMap((m) => m.writes);
const statesIn = (inbox: readonly Message[]): WatchStateMessage[] => inbox.filter((m): m is WatchStateMessage => m.type === 'watch-state');

describe('watch', () => {
  it('streams a write of its own node and one that came from a peer, with the value cut to what it asked', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    const watcher = cluster.client('b');
    expect(watcher.request({ type: 'watch', id: 7, values: 3, state: false })).to.deep.include({ type: 'reply', id: 7, result: { watching: true, node: 'b', stateIntervalMs: 0 } });
    cluster.client('a').request({ type: 'set', key: 'MonChamp', value: '424242' });
    cluster.client('b').request({ type: 'set', key: 'Autre', value: 'ok' });
    const writes = writesIn(watcher.inbox);
    expect(writes).to.have.length(2);
    expect(writes[0]).to.deep.include({ key: 'MonChamp', origin: 'a', from: 'a', value: '424', cut: true });
    expect(writes[1]).to.deep.include({ key: 'Autre', origin: 'b', from: null, value: 'ok' });
    expect(writes[1]).to.not.have.property('cut');
    expect(watcher.inbox.filter((m) => m.type === 'watch-writes').every((m) => (m as WatchWritesMessage).id === 7)).to.equal(true);
  });

  it('sends no value unless asked, and nothing to a client that did not ask', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const watcher = cluster.client('a');
    const other = cluster.client('a');
    watcher.request({ type: 'watch', state: false });
    other.request({ type: 'set', key: 'k', value: 'secret value' });
    expect(writesIn(watcher.inbox)[0]).to.not.have.property('value');
    expect(other.inbox.map((m) => m.type)).to.deep.equal(['reply']);
  });

  it('sends the mesh state at once and every second: links, catch-up progress and counters', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    for (let i = 0; i < 50; i++) a.set(`k${i}`, 'v');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    const watcher = cluster.client('b');
    watcher.request({ type: 'watch' });
    expect(statesIn(watcher.inbox)).to.have.length(1);
    cluster.advance(WATCH_STATE_INTERVAL_MS * 2, { stepMs: 100 });
    const states = statesIn(watcher.inbox);
    expect(states.length).to.be.within(3, 4);
    const status = states.at(-1)!.status;
    expect(status).to.deep.include({ id: 'b', keys: 50, storageFailure: null });
    expect(status.links).to.deep.equal({ peers: 1, clients: 1, pending: 0, watchers: 1 });
    const row = status.peers[0]!;
    expect(row).to.deep.include({ id: 'a', state: 'connected', direction: 'outbound' });
    expect(row.catchUpIn).to.deep.equal({ entries: 50, expected: 50, done: true });
    expect(states.at(-1)!.stats.keys).to.equal(50);
  });

  it('marks a conflict with the write that was kept', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.nowMs += 10;
    a.set('k', 'first');
    const b = cluster.addNode('b');
    cluster.nowMs += 10;
    b.set('k', 'second');
    const watcher = cluster.client('b');
    watcher.request({ type: 'watch', values: 10, state: false });
    b.addPeer('sim-a:1');
    cluster.stabilize();
    const conflict = writesIn(watcher.inbox).find((write) => write.conflict === true);
    expect(conflict).to.deep.include({ key: 'k', origin: 'a', value: 'first', from: 'a' });
  });

  it('drops the writes of a watcher that does not read, counts them, and says how many it missed once it reads', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const watcher = cluster.client('a');
    watcher.request({ type: 'watch', values: MAX_WATCH_VALUE_CHARS, state: false });
    watcher.stall();
    const writer = cluster.client('a');
    const value = 'v'.repeat(MAX_WATCH_VALUE_CHARS);
    const total = 3_000;
    for (let i = 0; i < total; i++) writer.sendRaw(JSON.stringify({ type: 'set', id: i, key: `key-${i}`, value }));
    cluster.stabilize();
    const dropped = cluster.node('a').stats().watchEventsDropped;
    expect(dropped).to.be.greaterThan(0);
    // What waits for the watcher stays near its watch budget: it never reaches the outbound budget that would pause it.
    const row = cluster.node('a').status();
    expect(row.links.watchers).to.equal(1);
    watcher.read();
    cluster.stabilize();
    writer.request({ type: 'set', key: 'last', value: 'x' });
    const messages = watcher.inbox.filter((m): m is WatchWritesMessage => m.type === 'watch-writes');
    const received = messages.reduce((sum, m) => sum + m.writes.length, 0);
    const reported = messages.reduce((sum, m) => sum + (m.dropped ?? 0), 0);
    expect(received + reported).to.equal(total + 1);
    expect(reported).to.equal(dropped);
    const sentChars = messages.reduce((sum, m) => sum + JSON.stringify(m).length, 0);
    expect(sentChars).to.be.lessThan(total * MAX_WATCH_VALUE_CHARS);
    expect(watcher.closeReason).to.equal(null);
    expect(WATCH_BUDGET_BYTES).to.be.greaterThan(0);
  });

  it('closes a watcher that reads nothing for the slow-link timeout while its events are dropped (4008)', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const watcher = cluster.client('a');
    watcher.request({ type: 'watch', values: MAX_WATCH_VALUE_CHARS });
    watcher.stall();
    const writer = cluster.client('a');
    const value = 'v'.repeat(MAX_WATCH_VALUE_CHARS);
    for (let i = 0; i < 2_000; i++) writer.sendRaw(JSON.stringify({ type: 'set', id: i, key: `key-${i}`, value }));
    cluster.stabilize();
    cluster.advance(SLOW_LINK_TIMEOUT_MS + 2_000, { stepMs: 500 });
    expect(watcher.closeReason).to.not.equal(null);
    expect(cluster.counters.closeCodes).to.include(CLOSE_CODES.TOO_SLOW);
    expect(cluster.node('a').status().links.watchers).to.equal(0);
    // The writer was never slowed by the watcher.
    expect(writer.closeReason).to.equal(null);
  });

  it('ends with the connection', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const watcher = cluster.client('a');
    watcher.request({ type: 'watch' });
    watcher.close();
    cluster.stabilize();
    expect(cluster.node('a').status().links.watchers).to.equal(0);
    cluster.client('a').request({ type: 'set', key: 'k', value: 'v' });
  });

  it('is parsed strictly', () => {
    expect(parseIncoming('{"type":"watch","id":1,"values":1025}')).to.deep.include({ ok: false });
    expect(parseIncoming('{"type":"watch","id":1,"values":-1}')).to.deep.include({ ok: false });
    expect(parseIncoming('{"type":"watch","id":1,"state":"yes"}')).to.deep.include({ ok: false });
    expect(parseIncoming('{"type":"watch"}')).to.deep.include({ ok: false });
    expect(parseIncoming('{"type":"watch","id":1,"values":1024,"state":false}')).to.deep.equal({ ok: true, message: { type: 'watch', id: 1, values: 1024, state: false } });
  });

  it('drops, unanswered, a watch message a node receives', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const client = cluster.client('a');
    const answers = client.exchange('{"type":"watch-writes","id":1,"writes":[]}');
    expect(answers).to.deep.equal([]);
  });
});
