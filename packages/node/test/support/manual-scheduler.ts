/** A Scheduler for tests that drive the disk side without real timers. */
import { type Scheduler } from '../../src/scheduler.js';

/** A Scheduler (src/scheduler.ts) on a clock that moves only when a test says so. */
export class ManualScheduler implements Scheduler {
  nowMs = 0;
  readonly #timers: { atMs: number; run: () => void; cancelled: boolean }[] = [];

  after(delayMs: number, run: () => void): () => void {
    const timer = { atMs: this.nowMs + delayMs, run, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Moves time on by `ms`, running what falls due, in time order. */
  advance(ms: number): void {
    const untilMs = this.nowMs + ms;
    for (;;) {
      const due = this.#timers.filter((timer) => !timer.cancelled && timer.atMs <= untilMs).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) break;
      due.cancelled = true;
      this.nowMs = due.atMs;
      due.run();
    }
    this.nowMs = untilMs;
  }

  /** Timers set and not run or cancelled yet. */
  get pending(): number {
    return this.#timers.filter((timer) => !timer.cancelled).length;
  }
}
