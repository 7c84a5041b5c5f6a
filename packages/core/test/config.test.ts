import { expect } from 'chai';
import { ConfigError, DEFAULT_HOST, parseConfig } from '../src/index.js';

const SOURCE = 'conf/node1.json';

function configError(value: unknown, raw = false): ConfigError {
  const text = raw ? (value as string) : JSON.stringify(value);
  try {
    parseConfig(text, SOURCE);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).code).to.equal('BAD_CONFIG');
    expect((error as ConfigError).message.startsWith(`${SOURCE}: `), (error as Error).message).to.equal(true);
    return error as ConfigError;
  }
  throw new Error(`parseConfig(${text}) did not throw`);
}

describe('config parsing', () => {
  it('a config with only a port gets the default host and no peers', () => {
    expect(parseConfig('{"port": 7001}', SOURCE)).to.deep.equal({ port: 7001, host: DEFAULT_HOST, peers: [], fsync: 'always', peerExchange: true });
    expect(DEFAULT_HOST).to.equal('127.0.0.1');
  });

  it('keeps every known field', () => {
    const full = {
      port: 7001,
      host: '0.0.0.0',
      peers: ['127.0.0.1:7002'],
      id: 'node_1-a',
      dataDir: 'data/node1',
      fsync: 'everysec',
      antiEntropyIntervalMs: 2000,
      peerExchange: false,
    };
    expect(parseConfig(JSON.stringify(full), SOURCE)).to.deep.equal(full);
  });

  it('normalizes peers: ws:// URLs, spaces, IPv6 brackets, and drops repeats', () => {
    const config = parseConfig(
      JSON.stringify({ port: 7001, peers: ['ws://127.0.0.1:7002/', ' localhost:7003 ', '[::1]:7004', '127.0.0.1:7002', 'WS://[::1]:7004'] }),
      SOURCE,
    );
    expect(config.peers).to.deep.equal(['127.0.0.1:7002', 'localhost:7003', '[::1]:7004']);
  });

  it('refuses an anti-entropy interval or a peerExchange of the wrong kind', () => {
    expect(configError({ port: 7001, antiEntropyIntervalMs: 5 }).message).to.include('"antiEntropyIntervalMs" must be an integer from 100');
    expect(configError({ port: 7001, peerExchange: 'yes' }).message).to.include('"peerExchange" must be true or false, got "yes"');
  });

  it('names an unknown field and lists the known ones', () => {
    const error = configError({ port: 7001, peer: ['127.0.0.1:7002'] });
    expect(error.message).to.include('unknown field "peer"').and.include('port, host, peers, id, dataDir');
    expect(configError({ port: 7001, Port: 7002 }).message).to.include('unknown field "Port"');
  });

  it('says when the text is not JSON, with an example', () => {
    const error = configError('{"port": 7001,', true);
    expect(error.message).to.include('not valid JSON').and.include('{"port": 7001');
  });

  it('wants a JSON object', () => {
    for (const value of [[], null, 'port', 7001]) expect(configError(value).message).to.include('must be a JSON object');
  });

  it('wants a port', () => {
    expect(configError({ peers: [] }).message).to.include('"port" is missing');
  });

  it('refuses a port out of range or of the wrong type, showing what it got', () => {
    for (const port of [0, 65536, -1, 70.5, '7001', true]) {
      const error = configError({ port });
      expect(error.message).to.include('"port" must be an integer from 1 to 65535').and.include(`got ${JSON.stringify(port)}`);
    }
  });

  it('refuses a host that is not a host name or IP', () => {
    for (const host of ['', 42, 'bad host', 'a/b']) expect(configError({ port: 7001, host }).message).to.include('"host" must be a host name');
    expect(parseConfig('{"port": 7001, "host": "::1"}', SOURCE).host).to.equal('::1');
  });

  it('wants peers as a list of strings and names the bad item', () => {
    expect(configError({ port: 7001, peers: '127.0.0.1:7002' }).message).to.include('"peers" must be a list');
    expect(configError({ port: 7001, peers: ['127.0.0.1:7002', 7003] }).message).to.include('"peers"[1] must be a string');
  });

  it('names the peer whose address is bad and why', () => {
    const error = configError({ port: 7001, peers: ['127.0.0.1:7002', 'localhost'] });
    expect(error.message).to.include('"peers"[1]').and.include('the port is missing');
  });

  it('refuses ids that are empty, too long or have odd characters', () => {
    for (const id of ['', 'a'.repeat(65), 'has space', 'dot.ted', 7]) {
      expect(configError({ port: 7001, id }).message).to.include('"id" must be 1 to 64');
    }
    expect(parseConfig(JSON.stringify({ port: 7001, id: 'a'.repeat(64) }), SOURCE).id).to.equal('a'.repeat(64));
  });

  it('refuses an empty or non-string dataDir', () => {
    for (const dataDir of ['', 3, null]) expect(configError({ port: 7001, dataDir }).message).to.include('"dataDir" must be a folder path');
  });

  it('accepts the three fsync policies and refuses anything else, listing them', () => {
    for (const fsync of ['always', 'everysec', 'no']) expect(parseConfig(JSON.stringify({ port: 7001, fsync }), SOURCE).fsync).to.equal(fsync);
    for (const fsync of ['sometimes', 'ALWAYS', true, null, 1]) {
      expect(configError({ port: 7001, fsync }).message).to.include('"fsync" must be one of "always", "everysec", "no"').and.include(`got ${JSON.stringify(fsync)}`);
    }
  });
});
