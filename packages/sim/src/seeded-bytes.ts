/** Random bytes from a seeded PRNG, for the nonces of authentication in a simulated run (deterministic, so never for real use). */
export function randomBytesFrom(random: () => number): (size: number) => Uint8Array {
  return (size) => Uint8Array.from({ length: size }, () => Math.floor(random() * 256));
}
