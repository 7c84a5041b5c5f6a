/**
 * How long to wait before dialing an unreachable peer again: exponential, with
 * jitter so that nodes restarted together do not dial in lockstep, and capped
 * so that a peer that comes back is found within seconds.
 */

/** Delay before the first retry, in milliseconds. */
export const RETRY_BASE_MS = 100;

/** Longest delay between two dials of one peer, in milliseconds. */
export const RETRY_CAP_MS = 5_000;

/** Delay after `failures` consecutive failed dials (1 or more); `random` is in [0, 1). */
export function retryDelayMs(failures: number, random: number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** exponent);
  // Jitter in [ceiling/2, ceiling): never immediate, never above the cap.
  return Math.floor(ceiling / 2 + (ceiling / 2) * random);
}
