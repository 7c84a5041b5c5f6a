/**
 * Frames for fuzzing (fast-check arbitraries): a valid frame of every message
 * type of docs/protocol.md, with every field, optional ones included, and the
 * same frames damaged in the ways a broken or hostile sender damages them.
 * Shared by the core's fuzz test and the adapter's
 * (packages/node/test/fuzz-adapter.test.ts).
 *
 * Valid frames are built as plain JSON objects in their wire form (entries as
 * tuples); mutations work on that JSON tree, then on the text. Values JSON
 * cannot hold as such (`1e999`, which parses to Infinity; nesting deeper than
 * JSON.stringify could recurse; an own key `__proto__`) go in as raw text
 * behind a placeholder.
 */
import fc from 'fast-check';
import { MAX_ACK_ID_LENGTH, MAX_ACKS, MAX_ADDRESS_LENGTH, MAX_KEY_BYTES, MAX_KEYS_CURSOR_LENGTH, MAX_NODE_ID_LENGTH, MAX_REQUEST_ID_LENGTH } from '../../src/index.js';
import { BUCKET_COUNT, DIGEST_HEX_DIGITS, MAX_PEER_LIST } from '../../src/internal.js';

/** A JSON value as a frame holds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A frame to deliver, and how it was made (for counterexamples and statistics). */
export interface Frame {
  readonly text: string;
  readonly how: string;
}

/** Longest frame text a counterexample prints whole; the seed and path replay the rest. */
const PRINTED_TEXT_LENGTH = 400;

/** A frame, printed short in counterexamples (fast-check prints values with their toStringMethod). */
export function frame(text: string, how: string): Frame {
  return {
    text,
    how,
    [fc.toStringMethod]: () => {
      const shown = text.length <= PRINTED_TEXT_LENGTH ? text : `${text.slice(0, PRINTED_TEXT_LENGTH / 2)}[... ${text.length - PRINTED_TEXT_LENGTH / 2 - 100} more characters ...]${text.slice(-100)}`;
      return `{text: ${JSON.stringify(shown)} (${text.length} characters), how: ${JSON.stringify(how)}}`;
    },
  } as Frame;
}

/** The fuzzed node's id, epoch and listening address: frames name them now and then, to reach the paths that compare them. */
export const FUZZ_NODE_ID = 'fz';
export const FUZZ_EPOCH = 'fuzz-epoch';
export const FUZZ_ADDRESS = 'fz.test:7000';
/** The fuzzed node's clock starts here, in ms; timestamps are drawn around it. */
export const FUZZ_START_MS = 1_700_000_000_000;

const DAY_MS = 86_400_000;

// --- fields --------------------------------------------------------------

/** Any UTF-16 unit, lone surrogates included. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));

/** Short text of every kind: ASCII, any code point, any UTF-16 unit (lone surrogates). */
export const textArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: anyUnit, maxLength: 6 }),
);

const nodeIdArb = fc.oneof(fc.constantFrom('p1', 'p2', 'p3', FUZZ_NODE_ID, 'x'.repeat(64)), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/));
/** Few keys, so that frames write, read and conflict on the same ones; the fuzzed node holds `big`, a 64 KB value (reading it fills a stalled reader's budget). */
export const BIG_KEY = 'big';
const keyArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('k', 'MonChamp', 'a', 'b', '😀', 'ключ', 'k'.repeat(1024), BIG_KEY) }, fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }));
const valueArb = fc.oneof(fc.constantFrom('', 'v', '42', 'x'.repeat(4096), '\u0001'.repeat(64)), fc.string({ unit: 'binary', maxLength: 24 }));
const idArb: fc.Arbitrary<Json> = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: MAX_REQUEST_ID_LENGTH }));
const portArb = fc.integer({ min: 1, max: 65535 });
const addressArb = fc.oneof(
  fc.constantFrom('127.0.0.1:7002', '10.0.0.2:7000', '[::1]:7003', 'ws://peer.test:7004', FUZZ_ADDRESS, 'p1.test:1', 'p2.test:1'),
  fc.tuple(fc.ipV4(), portArb).map(([ip, port]) => `${ip}:${port}`),
  fc.tuple(fc.domain(), portArb).map(([host, port]) => `${host}:${port}`),
  textArb,
);
/** Addresses a peer list may carry: host:port, without the malformed text of addressArb. */
const peerListAddressArb = fc.oneof(
  fc.constantFrom('127.0.0.1:7002', '10.0.0.2:7000', '[::1]:7003', 'ws://peer.test:7004', FUZZ_ADDRESS, 'p1.test:1', 'p2.test:1'),
  fc.tuple(fc.ipV4(), portArb).map(([ip, port]) => `${ip}:${port}`),
);
const timestampArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: FUZZ_START_MS - DAY_MS, max: FUZZ_START_MS + DAY_MS }) },
  fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);
