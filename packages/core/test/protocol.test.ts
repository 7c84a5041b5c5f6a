import { expect } from 'chai';
import {
  encodeMessage,
  type ErrorMessage,
  MAX_KEY_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_REQUEST_ID_LENGTH,
  MAX_VALUE_BYTES,
  parseIncoming,
  PROTOCOL_VERSION,
  type ParseResult,
} from '../src/index.js';
import {
  MAX_PEER_LIST,
  utf8ByteLength,
} from '../src/internal.js';
import { Cluster, resultOf } from '@bby/sim';

function parsed(message: unknown): unknown {
  const result = parseIncoming(JSON.stringify(message));
  if (!result.ok) throw new Error(`refused: ${result.error.code} ${result.error.message}`);
  return result.message;
}

function refused(text: string): Extract<ParseResult, { ok: false }> {
  const result = parseIncoming(text);
  if (result.ok) throw new Error(`accepted: ${text.slice(0, 100)}`);
  return result;
}

const goodEntry = { key: 'k', value: 'v', timestamp: 1000, origin: 'a' };
/** An entry as it travels: `[key, value, timestamp, origin]`; `with` replaces fields. */
const wire = (change: Partial<Record<keyof typeof goodEntry, unknown>> = {}) => {
  const e: Record<string, unknown> = { ...goodEntry, ...change };
  return [e.key, e.value, e.timestamp, e.origin];
};

