/**
 * Fuzzing the config parser (src/config.ts; issue 12, item 7): random JSON,
 * random text and bytes, and valid configs (with every field, the ones
 * being added elsewhere too: secret, clientSecret, tls, advertise, insecure,
 * maxClockSkewMs, maxConnections) mutated as frames are (support/frames.ts),
 * compact or pretty-printed as people write them.
 *
 * Property: `parseConfig(text, source)` returns a config, or throws a
 * ConfigError whose message is one line (no line break) that names the
 * source; never any other exception. A config it returns has a usable port,
 * host and peers. Whether a new field is accepted is not checked, so that the
 * test holds before and after that change.
 *
 * Runs: a fixed seed in `npm test`; FUZZ_RUNS=n and FUZZ_SEED=n|random for
 * long runs (support/fuzz.ts), e.g.
 *   FUZZ_RUNS=100000 FUZZ_SEED=random npx mocha --no-config --timeout 0 packages/core/dist/test/fuzz-config.test.js
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { ConfigError, type NodeConfig, parseConfig } from '../src/index.js';
import { type Frame, frame, type Json, mutatedJsonArb, textArb } from './support/frames.js';
import { fuzzParameters, fuzzTimeoutMs } from './support/fuzz.js';

const portArb = fc.integer({ min: 1, max: 65535 });
const hostArb = fc.oneof(fc.constantFrom('127.0.0.1', '0.0.0.0', '::1', '::', 'localhost', '10.0.0.7'), fc.domain());
const addressArb = fc.oneof(
  fc.tuple(fc.ipV4(), portArb).map(([ip, port]) => `${ip}:${port}`),
  fc.tuple(fc.domain(), portArb).map(([host, port]) => `${host}:${port}`),
  portArb.map((port) => `ws://127.0.0.1:${port}`),
  portArb.map((port) => `[::1]:${port}`),
);
const pathArb = fc.oneof(fc.constantFrom('data/node1', '/var/lib/bby', 'secret.txt', '../tls/cert.pem', 'C:\\bby\\data'), fc.string({ minLength: 1, maxLength: 20 }));
const secretArb = fc.oneof(fc.string({ minLength: 16, maxLength: 40 }), fc.constantFrom('correct horse battery staple', 'short'));
const secretsArb = fc.oneof(secretArb, fc.array(secretArb, { maxLength: 3 }));

/** A config as a person might write one, every field optional but the port. */
const validConfigArb: fc.Arbitrary<Json> = fc.record(
  {
    port: portArb,
    host: hostArb,
    peers: fc.array(addressArb, { maxLength: 4 }),
    id: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    dataDir: pathArb,
    fsync: fc.constantFrom('always', 'everysec', 'no'),
    antiEntropyIntervalMs: fc.integer({ min: 100, max: 3_600_000 }),
    peerExchange: fc.boolean(),
    secret: secretsArb,
    secretFile: pathArb,
    clientSecret: secretsArb,
    clientSecretFile: pathArb,
    insecure: fc.boolean(),
    tls: fc.record({ cert: pathArb, key: pathArb, ca: pathArb }, { requiredKeys: ['cert', 'key'] }),
    advertise: addressArb,
    maxClockSkewMs: fc.integer({ min: 0, max: 3_600_000 }),
    maxConnections: fc.integer({ min: 1, max: 100_000 }),
  },
  { requiredKeys: ['port'] },
) as fc.Arbitrary<Json>;

/** Config text: written compact or pretty-printed (the errors of a multi-line file quote its lines). */
const configTextArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 4, arbitrary: mutatedJsonArb(validConfigArb, () => 'config') },
  { weight: 2, arbitrary: fc.tuple(validConfigArb, fc.constantFrom(2, '\t')).map(([config, indent]) => frame(JSON.stringify(config, null, indent), 'valid config, pretty')) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(mutatedJsonArb(validConfigArb, () => 'config'), fc.constantFrom(2, '\t'))
      .map(([mutated, indent]) => {
        // The mutated text pretty-printed where it still parses; a damaged one is pretty-printed first, then cut.
        try {
          return frame(JSON.stringify(JSON.parse(mutated.text), null, indent), `${mutated.how}, pretty`);
        } catch {
          return frame(mutated.text.replace(/,/g, `,\n${typeof indent === 'number' ? ' '.repeat(indent) : indent}`), `${mutated.how}, broken over lines`);
        }
      }),
  },
  { weight: 1, arbitrary: validConfigArb.map((config) => frame(JSON.stringify(config), 'valid config')) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }).map((text) => frame(text, 'random json')) },
  { weight: 1, arbitrary: fc.oneof(textArb, fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('utf8'))).map((text) => frame(text, 'random text')) },
);

/** File names as `bby-node` passes them, any character but a line break. */
const sourceArb = fc.oneof(
  fc.constantFrom('node.json', 'examples/node2.json', '/etc/bby/node 1.json', 'C:\\bby\\node.json', 'конфиг.json'),
  fc.string({ minLength: 1, maxLength: 30, unit: 'binary' }).filter((name) => !/[\n\r\u2028\u2029]/.test(name)),
);


function checkConfig(config: NodeConfig): void {
  expect(Number.isInteger(config.port) && config.port >= 1 && config.port <= 65535, `port ${config.port}`).to.equal(true);
  expect(config.host).to.be.a('string').and.not.equal('');
  expect(config.peers).to.be.an('array');
  for (const peer of config.peers) expect(peer).to.be.a('string');
}

describe('fuzz: the config parser', function () {
  this.timeout(fuzzTimeoutMs(60_000));

  it('returns a config or throws a one-line ConfigError naming the source, never anything else', () => {
    fc.assert(
      fc.property(configTextArb, sourceArb, ({ text }, source) => {
        let config: NodeConfig;
        try {
          config = parseConfig(text, source);
        } catch (error) {
          if (!(error instanceof ConfigError)) expect.fail(`parseConfig threw ${(error as Error)?.constructor?.name}: ${(error as Error)?.stack ?? String(error)}`);
          expect(error.code).to.equal('BAD_CONFIG');
          expect(error.message.startsWith(`${source}: `), `the message names the source first: ${error.message}`).to.equal(true);
          expect(error.message, 'a config error is one line').not.to.match(/[\n\r]/);
          return;
        }
        checkConfig(config);
      }),
      fuzzParameters(1500, 200),
    );
  });

  // Found by the fuzzing: V8's JSON.parse message quotes the text around the error, line breaks and all.
  it('reports a JSON syntax error of a pretty-printed config in one line (bug 4 of the fuzzing: V8 quotes the text with its line breaks)', () => {
    const text = '{\n  "port": 7001,\n  "peers": [\n    "127.0.0.1:7002",\n  ]\n}';
    expect(() => parseConfig(text, 'node.json')).to.throw(ConfigError).with.property('message').that.does.not.match(/[\n\r]/);
  });

  // Found by the fuzzing: config.ts quoted wrong values with JSON.stringify, which recurses, so a value nested
  // thousands deep overflowed the stack.
  it('reports a deeply nested value with a ConfigError, not a RangeError (bug 6 of the fuzzing: JSON.stringify overflows the stack)', () => {
    const text = `{"port":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(() => parseConfig(text, 'node.json')).to.throw(ConfigError);
  });
});
