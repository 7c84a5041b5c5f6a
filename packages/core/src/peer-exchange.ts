/**
 * Peer exchange (the course's getPeers): peers tell each other the listening
 * addresses of their own peers, so that a node started with one peer finds
 * the mesh. Limited in number and rate, so that a bad peer list cannot make a
 * node dial the world.
 */
import { dialableAddress } from './address.js';

/** A node dials at most this many learnt addresses at a time. */
export const MAX_LEARNED_PEERS = 16;

/** One peer list makes a node learn at most this many new addresses. */
export const MAX_LEARNED_PER_LIST = 4;

/** A peer list carries at most this many addresses. */
export const MAX_PEER_LIST = 32;

/** A learnt address that failed this many dials in a row is forgotten. */
export const LEARNED_MAX_FAILURES = 5;

/** A node learns at most this many new addresses per minute, whatever the peer lists say: a flood of lists cannot make it a port scanner. */
export const MAX_LEARNED_PER_MINUTE = 8;

/** A forgotten learnt address is not learnt again for this long, in milliseconds (it failed LEARNED_MAX_FAILURES dials). */
export const FORGOTTEN_FOR_MS = 10 * 60_000;

/** Forgotten addresses remembered at once (oldest dropped first). */
export const MAX_FORGOTTEN = 256;

/**
 * How many new addresses a node may learn now: MAX_LEARNED_PER_MINUTE in any
 * minute, and none that it forgot lately. Room for a learnt address that is
 * forgotten must not make room for the next one at once, or a peer could make
 * a node dial address after address.
 */
export class LearningBudget {
  /** When each address learnt in the last minute was learnt, oldest first. */
  readonly #learntAtMs: number[] = [];
  /** Addresses forgotten, with when, oldest first. */
  readonly #forgotten = new Map<string, number>();

  /** How many addresses may be learnt now. */
  room(nowMs: number): number {
    while (this.#learntAtMs.length > 0 && nowMs - this.#learntAtMs[0]! >= 60_000) this.#learntAtMs.shift();
    return MAX_LEARNED_PER_MINUTE - this.#learntAtMs.length;
  }

  /** An address was learnt now. */
  learnt(nowMs: number): void {
    this.#learntAtMs.push(nowMs);
  }

  /** A learnt address was forgotten after failing: it is not learnt again for FORGOTTEN_FOR_MS. */
  forgot(address: string, nowMs: number): void {
    this.#forgotten.delete(address);
    this.#forgotten.set(address, nowMs);
    if (this.#forgotten.size > MAX_FORGOTTEN) this.#forgotten.delete(this.#forgotten.keys().next().value!);
  }

  /** True when `address` was forgotten less than FORGOTTEN_FOR_MS ago. */
  wasForgotten(address: string, nowMs: number): boolean {
    const at = this.#forgotten.get(address);
    return at !== undefined && nowMs - at < FORGOTTEN_FOR_MS;
  }
}

/** Picks the addresses of a received peer list worth dialing; `isKnown` says which ones this node already has. */
export function addressesToLearn(addresses: readonly string[], isKnown: (address: string) => boolean, room: number): string[] {
  const learned: string[] = [];
  const limit = Math.min(room, MAX_LEARNED_PER_LIST);
  for (const text of addresses) {
    if (learned.length >= limit) break;
    const address = dialableAddress(text);
    if (address === null) continue;
    if (!isKnown(address) && !learned.includes(address)) learned.push(address);
  }
  return learned;
}
