/**
 * Deterministic simulation of the mesh under faults (issue 4): see
 * src/simulation.ts for the model. Each seed runs a fault phase (writes,
 * lost / duplicated / reordered frames, partitions, link resets, pauses,
 * crashes with and without their disk, failed fsyncs, full disks, bits
 * flipped on read, torn writes) and a liveness phase (faults stop,
 * everything restarts); then every node must hold the identical store and
 * every acknowledged write (or an older write of its key) must be on every node,
 * and every `error` frame between nodes must be of a class that a fault of the
 * run explains on its link (src/peer-errors.ts).
 *
 *   npm test                      seeds 1..500 and REGRESSION_SEEDS
 *   SIM_SEEDS=2000 npm test       seeds 1..2000
 *   SEED=42 npm test              only seed 42, printing its fault schedule (SIM_TRACE=2 or 3 for more)
 *   SIM_FAULTS=loss=0 npm test    override part of every seed's fault profile (see parseFaults)
 *   npm run soak -- --minutes 30  fresh random seeds for 30 minutes
 */
import { expect } from 'chai';
import { addCounts, checkStores, formatCounts, parseFaults, runSeed, type SimOptions, type SimResult, START_MS, zeroCounts } from '../src/index.js';

/**
 * Seeds that failed at least once. Each runs on every test run; add any seed
 * that fails (in CI or in a soak) with a note, and keep it after the fix. A
 * seed that does not converge costs ~0.05 s, one that converges ~0.03 s.
 */
const REGRESSION_SEEDS: readonly number[] = [
  // Found 2026-11-26 (core at cb3c2b5): seeds 1..500 and two soaks (5 min: 245 of 19,650
  // seeds failed). Two causes, each confirmed by patching it out of a copy of the core.
  //
  // (A) A lost or reordered "catch-up" / "caught-up" leaves its link never caught up;
  // anti-entropy skips such links, and only the smaller id starts a round, so the pair
  // never repairs: a node whose only path is that link keeps a different store. Every
  // one of these seeds has loss or reorder, most have peer exchange off.
  155, 187, 204, 236, 240, 275, 321, 336, 377, 435, 2336180618, 69922232, 780458248, 86287412, 97419323, 114888399,
  119171647, 119224050, 127359246, 139314606, 152848878, 157490123, 158403710, 200601861, 202390171, 221515870,
  227801725, 243551814, 320544306, 327647548, 415745951, 427804909, 475474419, 511276387, 533228045, 542918496,
  548068883, 623531678, 623998679, 646692966, 664676106, 690087539, 698386975, 705341000, 721836382, 722258332,
  741741127, 756441467, 767370626, 785114704, 845931859, 863011744, 895894148, 909772552, 929648497, 935221633,
  954495707, 974833722, 977113654, 1021364164, 1096204038, 1186066008, 1208426956, 1232108952, 1291692377,
  1312738366, 1322991772, 1325190440, 1327114914, 1340610774, 1370710294, 1395609899, 1396262724, 1397677350,
  1441996875, 1480663241, 1499515210, 1503618365, 1566401039, 1572612801, 1593343260, 1596582083, 1633545255,
  1653555962, 1663278952, 1670685829, 1682412164, 1687460609, 1724438052, 1757673157, 1760882812, 1765700375,
  1773877206, 1794675159, 1795472467, 1799360192, 1803467053, 1805748710, 1868862898, 1890298070, 1892935100,
  1893914012, 1895933082, 1898528905, 1908644934, 1911935586, 1915597165, 1917985490, 1933678751, 1952738628,
  1971991251, 2017832291, 2025236631, 2036757134, 2048476548, 2053114793, 2073634927, 2106258332, 2118992284,
  2124108691, 2127270527, 2145494394, 2186539014, 2188003404, 2215175875, 2227215192, 2247869873, 2265557087,
  2285922309, 2305168176, 2313675140, 2354382712, 2370895279, 2371528040, 2374190306, 2410486108, 2559822814,
  2564639165, 2569050771, 2575289844, 2593990457, 2616897702, 2618495093, 2686534772, 2715787950, 2724188163,
  2729918581, 2751960111, 2774733657, 2776809047, 2875567248, 2885612858, 2902191000, 2903034714, 2919186822,
  2927234730, 2937065133, 2937170956, 2955843840, 2958359843, 2963821602, 2981986365, 3002525743, 3040380051,
  3063053585, 3072101633, 3126359077, 3145752159, 3156826512, 3190356286, 3220776463, 3258439925, 3259283833,
  3286906449, 3307364463, 3418670119, 3418795822, 3437082478, 3446143799, 3446399229, 3447742382, 3482147100,
  3516026291, 3516994755, 3523986196, 3556341091, 3567057673, 3590441010, 3604916558, 3607826347, 3618472303,
  3624983253, 3644018748, 3645410136, 3679242100, 3682604377, 3728871017, 3757662751, 3760279107, 3788540705,
  3789025437, 3800654336, 3849175558, 3900373744, 3936044760, 3969567558, 3977265468, 4006097507, 4018287708,
  4031125862, 4046816455, 4077794503, 4103646278, 4134894773, 4149955702, 4153347916, 4156636768, 4188893099,
  4194275648, 4205550682, 4219218015, 4236548531, 4261143758, 4286976902,
  //
  // (B) Seeds without anti-entropy (drawn only with no loss and no reorder): a peer's
  // cursor into a node's feed moves on a "ping" (or an "entries" upTo) from one link,
  // past changes sent on another link to the same peer and lost with it (link reset,
  // partition, heartbeat timeout after a pause); catch-up never sends them again.
  2379283798, 2823639558, 2209381532, 261096793, 1483003560, 3599424952, 930121256, 12992206, 111070521, 287443365,
  879721535, 948134511, 1051219296, 1123314110, 1338083092, 1366039154, 1410439574, 1488776524, 1639163966,
  1660331408, 1979644645, 2021605632, 2182616176, 2280794087, 2308412292, 2709012823, 2785088101, 3150512246,
  3283048180, 3419985924, 3450489034, 3499399206, 3636224674, 3793923680, 3795252667, 3873896939, 4026456173,
  4100758345, 4127698946, 4133336598, 4251272477,
  //
  // (C) Found 2026-12-07 by a soak of @bby/sim, the first to run bby-node's own storage: a start
  // whose fsync failed in createLog left log-00000000.bby with a name that was not durable; the
  // next start reused that log without syncing its folder, so a crash later lost every write it
  // had acknowledged. Fixed in packages/node/src/storage/engine.ts (Storage.open makes a reused
  // log and its name durable); storage-start-after-failed-start.test.ts tests it alone.
  // Since a35d975 this seed no longer guards that fix: a blank disk starts as bby-node's does, and
  // a start that finds no node.json writes it (syncing the folder, so the reused log's name too)
  // before any append. With the fix reverted this seed, seeds 1..500, and 150 seeds with failed
  // fsyncs at 10% and crashes every 1.5 s all pass (2026-12-07): the state the fix guards (a
  // node.json beside a newest log whose name is not durable) comes only from a failed compaction
  // or repair, which the simulation never runs (its logs stay far below COMPACT_MIN_BYTES). The
  // seed stays for its faults: failed fsyncs in a node's first starts.
  1488793337,
];

