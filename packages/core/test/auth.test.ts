/**
 * Authentication (auth.ts) and who may say what once authenticated: the
 * attacks of issue "Only members get in", each shown to fail, on real cores
 * over the in-memory cluster.
 */
import { expect } from 'chai';
import { authProof, type AuthTranscript, CLOSE_CODES, findSecret, type Message, newNonce, proofMatches } from '../src/index.js';
import { CROSSED_DIALS_WINDOW_MS, DIGEST_HEX_DIGITS } from '../src/internal.js';
import { type Client, Cluster, randomBytesFrom, mulberry32, resultOf } from '@bby/sim';

const SECRET = 'correct horse battery staple';
const OTHER = 'an entirely different secret';

/** The challenge a node sent a client as it accepted it. */
function challengeOf(client: Client): Extract<Message, { type: 'challenge' }> {
  client.settle();
  const challenge = client.inbox.find((m): m is Extract<Message, { type: 'challenge' }> => m.type === 'challenge');
  if (challenge === undefined) throw new Error(`${client.name}: no challenge received`);
  return challenge;
}

/** Answers a client's challenge as `role` with `secret`; returns the frames that came back and the transcript. */
function authenticate(client: Client, secret: string, options: { role?: 'client' | 'peer'; nodeId?: string; nonce?: string } = {}) {
  const challenge = challengeOf(client);
  const role = options.role ?? 'client';
  const nonce = options.nonce ?? newNonce(randomBytesFrom(mulberry32(42)));
  const transcript: AuthTranscript = { role, acceptorId: challenge.nodeId, initiatorId: options.nodeId ?? '', acceptorNonce: challenge.nonce, initiatorNonce: nonce };
  const frame = { type: 'auth', role, ...(role === 'peer' ? { nodeId: options.nodeId } : {}), nonce, proof: authProof(secret, 'initiator', transcript) };
  return { answers: client.exchange(JSON.stringify(frame)), transcript, frame };
}

function closeCodeOf(cluster: Cluster): number | undefined {
  return cluster.counters.closeCodes.at(-1);
}

describe('auth: proofs', () => {
  const transcript: AuthTranscript = { role: 'peer', acceptorId: 'a', initiatorId: 'b', acceptorNonce: '00'.repeat(16), initiatorNonce: '11'.repeat(16) };

  it('differ by side, role, nonce and secret, so that none can stand for another', () => {
    const proofs = new Set([
      authProof(SECRET, 'initiator', transcript),
      authProof(SECRET, 'acceptor', transcript),
      authProof(SECRET, 'initiator', { ...transcript, role: 'client' }),
      authProof(SECRET, 'initiator', { ...transcript, acceptorNonce: '22'.repeat(16) }),
      authProof(SECRET, 'initiator', { ...transcript, initiatorId: 'c' }),
      authProof(OTHER, 'initiator', transcript),
    ]);
    expect(proofs.size).to.equal(6);
    for (const proof of proofs) expect(proof).to.match(/^[0-9a-f]{64}$/);
  });

  it('are matched exactly, and any of several secrets may have made one (rotation)', () => {
    const proof = authProof(OTHER, 'initiator', transcript);
    expect(proofMatches(proof, proof)).to.equal(true);
    expect(proofMatches(proof, proof.replace(/.$/, (c) => (c === '0' ? '1' : '0')))).to.equal(false);
    expect(proofMatches(proof, proof.slice(1))).to.equal(false);
    expect(findSecret([SECRET, OTHER], proof, 'initiator', transcript)).to.equal(OTHER);
    expect(findSecret([SECRET], proof, 'initiator', transcript)).to.equal(undefined);
  });
});

