/**
 * The initiator's side of the authentication handshake (docs/protocol.md,
 * "Authentication"), over @bby/core's proofs (auth.ts): `answer` turns the
 * node's `challenge` into the `auth` frame, `verify` checks the node's
 * `authenticated` proof. openConnection runs it for every client; the bench's
 * abusers run it on a wire of their own.
 */
import { randomBytes } from 'node:crypto';
import { authProof, newNonce, proofMatches, type AuthTranscript } from '@bby/core';

/** Who authenticates: a client, or a peer (which gives its node id). */
export type HandshakeRole = 'client' | 'peer';

/** One connection's side of the handshake, as its initiator. */
export class ClientHandshake {
  #transcript: AuthTranscript | undefined;

  /** `nodeId` is the id a peer dials as; a client has none. */
  constructor(
    readonly secret: string,
    readonly role: HandshakeRole,
    readonly nodeId?: string,
  ) {
    if (role !== 'client' && role !== 'peer') throw new TypeError(`ClientHandshake: role must be 'client' or 'peer', got ${JSON.stringify(role)}`);
  }

  /** True once `answer` gave the `auth` frame. */
  get answered(): boolean {
    return this.#transcript !== undefined;
  }

  /** The `auth` frame (text) answering the node's `challenge` message. */
  answer(challenge: { readonly nodeId: string; readonly nonce: string }): string {
    const nonce = newNonce(randomBytes);
    const nodeId = this.role === 'peer' ? this.nodeId : undefined;
    this.#transcript = { role: this.role, acceptorId: challenge.nodeId, initiatorId: nodeId ?? '', acceptorNonce: challenge.nonce, initiatorNonce: nonce };
    return JSON.stringify({ type: 'auth', role: this.role, ...(nodeId === undefined ? {} : { nodeId }), nonce, proof: authProof(this.secret, 'initiator', this.#transcript) });
  }

  /** True when the node's `authenticated` message carries the proof made with this secret over this handshake. */
  verify(authenticated: { readonly proof?: unknown }): boolean {
    if (this.#transcript === undefined || typeof authenticated.proof !== 'string') return false;
    return proofMatches(authProof(this.secret, 'acceptor', this.#transcript), authenticated.proof);
  }
}
