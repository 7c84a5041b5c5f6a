/**
 * End to end: resilience of a mesh of real bby-node processes. A node killed
 * with SIGKILL during writes and restarted with its dataDir converges with
 * the others; a node frozen with SIGSTOP is marked down without blocking
 * writes, and catches up after SIGCONT; a node that was down catches up with a
 * transfer proportional to what it missed; anti-entropy is cheap when nothing
 * differs; peer exchange finds the mesh; a full mesh delivers a set about once
 * per other node; `set` with `acks` counts the nodes that hold the write.
 *
 * Figures (catch-up transfer, deliveries per set, detection time) are printed
 * so that they show in the test output.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { type BbyClient } from '@bby/client';
import {
  connectClient,
  continueStopped,
  restartNode,
  signalProcess,
  startNode,
  useCleanup,
  waitFor,
  waitForConnected,
  writeConfig,
  writeConfigWith,
  type NodeHandle,
  type NodeStats,
  type PeerRow,
} from './support/processes.js';
import { setAll, wrongValues } from './support/load.js';

type Stats = NodeStats;

const stats = (node: NodeHandle) => node.query<Stats>({ type: 'stats' });
const peers = (node: NodeHandle) => node.query<PeerRow[]>({ type: 'peers' });
const isConnectedTo = (rows: readonly PeerRow[], id: string) => rows.some((row) => row.id === id && row.connected);
const log = (line: string) => console.log(`      ${line}`);

/** The cursors a node with a dataDir saved in its node.json (at most once a second), by peer id. */
async function savedCursors(dataDir: string): Promise<Record<string, { epoch: string; seq: number }>> {
  const meta = JSON.parse(await readFile(join(dataDir, 'node.json'), 'utf8')) as { cursors?: Record<string, { epoch: string; seq: number }> };
  return meta.cursors ?? {};
}

const makeEntries = (prefix: string, count: number) => new Map(Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, `value of ${prefix} ${i}`] as const));

/**
 * One request over a raw WebSocket, returning the whole answer message (the
 * client library returns only `result`, and a `set` with `acks` carries more).
 */
