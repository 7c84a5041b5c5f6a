/**
 * Fuzzing the core (issue 12, item 7): random and mutated frames of every
 * message type of docs/protocol.md (support/frames.ts), fed through `receive`
 * to a real core on every kind of link it has, with `tick`s and random jumps
 * of its clock in between. The test plays the adapter: it reports frames
 * written (or, for a stalled reader, never), closes the links the node
 * closes, refuses the dials it asks for, and keeps a second peer connected.
 *
 * Checked after every event, on every effect:
 * - no core method throws;
 * - every `send` carries a `bytes` number and its `text`, which is its message encoded (`encodeMessage`, and `JSON.stringify` alike)
 *   to well-formed JSON of at most 1 MiB that the other side's parser accepts,
 *   and the estimate is within the factor JSON escaping allows (6);
 * - every `error` sent has a code of the ErrorCode list of src/errors.ts, every
 *   `close` a code of CLOSE_CODES (or 1000) and a reason that fits a close frame;
 * - a frame the parser refuses is answered by at most one `error` (with its id
 *   or null) and a documented close, and changes nothing else;
 * - an answer (`reply`, `error`) on an open link is never answered;
 * - the store only changes through valid `set`, `set-many` and `entries`
 *   frames of links allowed to write, to the values they carried: so the
 *   number of keys stays within the initial ones plus the distinct keys of
 *   those frames, whatever else arrives;
 * - every event's effects are bounded: a constant plus a few per entry the
 *   frame carried (and one per `set` with `acks` still waiting);
 * - log lines are one line each and of bounded length.
 *
 * Runs: a fixed seed and 60 runs of up to 40 frames per kind of link (some 10,000 frames) in `npm test`;
 * FUZZ_RUNS=n and FUZZ_SEED=n|random for long runs (support/fuzz.ts), e.g.
 *   FUZZ_RUNS=20000 FUZZ_SEED=random npx mocha --no-config --timeout 0 packages/core/dist/test/fuzz.test.js
 * A failure prints the seed and path that replay it, and the shrunk frames.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import {
  authProof,
  type BbyNode,
  CLOSE_CODES,
  createNode,
  type Effect,
  encodeMessage,
  type Entry,
  type LinkId,
  MAX_MESSAGE_BYTES,
  type Message,
  parseIncoming,
  type ParseResult,
  parseAddress,
} from '../src/index.js';
import {
  OUTBOUND_BUDGET_BYTES,
  readyEffects,
  utf8ByteLength,
} from '../src/internal.js';
import { BIG_KEY, type Frame, frameArb, FUZZ_ADDRESS, FUZZ_EPOCH, FUZZ_NODE_ID, FUZZ_START_MS } from './support/frames.js';
import { ERROR_CODES } from './support/error-codes.js';
import { fuzzParameters, fuzzTimeoutMs } from './support/fuzz.js';
import { mulberry32, randomBytesFrom } from '@bby/sim';

/** Close codes the core may ask for: CLOSE_CODES, and 1000 when a client removes a peer. */
const CLOSE_CODES_ALLOWED: ReadonlySet<number> = new Set([...Object.values(CLOSE_CODES), 1000]);
/** A WebSocket close frame holds at most 123 bytes of reason (RFC 6455 5.5); `ws` throws past it. */
const MAX_CLOSE_REASON_BYTES = 123;
/** Longest log line accepted: a few pieces of outside text (each cut to 200 characters, log-text.ts) and their sentence. */
const MAX_LOG_LINE_LENGTH = 2_000;

const SECRET = 'fuzzing secret of the mesh';
const HELPER = 'p2';

/** Which frames of the fuzzed link may change the store. */
type Writes = 'none' | 'requests' | 'any';

