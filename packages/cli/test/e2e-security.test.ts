/**
 * End to end: secrets, TLS and exposure, as `bby-node` and `bby` processes
 * show them. Three kinds of tests:
 *  - bby-node's start checks and warnings, and bby's config errors: real
 *    processes only;
 *  - bby's messages for every refusal: bby processes against a fake node
 *    (support/fake-node.ts: the real transport, the handshake from auth.ts),
 *    which can also play the nodes a real one must never be;
 *  - bby against real nodes that authenticate and speak TLS: skipped, with
 *    the reason printed, while this checkout's bby-node does not (probes.ts).
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { certsUnavailable, makeCerts, skipWithReason } from './support/certs.js';
import { startFakeNode, type FakeNode, type FakeNodeOptions } from './support/fake-node.js';
import { nodeAuthMissing, nodeTlsMissing } from './support/probes.js';
import {
  freePort,
  runBby,
  runNodeToExit,
  spawnNode,
  startNode,
  testDir,
  useCleanup,
  waitFor,
  waitForConnected,
  writeConfig,
  writeTestFile,
  type CliResult,
  type NodeHandle,
} from './support/processes.js';

const SECRET = 'mesh-secret-0123456789abcdef';
const CLIENT_SECRET = 'client-secret-0123456789abcdef';

/** Exit `code`, nothing on stdout, one line on stderr starting with `program: ` and matching `message`, no stack trace. */
function expectOneLine(result: CliResult, code: number, program: 'bby' | 'bby-node', message: RegExp): string {
  expect(result.code, `exit code; stderr: ${result.stderr}`).to.equal(code);
  expect(result.stdout).to.equal('');
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).to.have.length(1);
  expect(lines[0]).to.match(new RegExp(`^${program}: `));
  expect(lines[0]).to.match(message);
  expect(result.stderr).not.to.match(/^\s+at /m);
  return lines[0]!;
}

/** Writes a config file for bby (or bby-node) in the test's folder: these fields and a port. */
async function clientConfig(name: string, fields: Record<string, unknown>): Promise<string> {
  return writeTestFile(name, fields);
}

