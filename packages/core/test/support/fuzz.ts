/**
 * How the fuzz tests run: with a fixed seed and a small number of runs in
 * `npm test` (so that they are fast and a red run is the same on every
 * machine), or long and on other seeds from the environment:
 *
 *   npx tsc -b && FUZZ_RUNS=100000 FUZZ_SEED=7 npx mocha --no-config --timeout 0 packages/core/dist/test/fuzz.test.js packages/node/dist/test/fuzz-*.test.js
 *
 * - FUZZ_RUNS: runs of every property (default: each property's own, a few hundred).
 * - FUZZ_SEED: the seed, or `random` for a new one each time (default: FIXED_FUZZ_SEED).
 * - FUZZ_PATH: with FUZZ_SEED, replays one failing run at once (fast-check prints
 *   the seed and path of a failure: `{ seed: 7, path: "52:3:1" }`).
 *
 * The adapter's fuzz tests use this file too (packages/node/test/support/core-fuzz.ts).
 */
import type fc from 'fast-check';

/** The seed of `npm test`. */
export const FIXED_FUZZ_SEED = 20_260_412;

/**
 * fast-check parameters for a property of `defaultRuns` runs, from the
 * environment. `seedOffset` gives properties that share a generator their own
 * fixed seed (the same seed would give each the same inputs); a FUZZ_SEED
 * given is used as it is, so that a printed seed replays.
 */
export function fuzzParameters<T>(defaultRuns: number, seedOffset = 0): fc.Parameters<T> {
  const runs = process.env.FUZZ_RUNS;
  const seed = process.env.FUZZ_SEED;
  const path = process.env.FUZZ_PATH;
  return {
    numRuns: runs === undefined ? defaultRuns : positiveInteger('FUZZ_RUNS', runs),
    seed: seed === undefined ? FIXED_FUZZ_SEED + seedOffset : seed === 'random' ? Date.now() ^ (Math.random() * 0x100000000) : integer('FUZZ_SEED', seed),
    ...(path === undefined ? {} : { path, endOnFailure: true }),
  };
}

/** The mocha timeout of a fuzz suite: `defaultMs` in `npm test`, none for a long run. */
export function fuzzTimeoutMs(defaultMs: number): number {
  return process.env.FUZZ_RUNS === undefined ? defaultMs : 0;
}

function positiveInteger(name: string, text: string): number {
  const value = integer(name, text);
  if (value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

function integer(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer (or FUZZ_SEED=random), got ${JSON.stringify(text)}`);
  return value;
}
