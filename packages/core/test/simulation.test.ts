/**
 * Deterministic simulation of the mesh under faults (issue 4): see
 * support/simulation.ts for the model. Each seed runs a fault phase (writes,
 * lost / duplicated / reordered frames, partitions, link resets, pauses,
 * crashes with and without their disk) and a liveness phase (faults stop,
 * everything restarts); then every node must hold the identical store and
 * every acknowledged write (or an older write of its key) must be on every node.
 *
 *   npm test                      seeds 1..500 and REGRESSION_SEEDS
 *   SIM_SEEDS=2000 npm test       seeds 1..2000
 *   SEED=42 npm test              only seed 42, printing its fault schedule (SIM_TRACE=2 or 3 for more)
 *   SIM_FAULTS=loss=0 npm test    override part of every seed's fault profile (see parseFaults)
 *   npm run soak -- --minutes 30  fresh random seeds for 30 minutes
 */
import { expect } from 'chai';
import { START_MS } from './support/cluster.js';
import { addCounts, checkStores, formatCounts, parseFaults, runSeed, type SimOptions, type SimResult, zeroCounts } from './support/simulation.js';

/**
 * Seeds that failed at least once. Each runs on every test run; add any seed
 * that fails (in CI or in a soak) with a note, and keep it after the fix.
 */
const REGRESSION_SEEDS: readonly number[] = [
  // Found on 2026-11-26 (core at cb3c2b5). A lost or reordered "catch-up" or "caught-up" leaves
  // its link never caught up, anti-entropy skips such links, and only the smaller id starts a
  // round: the pair never repairs, which shows when that link is a node's only path.
  155, 187, 204, 236, 240, 275, 321, 336, 377, 435, 2336180618, 69922232, 780458248,
  // Same day, seeds without anti-entropy: a peer's cursor into a node's feed moves on a "ping"
  // (or an "entries" upTo) from one link, past changes sent on another link to the same peer
  // and lost with it (reset, partition, heartbeat timeout); catch-up then never resends them.
  2379283798, 2823639558, 2209381532, 261096793, 1483003560, 3599424952, 930121256,
];

/** Seeds run by default (1..N). */
const DEFAULT_SEEDS = 500;

const env = process.env;
const onlySeed = env.SEED === undefined || env.SEED === '' ? null : parseSeed(env.SEED, 'SEED');
const seedCount = env.SIM_SEEDS === undefined || env.SIM_SEEDS === '' ? DEFAULT_SEEDS : parseSeed(env.SIM_SEEDS, 'SIM_SEEDS');
const faults = parseFaults(env.SIM_FAULTS);
const overridden = Object.keys(faults).length > 0 ? ` (fault override SIM_FAULTS=${env.SIM_FAULTS})` : '';

function parseSeed(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`${name} must be an integer from 0 to ${0xffffffff}, got ${JSON.stringify(text)}`);
  return value;
}

/** The failure message of a seed: what broke, and how to replay it. */
function report(result: SimResult): string {
  return [`simulation seed ${result.seed} failed${overridden}`, `  setup: ${result.setup}`, ...result.failures.map((f) => `  ${f}`), `  replay: SEED=${result.seed} npm test`].join('\n');
}

/** Runs seeds, prints a summary line, and fails with every failing seed's report. */
function runSeeds(seeds: readonly number[], title: string): void {
  const started = performance.now();
  const totals = zeroCounts();
  const failed: SimResult[] = [];
  for (const seed of seeds) {
    const result = runSeed(seed, { faults });
    addCounts(totals, result.counts);
    if (!result.ok) failed.push(result);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`      ${title}: ${seeds.length} seeds in ${seconds} s, ${failed.length} failed${overridden}\n${indent(formatCounts(totals), '        ')}`);
  if (failed.length > 0) {
    const shown = failed.slice(0, 5).map(report);
    const more = failed.length > 5 ? [`...and ${failed.length - 5} more`] : [];
    expect.fail([`${failed.length} of ${seeds.length} seeds failed: ${failed.map((r) => r.seed).join(' ')}`, ...shown, ...more].join('\n\n'));
  }
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((line) => prefix + line).join('\n');
}

