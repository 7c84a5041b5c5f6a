import { expect } from 'chai';
import { type Change, compareEntries, type Entry } from '../src/index.js';
import { bucketOf, DIGEST_HEX_DIGITS, Digests, entryHash, type MergeResult, Store } from '../src/internal.js';
import { mulberry32 } from '@bby/sim';

const entry = (key: string, value: string, timestamp: number, origin = 'a'): Entry => ({ key, value, timestamp, origin });

function storeOf(entries: readonly Entry[]): Store {
  const store = new Store();
  for (const e of entries) store.merge(e);
  return store;
}

function contents(store: Store): Entry[] {
  return store.keys().map((key) => store.get(key)!);
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

describe('store', () => {
  it('holds the same entries whatever the seed of its key hash', () => {
    const entries = Array.from({ length: 3000 }, (_, i) => entry(`key-${i}`, `v${i}`, i));
    const seeded = new Store({ hashSeed: 0x9e3779b9 });
    for (const e of entries) seeded.merge(e);
    expect(contents(seeded)).to.deep.equal(contents(storeOf(entries)));
    expect(seeded.digests.root()).to.equal(storeOf(entries).digests.root());
  });

  it('a new key is added and reported as a change', () => {
    const store = new Store();
    expect(store.merge(entry('k', 'v', 10))).to.deep.equal({ changed: true, duplicate: false, conflict: false });
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10));
    expect(store.size).to.equal(1);
  });

  it('insert stores a new key as merge does, and leaves a stored key as it is, telling its value', () => {
    const store = new Store();
    expect(store.insert(entry('k', 'v', 10))).to.equal(undefined);
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10));
    expect(store.seq).to.equal(1);
    expect(store.digests.root()).to.equal(storeOf([entry('k', 'v', 10)]).digests.root());
    // Even an older write: insert never replaces (merge would).
    expect(store.insert(entry('k', 'other', 5))).to.equal('v');
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10));
    expect(store.seq).to.equal(1);
    expect(store.size).to.equal(1);
  });

  it('hashes entries as protocol 3 says, telling apart strings cut elsewhere and bytes anywhere in a word', () => {
    // Fixed values: a change here breaks anti-entropy between versions (docs/protocol.md).
    expect(entryHash({ key: 'MonChamp', value: '42', timestamp: 1764190000000, origin: 'node1' })).to.deep.equal([2330445714, 1816835209]);
    expect(entryHash({ key: 'clé', value: 'été ☃ 😀', timestamp: 1, origin: 'a' })).to.deep.equal([2350195048, 3143268445]);
    const hashOf = (key: string, value: string) => entryHash({ key, value, timestamp: 5, origin: 'o' }).join(' ');
    expect(hashOf('ab', 'c')).to.not.equal(hashOf('a', 'bc'));
    const seen = new Set<string>();
    for (let position = 0; position < 8; position++) {
      for (const char of ['a', 'b', 'q', '~']) seen.add(hashOf('k', `${'x'.repeat(position)}${char}${'x'.repeat(7 - position)}`));
    }
    expect(seen.size).to.equal(32);
  });

  it('an entry changes the digest of its key\'s bucket only', () => {
    const random = mulberry32(7);
    for (let i = 0; i < 500; i++) {
      const key = `${i}-${random().toString(36)}${i % 7 === 0 ? 'é😀' : ''}`;
      const digests = new Digests();
      digests.toggle(entry(key, `v${i}`, 1000 + i, i % 2 === 0 ? 'a' : 'node-1'));
      const changed = digests.buckets().flatMap((digest, bucket) => (digest === '0'.repeat(DIGEST_HEX_DIGITS) ? [] : [bucket]));
      expect(changed, key).to.deep.equal([bucketOf(key)]);
    }
  });

  it('a missing key has no entry', () => {
    const store = storeOf([entry('k', 'v', 10)]);
    expect(store.get('other')).to.equal(undefined);
  });

  it('merging the same entry again is a duplicate that changes nothing', () => {
    const store = storeOf([entry('k', 'v', 10)]);
    expect(store.merge(entry('k', 'v', 10))).to.deep.equal({ changed: false, duplicate: true, conflict: false });
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10));
    expect(store.size).to.equal(1);
  });

  it('an older write with another value replaces the stored one and is a conflict', () => {
    const store = storeOf([entry('k', 'new', 20, 'b')]);
    expect(store.merge(entry('k', 'old', 10, 'a'))).to.deep.equal({ changed: true, duplicate: false, conflict: true });
    expect(store.get('k')!.value).to.equal('old');
  });

  it('a newer write with another value is a conflict that leaves the store unchanged', () => {
    const store = storeOf([entry('k', 'old', 10, 'a')]);
    expect(store.merge(entry('k', 'new', 20, 'b'))).to.deep.equal({ changed: false, duplicate: false, conflict: true });
    expect(store.get('k')).to.deep.equal(entry('k', 'old', 10, 'a'));
  });

  it('a newer write of the same value is a duplicate, not a conflict', () => {
    const store = storeOf([entry('k', 'v', 10, 'a')]);
    expect(store.merge(entry('k', 'v', 20, 'b'))).to.deep.equal({ changed: false, duplicate: true, conflict: false });
    expect(store.get('k')!.timestamp).to.equal(10);
  });

  it('an older write of the same value takes over without a conflict', () => {
    const store = storeOf([entry('k', 'v', 20, 'b')]);
    expect(store.merge(entry('k', 'v', 10, 'a'))).to.deep.equal({ changed: true, duplicate: false, conflict: false });
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10, 'a'));
  });

  it('lists keys sorted, whatever the insertion order', () => {
    const store = storeOf([entry('pear', '1', 1), entry('apple', '2', 1), entry('Zebra', '3', 1), entry('mango', '4', 1)]);
    expect(store.keys()).to.deep.equal(['Zebra', 'apple', 'mango', 'pear']);
    expect([...store.entries()].map((e) => e.key)).to.deep.equal(['pear', 'apple', 'Zebra', 'mango']);
  });

  it('merging is idempotent: merging a store into itself changes nothing', () => {
    const entries = [entry('a', '1', 5), entry('b', '2', 6), entry('a', '3', 4, 'b')];
    const store = storeOf(entries);
    const before = contents(store);
    for (const e of [...store.entries()]) expect(store.merge(e).changed).to.equal(false);
    for (const e of entries) store.merge(e);
    expect(contents(store)).to.deep.equal(before);
  });

  it('merging is commutative: any order of the same entries gives the same store', () => {
    const random = mulberry32(42);
    const keys = ['k1', 'k2', 'k3', 'k4'];
    const entries: Entry[] = [];
    for (let i = 0; i < 40; i++) {
      entries.push(entry(keys[Math.floor(random() * keys.length)]!, `v${Math.floor(random() * 3)}`, 100 + Math.floor(random() * 4), ['a', 'b', 'c'][Math.floor(random() * 3)]!));
    }
    const reference = contents(storeOf(entries));
    expect(reference).to.have.length(keys.length);
    for (let round = 0; round < 25; round++) {
      expect(contents(storeOf(shuffled(entries, random)))).to.deep.equal(reference);
    }
    // And the winner of each key is the smallest of its entries.
    for (const e of reference) {
      const candidates = entries.filter((c) => c.key === e.key);
      const oldest = Math.min(...candidates.map((c) => c.timestamp));
      expect(e.timestamp).to.equal(oldest);
    }
  });

  it('pages keys in the order they arrived, within a count and a length, at least one a page', () => {
    const store = storeOf([entry('b', '1', 10), entry('a', '2', 10), entry('c', '3', 10)]);
    store.merge(entry('a', '4', 5));
    expect(store.keys()).to.deep.equal(['a', 'b', 'c']);
    expect(store.keysPage(0, 2, Infinity)).to.deep.equal({ keys: ['b', 'a'], next: 2 });
    expect(store.keysPage(2, 2, Infinity)).to.deep.equal({ keys: ['c'], next: 3 });
    expect(store.keysPage(3, 2, Infinity)).to.deep.equal({ keys: [], next: 3 });
    // "b" is 4 characters of JSON with its comma: a length of 5 holds one key, and a page always holds one.
    expect(store.keysPage(0, 10, 5)).to.deep.equal({ keys: ['b'], next: 1 });
    expect(store.keysPage(0, 10, 1)).to.deep.equal({ keys: ['b'], next: 1 });
  });

  it('refuses a key or value with a lone surrogate, changing nothing', () => {
    const store = new Store({ chunkBytes: 64 });
    store.merge(entry('k', 'v', 10));
    const before = { size: store.size, seq: store.seq, root: store.digests.root(), keys: [...store.keys()], entry: store.get('k') };
    expect(() => store.merge(entry('a\ud800', 'v', 1))).to.throw(RangeError, 'lone surrogate');
    expect(() => store.merge(entry('k2', 'x\udfff', 1))).to.throw(RangeError, 'lone surrogate');
    expect(() => store.merge(entry('k', 'é\ud800', 1))).to.throw(RangeError, 'lone surrogate');
    expect(() => store.restore({ entry: entry('k3', '\udc00'.repeat(100), 1), seq: 9 })).to.throw(RangeError, 'lone surrogate');
    expect({ size: store.size, seq: store.seq, root: store.digests.root(), keys: [...store.keys()], entry: store.get('k') }).to.deep.equal(before);
    expect([...store.changesSince(0)]).to.deep.equal([{ entry: entry('k', 'v', 10), seq: 1 }]);
  });

  describe('against a reference model, with seeded random operations', () => {
    /** The store's rules spelt out over a Map: key to its winning entry and the sequence number of that change. */
    class Model {
      readonly changes = new Map<string, Change>();
      seq = 0;

      merge(incoming: Entry): MergeResult {
        const stored = this.changes.get(incoming.key);
        if (stored === undefined) {
          this.changes.set(incoming.key, { entry: incoming, seq: ++this.seq });
          return { changed: true, duplicate: false, conflict: false };
        }
        const conflict = incoming.value !== stored.entry.value;
        if (compareEntries(incoming, stored.entry) < 0) {
          this.changes.set(incoming.key, { entry: incoming, seq: ++this.seq });
          return { changed: true, duplicate: false, conflict };
        }
        return { changed: false, duplicate: !conflict, conflict };
      }

      insert(incoming: Entry): string | undefined {
        const stored = this.changes.get(incoming.key);
        if (stored !== undefined) return stored.entry.value;
        this.merge(incoming);
        return undefined;
      }

      restore(change: Change): void {
        const stored = this.changes.get(change.entry.key);
        if (stored !== undefined && compareEntries(change.entry, stored.entry) >= 0) return;
        this.changes.set(change.entry.key, change);
        this.seq = Math.max(this.seq, change.seq);
      }
    }

    // Small arena chunks, so that strings often cross into a new chunk and some are larger than one.
    const CHUNK_BYTES = 64;
    const PIECES = ['a', 'k', 'Z', '0', ' ', 'é', 'ß', '中', '文', '😀', '🏳️‍🌈', '\u{10FFFF}', '\ufeff', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff', '"', '\\'];
    const ORIGINS = ['a', 'b', 'ü', '😀', 'node-1'];

    function randomText(random: () => number, maxPieces: number): string {
      let text = '';
      const count = Math.floor(random() * maxPieces);
      for (let i = 0; i < count; i++) text += random() < 0.6 ? String.fromCharCode(97 + Math.floor(random() * 26)) : PIECES[Math.floor(random() * PIECES.length)]!;
      return text;
    }

    /** Pools of keys and values: random text plus fixed edge cases (empty, BOM, larger than a chunk). */
    function pools(random: () => number, keyCount: number): { keys: string[]; values: string[] } {
      const keys = Array.from({ length: keyCount }, (_, i) => (i % 3 === 0 ? `key-${i}` : `${randomText(random, 10)}#${i}`));
      keys.push('', '\ufeffbom', 'x'.repeat(CHUNK_BYTES + 5), 'é'.repeat(CHUNK_BYTES), '😀'.repeat(CHUNK_BYTES / 2 + 1), 'a'.repeat(CHUNK_BYTES));
      const values = Array.from({ length: 30 }, () => randomText(random, random() < 0.2 ? 120 : 12));
      values.push('', '\ufeff', 'y'.repeat(3 * CHUNK_BYTES), '😀'.repeat(CHUNK_BYTES), 'v'.repeat(CHUNK_BYTES - 1));
      return { keys, values };
    }

    const byKey = (a: Change, b: Change) => (a.entry.key < b.entry.key ? -1 : a.entry.key > b.entry.key ? 1 : 0);

    function expectSame(store: Store, model: Model, keys: readonly string[]): void {
      expect(store.size, 'size').to.equal(model.changes.size);
      expect(store.seq, 'seq').to.equal(model.seq);
      expect(store.keys(), 'keys').to.deep.equal([...model.changes.keys()].sort());
      // One assertion for all keys: chai is slow enough per call to matter here.
      const lookups = [...keys, 'missing', 'key-'];
      expect(lookups.map((key) => [key, store.get(key), store.value(key), store.seqOf(key)]), 'get, value, seqOf').to.deep.equal(
        lookups.map((key) => {
          const change = model.changes.get(key);
          return [key, change?.entry, change?.entry.value, change?.seq];
        }),
      );
      const all = [...model.changes.values()].sort(byKey);
      expect([...store.entries()].sort((a, b) => byKey({ entry: a, seq: 0 }, { entry: b, seq: 0 })), 'entries').to.deep.equal(all.map((c) => c.entry));
      for (const since of [0, Math.floor(model.seq / 2), model.seq - 1, model.seq]) {
        expect([...store.changesSince(since)].sort(byKey), `changesSince ${since}`).to.deep.equal(all.filter((c) => c.seq > since));
      }
      const digests = new Digests();
      for (const change of all) digests.toggle(change.entry);
      expect(store.digests.root(), 'digest root').to.equal(digests.root());
      expect(store.digests.buckets(), 'digest buckets').to.deep.equal(digests.buckets());
    }

    /**
     * Iterates `changesSince(since)` while merging `write()` after each yield,
     * at most `maxWrites` times. Every change up to the sequence number the
     * iteration returns must have been yielded by its end; returns that
     * number and the number of writes made.
     */
    function iterateWhileWriting(store: Store, model: Model, since: number, write: () => Entry, maxWrites: number): { upTo: number; writes: number } {
      const yielded = new Set<string>();
      const iteration = store.changesSince(since);
      let writes = 0;
      let next = iteration.next();
      for (let steps = 0; next.done !== true; next = iteration.next()) {
        if (++steps > 100_000) throw new Error('the iteration did not end');
        yielded.add(JSON.stringify(next.value));
        if (writes < maxWrites) {
          const incoming = write();
          store.merge(incoming);
          model.merge(incoming);
          writes++;
        }
      }
      const upTo = next.value;
      expect(upTo).to.be.at.least(Math.min(since, model.seq)).and.at.most(model.seq);
      const missed = [...model.changes.values()].filter((change) => change.seq > since && change.seq <= upTo && !yielded.has(JSON.stringify(change)));
      expect(missed, `changes up to ${upTo} not yielded`).to.deep.equal([]);
      return { upTo, writes };
    }

    for (let seed = 1; seed <= 8; seed++) {
      // Odd seeds: few keys, many conflicts and duplicates. Even seeds: enough keys to grow the index and columns.
      const keyCount = seed % 2 === 1 ? 60 : 1500;
      it(`seed ${seed}: ${keyCount} keys, merges and restores give the model's results and contents`, () => {
        const random = mulberry32(seed);
        const { keys, values } = pools(random, keyCount);
        const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
        const randomEntry = (): Entry => entry(pick(keys), pick(values), 1000 + Math.floor(random() * 4), pick(ORIGINS));
        const store = new Store({ chunkBytes: CHUNK_BYTES });
        const model = new Model();
        // Restores, as loading from disk does: sequence numbers mostly rising, some stale or repeated.
        let restoredSeq = 0;
        const restores = Math.floor(random() * 300);
        for (let i = 0; i < restores; i++) {
          restoredSeq += 1 + Math.floor(random() * 3);
          const change = { entry: randomEntry(), seq: random() < 0.1 ? 1 + Math.floor(random() * restoredSeq) : restoredSeq };
          store.restore(change);
          model.restore(change);
        }
        expectSame(store, model, keys);
        const operations = keyCount * 2;
        const merged: Entry[] = [];
        for (let i = 1; i <= operations; i++) {
          // Sometimes an entry merged before again (a copy, as from the wire): a duplicate or a loser.
          const incoming = random() < 0.1 && merged.length > 0 ? { ...pick(merged) } : randomEntry();
          merged.push(incoming);
          if (random() < 0.2) {
            // The write-once path of `set`: stores only a new key, else tells the stored value.
            expect(store.insert(incoming), JSON.stringify(incoming)).to.equal(model.insert(incoming));
          } else {
            const result = store.merge(incoming);
            const expected = model.merge(incoming);
            if (result.changed !== expected.changed || result.duplicate !== expected.duplicate || result.conflict !== expected.conflict) {
              expect(result, JSON.stringify(incoming)).to.deep.equal(expected);
            }
          }
          if (i % Math.ceil(operations / 4) === 0) expectSame(store, model, keys);
        }
        expectSame(store, model, keys);

        // Writes that always win (older than anything stored), for the live iterations.
        let oldest = 999;
        const winning = (): Entry => entry(pick(keys), pick(values), oldest--, pick(ORIGINS));
        // A few writes early in the iteration: they are all yielded, and the iteration returns the store's seq.
        const few = iterateWhileWriting(store, model, 0, winning, Math.floor(store.size / 4));
        expect(few.upTo).to.equal(store.seq);
        // From the middle of the feed, with a write after every yield until the budget runs out.
        iterateWhileWriting(store, model, Math.floor(store.seq / 2), winning, store.size);
        // A steady trickle that never stops: the iteration still ends, after a bounded number of passes.
        const trickle = iterateWhileWriting(store, model, 0, winning, Infinity);
        expect(trickle.writes).to.be.at.most(4 * (store.size + 1));
        // entries() is live too: with writes that stop early, every final entry was yielded.
        const seen = new Set<string>();
        let writes = 0;
        for (const e of store.entries()) {
          seen.add(JSON.stringify(e));
          if (writes++ < 20) {
            const incoming = winning();
            store.merge(incoming);
            model.merge(incoming);
          }
        }
        expect([...model.changes.values()].filter((change) => !seen.has(JSON.stringify(change.entry))), 'entries not yielded').to.deep.equal([]);
        expectSame(store, model, keys);
      });
    }
  });
});
