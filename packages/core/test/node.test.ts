import { expect } from 'chai';
import { type AddPeerResult, BbyError, CLOSE_CODES, createNode, type Effect, type PeerInfo, PROTOCOL_VERSION, ProtocolError, type Stats } from '../src/index.js';
import { readyEffects, FORGOTTEN_FOR_MS, HANDSHAKE_TIMEOUT_MS, RETRY_BASE_MS, RETRY_CAP_MS } from '../src/internal.js';
import { Cluster, mulberry32, resultOf, simAddress, START_MS } from '@bby/sim';

/** A lone node on a hand-driven clock. */
function lone(id = 'a', peers: string[] = []) {
  const clock = { now: START_MS };
  const node = createNode({ id, address: `sim-${id}:1`, peers, now: () => clock.now, random: mulberry32(1) });
  return { node, clock };
}

function ofType<T extends Effect['type']>(effects: Effect[], type: T): Extract<Effect, { type: T }>[] {
  return effects.filter((e): e is Extract<Effect, { type: T }> => e.type === type);
}

function thrown(fn: () => unknown): BbyError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(BbyError);
    return error as BbyError;
  }
  throw new Error('did not throw');
}

describe('node: client operations', () => {
  it('setting a new key returns true and stores it with the clock time and the node as origin', () => {
    const { node } = lone('a');
    expect(node.set('MonChamp', '42')).to.equal(true);
    expect(node.get('MonChamp')).to.equal('42');
    expect(node.entry('MonChamp')).to.deep.equal({ key: 'MonChamp', value: '42', timestamp: START_MS, origin: 'a' });
    expect(node.stats().writesAccepted).to.equal(1);
  });

  it('setting a key again to the same value returns true and writes nothing', () => {
    const { node, clock } = lone();
    node.set('k', 'v');
    readyEffects(node.takeReady());
    clock.now += 1000;
    expect(node.set('k', 'v')).to.equal(true);
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
    expect(node.entry('k')!.timestamp).to.equal(START_MS);
    expect(node.stats()).to.include({ writesAccepted: 1, writesRefused: 0 });
  });

  it('setting a key to another value returns false and keeps the first value', () => {
    const { node } = lone();
    node.set('k', 'first');
    readyEffects(node.takeReady());
    expect(node.set('k', 'second')).to.equal(false);
    expect(node.get('k')).to.equal('first');
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
    expect(node.stats()).to.include({ writesAccepted: 1, writesRefused: 1 });
  });

  it('getting a missing key returns null', () => {
    const { node } = lone();
    node.set('k', 'v');
    expect(node.get('missing')).to.equal(null);
    expect(node.entry('missing')).to.equal(undefined);
  });

  it('lists keys sorted', () => {
    const { node } = lone();
    for (const key of ['pear', 'apple', 'Zebra', 'mango']) node.set(key, key);
    expect(node.keys()).to.deep.equal(['Zebra', 'apple', 'mango', 'pear']);
    expect(node.stats().keys).to.equal(4);
  });

  it('an accepted write is persisted before it is sent to peers', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    a.set('k', 'v');
    const effects = readyEffects(a.takeReady());
    expect(effects.map((e) => e.type)).to.deep.equal(['persist', 'send']);
    expect(ofType(effects, 'persist')[0]).to.deep.include({ entry: { key: 'k', value: 'v', timestamp: START_MS, origin: 'a' }, seq: 1 });
    expect(ofType(effects, 'send')[0]!.message).to.deep.equal({
      type: 'entries',
      entries: [{ key: 'k', value: 'v', timestamp: START_MS, origin: 'a' }],
      seen: ['a', 'b'],
      upTo: 1,
    });
  });

  it('refuses empty or oversized keys and values with a typed error and stores nothing', () => {
    const { node } = lone();
    expect(thrown(() => node.set('', 'v'))).to.be.instanceOf(ProtocolError).and.include({ code: 'BAD_MESSAGE' });
    expect(thrown(() => node.set('k'.repeat(1025), 'v')).code).to.equal('KEY_TOO_LARGE');
    expect(thrown(() => node.set('k', 'v'.repeat(256 * 1024))).code).to.equal('VALUE_TOO_LARGE');
    expect(node.keys()).to.deep.equal([]);
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
  });

  it('needs a non-empty id', () => {
    expect(thrown(() => createNode({ id: '', now: () => 0, random: () => 0 })).code).to.equal('BAD_CONFIG');
  });

  it('answers client requests over a link', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const client = cluster.client('a');
    expect(resultOf(client.request({ type: 'set', key: 'x', value: '1' }))).to.equal(true);
    expect(resultOf(client.request({ type: 'set', key: 'x', value: '2' }))).to.equal(false);
    expect(resultOf(client.request({ type: 'set', key: 'b', value: '3' }))).to.equal(true);
    expect(resultOf(client.request({ type: 'get', key: 'x' }))).to.equal('1');
    expect(resultOf(client.request({ type: 'get', key: 'nope' }))).to.equal(null);
    expect(resultOf(client.request({ type: 'keys' }))).to.deep.equal(['x', 'b']);
    expect(resultOf(client.request({ type: 'peers' }))).to.deep.equal([]);
    const stats = resultOf(client.request({ type: 'stats', id: 'my-id' })) as Stats;
    expect(stats).to.include({ id: 'a', keys: 2, peers: 0, clients: 1, writesAccepted: 2, writesRefused: 1, errors: 0 });
    expect(client.inbox.every((m) => m.type === 'reply')).to.equal(true);
    expect(client.inbox.map((m) => (m as { id: unknown }).id)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 'my-id']);
  });

  it('counts clients while they are connected', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const one = cluster.client('a');
    const two = cluster.client('a');
    one.request({ type: 'keys' });
    two.request({ type: 'keys' });
    expect(a.stats().clients).to.equal(2);
    one.close();
    cluster.stabilize();
    expect(a.stats().clients).to.equal(1);
  });
});

