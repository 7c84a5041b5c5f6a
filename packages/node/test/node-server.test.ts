/**
 * The adapter with an injected file layer: what a node does when its disk
 * fails under it.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig, type ResponseMessage } from '@bby/core';
import { WebSocket } from 'ws';
import { type FileSystem, startNode, type RunningNode } from '../src/index.js';
import { StartError } from '../src/start-error.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { freePort, waitFor } from './support/wait.js';


/** A raw client: sends requests, collects every answer. */
/** A raw client; `tcp` is the socket under it, from the upgrade's response (public, unlike ws's _socket). */
async function connect(port: number): Promise<{ socket: WebSocket; tcp: Socket; ask: (request: object) => Promise<ResponseMessage> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  let tcp: Socket | undefined;
  socket.once('upgrade', (response) => (tcp = response.socket as Socket));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let next = 1;
  const ask = (request: object) =>
    new Promise<ResponseMessage>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`no answer to request ${id}`)), 5_000);
      const onMessage = (data: unknown) => {
        const message = JSON.parse(String(data)) as ResponseMessage;
        if (message.id === id) {
          clearTimeout(timer);
          socket.off('message', onMessage);
          resolve(message);
        }
      };
      socket.on('message', onMessage);
      socket.send(JSON.stringify({ ...request, id }));
    });
  return { socket, tcp: tcp!, ask };
}


describe('bby-node adapter: a failing disk', function () {
  this.timeout(20_000);
  let dir: string;
  let node: RunningNode | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-disk-'));
  });

  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  for (const kind of ['sync', 'append'] as const) {
    it(`never acknowledges a write whose ${kind} failed, keeps answering reads, and takes writes again once the disk works`, async () => {
      const fs = new MemoryFileSystem();
      const port = await freePort();
      const source = join(dir, 'node.json');
      const config = parseConfig(JSON.stringify({ port, id: 'disk', dataDir: 'data' }), source);
      // The data goes to the in-memory file layer; the LOCK file always uses the real one.
      await mkdir(join(dir, 'data'));
      const lines: string[] = [];
      node = await startNode(config, { source, fs, log: (_level, line) => lines.push(line) });
      const client = await connect(port);

      expect(await client.ask({ type: 'set', key: 'before', value: 'kept' })).to.deep.equal({ type: 'reply', id: 1, result: true });
      fs.faults.failEvery = { kind, code: 'ENOSPC' };
      const answer = await client.ask({ type: 'set', key: 'after', value: 'refused' });
      expect(answer).to.include({ type: 'error', id: 2, code: 'STORAGE_FAILED' });
      expect((answer as { message: string }).message).to.include('ENOSPC');
      expect(lines.some((line) => /cannot write to .*ENOSPC.*writes are refused until it works again/.test(line))).to.equal(true);

      // A state, not a crash: reads are answered, writes refused with the reason, stats say so.
      expect(await client.ask({ type: 'get', key: 'before' })).to.include({ type: 'reply', result: 'kept' });
      expect(await client.ask({ type: 'set', key: 'other', value: 'v' })).to.include({ type: 'error', code: 'STORAGE_FAILED' });
      expect(await client.ask({ type: 'stats' })).to.have.nested.property('result.writable', false);

      delete fs.faults.failEvery;
      await waitFor(async () => ((await client.ask({ type: 'stats' })) as { result: { writable: boolean } }).result.writable, 'the node to find its disk back', 10_000);
      expect(await client.ask({ type: 'set', key: 'later', value: 'v' })).to.include({ type: 'reply', result: true });
      await node.close();
      node = undefined;

      // Restarted on the same disk: what was acknowledged is there; the refused write was kept pending and written by the retry.
      node = await startNode(config, { source, fs, log: () => undefined });
      expect(node.core.get('before')).to.equal('kept');
      expect(node.core.get('later')).to.equal('v');
      expect(node.core.get('after')).to.equal('refused');
    });
  }
});

describe('bby-node adapter: catch-up flow control', function () {
  this.timeout(30_000);
  const nodes: RunningNode[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((node) => node.close().catch(() => undefined)));
  });

  it('a joining node receives a catch-up many times larger than the window of unflushed batches', async () => {
    const quiet = () => undefined;
    const holderPort = await freePort();
    const holder = await startNode(parseConfig(JSON.stringify({ port: holderPort, id: 'holder' }), 'holder.json'), { source: 'holder.json', log: quiet });
    nodes.push(holder);
    // About 6 MB of entries: some 24 batches of 256 K characters, six times the window.
    const value = 'v'.repeat(280);
    for (let i = 0; i < 20_000; i++) holder.core.set(`key-${String(i).padStart(5, '0')}`, value);
    const joinerPort = await freePort();
    const joinerConfig = parseConfig(JSON.stringify({ port: joinerPort, id: 'joiner', peers: [`127.0.0.1:${holderPort}`] }), 'joiner.json');
    const joiner = await startNode(joinerConfig, { source: 'joiner.json', log: quiet });
    nodes.push(joiner);

    await waitFor(() => joiner.core.stats().catchUpEntriesReceived > 0, 'the joiner to finish its catch-up', 20_000);
    expect(joiner.core.stats().keys).to.equal(20_000);
    expect(joiner.core.get('key-19999')).to.equal(value);
    expect(holder.core.stats()).to.include({ fullTransfersSent: 1, catchUpEntriesSent: 20_000 });
  });
});