/** A kind of link to fuzz, and how the test puts it in that state. */
interface Scenario {
  readonly name: string;
  readonly secured: boolean;
  readonly writes: Writes;
  /** True when the link is past authentication once opened: answers to it must then never be answered. */
  readonly open: boolean;
  /** Opens the fuzzed link and brings it to the state fuzzed; returns its id. */
  connect(harness: Harness): LinkId;
}

/** One event of a run: a frame, and maybe a jump of the clock and a tick first. */
interface Step {
  readonly frame: Frame;
  /** Pass the frame's byte length to `receive` (as the adapter does), or let the core measure it. */
  readonly withByteLength: boolean;
  readonly jumpMs: number | null;
}

/** The adapter around one core, checking every effect it carries out. */
class Harness {
  nowMs = FUZZ_START_MS;
  readonly node: BbyNode;
  /** Links the test holds open, as the adapter's sockets. */
  readonly open = new Set<LinkId>();
  /** Dials the test waits for (it opens them itself); every other dial is refused. */
  readonly expectedDials = new Set<string>();
  readonly dials = new Map<string, LinkId>();
  /** The link of the second peer, kept alive with pings. */
  helper: LinkId | null = null;
  /** `key\0value` of every write a valid frame of a link allowed to write carried. */
  readonly allowed = new Set<string>();
  readonly allowedKeys = new Set<string>();
  readonly initialKeys: number;
  /** Valid `set`s with `acks` so far: each may be answered at a later tick. */
  ackRounds = 0;
  /** Connections made by the test (the fuzzed link again after the node closed it). */
  connections = 0;
  #nextUpstream = 0;

  constructor(
    readonly scenario: Scenario,
    seed: number,
    readonly stalled: boolean,
  ) {
    const random = mulberry32(seed);
    this.node = createNode({
      id: FUZZ_NODE_ID,
      address: FUZZ_ADDRESS,
      now: () => this.nowMs,
      random,
      randomBytes: randomBytesFrom(mulberry32(seed ^ 0x5eed)),
      epoch: FUZZ_EPOCH,
      entries: initialEntries(),
      peerExchange: true,
      ...(scenario.secured ? { secrets: [SECRET] } : {}),
    });
    this.initialKeys = this.node.stats().keys;
    this.settle(readyEffects(this.node.takeReady()));
  }

  /** Carries out effects, checking each, until the node has nothing more to say; returns how many there were. */
  settle(first: Effect[]): number {
    let total = 0;
    let batch = first;
    for (let round = 0; batch.length > 0; round++) {
      if (round > 1000) throw new Error('the node never stops producing effects');
      total += batch.length;
      const written = new Map<LinkId, number>();
      for (const effect of batch) {
        checkEffect(effect);
        if (effect.type === 'persist' && !this.allowed.has(`${effect.entry.key}\u0000${effect.entry.value}`)) {
          expect.fail(`the node stored ${JSON.stringify(effect.entry).slice(0, 200)}, a write no valid frame of this link carried`);
        }
        this.#carryOut(effect, written);
      }
      for (const [link, bytes] of written) if (this.open.has(link)) this.node.written(link, bytes);
      batch = readyEffects(this.node.takeReady());
    }
    return total;
  }

