/**
 * Mutual challenge-response authentication of a connection, before anything
 * else on it is acted on (docs/security.md, docs/protocol.md).
 *
 *   acceptor  -> challenge     {nodeId, nonce}                       at accept
 *   initiator -> auth          {role, nodeId?, nonce, proof}         proof = HMAC(secret, "initiator" + transcript)
 *   acceptor  -> authenticated {proof}                               proof = HMAC(secret, "acceptor" + transcript)
 *
 * The transcript holds both nonces, both ids and the role, so no secret
 * crosses the wire, a recorded handshake is useless on a new connection (the
 * other side's nonce is fresh), a proof made as one side cannot be reflected
 * as the other's, and a client proof cannot open a peer connection. The
 * initiator proves first, so that whoever can reach a port learns nothing it
 * could test guesses of the secret against. Whoever is dialed does get one
 * proof (a process on a configured peer's address while that peer is down):
 * hence MIN_SECRET_LENGTH, and TLS, under which a dialer checks the
 * certificate before it sends anything.
 *
 * Pure functions only: the nonces' random bytes come from the caller.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** What an authenticated connection may do: a peer speaks the peer protocol, a client only sends requests. */
export type AuthRole = 'peer' | 'client';

/** Upgrade response header by which a node that requires authentication says so before the first frame. */
export const AUTH_HEADER = 'x-bby-auth';

/** The value of AUTH_HEADER: the scheme of docs/protocol.md. */
export const AUTH_HEADER_VALUE = 'hmac-sha256';

/** Random bytes in a nonce (hex on the wire: twice as many characters). */
export const AUTH_NONCE_BYTES = 16;

/** A connection that has not authenticated after this long is closed, in milliseconds. */
export const AUTH_TIMEOUT_MS = 5_000;

/** Shortest accepted secret, in characters: shorter ones are guessable offline from one recorded handshake. */
export const MIN_SECRET_LENGTH = 16;

/** Everything both proofs are computed over. */
export interface AuthTranscript {
  readonly role: AuthRole;
  /** Id of the node that accepted the connection. */
  readonly acceptorId: string;
  /** Id of the dialing node; '' for a client. */
  readonly initiatorId: string;
  readonly acceptorNonce: string;
  readonly initiatorNonce: string;
}

/** Which side a proof is made by: the two proofs of one handshake differ, so neither can stand for the other. */
export type AuthSide = 'initiator' | 'acceptor';

/** HMAC-SHA256 of the transcript under `secret`, as 64 lowercase hex digits. */
export function authProof(secret: string, side: AuthSide, transcript: AuthTranscript): string {
  // Ids, roles and nonces never hold a newline (protocol.ts checks them), so the fields cannot run into each other.
  const text = ['bby-auth-1', side, transcript.role, transcript.acceptorId, transcript.initiatorId, transcript.acceptorNonce, transcript.initiatorNonce].join('\n');
  return createHmac('sha256', secret).update(text).digest('hex');
}

/** Compares a received proof with an expected one in constant time. */
export function proofMatches(expected: string, received: string): boolean {
  if (expected.length !== received.length) return false;
  return timingSafeEqual(Buffer.from(expected, 'latin1'), Buffer.from(received, 'latin1'));
}

/** The secret of `secrets` that made `proof`, if any (rotation: several may be accepted). */
export function findSecret(secrets: readonly string[], proof: string, side: AuthSide, transcript: AuthTranscript): string | undefined {
  return secrets.find((secret) => proofMatches(authProof(secret, side, transcript), proof));
}

/** A fresh nonce from the given source of random bytes, as hex. */
export function newNonce(randomBytes: (size: number) => Uint8Array): string {
  return Buffer.from(randomBytes(AUTH_NONCE_BYTES)).toString('hex');
}

/** True for a nonce as sent on the wire: AUTH_NONCE_BYTES bytes in lowercase hex. */
export function isNonce(value: unknown): value is string {
  return typeof value === 'string' && value.length === AUTH_NONCE_BYTES * 2 && /^[0-9a-f]+$/.test(value);
}

/** Length of a proof on the wire, in lowercase hex digits: an HMAC-SHA256. */
export const AUTH_PROOF_HEX_DIGITS = 64;

/** True for a proof as sent on the wire: AUTH_PROOF_HEX_DIGITS lowercase hex digits. */
export function isProof(value: unknown): value is string {
  return typeof value === 'string' && value.length === AUTH_PROOF_HEX_DIGITS && /^[0-9a-f]+$/.test(value);
}