describe('auth: a node with a secret', () => {
  function securedNode() {
    const cluster = new Cluster();
    const node = cluster.addNode('a', { secrets: [SECRET] });
    cluster.stabilize();
    return { cluster, node };
  }

  it('challenges every connection, serves a client that proves the secret, and proves it in turn', () => {
    const { cluster } = securedNode();
    const client = cluster.client('a');
    cluster.stabilize();
    expect(challengeOf(client)).to.include({ nodeId: 'a' });
    const { answers, transcript } = authenticate(client, SECRET);
    expect(answers).to.have.length(1);
    const authenticated = answers[0]!;
    if (authenticated.type !== 'authenticated') throw new Error(`expected authenticated, got ${JSON.stringify(authenticated)}`);
    expect(proofMatches(authProof(SECRET, 'acceptor', transcript), authenticated.proof)).to.equal(true);
    expect(resultOf(client.request({ type: 'set', key: 'k', value: 'v' }))).to.equal(true);
    expect(resultOf(client.request({ type: 'get', key: 'k' }))).to.equal('v');
  });

  it('acts on requests sent right behind the auth frame, in order', () => {
    const { cluster } = securedNode();
    const client = cluster.client('a');
    cluster.stabilize();
    const challenge = challengeOf(client);
    const nonce = '33'.repeat(16);
    const proof = authProof(SECRET, 'initiator', { role: 'client', acceptorId: 'a', initiatorId: '', acceptorNonce: challenge.nonce, initiatorNonce: nonce });
    client.sendRaw(JSON.stringify({ type: 'auth', role: 'client', nonce, proof }));
    expect(resultOf(client.request({ type: 'set', key: 'k', value: 'v' }))).to.equal(true);
  });

  it('refuses a wrong secret with AUTH_FAILED and close code 4010, counts it, and logs it once per source', () => {
    const { cluster, node } = securedNode();
    for (let attempt = 0; attempt < 3; attempt++) {
      const client = cluster.client('a');
      cluster.stabilize();
      const { answers } = authenticate(client, OTHER);
      expect(answers.map((m) => (m.type === 'error' ? m.code : m.type))).to.deep.equal(['AUTH_FAILED']);
      expect(closeCodeOf(cluster)).to.equal(CLOSE_CODES.AUTH_FAILED);
      expect(client.closeReason).to.not.equal(null);
    }
    expect(node.stats()).to.include({ authFailures: 3, keys: 0 });
    // Three clients, three sources (10.0.0.1 to .3): one line each. The same source again is left out.
    expect(cluster.logs.filter((l) => l.message.startsWith('refused a connection'))).to.have.length(3);
  });

  it('refuses any message before the auth frame with AUTH_REQUIRED (naming the request) and close code 4011, applying nothing', () => {
    const { cluster, node } = securedNode();
    const client = cluster.client('a');
    const answers = client.exchange(JSON.stringify({ type: 'set', id: 7, key: 'victim', value: 'PWNED' }));
    expect(answers.find((m) => m.type === 'error')).to.deep.include({ id: 7, code: 'AUTH_REQUIRED' });
    expect(closeCodeOf(cluster)).to.equal(CLOSE_CODES.AUTH_REQUIRED);
    expect(node.get('victim')).to.equal(null);
  });

  it('makes a raw client that says hello and sends entries with timestamp 0 change nothing (the attack of the issue)', () => {
    const { cluster, node } = securedNode();
    const writer = cluster.client('a');
    authenticate(writer, SECRET);
    writer.request({ type: 'set', key: 'victim', value: 'real' });
    const attacker = cluster.client('a');
    attacker.sendRaw(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'evil', address: '127.0.0.1:1' }));
    attacker.sendRaw(JSON.stringify({ type: 'entries', entries: [['victim', 'PWNED', 0, 'evil']] }));
    attacker.sendRaw(JSON.stringify({ type: 'catch-up', since: null }));
    cluster.stabilize();
    expect(node.get('victim')).to.equal('real');
    expect(attacker.inbox.some((m) => m.type === 'entries' || m.type === 'welcome')).to.equal(false);
    expect(node.stats().peers).to.equal(0);
  });

  it('refuses a recorded auth frame replayed on a new connection: the challenge is new', () => {
    const { cluster } = securedNode();
    const first = cluster.client('a');
    cluster.stabilize();
    const { frame } = authenticate(first, SECRET);
    const replay = cluster.client('a');
    const answers = replay.exchange(JSON.stringify(frame));
    expect(answers.find((m) => m.type === 'error')).to.deep.include({ code: 'AUTH_FAILED' });
    expect(resultOf(first.request({ type: 'get', key: 'x' }))).to.equal(null);
  });

  it('closes a connection that does not authenticate within the timeout with code 4012', () => {
    const { cluster, node } = securedNode();
    const client = cluster.client('a');
    cluster.advance(4_000);
    expect(client.closeReason).to.equal(null);
    cluster.advance(2_000);
    expect(client.closeReason).to.not.equal(null);
    expect(closeCodeOf(cluster)).to.equal(CLOSE_CODES.AUTH_TIMEOUT);
    expect(node.stats().authTimeouts).to.equal(1);
  });

  it('never lets a connection authenticated as a client speak the peer protocol, whatever it sends', () => {
    for (const frame of [
      { type: 'hello', protocol: 3, nodeId: 'evil', address: '127.0.0.1:1' },
      { type: 'entries', entries: [['victim', 'PWNED', 0, 'evil']] },
      { type: 'catch-up', since: null },
      { type: 'bucket-request', buckets: [0, 1, 2] },
      { type: 'digest', root: '0'.repeat(DIGEST_HEX_DIGITS) },
      { type: 'peer-list', addresses: ['10.9.9.9:1'] },
    ]) {
      const { cluster, node } = securedNode();
      node.set('victim', 'real');
      const client = cluster.client('a');
      authenticate(client, SECRET);
      const answers = client.exchange(JSON.stringify(frame));
      expect(answers.map((m) => (m.type === 'error' ? m.code : m.type)), frame.type).to.deep.equal(['FORBIDDEN']);
      expect(closeCodeOf(cluster), frame.type).to.equal(CLOSE_CODES.FORBIDDEN);
      expect(node.get('victim')).to.equal('real');
      expect(node.stats()).to.include({ peers: 0, forbiddenMessages: 1 });
    }
  });

  it('accepts the client secret from clients only: it cannot open a peer connection', () => {
    const cluster = new Cluster();
    cluster.addNode('a', { secrets: [SECRET], clientSecrets: [OTHER] });
    const client = cluster.client('a');
    expect(authenticate(client, OTHER).answers.map((m) => m.type)).to.deep.equal(['authenticated']);
    const peer = cluster.client('a');
    const { answers } = authenticate(peer, OTHER, { role: 'peer', nodeId: 'evil' });
    expect(answers.find((m) => m.type === 'error')).to.deep.include({ code: 'AUTH_FAILED' });
  });

  it('refuses a peer whose hello names another node than the one it authenticated as (an impostor id)', () => {
    const cluster = new Cluster();
    const node = cluster.addNode('a', { secrets: [SECRET] });
    const impostor = cluster.client('a');
    authenticate(impostor, SECRET, { role: 'peer', nodeId: 'mallory' });
    const answers = impostor.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'bob', address: '127.0.0.1:1' }));
    expect(answers.find((m) => m.type === 'error')).to.deep.include({ code: 'AUTH_FAILED' });
    expect(node.stats().peers).to.equal(0);
  });

  it('needs an authenticated client for add-peer: a stranger cannot use it to scan ports', () => {
    const { cluster } = securedNode();
    const stranger = cluster.client('a');
    const answers = stranger.exchange(JSON.stringify({ type: 'add-peer', id: 1, address: '10.1.2.3:22' }));
    expect(answers.find((m) => m.type === 'error')).to.deep.include({ id: 1, code: 'AUTH_REQUIRED' });
    expect(cluster.counters.dials).to.equal(0);
  });
});