  #carryOut(effect: Effect, written: Map<LinkId, number>): void {
    switch (effect.type) {
      case 'send':
        if (this.open.has(effect.link) && !(this.stalled && effect.link !== this.helper)) written.set(effect.link, (written.get(effect.link) ?? 0) + effect.bytes);
        return;
      case 'close':
        // The socket closes; the adapter reports it (ws's 'close' event).
        if (this.open.delete(effect.link)) this.node.closed(effect.link, `closed by the node (${effect.code})`);
        if (effect.link === this.helper) this.helper = null;
        return;
      case 'dial':
        if (this.expectedDials.delete(effect.address)) {
          this.dials.set(effect.address, effect.link);
          this.open.add(effect.link);
        } else this.node.closed(effect.link, 'connection refused');
        return;
      default:
        return;
    }
  }

  /** Accepts an inbound connection. */
  accept(remote: string): LinkId {
    const link = this.node.accept(remote);
    this.open.add(link);
    return link;
  }

  /** Delivers a frame from the test (a handshake step), returning the messages the node sent on that link. */
  deliver(link: LinkId, message: object): Message[] {
    this.node.receive(link, JSON.stringify(message));
    return this.sentOn(link, readyEffects(this.node.takeReady()));
  }

  /** Settles effects, returning the messages among them sent on `link`. */
  sentOn(link: LinkId, effects: Effect[]): Message[] {
    const messages = effects.flatMap((effect) => (effect.type === 'send' && effect.link === link ? [effect.message] : []));
    this.settle(effects);
    return messages;
  }

  /** Makes the node dial a fresh address and opens that connection, as the adapter would. */
  dialFresh(): LinkId {
    const address = `upstream${this.#nextUpstream++}.test:7000`;
    this.expectedDials.add(address);
    this.node.addPeer(address);
    this.settle(readyEffects(this.node.takeReady()));
    const link = this.dials.get(address);
    if (link === undefined) throw new Error(`the node did not dial ${address}`);
    this.node.opened(link);
    return link;
  }

  /** Authenticates an inbound link (secured node) as `role`; returns the node's messages. */
  authenticate(link: LinkId, challenge: Message | undefined, role: 'client' | 'peer', nodeId?: string): Message[] {
    if (challenge?.type !== 'challenge') throw new Error(`expected a challenge, got ${JSON.stringify(challenge)}`);
    const nonce = '11'.repeat(16);
    const proof = authProof(SECRET, 'initiator', { role, acceptorId: challenge.nodeId, initiatorId: nodeId ?? '', acceptorNonce: challenge.nonce, initiatorNonce: nonce });
    const answers = this.deliver(link, { type: 'auth', role, ...(nodeId === undefined ? {} : { nodeId }), nonce, proof });
    expect(answers.map((m) => m.type)).to.deep.equal(['authenticated']);
    return answers;
  }

  /** Connects the second peer (inbound), so that forwards and peer lists have somewhere to go. */
  connectHelper(): void {
    const link = this.accept('10.0.0.2');
    const greeting = this.sentOn(link, readyEffects(this.node.takeReady()));
    if (this.scenario.secured) this.authenticate(link, greeting[0], 'peer', HELPER);
    const answers = this.deliver(link, { type: 'hello', protocol: 3, nodeId: HELPER, address: 'p2.test:1' });
    expect(answers[0]?.type).to.equal('welcome');
    this.helper = link;
  }

  /** The keys and values of the store now. */
  snapshot(): Map<string, string> {
    const store = new Map<string, string>();
    for (const entry of this.node.entries()) store.set(entry.key, entry.value);
    return store;
  }

  /** Notes the writes a frame the parser accepted may make. */
  allow(parsed: ParseResult): number {
    if (!parsed.ok) return 0;
    const message = parsed.message;
    const writes: { key: string; value: string }[] = [];
    if (message.type === 'set' && this.scenario.writes !== 'none') {
      writes.push(message);
      if (message.acks !== undefined) this.ackRounds++;
    }
    if (message.type === 'set-many' && this.scenario.writes !== 'none') writes.push(...message.entries);
    if (message.type === 'entries' && this.scenario.writes === 'any') writes.push(...message.entries);
    for (const { key, value } of writes) {
      this.allowed.add(`${key}\u0000${value}`);
      this.allowedKeys.add(key);
    }
    return message.type === 'set-many' ? message.entries.length : message.type === 'entries' ? message.entries.length : 0;
  }
}

