import { expect } from 'chai';
import {
  announcedAddress,
  checkExposure,
  ConfigError,
  connectAddress,
  DEFAULT_HOST,
  exposureWarnings,
  MIN_SECRET_LENGTH,
  parseConfig,
  parseSecretFile,
  type NodeConfig,
} from '../src/index.js';

const SOURCE = 'conf/node1.json';
const SECRET = '0123456789abcdef0123456789abcdef';
const OTHER_SECRET = 'fedcba9876543210fedcba9876543210';

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
    expect(parseConfig('{"port": 7001}', SOURCE)).to.deep.equal({
      port: 7001,
      host: DEFAULT_HOST,
      peers: [],
      fsync: 'always',
      peerExchange: true,
      secrets: [],
      clientSecrets: [],
      insecure: false,
      maxClockSkewMs: 60_000,
      maxConnections: 1000,
    });
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
      insecure: true,
      tls: { cert: 'node1.pem', key: 'node1-key.pem', ca: 'ca.pem' },
      advertise: '10.0.0.1:7001',
      maxClockSkewMs: 5000,
      maxConnections: 64,
    };
    const withSecrets = { ...full, secret: SECRET, clientSecretFile: 'client-secret.txt' };
    expect(parseConfig(JSON.stringify(withSecrets), SOURCE)).to.deep.equal({ ...full, secrets: [SECRET], clientSecrets: [], clientSecretFile: 'client-secret.txt' });
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

  it('lists every field, new ones included, when a field is unknown', () => {
    expect(configError({ port: 7001, secrets: [SECRET] }).message).to.include(
      'port, host, peers, id, dataDir, fsync, antiEntropyIntervalMs, peerExchange, secret, secretFile, clientSecret, clientSecretFile, insecure, tls, advertise, maxClockSkewMs, maxConnections',
    );
  });
});

describe('config secrets', () => {
  it('takes a secret as a string or a list, first presented, all kept in order', () => {
    expect(parseConfig(JSON.stringify({ port: 7001, secret: SECRET }), SOURCE).secrets).to.deep.equal([SECRET]);
    const rotating = parseConfig(JSON.stringify({ port: 7001, secret: [OTHER_SECRET, SECRET], clientSecret: SECRET }), SOURCE);
    expect(rotating.secrets).to.deep.equal([OTHER_SECRET, SECRET]);
    expect(rotating.clientSecrets).to.deep.equal([SECRET]);
  });

  it('accepts a secret of exactly 16 and of 1024 characters and refuses 15 and 1025, without showing it', () => {
    expect(MIN_SECRET_LENGTH).to.equal(16);
    expect(parseConfig(JSON.stringify({ port: 7001, secret: 's'.repeat(16) }), SOURCE).secrets).to.deep.equal(['s'.repeat(16)]);
    expect(parseConfig(JSON.stringify({ port: 7001, secret: 's'.repeat(1024) }), SOURCE).secrets[0]).to.have.length(1024);
    const short = configError({ port: 7001, secret: 'hunter2hunter2!' });
    expect(short.message).to.include('"secret" is 15 characters; a secret needs at least 16').and.include('openssl rand -hex 32');
    expect(short.message).not.to.include('hunter2');
    expect(configError({ port: 7001, secret: 'x'.repeat(1025) }).message).to.include('is 1025 characters; a secret may have at most 1024');
  });

  it('names the item of a list that is not a usable secret', () => {
    expect(configError({ port: 7001, secret: [SECRET, 'short'] }).message).to.include('"secret"[1] is 5 characters');
    expect(configError({ port: 7001, clientSecret: [SECRET, 42] }).message).to.include('"clientSecret"[1] must be a string of 16 to 1024 characters, got a number');
  });

  it('refuses an empty list, a number, an object, control characters and surrounding spaces', () => {
    expect(configError({ port: 7001, secret: [] }).message).to.include('"secret" is an empty list');
    // biome-ignore lint/correctness/noPrecisionLoss: a number JSON cannot hold exactly, on purpose.
    expect(configError({ port: 7001, secret: 1234567890123456789 }).message).to.include('"secret" must be a string of 16 to 1024 characters, or a list of them').and.include('got a number').and.not.include('123456789');
    expect(configError({ port: 7001, clientSecret: { value: SECRET } }).message).to.include('got an object');
    expect(configError({ port: 7001, secret: `${SECRET}\n` }).message).to.include('control character or line break');
    expect(configError({ port: 7001, secret: ` ${SECRET}` }).message).to.include('starts or ends with a space');
  });

  it('refuses a secret together with its file, for members and clients alike', () => {
    expect(configError({ port: 7001, secret: SECRET, secretFile: 'secret.txt' }).message).to.include('both "secret" and "secretFile" are set; keep one of them');
    expect(configError({ port: 7001, clientSecret: SECRET, clientSecretFile: 'c.txt' }).message).to.include('both "clientSecret" and "clientSecretFile"');
  });

  it('keeps a secret file path as written and leaves the secrets to the file reader', () => {
    const config = parseConfig(JSON.stringify({ port: 7001, secretFile: 'secrets/mesh.txt' }), SOURCE);
    expect(config.secretFile).to.equal('secrets/mesh.txt');
    expect(config.secrets).to.deep.equal([]);
    for (const secretFile of ['', '  ', 3, ['a']]) expect(configError({ port: 7001, secretFile }).message).to.include('"secretFile" must be the path of a file');
  });
});