const seqArb = fc.oneof(fc.nat({ max: 1000 }), fc.constant(Number.MAX_SAFE_INTEGER));
/** `digits` lowercase hex digits (8 at a time: generating them one by one made a `buckets` frame the slowest of all). */
const hexArb = (digits: number) =>
  fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: digits / 8, maxLength: digits / 8 }).map((words) => words.map((word) => word.toString(16).padStart(8, '0')).join(''));
const entryTupleArb = fc.tuple(keyArb, valueArb, timestampArb, nodeIdArb);
const ackIdArb = fc.oneof(fc.constantFrom(`${FUZZ_EPOCH}.1`, `${FUZZ_EPOCH}.2`, 'other.1'), fc.string({ maxLength: MAX_ACK_ID_LENGTH }));
const cursorArb = fc.oneof(fc.tuple(fc.nat({ max: 64 }), hexArb(8)).map(([slot, hash]) => `${slot}.${hash}`), fc.string({ maxLength: MAX_KEYS_CURSOR_LENGTH }));

/** The codes an error frame may carry (any string reaches the node; these are the real ones). */
const errorCodeArb = fc.oneof(fc.constantFrom('BAD_JSON', 'BAD_MESSAGE', 'AUTH_FAILED', 'PROTOCOL_MISMATCH', 'STORAGE_FAILED'), fc.string({ maxLength: 70 }));

/** An object record whose optional fields are sometimes there. */
function message<T extends Record<string, fc.Arbitrary<unknown>>>(fields: T, required: (keyof T & string)[]): fc.Arbitrary<Json> {
  return fc.record(fields, { requiredKeys: required }) as unknown as fc.Arbitrary<Json>;
}
const type = <T extends string>(name: T) => fc.constant(name);

// --- valid frames --------------------------------------------------------

/** Client requests (docs/protocol.md, "Client ↔ node"). */
export const requestArbs: Record<string, fc.Arbitrary<Json>> = {
  get: message({ type: type('get'), id: idArb, key: keyArb }, ['type', 'id', 'key']),
  set: message(
    { type: type('set'), id: idArb, key: keyArb, value: valueArb, acks: fc.oneof(fc.integer({ min: 1, max: MAX_ACKS }), fc.constant('all')), timeoutMs: fc.integer({ min: 1, max: 60_000 }) },
    ['type', 'id', 'key', 'value'],
  ),
  'set-many': message({ type: type('set-many'), id: idArb, entries: fc.array(fc.record({ key: keyArb, value: valueArb }), { maxLength: 12 }) }, ['type', 'id', 'entries']),
  keys: message({ type: type('keys'), id: idArb, cursor: cursorArb, limit: fc.integer({ min: 1, max: 1000 }) }, ['type', 'id']),
  peers: message({ type: type('peers'), id: idArb }, ['type', 'id']),
  stats: message({ type: type('stats'), id: idArb }, ['type', 'id']),
  'add-peer': message({ type: type('add-peer'), id: idArb, address: addressArb }, ['type', 'id', 'address']),
  'remove-peer': message({ type: type('remove-peer'), id: idArb, address: addressArb }, ['type', 'id', 'address']),
};