describe('protocol parsing', () => {
  it('reads every request type', () => {
    expect(parsed({ type: 'get', id: 1, key: 'k' })).to.deep.equal({ type: 'get', id: 1, key: 'k' });
    expect(parsed({ type: 'set', id: 'x', key: 'k', value: '' })).to.deep.equal({ type: 'set', id: 'x', key: 'k', value: '' });
    for (const type of ['keys', 'peers', 'stats']) expect(parsed({ type, id: 2 })).to.deep.equal({ type, id: 2 });
    expect(parsed({ type: 'add-peer', id: 3, address: 'h:1' })).to.deep.equal({ type: 'add-peer', id: 3, address: 'h:1' });
  });

  it('reads peer messages, with entries as [key, value, timestamp, origin] tuples', () => {
    expect(parsed({ type: 'hello', protocol: 1, nodeId: 'a', address: 'h:1' })).to.deep.equal({ type: 'hello', protocol: 1, nodeId: 'a', address: 'h:1' });
    expect(parsed({ type: 'welcome', protocol: 1, nodeId: 'b', address: '' })).to.deep.equal({ type: 'welcome', protocol: 1, nodeId: 'b', address: '' });
    expect(parsed({ type: 'entries', entries: [wire()] })).to.deep.equal({ type: 'entries', entries: [goodEntry] });
    // encodeMessage writes what parseIncoming reads.
    const message = { type: 'entries', entries: [goodEntry, { ...goodEntry, key: 'k2' }], seen: ['a'], upTo: 7 } as const;
    expect(JSON.parse(encodeMessage(message))).to.deep.equal({ type: 'entries', entries: [wire(), wire({ key: 'k2' })], seen: ['a'], upTo: 7 });
    expect(parsed(JSON.parse(encodeMessage(message)))).to.deep.equal(message);
  });

  it('says BAD_JSON for text that is not JSON', () => {
    const result = refused('{"type": "get"');
    expect(result.error.code).to.equal('BAD_JSON');
    expect(result.id).to.equal(null);
  });

  it('says BAD_MESSAGE for JSON that is not an object', () => {
    for (const text of ['[]', 'null', '"get"', '42']) expect(refused(text).error.code, text).to.equal('BAD_MESSAGE');
  });

  it('says UNKNOWN_TYPE for an unknown type, and keeps the request id', () => {
    const unknown = refused('{"type": "delete", "id": 9}');
    expect(unknown.error.code).to.equal('UNKNOWN_TYPE');
    expect(unknown.error.message).to.include('"delete"').and.include('get, set');
    expect(unknown.id).to.equal(9);
  });

  // docs/protocol.md: "a missing or mistyped field" is BAD_MESSAGE, and "type" is a field like any other.
  it('says BAD_MESSAGE for a missing or mistyped type, and keeps the request id', () => {
    for (const text of ['{"id": 1}', '{"type": 7, "id": 1}', '{"type": null, "id": 1}']) {
      const result = refused(text);
      expect(result.error.code, text).to.equal('BAD_MESSAGE');
      expect(result.error.message, text).to.include('"type"');
      expect(result.id, text).to.equal(1);
    }
  });

  it(`reads a peer-list of up to ${MAX_PEER_LIST} addresses, and says BAD_MESSAGE for more or for an address that is not host:port`, () => {
    const addresses = Array.from({ length: MAX_PEER_LIST }, (_, i) => `10.0.0.${i}:7000`);
    expect(parsed({ type: 'peer-list', addresses })).to.deep.equal({ type: 'peer-list', addresses });
    expect(parsed({ type: 'peer-list', addresses: ['[::1]:7003', 'ws://h.test:1'] })).to.deep.equal({ type: 'peer-list', addresses: ['[::1]:7003', 'ws://h.test:1'] });
    const tooMany = refused(JSON.stringify({ type: 'peer-list', addresses: [...addresses, '10.0.1.0:7000'] }));
    expect(tooMany.error.code).to.equal('BAD_MESSAGE');
    expect(tooMany.error.message).to.include(`at most ${MAX_PEER_LIST}`);
    for (const bad of ['no-port', '', 'h:0', 'http://h:1']) {
      const result = refused(JSON.stringify({ type: 'peer-list', addresses: ['10.0.0.1:7000', bad] }));
      expect(result.error.code, bad).to.equal('BAD_MESSAGE');
      expect(result.error.message, bad).to.include('addresses[1]');
    }
  });

  it('never answers a reply or an error: two nodes would bounce errors forever; it logs both', () => {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const client = cluster.client('a');
    expect(client.exchange('{"type": "reply", "id": 1, "result": true}')).to.deep.equal([]);
    expect(cluster.logs.at(-1)).to.deep.include({ node: 'a', level: 'warn' });
    expect(cluster.logs.at(-1)!.message).to.match(/^a client.* sent a reply \(id 1\) though this node asked nothing; dropped$/);
    // Another client: the log limiter counts per source.
    expect(cluster.client('a').exchange('{"type": "error", "id": null, "code": "UNKNOWN_TYPE", "message": "what?"}')).to.deep.equal([]);
    expect(a.stats().errors).to.equal(0);
    expect(cluster.logs.at(-1)!.message).to.include('reported: "what?" (UNKNOWN_TYPE)');
  });

  it('says BAD_MESSAGE for missing or mistyped fields, naming the field', () => {
    const cases: [unknown, string][] = [
      [{ type: 'get', key: 'k' }, '"id"'],
      [{ type: 'get', id: { n: 1 }, key: 'k' }, '"id"'],
      [{ type: 'get', id: 'x'.repeat(MAX_REQUEST_ID_LENGTH + 1), key: 'k' }, '"id"'],
      [{ type: 'get', id: 1 }, '"key"'],
      [{ type: 'set', id: 1, key: 'k' }, '"value"'],
      [{ type: 'set', id: 1, key: 'k', value: 5 }, '"value"'],
      [{ type: 'set', id: 1, key: '', value: 'v' }, 'key is empty'],
      [{ type: 'add-peer', id: 1 }, '"address"'],
      [{ type: 'hello', nodeId: 'a', address: '' }, '"protocol"'],
      [{ type: 'hello', protocol: 1, address: '' }, '"nodeId"'],
      [{ type: 'hello', protocol: 1, nodeId: '', address: '' }, '"nodeId"'],
      // Node ids are written in frames as they are: only A-Z a-z 0-9 _ - (as in config files).
      [{ type: 'hello', protocol: 1, nodeId: 'a b', address: '' }, '"nodeId" must be a node id'],
      [{ type: 'welcome', protocol: 1, nodeId: 'x\u0001', address: '' }, '"nodeId" must be a node id'],
      [{ type: 'entries', entries: [], seen: ['ok', 'not ok'] }, '"seen" as a list of node ids'],
      [{ type: 'ack', ack: 'e.1', node: 'é', ok: true }, '"node" must be a node id'],
      [{ type: 'welcome', protocol: 1, nodeId: 'n'.repeat(65), address: '' }, '"nodeId"'],
      [{ type: 'entries' }, '"entries"'],
      [{ type: 'entries', entries: [null] }, 'entries[0]'],
      [{ type: 'entries', entries: [goodEntry] }, 'entries[0] must be [key, value, timestamp, origin]'],
      [{ type: 'entries', entries: [wire(), wire().slice(0, 3)] }, 'entries[1]'],
      [{ type: 'entries', entries: [wire(), wire({ origin: null })] }, 'entries[1]'],
      [{ type: 'entries', entries: [wire({ timestamp: -1 })] }, 'timestamp'],
      [{ type: 'entries', entries: [wire({ timestamp: 1.5 })] }, 'timestamp'],
      [{ type: 'entries', entries: [wire({ timestamp: '1000' })] }, 'timestamp'],
      [{ type: 'entries', entries: [wire({ origin: '' })] }, 'origin'],
    ];
    for (const [message, mention] of cases) {
      const result = refused(JSON.stringify(message));
      expect(result.error.code, JSON.stringify(message)).to.equal('BAD_MESSAGE');
      expect(result.error.message, JSON.stringify(message)).to.include(mention);
    }
    expect(refused('{"type": "set", "id": 4, "key": "k"}').id).to.equal(4);
  });

  it('says MESSAGE_TOO_LARGE above 1 MiB, counting UTF-8 bytes', () => {
    const long = JSON.stringify({ type: 'set', id: 1, key: 'k', value: 'x'.repeat(MAX_MESSAGE_BYTES) });
    expect(refused(long).error.code).to.equal('MESSAGE_TOO_LARGE');
    const wide = JSON.stringify({ type: 'set', id: 1, key: 'k', value: '€'.repeat(400_000) });
    expect(wide.length).to.be.below(MAX_MESSAGE_BYTES);
    expect(refused(wide).error.code).to.equal('MESSAGE_TOO_LARGE');
    // A transport that measured the frame says its size: it is trusted, not counted again.
    const small = JSON.stringify({ type: 'get', id: 1, key: 'k' });
    const told = parseIncoming(small, MAX_MESSAGE_BYTES + 1);
    expect(told.ok === false && told.error.code).to.equal('MESSAGE_TOO_LARGE');
    expect(parseIncoming(small, MAX_MESSAGE_BYTES).ok).to.equal(true);
    expect(parseIncoming(wide, Buffer.byteLength(wide)).ok).to.equal(false);
  });

  it('limits keys to 1024 UTF-8 bytes', () => {
    expect(parsed({ type: 'get', id: 1, key: 'k'.repeat(MAX_KEY_BYTES) })).to.have.property('type', 'get');
    expect(refused(JSON.stringify({ type: 'get', id: 1, key: 'k'.repeat(MAX_KEY_BYTES + 1) })).error.code).to.equal('KEY_TOO_LARGE');
    expect(refused(JSON.stringify({ type: 'set', id: 1, key: 'é'.repeat(513), value: 'v' })).error.code).to.equal('KEY_TOO_LARGE');
    expect(refused(JSON.stringify({ type: 'entries', entries: [wire({ key: 'k'.repeat(1025) })] })).error.code).to.equal('KEY_TOO_LARGE');
  });

  it('limits values to 256 KiB of JSON text, quotes and escapes included', () => {
    const largest = 'x'.repeat(MAX_VALUE_BYTES - 2);
    expect(parsed({ type: 'set', id: 1, key: 'k', value: largest })).to.have.property('value', largest);
    expect(refused(JSON.stringify({ type: 'set', id: 1, key: 'k', value: `${largest}x` })).error.code).to.equal('VALUE_TOO_LARGE');
    const escaped = '\n'.repeat(MAX_VALUE_BYTES / 2); // each "\n" is two bytes of JSON
    expect(refused(JSON.stringify({ type: 'set', id: 1, key: 'k', value: escaped })).error.code).to.equal('VALUE_TOO_LARGE');
    expect(refused(JSON.stringify({ type: 'entries', entries: [wire({ value: `${largest}x` })] })).error.code).to.equal('VALUE_TOO_LARGE');
  });

  it('says BAD_MESSAGE for a key or value with a lone surrogate, and accepts whole pairs', () => {
    // JSON.stringify writes a lone surrogate as a \udxxx escape, which JSON.parse turns back into it.
    const cases = [
      { type: 'set', id: 1, key: 'a\ud800b', value: 'v' },
      { type: 'set', id: 2, key: 'k', value: 'x\udfff' },
      { type: 'set', id: 3, key: 'k', value: '\ude00\ud83d' }, // a pair in the wrong order is two lone halves
      { type: 'get', id: 4, key: '\ud83d' },
      { type: 'set-many', id: 5, entries: [{ key: 'k', value: 'v' }, { key: 'k2', value: '\ud800' }] },
      { type: 'entries', entries: [wire({ key: '\udc00' })] },
      { type: 'entries', entries: [wire({ value: 'end\ud800' })] },
    ];
    for (const message of cases) {
      const result = refused(JSON.stringify(message));
      expect(result.error.code, JSON.stringify(message)).to.equal('BAD_MESSAGE');
      expect(result.error.message, JSON.stringify(message)).to.include('lone surrogate');
    }
    expect(parsed({ type: 'set', id: 6, key: '\ud83d\ude00', value: 'é😀€' })).to.include({ key: '😀', value: 'é😀€' });
  });

  it('counts UTF-8 bytes like Buffer does', () => {
    for (const text of ['', 'abc', 'é', '€', '😀', 'a😀é€', 'x\ud800y', '\udc00']) {
      expect(utf8ByteLength(text), JSON.stringify(text)).to.equal(Buffer.byteLength(text, 'utf8'));
    }
  });
});

