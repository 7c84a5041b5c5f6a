// The client side of the authentication handshake (docs/protocol.md,
// "Authentication"), for every connection of the benchmarks that presents a
// secret (npm run bench with --security, and npm run abuse: the well-behaved
// client, the preload, and the abusers that attack as members). It is
// @bby/client's own ClientHandshake (built by `tsc -b`, which npm run bench
// and npm run abuse run first), so the script speaks exactly what bby does:
//
//   upgrade answered with `x-bby-auth: hmac-sha256`
//   <- challenge {nodeId, nonce}
//   -> auth {role, nodeId?, nonce, proof}        then hello, for a peer
//   <- authenticated {proof}                     checked before the connection is used
//
// `new ClientHandshake(secret, role, nodeId)`: `answer(challenge)` gives the
// `auth` frame, `verify(authenticated)` says whether the node proved it holds
// the same secret, `answered` whether the first was done.
import { randomBytes } from 'node:crypto';

export { AUTH_HEADER, AUTH_HEADER_VALUE } from '@bby/core';
export { ClientHandshake } from '@bby/client';

/** Bytes of a secret made by `newSecret` (32 hex digits: above the node's 16-character minimum). */
const SECRET_BYTES = 16;

/** A fresh random secret for a node's config: 32 lowercase hex digits. */
export function newSecret() {
  return randomBytes(SECRET_BYTES).toString('hex');
}