/** Messages between peers (docs/protocol.md, "Node ↔ node"). */
export const peerArbs: Record<string, fc.Arbitrary<Json>> = {
  hello: message({ type: type('hello'), protocol: fc.oneof({ weight: 5, arbitrary: fc.constant(3) }, fc.integer()), nodeId: nodeIdArb, address: addressArb }, ['type', 'protocol', 'nodeId', 'address']),
  welcome: message({ type: type('welcome'), protocol: fc.oneof({ weight: 5, arbitrary: fc.constant(3) }, fc.integer()), nodeId: nodeIdArb, address: addressArb }, ['type', 'protocol', 'nodeId', 'address']),
  entries: message(
    { type: type('entries'), entries: fc.array(entryTupleArb, { maxLength: 8 }), seen: fc.array(nodeIdArb, { maxLength: 8 }), upTo: seqArb, ack: ackIdArb },
    ['type', 'entries'],
  ),
  'catch-up': message({ type: type('catch-up'), since: fc.option(fc.record({ epoch: fc.oneof(fc.constant(FUZZ_EPOCH), fc.string({ maxLength: 12 })), seq: seqArb })) }, ['type', 'since']),
  'caught-up': message({ type: type('caught-up'), epoch: fc.string({ maxLength: 12 }), seq: seqArb, full: fc.boolean(), entries: seqArb }, ['type', 'epoch', 'seq', 'full', 'entries']),
  ping: message({ type: type('ping'), upTo: seqArb }, ['type']),
  digest: message({ type: type('digest'), root: hexArb(DIGEST_HEX_DIGITS) }, ['type', 'root']),
  buckets: message({ type: type('buckets'), digests: fc.array(fc.oneof(fc.constant('0'.repeat(DIGEST_HEX_DIGITS)), hexArb(DIGEST_HEX_DIGITS)), { minLength: BUCKET_COUNT, maxLength: BUCKET_COUNT }) }, ['type', 'digests']),
  'bucket-request': message({ type: type('bucket-request'), buckets: fc.uniqueArray(fc.integer({ min: 0, max: BUCKET_COUNT - 1 }), { maxLength: BUCKET_COUNT }) }, ['type', 'buckets']),
  ack: message({ type: type('ack'), ack: ackIdArb, node: nodeIdArb, ok: fc.boolean() }, ['type', 'ack', 'node', 'ok']),
  // At most MAX_PEER_LIST host:port addresses: a longer list or a bad address is BAD_MESSAGE.
  'peer-list': message({ type: type('peer-list'), addresses: fc.array(peerListAddressArb, { maxLength: MAX_PEER_LIST }) }, ['type', 'addresses']),
};

/** The authentication handshake (auth.ts); a random proof never checks out, which is the point. */
export const authArbs: Record<string, fc.Arbitrary<Json>> = {
  challenge: message({ type: type('challenge'), nodeId: nodeIdArb, nonce: hexArb(32) }, ['type', 'nodeId', 'nonce']),
  auth: fc.oneof(
    message({ type: type('auth'), role: type('client'), nonce: hexArb(32), proof: hexArb(64) }, ['type', 'role', 'nonce', 'proof']),
    message({ type: type('auth'), role: type('peer'), nodeId: nodeIdArb, nonce: hexArb(32), proof: hexArb(64) }, ['type', 'role', 'nodeId', 'nonce', 'proof']),
  ),
  authenticated: message({ type: type('authenticated'), proof: hexArb(64) }, ['type', 'proof']),
};

/** Answers, which a node must take without answering them. */
export const answerArbs: Record<string, fc.Arbitrary<Json>> = {
  reply: message({ type: type('reply'), id: idArb, result: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, acks: fc.nat(), cursor: fc.string(), omitted: fc.nat() }, ['type', 'id', 'result']),
  error: message({ type: type('error'), id: fc.option(idArb), code: errorCodeArb, message: fc.string({ maxLength: 80 }), acks: fc.nat() }, ['type', 'id', 'code', 'message']),
};