describe('auth: a mesh with a secret', () => {
  it('connects nodes that share the secret, and they replicate as without one', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { secrets: [SECRET] });
    const b = cluster.addNode('b', { secrets: [SECRET], peers: ['a'] });
    cluster.stabilize();
    expect(a.stats().peers).to.equal(1);
    a.set('k', 'v');
    cluster.stabilize();
    expect(b.get('k')).to.equal('v');
  });

  it('accepts a node presenting an older secret still accepted during a rotation', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { secrets: ['the new secret of the mesh', SECRET] });
    cluster.addNode('b', { secrets: [SECRET], peers: ['a'] });
    cluster.stabilize();
    expect(a.stats().peers).to.equal(1);
  });

  it('keeps out a node with another secret: no link, a warning, retries, and nothing replicated', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { secrets: [SECRET] });
    const b = cluster.addNode('b', { secrets: [OTHER], peers: ['a'] });
    b.set('k', 'v');
    cluster.advance(3_000);
    expect(a.stats().peers).to.equal(0);
    expect(b.stats().peers).to.equal(0);
    expect(a.get('k')).to.equal(null);
    expect(a.stats().authFailures).to.be.greaterThan(1);
    expect(cluster.logs.some((l) => l.node === 'b' && l.message.includes('AUTH_FAILED'))).to.equal(true);
    expect(cluster.counters.dials).to.be.greaterThan(2);
  });

  it('keeps out a node without a secret, and a node with a secret does not join one without', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { secrets: [SECRET] });
    cluster.addNode('open', { peers: ['a'] });
    cluster.addNode('b', { secrets: [SECRET], peers: ['open'] });
    cluster.advance(7_000);
    expect(a.stats().peers).to.equal(0);
    expect(cluster.node('open').stats().peers).to.equal(0);
    expect(cluster.node('b').stats().peers).to.equal(0);
  });
});

