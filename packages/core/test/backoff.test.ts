import { expect } from 'chai';
import { RETRY_BASE_MS, RETRY_CAP_MS, retryDelayMs } from '../src/internal.js';

describe('retry backoff (retryDelayMs)', () => {
  it('waits between half the base delay and the base delay after the first failure', () => {
    expect(retryDelayMs(1, 0)).to.equal(RETRY_BASE_MS / 2);
    expect(retryDelayMs(1, 0.999999)).to.equal(RETRY_BASE_MS - 1);
  });

  it('doubles with every further failure', () => {
    const delays = [1, 2, 3, 4, 5].map((failures) => retryDelayMs(failures, 0));
    expect(delays).to.deep.equal([50, 100, 200, 400, 800]);
    for (const random of [0.25, 0.5, 0.75]) {
      for (let failures = 1; failures < 5; failures++) {
        const ratio = retryDelayMs(failures + 1, random) / retryDelayMs(failures, random);
        expect(ratio).to.be.closeTo(2, 0.05);
      }
    }
  });

  it('has jitter: different random draws give different delays within [ceiling/2, ceiling)', () => {
    const failures = 4; // ceiling 800 ms
    const delays = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const delay = retryDelayMs(failures, i / 20);
      expect(delay).to.be.at.least(400).and.below(800);
      delays.add(delay);
    }
    expect(delays.size).to.equal(20);
  });

  it('never exceeds the cap, however many failures', () => {
    for (const failures of [7, 8, 10, 31, 100, 1e9]) {
      for (const random of [0, 0.5, 0.999999]) {
        const delay = retryDelayMs(failures, random);
        expect(delay).to.be.at.least(RETRY_CAP_MS / 2).and.below(RETRY_CAP_MS);
        expect(Number.isInteger(delay)).to.equal(true);
      }
    }
  });

  it('is never immediate, even for zero or negative failure counts', () => {
    for (const failures of [-3, 0, 1]) expect(retryDelayMs(failures, 0)).to.equal(RETRY_BASE_MS / 2);
  });
});