/** Every message type of docs/protocol.md, by name. */
export const MESSAGE_ARBS: Record<string, fc.Arbitrary<Json>> = { ...requestArbs, ...peerArbs, ...authArbs, ...answerArbs };

/** A valid frame of any type, each type equally likely. */
export const validMessageArb: fc.Arbitrary<Json> = fc.oneof(...Object.values(MESSAGE_ARBS));

// --- mutations -----------------------------------------------------------

/** Numbers at and past every limit, as JSON text: `1e999` parses to Infinity. */
const RAW_NUMBERS = ['-1', '-0', '0.5', '1e999', '-1e999', '9007199254740993', '1e308', '-1e308', '5e-324', '4294967296', '256', '65536', '1025', '60001', '1e21'];
/** Strings that look like numbers to a careless parser. */
const NUMBER_LIKE_STRINGS = ['NaN', 'Infinity', '-Infinity', '-0', '1e999', '0x10', ' 1', '1 ', '', '3', 'null', 'true', '[]', '{}'];
/** Keys that mean something to JavaScript objects. */
const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty', 'type', 'id', ''];
/** Own keys of an object that shadow what JavaScript calls on it (String() calls toString, then valueOf). */
const HOSTILE_KEYS = ['toString', 'valueOf', 'toJSON', 'constructor', '__proto__'];
/** Lengths just under and over the limits of node ids, ids, acks, addresses and keys; and of values (rarer: they cost). */
const LENGTHS = [MAX_NODE_ID_LENGTH, MAX_ACK_ID_LENGTH, MAX_ADDRESS_LENGTH, MAX_KEY_BYTES].flatMap((limit) => [limit, limit + 1]).concat(4096);
const LONG_LENGTHS = [43_690, 262_142, 262_145];

const jsonValueArb = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;

/** A mutation that copies a part of a frame keeps the frame within about this many characters. */
const MAX_MUTATED_LENGTH = 2 * 1024 * 1024;

/** One change to a frame's JSON tree; `at` picks the place (modulo the number of places). */
export type Mutation =
  | { readonly kind: 'drop'; readonly at: number }
  | { readonly kind: 'retype'; readonly at: number; readonly value: Json }
  | { readonly kind: 'number'; readonly at: number; readonly raw: string }
  | { readonly kind: 'number-like'; readonly at: number; readonly text: string }
  | { readonly kind: 'nest'; readonly at: number; readonly depth: number; readonly open: '[' | '{"a":' }
  | { readonly kind: 'long'; readonly at: number; readonly length: number; readonly unit: string | number; readonly before: boolean }
  | { readonly kind: 'surrogate'; readonly at: number; readonly unit: string; readonly position: number }
  | { readonly kind: 'unicode'; readonly at: number; readonly text: string }
  | { readonly kind: 'extra'; readonly at: number; readonly key: string; readonly value: Json }
  | { readonly kind: 'hostile-object'; readonly at: number; readonly key: string; readonly value: Json }
  | { readonly kind: 'wrong-type'; readonly value: Json }
  | { readonly kind: 'shape'; readonly at: number }
  | { readonly kind: 'many'; readonly at: number; readonly count: number };