/** A store to start from: a few of the keys frames use (one with a large value), and some others. */
function initialEntries(): Entry[] {
  const entries: Entry[] = [
    { key: 'k', value: 'v0', timestamp: FUZZ_START_MS - 1000, origin: 'p9' },
    { key: 'a', value: 'v0', timestamp: FUZZ_START_MS + 1000, origin: 'p9' },
    { key: BIG_KEY, value: 'x'.repeat(64_000), timestamp: FUZZ_START_MS - 1000, origin: 'p9' },
  ];
  for (let i = 0; i < 40; i++) entries.push({ key: `seed-${i}`, value: `value ${i}`, timestamp: FUZZ_START_MS - i, origin: 'p8' });
  return entries;
}

/** Checks one effect against the contract of the Effect type and docs/protocol.md. */
function checkEffect(effect: Effect): void {
  switch (effect.type) {
    case 'send': {
      expect(effect.bytes, 'a send effect\'s bytes').to.be.a('number').and.satisfy((bytes: number) => Number.isFinite(bytes) && bytes > 0);
      const text = effect.text;
      expect(text, 'a send effect\'s text is its message encoded').to.equal(encodeMessage(effect.message));
      expect(JSON.stringify(effect.message), 'JSON.stringify of a send effect\'s message writes its text').to.equal(text);
      expect(() => JSON.parse(text), `frame ${text.slice(0, 200)}`).not.to.throw();
      expect(text.isWellFormed(), 'a frame is well-formed Unicode (ws would mangle a lone surrogate)').to.equal(true);
      const bytes = utf8ByteLength(text);
      expect(bytes, `a ${effect.message.type} frame fits the frame limit`).to.be.at.most(MAX_MESSAGE_BYTES);
      expect(bytes, `the size estimate of a ${effect.message.type} frame (${effect.bytes}) is within the factor of JSON escaping`).to.be.at.most(6 * effect.bytes + 1024);
      const parsed = parseIncoming(text, bytes);
      if (!parsed.ok) expect.fail(`the node sent a ${effect.message.type} frame its peers refuse (${parsed.error.code}: ${parsed.error.message}): ${text.slice(0, 300)}`);
      if (effect.message.type === 'error') expect(ERROR_CODES, 'error codes').to.include(effect.message.code);
      return;
    }
    case 'close':
      expect(CLOSE_CODES_ALLOWED, 'close codes').to.include(effect.code);
      expect(Buffer.byteLength(effect.reason), `close reason ${JSON.stringify(effect.reason)}`).to.be.at.most(MAX_CLOSE_REASON_BYTES);
      return;
    case 'log':
      expect(['info', 'warn']).to.include(effect.level);
      expect(effect.message, 'a log line is one line').not.to.match(/[\n\r]/);
      expect(effect.message.length, `log line ${effect.message.slice(0, 200)}...`).to.be.at.most(MAX_LOG_LINE_LENGTH);
      return;
    case 'persist':
      expect(effect.entry.key.isWellFormed() && effect.entry.value.isWellFormed(), 'persisted entries are well-formed').to.equal(true);
      expect(Number.isSafeInteger(effect.seq) && effect.seq > 0, 'persist seq').to.equal(true);
      return;
    case 'cursor':
      expect(Number.isSafeInteger(effect.cursor.seq) && effect.cursor.seq >= 0, 'cursor seq').to.equal(true);
      return;
    case 'dial':
      // The address only: on main the dial effect no longer carries a URL (the adapter makes it, ws:// or wss://).
      expect(() => parseAddress(effect.address), `dial address ${effect.address}`).not.to.throw();
      return;
    case 'pause':
    case 'resume':
    case 'peer-added':
    case 'peer-removed':
      return;
    default: {
      const unknown: never = effect;
      expect.fail(`unknown effect ${JSON.stringify(unknown)}`);
    }
  }
}

/**
 * Every change of the store since it was made must be a write some valid
 * frame carried. (Between events the test checks the `persist` effects and
 * the key count instead: reading the whole store, its large value included,
 * after every frame made the test ten times slower.)
 */
