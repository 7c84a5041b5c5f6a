/**
 * The WebSocket close codes of the core: why a node closed a link, on the
 * wire (docs/protocol.md lists them). 4000-4999 is the application range.
 */

/** WebSocket close codes the core uses (4000-4999 is the application range). */
export const CLOSE_CODES = {
  /** The link leads back to this very node. */
  SELF: 4001,
  /** The peer speaks another protocol version. */
  PROTOCOL_MISMATCH: 4002,
  /** The dialed node did not complete the handshake in time. */
  HANDSHAKE_TIMEOUT: 4003,
  /** The peer sent nothing, not even a heartbeat, for too long. */
  PEER_TIMEOUT: 4004,
  /** A second link to a node already connected: one link per pair (docs/security.md). */
  DUPLICATE_LINK: 4005,
  /** This node cannot write to its disk: it leaves its peers until it can (storageFailed). */
  STORAGE_FAILED: 4007,
  /** The other side does not read what it is sent (over its outbound budget too long, flow-control.ts). */
  TOO_SLOW: 4008,
  /** The connection sent nothing within IDLE_CONNECTION_TIMEOUT_MS. */
  IDLE: 4009,
  /** The other side's proof did not check out: it does not hold the secret. */
  AUTH_FAILED: 4010,
  /** A message came before the authentication handshake. */
  AUTH_REQUIRED: 4011,
  /** The authentication handshake did not finish in time. */
  AUTH_TIMEOUT: 4012,
  /** A connection authenticated as a client sent a message of the peer protocol. */
  FORBIDDEN: 4013,
} as const;
