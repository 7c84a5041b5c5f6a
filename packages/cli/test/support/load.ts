/**
 * Load helpers shared by the end-to-end tests: many requests in flight, a
 * seeded PRNG for reproducible fault timing.
 */
import { seededRandom } from '@bby/core';
import { type BbyClient } from '@bby/client';

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export const mulberry32 = seededRandom;

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