function checkStore(harness: Harness): void {
  const initial = new Map(initialEntries().map((entry) => [entry.key, entry.value]));
  const now = harness.snapshot();
  for (const [key, value] of now) {
    if (initial.get(key) === value) continue;
    if (!harness.allowed.has(`${key}\u0000${value}`)) expect.fail(`key ${JSON.stringify(key).slice(0, 80)} holds ${JSON.stringify(value).slice(0, 80)}, which no valid write of this link carried`);
  }
  for (const key of initial.keys()) if (!now.has(key)) expect.fail(`key ${JSON.stringify(key)} was removed`);
}

/** The store holds at most the initial keys plus those of valid writes. */
function checkKeyCount(harness: Harness): void {
  expect(harness.node.stats().keys, 'keys stay within the initial ones plus those of valid writes').to.be.at.most(harness.initialKeys + harness.allowedKeys.size);
}

/** Effects one event may cause: a constant (answers, logs, a handshake, a close and what follows), a few per entry, one per pending ack round. */
function effectBound(harness: Harness, entries: number): number {
  return 64 + 3 * entries + harness.ackRounds;
}

/** Delivers one step to the fuzzed link and checks everything it caused. */
function runStep(harness: Harness, link: LinkId, step: Step): LinkId {
  if (step.jumpMs !== null) {
    harness.nowMs += step.jumpMs;
    if (harness.helper !== null) harness.node.receive(harness.helper, '{"type":"ping"}');
    harness.node.tick();
    const count = harness.settle(readyEffects(harness.node.takeReady()));
    expect(count, 'effects of a tick').to.be.at.most(effectBound(harness, 0));
    checkKeyCount(harness);
  }
  if (!harness.open.has(link)) {
    // The node closed the fuzzed link: connect again, as a client or peer would, a bounded number of times.
    if (harness.connections >= 20) return link;
    link = harness.scenario.connect(harness);
    harness.connections++;
  }
  const { text } = step.frame;
  const byteLength = step.withByteLength ? Buffer.byteLength(text, 'utf8') : undefined;
  const parsed = parseIncoming(text, byteLength);
  const entries = harness.allow(parsed);
  const keysBefore = harness.node.stats().keys;
  harness.node.receive(link, text, byteLength);
  const effects = readyEffects(harness.node.takeReady());
  if (!parsed.ok) {
    // Refused by the parser: at most one error (its id, or null), a documented close, log lines; nothing else.
    const errors = effects.filter((effect) => effect.type === 'send');
    expect(errors.length, 'answers to a bad frame').to.be.at.most(1);
    for (const effect of effects) {
      expect(['send', 'close', 'log'], `effect of a bad frame: ${JSON.stringify(effect).slice(0, 200)}`).to.include(effect.type);
      if (effect.type === 'send') {
        expect(effect.link).to.equal(link);
        expect(effect.message.type).to.equal('error');
        if (effect.message.type === 'error') expect([parsed.id, null]).to.include(effect.message.id);
      }
      if (effect.type === 'close') expect(Object.values(CLOSE_CODES) as number[]).to.include(effect.code);
    }
    // No persist effect above; nor a change that would not show as one.
    expect(harness.node.stats().keys, 'a bad frame adds no key').to.equal(keysBefore);
  } else if (harness.scenario.open && (parsed.message.type === 'reply' || parsed.message.type === 'error')) {
    expect(effects.filter((effect) => effect.type === 'send'), 'answers are never answered').to.deep.equal([]);
  }
  const count = harness.settle(effects);
  expect(count, `effects of one frame (${step.frame.how})`).to.be.at.most(effectBound(harness, entries));
  checkKeyCount(harness);
  return link;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'a fresh inbound link (a client, until it says hello)',
    secured: false,
    writes: 'any',
    open: true,
    connect: (h) => h.accept('10.0.0.1'),
  },
  {
    name: 'an inbound link after a valid hello (a peer)',
    secured: false,
    writes: 'any',
    open: true,
    connect: (h) => {
      const link = h.accept('10.0.0.1');
      expect(h.deliver(link, { type: 'hello', protocol: 3, nodeId: 'p1', address: 'p1.test:1' })[0]?.type).to.equal('welcome');
      return link;
    },
  },
  {
    name: 'an outbound link right after it opened (waiting for welcome)',
    secured: false,
    writes: 'any',
    open: true,
    connect: (h) => {
      const link = h.dialFresh();
      expect(h.sentOn(link, readyEffects(h.node.takeReady())).map((m) => m.type)).to.deep.equal(['hello']);
      return link;
    },
  },
  {
    name: 'an outbound link after welcome (a peer)',
    secured: false,
    writes: 'any',
    open: true,
    connect: (h) => {
      const link = h.dialFresh();
      h.settle(readyEffects(h.node.takeReady()));
      expect(h.deliver(link, { type: 'welcome', protocol: 3, nodeId: 'p1', address: 'p1.test:1' }).map((m) => m.type)).to.include('catch-up');
      return link;
    },
  },
  {
    name: 'a node with a secret: an inbound link that never authenticates',
    secured: true,
    writes: 'none',
    open: false,
    connect: (h) => {
      const link = h.accept('10.0.0.1');
      expect(h.sentOn(link, readyEffects(h.node.takeReady())).map((m) => m.type)).to.deep.equal(['challenge']);
      return link;
    },
  },
  {
    name: 'a node with a secret: an inbound link authenticated as a client',
    secured: true,
    writes: 'requests',
    open: true,
    connect: (h) => {
      const link = h.accept('10.0.0.1');
      h.authenticate(link, h.sentOn(link, readyEffects(h.node.takeReady()))[0], 'client');
      return link;
    },
  },
  {
    name: 'a node with a secret: an inbound link authenticated as a peer, after hello',
    secured: true,
    writes: 'any',
    open: true,
    connect: (h) => {
      const link = h.accept('10.0.0.1');
      h.authenticate(link, h.sentOn(link, readyEffects(h.node.takeReady()))[0], 'peer', 'p1');
      expect(h.deliver(link, { type: 'hello', protocol: 3, nodeId: 'p1', address: 'p1.test:1' })[0]?.type).to.equal('welcome');
      return link;
    },
  },
  {
    name: 'a node with a secret: an outbound link waiting for the challenge',
    secured: true,
    writes: 'none',
    open: false,
    connect: (h) => {
      const link = h.dialFresh();
      expect(h.sentOn(link, readyEffects(h.node.takeReady()))).to.deep.equal([]);
      return link;
    },
  },
  {
    name: 'a node with a secret: an outbound link authenticated both ways, after welcome',
    secured: true,
    writes: 'any',
    open: true,
    connect: (h) => {
      const link = h.dialFresh();
      h.settle(readyEffects(h.node.takeReady()));
      const acceptorNonce = '22'.repeat(16);
      const [auth, hello] = h.deliver(link, { type: 'challenge', nodeId: 'p1', nonce: acceptorNonce });
      if (auth?.type !== 'auth' || hello?.type !== 'hello') throw new Error('expected auth and hello in answer to the challenge');
      const proof = authProof(SECRET, 'acceptor', { role: 'peer', acceptorId: 'p1', initiatorId: FUZZ_NODE_ID, acceptorNonce, initiatorNonce: auth.nonce });
      expect(h.deliver(link, { type: 'authenticated', proof })).to.deep.equal([]);
      expect(h.deliver(link, { type: 'welcome', protocol: 3, nodeId: 'p1', address: 'p1.test:1' }).map((m) => m.type)).to.include('catch-up');
      return link;
    },
  },
];

