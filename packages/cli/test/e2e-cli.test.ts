/**
 * End to end: the `bby` CLI against real bby-node processes: its commands,
 * their output (text and --json), its exit codes and its usage errors.
 */
import { expect } from 'chai';
import {
  freePort,
  inBatches,
  runBby,
  runBbyArgs,
  startNode,
  useCleanup,
  waitFor,
  waitForConnected,
  waitForValue,
  writeConfig,
  type NodeStats,
  type PeerRow,
} from './support/processes.js';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('e2e: the bby CLI', function () {
  this.timeout(30_000);
  useCleanup();

  describe('key-value commands', () => {
    it('set is write-once, get prints the value or null, keys prints one key per line, sorted', async () => {
      const node = await startNode({ id: 'kv' });
      const first = await node.bby('set', 'MonChamp', '42');
      expect(first).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      // Same value again: still true.
      expect(await node.bby('set', 'MonChamp', '42')).to.include({ code: 0, stdout: 'true\n' });
      // Another value: false, and the value is unchanged.
      expect(await node.bby('set', 'MonChamp', '43')).to.include({ code: 0, stdout: 'false\n', stderr: '' });
      expect(await node.bby('get', 'MonChamp')).to.include({ code: 0, stdout: '42\n', stderr: '' });
      expect(await node.bby('get', 'nothing-here')).to.include({ code: 0, stdout: 'null\n' });

      // Values that look like options or hold spaces pass as they are.
      expect((await node.bby('set', 'zeta', '-5')).stdout).to.equal('true\n');
      expect((await node.bby('set', 'alpha', 'two words')).stdout).to.equal('true\n');
      expect((await node.bby('get', 'zeta')).stdout).to.equal('-5\n');
      expect((await node.bby('get', 'alpha')).stdout).to.equal('two words\n');

      expect(await node.bby('keys')).to.include({ code: 0, stdout: 'MonChamp\nalpha\nzeta\n' });
      const stats = await node.json<NodeStats>('stats');
      expect(stats).to.include({ keys: 3, writesAccepted: 3, writesRefused: 1 });
    });

    it('--json prints JSON: true, false, a string, null, arrays', async () => {
      const node = await startNode({ id: 'json' });
      const path = node.path;
      expect(await runBby('--json', path, 'set', 'MonChamp', '42')).to.include({ code: 0, stdout: 'true\n' });
      expect(await runBby('--json', path, 'set', 'MonChamp', '7')).to.include({ code: 0, stdout: 'false\n' });
      expect(await runBby('--json', path, 'get', 'MonChamp')).to.include({ code: 0, stdout: '"42"\n' });
      expect(await runBby('--json', path, 'get', 'missing')).to.include({ code: 0, stdout: 'null\n' });
      // --json may also come after the command.
      expect(await runBby(path, 'set', 'Bis', '"quoted"', '--json')).to.include({ code: 0, stdout: 'true\n' });
      expect(await runBby(path, 'get', 'Bis', '--json')).to.include({ code: 0, stdout: '"\\"quoted\\""\n' });
      expect(await runBby('--json', path, 'keys')).to.include({ code: 0, stdout: '["Bis","MonChamp"]\n' });
      expect(await runBby('--json', path, 'peers')).to.include({ code: 0, stdout: '[]\n' });
      const stats = await runBby('--json', path, 'stats');
      expect(stats.code).to.equal(0);
      expect(stats.stdout.trim().split('\n')).to.have.length(1);
      expect(JSON.parse(stats.stdout)).to.include({ id: 'json', keys: 2 });
    });
  });

  describe('peer commands', () => {
    it('peers lists address, id, direction and state; getPeers is an alias', async () => {
      const a = await startNode({ id: 'pa' });
      const b = await startNode({ id: 'pb', peers: [a.address] });
      await waitForConnected(b, ['pa']);
      await waitForConnected(a, ['pb']);

      const text = await b.bby('peers');
      expect(text.code).to.equal(0);
      const lines = text.stdout.trimEnd().split('\n');
      expect(lines[0]).to.match(/^ADDRESS\s+ID\s+DIRECTION\s+STATE$/);
      expect(lines.slice(1)).to.have.length(1);
      expect(lines[1]).to.match(new RegExp(`^${escapeRegExp(a.address)}\\s+pa\\s+outbound\\s+connected$`));
      expect(await b.bby('getPeers')).to.deep.equal(text);

      const onA = await a.json<PeerRow[]>('getPeers');
      expect(onA).to.deep.equal([{ address: b.address, id: 'pb', direction: 'inbound', connected: true }]);
    });

    it('add-peer HOST:PORT connects at run time and keeps the peer; addPeer is an alias', async () => {
      // Without peer exchange, so that left and right stay unaware of each other.
      const a = await startNode({ id: 'hub', peerExchange: false });
      const b = await startNode({ id: 'left', peerExchange: false });
      const c = await startNode({ id: 'right', peerExchange: false });

      const added = await b.bby('add-peer', a.address);
      expect(added).to.include({ code: 0, stdout: `connected to ${a.address} (node hub)\n`, stderr: '' });
      const alias = await c.bby('addPeer', a.address);
      expect(alias).to.include({ code: 0, stdout: `connected to ${a.address} (node hub)\n`, stderr: '' });
      // Asking again for a connected peer says so.
      expect(await b.bby('add-peer', a.address)).to.include({ code: 0, stdout: `connected to ${a.address} (node hub)\n` });

      expect(await b.json<PeerRow[]>('peers')).to.deep.equal([{ address: a.address, id: 'hub', direction: 'outbound', connected: true }]);
      await waitFor(async () => (await a.query<NodeStats>({ type: 'stats' })).peers === 2, { what: 'hub to count 2 peers' });
      expect((await a.json<PeerRow[]>('peers')).map((r) => `${r.id} ${r.direction} ${r.connected}`).sort()).to.deep.equal([
        'left inbound true',
        'right inbound true',
      ]);

      // The new links carry writes: left -> hub -> right.
      expect((await b.bby('set', 'over-added-links', 'ok')).stdout).to.equal('true\n');
      await waitForValue(c, 'over-added-links', 'ok');
    });

    it('add-peer to a port where nothing listens says it is not connected, keeps retrying, and exits 0', async () => {
      const node = await startNode({ id: 'lonely' });
      const nobody = `127.0.0.1:${await freePort()}`;
      const result = await node.bby('add-peer', nobody);
      expect(result.code).to.equal(0);
      expect(result.stderr).to.equal('');
      expect(result.stdout).to.match(new RegExp(`^not connected to ${escapeRegExp(nobody)} yet \\(connection refused\\); the node keeps retrying\\n$`));
      const rows = await node.json<PeerRow[]>('peers');
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ address: nobody, id: null, direction: 'outbound', connected: false });
      // The node itself is fine.
      expect((await node.bby('set', 'still', 'here')).stdout).to.equal('true\n');
    });

    it('add-peer with a malformed address is a usage error naming the expected form', async () => {
      const node = await startNode({ id: 'picky' });
      const result = await node.bby('add-peer', 'no-port-here');
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr).to.match(/bad peer address "no-port-here".*host:port/);
      expect(result.stderr).not.to.match(/^\s+at /m);
    });

    it('stats prints the counters as JSON', async () => {
      const node = await startNode({ id: 'counted' });
      await node.bby('set', 'one', '1');
      const result = await node.bby('stats');
      expect(result.code).to.equal(0);
      const stats = JSON.parse(result.stdout) as NodeStats;
      for (const field of ['keys', 'peers', 'messagesSent', 'messagesReceived', 'duplicatesDropped', 'conflicts'] as const) {
        expect(stats[field], field).to.be.a('number');
      }
      expect(stats).to.include({ id: 'counted', keys: 1, peers: 0, duplicatesDropped: 0, conflicts: 0, writesAccepted: 1 });
      // This connection's own stats request has been received.
      expect(stats.messagesReceived).to.be.at.least(2);
      expect(stats.messagesSent).to.be.at.least(1);
    });
  });

  describe('exit codes and usage', () => {
    it('exits 1 with one line naming the address and how to start the node when the node is not running', async () => {
      const file = await writeConfig({ id: 'not-started' });
      const result = await runBby(file.path, 'get', 'MonChamp');
      expect(result.code).to.equal(1);
      expect(result.stdout).to.equal('');
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines, result.stderr).to.have.length(1);
      expect(lines[0]).to.include(`ws://${file.address}`);
      expect(lines[0]).to.include(`bby-node ${file.path}`);
      expect(lines[0]).to.match(/connection refused/);
    });

    const usageCases: { name: string; args: (config: string) => string[]; message: RegExp }[] = [
      { name: 'no arguments', args: () => [], message: /the config file is missing/ },
      { name: 'no command', args: (c) => [c], message: /the command is missing/ },
      { name: 'an unknown command', args: (c) => [c, 'frobnicate'], message: /unknown command "frobnicate"/ },
      { name: 'too few arguments', args: (c) => [c, 'get'], message: /get takes 1 argument\(s\), got 0/ },
      { name: 'too many arguments', args: (c) => [c, 'set', 'a', 'b', 'c'], message: /set takes 2 argument\(s\), got 3.*quote a value that has spaces/ },
      { name: 'an unknown option', args: (c) => [c, '--frobnicate', 'keys'], message: /unknown option --frobnicate/ },
      { name: 'a bad --timeout', args: (c) => ['--timeout', 'soon', c, 'keys'], message: /--timeout needs a whole number of milliseconds/ },
    ];
    it(`exits 2 with one line and a pointer to --help for usage errors (${usageCases.map((c) => c.name).join(', ')})`, async () => {
      // A running node, so that a usage error cannot be mistaken for "node not started".
      const node = await startNode({ id: 'usage' });
      const results = await inBatches(usageCases, 2, (c) => runBbyArgs(c.args(node.path)));
      usageCases.forEach((c, index) => {
        const result = results[index]!;
        expect(result.code, `${c.name}: exit code`).to.equal(2);
        expect(result.stdout, `${c.name}: stdout`).to.equal('');
        expect(result.stderr, `${c.name}: message`).to.match(c.message);
        // One line, not the whole help: what is wrong, and where the usage is.
        expect(result.stderr, `${c.name}: pointer`).to.match(/ \(bby --help says more\)\n$/);
        expect(result.stderr.trim().split('\n'), `${c.name}: short`).to.have.length(1);
        expect(result.stderr, `${c.name}: no stack`).not.to.match(/^\s+at /m);
      });
      // None of them reached the node.
      expect((await node.json<NodeStats>('stats')).messagesReceived).to.equal(1);
    });

    it('bby --help exits 0 and lists every command', async () => {
      for (const flag of ['--help', '-h']) {
        const result = await runBbyArgs([flag]);
        expect(result.code, flag).to.equal(0);
        expect(result.stderr, flag).to.equal('');
        for (const command of ['set KEY VALUE', 'get KEY', 'keys', 'peers', 'add-peer HOST:PORT', 'remove-peer HOST:PORT', 'stats']) {
          expect(result.stdout, `${flag} lists ${command}`).to.match(new RegExp(`^  ${escapeRegExp(command)}\\s`, 'm'));
        }
        expect(result.stdout).to.include('alias: getPeers').and.to.include('alias: addPeer').and.to.include('alias: removePeer');
        // The exit codes of refused connections are documented.
        expect(result.stdout).to.match(/1 the node cannot be reached, did not answer\s+in time, or is busy/).and.to.match(/2 usage, config or request error, or the config cannot connect/);
      }
    });
  });

  describe('size limits', () => {
    it('refuses a value over 256 KiB (as JSON) with exit 2 and a message naming the limit', async () => {
      const node = await startNode({ id: 'big-value' });
      // Linux caps one command-line argument at 128 KiB (MAX_ARG_STRLEN), so a 300 KiB
      // plain value cannot be passed at all. The limit counts the value as JSON text:
      // 50 000 control characters are 50 kB on the command line and 300 kB as JSON.
      const value = '\u0001'.repeat(50_000);
      const result = await node.bby('set', 'big', value);
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(result.stderr).to.include('the value is 300002 bytes as JSON; the limit is 262144 bytes (256 KiB)');
      expect((await node.bby('get', 'big')).stdout).to.equal('null\n');

      // The largest plain value a command line can carry (120 KiB) is under the limit.
      const large = 'v'.repeat(120 * 1024);
      expect(await node.bby('set', 'large', large)).to.include({ code: 0, stdout: 'true\n' });
      const back = await node.bby('get', 'large');
      expect(back.stdout).to.equal(`${large}\n`);
    });

    it('refuses a key over 1024 bytes with exit 2 and a message naming the limit', async () => {
      const node = await startNode({ id: 'big-key' });
      const result = await node.bby('set', 'k'.repeat(1025), 'v');
      expect(result.code).to.equal(2);
      expect(result.stdout).to.equal('');
      expect(result.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(result.stderr).to.include('the key is 1025 bytes; the limit is 1024 bytes');
      // Multi-byte characters count in UTF-8 bytes: 513 x "é" is 1026 bytes.
      const wide = await node.bby('get', 'é'.repeat(513));
      expect(wide.code).to.equal(2);
      expect(wide.stderr).to.include('the key is 1026 bytes; the limit is 1024 bytes');
      // Exactly 1024 bytes is fine.
      expect(await node.bby('set', 'k'.repeat(1024), 'v')).to.include({ code: 0, stdout: 'true\n' });
      expect((await node.json<string[]>('keys')).map((k) => k.length)).to.deep.equal([1024]);
    });
  });
});
