/**
 * End to end: the attacks of issue "Bounded under abuse", each against a real
 * bby-node process over real sockets, each shown to do no harm: the node's
 * memory stays bounded, a well-behaved client is served meanwhile, or the
 * abuse is refused cleanly. No assertion depends on the machine's speed: the
 * well-behaved client only has to be answered within the CLI's usual
 * timeout, and memory is read from /proc.
 */
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { MAX_DIAL_TARGETS } from '@bby/core/internal';
import { restartNode, spawnNode, startNode, useCleanup, waitFor, writeConfig, writeConfigWith, type NodeHandle, type NodeStats, type PeerRow } from './support/processes.js';

const log = (line: string) => console.log(`      ${line}`);

/** The resident memory of a process, in MB, from /proc. */
async function rssMb(node: NodeHandle): Promise<number> {
  const status = await readFile(`/proc/${node.process.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** A raw WebSocket to a node, open; the frames it receives are counted (the first 10,000 kept, cut short). */
async function rawSocket(node: NodeHandle): Promise<{ socket: WebSocket; tcp: () => Socket; received: string[]; count: () => number; closed: Promise<number> }> {
  const socket = new WebSocket(`ws://${node.address}`, { perMessageDeflate: false, maxPayload: 2 * 1024 * 1024 });
  // The TCP socket under the WebSocket, from the upgrade's response (public, unlike ws's _socket), to stop and start reading it.
  let tcp: Socket | undefined;
  socket.once('upgrade', (response) => (tcp = response.socket as Socket));
  const received: string[] = [];
  let count = 0;
  socket.on('message', (data) => {
    count++;
    if (received.length < 10_000) received.push(String(data).slice(0, 200));
  });
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, tcp: () => tcp!, received, count: () => count, closed };
}


/** Polls a well-behaved client's get until `done` says stop; returns how many answers it got. All must come back. */
async function wellBehaved(node: NodeHandle, done: () => boolean): Promise<number> {
  let answers = 0;
  for (let round = 0; round < 2_000 && !done(); round++) {
    expect(await node.query({ type: 'get', key: 'small' })).to.equal('s');
    answers++;
  }
  return answers;
}