describe('secret files', () => {
  const parse = (text: string) => parseSecretFile(text, SOURCE, 'secretFile', '/etc/bby/secret.txt');
  const fileError = (text: string, field: 'secretFile' | 'clientSecretFile' = 'secretFile'): ConfigError => {
    try {
      parseSecretFile(text, SOURCE, field, '/etc/bby/secret.txt');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error('parseSecretFile did not throw');
  };

  it('reads one secret per line, skipping blank lines and # comments, trimming spaces and CRs', () => {
    expect(parse(`# new secret first\n${SECRET}  \n\n   \n# the old one, until every node has the new\r\n${OTHER_SECRET}\r\n`)).to.deep.equal([SECRET, OTHER_SECRET]);
  });

  it('names the config, the field, the file and the line of a bad secret, never the secret', () => {
    const error = fileError(`${SECRET}\n\ntooshort\n`, 'clientSecretFile');
    expect(error.message).to.equal(
      `${SOURCE}: "clientSecretFile" /etc/bby/secret.txt: line 3 is 8 characters; a secret needs at least 16 (a short one can be guessed from one recorded handshake); make one with: openssl rand -hex 32`,
    );
  });

  it('refuses a file with no secret in it, saying how to make one', () => {
    for (const text of ['', '\n\n', '# only a comment\n']) {
      expect(fileError(text).message).to.include('"secretFile" /etc/bby/secret.txt holds no secret').and.include('openssl rand -hex 32 > /etc/bby/secret.txt');
    }
  });
});

describe('config tls, advertise and limits', () => {
  it('takes "tls" with cert and key, ca optional, or ca alone (a config for bby only)', () => {
    expect(parseConfig(JSON.stringify({ port: 7001, tls: { cert: 'a.pem', key: 'a-key.pem' } }), SOURCE).tls).to.deep.equal({ cert: 'a.pem', key: 'a-key.pem' });
    expect(parseConfig(JSON.stringify({ port: 7001, tls: { ca: 'ca.pem' } }), SOURCE).tls).to.deep.equal({ ca: 'ca.pem' });
  });

  it('refuses a "tls" that is not an object of paths, or has a cert without its key', () => {
    expect(configError({ port: 7001, tls: true }).message).to.include('"tls" must be an object such as {"cert": "node1.pem"');
    expect(configError({ port: 7001, tls: { cert: 'a.pem' } }).message).to.include('"tls" has "cert" but no "key"');
    expect(configError({ port: 7001, tls: { key: 'a-key.pem', ca: 'ca.pem' } }).message).to.include('"tls" has "key" but no "cert"');
    expect(configError({ port: 7001, tls: {} }).message).to.include('"tls" is empty');
    expect(configError({ port: 7001, tls: { cert: 'a.pem', key: '', ca: 'ca.pem' } }).message).to.include('"tls"."key" must be the path of a PEM file');
    expect(configError({ port: 7001, tls: { cert: 'a.pem', key: 'k.pem', certificate: 'x' } }).message).to.include('unknown field "tls"."certificate"; the fields of "tls" are cert, key, ca');
  });

  it('normalizes "advertise" and refuses wildcard hosts and bad ports', () => {
    expect(parseConfig(JSON.stringify({ port: 7001, host: '0.0.0.0', advertise: 'ws://10.0.0.1:7001/' }), SOURCE).advertise).to.equal('10.0.0.1:7001');
    expect(parseConfig(JSON.stringify({ port: 7001, advertise: '[fd00::1]:7001' }), SOURCE).advertise).to.equal('[fd00::1]:7001');
    for (const advertise of ['0.0.0.0:7001', '[::]:7001', '[0:0:0:0:0:0:0:0]:7001']) {
      expect(configError({ port: 7001, advertise }).message, advertise).to.include('which nobody can dial').and.include('"10.0.0.1:7001"');
    }
    expect(configError({ port: 7001, advertise: '10.0.0.1:0' }).message).to.include('"advertise": bad peer address').and.include('the port must be from 1 to 65535');
    expect(configError({ port: 7001, advertise: '10.0.0.1' }).message).to.include('the port is missing');
    expect(configError({ port: 7001, advertise: 7001 }).message).to.include('"advertise" must be a host:port');
  });

  it('takes "insecure" as a boolean only', () => {
    expect(configError({ port: 7001, insecure: 'yes' }).message).to.include('"insecure" must be true or false, got "yes"');
  });

  it('bounds maxClockSkewMs and maxConnections and says the defaults', () => {
    for (const maxClockSkewMs of [999, 86_400_001, 1.5, '60000']) {
      expect(configError({ port: 7001, maxClockSkewMs }).message).to.include('"maxClockSkewMs" must be an integer from 1000 to 86400000').and.include('the default is 60000');
    }
    for (const maxConnections of [0, 100_001, 2.5, null]) {
      expect(configError({ port: 7001, maxConnections }).message).to.include('"maxConnections" must be an integer from 1 to 100000').and.include('the default is 1000');
    }
  });
});

describe('exposure', () => {
  const config = (fields: Record<string, unknown>): NodeConfig => parseConfig(JSON.stringify({ port: 7001, ...fields }), SOURCE);
  const exposureError = (fields: Record<string, unknown>): ConfigError => {
    try {
      checkExposure(config(fields), SOURCE);
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as Error).message.includes('\n')).to.equal(false);
      return error as ConfigError;
    }
    throw new Error(`checkExposure(${JSON.stringify(fields)}) did not throw`);
  };

  it('lets a loopback node run without a secret, as before', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', '::1', 'localhost', '0:0:0:0:0:0:0:1']) checkExposure(config({ host }), SOURCE);
    checkExposure(config({}), SOURCE);
  });

  it('refuses a node reachable from other machines without a secret, naming both fixes', () => {
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'node1.lan', '128.0.0.1']) {
      const error = exposureError({ host });
      expect(error.message, host).to.include(`"host" is ${JSON.stringify(host)}, reachable from other machines, and there is no "secret"`);
      expect(error.message, host).to.include('add "secret" (make one with: openssl rand -hex 32), or "insecure": true');
    }
    // TLS encrypts, it does not decide who may talk.
    exposureError({ host: '0.0.0.0', tls: { cert: 'a.pem', key: 'k.pem' } });
  });

  it('lets a secret or "insecure": true open a non-loopback host', () => {
    checkExposure(config({ host: '0.0.0.0', secret: SECRET }), SOURCE);
    checkExposure(config({ host: '10.0.0.1', insecure: true }), SOURCE);
  });

  it('refuses a client secret without the members\' secret: the node would require nothing', () => {
    expect(exposureError({ clientSecret: SECRET }).message).to.include('"clientSecret" is set but "secret" is not');
  });

  it('refuses a config whose secret file was never read', () => {
    expect(exposureError({ secretFile: 'secret.txt' }).message).to.include('the secret file was not read');
  });

  it('warns at start about a node left open on purpose, and about a wildcard host without "advertise"', () => {
    expect(exposureWarnings(config({}), SOURCE)).to.deep.equal([]);
    expect(exposureWarnings(config({ host: '10.0.0.1', secret: SECRET, insecure: true }), SOURCE)).to.deep.equal([]);
    const open = exposureWarnings(config({ host: '10.0.0.1', insecure: true }), SOURCE);
    expect(open).to.have.length(1);
    expect(open[0]).to.include('"insecure": true: listening on 10.0.0.1:7001 with no secret');
    const wildcard = exposureWarnings(config({ host: '::', secret: SECRET }), SOURCE);
    expect(wildcard).to.have.length(1);
    expect(wildcard[0]).to.include('"host" is "::" and there is no "advertise"').and.include('set "advertise"');
    expect(exposureWarnings(config({ host: '0.0.0.0', secret: SECRET, advertise: '10.0.0.1:7001' }), SOURCE)).to.deep.equal([]);
  });

  it('announces "advertise", else the host, and nothing for a wildcard host', () => {
    expect(announcedAddress(config({}))).to.equal('127.0.0.1:7001');
    expect(announcedAddress(config({ host: '0.0.0.0' }))).to.equal(undefined);
    expect(announcedAddress(config({ host: '::', advertise: '[fd00::2]:7001' }))).to.equal('[fd00::2]:7001');
  });

  it('has clients dial "advertise", else the host, else loopback for a wildcard host', () => {
    expect(connectAddress(config({ host: '0.0.0.0', advertise: '10.0.0.1:7101' }))).to.equal('10.0.0.1:7101');
    expect(connectAddress(config({ host: '10.0.0.1' }))).to.equal('10.0.0.1:7001');
    expect(connectAddress(config({ host: '0.0.0.0' }))).to.equal('127.0.0.1:7001');
    expect(connectAddress(config({ host: '::' }))).to.equal('[::1]:7001');
  });
});
