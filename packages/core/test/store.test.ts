import { expect } from 'chai';
import { type Entry, Store } from '../src/index.js';
import { mulberry32 } from './support/cluster.js';

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
  it('a new key is added and reported as a change', () => {
    const store = new Store();
    expect(store.merge(entry('k', 'v', 10))).to.deep.equal({ changed: true, duplicate: false, conflict: false });
    expect(store.get('k')).to.deep.equal(entry('k', 'v', 10));
    expect(store.size).to.equal(1);
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
});
