/**
 * Backpressure from durability to the sockets: a node whose disk is slower
 * than its sockets stops reading them instead of piling up entries waiting
 * for durability, so its replies and heartbeats never wait behind the whole
 * backlog.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseConfig, type ResponseMessage } from '@bby/core';
import { WebSocket } from 'ws';
import { startNode, type RunningNode } from '../src/node-server.js';
import { Storage } from '../src/storage/engine.js';
import { type AppendFile, type FileSystem } from '../src/storage/file-system.js';
import { MemoryFileSystem } from '../src/storage/memory-fs.js';
import { freePort, waitFor } from './support/wait.js';



/**
 * A slow disk over the in-memory file layer: a sync takes 2 ms plus the time
 * to write what was appended since the last one at `bytesPerMs`. It counts
 * the bytes of every append (one group commit of the storage engine each)
 * and the bytes synced so far.
 */
class SlowDisk implements FileSystem {
  readonly inner = new MemoryFileSystem();
  /** Sizes of the appends, in order. */
  readonly appends: number[] = [];
  syncedBytes = 0;

  constructor(readonly bytesPerMs: number) {}

  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }
  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
  read(path: string): Promise<Uint8Array | null> {
    return this.inner.read(path);
  }
  rename(from: string, to: string): Promise<void> {
    return this.inner.rename(from, to);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  syncDir(dir: string): Promise<void> {
    return this.inner.syncDir(dir);
  }

  async openAppend(path: string): Promise<AppendFile> {
    const file = await this.inner.openAppend(path);
    let unsynced = 0;
    return {
      append: async (data) => {
        this.appends.push(data.length);
        unsynced += data.length;
        await file.append(data);
      },
      sync: async () => {
        const bytes = unsynced;
        unsynced = 0;
        await new Promise((resolve) => setTimeout(resolve, 2 + bytes / this.bytesPerMs));
        await file.sync();
        this.syncedBytes += bytes;
      },
      truncate: (size) => file.truncate(size),
      close: () => file.close(),
    };
  }
}

describe('bby-node adapter: backpressure from a slow disk', function () {
  this.timeout(60_000);
  let dir: string;
  let node: RunningNode | undefined;
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bby-backlog-'));
  });

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.terminate();
    await node?.close().catch(() => undefined);
    node = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function open(port: number): Promise<WebSocket> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    sockets.push(socket);
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return socket;
  }

  it('stops reading while too many entries wait for the disk: the backlog stays bounded, replies do not wait behind it, and every acknowledged write is durable', async () => {
    // Small bounds so that a few MB of writes are many times the bound.
    const pauseAboveBytes = 256 * 1024;
    const backlog = { pauseAboveBytes, resumeBelowBytes: 64 * 1024 };
    // 4 MB/s: far slower than a node reads a local socket, even on a slow machine.
    const disk = new SlowDisk(4_000);
    const port = await freePort();
    const source = join(dir, 'node.json');
    const config = parseConfig(JSON.stringify({ port, id: 'slow', dataDir: 'data', fsync: 'always' }), source);
    // The data goes to the in-memory file layer; the LOCK file always uses the real one.
    await mkdir(join(dir, 'data'));
    node = await startNode(config, { source, fs: disk, log: () => undefined, backlog });
    const writer = await open(port);
    const asker = await open(port);

    // 6 MB of writes sent at once: 240 set-many frames of 100 entries of about 250 bytes.
    const frames = 240;
    const perFrame = 100;
    const value = 'v'.repeat(240);
    const acknowledged = new Set<number>();
    writer.on('message', (data) => {
      const answer = JSON.parse(String(data)) as ResponseMessage;
      expect(answer).to.deep.equal({ type: 'reply', id: answer.id, result: new Array<boolean>(perFrame).fill(true) });
      acknowledged.add(answer.id as number);
    });
    for (let id = 1; id <= frames; id++) {
      const entries = Array.from({ length: perFrame }, (_, i) => ({ key: `key-${String((id - 1) * perFrame + i).padStart(6, '0')}`, value }));
      writer.send(JSON.stringify({ type: 'set-many', id, entries }));
    }

    // Meanwhile another client asks for stats: how much went to disk while each request waited?
    const waits: number[] = [];
    const answers = new Map<number, ResponseMessage>();
    asker.on('message', (data) => {
      const answer = JSON.parse(String(data)) as ResponseMessage;
      answers.set(answer.id as number, answer);
    });
    for (let id = 1; acknowledged.size < frames && id <= 1_000; id++) {
      const syncedBefore = disk.syncedBytes;
      asker.send(JSON.stringify({ type: 'stats', id }));
      await waitFor(() => answers.has(id), `the answer to stats request ${id}`, 20_000);
      waits.push(disk.syncedBytes - syncedBefore);
    }
    await waitFor(() => acknowledged.size === frames, 'every write to be acknowledged', 20_000);
    // Every acknowledged write is on the disk, synced: it survives a crash now.
    const { storage, recovery } = await Storage.open({ dir: join(dir, 'data'), fs: disk.inner.crash() });
    await storage.close();
    expect(new Set(recovery.entries.map((entry) => entry.key)).size).to.equal(frames * perFrame);

    // A group commit holds what was waiting when the one before it ended: at
    // most the bound plus what was already read when reading paused (a read of
    // up to 64 KiB on each of the two sockets, finishing frames of 25 KB).
    const slack = 2 * (64 * 1024 + 32 * 1024);
    const largest = Math.max(...disk.appends);
    expect(largest, `largest group commit (${disk.appends.length} commits)`).to.be.at.most(pauseAboveBytes + slack);
    // A stats request waits at most behind the backlog when it is read, and
    // the one that was there when it was sent: not behind the 6 MB.
    expect(waits.length).to.be.greaterThan(0);
    expect(Math.max(...waits), `bytes synced while a stats request waited (${waits.length} requests)`).to.be.at.most(2 * (pauseAboveBytes + slack));
  });
});