describe('bby-node adapter: starting', function () {
  this.timeout(30_000);
  let dir: string;
  let node: RunningNode | undefined;
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 "starting: loading its data" while it loads its data folder, and serves once loaded', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-start-'));
    await mkdir(join(dir, 'data'));
    const port = await freePort();
    const source = join(dir, 'node.json');
    const config = parseConfig(JSON.stringify({ port, id: 'starting', dataDir: 'data' }), source);
    // Loading waits on this gate: the node is listening, with its data not yet read.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const memory = new MemoryFileSystem();
    const fs: FileSystem = {
      mkdir: (path) => memory.mkdir(path),
      list: (path) => memory.list(path),
      read: async (path) => {
        await gate;
        return memory.read(path);
      },
      openAppend: (path) => memory.openAppend(path),
      rename: (from, to) => memory.rename(from, to),
      remove: (path) => memory.remove(path),
      syncDir: (path) => memory.syncDir(path),
    };
    const starting = startNode(config, { source, fs, log: () => undefined });
    const status = await new Promise<number | string>((resolve) => {
      const attempt = () => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}`);
        socket.on('unexpected-response', (_request, response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += String(chunk)));
          response.on('end', () => resolve(`${response.statusCode} ${body.trim()}`));
        });
        socket.on('open', () => resolve('open'));
        // Not listening yet: try again.
        socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? setTimeout(attempt, 10) : undefined));
      };
      attempt();
    });
    expect(status).to.equal('503 starting: loading its data');
    open();
    node = await starting;
    const client = await connect(port);
    expect(await client.ask({ type: 'get', key: 'k' })).to.deep.include({ type: 'reply', result: null });
    client.socket.close();
  });
});


describe('bby-node adapter: text from the network in logs', function () {
  this.timeout(15_000);
  let node: RunningNode | undefined;
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
  });

  it('escapes a peer close reason and an error frame: no newline or escape sequence reaches a log line', async () => {
    const port = await freePort();
    const lines: string[] = [];
    node = await startNode(parseConfig(JSON.stringify({ port, id: 'logged' }), 'logged.json'), { source: 'logged.json', log: (_level, line) => lines.push(line) });
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    socket.send(JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'forger', address: '127.0.0.1:1' }));
    socket.send(JSON.stringify({ type: 'error', id: null, code: 'X', message: 'bad\n00:00:00.000 info forged by the error frame\u001b[2J' }));
    await waitFor(() => lines.some((line) => line.includes('forged by the error frame')), 'the error frame to be logged');
    socket.close(4000, 'bye\n00:00:00.000 info forged by the close');
    await waitFor(() => lines.some((line) => line.includes('forged by the close')), 'the close to be logged');
    const logged = lines.filter((line) => line.includes('forged'));
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters.
    for (const line of logged) expect(line).to.not.match(/[\u0000-\u001f\u007f-\u009f]/);
    expect(logged.join(' ')).to.include('\\n00:00:00.000 info forged by the close').and.include('\\u001b[2J');
  });
});

describe('bby-node adapter: maxConnections', function () {
  this.timeout(15_000);
  let node: RunningNode | undefined;
  afterEach(async () => {
    await node?.close().catch(() => undefined);
    node = undefined;
  });

  it('counts only upgrades that succeeded: malformed ones, answered by ws, do not use up the slots', async () => {
    const port = await freePort();
    node = await startNode(parseConfig(JSON.stringify({ port, id: 'capped', maxConnections: 2 }), 'capped.json'), { source: 'capped.json', log: () => undefined });
    for (let i = 0; i < 5; i++) {
      const answer = await new Promise<string>((resolve) => {
        const socket = createConnection(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk) => (text += String(chunk))).on('close', () => resolve(text)).on('error', () => undefined);
      });
      expect(answer).to.match(/^HTTP\/1\.1 400/);
    }
    const first = await connect(port);
    const second = await connect(port);
    expect(await first.ask({ type: 'get', key: 'k' })).to.deep.include({ type: 'reply', result: null });
    const third = new WebSocket(`ws://127.0.0.1:${port}`);
    const status = await new Promise<number | undefined>((resolve) => third.on('unexpected-response', (_request, response) => resolve(response.statusCode)).on('open', () => resolve(undefined)).on('error', () => undefined));
    expect(status).to.equal(503);
    first.socket.close();
    second.socket.close();
  });
});