if (onlySeed !== null) {
  describe(`simulation: replay of SEED=${onlySeed}`, function () {
    this.timeout(0);
    it(`seed ${onlySeed}`, () => {
      const level = env.SIM_TRACE === undefined ? 1 : (Number(env.SIM_TRACE) as NonNullable<SimOptions['trace']>);
      const result = runSeed(onlySeed, { faults, trace: level });
      console.log(result.trace.join('\n'));
      console.log(`${formatCounts(result.counts)}\nwall time ${result.wallMs.toFixed(0)} ms, fingerprint ${result.fingerprint}`);
      if (!result.ok) expect.fail(report(result));
    });
  });
} else {
  describe('simulation harness', () => {
    it('is deterministic: the same seed gives the same run, another seed another one', () => {
      const a = runSeed(7, { trace: 2 });
      const b = runSeed(7, { trace: 2 });
      expect(b.trace).to.deep.equal(a.trace);
      expect(b.fingerprint).to.equal(a.fingerprint);
      expect(b.counts).to.deep.equal(a.counts);
      expect(runSeed(8).fingerprint).to.not.equal(a.fingerprint);
    });

    it('with every fault off, writes reach every node by forwarding alone, well before an anti-entropy period', () => {
      const off = { loss: 0, duplication: 0, reorder: false, partitionEveryMs: 0, crashEveryMs: 0, resetEveryMs: 0, pauseEveryMs: 0, clockSkewMs: 0 };
      for (let seed = 1; seed <= 10; seed++) {
        const result = runSeed(seed, { faults: off, faultPhaseMs: 5_000 });
        expect(result.failures, `seed ${seed}`).to.deep.equal([]);
        // The last writes need a few hops of at most ~230 ms each; anti-entropy would take 10 s.
        expect(result.convergedAfterMs, `seed ${seed}`).to.be.at.most(3_000);
        expect(result.counts).to.include({ dropped: 0, duplicated: 0, reordered: 0, partitions: 0, crashesWithState: 0, crashesWithoutState: 0 });
      }
    });

    it('injects every kind of fault over a few seeds', () => {
      const totals = zeroCounts();
      for (let seed = 1; seed <= 40; seed++) addCounts(totals, runSeed(seed, { faultPhaseMs: 10_000 }).counts);
      for (const kind of ['dropped', 'duplicated', 'reordered', 'lostInFlight', 'refusedDials', 'timedOutDials', 'partitions', 'silentPartitions', 'pauses', 'linkResets', 'crashesWithState', 'crashesWithoutState', 'newIds', 'addPeers'] as const) {
        expect(totals[kind], kind).to.be.above(0);
      }
    });

    describe('the final check', () => {
      const entry = (key: string, value: string, origin: string, at: number) => ({ key, value, origin, timestamp: START_MS + at });
      const x1 = entry('x', '1', 'a', 10);
      const x2 = entry('x', '2', 'b', 20);

      it('passes identical stores that hold every acknowledged write or an older one', () => {
        const stores = new Map([['a', [x1]], ['b', [x1]]]);
        expect(checkStores(stores, [{ key: 'x', entry: x1, node: 'a' }, { key: 'x', entry: x2, node: 'b' }])).to.deep.equal([]);
      });

      it('fails stores that differ, naming the key and what each node holds', () => {
        const failures = checkStores(new Map([['a', [x1]], ['b', [x2]]]), []);
        expect(failures).to.have.length(1);
        expect(failures[0]).to.match(/stores differ on 1 of 1 keys/).and.match(/x: a="1"@a\/10 b="2"@b\/20/);
      });

      it('fails an acknowledged write that is missing, or lost to a newer one, unless its disks were lost', () => {
        expect(checkStores(new Map([['a', []], ['b', []]]), [{ key: 'x', entry: x1, node: 'a' }])[0]).to.match(/x="1"@a\/10 \(acked by a\) is missing on a/);
        expect(checkStores(new Map([['a', [x2]], ['b', [x2]]]), [{ key: 'x', entry: x1, node: 'a' }])[0]).to.match(/lost to the newer "2"@b\/20 on a/);
        expect(checkStores(new Map([['a', []], ['b', []]]), [{ key: 'x', entry: x1, node: 'a', lostWithDisk: true }])).to.deep.equal([]);
      });

      it('fails an entry that no client wrote', () => {
        expect(checkStores(new Map([['a', [x1]]]), [], new Set())[0]).to.match(/entries that no client wrote: a holds x=/);
      });
    });
  });

  describe('simulation: mesh converges through faults', function () {
    this.timeout(0);
    const regression = new Set(REGRESSION_SEEDS);
    const range = Array.from({ length: seedCount }, (_, i) => i + 1).filter((seed) => !regression.has(seed));

    it(`regression seeds (${REGRESSION_SEEDS.length})`, () => {
      runSeeds(REGRESSION_SEEDS, 'regression seeds');
    });

    it(`seeds 1..${seedCount}${range.length < seedCount ? ' but the regression seeds' : ''}`, () => {
      runSeeds(range, `seeds 1..${seedCount}`);
    });
  });
}
