// Watches the memory of a node under abuse: VmRSS from /proc every 50 ms,
// the peak seen, and a cap above which the node is killed, so that a node
// without limits cannot take the machine down with it.

/** How often VmRSS is read, in milliseconds. */
export const RSS_POLL_MS = 50;

/**
 * Polls `proc` (a Proc of bench/lib/procs.js) until `stop()`; kills it
 * (SIGKILL) when its RSS passes `capBytes`. `stop()` returns
 * `{ peakBytes, cappedAtMs (ms after the start, or undefined), samples }`.
 */
export function watchMemory(proc, { capBytes }) {
  const started = performance.now();
  let peakBytes = 0;
  let cappedAtMs;
  let samples = 0;
  const poll = () => {
    const { rss } = proc.memory();
    if (rss === undefined) return;
    samples++;
    if (rss > peakBytes) peakBytes = rss;
    if (rss > capBytes && cappedAtMs === undefined) {
      cappedAtMs = performance.now() - started;
      proc.child.kill('SIGKILL');
    }
  };
  poll();
  const timer = setInterval(poll, RSS_POLL_MS);
  return {
    get capped() {
      return cappedAtMs !== undefined;
    },
    stop() {
      poll();
      clearInterval(timer);
      return { peakBytes, cappedAtMs, samples };
    },
  };
}
