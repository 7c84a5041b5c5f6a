import { expect } from 'chai';
import { compareEntries, type Entry } from '../src/index.js';
import { mulberry32 } from '@bby/sim';

const entry = (timestamp: number, origin: string, value: string, key = 'k'): Entry => ({ key, value, timestamp, origin });

describe('entry order (compareEntries)', () => {
  it('the oldest write wins whatever its origin and value', () => {
    const older = entry(1000, 'zed', 'zzz');
    const newer = entry(1001, 'alpha', 'aaa');
    expect(compareEntries(older, newer)).to.be.below(0);
    expect(compareEntries(newer, older)).to.be.above(0);
  });

  it('equal timestamps are broken by origin id, lowest first, whatever the values', () => {
    const fromAlpha = entry(1000, 'alpha', 'zzz');
    const fromBeta = entry(1000, 'beta', 'aaa');
    expect(compareEntries(fromAlpha, fromBeta)).to.be.below(0);
    expect(compareEntries(fromBeta, fromAlpha)).to.be.above(0);
  });

  it('equal timestamps and origins are broken by value, lowest first', () => {
    expect(compareEntries(entry(1000, 'a', 'apple'), entry(1000, 'a', 'banana'))).to.be.below(0);
    expect(compareEntries(entry(1000, 'a', 'banana'), entry(1000, 'a', 'apple'))).to.be.above(0);
  });

  it('identical entries compare equal', () => {
    expect(compareEntries(entry(1000, 'a', 'v'), entry(1000, 'a', 'v'))).to.equal(0);
  });

  it('is a total order: antisymmetric and transitive over many random entries', () => {
    const random = mulberry32(7);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const entries = Array.from({ length: 60 }, () => entry(pick([1, 2, 3]), pick(['a', 'b', 'c']), pick(['x', 'y', 'z'])));
    for (const a of entries) {
      for (const b of entries) {
        expect(Math.sign(compareEntries(a, b))).to.equal(-Math.sign(compareEntries(b, a)) || 0);
        if (compareEntries(a, b) === 0) expect(a).to.deep.equal(b);
      }
    }
    const sorted = [...entries].sort(compareEntries);
    for (let i = 1; i < sorted.length; i++) expect(compareEntries(sorted[i - 1]!, sorted[i]!)).to.be.at.most(0);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) expect(compareEntries(sorted[i]!, sorted[j]!)).to.be.at.most(0);
    }
  });
});
