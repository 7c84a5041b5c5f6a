/**
 * End to end: what goes wrong, with real processes. A port already in use,
 * config files that cannot be used (for bby-node and for bby), and malformed
 * frames from a raw WebSocket client.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { MAX_MESSAGE_BYTES } from '@bby/core';
import { expect } from 'chai';
import { WebSocket } from 'ws';
import {
  inBatches,
  runBby,
  runNodeToExit,
  startNode,
  testDir,
  useCleanup,
  waitFor,
  writeConfig,
  writeTestFile,
  type CliResult,
  type NodeStats,
} from './support/processes.js';

/** Asserts the shape every config error must have: exit 2, one line on stderr naming the file, no stack trace. */
function expectConfigError(result: CliResult, program: string, path: string, message: RegExp): void {
  const where = `${program} ${path}`;
  expect(result.code, `${where}: exit code; stderr: ${result.stderr}`).to.equal(2);
  expect(result.stdout, `${where}: stdout`).to.equal('');
  expect(result.stderr.endsWith('\n'), `${where}: stderr ends its line`).to.equal(true);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, `${where}: exactly one line on stderr`).to.have.length(1);
  expect(lines[0], `${where}: names the program`).to.match(new RegExp(`^${program}: `));
  expect(lines[0], `${where}: names the file`).to.include(path);
  expect(lines[0], `${where}: says what is wrong`).to.match(message);
  expect(result.stderr, `${where}: no stack trace`).not.to.match(/^\s+at /m);
}