// Unbiased: fast-check favours small numbers, and place 0 is always the `type` field.
const at = fc.noBias(fc.nat());
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop'), at }),
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('retype'), at, value: jsonValueArb }) },
  fc.record({ kind: fc.constant('number'), at, raw: fc.oneof(fc.constantFrom(...RAW_NUMBERS), fc.double().filter(Number.isFinite).map(String)) }),
  fc.record({ kind: fc.constant('number-like'), at, text: fc.constantFrom(...NUMBER_LIKE_STRINGS) }),
  fc.record({ kind: fc.constant('nest'), at, depth: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 64 }) }, fc.constantFrom(1000, 10_000, 100_000)), open: fc.constantFrom('[' as const, '{"a":' as const) }),
  fc.record({ kind: fc.constant('long'), at, length: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...LENGTHS) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 5000 }) }, fc.constantFrom(...LONG_LENGTHS)), unit: fc.oneof(fc.constantFrom('a', '\\', '"', '\u0001', 'é', '€', '😀', '.'), fc.nat()), before: fc.boolean() }),
  fc.record({ kind: fc.constant('surrogate'), at, unit: fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff', '\ud83d'), position: fc.nat() }),
  fc.record({ kind: fc.constant('unicode'), at, text: fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: anyUnit, maxLength: 12 }), fc.constantFrom('\u2028', '\u202e', '\u001b[2J', '\r\n', '\u0000', '\ufeff')) }),
  fc.record({ kind: fc.constant('extra'), at, key: fc.oneof(fc.constantFrom(...SPECIAL_KEYS), fc.string({ maxLength: 8 })), value: jsonValueArb }),
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('hostile-object'), at, key: fc.constantFrom(...HOSTILE_KEYS), value: jsonValueArb }) },
  fc.record({ kind: fc.constant('wrong-type'), value: fc.oneof(fc.constantFrom<Json>(...Object.keys(MESSAGE_ARBS), 'GET', 'set ', 'unknown', '', null, 3, true, [], {}), fc.string({ maxLength: 12 })) }),
  fc.record({ kind: fc.constant('shape'), at }),
  fc.record({ kind: fc.constant('many'), at, count: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(33, 65, 257, 1025) }, fc.constant(10_001)) }),
);

/** A place in a JSON tree: the container and the key or index there. */
interface Place {
  readonly parent: Json[] | { [key: string]: Json };
  readonly key: string | number;
}

/** Every place under `value`, depth first (the root has none: it is not inside anything). */
function places(value: Json, found: Place[] = []): Place[] {
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      found.push({ parent: value, key: index });
      places(item, found);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      found.push({ parent: value, key });
      places(value[key]!, found);
    }
  }
  return found;
}

/** Every object in a JSON tree, the root first. */
function objects(value: Json, found: { [key: string]: Json }[] = []): { [key: string]: Json }[] {
  if (Array.isArray(value)) {
    for (const item of value) objects(item, found);
  }
  else if (value !== null && typeof value === 'object') {
    found.push(value);
    for (const key of Object.keys(value)) objects(value[key]!, found);
  }
  return found;
}

/** Sets an own property, even `__proto__`, as JSON.parse would. */
function setOwn(object: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}

function put(place: Place, value: Json): void {
  if (Array.isArray(place.parent)) place.parent[place.key as number] = value;
  else setOwn(place.parent, place.key as string, value);
}

function get(place: Place): Json {
  return Array.isArray(place.parent) ? place.parent[place.key as number]! : place.parent[place.key as string]!;
}

