/**
 * Typed errors and the one registry of their codes. Every error a user can
 * meet carries a stable code: a wire code (`ErrorCode`, sent in `error` frames
 * and listed in docs/protocol.md) or a local one (`LocalErrorCode`, raised by
 * `bby-node` or `bby` and never sent). Each code says what went wrong and what
 * to do; the message of an error says it for the case at hand, in one line.
 * test/errors.test.ts holds every error class of the repository and the
 * docs to this registry.
 */

/** What a code means and what to do about it, one line each. */
export interface ErrorCodeInfo {
  /** When the error happens. */
  readonly meaning: string;
  /** What the user (or the program) should do. */
  readonly fix: string;
}

/** The codes a node sends in `error` frames: the table "Errors" of docs/protocol.md. */
export const ERROR_CODES = {
  BAD_JSON: { meaning: 'the frame is not JSON', fix: 'send one JSON object per text frame' },
  BAD_MESSAGE: { meaning: 'a message of the wrong shape: a missing or mistyped field, an empty key, a lone surrogate, a hello at the wrong moment', fix: 'follow the shapes of docs/protocol.md' },
  UNKNOWN_TYPE: { meaning: '"type" names no message of the protocol', fix: 'check the spelling; the message lists the known types' },
  MESSAGE_TOO_LARGE: { meaning: 'a frame over the message size limit', fix: 'split the data' },
  KEY_TOO_LARGE: { meaning: 'a key over the key size limit', fix: 'use a shorter key' },
  VALUE_TOO_LARGE: { meaning: 'a value over the value size limit', fix: 'store a smaller value' },
  BAD_ADDRESS: { meaning: 'an address that is not host:port', fix: 'write it as 127.0.0.1:7002' },
  NOT_A_PEER: { meaning: 'a peer message on a connection that did no handshake', fix: 'send hello first' },
  PROTOCOL_MISMATCH: { meaning: 'the peer speaks another protocol version', fix: 'run the same bby version on both' },
  ACK_TIMEOUT: { meaning: 'a set with acks did not reach that many nodes in time (the write is not lost)', fix: 'wait and read again, or ask for fewer nodes' },
  AUTH_REQUIRED: { meaning: 'a frame other than auth before authenticating, or no auth in time', fix: "answer the challenge with the mesh's secret (or clientSecret)" },
  AUTH_FAILED: { meaning: 'a proof that matches no secret the node accepts, or an impostor id', fix: 'use the same secret as the node' },
  FORBIDDEN: { meaning: 'a connection authenticated as a client sent a peer message', fix: "only nodes, with the mesh's secret, speak the peer protocol" },
  TOO_MANY_PEERS: { meaning: 'add-peer when the node already dials as many addresses as it may', fix: 'remove-peer one first' },
  STALE_CURSOR: { meaning: 'a keys cursor from another run of the node', fix: 'list again from the start' },
  STORAGE_FAILED: { meaning: 'the node cannot write to its data folder; the write is not acknowledged', fix: 'free space or fix the disk; the node retries on its own' },
} as const satisfies Record<string, ErrorCodeInfo>;

/** Stable error codes that cross the wire, in `error` frames. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of errors raised in `bby-node`, `bby` or an embedder's process and never sent on the wire. */
export const LOCAL_ERROR_CODES = {
  BAD_CONFIG: { meaning: 'a config file cannot be used', fix: 'fix the field the message names' },
  BAD_USAGE: { meaning: 'the command line of bby or bby-node is wrong', fix: 'see bby --help (or bby-node --help)' },
  BAD_INPUT: { meaning: 'the file given to bby import cannot be read or holds an invalid entry', fix: 'fix the line the message names and import again' },
  NODE_UNREACHABLE: { meaning: 'the node cannot be reached, or the connection was lost before the answer', fix: 'start the node, or check its address; then try again' },
  NODE_BUSY: { meaning: 'the node refused the connection for now (starting, too many connections) or did not answer the handshake in time', fix: 'try again in a moment' },
  CONNECTION_REFUSED: { meaning: 'the node answered, but this config cannot talk to it (secret, TLS)', fix: 'change the config (or the node) as the message says' },
  START_FAILED: { meaning: 'bby-node cannot start: a port in use, a TLS file it cannot use, a data folder it cannot use', fix: 'do what the message says, then start again' },
  DATA_DIR_LOCKED: { meaning: 'another live process holds the data folder', fix: 'give each node its own dataDir, or stop the other process' },
  DATA_DAMAGED: { meaning: 'the data folder holds damaged data', fix: 'start with --repair to keep every intact record, or move the folder away to resync from the peers' },
  CORE_BUG: { meaning: "bby's core broke one of its own rules (a link moved in a way link-state.ts does not list)", fix: 'report it with the message; a restart of the node clears it' },
} as const satisfies Record<string, ErrorCodeInfo>;

/** Stable error codes of errors that stay in the process that raised them. */
export type LocalErrorCode = keyof typeof LOCAL_ERROR_CODES;

/** Base class of every bby error: a code plus a one-line, actionable message. */
export class BbyError extends Error {
  constructor(
    readonly code: ErrorCode | LocalErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BbyError';
  }
}

/** A message or request that does not follow docs/protocol.md. */
export class ProtocolError extends BbyError {
  override name = 'ProtocolError';
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}

/** A config file that cannot be used; the message names the file and the field. */
export class ConfigError extends BbyError {
  override name = 'ConfigError';
  constructor(message: string) {
    super('BAD_CONFIG', message);
  }
}
