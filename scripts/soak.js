#!/usr/bin/env node
// `npm run soak`: runs the deterministic simulation (the @bby/sim workspace package,
// packages/sim, compiled by `tsc -b`) on fresh random seeds until the time budget is spent, in chunks,
// on every CPU, printing progress and each failing seed with its replay line.
//
//   npm run soak                          5 minutes
//   npm run soak -- --minutes 60          an hour
//   npm run soak -- --workers 1 --chunk 50 --faults loss=0,reorder=false
//
// Exit code 1 when a seed failed: add it to REGRESSION_SEEDS in
// packages/sim/test/simulation.test.ts, and replay it with `SEED=<n> npm test`.
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

// Resolved, not imported, here: the main thread first says so plainly when the package is not built.
const simulation = new URL(import.meta.resolve('@bby/sim'));

if (!isMainThread) {
  const { runSeed, parseFaults } = await import(simulation.href);
  const faults = parseFaults(workerData.faults);
  parentPort.on('message', async (seeds) => {
    const results = [];
    for (const seed of seeds) {
      const { ok, failures, setup, counts, wallMs } = await runSeed(seed, { faults });
      results.push({ seed, ok, failures, setup, counts, wallMs });
    }
    parentPort.postMessage(results);
  });
} else {
  await main();
}

function usage(message) {
  if (message) process.stderr.write(`soak: ${message}\n`);
  process.stderr.write('usage: npm run soak -- [--minutes N] [--workers N] [--chunk N] [--faults loss=0,...]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { minutes: 5, workers: Math.max(1, availableParallelism()), chunk: 25, faults: process.env.SIM_FAULTS ?? '' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = inline ?? argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    switch (flag) {
      case '--minutes':
        options.minutes = Number(value);
        if (!(options.minutes > 0)) usage('--minutes must be a positive number');
        break;
      case '--workers':
        options.workers = Number(value);
        if (!Number.isInteger(options.workers) || options.workers < 1) usage('--workers must be a positive integer');
        break;
      case '--chunk':
        options.chunk = Number(value);
        if (!Number.isInteger(options.chunk) || options.chunk < 1) usage('--chunk must be a positive integer');
        break;
      case '--faults':
        options.faults = value;
        break;
      default:
        usage(`unknown option ${flag}`);
    }
  }
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(fileURLToPath(simulation))) {
    process.stderr.write(`soak: ${fileURLToPath(simulation)} is missing; build first with \`npx tsc -b\` (npm run soak does)\n`);
    process.exit(2);
  }
  const { addCounts, formatCounts, parseFaults, zeroCounts } = await import(simulation.href);
  parseFaults(options.faults); // fail early on a bad --faults
  const budgetMs = options.minutes * 60_000;
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const clock = (ms) => `${Math.floor(ms / 60_000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`;
  const totals = zeroCounts();
  const failed = [];
  const seen = new Set();
  let runs = 0;
  let slowest = { seed: null, wallMs: 0 };
  let lastProgress = 0;
  let stopping = false;

  process.stdout.write(
    `soak: fresh random seeds for ${options.minutes} min on ${options.workers} worker(s), ${options.chunk} seeds per chunk` +
      `${options.faults ? `, faults ${options.faults}` : ''}\n`,
  );
  process.on('SIGINT', () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stdout.write('\nsoak: stopping after the chunks under way (Ctrl-C again to quit now)\n');
  });

  const freshSeeds = () => {
    const seeds = [];
    while (seeds.length < options.chunk) {
      const seed = randomInt(0, 0x100000000);
      if (!seen.has(seed)) {
        seen.add(seed);
        seeds.push(seed);
      }
    }
    return seeds;
  };

  const progress = (force) => {
    if (!force && elapsed() - lastProgress < 10_000) return;
    lastProgress = elapsed();
    const rate = runs / Math.max(1, elapsed() / 1000);
    process.stdout.write(
      `[${clock(elapsed())}] ${runs} seeds, ${failed.length} failed, ${rate.toFixed(1)} seeds/s; ` +
        `${totals.dropped} frames dropped, ${totals.duplicated} duplicated, ${totals.partitions} partitions, ` +
        `${totals.crashesWithState + totals.crashesWithoutState} crashes\n`,
    );
  };

  const work = (worker) =>
    new Promise((resolve, reject) => {
      const next = () => {
        if (stopping || elapsed() >= budgetMs) return resolve();
        worker.once('message', (results) => {
          for (const result of results) {
            runs++;
            addCounts(totals, result.counts);
            if (result.wallMs > slowest.wallMs) slowest = { seed: result.seed, wallMs: result.wallMs };
            if (!result.ok) {
              failed.push(result);
              process.stdout.write(
                `\nFAILED seed ${result.seed}\n  setup: ${result.setup}\n${result.failures.map((f) => `  ${f}`).join('\n')}\n` +
                  `  replay: SEED=${result.seed} npm test${options.faults ? ` (with SIM_FAULTS=${options.faults})` : ''}\n\n`,
              );
            }
          }
          progress(false);
          next();
        });
        worker.postMessage(freshSeeds());
      };
      worker.once('error', reject);
      next();
    });

  const workers = Array.from({ length: options.workers }, () => new Worker(new URL(import.meta.url), { workerData: { faults: options.faults } }));
  try {
    await Promise.all(workers.map(work));
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  progress(true);
  process.stdout.write(`\n${formatCounts(totals)}\n`);
  if (slowest.seed !== null) process.stdout.write(`slowest seed ${slowest.seed}: ${slowest.wallMs.toFixed(0)} ms\n`);
  if (failed.length === 0) {
    process.stdout.write(`soak: ${runs} seeds in ${clock(elapsed())}, none failed\n`);
    return;
  }
  process.stdout.write(`\nsoak: ${failed.length} of ${runs} seeds failed. Replay each, and add it to REGRESSION_SEEDS in packages/sim/test/simulation.test.ts:\n`);
  for (const result of failed) process.stdout.write(`  SEED=${result.seed} npm test    # ${result.failures[0].split('\n')[0]}\n`);
  process.exitCode = 1;
}
