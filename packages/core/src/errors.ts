/**
 * Typed errors. Every error carries a stable code (listed in docs/protocol.md)
 * and a message that names what failed and what to do about it, so that it can
 * reach a user as one line.
 */

/** Stable error codes that cross the wire or reach the user. */
export type ErrorCode =
  | 'BAD_JSON'
  | 'BAD_MESSAGE'
  | 'UNKNOWN_TYPE'
  | 'MESSAGE_TOO_LARGE'
  | 'KEY_TOO_LARGE'
  | 'VALUE_TOO_LARGE'
  | 'BAD_ADDRESS'
  | 'NOT_A_PEER'
  | 'PROTOCOL_MISMATCH'
  | 'BAD_CONFIG'
  | 'ACK_TIMEOUT'
  | 'AUTH_REQUIRED'
  | 'AUTH_FAILED'
  | 'FORBIDDEN'
  | 'TOO_MANY_PEERS'
  | 'STALE_CURSOR'
  | 'STORAGE_FAILED'
  | 'SHUTTING_DOWN';

/** Base class of every bby error: a code plus a one-line, actionable message. */
export class BbyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BbyError';
  }
}

/** A message or request that does not follow docs/protocol.md. */
export class ProtocolError extends BbyError {
  override name = 'ProtocolError';
}

/** A config file that cannot be used; the message names the file and the field. */
export class ConfigError extends BbyError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('BAD_CONFIG', message);
  }
}