describe('e2e: bounded under abuse', function () {
  this.timeout(60_000);
  useCleanup();

  it('a reader that stops reading while asking for 256 KiB values holds a bounded amount of memory, and is answered in full once it reads', async () => {
    const node = await startNode({ id: 'slow-target' });
    const big = 'b'.repeat(256 * 1024 - 2);
    await node.query({ type: 'set', key: 'big', value: big });
    await node.query({ type: 'set', key: 'small', value: 's' });
    const before = await rssMb(node);
    const { socket, tcp, count } = await rawSocket(node);
    tcp().pause();
    // 400 answers of 256 KiB: 100 MB that an unbounded node would hold in its send buffers.
    const requests = 400;
    for (let id = 1; id <= requests; id++) socket.send(JSON.stringify({ type: 'get', id, key: 'big' }));
    let peak = before;
    for (let sample = 0; sample < 20; sample++) {
      peak = Math.max(peak, await rssMb(node));
      expect(await node.query({ type: 'get', key: 'small' })).to.equal('s');
    }
    const stats = await node.query<NodeStats>({ type: 'stats' });
    log(`RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at most while the reader did not read (${requests} answers of 256 KiB asked)`);
    expect(peak - before).to.be.below(60);
    expect(stats.slowLinksClosed).to.equal(0);
    tcp().resume();
    await waitFor(() => count() >= requests, { what: `the slow reader to receive its ${requests} answers`, timeoutMs: 30_000 });
    expect(socket.readyState).to.equal(WebSocket.OPEN);
    socket.close();
  });

  it('a flood of repair requests from a peer streams one repair at a time: memory stays bounded and clients are served', async () => {
    const node = await startNode({ id: 'repair-target' });
    await node.query({ type: 'set', key: 'small', value: 's' });
    const value = 'r'.repeat(100 * 1024);
    // 40 MB in 400 keys, spread over the 256 buckets.
    for (let batch = 0; batch < 40; batch++) {
      await node.query({ type: 'set-many', entries: Array.from({ length: 10 }, (_, i) => ({ key: `k-${batch}-${i}`, value })) });
    }
    const before = await rssMb(node);
    const { socket, tcp, count } = await rawSocket(node);
    socket.send(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'flooder', address: '127.0.0.1:1' }));
    tcp().pause();
    const all = Array.from({ length: 256 }, (_, i) => i);
    // Ten whole-store repairs asked at once: 400 MB queued by a node that does not stream them.
    for (let i = 0; i < 10; i++) socket.send(JSON.stringify({ type: 'bucket-request', buckets: all }));
    let peak = before;
    for (let sample = 0; sample < 20; sample++) {
      peak = Math.max(peak, await rssMb(node));
      expect(await node.query({ type: 'get', key: 'small' })).to.equal('s');
    }
    const stats = await node.query<NodeStats>({ type: 'stats' });
    log(`RSS ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB at most with 10 whole-store repairs asked of a 40 MB store; ${stats.repairRequestsMerged} requests merged`);
    expect(peak - before).to.be.below(60);
    expect(stats.repairRequestsMerged).to.be.greaterThan(0);
    tcp().resume();
    await waitFor(() => count() > 2, { what: 'the flooder to receive its repair', timeoutMs: 20_000 });
    socket.terminate();
  });

  it('pairs of (set a new key, keys with a limit of 1) are answered a page at a time: a client is served meanwhile', async () => {
    const node = await startNode({ id: 'keys-target' });
    await node.query({ type: 'set', key: 'small', value: 's' });
    for (let batch = 0; batch < 20; batch++) {
      await node.query({ type: 'set-many', entries: Array.from({ length: 5_000 }, (_, i) => ({ key: `key-${batch}-${i}`, value: 'v' })) });
    }
    const { socket, count } = await rawSocket(node);
    const pairs = 300;
    for (let i = 0; i < pairs; i++) {
      socket.send(JSON.stringify({ type: 'set', id: `s${i}`, key: `new-${i}`, value: 'v' }));
      socket.send(JSON.stringify({ type: 'keys', id: `k${i}`, limit: 1 }));
    }
    const served = await wellBehaved(node, () => count() >= 2 * pairs);
    await waitFor(() => count() >= 2 * pairs, { what: 'every pair to be answered' });
    log(`${2 * pairs} requests of the amplifier answered on a 100,000-key node while a client got ${served} answers`);
    const stats = await node.query<NodeStats>({ type: 'stats' });
    expect(stats.keys).to.equal(100_000 + pairs + 1);
    socket.close();
  });

  it(`add-peer past ${MAX_DIAL_TARGETS} addresses is refused naming remove-peer; peers always fits a frame; remove-peer is kept across a restart`, async () => {
    const node = await startNode({ id: 'dial-target', dataDir: 'dial-data' });
    // Loopback addresses nobody listens on: every dial is refused at once, and nothing leaves the machine.
    const { socket } = await rawSocket(node);
    for (let i = 0; i < MAX_DIAL_TARGETS; i++) socket.send(JSON.stringify({ type: 'add-peer', id: i, address: `127.0.0.${2 + (i >> 8)}:${20_000 + (i & 255)}` }));
    await waitFor(async () => (await node.query<PeerRow[]>({ type: 'peers' })).length >= MAX_DIAL_TARGETS, { what: `${MAX_DIAL_TARGETS} dial targets` });
    const refused = await node.bby('add-peer', '127.0.0.9:1');
    expect(refused.code).to.equal(2);
    expect(refused.stderr).to.match(/TOO_MANY_PEERS/).and.to.match(/remove-peer/);
    const listed = await node.bby('peers');
    expect(listed.code).to.equal(0);
    expect(listed.stdout.trim().split('\n')).to.have.length(MAX_DIAL_TARGETS + 1);
    const removed = await node.bby('remove-peer', '127.0.0.2:20000');
    expect(removed.code).to.equal(0);
    await node.stop();
    const again = await restartNode(node);
    const rows = await again.query<PeerRow[]>({ type: 'peers' });
    expect(rows.map((r) => r.address)).to.not.include('127.0.0.2:20000');
    expect(rows).to.have.length(MAX_DIAL_TARGETS - 1);
    socket.terminate();
  });
});

