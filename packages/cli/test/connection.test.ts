/**
 * connection.ts in-process, against a fake node (support/fake-node.ts): the
 * client side of the handshake, and what each refusal is called.
 */
import { parseConfig } from '@bby/core';
import { expect } from 'chai';
import { BbyClient, ConnectionError, connectionTarget, openConnection, printable, UnreachableError, type ConnectionFailure, type ConnectionTarget } from '@bby/client';
import { startFakeNode, type FakeNode, type FakeNodeOptions } from './support/fake-node.js';
import { freePort } from './support/processes.js';

const SECRET = 'the-members-secret-0123456789';
const CLIENT_SECRET = 'the-clients-secret-0123456789';
const CONFIG = 'conf/client.json';

describe('connection: the client side of authentication', () => {
  const fakes: FakeNode[] = [];
  afterEach(async () => {
    for (const fake of fakes.splice(0)) await fake.close();
  });

  async function fake(options: Omit<FakeNodeOptions, 'config'> & { config?: Record<string, unknown> } = {}): Promise<FakeNode> {
    const node = await startFakeNode({ ...options, config: { port: await freePort(), ...options.config } });
    fakes.push(node);
    return node;
  }

  const target = (node: FakeNode, fields: Partial<ConnectionTarget> = {}): ConnectionTarget => ({ url: `ws://127.0.0.1:${node.port}`, configPath: CONFIG, ...fields });

  async function refusal(promise: Promise<unknown>): Promise<ConnectionError> {
    try {
      await promise;
    } catch (error) {
      expect(error, String(error)).to.be.instanceOf(ConnectionError);
      expect((error as Error).message.includes('\n')).to.equal(false);
      return error as ConnectionError;
    }
    throw new Error('the connection was not refused');
  }

  it('connects to a node without secret as before, with a URL alone', async () => {
    const node = await fake();
    const client = await BbyClient.connect(`ws://127.0.0.1:${node.port}`, 2_000);
    expect(await client.request({ type: 'set', key: 'k', value: 'v' })).to.equal(true);
    client.close();
  });

  it('answers the challenge as a client, checks the node\'s proof, then requests go through', async () => {
    const node = await fake({ config: { secret: SECRET } });
    const client = await BbyClient.connect(target(node, { secret: SECRET }), 2_000);
    expect(await client.request({ type: 'set', key: 'k', value: 'v' })).to.equal(true);
    expect(await client.request({ type: 'get', key: 'k' })).to.equal('v');
    client.close();
    expect(node.auths).to.deep.equal([{ role: 'client' }]);
  });

  it('presents the client secret, which the node accepts beside the members\' secrets', async () => {
    const node = await fake({ config: { secret: SECRET, clientSecret: CLIENT_SECRET } });
    const config = parseConfig(JSON.stringify({ port: node.port, secret: SECRET, clientSecret: CLIENT_SECRET }), CONFIG);
    const made = await connectionTarget(config, CONFIG);
    expect(made).to.deep.equal({ url: `ws://127.0.0.1:${node.port}`, secret: CLIENT_SECRET, configPath: CONFIG });
    (await openConnection(made, 2_000)).webSocket.close();
  });

  const cases: { name: string; options: Parameters<typeof fake>[0]; secret?: string; failure: ConnectionFailure; exitCode: 1 | 2; message: RegExp }[] = [
    { name: 'a wrong secret', options: { config: { secret: SECRET } }, secret: CLIENT_SECRET, failure: 'wrong-secret', exitCode: 2, message: /refused the secret of conf\/client\.json \(AUTH_FAILED\): put the node's "clientSecret" \(or its "secret"\) in conf\/client\.json$/ },
    { name: 'no secret for a node that requires one', options: { config: { secret: SECRET } }, failure: 'secret-required', exitCode: 2, message: /requires a secret and conf\/client\.json has none: add the node's "clientSecret" \(or "secret"\) to conf\/client\.json$/ },
    { name: 'a secret for a node without one', options: {}, secret: SECRET, failure: 'node-without-secret', exitCode: 2, message: /runs without a secret but conf\/client\.json has one.*restart the node with this config \(bby-node conf\/client\.json\)$/ },
    { name: 'an impostor whose proof is wrong', options: { config: { secret: SECRET }, behaviour: 'impostor' }, secret: SECRET, failure: 'node-not-proven', exitCode: 2, message: /did not prove it holds the secret of conf\/client\.json/ },
    { name: 'a close with 4011 (authentication required)', options: { config: { secret: SECRET }, behaviour: { closeWith: 4011 } }, secret: SECRET, failure: 'secret-required', exitCode: 2, message: /requires a secret/ },
    { name: 'a close with 4012 (too slow)', options: { config: { secret: SECRET }, behaviour: { closeWith: 4012 } }, secret: SECRET, failure: 'auth-timeout', exitCode: 1, message: /gave up waiting for this client to authenticate; try again$/ },
    { name: 'HTTP 503 (too many connections)', options: { behaviour: { status503: 'too many connections' } }, failure: 'busy', exitCode: 1, message: /cannot take this connection now \(HTTP 503: too many connections\); try again in a moment$/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name} with one line naming the fix (exit ${c.exitCode})`, async () => {
      const node = await fake(c.options);
      const error = await refusal(openConnection(target(node, c.secret === undefined ? {} : { secret: c.secret }), 2_000));
      expect(error.failure).to.equal(c.failure);
      expect(error.code, 'NODE_BUSY exits 1, CONNECTION_REFUSED 2 (exit-code.ts)').to.equal(c.exitCode === 1 ? 'NODE_BUSY' : 'CONNECTION_REFUSED');
      expect(error.message).to.match(new RegExp(`^the node at ws://127\\.0\\.0\\.1:${node.port} `));
      expect(error.message).to.match(c.message);
    });
  }

  it('shows a 503 body from the network with its control characters escaped', async () => {
    const node = await fake({ behaviour: { status503: 'starting: loading its data\u001b[31m' } });
    const error = await refusal(openConnection(target(node), 2_000));
    expect(error.message).to.include('HTTP 503: starting: loading its data\\u001b[31m');
    expect(printable('a\nb\u0007')).to.equal('a\\nb\\u0007');
  });

  it('says a node cannot be reached when nothing listens (exit 1 in bby)', async () => {
    const port = await freePort();
    try {
      await openConnection(`ws://127.0.0.1:${port}`, 2_000);
      expect.fail('connected to nothing');
    } catch (error) {
      expect(error).to.be.instanceOf(UnreachableError);
      expect((error as Error).message).to.equal(`cannot reach the node at ws://127.0.0.1:${port} (connection refused)`);
    }
  });
});