describe('node: peers', () => {
  it('dials its configured peers as soon as it is created, once each', () => {
    const { node } = lone('a', ['127.0.0.1:7002', 'ws://127.0.0.1:7002/', 'localhost:7003']);
    const dials = ofType(readyEffects(node.takeReady()), 'dial');
    expect(dials.map((d) => d.address)).to.deep.equal(['127.0.0.1:7002', 'localhost:7003']);
    node.tick();
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
  });

  it('addPeer normalizes the address, refuses a bad one, and does not dial twice', () => {
    const { node } = lone();
    expect(node.addPeer('ws://[::1]:7002/')).to.equal('[::1]:7002');
    expect(node.addPeer('[::1]:7002')).to.equal('[::1]:7002');
    expect(ofType(readyEffects(node.takeReady()), 'dial')).to.have.length(1);
    expect(thrown(() => node.addPeer('nope')).code).to.equal('BAD_ADDRESS');
    expect(node.peers().map((p) => p.address)).to.deep.equal(['[::1]:7002']);
  });

  it('lists outbound and inbound peers with their ids', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.addNode('c', { peers: ['b'] });
    cluster.stabilize();
    expect(b.peers()).to.deep.equal([
      { address: 'sim-a:1', id: 'a', direction: 'outbound', connected: true },
      { address: 'sim-c:1', id: 'c', direction: 'inbound', connected: true },
    ] satisfies PeerInfo[]);
    expect(b.stats().peers).to.equal(2);
  });

  it('a node configured with its own address closes that link with code 4001 and stops dialing itself', () => {
    const { node } = lone('a', ['sim-a:1']);
    const [dial] = ofType(readyEffects(node.takeReady()), 'dial');
    // Play the network by hand: the dial lands on the node itself.
    const inbound = node.accept();
    node.opened(dial!.link);
    const [hello] = ofType(readyEffects(node.takeReady()), 'send');
    node.receive(inbound, JSON.stringify(hello!.message));
    const [welcome] = ofType(readyEffects(node.takeReady()), 'send');
    expect(welcome).to.deep.include({ link: inbound });
    node.receive(dial!.link, JSON.stringify(welcome!.message));
    const effects = readyEffects(node.takeReady());
    expect(ofType(effects, 'close')).to.deep.equal([{ type: 'close', link: dial!.link, code: 4001, reason: 'connected to itself' }]);
    expect(ofType(effects, 'log').map((l) => l.level)).to.deep.equal(['warn']);
    expect(node.peers()).to.deep.equal([]);
    node.closed(dial!.link, 'closed');
    node.closed(inbound, 'closed');
    node.tick();
    expect(ofType(readyEffects(node.takeReady()), 'dial')).to.deep.equal([]);
  });

  it('in a cluster, a node listing itself among its peers ends with no self link and no more dials', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['a', 'b'] });
    cluster.addNode('b');
    cluster.advance(10_000);
    expect(cluster.counters.closeCodes).to.deep.equal([4001]);
    expect(a.peers().map((p) => p.address)).to.deep.equal(['sim-b:1']);
    expect(a.stats().peers).to.equal(1);
    const warnings = cluster.logs.filter((l) => l.level === 'warn');
    expect(warnings).to.have.length(1);
    expect(warnings[0]!.message).to.include('sim-a:1 is this node itself');
    const dials = cluster.counters.dials;
    cluster.advance(10_000);
    expect(cluster.counters.dials).to.equal(dials);
  });

  it('add-peer replies connected with the peer id once the handshake is done', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b');
    const client = cluster.client('a');
    const reply = client.request({ type: 'add-peer', address: 'ws://sim-b:1' });
    expect(resultOf(reply)).to.deep.equal({ address: 'sim-b:1', connected: true, id: 'b', retrying: false } satisfies AddPeerResult);
    expect(a.stats().peers).to.equal(1);
    expect(b.stats().peers).to.equal(1);
    // Asking again answers at once.
    expect(resultOf(client.request({ type: 'add-peer', address: 'sim-b:1' }))).to.deep.equal({ address: 'sim-b:1', connected: true, id: 'b', retrying: false });
    // And the two now replicate.
    a.set('k', 'v');
    cluster.stabilize();
    expect(b.get('k')).to.equal('v');
  });

  it('add-peer answers only once the handshake is done, and answers every client that asked', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.addNode('b');
    const first = cluster.client('a');
    const second = cluster.client('a');
    first.sendRaw(JSON.stringify({ type: 'add-peer', id: 1, address: 'sim-b:1' }));
    second.sendRaw(JSON.stringify({ type: 'add-peer', id: 2, address: 'ws://sim-b:1' }));
    const trace: string[] = [];
    while (first.inbox.length === 0) {
      expect(cluster.step()).to.equal(true);
      trace.push(`welcomes=${cluster.counters.deliveriesByType.welcome ?? 0} peers=${a.stats().peers} replies=${first.inbox.length}`);
    }
    // Two requests, the connection, hello, welcome (and b's catch-up request, queued before the reply), and only then the reply.
    expect(trace).to.deep.equal([
      'welcomes=0 peers=0 replies=0',
      'welcomes=0 peers=0 replies=0',
      'welcomes=0 peers=0 replies=0',
      'welcomes=0 peers=0 replies=0',
      'welcomes=1 peers=1 replies=0',
      'welcomes=1 peers=1 replies=0',
      'welcomes=1 peers=1 replies=1',
    ]);
    cluster.stabilize();
    expect(first.inbox).to.deep.equal([{ type: 'reply', id: 1, result: { address: 'sim-b:1', connected: true, id: 'b', retrying: false } }]);
    expect(second.inbox).to.deep.equal([{ type: 'reply', id: 2, result: { address: 'sim-b:1', connected: true, id: 'b', retrying: false } }]);
    expect(cluster.counters.dials).to.equal(1);
  });

  it('add-peer replies not connected with the error when the dial fails, and keeps trying', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const client = cluster.client('a');
    const reply = client.request({ type: 'add-peer', address: 'sim-late:1' });
    expect(resultOf(reply)).to.deep.equal({ address: 'sim-late:1', connected: false, id: null, error: 'ECONNREFUSED', retrying: true } satisfies AddPeerResult);
    expect(a.peers()).to.deep.equal([{ address: 'sim-late:1', id: null, direction: 'outbound', connected: false, lastError: 'ECONNREFUSED' }]);
    cluster.addNode('late');
    cluster.advance(1000);
    expect(a.peers()).to.deep.equal([{ address: 'sim-late:1', id: 'late', direction: 'outbound', connected: true }]);
  });

  it('add-peer of a new address asks the adapter to keep it, once; configured peers are not reported', () => {
    const cluster = new Cluster();
    cluster.addNode('a', { peers: ['c'] });
    cluster.addNode('b');
    cluster.addNode('c');
    const client = cluster.client('a');
    client.request({ type: 'add-peer', address: 'sim-b:1' });
    client.request({ type: 'add-peer', address: 'ws://sim-b:1' });
    client.request({ type: 'add-peer', address: 'sim-c:1' });
    expect(cluster.peersAdded.get('a')).to.deep.equal(['sim-b:1']);
  });

  it('add-peer of a bad address gets a BAD_ADDRESS error with the request id', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const response = cluster.client('a').request({ type: 'add-peer', id: 12, address: 'no-port' });
    expect(response).to.include({ type: 'error', id: 12, code: 'BAD_ADDRESS' });
    expect(a.peers()).to.deep.equal([]);
    expect(cluster.counters.dials).to.equal(0);
  });

  it('add-peer of its own address replies not connected and says why', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const reply = cluster.client('a').request({ type: 'add-peer', address: 'sim-a:1' });
    expect(resultOf(reply)).to.deep.equal({ address: 'sim-a:1', connected: false, id: 'a', error: 'that address is this node itself', retrying: false } satisfies AddPeerResult);
    expect(a.peers()).to.deep.equal([]);
  });

  it('add-peer of a peer waiting for its retry dials it at once', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['b'] });
    cluster.stabilize();
    expect(cluster.counters.refused).to.equal(1);
    cluster.addNode('b');
    const reply = cluster.client('a').request({ type: 'add-peer', address: 'sim-b:1' });
    expect(resultOf(reply)).to.deep.equal({ address: 'sim-b:1', connected: true, id: 'b', retrying: false });
    expect(cluster.nowMs).to.equal(START_MS);
    expect(a.stats().peers).to.equal(1);
  });

  it('an unreachable peer is retried with doubling, capped delays and connects once it comes up', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['b'] });
    cluster.stabilize();
    expect(cluster.counters).to.include({ dials: 1, refused: 1 });

    // Note the time of every dial over 30 s, ticking every 10 ms.
    const dialTimes = [cluster.nowMs];
    for (let seen = 1; cluster.nowMs < START_MS + 30_000; ) {
      cluster.advance(10);
      if (cluster.counters.dials > seen) dialTimes.push(cluster.nowMs);
      seen = cluster.counters.dials;
    }
    const gaps = dialTimes.slice(1).map((t, i) => t - dialTimes[i]!);
    // After n failures the wait is in [c/2, c) with c = min(100 * 2^(n-1), 5000), rounded up to the 10 ms tick.
    gaps.forEach((gap, i) => {
      const ceiling = Math.min(RETRY_BASE_MS * 2 ** i, RETRY_CAP_MS);
      expect(gap, `gap ${i}`).to.be.at.least(ceiling / 2).and.at.most(ceiling + 10);
    });
    expect(gaps.length).to.be.within(9, 16);
    // Only the first failure is logged as a warning.
    expect(cluster.logs.filter((l) => l.level === 'warn')).to.have.length(1);
    expect(a.peers()[0]).to.include({ connected: false, lastError: 'ECONNREFUSED' });

    cluster.addNode('b');
    cluster.advance(RETRY_CAP_MS);
    expect(a.peers()[0]).to.deep.equal({ address: 'sim-b:1', id: 'b', direction: 'outbound', connected: true });
    const dials = cluster.counters.dials;
    cluster.advance(10_000);
    expect(cluster.counters.dials).to.equal(dials);
  });

  it('a lost peer is redialed after a short delay', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['b'] });
    cluster.addNode('b');
    cluster.stabilize();
    cluster.stop('b');
    expect(a.peers()[0]).to.include({ connected: false, lastError: 'ECONNRESET' });
    expect(a.stats().peers).to.equal(0);
    cluster.start('b');
    cluster.advance(RETRY_BASE_MS);
    expect(a.peers()[0]).to.include({ connected: true, id: 'b' });
  });
});

