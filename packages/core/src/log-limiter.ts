/**
 * Rate limits log lines caused from outside (refused handshakes, errors
 * reported by clients), so that a flood of bad connections cannot flood the
 * log: a line per source and period at most, a bounded number of sources
 * remembered, and a bounded number of lines per period in all; what is left
 * out is counted and said with the next line that goes out.
 */

/** A source logs at most one line per this period, in milliseconds. */
export const LOG_PERIOD_MS = 60_000;

/** At most this many lines caused from outside are logged per period, whatever their sources. */
export const MAX_LOG_LINES_PER_PERIOD = 20;

/** Sources remembered at once (oldest forgotten first): a flood from many addresses cannot grow the table. */
export const MAX_LOG_SOURCES = 1024;

/** Decides which lines of a noisy kind go out. */
export class LogLimiter {
  /** When each source last logged, and how many of its lines were left out since. */
  readonly #sources = new Map<string, { lastMs: number; suppressed: number }>();
  #periodStartMs = -Infinity;
  #linesThisPeriod = 0;
  /** Lines left out because of the overall cap, said with the next line. */
  #suppressedOverall = 0;

  /**
   * Whether a line about `source` may be logged now; when it may, `suppressed`
   * counts the lines left out before it (of this source, and overall).
   */
  admit(source: string, nowMs: number): { readonly log: boolean; readonly suppressed: number } {
    if (nowMs - this.#periodStartMs >= LOG_PERIOD_MS) {
      this.#periodStartMs = nowMs;
      this.#linesThisPeriod = 0;
    }
    let state = this.#sources.get(source);
    if (state !== undefined && nowMs - state.lastMs < LOG_PERIOD_MS) {
      state.suppressed++;
      return { log: false, suppressed: 0 };
    }
    if (this.#linesThisPeriod >= MAX_LOG_LINES_PER_PERIOD) {
      this.#suppressedOverall++;
      return { log: false, suppressed: 0 };
    }
    this.#linesThisPeriod++;
    const suppressed = (state?.suppressed ?? 0) + this.#suppressedOverall;
    this.#suppressedOverall = 0;
    // Re-inserted, so that the map's order is the order of last use and the oldest goes first.
    this.#sources.delete(source);
    state = { lastMs: nowMs, suppressed: 0 };
    this.#sources.set(source, state);
    if (this.#sources.size > MAX_LOG_SOURCES) this.#sources.delete(this.#sources.keys().next().value!);
    return { log: true, suppressed };
  }
}