/** Text that replaces a placeholder string once the tree is written out. */
class RawTexts {
  readonly #texts: string[] = [];
  placeholder(raw: string): string {
    this.#texts.push(raw);
    return `§RAW${this.#texts.length - 1}§`;
  }
  /** Characters of `value` as JSON once its placeholders are replaced. */
  length(value: Json): number {
    const text = JSON.stringify(value) ?? 'null';
    let length = text.length;
    for (const match of text.matchAll(/"§RAW(\d+)§"/g)) length += this.#texts[Number(match[1])]!.length;
    return length;
  }
  /** The tree as JSON, with each placeholder (written as a JSON string) replaced by its raw text. */
  write(value: Json): string {
    const text = JSON.stringify(value) ?? 'null';
    if (this.#texts.length === 0) return text;
    return text.replace(/"§RAW(\d+)§"/g, (_, index: string) => this.#texts[Number(index)]!);
  }
}

/** Applies one mutation to a tree (in place; the root may be replaced: the new root is returned). */
function mutate(root: Json, given: Mutation, raw: RawTexts): Json {
  // Generated values may be shared between runs (constants, shrinking): never change them.
  const mutation = structuredClone(given);
  if (mutation.kind === 'wrong-type') {
    if (root !== null && typeof root === 'object' && !Array.isArray(root)) setOwn(root, 'type', mutation.value);
    return root;
  }
  if (mutation.kind === 'extra') {
    const targets = objects(root);
    if (targets.length === 0) return root;
    setOwn(targets[mutation.at % targets.length]!, mutation.key, mutation.value);
    return root;
  }
  const all = places(root);
  if (all.length === 0) return mutation.kind === 'shape' ? [root] : root;
  const place = all[mutation.at % all.length]!;
  const current = get(place);
  switch (mutation.kind) {
    case 'drop':
      if (Array.isArray(place.parent)) place.parent.splice(place.key as number, 1);
      else delete place.parent[place.key as string];
      return root;
    case 'retype':
      put(place, mutation.value);
      return root;
    case 'hostile-object': {
      // An object whose own key shadows what JavaScript looks up on every object (String() calls toString, then valueOf).
      const object: { [key: string]: Json } = {};
      setOwn(object, mutation.key, mutation.value);
      put(place, object);
      return root;
    }
    case 'number':
      put(place, raw.placeholder(mutation.raw));
      return root;
    case 'number-like':
      put(place, mutation.text);
      return root;
    case 'nest':
      put(place, raw.placeholder(`${mutation.open.repeat(mutation.depth)}1${(mutation.open === '[' ? ']' : '}').repeat(mutation.depth)}`));
      return root;
    case 'long': {
      const base = typeof current === 'string' ? current : '';
      // A number picks a character of the string itself: a long string that still has its shape (a host name of many digits).
      const unit = typeof mutation.unit === 'string' ? mutation.unit : base === '' ? 'a' : base[mutation.unit % base.length]!;
      const filler = unit.repeat(Math.ceil(mutation.length / unit.length));
      put(place, mutation.before ? filler + base : base + filler);
      return root;
    }
    case 'surrogate': {
      const base = typeof current === 'string' ? current : '';
      const position = mutation.position % (base.length + 1);
      put(place, base.slice(0, position) + mutation.unit + base.slice(position));
      return root;
    }
    case 'unicode':
      put(place, typeof current === 'string' ? current + mutation.text : mutation.text);
      return root;
    case 'shape':
      // An object where an array belongs, and the other way round.
      if (Array.isArray(current)) put(place, Object.fromEntries(current.map((item, index) => [String(index), item])));
      else if (current !== null && typeof current === 'object') put(place, Object.values(current));
      else put(place, [current]);
      return root;
    case 'many': {
      // A list past its limit (set-many entries, buckets, seen, peer-list addresses), made of copies of its own first item,
      // cut to about 2 MiB of text: past 1 MiB the frame is refused whole anyway.
      const item = Array.isArray(current) && current.length > 0 ? current[0]! : current;
      const count = Math.min(mutation.count, Math.floor(MAX_MUTATED_LENGTH / (raw.length(item) + 1)));
      put(place, Array.from({ length: count }, () => structuredClone(item)));
      return root;
    }
  }
}

/** Changes to the text itself, after the tree is written. */
export type TextMutation =
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'splice'; readonly at: number; readonly remove: number; readonly insert: string }
  | { readonly kind: 'repeat'; readonly times: number }
  | { readonly kind: 'wrap'; readonly before: string; readonly after: string };

export const textMutationArb: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
  fc.record({ kind: fc.constant('splice'), at: fc.nat(), remove: fc.nat({ max: 4 }), insert: fc.oneof(fc.constantFrom('"', '{', '}', '[', ']', ',', ':', '\\', '\\u', '\\ud800', '\u0000', 'null', '1e999'), textArb) }),
  fc.record({ kind: fc.constant('repeat'), times: fc.integer({ min: 2, max: 3 }) }),
  fc.record({ kind: fc.constant('wrap'), before: fc.constantFrom('[', ' ', '\ufeff', '"', '{"type":"get","id":1,"key":"k"}'), after: fc.constantFrom(']', ' ', '\n', '"', '}', '') }),
);