describe('node: a peer of another protocol version', () => {
  /** Node a dials sim-b:1 (added by a client, who waits for the answer); the test plays b. */
  function dialing() {
    const { node, clock } = lone('a');
    const client = node.accept();
    node.receive(client, JSON.stringify({ type: 'add-peer', id: 1, address: 'sim-b:1' }));
    const [dial] = ofType(readyEffects(node.takeReady()), 'dial');
    node.opened(dial!.link);
    const [hello] = ofType(readyEffects(node.takeReady()), 'send');
    expect(hello!.message).to.deep.include({ type: 'hello', protocol: PROTOCOL_VERSION });
    return { node, clock, client, link: dial!.link };
  }

  /** After a failure redialing cannot fix: no dial for a day of ticks, until add-peer names the address again. */
  function expectHaltedUntilAddedAgain(node: ReturnType<typeof lone>['node'], clock: { now: number }, client: string, error: RegExp) {
    expect(node.peers()).to.have.length(1);
    expect(node.peers()[0]).to.include({ address: 'sim-b:1', connected: false });
    expect(node.peers()[0]!.lastError).to.match(error);
    for (let i = 0; i < 100; i++) {
      clock.now += 15 * 60_000;
      node.tick();
      expect(ofType(readyEffects(node.takeReady()), 'dial'), `tick ${i}`).to.deep.equal([]);
    }
    node.receive(client, JSON.stringify({ type: 'add-peer', id: 2, address: 'sim-b:1' }));
    expect(ofType(readyEffects(node.takeReady()), 'dial').map((d) => d.address)).to.deep.equal(['sim-b:1']);
  }

  it('a dialed node that answers welcome with another protocol is refused (4002) and not dialed again until added again', () => {
    const { node, clock, client, link } = dialing();
    node.receive(link, JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION + 1, nodeId: 'b', address: 'sim-b:1' }));
    const effects = readyEffects(node.takeReady());
    expect(ofType(effects, 'close')).to.deep.equal([{ type: 'close', link, code: CLOSE_CODES.PROTOCOL_MISMATCH, reason: 'protocol version mismatch' }]);
    const sends = ofType(effects, 'send');
    expect(sends.find((e) => e.link === link)!.message).to.deep.include({ type: 'error', code: 'PROTOCOL_MISMATCH' });
    const reply = sends.find((e) => e.link === client)!.message;
    expect(reply).to.deep.include({ type: 'reply', id: 1 });
    expect((reply as { result: AddPeerResult }).result).to.deep.equal({
      address: 'sim-b:1',
      connected: false,
      id: null,
      error: `node b speaks protocol ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both`,
      retrying: false,
    } satisfies AddPeerResult);
    expect(ofType(effects, 'log').map((l) => l.message)).to.deep.include(
      `stopped dialing peer sim-b:1: node b speaks protocol ${PROTOCOL_VERSION + 1}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both; add it again (add-peer sim-b:1) once it is fixed`,
    );
    node.closed(link, 'closed by this node (4002)');
    expect(ofType(readyEffects(node.takeReady()), 'log')).to.deep.equal([]);
    expectHaltedUntilAddedAgain(node, clock, client, /speaks protocol 4/);
  });

  it('a dialed node that refuses the hello with PROTOCOL_MISMATCH is not dialed again until added again', () => {
    const { node, clock, client, link } = dialing();
    // What another version does with this node's hello: an error, then close 4002.
    node.receive(link, JSON.stringify({ type: 'error', id: null, code: 'PROTOCOL_MISMATCH', message: 'peer speaks protocol 3, this node speaks 4' }));
    const reply = ofType(readyEffects(node.takeReady()), 'send').find((e) => e.link === client)!.message as { result: AddPeerResult };
    expect(reply.result).to.include({ connected: false, retrying: false });
    expect(reply.result.error).to.equal(`the node there refused this node's protocol ${PROTOCOL_VERSION} (peer speaks protocol 3, this node speaks 4)`);
    node.closed(link, 'closed by the peer (4002)');
    expectHaltedUntilAddedAgain(node, clock, client, /refused this node's protocol/);
  });

  it('a configured peer of another version is halted too, and an error from an ordinary client changes nothing', () => {
    const { node, clock } = lone('a', ['sim-b:1']);
    const [dial] = ofType(readyEffects(node.takeReady()), 'dial');
    node.opened(dial!.link);
    readyEffects(node.takeReady());
    // A client's PROTOCOL_MISMATCH on an inbound link names no address to halt.
    const stranger = node.accept();
    node.receive(stranger, JSON.stringify({ type: 'error', id: null, code: 'PROTOCOL_MISMATCH', message: 'x' }));
    node.receive(dial!.link, JSON.stringify({ type: 'welcome', protocol: 2, nodeId: 'b', address: 'sim-b:1' }));
    node.closed(dial!.link, 'closed');
    readyEffects(node.takeReady());
    clock.now += 24 * 3_600_000;
    node.tick();
    expect(ofType(readyEffects(node.takeReady()), 'dial')).to.deep.equal([]);
    // The library's addPeer lifts the halt as add-peer does.
    node.addPeer('sim-b:1');
    expect(ofType(readyEffects(node.takeReady()), 'dial')).to.have.length(1);
  });

  it('a learnt address of another version is forgotten (not learnt again for FORGOTTEN_FOR_MS): it must not hold a learnt slot for ever', () => {
    const clock = { now: START_MS };
    const node = createNode({ id: 'a', address: 'sim-a:1', peerExchange: true, now: () => clock.now, random: mulberry32(1) });
    const teller = node.accept();
    node.receive(teller, JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: 't', address: 'sim-t:1' }));
    node.receive(teller, JSON.stringify({ type: 'peer-list', addresses: ['sim-b:1'] }));
    const [dial] = ofType(readyEffects(node.takeReady()), 'dial');
    expect(dial).to.deep.include({ address: 'sim-b:1' });
    node.opened(dial!.link);
    node.receive(dial!.link, JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION + 1, nodeId: 'b', address: 'sim-b:1' }));
    node.closed(dial!.link, 'closed');
    expect(node.peers().map((p) => p.address)).to.deep.equal(['sim-t:1']);
    clock.now += FORGOTTEN_FOR_MS - 1;
    node.receive(teller, JSON.stringify({ type: 'peer-list', addresses: ['sim-b:1'] }));
    node.tick();
    expect(ofType(readyEffects(node.takeReady()), 'dial')).to.deep.equal([]);
  });
});

