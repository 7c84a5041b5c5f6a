/**
 * Load helpers shared by the end-to-end tests: many requests in flight, a
 * seeded PRNG for reproducible fault timing.
 */
import { type BbyClient } from '../../src/client.js';

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sets every entry with at most `inFlight` requests outstanding; every answer must be `true`. */
export async function setAll(client: BbyClient, entries: ReadonlyMap<string, string>, inFlight = 32): Promise<void> {
  const list = [...entries];
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const [key, value] = list[next++]!;
      const result = await client.request({ type: 'set', key, value });
      if (result !== true) throw new Error(`set ${key} answered ${JSON.stringify(result)}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/** The entries whose value, read with `get`, is not the expected one (at most `inFlight` reads at a time). */
export async function wrongValues(
  get: (key: string) => Promise<unknown>,
  entries: ReadonlyMap<string, string>,
  inFlight = 64,
): Promise<{ key: string; expected: string; got: unknown }[]> {
  const list = [...entries];
  const wrong: { key: string; expected: string; got: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const [key, expected] = list[next++]!;
      const got = await get(key);
      if (got !== expected) wrong.push({ key, expected, got });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return wrong;
}
