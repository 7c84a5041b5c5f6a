/**
 * A seeded random source (mulberry32) for tests, simulations and embedders
 * that want the same run from the same seed. Never for secrets or nonces:
 * an adapter gives a node `crypto` randomness (packages/node).
 */

/** A random source in [0, 1) that gives the same sequence for the same seed (a 32-bit integer). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random bytes drawn from a seeded source, for the `randomBytes` of a node in a deterministic run (its nonces); never for real use. */
export function randomBytesFrom(random: () => number): (size: number) => Uint8Array {
  return (size) => Uint8Array.from({ length: size }, () => Math.floor(random() * 256));
}