describe('node: recovered entries', () => {
  const recovered = [
    { key: 'b', value: '2', timestamp: 20, origin: 'x' },
    { key: 'a', value: '1', timestamp: 10, origin: 'y' },
  ];

  it('a node created with recovered entries serves them without persisting or sending anything', () => {
    const node = createNode({ id: 'n', now: () => START_MS, random: () => 0, entries: recovered });
    expect(node.keys()).to.deep.equal(['a', 'b']);
    expect(node.entry('a')).to.deep.equal(recovered[1]);
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
    expect(node.stats()).to.include({ keys: 2, writesAccepted: 0, entriesApplied: 0 });
    expect(node.set('a', 'other')).to.equal(false);
  });

  it('a recovered entry with a lone surrogate (accepted before protocol 2) is left out with a warning, and the others load', () => {
    const bad = { key: 'half\ud800', value: 'v', timestamp: 5, origin: 'x' };
    const node = createNode({ id: 'n', now: () => START_MS, random: () => 0, changes: [{ entry: bad, seq: 1 }, { entry: recovered[0]!, seq: 2 }] });
    expect(node.keys()).to.deep.equal(['b']);
    const logs = readyEffects(node.takeReady()).filter((e) => e.type === 'log');
    expect(logs).to.have.length(1);
    expect(logs[0]).to.include({ level: 'warn' }).and.have.property('message').that.matches(/left out 1 stored entries .*not well-formed Unicode/);
  });

  it('recovered entries reach peers through the join sync', () => {
    const cluster = new Cluster();
    const b = cluster.addNode('b');
    cluster.addNode('n', { peers: ['b'], entries: recovered });
    cluster.stabilize();
    expect(b.keys()).to.deep.equal(['a', 'b']);
    expect(b.entry('b')).to.deep.equal(recovered[0]);
    expect(cluster.persisted.get('b')).to.deep.equal(['b', 'a']);
    expect(cluster.persisted.get('n')).to.deep.equal([]);
  });
});