function rawRequest(address: string, body: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${address}`, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no answer to ${JSON.stringify(body)} from ${address} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('open', () => socket.send(JSON.stringify({ ...body, id: 'raw-1' })));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Record<string, unknown>;
      if (message.id !== 'raw-1') return;
      clearTimeout(timer);
      socket.close(1000, 'done');
      resolve(message);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

describe('e2e: resilience of the mesh', function () {
  this.timeout(60_000);
  // A stopped process ignores SIGTERM until continued: wake it before the clean-up stops everything.
  afterEach(() => continueStopped());
  useCleanup();

  it('a node killed with SIGKILL during writes and restarted with its dataDir ends with the same keys as the others; every acknowledged write is everywhere', async () => {
    const a = await startNode({ id: 'kill-a' });
    const b = await startNode({ id: 'kill-b', peers: [a.address] });
    const cConfig = await writeConfig({ id: 'kill-c', peers: [a.address, b.address], dataDir: 'data-kill-c', fsync: 'always' });
    let c = await startNode(cConfig);
    await waitForConnected(c, ['kill-a', 'kill-b']);
    await waitForConnected(b, ['kill-a', 'kill-c']);

    // Writers on a and b, 16 requests in flight each, until told to stop; only `true` answers are counted.
    const acknowledged = new Map<string, string>();
    let writing = true;
    const writer = async (client: BbyClient, name: string, worker: number) => {
      for (let i = 0; writing; i++) {
        const key = `${name}-${worker}-${i}`;
        const value = `written on ${name} by worker ${worker}, #${i}`;
        const result = await client.request({ type: 'set', key, value });
        if (result !== true) throw new Error(`set ${key} on ${name} answered ${JSON.stringify(result)}`);
        acknowledged.set(key, value);
      }
    };
    const clients = [await connectClient(a.address), await connectClient(b.address)];
    const writers = clients.flatMap((client, n) => Array.from({ length: 16 }, (_, w) => writer(client, n === 0 ? 'a' : 'b', w)));
    const writersDone = Promise.all(writers);
    writersDone.catch(() => undefined);
    const ackedAtLeast = (count: number, what: string) => waitFor(() => acknowledged.size >= count, { timeoutMs: 15_000, intervalMs: 20, what });
    const start = Date.now();
    let cursorsAtKill: Record<string, { epoch: string; seq: number }> = {};
    let aBefore: Stats | undefined;
    let bBefore: Stats | undefined;
    try {
      await ackedAtLeast(300, '300 writes acknowledged before the kill');
      // kill-c saves its cursors at most once a second: kill it once they cover some writes from both
      // peers, so that its restart can resume from them (a node killed before any save gets full transfers).
      await waitFor(
        async () => {
          const cursors = await savedCursors(cConfig.dataDir!);
          return (cursors['kill-a']?.seq ?? 0) >= 100 && (cursors['kill-b']?.seq ?? 0) >= 100;
        },
        { timeoutMs: 10_000, intervalMs: 50, what: "kill-c's node.json to hold cursors past 100 for both peers" },
      );
      expect((await c.kill()).signal).to.equal('SIGKILL');
      const atKill = acknowledged.size;
      cursorsAtKill = await savedCursors(cConfig.dataDir!);
      await ackedAtLeast(atKill + 400, '400 more writes while kill-c is down');
      [aBefore, bBefore] = await Promise.all([stats(a), stats(b)]);
      c = await restartNode(cConfig);
      const atRestart = acknowledged.size;
      await ackedAtLeast(atRestart + 300, '300 more writes after the restart');
      writing = false;
      await writersDone;
      log(`kill -9: ${atKill} writes acknowledged before the kill, ${atRestart - atKill} while kill-c was down, ${acknowledged.size - atRestart} after its restart (${Date.now() - start} ms)`);
    } finally {
      writing = false;
    }

    const nodes = [a, b, c];
    const settled = Date.now();
    await waitFor(async () => (await Promise.all(nodes.map(stats))).every((s) => s.keys === acknowledged.size), {
      timeoutMs: 20_000,
      what: `every node to hold the ${acknowledged.size} acknowledged keys`,
    });
    // Holding every key can come before the end of the second peer's catch-up (its entries are then duplicates): wait for both.
    const [aAfter, bAfter, cStats] = await waitFor(
      async () => {
        const all = (await Promise.all(nodes.map(stats))) as [Stats, Stats, Stats];
        const sent = all[0].catchUpEntriesSent - aBefore!.catchUpEntriesSent + all[1].catchUpEntriesSent - bBefore!.catchUpEntriesSent;
        return all[2].catchUpEntriesReceived === sent ? all : undefined;
      },
      { timeoutMs: 10_000, what: 'kill-c to count the catch-up transfers of both peers' },
    );
    const sentByA = aAfter.catchUpEntriesSent - aBefore!.catchUpEntriesSent;
    const sentByB = bAfter.catchUpEntriesSent - bBefore!.catchUpEntriesSent;
    const fullTransfers = aAfter.fullTransfersSent - aBefore!.fullTransfersSent + bAfter.fullTransfersSent - bBefore!.fullTransfersSent;
    const [cursorA, cursorB] = [cursorsAtKill['kill-a']!.seq, cursorsAtKill['kill-b']!.seq];
    log(
      `kill -9: all three nodes hold ${acknowledged.size} keys ${Date.now() - settled} ms after the writes stopped; kill-c's saved cursors: kill-a ${cursorA}, kill-b ${cursorB}; ` +
        `after its restart kill-c received ${cStats.catchUpEntriesReceived} entries by catch-up (kill-a sent ${sentByA}, kill-b sent ${sentByB}; full transfers ${fullTransfers}), ` +
        `${cStats.duplicatesDropped} duplicates dropped, ${cStats.repairEntriesSent} repair entries sent`,
    );
    // Catch-up resumed from the saved cursors: no full transfer, and what each peer sent starts after the cursor.
    expect(fullTransfers, 'full transfers to the restarted node').to.equal(0);
    expect(sentByA).to.be.at.most(acknowledged.size - cursorA);
    expect(sentByB).to.be.at.most(acknowledged.size - cursorB);

    // The same key set everywhere, through the CLI, and exactly the acknowledged keys.
    const keySets = await Promise.all(nodes.map((node) => node.json<string[]>('keys')));
    const expectedKeys = [...acknowledged.keys()].sort();
    for (const [index, keys] of keySets.entries()) expect(keys, `keys of ${nodes[index]!.id}`).to.deep.equal(expectedKeys);
    // Every acknowledged value on every node.
    for (const node of nodes) expect(await wrongValues((key) => node.query({ type: 'get', key }), acknowledged), `values on ${node.id}`).to.deep.equal([]);
    // And a sample through the CLI on the restarted node: one key written before the kill, one during.
    for (const key of ['a-0-0', 'b-3-5']) {
      expect(await c.bby('get', key)).to.include({ code: 0, stdout: `${acknowledged.get(key)}\n` });
    }
  });

  it('a node frozen with SIGSTOP is marked down within seconds without blocking writes, and catches up after SIGCONT', async () => {
    const a = await startNode({ id: 'stop-a' });
    const b = await startNode({ id: 'stop-b', peers: [a.address] });
    const c = await startNode({ id: 'stop-c', peers: [a.address, b.address] });
    await waitForConnected(c, ['stop-a', 'stop-b']);
    await waitForConnected(b, ['stop-a', 'stop-c']);
    await waitFor(async () => isConnectedTo(await peers(a), 'stop-c'), { what: 'stop-a to see stop-c' });
    const before = makeEntries('before', 50);
    await setAll(await connectClient(a.address), before);
    await waitFor(async () => (await stats(c)).keys === before.size, { what: 'stop-c to hold the first keys' });

    expect(signalProcess(c, 'SIGSTOP')).to.equal(true);
    const stoppedAt = Date.now();
    // While detection runs, one writer per live node measures how long each `set` takes.
    const during = new Map<string, string>();
    const latencies: number[] = [];
    let writing = true;
    const writer = async (node: NodeHandle) => {
      const client = await connectClient(node.address);
      for (let i = 0; writing; i++) {
        const key = `during-${node.id}-${i}`;
        const value = `written on ${node.id} while stop-c was stopped, #${i}`;
        const sent = Date.now();
        const result = await client.request({ type: 'set', key, value });
        latencies.push(Date.now() - sent);
        if (result !== true) throw new Error(`set ${key} answered ${JSON.stringify(result)}`);
        during.set(key, value);
        // Paced, not a flood: this measures the latency of ordinary writes, not the throughput.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const writers = Promise.all([writer(a), writer(b)]);
    writers.catch(() => undefined);
    let detectedAfterMs: number;
    try {
      await waitFor(
        async () => {
          const [rowsA, rowsB, statsA, statsB] = await Promise.all([peers(a), peers(b), stats(a), stats(b)]);
          return !isConnectedTo(rowsA, 'stop-c') && !isConnectedTo(rowsB, 'stop-c') && statsA.peersTimedOut >= 1 && statsB.peersTimedOut >= 1;
        },
        { timeoutMs: 9_000, intervalMs: 50, what: 'stop-a and stop-b to mark stop-c down' },
      );
      detectedAfterMs = Date.now() - stoppedAt;
      // A little more writing after detection: writes made while stop-c is known to be down.
      const atDetection = during.size;
      await waitFor(() => during.size >= atDetection + 20, { timeoutMs: 5_000, intervalMs: 20, what: '20 more writes after detection' });
    } finally {
      writing = false;
    }
    await writers;
    const sorted = [...latencies].sort((x, y) => x - y);
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    const max = sorted.at(-1)!;
    log(`SIGSTOP: stop-c marked down by both others after ${detectedAfterMs} ms; ${during.size} writes meanwhile, latency p50 ${p50} ms, max ${max} ms`);
    expect(detectedAfterMs, 'detection time (ms)').to.be.below(6_500);
    expect(max, 'slowest write while stop-c was stopped (ms)').to.be.below(1_500);
    expect(during.size).to.be.at.least(20);

    // What the CLI shows meanwhile: no connected row for stop-c.
    const shown = await a.json<PeerRow[]>('peers');
    expect(isConnectedTo(shown, 'stop-c'), JSON.stringify(shown)).to.equal(false);

    const [aBefore, bBefore] = await Promise.all([stats(a), stats(b)]);
    expect(signalProcess(c, 'SIGCONT')).to.equal(true);
    const continuedAt = Date.now();
    await waitForConnected(c, ['stop-a', 'stop-b'], 15_000);
    await waitFor(async () => (await stats(c)).keys === before.size + during.size, { timeoutMs: 15_000, what: 'stop-c to catch up' });
    const caughtUpMs = Date.now() - continuedAt;
    const [aAfter, bAfter, cStats] = await Promise.all([stats(a), stats(b), stats(c)]);
    log(
      `SIGCONT: stop-c reconnected and caught up ${caughtUpMs} ms later; it received ${cStats.catchUpEntriesReceived} entries by catch-up for ${during.size} missed writes ` +
        `(stop-a sent ${aAfter.catchUpEntriesSent - aBefore.catchUpEntriesSent}, stop-b sent ${bAfter.catchUpEntriesSent - bBefore.catchUpEntriesSent}), ${cStats.duplicatesDropped} duplicates dropped`,
    );
    expect(await wrongValues((key) => c.query({ type: 'get', key }), during)).to.deep.equal([]);
    await waitFor(async () => isConnectedTo(await peers(a), 'stop-c') && isConnectedTo(await peers(b), 'stop-c'), { what: 'stop-a and stop-b to see stop-c again' });
  });

  it('a node that was down catches up with a transfer proportional to what it missed', async () => {
    const a = await startNode({ id: 'cu-a' });
    const initial = makeEntries('initial', 500);
    await setAll(await connectClient(a.address), initial);
    const bConfig = await writeConfig({ id: 'cu-b', peers: [a.address], dataDir: 'data-cu-b', fsync: 'always' });
    let b = await startNode(bConfig);
    await waitFor(async () => (await stats(b)).keys === initial.size, { what: 'cu-b to hold the 500 keys' });
    const first = await stats(a);
    log(`catch-up: first connection: cu-a sent ${first.catchUpEntriesSent} entries (${first.fullTransfersSent} full transfer)`);

    expect((await b.stop()).code).to.equal(0);
    const beforeA = await stats(a);
    const missed = makeEntries('missed', 20);
    await setAll(await connectClient(a.address), missed);

    b = await restartNode(bConfig);
    await waitForConnected(b, ['cu-a']);
    await waitFor(async () => (await stats(b)).keys === initial.size + missed.size, { what: 'cu-b to catch up' });
    // `caught-up` follows the entries: wait for both ends to have counted the transfer.
    const [afterA, afterB] = await waitFor(
      async () => {
        const pair = await Promise.all([stats(a), stats(b)]);
        const [sa, sb] = pair;
        const bothWaysCounted = sb.catchUpEntriesReceived === sa.catchUpEntriesSent - beforeA.catchUpEntriesSent && sa.catchUpEntriesReceived - beforeA.catchUpEntriesReceived === sb.catchUpEntriesSent;
        return bothWaysCounted ? pair : undefined;
      },
      { timeoutMs: 5_000, what: 'both ends to count the catch-up they sent and received' },
    );
    const sentByA = afterA.catchUpEntriesSent - beforeA.catchUpEntriesSent;
    const sentByB = afterB.catchUpEntriesSent;
    log(
      `catch-up after missing ${missed.size} writes (store of ${initial.size + missed.size}): cu-a sent ${sentByA}, cu-b received ${afterB.catchUpEntriesReceived}; ` +
        `full transfers by cu-a: ${afterA.fullTransfersSent - beforeA.fullTransfersSent}; the other way, cu-b sent ${sentByB} (full transfers: ${afterB.fullTransfersSent}) and cu-a received ${afterA.catchUpEntriesReceived - beforeA.catchUpEntriesReceived}`,
    );
    expect(sentByA, 'entries cu-a sent by catch-up').to.be.within(missed.size, 40);
    expect(afterB.catchUpEntriesReceived, 'entries cu-b received by catch-up').to.be.within(missed.size, 40);
    expect(afterA.fullTransfersSent - beforeA.fullTransfersSent, 'full transfers').to.equal(0);
    const keys = await b.json<string[]>('keys');
    expect(keys).to.deep.equal([...initial.keys(), ...missed.keys()].sort());
    expect(await wrongValues((key) => b.query({ type: 'get', key }), missed)).to.deep.equal([]);
  });

  it('anti-entropy: two nodes whose stores agree compare digests every period and send no repair', async () => {
    const a = await startNode(await writeConfigWith({ id: 'ae-a' }, { antiEntropyIntervalMs: 500 }));
    const b = await startNode(await writeConfigWith({ id: 'ae-b', peers: [a.address] }, { antiEntropyIntervalMs: 500 }));
    await waitForConnected(b, ['ae-a']);
    const entries = makeEntries('ae', 100);
    await setAll(await connectClient(a.address), entries);
    await waitFor(async () => (await stats(b)).keys === entries.size, { what: 'ae-b to hold the keys' });

    // From now on nothing differs. ae-a (the smaller id) starts every round.
    const [a0, b0] = await Promise.all([stats(a), stats(b)]);
    const t0 = Date.now();
    const a1 = await waitFor(async () => {
      const s = await stats(a);
      return s.antiEntropyRounds >= a0.antiEntropyRounds + 4 ? s : undefined;
    }, { timeoutMs: 8_000, intervalMs: 250, what: 'ae-a to run 4 anti-entropy rounds' });
    const b1 = await stats(b);
    const elapsedS = (Date.now() - t0) / 1000;
    const rounds = a1.antiEntropyRounds - a0.antiEntropyRounds;
    log(
      `anti-entropy: ${rounds} rounds in ${elapsedS.toFixed(1)} s; repair entries sent: ae-a ${a1.repairEntriesSent - a0.repairEntriesSent}, ae-b ${b1.repairEntriesSent - b0.repairEntriesSent}; ` +
        `frames sent meanwhile: ae-a ${a1.messagesSent - a0.messagesSent} (digests, pings and this test's stats replies), ae-b ${b1.messagesSent - b0.messagesSent}`,
    );
    expect(a1.repairEntriesSent - a0.repairEntriesSent).to.equal(0);
    expect(b1.repairEntriesSent - b0.repairEntriesSent).to.equal(0);
    // ae-b answered no digest (an answer is sent only when roots differ): it sent pings (one per quiet second) and one stats reply.
    expect(b1.messagesSent - b0.messagesSent, 'frames sent by ae-b').to.be.at.most(Math.ceil(elapsedS) + 2);
    // No entry moved either way.
    expect(a1.entriesApplied + a1.duplicatesDropped).to.equal(a0.entriesApplied + a0.duplicatesDropped);
    expect(b1.entriesApplied + b1.duplicatesDropped).to.equal(b0.entriesApplied + b0.duplicatesDropped);
  });

  it('peer exchange: a node configured with one peer learns and connects to that peer\'s peer', async () => {
    const a = await startNode({ id: 'px-a' });
    const b = await startNode({ id: 'px-b', peers: [a.address] });
    await waitForConnected(b, ['px-a']);
    const c = await startNode({ id: 'px-c', peers: [b.address] });
    await waitFor(async () => isConnectedTo(await peers(c), 'px-a'), { what: 'px-c to connect to px-a' });
    const rows = await c.json<PeerRow[]>('peers');
    expect(rows.find((row) => row.address === a.address), JSON.stringify(rows)).to.include({ id: 'px-a', direction: 'outbound', connected: true });
    const learned = await Promise.all([a, b, c].map(async (node) => [node.id, (await stats(node)).peersLearned] as const));
    log(`peer exchange: peersLearned ${learned.map(([id, n]) => `${id} ${n}`).join(', ')}`);
    expect(learned.find(([id]) => id === 'px-c')![1]).to.be.at.least(1);
    // And a write on px-a reaches px-c directly or through px-b.
    expect(await a.query({ type: 'set', key: 'px', value: 'found' })).to.equal(true);
    await waitFor(async () => (await c.query({ type: 'get', key: 'px' })) === 'found', { what: 'px on px-c' });
  });

  it('a set in a full mesh of 5 nodes is delivered about once to each other node', async () => {
    const N = 5;
    const SETS = 20;
    const configs: Awaited<ReturnType<typeof writeConfig>>[] = [];
    for (let i = 0; i < N; i++) configs.push(await writeConfig({ id: `mesh-${i}`, peers: configs.map((c) => c.address) }));
    const nodes: NodeHandle[] = [];
    for (const config of configs) nodes.push(await startNode(config));
    await waitFor(async () => (await Promise.all(nodes.map(stats))).every((s) => s.peers === N - 1), { timeoutMs: 15_000, what: 'a full mesh (4 peers each)' });

    const before = await Promise.all(nodes.map(stats));
    for (let i = 0; i < SETS; i++) {
      expect(await nodes[i % N]!.query({ type: 'set', key: `mesh-key-${i}`, value: `v${i}` })).to.equal(true);
    }
    await waitFor(async () => (await Promise.all(nodes.map(stats))).every((s) => s.keys === SETS), { what: 'every node to hold the 20 keys' });
    const after = await Promise.all(nodes.map(stats));
    const deliveries = after.reduce((sum, s, i) => sum + s.entriesApplied + s.duplicatesDropped - before[i]!.entriesApplied - before[i]!.duplicatesDropped, 0);
    const duplicates = after.reduce((sum, s, i) => sum + s.duplicatesDropped - before[i]!.duplicatesDropped, 0);
    const timedOut = after.reduce((sum, s, i) => sum + s.peersTimedOut - before[i]!.peersTimedOut, 0);
    log(`deliveries per set, full mesh of ${N}: ${deliveries} deliveries for ${SETS} sets = ${(deliveries / SETS).toFixed(2)} per set (N-1 = ${N - 1}; ${duplicates} duplicates; ${timedOut} links timed out meanwhile)`);
    expect(deliveries).to.be.at.least((N - 1) * SETS);
    expect(deliveries).to.be.at.most(1.5 * (N - 1) * SETS);
  });

  it('set with acks: 3 in a line A-B-C answers true with acks 3, and ACK_TIMEOUT with acks 2 once C is stopped', async () => {
    const a = await startNode({ id: 'ack-a', peerExchange: false });
    const b = await startNode({ id: 'ack-b', peers: [a.address], peerExchange: false });
    const c = await startNode({ id: 'ack-c', peers: [b.address], peerExchange: false });
    await waitForConnected(c, ['ack-b']);
    await waitForConnected(b, ['ack-a', 'ack-c']);
    expect(isConnectedTo(await peers(a), 'ack-c'), 'a line: ack-a is not connected to ack-c').to.equal(false);

    const reply = await rawRequest(a.address, { type: 'set', key: 'line', value: 'three', acks: 3 });
    expect(reply).to.deep.equal({ type: 'reply', id: 'raw-1', result: true, acks: 3 });
    // `true` with acks 3 means the write is already on ack-c: no wait needed.
    expect(await c.query({ type: 'get', key: 'line' })).to.equal('three');
    // The same through the CLI.
    expect(await a.bby('--acks', '3', 'set', 'cli-line', 'three')).to.include({ code: 0, stdout: 'true\n' });
    expect(await c.query({ type: 'get', key: 'cli-line' })).to.equal('three');
    expect(await a.bby('--acks', 'all', 'set', 'cli-all', 'every')).to.include({ code: 0, stdout: 'true\n' });
    expect(await c.query({ type: 'get', key: 'cli-all' })).to.equal('every');

    expect((await c.stop()).code).to.equal(0);
    await waitFor(async () => !isConnectedTo(await peers(b), 'ack-c'), { what: 'ack-b to see ack-c gone' });
    const sent = Date.now();
    const timedOut = await rawRequest(a.address, { type: 'set', key: 'line-2', value: 'two of three', acks: 3, timeoutMs: 1_000 });
    const tookMs = Date.now() - sent;
    log(`acks: with ack-c stopped, acks 3 answered after ${tookMs} ms: ${JSON.stringify(timedOut)}`);
    expect(timedOut).to.include({ type: 'error', id: 'raw-1', code: 'ACK_TIMEOUT', acks: 2 });
    expect(tookMs).to.be.at.least(900);
    // The write is stored on the nodes that counted, and keeps spreading.
    expect(await a.query({ type: 'get', key: 'line-2' })).to.equal('two of three');
    expect(await b.query({ type: 'get', key: 'line-2' })).to.equal('two of three');
    // The CLI says how many nodes held it, and exits 3.
    const cli = await a.bby('--acks', '3', '--timeout', '1500', 'set', 'cli-line-2', 'two');
    expect(cli.code).to.equal(3);
    expect(cli.stderr).to.include('stored on 2 of 3 nodes');
  });
});
