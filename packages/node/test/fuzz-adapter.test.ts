/**
 * Fuzzing the real adapter (issue 12, item 7): a node started with
 * `startNode` (memory only, on loopback), and a raw `ws` client that sends it
 * batches of random and mutated frames of every message type
 * (packages/core/test/support/frames.ts), as text and as binary frames, and
 * random bytes as both (a text frame that is not UTF-8 included).
 *
 * Checked after every batch:
 * - the node is alive: a new connection's well-formed `get` is answered;
 * - every frame the fuzzing client got back is a text frame of JSON that the
 *   protocol's parser accepts: a `reply` or an `error` with a code of
 *   src/errors.ts (or, once the client said a valid hello and was welcomed, a
 *   peer message), and when the node closed the connection, it was with a
 *   documented code;
 * - the process's RSS stays within a loose bound of where it started.
 *
 * The node dials nothing outside: an add-peer for a valid address is sent
 * for this node's own address or a closed loopback port instead, and
 * peerExchange is off (peer lists would make it dial what they name).
 *
 * Runs: a fixed seed and a few runs (a fresh node each, a few hundred frames
 * in all) in `npm test`; FUZZ_RUNS=n and FUZZ_SEED=n|random for long runs
 * (packages/core/test/support/fuzz.ts), e.g.
 *   FUZZ_RUNS=200 FUZZ_SEED=random npx mocha --no-config --timeout 0 packages/node/dist/test/fuzz-adapter.test.js
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import fc from 'fast-check';
import { CLOSE_CODES, parseAddress, parseConfig, parseIncoming } from '@bby/core';
import { WebSocket } from 'ws';
import { type Frame } from '../../core/test/support/frames.js';
import { type RunningNode, startNode } from '../src/index.js';
import { errorCodes, frames, fuzz } from './support/core-fuzz.js';
import { freePort, waitFor } from './support/wait.js';

const SOURCE = 'fuzz-adapter.json';
// This file runs as packages/node/dist/test/fuzz-adapter.test.js.
const BBY_NODE_BIN = fileURLToPath(new URL('../../bin/bby-node.js', import.meta.url));
/** Frames per batch, and batches per run (a fresh node each run). */
const FRAMES_PER_BATCH = 25;
const BATCHES_PER_RUN = 4;
/** How long a probe waits for its answer, in milliseconds. */
const ANSWER_TIMEOUT_MS = 5_000;
/** Loose bound on the growth of the process's RSS over the whole test, in bytes: a leak of frames would pass it. */
const RSS_GROWTH_BOUND_BYTES = 256 * 1024 * 1024;
/** A loopback port where nothing listens (dials to it are refused at once). */
const CLOSED_PORT = 1;

/**
 * Close codes a client may see: the core's, 1009 (frame over 1 MiB, ws's
 * maxPayload), and 1007, which ws sends for a text frame that is not UTF-8
 * (RFC 6455 7.4.1). 1007 is not in docs/protocol.md's table yet: reported.
 */
const DOCUMENTED_CLOSE_CODES: ReadonlySet<number> = new Set([...Object.values(CLOSE_CODES), 1009, 1007]);

/** One thing the fuzzing client sends: a frame's text, as a text or a binary frame, or raw bytes. */
type Send = { readonly frame: Frame; readonly binary: boolean } | { readonly bytes: Uint8Array; readonly binary: boolean };

const sendArb: fc.Arbitrary<Send> = fc.oneof(
  { weight: 9, arbitrary: fc.record({ frame: frames.frameArb, binary: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ bytes: fc.uint8Array({ maxLength: 128 }), binary: fc.boolean() }) },
);
const runArb = fc.array(fc.array(sendArb, { minLength: FRAMES_PER_BATCH, maxLength: FRAMES_PER_BATCH }), { minLength: BATCHES_PER_RUN, maxLength: BATCHES_PER_RUN });

/** A raw client that records what it gets. */
class RawClient {
  readonly received: { readonly text: string; readonly binary: boolean }[] = [];
  closeCode: number | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data, binary) => this.received.push({ text: String(data), binary }));
    socket.on('close', (code) => {
      this.closeCode = code;
    });
    // A refused or reset socket reports an error before it closes; the close code says what happened.
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    return new RawClient(socket);
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a well-formed get and waits for its answer (or the close of the connection). */
  async probe(id: string): Promise<{ type: string } | null> {
    this.socket.send(JSON.stringify({ type: 'get', id, key: 'k' }));
    let answer: { type: string } | null = null;
    await waitFor(
      () => {
        for (const { text } of this.received) {
          if (!text.includes(id)) continue;
          const message = JSON.parse(text) as { type: string; id?: unknown };
          if (message.id === id) answer = message;
        }
        return answer !== null || !this.open;
      },
      `an answer to ${id}`,
      ANSWER_TIMEOUT_MS,
    );
    return answer;
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.terminate();
    await closed;
  }
}