describe('e2e: connections are bounded', function () {
  this.timeout(60_000);
  useCleanup();

  it('refuses connections past maxConnections with HTTP 503, and closes those that never finish a request or send nothing', async () => {
    const node = await startNode(await writeConfigWith({ id: 'conn-target' }, { maxConnections: 20 }));
    // 20 idle WebSockets fill the node; the next connection is refused with a reason bby prints.
    const idle = await Promise.all(Array.from({ length: 20 }, () => rawSocket(node)));
    const refused = await node.bby('get', 'k');
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/503/).and.to.match(/too many connections/);
    expect(refused.stderr.trim().split('\n')).to.have.length(1);
    // A TCP connection that sends nothing, and one that sends half an upgrade request.
    const silent = connect(node.port, '127.0.0.1');
    const halfSent = connect(node.port, '127.0.0.1');
    halfSent.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
    // Read what the node answers (a 408), or the end of the stream would never be seen.
    const tcpClosed = Promise.all([silent, halfSent].map((socket) => new Promise<void>((resolve) => socket.on('error', () => undefined).resume().once('close', () => resolve()))));
    const started = Date.now();
    await tcpClosed;
    log(`a silent and a half-sent connection were closed after ${Date.now() - started} ms`);
    // The idle WebSockets sent nothing: each closed with 4009, freeing room for real clients.
    const codes = await Promise.all(idle.map((raw) => raw.closed));
    log(`20 idle WebSockets closed after ${Date.now() - started} ms`);
    expect(new Set(codes)).to.deep.equal(new Set([4009]));
    const served = await node.bby('set', 'k', 'v');
    expect(served.stdout).to.equal('true\n');
    expect((await node.query<NodeStats>({ type: 'stats' })).idleConnectionsClosed).to.equal(20);
  });

  it('reads nothing before its store is loaded: a connection during start-up is answered 503 or served, never left hanging', async () => {
    const config = await writeConfig({ id: 'slow-start', dataDir: 'slow-start-data' });
    const first = await startNode(config);
    // About 30 MB of data to load at the next start.
    const value = 'x'.repeat(1_000);
    for (let batch = 0; batch < 30; batch++) {
      await first.query({ type: 'set-many', entries: Array.from({ length: 1_000 }, (_, i) => ({ key: `k-${batch}-${i}`, value })) });
    }
    await first.stop();
    const proc = spawnNode([config.path]);
    const outcomes: string[] = [];
    // Connect over and over while it starts: each attempt must end (open and answered, 503, or refused before it listens).
    for (let attempt = 0; attempt < 400 && !/listening on/.test(proc.stdout); attempt++) {
      outcomes.push(await attemptGet(config.port));
    }
    await proc.waitForOutput(/listening on/, 30_000);
    outcomes.push(await attemptGet(config.port));
    const counts: Record<string, number> = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
    log(`connections during a start-up loading 30 MB: ${JSON.stringify(counts)}`);
    // Whether an attempt falls in the loading window depends on the machine: the node's test (node-server.test.ts) holds it open.
    expect(outcomes.every((outcome) => ['refused', '503', 'answered'].includes(outcome)), JSON.stringify(counts)).to.equal(true);
    expect(outcomes.at(-1)).to.equal('answered');
  });
});

/** One `get` on a new connection: `answered`, `503`, `refused` (nothing listens yet), or what else happened (a hang times out). */
function attemptGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('hung'), 5_000);
    socket.on('unexpected-response', (_request, response) => done(String(response.statusCode)));
    socket.on('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED' ? 'refused' : `error ${error.message}`));
    socket.on('open', () => socket.send(JSON.stringify({ type: 'get', id: 1, key: 'k-0-0' })));
    socket.on('message', () => done('answered'));
  });
}