describe('links: one per pair', () => {
  it('two nodes that dial each other at once end with one link, the dial of the smaller id, and list each other once', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['b'] });
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.advance(2_000);
    expect(cluster.openWires).to.equal(1);
    expect(a.peers()).to.deep.equal([{ address: 'sim-b:1', id: 'b', direction: 'outbound', connected: true }]);
    expect(b.peers()).to.deep.equal([{ address: 'sim-a:1', id: 'a', direction: 'inbound', connected: true }]);
    a.set('k', 'v');
    cluster.stabilize();
    expect(b.get('k')).to.equal('v');
  });

  it('add-peer of a node that is connected through the link it dialed answers connected at once, without a second link', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    const client = cluster.client('a');
    expect(client.request({ type: 'add-peer', address: 'sim-b:1' })).to.deep.include({ result: { address: 'sim-b:1', connected: true, id: 'b', retrying: false } });
    cluster.advance(2_000);
    expect(cluster.openWires).to.equal(2);
    expect(a.peers()).to.deep.equal([{ address: 'sim-b:1', id: 'b', direction: 'inbound', connected: true }]);
    expect(cluster.peersAdded.get('a')).to.deep.equal(['sim-b:1']);
  });

  it('a full mesh of three lists each peer once on every node, and stays that way', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { peers: ['b', 'c'] });
    const b = cluster.addNode('b', { peers: ['a', 'c'] });
    const c = cluster.addNode('c', { peers: ['a', 'b'] });
    cluster.advance(10_000);
    expect(cluster.openWires).to.equal(3);
    for (const node of [a, b, c]) {
      const ids = node.peers().map((p) => p.id);
      expect(ids.sort(), node.id).to.deep.equal(['a', 'b', 'c'].filter((id) => id !== node.id));
      expect(node.peers().every((p) => p.connected)).to.equal(true);
    }
  });

  it('a connection claiming the id of a connected peer does not take its traffic (an impostor with the secret)', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { secrets: [SECRET] });
    const b = cluster.addNode('b', { secrets: [SECRET], peers: ['a'] });
    cluster.stabilize();
    const impostor = cluster.client('a');
    authenticate(impostor, SECRET, { role: 'peer', nodeId: 'b' });
    impostor.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'b', address: 'sim-b:1' }));
    expect(closeCodeOf(cluster)).to.equal(CLOSE_CODES.DUPLICATE_LINK);
    // The impostor keeps pinging; the real b still gets every write.
    for (let i = 0; i < 5; i++) {
      impostor.sendRaw(JSON.stringify({ type: 'ping' }));
      a.set(`k${i}`, 'v');
      cluster.advance(500);
    }
    expect(b.keys()).to.have.length(5);
    expect(impostor.inbox.some((m) => m.type === 'entries')).to.equal(false);
  });

  for (const victim of ['a', 'z']) {
    it(`an impostor dialing in does not replace a live link this node dialed (victim id ${victim}, claimed id m)`, () => {
      // Without the crossed-dials window, the rule of the smaller id would hand the link to an inbound impostor claiming a smaller id.
      const cluster = new Cluster();
      const node = cluster.addNode(victim, { secrets: [SECRET], peers: ['m'] });
      const m = cluster.addNode('m', { secrets: [SECRET] });
      cluster.stabilize();
      cluster.advance(CROSSED_DIALS_WINDOW_MS + 1_000);
      expect(node.peers()).to.deep.equal([{ address: 'sim-m:1', id: 'm', direction: 'outbound', connected: true }]);
      const impostor = cluster.client(victim);
      authenticate(impostor, SECRET, { role: 'peer', nodeId: 'm' });
      impostor.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'm', address: 'sim-m:1' }));
      expect(closeCodeOf(cluster)).to.equal(CLOSE_CODES.DUPLICATE_LINK);
      for (let i = 0; i < 5; i++) {
        impostor.sendRaw(JSON.stringify({ type: 'ping' }));
        node.set(`k${i}`, 'v');
        cluster.advance(500);
      }
      expect(m.keys()).to.have.length(5);
      expect(node.peers()).to.deep.equal([{ address: 'sim-m:1', id: 'm', direction: 'outbound', connected: true }]);
      expect(impostor.inbox.some((msg) => msg.type === 'entries')).to.equal(false);
    });
  }
});