describe('bby-node adapter: corking', function () {
  this.timeout(20_000);
  const nodes: RunningNode[] = [];
  type Writev = (this: Socket, chunks: unknown[], callback: (error?: Error | null) => void) => void;
  const writev = (Socket.prototype as unknown as { _writev: Writev })._writev;
  /** Each vectored write: the two ends' ports and how many chunks it carried (ws writes a frame as two: header and payload). */
  const writes: { localPort: number | undefined; remotePort: number | undefined; chunks: number }[] = [];
  beforeEach(() => {
    (Socket.prototype as unknown as { _writev: Writev })._writev = function (chunks, callback) {
      writes.push({ localPort: this.localPort, remotePort: this.remotePort, chunks: chunks.length });
      writev.call(this, chunks, callback);
    };
  });
  afterEach(async () => {
    (Socket.prototype as unknown as { _writev: Writev })._writev = writev;
    writes.length = 0;
    await Promise.all(nodes.splice(0).map((node) => node.close().catch(() => undefined)));
  });

  it('corks the socket ws writes to, of an accepted link and of a dialed one: a burst of frames leaves in one write', async () => {
    const quiet = () => undefined;
    const holderPort = await freePort();
    nodes.push(await startNode(parseConfig(JSON.stringify({ port: holderPort, id: 'holder' }), 'holder.json'), { source: 'holder.json', log: quiet }));
    const joinerPort = await freePort();
    const joiner = await startNode(parseConfig(JSON.stringify({ port: joinerPort, id: 'joiner', peers: [`127.0.0.1:${holderPort}`] }), 'joiner.json'), { source: 'joiner.json', log: quiet });
    nodes.push(joiner);
    await waitFor(() => joiner.core.status().peers.some((peer) => peer.state === 'connected'), 'the joiner to connect', 10_000);
    // Five requests leave the client in one write, so that the holder reads them at once and answers in one batch.
    const client = await connect(holderPort);
    const raw = client.tcp;
    raw.cork();
    const answers = Promise.all([1, 2, 3, 4, 5].map((i) => client.ask({ type: 'get', key: `k${i}` })));
    process.nextTick(() => raw.uncork());
    expect(await answers).to.have.length(5);
    client.socket.close();
    const severalFrames = (ends: { chunks: number }) => ends.chunks > 2;
    expect(writes.some((ends) => ends.localPort === holderPort && severalFrames(ends)), 'an accepted link wrote several frames at once').to.equal(true);
    expect(writes.some((ends) => ends.remotePort === holderPort && ends.localPort !== raw.localPort && severalFrames(ends)), 'the dialed link wrote several frames at once').to.equal(true);
  });
});

describe('bby-node adapter: a data folder it cannot use', function () {
  this.timeout(15_000);
  let dir: string;
  const running: RunningNode[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((node) => node.close().catch(() => undefined)));
    await rm(dir, { recursive: true, force: true });
  });

  it('fails to start with the code of the registry: DATA_DIR_LOCKED while another node holds it, DATA_DAMAGED once its log is damaged', async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-unusable-'));
    const source = join(dir, 'node.json');
    const config = async () => parseConfig(JSON.stringify({ port: await freePort(), id: 'holder', dataDir: 'data' }), source);
    /** Why a start on that folder fails (null, and the node kept for clean-up, if it starts). */
    const startRefusal = () =>
      config().then((c) =>
        startNode(c, { source, log: () => undefined }).then(
          (node) => {
            running.push(node);
            return null;
          },
          (error: unknown) => error,
        ),
      );
    const first = await startNode(await config(), { source, log: () => undefined });
    running.push(first);
    const client = await connect(Number(first.address.split(':').pop()));
    expect(await client.ask({ type: 'set', key: 'k', value: 'a value long enough to damage' })).to.deep.include({ type: 'reply', result: true });
    client.socket.close();
    const locked = await startRefusal();
    expect(locked).to.be.instanceOf(StartError).and.include({ code: 'DATA_DIR_LOCKED' });
    await running.splice(0)[0]!.close();
    const logs = (await readdir(join(dir, 'data'))).filter((name) => name.startsWith('log-'));
    expect(logs).to.have.length(1);
    const path = join(dir, 'data', logs[0]!);
    const bytes = await readFile(path);
    bytes[bytes.length - 8]! ^= 0xff;
    await writeFile(path, bytes);
    const damaged = await startRefusal();
    expect(damaged).to.be.instanceOf(StartError).and.include({ code: 'DATA_DAMAGED' });
    expect((damaged as Error).message).to.match(/damaged at byte \d+.*--repair/);
  });
});
