/**
 * The periods of a node's background work, in milliseconds. All of it runs
 * from `tick()`, on the injected clock.
 */

/** Periods and timeouts of a node; see DEFAULT_TIMING. */
export interface Timing {
  /** A peer link with nothing to send gets a ping this often. */
  readonly heartbeatIntervalMs: number;
  /** A peer that sent nothing for this long is marked down and its link closed. */
  readonly peerTimeoutMs: number;
  /** Every connected peer gets the store's digest this often (anti-entropy; the course resyncs every 10 s). */
  readonly antiEntropyIntervalMs: number;
  /** Every connected peer gets this node's peer list this often. */
  readonly peerExchangeIntervalMs: number;
}

/** Defaults: a stopped peer is noticed within 4 s; stores are compared every 10 s. */
export const DEFAULT_TIMING: Timing = {
  heartbeatIntervalMs: 1_000,
  peerTimeoutMs: 4_000,
  antiEntropyIntervalMs: 10_000,
  peerExchangeIntervalMs: 30_000,
};