describe('a node receiving malformed frames', () => {
  /** A node holding one key, with a connected peer, and a client. */
  function setup() {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    a.set('kept', 'v1');
    cluster.stabilize();
    cluster.resetCounters();
    return { cluster, a, b, client: cluster.client('a') };
  }

  const badFrames: [string, string, string | number | null][] = [
    ['not json', 'BAD_JSON', null],
    ['[1,2]', 'BAD_MESSAGE', null],
    ['{"type":"drop-table","id":5}', 'UNKNOWN_TYPE', 5],
    ['{"type":"set","id":6,"key":"k"}', 'BAD_MESSAGE', 6],
    ['{"type":"set","key":"k","value":"v"}', 'BAD_MESSAGE', null],
    [JSON.stringify({ type: 'set', id: 7, key: 'k'.repeat(1025), value: 'v' }), 'KEY_TOO_LARGE', 7],
    [JSON.stringify({ type: 'set', id: 8, key: 'k', value: 'v'.repeat(256 * 1024) }), 'VALUE_TOO_LARGE', 8],
    [JSON.stringify({ type: 'set', id: 9, key: 'k', value: 'v'.repeat(MAX_MESSAGE_BYTES + 1) }), 'MESSAGE_TOO_LARGE', null],
    [JSON.stringify({ type: 'entries', entries: [['k', 'v', 1, 'x']] }), 'NOT_A_PEER', null],
    [JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: 'x', address: '' }), 'BAD_MESSAGE', null],
  ];

  for (const [frame, code, id] of badFrames) {
    it(`a client frame ${frame.length > 60 ? `${frame.slice(0, 50)}… (${frame.length} chars)` : frame} gets ${code} and changes nothing`, () => {
      const { a, b, client } = setup();
      const bReceived = b.stats().messagesReceived;
      const responses = client.exchange(frame);
      expect(responses).to.have.length(1);
      const error = responses[0] as ErrorMessage;
      expect(error).to.include({ type: 'error', code, id });
      expect(error.message).to.be.a('string').and.not.equal('');
      expect(a.keys()).to.deep.equal(['kept']);
      expect(b.keys()).to.deep.equal(['kept']);
      expect(a.stats().errors).to.equal(1);
      expect(a.stats().writesAccepted).to.equal(1);
      expect(b.stats().messagesReceived).to.equal(bReceived);
      // The connection still works afterwards.
      expect(resultOf(client.request({ type: 'get', key: 'kept' }))).to.equal('v1');
    });
  }

  it('a peer that sends a bad entry gets an error and none of that message is merged', () => {
    const { a, b, client } = setup();
    client.exchange(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: 'fake', address: '' }));
    const bReceived = b.stats().messagesReceived;
    const responses = client.exchange(
      JSON.stringify({ type: 'entries', entries: [['fine', 'v', 1, 'fake'], ['bad', 'v', -5, 'fake']] }),
    );
    expect(responses).to.have.length(1);
    expect(responses[0]).to.include({ type: 'error', code: 'BAD_MESSAGE' });
    expect(a.keys()).to.deep.equal(['kept']);
    expect(b.keys()).to.deep.equal(['kept']);
    expect(a.stats().entriesApplied).to.equal(0);
    expect(b.stats().messagesReceived).to.equal(bReceived);
  });

  it('a second hello on a peer link is refused', () => {
    const { a, client } = setup();
    const hello = JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: 'fake', address: '' });
    expect(client.exchange(hello).map((m) => m.type)).to.deep.equal(['welcome', 'catch-up']);
    const again = client.exchange(hello);
    expect(again).to.have.length(1);
    expect(again[0]).to.include({ type: 'error', code: 'BAD_MESSAGE' });
    expect(a.stats().errors).to.equal(1);
  });

  it('a peer speaking another protocol version is refused and closed with code 4002', () => {
    const { cluster, a, client } = setup();
    const responses = client.exchange(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION + 1, nodeId: 'future', address: '' }));
    expect(responses).to.have.length(1);
    expect(responses[0]).to.include({ type: 'error', code: 'PROTOCOL_MISMATCH' });
    expect(cluster.counters.closeCodes).to.deep.equal([4002]);
    expect(client.closeReason).to.include('4002');
    expect(a.stats().peers).to.equal(1);
  });
});