describe('e2e: security', function () {
  this.timeout(30_000);
  useCleanup();

  const fakes: FakeNode[] = [];
  afterEach(async () => {
    for (const fake of fakes.splice(0)) await fake.close();
  });
  async function fake(options: Omit<FakeNodeOptions, 'config'> & { config?: Record<string, unknown> } = {}): Promise<FakeNode> {
    const node = await startFakeNode({ ...options, config: { port: await freePort(), ...options.config } });
    fakes.push(node);
    return node;
  }

  describe('bby-node refuses to start open on a network', () => {
    it('a non-loopback host without a secret exits 2 with one line naming both fixes, and listens on nothing', async () => {
      const port = await freePort();
      const path = await clientConfig('open.json', { port, host: '0.0.0.0' });
      const line = expectOneLine(await runNodeToExit([path], 10_000), 2, 'bby-node', /"host" is "0\.0\.0\.0", reachable from other machines, and there is no "secret"/);
      expect(line).to.include(path).and.include('add "secret" (make one with: openssl rand -hex 32), or "insecure": true');
    });

    it('a client secret without the members\' secret exits 2', async () => {
      const path = await clientConfig('client-only.json', { port: await freePort(), clientSecret: CLIENT_SECRET });
      expectOneLine(await runNodeToExit([path], 10_000), 2, 'bby-node', /"clientSecret" is set but "secret" is not/);
    });

    it('a weak secret exits 2 without showing it, for bby-node and bby alike', async () => {
      const path = await clientConfig('weak.json', { port: await freePort(), secret: 'hunter2' });
      for (const [program, result] of [['bby-node', await runNodeToExit([path], 10_000)], ['bby', await runBby(path, 'get', 'k')]] as const) {
        const line = expectOneLine(result, 2, program, /"secret" is 7 characters; a secret needs at least 16/);
        expect(line).to.include('openssl rand -hex 32').and.not.include('hunter2');
      }
    });

    it('"insecure": true starts on 0.0.0.0 with a warning, and says a wildcard host without "advertise" announces nothing dialable', async () => {
      const port = await freePort();
      const path = await clientConfig('insecure.json', { port, host: '0.0.0.0', insecure: true, id: 'open' });
      const node = spawnNode([path]);
      await node.waitForOutput(/listening on/, 10_000);
      await node.waitForOutput(/there is no "advertise"/, 5_000, 'stderr');
      const warnings = node.stderr.trimEnd().split('\n');
      expect(warnings).to.have.length(2);
      expect(warnings[0]).to.match(/ warn .*"insecure": true: listening on 0\.0\.0\.0:\d+ with no secret; anyone who can reach it can read and write every key/);
      expect(warnings[1]).to.match(/ warn .*"host" is "0\.0\.0\.0" and there is no "advertise": this node announces no address its peers can dial.*set "advertise"/);
      // bby reaches a wildcard node on loopback.
      expect(await runBby(path, 'set', 'k', 'v')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
    });

    it('warns at start, in one line naming the file and chmod 600, about a secret file other users can read', async () => {
      const dir = await testDir();
      const secretPath = join(dir, 'mesh.secret');
      await writeFile(secretPath, `# the mesh's secret\n${SECRET}\n`);
      await chmod(secretPath, 0o644);
      const file = await writeConfig({ id: 'shared-secret', extra: { secretFile: 'mesh.secret' } });
      const node = spawnNode([file.path]);
      await node.waitForOutput(/chmod 600/, 10_000, 'stderr');
      const lines = node.stderr.trimEnd().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.match(new RegExp(` warn ${secretPath} is readable by other users \\(mode 644\\) and it holds the secret of "secretFile" in ${file.path}; make it private: chmod 600 ${secretPath}$`));
    });
  });

  describe('bby: config errors', () => {
    const cases: { name: string; fields: Record<string, unknown>; message: RegExp }[] = [
      { name: 'a secret and a secret file', fields: { secret: SECRET, secretFile: 'x.secret' }, message: /both "secret" and "secretFile" are set; keep one of them/ },
      { name: 'a missing secret file', fields: { clientSecretFile: 'nowhere.secret' }, message: /"clientSecretFile" \S+nowhere\.secret: no such file.*openssl rand -hex 32 >/ },
      { name: 'a missing CA file', fields: { tls: { ca: 'nowhere-ca.pem' } }, message: /"tls"\."ca" \S+nowhere-ca\.pem: no such file.*scripts\/make-certs\.sh/ },
      { name: 'an "advertise" nobody can dial', fields: { advertise: '0.0.0.0:7001' }, message: /"advertise" is "0\.0\.0\.0:7001", which nobody can dial/ },
    ];
    for (const c of cases) {
      it(`exits 2 with one line naming the file for ${c.name}`, async () => {
        const path = await clientConfig('bad.json', { port: await freePort(), ...c.fields });
        expect(expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', c.message)).to.include(path);
      });
    }
  });

  describe('bby and a node that requires a secret (fake node)', () => {
    it('with the secret, commands answer exactly as without one', async () => {
      const node = await fake({ config: { secret: SECRET } });
      const path = await clientConfig('right.json', { port: node.port, secret: SECRET });
      expect(await runBby(path, 'set', 'MonChamp', '42')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      expect(await runBby(path, 'get', 'MonChamp')).to.include({ code: 0, stdout: '42\n', stderr: '' });
      expect(await runBby('--json', path, 'get', 'MonChamp')).to.include({ code: 0, stdout: '"42"\n', stderr: '' });
      expect(node.auths.every((auth) => auth.role === 'client' && auth.nodeId === undefined)).to.equal(true);
    });

    it('a client-only config with clientSecretFile (and no member secret) gets in', async () => {
      const node = await fake({ config: { secret: SECRET, clientSecret: CLIENT_SECRET } });
      const dir = await testDir();
      await writeFile(join(dir, 'client.secret'), `${CLIENT_SECRET}\n`, { mode: 0o600 });
      const path = await clientConfig('client.json', { port: node.port, clientSecretFile: 'client.secret' });
      expect(await runBby(path, 'set', 'k', 'v')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
    });

    it('a wrong secret: exit 2, one line naming the fix', async () => {
      const node = await fake({ config: { secret: SECRET } });
      const path = await clientConfig('wrong.json', { port: node.port, secret: CLIENT_SECRET });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', new RegExp(`^bby: the node at ws://127\\.0\\.0\\.1:${node.port} refused the secret of ${path} \\(AUTH_FAILED\\): put the node's "clientSecret" \\(or its "secret"\\) in ${path}$`));
    });

    it('no secret in the config: exit 2, one line saying the node requires one', async () => {
      const node = await fake({ config: { secret: SECRET } });
      const path = await clientConfig('none.json', { port: node.port });
      expectOneLine(await runBby(path, 'keys'), 2, 'bby', /requires a secret and \S+none\.json has none: add the node's "clientSecret" \(or "secret"\)/);
    });

    it('an impostor that cannot prove the secret: exit 2, nothing sent to it', async () => {
      const node = await fake({ config: { secret: SECRET }, behaviour: 'impostor' });
      const path = await clientConfig('fooled.json', { port: node.port, secret: SECRET });
      expectOneLine(await runBby(path, 'set', 'secret-key', 'secret-value'), 2, 'bby', /did not prove it holds the secret of/);
      expect(node.requests).to.deep.equal([]);
    });

    it('HTTP 503 from a busy node: exit 1 with its reason, import and export too', async () => {
      const node = await fake({ behaviour: { status503: 'too many connections' } });
      const path = await clientConfig('busy.json', { port: node.port });
      for (const args of [['get', 'k'], ['export']]) {
        expectOneLine(await runBby(path, ...args), 1, 'bby', /cannot take this connection now \(HTTP 503: too many connections\); try again in a moment$/);
      }
    });

    it('a secret file other users can read: bby warns on stderr and still answers', async () => {
      const node = await fake({ config: { secret: SECRET } });
      const dir = await testDir();
      const secretPath = join(dir, 'loose.secret');
      await writeFile(secretPath, `${SECRET}\n`);
      await chmod(secretPath, 0o640);
      const path = await clientConfig('loose.json', { port: node.port, secretFile: 'loose.secret' });
      const result = await runBby(path, 'set', 'k', 'v');
      expect(result).to.include({ code: 0, stdout: 'true\n' });
      expect(result.stderr).to.equal(`bby: warning: ${secretPath} is readable by other users (mode 640) and it holds the secret of "secretFile" in ${path}; make it private: chmod 600 ${secretPath}\n`);
    });

    it('connects to "advertise" rather than "host"', async () => {
      const node = await fake();
      // 192.0.2.1 (TEST-NET-1) is dialable by nobody: only "advertise" can work.
      const path = await clientConfig('advertised.json', { port: node.port, host: '192.0.2.1', advertise: `127.0.0.1:${node.port}` });
      expect(await runBby(path, 'set', 'k', 'v')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
    });
  });

  describe('bby and a node without secret', () => {
    it('a config with a secret refuses a node that runs without one: exit 2, restart it with this config', async () => {
      const node = await startNode({ id: 'open-node' });
      const path = await clientConfig('with-secret.json', { port: node.port, secret: SECRET });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', new RegExp(`^bby: the node at ws://${node.address.replace(/\./g, '\\.')} runs without a secret but ${path} has one, so bby cannot tell it is the right node: restart the node with this config \\(bby-node ${path}\\)$`));
    });
  });

  describe('peers and remove-peer (fake node)', () => {
    it('peers says how many rows the node left out; --json keeps stdout one JSON value', async () => {
      const node = await fake({ omittedPeers: 3 });
      const path = await clientConfig('peers.json', { port: node.port });
      const text = await runBby(path, 'peers');
      expect(text.code).to.equal(0);
      expect(text.stdout.trimEnd().split('\n').slice(-1)[0]).to.equal('... and 3 more');
      const json = await runBby('--json', path, 'getPeers');
      expect(JSON.parse(json.stdout)).to.have.length(1);
      expect(json.stderr).to.equal('bby: ... and 3 more (left out of the answer to fit one message)\n');
    });

    it('remove-peer HOST:PORT (alias removePeer) sends remove-peer and prints what the node did', async () => {
      const node = await fake();
      const path = await clientConfig('remove.json', { port: node.port });
      expect(await runBby(path, 'remove-peer', 'ws://127.0.0.1:1')).to.include({ code: 0, stdout: 'removed 127.0.0.1:1: the node no longer dials it (it is in the config file: remove it there too)\n', stderr: '' });
      expect(await runBby(path, 'removePeer', '127.0.0.1:2')).to.include({ code: 0, stdout: '127.0.0.1:2 was not dialed by the node: nothing to remove\n' });
      expect(await runBby('--json', path, 'remove-peer', '127.0.0.1:2')).to.include({ code: 0, stdout: '{"address":"127.0.0.1:2","removed":false}\n' });
      expect(node.requests.filter((r) => r.type === 'remove-peer')).to.have.length(3);
      expectOneLine(await runBby(path, 'remove-peer', 'nowhere'), 2, 'bby', /bad peer address "nowhere": the port is missing/);
    });
  });

  describe('TLS', () => {
    let certs: string | undefined;

    before(async function () {
      const unavailable = certsUnavailable();
      if (unavailable !== undefined) skipWithReason(this, unavailable);
      // Outside the per-test folder, which the clean-up removes after each test.
      certs = await mkdtemp(join(tmpdir(), 'bby-e2e-certs-'));
      await makeCerts(certs, { node1: ['10.0.0.1'], node2: ['10.0.0.2'] });
      await mkdir(join(certs!, 'foreign'));
      await makeCerts(join(certs!, 'foreign'), { stranger: ['10.0.0.1'] });
    });

    after(async () => {
      if (certs !== undefined) await rm(certs, { recursive: true, force: true });
    });

    const nodeTls = () => ({ cert: join(certs!, 'node1.pem'), key: join(certs!, 'node1-key.pem'), ca: join(certs!, 'ca.pem') });

    it('a config with the CA talks to a TLS node, secret and all', async () => {
      const node = await fake({ config: { tls: nodeTls(), secret: SECRET } });
      const path = await clientConfig('tls.json', { port: node.port, secret: SECRET, tls: { ca: join(certs!, 'ca.pem') } });
      expect(await runBby(path, 'set', 'k', 'v')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      expect(await runBby(path, 'get', 'k')).to.include({ code: 0, stdout: 'v\n', stderr: '' });
    });

    it('no "tls" in the config for a TLS node: exit 2, add "tls"', async () => {
      const node = await fake({ config: { tls: nodeTls() } });
      const path = await clientConfig('plain.json', { port: node.port });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', /the node at ws:\/\/\S+ speaks TLS and \S+plain\.json has no "tls": add "tls": \{"ca": "ca\.pem"\}/);
    });

    it('"tls" in the config for a plain node: exit 2, it does not speak TLS', async () => {
      const node = await fake();
      const path = await clientConfig('tls-to-plain.json', { port: node.port, tls: { ca: join(certs!, 'ca.pem') } });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', /the node at wss:\/\/\S+ does not speak TLS but \S+tls-to-plain\.json has "tls"/);
    });

    it('a CA that did not sign the node\'s certificate: exit 2, certificate not trusted', async () => {
      const node = await fake({ config: { tls: nodeTls() } });
      const path = await clientConfig('foreign.json', { port: node.port, tls: { ca: join(certs!, 'foreign', 'ca.pem') } });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', /has a certificate not signed by a CA this config trusts: "tls"\."ca" of \S+ must be the CA that signed the nodes' certificates/);
    });

    it('a certificate that does not name the dialed address: exit 2, hostname mismatch', async () => {
      // 127.0.0.2 is this machine too, but the certificate names 127.0.0.1, ::1, localhost and 10.0.0.1.
      const node = await fake({ config: { tls: nodeTls(), host: '127.0.0.2', insecure: true } });
      const path = await clientConfig('mismatch.json', { port: node.port, host: '127.0.0.2', tls: { ca: join(certs!, 'ca.pem') } });
      expectOneLine(await runBby(path, 'get', 'k'), 2, 'bby', /the certificate of the node at wss:\/\/127\.0\.0\.2:\d+ does not name 127\.0\.0\.2/);
    });

    describe('real nodes with TLS', () => {
      before(async function () {
        const missing = await nodeTlsMissing(nodeTls());
        if (missing !== undefined) skipWithReason(this, missing);
      });

      it('two nodes replicate over wss://, and bby talks to them with the config they run', async () => {
        const a = await startNode({ id: 'tls-a', extra: { tls: nodeTls(), secret: SECRET } });
        expect(a.process.stdout).to.include(`listening on wss://${a.address}`);
        const b = await startNode({ id: 'tls-b', peers: [a.address], extra: { tls: { ...nodeTls(), cert: join(certs!, 'node2.pem'), key: join(certs!, 'node2-key.pem') }, secret: SECRET } });
        await waitForConnected(b, ['tls-a']);
        expect(await a.bby('set', 'over', 'tls')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
        await waitFor(async () => (await b.query({ type: 'get', key: 'over' })) === 'tls', { what: 'the write to reach tls-b over wss://' });
        const path = await clientConfig('no-tls.json', { port: a.port, secret: SECRET });
        expectOneLine(await runBby(path, 'get', 'over'), 2, 'bby', /speaks TLS and \S+ has no "tls"/);
      });

      it('a node whose TLS files are missing exits 1 with one line naming the field', async () => {
        const path = await clientConfig('missing-key.json', { port: await freePort(), secret: SECRET, tls: { ...nodeTls(), key: 'nowhere-key.pem' } });
        expectOneLine(await runNodeToExit([path], 10_000), 1, 'bby-node', /"tls"\."key" \S+nowhere-key\.pem: no such file/);
      });
    });
  });

  describe('real nodes that authenticate', () => {
    before(async function () {
      this.timeout(20_000);
      const missing = await nodeAuthMissing();
      if (missing !== undefined) skipWithReason(this, missing);
    });

    it('refuses a wrong secret and no secret, and answers the right one', async () => {
      const node = await startNode({ id: 'guarded', extra: { secret: SECRET } });
      expect(await node.bby('set', 'k', 'v')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      const wrong = await clientConfig('wrong-real.json', { port: node.port, secret: CLIENT_SECRET });
      expectOneLine(await runBby(wrong, 'get', 'k'), 2, 'bby', /refused the secret of \S+ \(AUTH_FAILED\)/);
      const none = await clientConfig('none-real.json', { port: node.port });
      expectOneLine(await runBby(none, 'get', 'k'), 2, 'bby', /requires a secret and \S+ has none/);
    });

    it('accepts a client secret, and the members\' secret from clients, and an old secret during a rotation', async () => {
      const node = await startNode({ id: 'rotating', extra: { secret: [SECRET, 'old-mesh-secret-0123456789'], clientSecret: CLIENT_SECRET } });
      for (const [name, fields] of [['as-client.json', { clientSecret: CLIENT_SECRET }], ['as-member.json', { secret: SECRET }], ['as-old.json', { secret: 'old-mesh-secret-0123456789' }]] as const) {
        const path = await clientConfig(name, { port: node.port, ...fields });
        expect(await runBby(path, 'set', name, 'ok'), name).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      }
    });

    it('behaves as a node without secret for every command of the README tour and the course', async function () {
      this.timeout(120_000);
      // The same script on a plain mesh and on a mesh with a secret: every output must be the same, addresses aside.
      const run = async (label: string, extra: Record<string, unknown>) => {
        const files = [];
        for (const id of ['node1', 'node2', 'node3']) files.push(await writeConfig({ id, file: `${label}-${id}.json`, extra, ...(id === 'node3' ? { dataDir: `${label}-data3` } : {}) }));
        const [f1, f2, f3] = files as [(typeof files)[0], (typeof files)[0], (typeof files)[0]];
        const rewrite = async (file: typeof f1, peers: string[]) => writeConfig({ id: file.id, file: `${label}-${file.id}.json`, port: file.port, peers, extra, ...(file.id === 'node3' ? { dataDir: `${label}-data3` } : {}) });
        await rewrite(f2, [f1.address]);
        await rewrite(f3, [f2.address]);
        const n1 = await startNode(f1);
        const n2 = await startNode(f2);
        const n3 = await startNode(f3);
        await waitForConnected(n2, ['node1', 'node3']);
        await waitForConnected(n3, ['node2']);
        // Ports, file names and the column widths they change are the only differences allowed.
        const normalize = (text: string) =>
          text.replaceAll(f1.address, 'NODE1').replaceAll(f2.address, 'NODE2').replaceAll(f3.address, 'NODE3').replaceAll(`${label}-`, 'LABEL-').replace(/ {2,}/g, '  ');
        const outputs: string[] = [];
        // bby peers sorts its rows by address, and the two runs' ports differ: compare the rows as a set.
        const sortedRows = (text: string) => {
          const [header, ...rows] = text.split('\n');
          return [header, ...rows.filter((row) => row !== '').sort(), ''].join('\n');
        };
        const step = async (node: NodeHandle, ...args: string[]) => {
          const result = await node.bby(...args);
          const stdout = args[0] === 'peers' || args[0] === 'getPeers' ? sortedRows(normalize(result.stdout)) : result.stdout;
          outputs.push(normalize(`${node.id} ${args.join(' ')} -> ${result.code} ${JSON.stringify(stdout)} ${JSON.stringify(result.stderr)}`));
          return result;
        };
        await step(n2, 'set', 'MonChamp', '42');
        await waitFor(async () => (await n3.query({ type: 'get', key: 'MonChamp' })) === '42', { what: `${label}: MonChamp on node3` });
        await step(n3, 'get', 'MonChamp');
        await step(n1, 'set', 'MonChamp', '43');
        await step(n1, 'get', 'Absent');
        await step(n1, 'set', 'Autre', 'champ');
        await step(n1, 'set', 'Confirme', 'oui', '--acks', 'all');
        await step(n1, 'set', 'Trois', 'oui', '--acks', '3');
        await waitFor(async () => ((await n3.query<string[]>({ type: 'keys' })).length === 4), { what: `${label}: 4 keys on node3` });
        await step(n3, 'keys');
        await step(n2, 'peers');
        await step(n2, 'getPeers');
        await step(n1, 'add-peer', f3.address);
        await step(n1, 'addPeer', f3.address);
        await step(n1, '--json', 'get', 'MonChamp');
        await step(n1, 'remove-peer', f3.address);
        const stats = await n1.json<Record<string, unknown>>('stats');
        outputs.push(`stats fields ${Object.keys(stats).sort().join(',')}`);
        const exported = await step(n3, 'export');
        const backup = await writeTestFile(`${label}-backup.jsonl`, exported.stdout);
        await step(n1, 'import', backup);
        // The course's crash step: node3 killed, writes meanwhile, node3 back from its data folder catches up.
        await n3.kill();
        await step(n1, 'set', 'Pendant', 'panne');
        const back = await startNode(f3);
        await waitFor(async () => (await back.query({ type: 'get', key: 'Pendant' })) === 'panne', { what: `${label}: node3 to catch up` });
        await step(back, 'get', 'Pendant');
        await step(back, 'keys');
        for (const node of [n1, n2, back]) await node.stop();
        return outputs;
      };
      // Side by side: each run waits mostly on process starts.
      const [plain, guarded] = await Promise.all([run('plain', {}), run('secret', { secret: SECRET })]);
      expect(guarded).to.deep.equal(plain);
    });
  });
});
