/**
 * The adapter with an injected file layer: what a node does when its disk
 * fails under it.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig, type ResponseMessage } from '@bby/core';
import { WebSocket } from 'ws';
import { startNode, type RunningNode } from '../src/index.js';
import { MemoryFileSystem } from './support/memory-fs.js';
import { freePort, waitFor } from './support/wait.js';


/** A raw client: sends requests, collects every answer. */
async function connect(port: number): Promise<{ socket: WebSocket; ask: (request: object) => Promise<ResponseMessage> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let next = 1;
  const ask = (request: object) =>
    new Promise<ResponseMessage>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`no answer to request ${id}`)), 5_000);
      socket.on('message', (data) => {
        const message = JSON.parse(String(data)) as ResponseMessage;
        if (message.id === id) {
          clearTimeout(timer);
          resolve(message);
        }
      });
      socket.send(JSON.stringify({ ...request, id }));
    });
  return { socket, ask };
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
    it(`never acknowledges a write whose ${kind} failed: the client gets STORAGE_FAILED, and the node says why and stops`, async () => {
      const fs = new MemoryFileSystem();
      const port = await freePort();
      const source = join(dir, 'node.json');
      const config = parseConfig(JSON.stringify({ port, id: 'disk', dataDir: 'data' }), source);
      // The data goes to the in-memory file layer; the LOCK file always uses the real one.
      await mkdir(join(dir, 'data'));
      const lines: string[] = [];
      let fatal: Error | undefined;
      node = await startNode(config, { source, fs, log: (_level, line) => lines.push(line), onFatal: (error) => (fatal = error) });
      const client = await connect(port);

      expect(await client.ask({ type: 'set', key: 'before', value: 'kept' })).to.deep.equal({ type: 'reply', id: 1, result: true });
      fs.faults.failEvery = { kind, code: 'ENOSPC' };
      const answer = await client.ask({ type: 'set', key: 'after', value: 'lost' });
      expect(answer).to.include({ type: 'error', id: 2, code: 'STORAGE_FAILED' });
      expect((answer as { message: string }).message).to.include('ENOSPC');

      await waitFor(() => fatal !== undefined, 'the node to give up');
      expect(lines.some((line) => /cannot write to .*ENOSPC.*stopping: a write that cannot be kept must not be acknowledged/.test(line))).to.equal(true);
      // It stopped listening: nothing more is acknowledged.
      await waitFor(() => client.socket.readyState === WebSocket.CLOSED, 'the client connection to close');
      const again = new WebSocket(`ws://127.0.0.1:${port}`);
      const refused = await new Promise<boolean>((resolve) => again.once('open', () => resolve(false)).once('error', () => resolve(true)));
      expect(refused).to.equal(true);
      // What was acknowledged before the failure is on the (in-memory) disk.
      expect(fs.names(join(dir, 'data')).some((name) => name.startsWith('log-'))).to.equal(true);
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
