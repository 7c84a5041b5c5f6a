import { expect } from 'chai';
import { createNode, type Effect, encodeMessage, type Entry, MAX_BATCH_CHARS, MAX_MESSAGE_BYTES, type Message, PROTOCOL_VERSION } from '../src/index.js';
import { batchEntries, readyEffects, STREAM_WINDOW_BATCHES, coalesceEntries, entryLength, utf8ByteLength } from '../src/internal.js';
import { Cluster, mulberry32 } from '@bby/sim';

const entry = (key: string, value: string, timestamp = 1_700_000_000_000, origin = 'node-a'): Entry => ({ key, value, timestamp, origin });

describe('sync batching', () => {
  it('an entry on the wire takes at most 6 bytes per character of its length estimate, and exactly its length when nothing is escaped', () => {
    const samples = [
      entry('k', 'v', 0),
      entry('k', 'v', Number.MAX_SAFE_INTEGER),
      entry('quote"back\\slash', 'line\nbreak\ttab\u0001', 1_700_000_000_000),
      entry('clé', '€ and 😀', 1_700_000_000_000),
      entry('lone', 'x\ud800y', 1_700_000_000_000),
      entry('controls', '\u0000'.repeat(100), 1_700_000_000_000),
    ];
    for (const e of samples) {
      const text = JSON.stringify([e.key, e.value, e.timestamp, e.origin]);
      expect(utf8ByteLength(text), text).to.be.at.most(6 * entryLength(e));
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters JSON escapes.
      if (String(e.timestamp).length === 16 && !/["\\\u0000-\u001f\ud800-\udfff]/.test(e.key + e.value)) expect(text.length).to.equal(entryLength(e));
    }
  });

  it('nothing to send gives no batch', () => {
    expect([...batchEntries([])]).to.deep.equal([]);
  });

  it('keeps every entry, in order, and each batch within the length limit', () => {
    const random = mulberry32(3);
    const entries = Array.from({ length: 500 }, (_, i) => entry(`key-${i}`, 'é"\\x'.repeat(Math.floor(random() * 300))));
    const batches = [...batchEntries(entries, 10_000)];
    expect(batches.length).to.be.above(1);
    expect(batches.flat()).to.deep.equal(entries);
    for (const batch of batches) {
      expect(batch.reduce((sum, e) => sum + entryLength(e) + 1, 0)).to.be.at.most(10_000);
      expect(utf8ByteLength(encodeMessage({ type: 'entries', entries: batch }))).to.be.at.most(6 * 10_000 + 40);
    }
  });

  it('an entry larger than the limit travels alone', () => {
    const big = entry('big', 'x'.repeat(2000));
    const batches = [...batchEntries([entry('a', '1'), big, entry('b', '2')], 1000)];
    expect(batches).to.deep.equal([[entry('a', '1')], [big], [entry('b', '2')]]);
  });

  it('the join sync splits a big store into messages under 1 MiB and the new peer gets every entry', () => {
    const cluster = new Cluster();
    cluster.recordFrames = true;
    const a = cluster.addNode('a');
    const value = 'v'.repeat(1024);
    for (let i = 0; i < 3000; i++) expect(a.set(`key-${String(i).padStart(4, '0')}`, value)).to.equal(true);
    cluster.stabilize();

    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();

    const syncFrames = cluster.frames.filter((f) => f.from === 'a' && f.to === 'b' && f.type === 'entries');
    expect(syncFrames.length).to.be.at.least(Math.ceil((3000 * 1024) / MAX_BATCH_CHARS));
    for (const frame of syncFrames) expect(utf8ByteLength(frame.text)).to.be.below(MAX_MESSAGE_BYTES);
    expect(b.keys()).to.deep.equal(a.keys());
    expect(b.keys()).to.have.length(3000);
    expect(b.get('key-2999')).to.equal(value);
    expect(b.stats().entriesApplied).to.equal(3000);
    expect(b.stats().errors).to.equal(0);
    expect(a.stats().errors).to.equal(0);
  });

  it('messages stay under 1 MiB even when every character takes 3 bytes in UTF-8', () => {
    const cluster = new Cluster();
    cluster.recordFrames = true;
    const a = cluster.addNode('a');
    const value = '€'.repeat(1024);
    for (let i = 0; i < 800; i++) a.set(`clé-${i}`, value);
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();

    const syncFrames = cluster.frames.filter((f) => f.type === 'entries' && f.to === 'b');
    expect(syncFrames.length).to.be.above(1);
    for (const frame of syncFrames) expect(utf8ByteLength(frame.text)).to.be.below(MAX_MESSAGE_BYTES);
    expect(b.keys()).to.have.length(800);
    expect(b.stats().errors).to.equal(0);
  });
});

describe('coalescing forwards', () => {
  const entry = (key: string) => ({ key, value: 'v', timestamp: 1, origin: 'a' });
  const send = (link: string, message: object) => ({ type: 'send' as const, link, message: message as Message, bytes: 0 });

  it('merges entries queued back to back for one link, keeps the order per link, and the later upTo', () => {
    const effects = [
      send('l1', { type: 'entries', entries: [entry('a')], seen: ['a', 'b'] }),
      send('l2', { type: 'reply', id: 1, result: true }),
      send('l1', { type: 'entries', entries: [entry('b')], seen: ['a', 'b'], upTo: 7 }),
      send('l1', { type: 'ping' }),
      send('l1', { type: 'entries', entries: [entry('c')], seen: ['a', 'b'] }),
    ];
    const out = coalesceEntries(effects);
    expect(out).to.deep.equal([
      send('l1', { type: 'entries', entries: [entry('a'), entry('b')], seen: ['a', 'b'], upTo: 7 }),
      send('l2', { type: 'reply', id: 1, result: true }),
      send('l1', { type: 'ping' }),
      send('l1', { type: 'entries', entries: [entry('c')], seen: ['a', 'b'] }),
    ]);
  });

  it('does not merge across different seen lists, acknowledgement rounds, or past the size limit', () => {
    const effects = [
      send('l1', { type: 'entries', entries: [entry('a')], seen: ['a'] }),
      send('l1', { type: 'entries', entries: [entry('b')], seen: ['a', 'c'] }),
      send('l1', { type: 'entries', entries: [entry('c')], seen: ['a', 'c'], ack: 'e.1' }),
      send('l1', { type: 'entries', entries: [entry('d')], seen: ['a', 'c'] }),
      send('l1', { type: 'entries', entries: [entry('e')], seen: ['a', 'c'] }),
    ];
    expect(coalesceEntries(effects)).to.have.length(4);
    expect(coalesceEntries(effects.slice(3), 10)).to.have.length(2);
  });

  it('gives links whose runs are the very same messages one shared merged message, and others their own', () => {
    const first = { type: 'entries', entries: [entry('a')], seen: ['a', 'b', 'c'] };
    const second = { type: 'entries', entries: [entry('b')], seen: ['a', 'b', 'c'], upTo: 2 };
    const other = { type: 'entries', entries: [entry('b')], seen: ['a', 'b', 'c'] };
    const out = coalesceEntries([send('b', first), send('c', first), send('d', first), send('b', second), send('c', second), send('d', other)]) as ReturnType<typeof send>[];
    expect(out.map((e) => e.link)).to.deep.equal(['b', 'c', 'd']);
    expect(out[0]!.message).to.equal(out[1]!.message);
    expect(out[0]!.message).to.deep.equal({ type: 'entries', entries: [entry('a'), entry('b')], seen: ['a', 'b', 'c'], upTo: 2 });
    expect(out[2]!.message).to.not.equal(out[0]!.message);
    expect(out[2]!.message).to.deep.equal({ type: 'entries', entries: [entry('a'), entry('b')], seen: ['a', 'b', 'c'] });
  });
});

describe('catch-up flow control', () => {
  const hello = (nodeId: string) => JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId, address: `${nodeId}:1` });
  /** A node holding `count` keys, a peer link that did its handshake and asked for everything, and the effects so far. */
  function holderAsked(count: number) {
    let clock = 1_700_000_000_000;
    const holder = createNode({ id: 'holder', now: () => clock++, random: mulberry32(1), batchLength: 1_000 });
    const advance = (ms: number) => (clock += ms);
    for (let i = 0; i < count; i++) holder.set(`key-${String(i).padStart(4, '0')}`, 'v'.repeat(40));
    readyEffects(holder.takeReady());
    const link = holder.accept();
    holder.receive(link, hello('joiner'));
    readyEffects(holder.takeReady());
    holder.receive(link, JSON.stringify({ type: 'catch-up', since: null }));
    return { holder, link, advance };
  }
  const sends = (effects: Effect[]) => effects.filter((e): e is Extract<Effect, { type: 'send' }> => e.type === 'send');
  /** Reports the frames of `sent` as written out, as the adapter does once its socket took them. */
  const writeOut = (holder: ReturnType<typeof holderAsked>['holder'], link: string, sent: Extract<Effect, { type: 'send' }>[]) =>
    holder.written(link, sent.filter((s) => s.link === link).reduce((sum, s) => sum + s.bytes, 0));

  it('sends at most STREAM_WINDOW_BATCHES batches ahead of what was written out, then more as they are written', () => {
    const { holder, link } = holderAsked(200);
    const first = sends(readyEffects(holder.takeReady()));
    expect(first.map((s) => s.message.type)).to.deep.equal(Array(STREAM_WINDOW_BATCHES).fill('entries'));
    expect(readyEffects(holder.takeReady())).to.deep.equal([]);

    const received: Entry[] = first.flatMap((s) => (s.message.type === 'entries' ? s.message.entries : []));
    let caughtUp: Message | undefined;
    let previous = first;
    for (let round = 0; round < 100 && caughtUp === undefined; round++) {
      writeOut(holder, link, previous.slice(0, 1));
      const next = sends(readyEffects(holder.takeReady()));
      expect(next.length, `round ${round}`).to.be.within(1, 2);
      for (const send of next) {
        if (send.message.type === 'entries') received.push(...send.message.entries);
        else caughtUp = send.message;
      }
      previous = [...previous.slice(1), ...next];
    }
    expect(new Set(received.map((e) => e.key)).size).to.equal(200);
    expect(caughtUp).to.include({ type: 'caught-up', full: true, entries: 200 });
  });

  it('sends a key written during the catch-up before caught-up, and caught-up counts the feed up to then', () => {
    const { holder, link } = holderAsked(100);
    let sent = sends(readyEffects(holder.takeReady()));
    holder.set('written-meanwhile', 'x');
    readyEffects(holder.takeReady());
    const received: string[] = [];
    let caughtUp: Extract<Message, { type: 'caught-up' }> | undefined;
    for (let round = 0; round < 100 && caughtUp === undefined; round++) {
      writeOut(holder, link, sent);
      sent = sends(readyEffects(holder.takeReady()));
      for (const send of sent) {
        if (send.message.type === 'entries') received.push(...send.message.entries.map((e) => e.key));
        if (send.message.type === 'caught-up') caughtUp = send.message;
      }
    }
    expect(received).to.include('written-meanwhile');
    expect(caughtUp?.seq).to.equal(101);
  });

  it('refuses a second link from a peer that is still heard: the first keeps its catch-up and then vouches with upTo', () => {
    const { holder, link } = holderAsked(200);
    readyEffects(holder.takeReady());
    const second = holder.accept();
    holder.receive(second, hello('joiner'));
    expect(readyEffects(holder.takeReady()).filter((e) => e.type === 'close')).to.deep.include({ type: 'close', link: second, code: 4005, reason: 'duplicate link: already connected to node joiner' });
    let ended = false;
    for (let round = 0; round < 100 && !ended; round++) {
      holder.written(link, 1_000_000);
      ended = sends(readyEffects(holder.takeReady())).some((s) => s.message.type === 'caught-up');
    }
    expect(ended).to.equal(true);
    holder.set('after', 'x');
    const forwards = sends(readyEffects(holder.takeReady())).filter((s) => s.message.type === 'entries');
    expect(forwards.map((f) => f.link)).to.deep.equal([link]);
    expect(forwards[0]!.message).to.have.property('upTo');
  });

  it('a second link from a peer that fell silent replaces the first, and does not vouch with upTo before its own catch-up', () => {
    const { holder, link, advance } = holderAsked(200);
    readyEffects(holder.takeReady());
    advance(3_000);
    const second = holder.accept();
    holder.receive(second, hello('joiner'));
    expect(readyEffects(holder.takeReady()).filter((e) => e.type === 'close')).to.deep.include({ type: 'close', link, code: 4005, reason: 'duplicate link: already connected to node joiner' });
    holder.written(link, 1_000_000);
    expect(sends(readyEffects(holder.takeReady()))).to.deep.equal([]);
    holder.set('after', 'x');
    const forwards = sends(readyEffects(holder.takeReady())).filter((s) => s.message.type === 'entries');
    expect(forwards.map((f) => f.link)).to.deep.equal([second]);
    expect(forwards[0]!.message).to.not.have.property('upTo');
  });

  it('a peer that asks again gets a new stream within the same window: the old frames still count', () => {
    const { holder, link } = holderAsked(200);
    const first = sends(readyEffects(holder.takeReady()));
    expect(first).to.have.length(STREAM_WINDOW_BATCHES);
    for (let i = 0; i < 5; i++) holder.receive(link, JSON.stringify({ type: 'catch-up', since: null }));
    expect(sends(readyEffects(holder.takeReady()))).to.deep.equal([]);
    writeOut(holder, link, first.slice(0, 1));
    expect(sends(readyEffects(holder.takeReady())).map((s) => s.message.type)).to.deep.equal(['entries']);
  });

  it('stops when the link closes, and ignores a late written', () => {
    const { holder, link } = holderAsked(200);
    readyEffects(holder.takeReady());
    holder.closed(link, 'gone');
    readyEffects(holder.takeReady());
    holder.written(link, 1_000_000);
    expect(readyEffects(holder.takeReady())).to.deep.equal([]);
  });
});
