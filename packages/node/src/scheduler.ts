/**
 * Time for the disk side, injected: `DiskPipeline` and `Persistence` set no
 * timers of their own, so that a simulator can run them on its own clock.
 * `bby-node` passes `realScheduler`.
 */

/** Calls functions later; the only way the disk side waits. */
export interface Scheduler {
  /** Calls `run` once, in `delayMs` milliseconds; returns a function that cancels it. */
  after(delayMs: number, run: () => void): () => void;
}

/**
 * Node's timers. Unreferenced: a pending save or retry never keeps a process
 * alive by itself (a running node has its server for that).
 */
export const realScheduler: Scheduler = {
  after(delayMs, run) {
    const timer = setTimeout(run, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