describe('node: stalled dials and lost peers', () => {
  it('a dial that never gets its welcome is closed after the handshake timeout and dialed again', () => {
    let nowMs = 0;
    const node = createNode({ id: 'a', peers: ['127.0.0.1:9'], now: () => nowMs, random: () => 0.5 });
    const dial = readyEffects(node.takeReady()).find((e) => e.type === 'dial');
    if (dial?.type !== 'dial') throw new Error('expected a dial effect');
    node.opened(dial.link);
    readyEffects(node.takeReady());
    nowMs += HANDSHAKE_TIMEOUT_MS - 1;
    node.tick();
    expect(readyEffects(node.takeReady())).to.deep.equal([]);
    nowMs += 2;
    node.tick();
    const effects = readyEffects(node.takeReady());
    expect(effects[0]).to.deep.include({ type: 'close', link: dial.link, code: CLOSE_CODES.HANDSHAKE_TIMEOUT });
    expect(node.peers()[0]!.lastError).to.match(/no answer to hello within 5000 ms/);
    nowMs += RETRY_CAP_MS;
    node.tick();
    expect(readyEffects(node.takeReady()).filter((e) => e.type === 'dial')).to.have.length(1);
  });

  it('a peer that is lost and then unreachable is reported once as a warning, and again after the next loss', () => {
    const cluster = new Cluster();
    cluster.addNode('a', { peers: [simAddress('b')] });
    cluster.addNode('b');
    cluster.stabilize();
    const warnings = () => cluster.logs.filter((l) => l.level === 'warn' && /cannot reach peer/.test(l.message)).length;
    expect(warnings()).to.equal(0);
    cluster.stop('b');
    cluster.advance(20_000);
    expect(warnings()).to.equal(1);
    cluster.start('b');
    cluster.advance(RETRY_CAP_MS * 2);
    expect(cluster.node('a').stats().peers).to.equal(1);
    cluster.stop('b');
    cluster.advance(20_000);
    expect(warnings()).to.equal(2);
  });
});