/** The text to send for a frame: a valid add-peer dials this node or a closed port, never the address drawn. */
function textToSend(text: string, port: number): string {
  const parsed = parseIncoming(text);
  if (!parsed.ok || parsed.message.type !== 'add-peer') return text;
  try {
    parseAddress(parsed.message.address);
  } catch {
    return text;
  }
  return JSON.stringify({ ...parsed.message, address: `127.0.0.1:${text.length % 2 === 0 ? port : CLOSED_PORT}` });
}

/** Checks every frame a fuzzing client got back, and how its connection ended. */
function checkReceived(client: RawClient): void {
  let welcomed = false;
  for (const { text, binary } of client.received) {
    expect(binary, 'the node sends text frames').to.equal(false);
    const parsed = parseIncoming(text);
    if (!parsed.ok) expect.fail(`the node sent a frame its peers refuse (${parsed.error.code}): ${text.slice(0, 300)}`);
    const message = parsed.message;
    if (message.type === 'welcome') welcomed = true;
    if (!welcomed) expect(['reply', 'error'], `a frame to a client: ${text.slice(0, 200)}`).to.include(message.type);
    if (message.type === 'error') expect(errorCodes.ERROR_CODES, `error code of ${text.slice(0, 200)}`).to.include(message.code);
  }
  if (client.closeCode !== null) expect(DOCUMENTED_CLOSE_CODES, 'close code').to.include(client.closeCode);
}

describe('fuzz: the real adapter fed random and mutated frames', function () {
  this.timeout(fuzz.fuzzTimeoutMs(60_000));
  let node: RunningNode | undefined;
  const clients: RawClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await node?.close();
    node = undefined;
  });

  it('stays up, answers a well-formed get after every batch, answers the rest with typed errors or documented closes, in bounded memory', async () => {
    let rssAtStart: number | undefined;
    let rssPeak = 0;
    await fc.assert(
      fc.asyncProperty(runArb, async (batches) => {
        try {
          const port = await freePort();
          node = await startNode(parseConfig(JSON.stringify({ port, id: 'fuzzed', peerExchange: false }), SOURCE), { source: SOURCE, log: () => undefined });
          rssAtStart ??= process.memoryUsage().rss;
          let client: RawClient | null = null;
          for (const [index, batch] of batches.entries()) {
            for (const send of batch) {
              if (client === null || !client.open) {
                if (client !== null) checkReceived(client);
                client = await RawClient.connect(port);
                clients.push(client);
              }
              if ('frame' in send) {
                const text = textToSend(send.frame.text, port);
                client.socket.send(send.binary ? Buffer.from(text, 'utf8') : text, { binary: send.binary });
              } else {
                client.socket.send(send.bytes, { binary: send.binary });
              }
            }
            // The fuzzing connection, if it is still open, answers a get after everything it sent.
            if (client?.open) {
              const answer = await client.probe(`probe-${index}`);
              if (answer !== null) expect(answer.type).to.equal('reply');
            }
            // And whatever happened to it, a new connection is served.
            const fresh = await RawClient.connect(port);
            clients.push(fresh);
            expect(await fresh.probe(`alive-${index}`), 'the node answers a new connection').to.deep.include({ type: 'reply' });
            checkReceived(fresh);
            rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
          }
          if (client !== null) checkReceived(client);
        } finally {
          await Promise.all(clients.splice(0).map((client) => client.close()));
          await node?.close();
          node = undefined;
        }
      }),
      fuzz.fuzzParameters(3, 300),
    );
    expect(rssPeak - rssAtStart!, 'growth of the RSS over the test').to.be.below(RSS_GROWTH_BOUND_BYTES);
  });

  // Found by the fuzzing: core.receive threw in the socket's message handler, the exception was uncaught and
  // the process exited. Any client, before authenticating too, could stop a node with these 38 bytes (protocol.ts
  // applied String() to unchecked fields). Shown on a bby-node process (in this one the exception would hit mocha).
  it('survives an error frame whose code is an object with its own toString (bug 1 of the fuzzing: one frame stops bby-node)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bby-fuzz-'));
    const port = await freePort();
    await writeFile(join(dir, 'node.json'), JSON.stringify({ port, id: 'victim' }));
    const child = spawn(process.execPath, [BBY_NODE_BIN, join(dir, 'node.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data) => (output += String(data)));
    child.stderr.on('data', (data) => (output += String(data)));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor(() => output.includes('listening on'), 'bby-node to listen', 10_000);
      const attacker = await RawClient.connect(port);
      clients.push(attacker);
      attacker.socket.send('{"type":"error","code":{"toString":1}}');
      // Frames are handled in order: the get behind it is answered only if the node survived it.
      expect(await attacker.probe('after'), `the node's output:\n${output}`).to.deep.include({ type: 'reply' });
      expect(child.exitCode, 'bby-node is still running').to.equal(null);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