describe('e2e: errors', function () {
  this.timeout(30_000);
  useCleanup();

  describe('startup', () => {
    it('a second node on a port already in use exits non-zero, says so naming the config, and the first keeps serving', async () => {
      const first = await startNode({ id: 'first' });
      expect((await first.bby('set', 'before', '1')).stdout).to.equal('true\n');
      const clash = await writeConfig({ id: 'second', port: first.port, file: 'same-port.json' });

      // The same config started twice (the course's "launch the server several times"), and another config with the same port.
      const startedAt = Date.now();
      const results = await Promise.all([runNodeToExit([first.path], 5_000), runNodeToExit([clash.path], 5_000)]);
      expect(Date.now() - startedAt, 'exits within a few seconds').to.be.below(5_000);
      for (const [index, path] of [first.path, clash.path].entries()) {
        const result = results[index]!;
        expect(result.code, path).to.be.a('number').and.not.equal(0);
        expect(result.stderr, path).to.include(`port ${first.port} on 127.0.0.1 is already in use`);
        expect(result.stderr, path).to.include(`(config ${path})`);
        expect(result.stderr.trimEnd().split('\n'), path).to.have.length(1);
        expect(result.stderr, path).not.to.match(/^\s+at /m);
        expect(result.stdout, path).not.to.match(/listening on/);
      }

      // The first node is untouched.
      expect(first.process.exitStatus).to.equal(undefined);
      expect(await first.bby('get', 'before')).to.include({ code: 0, stdout: '1\n' });
      expect((await first.bby('set', 'after', '2')).stdout).to.equal('true\n');
    });
  });

  describe('config files', () => {
    type Case = { name: string; file: string; content?: string; message: RegExp };
    const cases: Case[] = [
      { name: 'a missing file', file: 'missing.json', message: /no such file/ },
      { name: 'bad JSON', file: 'bad-json.json', content: '{"port": 7001,', message: /not valid JSON/ },
      { name: 'an unknown field', file: 'unknown-field.json', content: '{"port": 7001, "colour": "blue"}', message: /unknown field "colour"/ },
      { name: 'port 70000', file: 'port-70000.json', content: '{"port": 70000}', message: /"port" must be an integer from 1 to 65535, got 70000/ },
      { name: 'a port given as a string', file: 'port-string.json', content: '{"port": "7001"}', message: /"port" must be an integer from 1 to 65535, got "7001"/ },
      { name: 'peers that is not an array', file: 'peers-string.json', content: '{"port": 7001, "peers": "127.0.0.1:7002"}', message: /"peers" must be a list/ },
    ];

    async function writeCases(): Promise<string[]> {
      const dir = await testDir();
      return Promise.all(cases.map((c) => (c.content === undefined ? Promise.resolve(join(dir, c.file)) : writeTestFile(c.file, c.content))));
    }

    it(`bby-node exits 2 with one line naming the file for ${cases.map((c) => c.name).join(', ')}`, async () => {
      const paths = await writeCases();
      const results = await inBatches(paths, 2, (path) => runNodeToExit([path], 10_000));
      cases.forEach((c, index) => {
        expectConfigError(results[index]!, 'bby-node', paths[index]!, c.message);
      });
    });

    it(`bby exits 2 with one line naming the file for ${cases.map((c) => c.name).join(', ')}`, async () => {
      const paths = await writeCases();
      const results = await inBatches(paths, 2, (path) => runBby(path, 'get', 'MonChamp'));
      cases.forEach((c, index) => {
        expectConfigError(results[index]!, 'bby', paths[index]!, c.message);
      });
    });
  });

  describe('malformed messages from a raw WebSocket client', () => {
    /** Opens a raw client and collects what it receives. */
    async function rawClient(address: string) {
      const socket = new WebSocket(`ws://${address}`, { perMessageDeflate: false });
      const inbox: Record<string, unknown>[] = [];
      socket.on('message', (data) => inbox.push(JSON.parse(String(data)) as Record<string, unknown>));
      socket.on('error', () => undefined);
      await once(socket, 'open');
      return {
        socket,
        /** Sends a frame and waits (bounded) for the next message. */
        async exchange(text: string): Promise<Record<string, unknown>> {
          const before = inbox.length;
          socket.send(text);
          await waitFor(() => inbox.length > before, { timeoutMs: 5_000, intervalMs: 10, what: `an answer to ${text.slice(0, 60)}` });
          return inbox[before]!;
        },
      };
    }

    it('answers each with an error code, closes an oversized frame with 1009, and keeps serving with its keys intact', async () => {
      const node = await startNode({ id: 'sturdy' });
      expect((await node.bby('set', 'kept', 'original')).stdout).to.equal('true\n');

      const client = await rawClient(node.address);
      const badJson = await client.exchange('this is not json');
      expect(badJson).to.include({ type: 'error', code: 'BAD_JSON', id: null });
      expect(badJson.message).to.be.a('string');
      expect(await client.exchange('{"type":"frobnicate","id":1}')).to.include({ type: 'error', code: 'UNKNOWN_TYPE', id: 1 });
      expect(await client.exchange('{"type":"get","id":2}')).to.include({ type: 'error', code: 'BAD_MESSAGE', id: 2 });
      expect(await client.exchange('{"type":"set","id":3,"key":"kept"}')).to.include({ type: 'error', code: 'BAD_MESSAGE', id: 3 });
      expect(await client.exchange('[1,2,3]')).to.include({ type: 'error', code: 'BAD_MESSAGE' });
      // The same connection still answers well-formed requests.
      expect(await client.exchange('{"type":"get","id":4,"key":"kept"}')).to.deep.equal({ type: 'reply', id: 4, result: 'original' });
      client.socket.close();

      // Entries without a hello, on a fresh connection: an older timestamp would win if merged.
      const intruder = await rawClient(node.address);
      const entries = JSON.stringify({ type: 'entries', entries: [['kept', 'hijacked', 0, 'evil']] });
      expect(await intruder.exchange(entries)).to.include({ type: 'error', code: 'NOT_A_PEER', id: null });
      intruder.socket.close();

      // A frame over 1 MiB: the connection is closed with 1009 (message too big).
      const flooder = await rawClient(node.address);
      const closed = once(flooder.socket, 'close');
      flooder.socket.send(JSON.stringify({ type: 'set', id: 5, key: 'flood', value: 'x'.repeat(MAX_MESSAGE_BYTES) }));
      const [code] = (await Promise.race([
        closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('the node did not close the oversized connection within 5 s')), 5_000)),
      ])) as [number, Buffer];
      expect(code).to.equal(1009);

      // After all that, the node serves other clients, and nothing changed.
      expect(node.process.exitStatus).to.equal(undefined);
      expect(await node.bby('get', 'kept')).to.include({ code: 0, stdout: 'original\n' });
      expect(await node.bby('keys')).to.include({ code: 0, stdout: 'kept\n' });
      expect((await node.bby('set', 'later', 'fine')).stdout).to.equal('true\n');
      const stats = await node.json<NodeStats>('stats');
      expect(stats.errors).to.equal(6);
      expect(stats.peers).to.equal(0);
      expect(node.process.stderr).not.to.match(/^\s+at /m);
    });
  });
});