describe('node: keys in pages', () => {
  it('answers every key in one reply when they fit, and in pages that follow each other otherwise', () => {
    const { node } = lone();
    for (let i = 0; i < 30_000; i++) node.set(`key-${String(i).padStart(6, '0')}-${'x'.repeat(20)}`, 'v');
    const link = node.accept();
    const pages: string[][] = [];
    let cursor: string | undefined;
    for (let round = 0; round < 100; round++) {
      node.receive(link, JSON.stringify({ type: 'keys', id: round, ...(cursor === undefined ? {} : { cursor }) }));
      const reply = ofType(readyEffects(node.takeReady()), 'send').at(-1)!.message;
      if (reply.type !== 'reply') throw new Error('expected a reply');
      expect(JSON.stringify(reply).length).to.be.below(1024 * 1024);
      pages.push(reply.result as string[]);
      cursor = reply.cursor;
      if (cursor === undefined) break;
    }
    expect(pages.length).to.be.within(2, 10);
    expect(pages.flat().sort()).to.deep.equal(node.keys());
  });

  it('pages in the order keys were stored, honours a limit, and a listing sees the keys stored before it began', () => {
    const { node } = lone();
    for (const key of ['d', 'a', 'c', 'b']) node.set(key, 'v');
    const link = node.accept();
    node.receive(link, JSON.stringify({ type: 'keys', id: 1, limit: 2 }));
    const first = ofType(readyEffects(node.takeReady()), 'send')[0]!.message;
    expect(first).to.deep.include({ type: 'reply', id: 1, result: ['d', 'a'] });
    if (first.type !== 'reply' || first.cursor === undefined) throw new Error('expected a cursor');
    node.set('e', 'v');
    node.receive(link, JSON.stringify({ type: 'keys', id: 2, cursor: first.cursor }));
    expect(ofType(readyEffects(node.takeReady()), 'send')[0]!.message).to.deep.equal({ type: 'reply', id: 2, result: ['c', 'b', 'e'] });
  });

  it('refuses a cursor from another run of the node, and the sorted "after" of older clients', () => {
    const { node } = lone();
    for (const key of ['a', 'b', 'c']) node.set(key, 'v');
    const link = node.accept();
    node.receive(link, JSON.stringify({ type: 'keys', id: 1, cursor: '2.deadbeef' }));
    node.receive(link, JSON.stringify({ type: 'keys', id: 2, cursor: '99.0' }));
    node.receive(link, JSON.stringify({ type: 'keys', id: 3, after: 'a' }));
    // A cursor no node could have given is malformed, not stale.
    for (const [i, cursor] of ['zzz', '1', '1.xyz', '1.0.0', '-1.0', '1.123456789'].entries()) node.receive(link, JSON.stringify({ type: 'keys', id: 4 + i, cursor }));
    const codes = ofType(readyEffects(node.takeReady()), 'send').map((effect) => (effect.message.type === 'error' ? effect.message.code : effect.message.type));
    expect(codes).to.deep.equal(['STALE_CURSOR', 'STALE_CURSOR', 'BAD_MESSAGE', ...Array(6).fill('BAD_MESSAGE')]);
  });
});