const jumpArb = fc.option(
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
    { weight: 3, arbitrary: fc.integer({ min: 2_000, max: 70_000 }) },
    { weight: 1, arbitrary: fc.constantFrom(86_400_000, -1_000, -60_000) },
  ),
  { freq: 3 },
);
const stepArb: fc.Arbitrary<Step> = fc.record({ frame: frameArb, withByteLength: fc.boolean(), jumpMs: jumpArb });
const runArb = fc.record({ seed: fc.integer(), stalled: fc.integer({ min: 0, max: 99 }).map((n) => n < 15), steps: fc.array(stepArb, { minLength: 1, maxLength: 40, size: 'max' }) });

describe('fuzz: a core fed random and mutated frames', function () {
  this.timeout(fuzzTimeoutMs(60_000));

  it('reads ErrorCode from src/errors.ts', () => {
    expect(ERROR_CODES).to.include('BAD_MESSAGE').and.to.include('AUTH_REQUIRED');
    expect(ERROR_CODES.size).to.be.at.least(10);
  });

  SCENARIOS.forEach((scenario, index) => {
    it(`keeps its contract on ${scenario.name}`, () => {
      fc.assert(
        fc.property(runArb, ({ seed, stalled, steps }) => {
          const harness = new Harness(scenario, seed, stalled);
          harness.connectHelper();
          let link = scenario.connect(harness);
          for (const step of steps) link = runStep(harness, link, step);
          checkStore(harness);
        }),
        fuzzParameters(60, index),
      );
    });
  });
});

