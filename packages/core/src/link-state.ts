/**
 * Where a link stands, as one value, and every move it may make, in one table
 * (h11's _state.py is the model).
 *
 * House rules:
 * - A link's state is written here only, by `moveLink`; everything else reads
 *   it. A move the table does not list throws LinkStateError: it is a bug of
 *   the core, never something a remote side can cause (the handlers check what
 *   a frame may do before they move the link).
 * - A link begins in one of the INITIAL_STATES of its direction and leaves the
 *   table (PeerTable.close) from any state; there is no way back to an earlier
 *   state, and a `peer` link stays a peer until it is closed.
 * - What each state allows (node.ts acts on it):
 *   - `challenged` (inbound, the node has a secret): the frame must be `auth`;
 *     anything else refuses the link.
 *   - `awaiting-challenge`, `awaiting-proof` (outbound, with a secret): the
 *     frame must be the acceptor's `challenge`, then its `authenticated`;
 *     anything else fails the dial.
 *   - `pending`: authenticated, or no secret to check. Inbound, the first
 *     request makes it a `client`, a `hello` a `peer`; outbound, the
 *     `welcome` makes it a `peer`. Peer messages other than the handshake are
 *     refused (NOT_A_PEER).
 *   - `client`: requests are answered. It may still say `hello` and become a
 *     peer, unless it authenticated as a client (then peer messages are
 *     FORBIDDEN and refuse it).
 *   - `peer`: the handshake is done; the remote node's id and address are
 *     known. Every message of the peer protocol is acted on, and requests too.
 *   - `refused`: an error frame and a close went out; nothing more it sends
 *     is read.
 * - What the node keeps about a peer (its catch-up, streams, repairs, lag:
 *   `PeerSession`) lives in the `peer` state, so it exists only on a peer
 *   link and ends with it.
 * - The proof of the authentication handshake (`Credential`) travels with the
 *   link through `pending`, `client` and `peer`: a hello must name the node it
 *   authenticated as, and a client credential never becomes a peer.
 */

import { BbyError } from './errors.js';
import { type OutboundStream } from './outbound-stream.js';

/** What the authentication handshake established: nothing to check (no secret), a client, or a peer (with the node id it gave, if any). */
export type Credential = { readonly role: 'none' } | { readonly role: 'client' } | { readonly role: 'peer'; readonly peerId: string | null };

/** An inbound link of a node with a secret, waiting for the `auth` that answers its `challenge`. */
export interface ChallengedState {
  readonly kind: 'challenged';
  /** The nonce of the challenge this node sent. */
  readonly nonce: string;
}

/** An outbound link of a node with a secret, waiting for the acceptor's `challenge`. */
export interface AwaitingChallengeState {
  readonly kind: 'awaiting-challenge';
}

/** An outbound link that sent its proof, waiting for the acceptor's `authenticated`. */
export interface AwaitingProofState {
  readonly kind: 'awaiting-proof';
  readonly acceptorId: string;
  readonly acceptorNonce: string;
  /** The proof the acceptor must send back. */
  readonly expectedProof: string;
}

/** Authenticated (or nothing to check), waiting for a first request, a `hello` or a `welcome`. */
export interface PendingState {
  readonly kind: 'pending';
  readonly credential: Credential;
}

/** A connection that made requests (or authenticated as a client). */
export interface ClientState {
  readonly kind: 'client';
  readonly credential: Credential;
}

/** A link to another node, its handshake done. */
export interface PeerState {
  readonly kind: 'peer';
  readonly credential: Credential;
  /** The remote node's id, from its hello or welcome. */
  readonly peerId: string;
  /** The remote node's listening address, if known. */
  readonly address: string | null;
  /** When the handshake finished, in the monotonic clock's milliseconds. */
  readonly sinceMs: number;
  /** What the node keeps about the peer on this link; it lives and ends with the `peer` state. */
  readonly session: PeerSession;
}

/** What a node keeps about a peer on a peer link (the concern that writes each field is named), begun by `newPeerSession`. */
export interface PeerSession {
  /** True once the peer's catch-up transfer ended on this link: from then on, `upTo` moves the cursor (catch-up.ts). */
  caughtUp: boolean;
  /**
   * True while every change of this node since it answered the peer's catch-up
   * on this link went out on this link (it was the fan-out link all along): only
   * then may it tell the peer, with `upTo`, how far the peer has its changes (catch-up.ts).
   */
  claimsUpTo: boolean;
  /** The catch-up or repair this node is sending the peer on this link, while it lasts, one at a time (outbound-stream.ts). */
  stream: OutboundStream | null;
  /** Buckets the peer asked to repair while a stream was going out (a flag per bucket): they go next, merged (anti-entropy.ts). */
  pendingRepair: boolean[] | null;
  /** When the last repair stream started on this link, in the monotonic clock's milliseconds (anti-entropy.ts). */
  repairStartedAtMs: number;
  /** The peer's catch-up to this node on this link: entries received, of how many, from its first batch's `expected` (catch-up.ts). */
  catchUpIn: { entries: number; expected: number | null; done: boolean; loggedAtMs: number; loggedEntries: number } | null;
  /** How old the last live write from this peer that changed the store was on arrival, in milliseconds (broadcast.ts). */
  lagMs: number | null;
  /** The listening addresses of the peer's own peers, from its last `peer-list` (node.ts). */
  reportedPeers: readonly string[];
}

