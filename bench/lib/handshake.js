// The client side of the authentication handshake (docs/protocol.md,
// "Authentication"), for every connection of the benchmarks that presents a
// secret (npm run bench with --security, and npm run abuse: the well-behaved
// client, the preload, and the abusers that attack as members). The proofs
// are @bby/core's own functions (auth.ts), so the script speaks exactly what
// the node checks:
//
//   upgrade answered with `x-bby-auth: hmac-sha256`
//   <- challenge {nodeId, nonce}
//   -> auth {role, nodeId?, nonce, proof}        then hello, for a peer
//   <- authenticated {proof}                     checked before the connection is used
import { randomBytes } from 'node:crypto';
import { AUTH_HEADER, AUTH_HEADER_VALUE, authProof, newNonce, proofMatches } from '@bby/core';

export { AUTH_HEADER, AUTH_HEADER_VALUE };

/** Bytes of a secret made by `newSecret` (32 hex digits: above the node's 16-character minimum). */
const SECRET_BYTES = 16;

/** A fresh random secret for a node's config: 32 lowercase hex digits. */
export function newSecret() {
  return randomBytes(SECRET_BYTES).toString('hex');
}

/**
 * One connection's side of the handshake, as its initiator. `role` is
 * 'client' or 'peer'; `nodeId` is the id a peer dials as (absent for a
 * client). `answer(challenge)` gives the `auth` frame; `verify(authenticated)`
 * says whether the node proved it holds the same secret.
 */
export class ClientHandshake {
  constructor(secret, role, nodeId) {
    if (role !== 'client' && role !== 'peer') throw new TypeError(`ClientHandshake: role must be 'client' or 'peer', got ${JSON.stringify(role)}`);
    this.secret = secret;
    this.role = role;
    this.nodeId = role === 'peer' ? nodeId : undefined;
    this.transcript = undefined;
  }

  /** The `auth` frame (text) answering the node's `challenge` message (parsed). */
  answer(challenge) {
    const nonce = newNonce(randomBytes);
    this.transcript = { role: this.role, acceptorId: challenge.nodeId, initiatorId: this.nodeId ?? '', acceptorNonce: challenge.nonce, initiatorNonce: nonce };
    const frame = { type: 'auth', role: this.role, ...(this.nodeId === undefined ? {} : { nodeId: this.nodeId }), nonce, proof: authProof(this.secret, 'initiator', this.transcript) };
    return JSON.stringify(frame);
  }

  /** True when the node's `authenticated` message (parsed) carries the proof made with our secret over this handshake. */
  verify(authenticated) {
    if (this.transcript === undefined || typeof authenticated.proof !== 'string') return false;
    return proofMatches(authProof(this.secret, 'acceptor', this.transcript), authenticated.proof);
  }
}