/**
 * Bugs this fuzzing found, each with its minimal input, kept as regression
 * tests. A new one goes here as a skipped test until src is fixed (and, while
 * it is open, the properties above must not deliver frames that hit it, or
 * they would find it again instead of the next one).
 */
describe('fuzz: the bugs it found', () => {
  const nowMs = FUZZ_START_MS;
  const plainNode = () => createNode({ id: FUZZ_NODE_ID, address: FUZZ_ADDRESS, now: () => nowMs, random: mulberry32(1), epoch: FUZZ_EPOCH });
  const deepArray = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  // Found by the fuzzing: protocol.ts called String() on unchecked fields (validate, case 'error': String(m.code), String(m.message)).
  it('takes an error frame whose code or message is not a string without throwing (bug 1 of the fuzzing: TypeError/RangeError out of receive)', () => {
    for (const text of [
      '{"type":"error","id":null,"code":{"toString":""},"message":""}',
      '{"type":"error","id":null,"code":"","message":{"valueOf":1,"toString":1}}',
      `{"type":"error","id":null,"code":${deepArray(10_000)},"message":""}`,
    ]) {
      const node = plainNode();
      const link = node.accept('10.0.0.1');
      expect(() => node.receive(link, text), text.slice(0, 80)).not.to.throw();
      expect(readyEffects(node.takeReady()).filter((effect) => effect.type === 'send'), 'answers are never answered').to.deep.equal([]);
    }
  });

  // The same, second place: requireString and sequenceNumber built their message with String(m.type), and for `since` m was the peer's object.
  it('refuses a catch-up whose since has a "type" that is not a string with BAD_MESSAGE (bug 1 of the fuzzing: TypeError out of receive)', () => {
    const node = plainNode();
    const link = node.accept('10.0.0.1');
    node.receive(link, JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'p1', address: 'p1.test:1' }));
    readyEffects(node.takeReady());
    expect(() => node.receive(link, '{"type":"catch-up","since":{"type":{"toString":1}}}')).not.to.throw();
    const answers = readyEffects(node.takeReady()).flatMap((effect) => (effect.type === 'send' ? [effect.message] : []));
    expect(answers).to.have.length(1);
    expect(answers[0]).to.include({ type: 'error', code: 'BAD_MESSAGE' });
  });

  // The same before authentication: a node with a secret parses a frame before it checks the connection is authenticated.
  it('refuses that frame from a connection that has not authenticated with AUTH_REQUIRED, not an exception (bug 1 of the fuzzing)', () => {
    const node = createNode({ id: FUZZ_NODE_ID, now: () => nowMs, random: mulberry32(1), secrets: [SECRET], randomBytes: randomBytesFrom(mulberry32(2)) });
    const link = node.accept('10.0.0.1');
    readyEffects(node.takeReady());
    expect(() => node.receive(link, '{"type":"error","code":{"toString":1}}')).not.to.throw();
    const effects = readyEffects(node.takeReady());
    expect(effects.find((effect) => effect.type === 'close')).to.include({ code: CLOSE_CODES.AUTH_REQUIRED });
  });

  // Found by the fuzzing: hello/welcome's address had no length limit; node.ts keeps it as link.address (logs, peers, peer-list).
  it('keeps the address a peer announces within the limits of what it relays and logs (bug 2 of the fuzzing: unbounded announced address)', () => {
    let now = FUZZ_START_MS;
    const node = createNode({ id: FUZZ_NODE_ID, address: FUZZ_ADDRESS, now: () => now, random: mulberry32(1), epoch: FUZZ_EPOCH });
    const other = node.accept('10.0.0.2');
    node.receive(other, JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'p2', address: 'p2.test:1' }));
    const link = node.accept('10.0.0.1');
    node.receive(link, JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'p1', address: `${'a'.repeat(100_000)}:1` }));
    now += 31_000;
    node.receive(other, '{"type":"ping"}');
    node.receive(link, '{"type":"ping"}');
    node.tick();
    for (const effect of readyEffects(node.takeReady())) {
      if (effect.type === 'log') expect(effect.message.length, effect.message.slice(0, 80)).to.be.at.most(MAX_LOG_LINE_LENGTH);
      if (effect.type === 'send') expect(parseIncoming(encodeMessage(effect.message)).ok, `a ${effect.message.type} frame p2 accepts`).to.equal(true);
    }
  });

  // Found by the fuzzing: caught-up's epoch had no length limit; node.ts keeps it as the peer's cursor, persisted, and echoes it in catch-up.
  it('keeps no more than a short epoch per peer from caught-up, and estimates the catch-up it sends back (bug 3 of the fuzzing: unbounded cursor epoch)', () => {
    const node = plainNode();
    const hello = JSON.stringify({ type: 'hello', protocol: 3, nodeId: 'p1', address: 'p1.test:1' });
    const first = node.accept('10.0.0.1');
    node.receive(first, hello);
    node.receive(first, JSON.stringify({ type: 'caught-up', epoch: 'e'.repeat(100_000), seq: 1, full: true, entries: 0 }));
    node.closed(first, 'gone');
    const again = node.accept('10.0.0.1');
    node.receive(again, hello);
    for (const effect of readyEffects(node.takeReady())) {
      if (effect.type === 'send') expect(utf8ByteLength(encodeMessage(effect.message)), `a ${effect.message.type} frame`).to.be.at.most(6 * effect.bytes + 1024);
    }
    expect(JSON.stringify(node.cursors()).length, 'the cursors a peer can make the node keep').to.be.at.most(1024);
  });

  // Found by the fuzzing: flow-control.ts's frameLength counted any error frame as 128 bytes; parseAddress's message quotes the address twice.
  it('pauses a client that does not read its BAD_ADDRESS answers before twice its outbound budget is queued (bug 5 of the fuzzing: error frames estimated at 128 bytes)', () => {
    const node = plainNode();
    const link = node.accept('10.0.0.1');
    const frame = JSON.stringify({ type: 'remove-peer', id: 1, address: `a:1${'\u0001'.repeat(297)}` });
    let queuedBytes = 0;
    for (let i = 0; i < 40_000; i++) {
      node.receive(link, frame);
      const effects = readyEffects(node.takeReady());
      for (const effect of effects) if (effect.type === 'send') queuedBytes += utf8ByteLength(encodeMessage(effect.message));
      if (effects.some((effect) => effect.type === 'pause')) break;
    }
    expect(queuedBytes, 'bytes queued for a client that reads nothing, when it is paused').to.be.at.most(2 * OUTBOUND_BUDGET_BYTES);
  });
});
