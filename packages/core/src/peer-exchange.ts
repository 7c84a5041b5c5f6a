/**
 * Peer exchange (the course's getPeers): peers tell each other the listening
 * addresses of their own peers, so that a node started with one peer finds
 * the mesh. Limited in number and rate, so that a bad peer list cannot make a
 * node dial the world.
 */
import { parseAddress } from './address.js';

/** A node dials at most this many learnt addresses at a time. */
export const MAX_LEARNED_PEERS = 16;

/** One peer list makes a node learn at most this many new addresses. */
export const MAX_LEARNED_PER_LIST = 4;

/** A peer list carries at most this many addresses. */
export const MAX_PEER_LIST = 32;

/** A learnt address that failed this many dials in a row is forgotten. */
export const LEARNED_MAX_FAILURES = 5;

/** Picks the addresses of a received peer list worth dialing; `isKnown` says which ones this node already has. */
export function addressesToLearn(addresses: readonly string[], isKnown: (address: string) => boolean, room: number): string[] {
  const learned: string[] = [];
  const limit = Math.min(room, MAX_LEARNED_PER_LIST);
  for (const text of addresses) {
    if (learned.length >= limit) break;
    let address: string;
    try {
      address = parseAddress(text).address;
    } catch {
      continue;
    }
    if (!isKnown(address) && !learned.includes(address)) learned.push(address);
  }
  return learned;
}