describe('node: set-many', () => {
  it('writes each entry once as set does, answers one boolean each, and sends the new entries together', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    a.set('taken', 'first');
    cluster.stabilize();
    cluster.resetCounters();
    const entries = [
      { key: 'new-1', value: 'v1' },
      { key: 'taken', value: 'first' },
      { key: 'taken', value: 'second' },
      { key: 'new-2', value: 'v2' },
    ];
    const reply = cluster.client('a').request({ type: 'set-many', entries });
    expect(reply).to.deep.include({ type: 'reply', result: [true, true, false, true] });
    expect(cluster.counters.deliveriesByType.entries).to.equal(1);
    expect(b.keys()).to.deep.equal(['new-1', 'new-2', 'taken']);
    expect(a.stats()).to.include({ writesAccepted: 3, writesRefused: 1 });
  });

  it('refuses a malformed or oversized set-many as a whole, storing nothing', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const client = cluster.client('a');
    expect(client.request({ type: 'set-many', entries: [{ key: 'ok', value: 'v' }, { key: 'no-value' }] })).to.include({ type: 'error', code: 'BAD_MESSAGE' });
    expect(client.request({ type: 'set-many', entries: [{ key: 'k'.repeat(2000), value: 'v' }] })).to.include({ type: 'error', code: 'KEY_TOO_LARGE' });
    expect(client.request({ type: 'set-many', entries: Array.from({ length: 10_001 }, (_, i) => ({ key: `k${i}`, value: 'v' })) })).to.include({ type: 'error', code: 'BAD_MESSAGE' });
    expect(a.keys()).to.deep.equal([]);
  });
});