/** A peer session as a handshake ends: nothing streamed, received or reported yet. */
export function newPeerSession(): PeerSession {
  return { caughtUp: false, claimsUpTo: false, stream: null, pendingRepair: null, repairStartedAtMs: -Infinity, catchUpIn: null, lagMs: null, reportedPeers: [] };
}

/** A link refused (an error frame and a close sent), waiting for the adapter to report it closed. */
export interface RefusedState {
  readonly kind: 'refused';
  /** What it was before, for counts: a refused client still holds a client's socket. */
  readonly was: 'pending' | 'client';
}

/** Where a link stands; see the house rules at the top of this file. */
export type LinkState = ChallengedState | AwaitingChallengeState | AwaitingProofState | PendingState | ClientState | PeerState | RefusedState;

/** The name of a link state. */
export type LinkStateKind = LinkState['kind'];

/** The states a new link may begin in, by direction. */
export const INITIAL_STATES: { readonly [Direction in 'inbound' | 'outbound']: readonly LinkStateKind[] } = {
  inbound: ['challenged', 'pending'],
  outbound: ['awaiting-challenge', 'pending'],
};

/** Every move a link may make: from a state (the key) to the states listed, and no other. */
export const LINK_TRANSITIONS: { readonly [From in LinkStateKind]: readonly LinkStateKind[] } = {
  // Its auth checked out: a peer still says hello; a client may make requests.
  challenged: ['pending', 'client', 'refused'],
  'awaiting-challenge': ['awaiting-proof', 'refused'],
  // The acceptor proved it holds the secret: the welcome comes next.
  'awaiting-proof': ['pending', 'refused'],
  // A first request, or the handshake.
  pending: ['client', 'peer', 'refused'],
  // A connection that made requests may still say hello.
  client: ['peer', 'refused'],
  peer: [],
  refused: [],
};

/** A move the transition table does not allow: a bug of the core (code CORE_BUG). */
export class LinkStateError extends BbyError {
  override name = 'LinkStateError';
  constructor(
    readonly link: string,
    readonly from: LinkStateKind | null,
    readonly to: LinkStateKind,
  ) {
    super('CORE_BUG', `link ${link} may not move from ${from ?? '(new)'} to ${to} (link-state.ts lists the moves a link may make): a bug of bby's core, please report it`);
  }
}

/** Anything with a link state: a Link (peer-table.ts). */
export interface HasLinkState {
  readonly id: string;
  readonly direction: 'inbound' | 'outbound';
  readonly state: LinkState;
}

/** The first state of a new link, checked against INITIAL_STATES. */
export function initialLinkState<S extends LinkState>(link: string, direction: HasLinkState['direction'], state: S): S {
  if (!INITIAL_STATES[direction].includes(state.kind)) throw new LinkStateError(link, null, state.kind);
  return state;
}

/** Moves a link to `next`, if the table allows it; throws LinkStateError otherwise. */
export function moveLink<L extends HasLinkState, S extends LinkState>(link: L, next: S): asserts link is L & { readonly state: S } {
  if (!LINK_TRANSITIONS[link.state.kind].includes(next.kind)) throw new LinkStateError(link.id, link.state.kind, next.kind);
  (link as { state: LinkState }).state = next;
}

/** The credential a link carries, once its authentication handshake is done (or was not needed); null before and once refused. */
export function credentialOf(state: LinkState): Credential | null {
  return state.kind === 'pending' || state.kind === 'client' || state.kind === 'peer' ? state.credential : null;
}

/** The remote node's id, on a peer link; null on any other. */
export function peerIdOf(state: LinkState): string | null {
  return state.kind === 'peer' ? state.peerId : null;
}

/** Whether a link is still in its handshake, for counts and timeouts: neither a client nor a peer yet (a refused one counts as what it was). */
export function isPendingState(state: LinkState): boolean {
  return state.kind === 'refused' ? state.was === 'pending' : state.kind !== 'client' && state.kind !== 'peer';
}

/** Whether a link counts as a client. */
export function isClientState(state: LinkState): boolean {
  return state.kind === 'client' || (state.kind === 'refused' && state.was === 'client');
}

/** A link still in its authentication handshake. */
export type AuthenticatingState = ChallengedState | AwaitingChallengeState | AwaitingProofState;

/** Whether a link is still in its authentication handshake (only its next step is read). */
export function isAuthenticating(state: LinkState): state is AuthenticatingState {
  return state.kind === 'challenged' || state.kind === 'awaiting-challenge' || state.kind === 'awaiting-proof';
}