function mutateText(text: string, mutation: TextMutation): string {
  switch (mutation.kind) {
    case 'truncate':
      return text.slice(0, mutation.at % (text.length + 1));
    case 'splice': {
      const position = mutation.at % (text.length + 1);
      return text.slice(0, position) + mutation.insert + text.slice(position + mutation.remove);
    }
    case 'repeat':
      return text.repeat(mutation.times);
    case 'wrap':
      return mutation.before + text + mutation.after;
  }
}

/**
 * JSON text made from a valid value of `base` by one to three mutations of its
 * tree, then maybe one of its text; `describe` names the value in `how`.
 * Frames use it, and so does the config parser's fuzz test.
 */
export function mutatedJsonArb(base: fc.Arbitrary<Json>, describe: (value: Json) => string): fc.Arbitrary<Frame> {
  return fc
    .tuple(base, fc.array(mutationArb, { minLength: 1, maxLength: 3 }), fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, textMutationArb))
    .map(([value, mutations, textMutation]) => {
      const raw = new RawTexts();
      let tree = structuredClone(value);
      for (const mutation of mutations) tree = mutate(tree, mutation, raw);
      const text = raw.write(tree);
      return frame(textMutation === null ? text : mutateText(text, textMutation), `${describe(value)} ${mutations.map((m) => m.kind).join('+')}${textMutation === null ? '' : ` text:${textMutation.kind}`}`);
    });
}

/** The `type` of a message, for `how`. */
const typeOf = (message: Json) => (typeof message === 'object' && message !== null && !Array.isArray(message) ? String(message.type) : '?');

/** A valid message with one to three mutations of its tree, then maybe one of its text. */
export const mutatedFrameArb: fc.Arbitrary<Frame> = mutatedJsonArb(validMessageArb, typeOf);

/** A valid frame, written as a node would write it. */
export const validFrameArb: fc.Arbitrary<Frame> = validMessageArb.map((message) => frame(JSON.stringify(message), `valid ${typeOf(message)}`));

/** Random bytes, decoded as UTF-8 the way the adapter decodes a binary frame. */
export const randomBytesFrameArb: fc.Arbitrary<Frame> = fc.uint8Array({ maxLength: 256 }).map((bytes) => frame(Buffer.from(bytes).toString('utf8'), 'random bytes'));

/** Random JSON text of any shape, and random text. */
export const randomTextFrameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.json({ maxDepth: 3 }).map((text) => frame(text, 'random json')),
  textArb.map((text) => frame(text, 'random text')),
);

/** Frames at and past the 1 MiB frame limit (rare: each costs a megabyte). */
export const hugeFrameArb: fc.Arbitrary<Frame> = fc.constantFrom(1024 * 1024 - 64, 1024 * 1024 + 1, 400_000).chain((length) =>
  fc.constantFrom('a', '€').map((unit) =>
    frame(`{"type":"set","id":1,"key":"big","value":"${unit.repeat(Math.max(0, Math.floor(length / (unit === 'a' ? 1 : 3)) - 48))}"}`, `huge ${length} bytes of ${unit}`),
  ),
);

/** Any frame: mostly mutated valid frames, then valid ones, random bytes and text, and a rare huge one. */
export const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 100, arbitrary: mutatedFrameArb },
  { weight: 60, arbitrary: validFrameArb },
  { weight: 10, arbitrary: randomBytesFrameArb },
  { weight: 10, arbitrary: randomTextFrameArb },
  { weight: 1, arbitrary: hugeFrameArb },
);