describe('clocks: entries from the future', () => {
  it('refuses entries stamped further ahead than maxClockSkewMs, counts and logs them, and keeps the rest', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a', { maxClockSkewMs: 60_000 });
    const peer = cluster.client('a');
    peer.exchange(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'skewed', address: 'sim-skewed:1' }));
    const now = cluster.nowMs;
    peer.exchange(JSON.stringify({ type: 'entries', entries: [['far', 'x', now + 3_600_000, 'skewed'], ['near', 'y', now + 30_000, 'skewed']] }));
    expect(a.get('far')).to.equal(null);
    expect(a.get('near')).to.equal('y');
    expect(a.stats().entriesFromFuture).to.equal(1);
    expect(cluster.logs.some((l) => l.message.includes('too far in the future') && l.message.includes('"far"'))).to.equal(true);
  });
});

describe('logs: text from the network', () => {
  it('escapes control characters of an error frame, so a newline cannot forge a log line', () => {
    const cluster = new Cluster();
    cluster.addNode('a');
    const client = cluster.client('a');
    client.exchange(JSON.stringify({ type: 'error', id: null, code: 'X\n12:00:00.000 info forged', message: 'bad\n12:00:00.000 info all is well\u001b[2J' }));
    const line = cluster.logs.at(-1)!.message;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters.
    expect(line).to.not.match(/[\u0000-\u001f]/);
    expect(line).to.include('\\n12:00:00.000 info all is well\\u001b[2J');
  });
});