/** Seeds run by default (1..N). */
const DEFAULT_SEEDS = 500;

/** Seeds run again with entries cut into small messages. */
const SMALL_BATCH_SEEDS = 200;
const SMALL_BATCH_LENGTH = 400;

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
async function runSeeds(seeds: readonly number[], title: string, options: SimOptions = {}): Promise<void> {
  const started = performance.now();
  const totals = zeroCounts();
  const failed: SimResult[] = [];
  for (const seed of seeds) {
    const result = await runSeed(seed, { ...options, faults });
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
    it(`seed ${onlySeed}`, async () => {
      const level = env.SIM_TRACE === undefined ? 1 : (Number(env.SIM_TRACE) as NonNullable<SimOptions['trace']>);
      const result = await runSeed(onlySeed, { faults, trace: level });
      console.log(result.trace.join('\n'));
      console.log(`${formatCounts(result.counts)}\nwall time ${result.wallMs.toFixed(0)} ms, fingerprint ${result.fingerprint}`);
      if (!result.ok) expect.fail(report(result));
    });
  });
} else {
  describe('simulation harness', () => {
    it('is deterministic: the same seed gives the same run, another seed another one', async () => {
      const a = await runSeed(7, { trace: 2 });
      const b = await runSeed(7, { trace: 2 });
      expect(b.trace).to.deep.equal(a.trace);
      expect(b.fingerprint).to.equal(a.fingerprint);
      expect(b.counts).to.deep.equal(a.counts);
      expect((await runSeed(8)).fingerprint).to.not.equal(a.fingerprint);
    });

    it('with every fault off, writes reach every node by forwarding alone, well before an anti-entropy period', async () => {
      const off = { loss: 0, duplication: 0, reorder: false, partitionEveryMs: 0, crashEveryMs: 0, resetEveryMs: 0, pauseEveryMs: 0, clockSkewMs: 0, clockJumpEveryMs: 0, syncFailure: 0, readBitFlip: 0, diskFullEveryMs: 0 };
      for (let seed = 1; seed <= 10; seed++) {
        const result = await runSeed(seed, { faults: off, faultPhaseMs: 5_000 });
        expect(result.failures, `seed ${seed}`).to.deep.equal([]);
        // The last writes need a few hops of at most ~230 ms each; anti-entropy would take 10 s.
        expect(result.convergedAfterMs, `seed ${seed}`).to.be.at.most(3_000);
        expect(result.counts).to.include({ dropped: 0, duplicated: 0, reordered: 0, partitions: 0, crashesWithState: 0, crashesWithoutState: 0, syncFailures: 0, diskFulls: 0, storageFailures: 0 });
        // Every write is acknowledged: the disk never fails, no node crashes.
        expect(result.counts.acked + result.counts.refused, `seed ${seed}`).to.equal(result.counts.writes);
        // Nodes running the same code never refuse each other's frames on a healthy link (peer-errors.ts).
        expect(result.counts.protocolErrors, `seed ${seed}`).to.equal(0);
      }
    });

    it('injects every kind of fault over a few seeds', async () => {
      const totals = zeroCounts();
      for (let seed = 1; seed <= 40; seed++) addCounts(totals, (await runSeed(seed, { faultPhaseMs: 10_000 })).counts);
      // A bit flips only on a read at start (a restart with its disk), so it seldom strikes: seed 119 is one where it does.
      addCounts(totals, (await runSeed(119)).counts);
      for (const kind of [
        'dropped', 'duplicated', 'reordered', 'lostInFlight', 'refusedDials', 'timedOutDials', 'partitions', 'silentPartitions', 'pauses', 'linkResets', 'crashesWithState', 'crashesWithoutState', 'newIds', 'addPeers',
        'syncFailures', 'readBitFlips', 'diskFulls', 'storageFailures', 'failedStarts', 'clockJumps',
      ] as const) {
        expect(totals[kind], kind).to.be.above(0);
      }
    });

    // The checker of the checker: with a durability rule broken on purpose, the run must fail. The
    // simulation before @bby/sim ran a model of the disk that took emitted persists as durable, so
    // no seed of it could catch this: here the pipeline and the storage are bby-node's own.
    describe('a durability rule broken on purpose (replies before the disk says durable)', () => {
      // Frequent crashes, slow fsyncs and no lost disks: an acknowledged write whose only copy was not durable is lost.
      const crashy = { syncMs: 20, crashEveryMs: 1_000, diskLoss: 0 };
      const seeds = Array.from({ length: 10 }, (_, i) => i + 1);

      it('fails seeds, with acknowledged writes lost', async () => {
        const failed: number[] = [];
        for (const seed of seeds) {
          const result = await runSeed(seed, { faults: crashy, unsafeReleaseBeforeDurable: true });
          if (result.failures.some((f) => /acknowledged write copies missing or overwritten/.test(f))) failed.push(seed);
        }
        expect(failed, 'seeds whose checks caught a lost acknowledged write').to.not.be.empty;
      });

      it('and the same seeds pass with the rule kept', async () => {
        for (const seed of seeds) {
          const result = await runSeed(seed, { faults: crashy });
          expect(result.failures, `seed ${seed}`).to.deep.equal([]);
        }
      });
    });

    // The fail-stop rule broken on purpose: a batch whose append failed goes out as if kept, so
    // its replies say true. A write counts as acknowledged when its client receives that true (not
    // when a batch object comes out of the pipeline: a checker that went by the batch did not see
    // this, since the batch released is a copy), and seed 27 then loses one: its node's disk
    // failed (no peer got the entry, the node refuses its peers while it cannot write) and a crash
    // came before a retry wrote it.
    describe('the fail-stop rule broken on purpose (a failed batch goes out as if kept)', () => {
      it('fails seed 27, with an acknowledged write lost', async () => {
        const result = await runSeed(27, { unsafeReleaseFailedAsKept: true });
        expect(result.failures.join('\n')).to.match(/acknowledged write copies missing or overwritten:\n.*k21="n3\.78"@n3\/\d+ \(acked by n3\) is missing/);
      });

      it('and seed 27 passes with the rule kept', async () => {
        expect((await runSeed(27)).failures).to.deep.equal([]);
      });
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

    it(`regression seeds (${REGRESSION_SEEDS.length})`, async () => {
      await runSeeds(REGRESSION_SEEDS, 'regression seeds');
    });

    it(`seeds 1..${seedCount}${range.length < seedCount ? ' but the regression seeds' : ''}`, async () => {
      await runSeeds(range, `seeds 1..${seedCount}`);
    });

    // About 5 entries per message: every catch-up spans many batches and goes through flow control.
    it(`seeds 1..${SMALL_BATCH_SEEDS} with small batches (${SMALL_BATCH_LENGTH} characters)`, async () => {
      await runSeeds(Array.from({ length: SMALL_BATCH_SEEDS }, (_, i) => i + 1), 'small batches', { batchLength: SMALL_BATCH_LENGTH });
    });
  });
}
