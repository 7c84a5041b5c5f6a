/**
 * @bby/core: the sans-I/O heart of bby. Create a node with `createNode`, feed
 * it events, carry out the batches it hands over with `takeReady()` (ready.ts),
 * through the durability policy when it has a disk (durability.ts).
 *
 * @example
 * import { createNode } from '@bby/core';
 * const node = createNode({ id: 'a', now: Date.now, random: Math.random });
 * node.set('MonChamp', '42'); // true
 * node.get('MonChamp'); // '42'
 *
 * `createMemoryNetwork` runs several nodes in one process (memory-network.ts).
 *
 * This file is the public surface: what an embedder or an adapter needs (the
 * node, its options, events and effects, the wire messages, the config
 * parser, errors). The parts the node is built from (store, digests, peer
 * table, flow control...) are at `@bby/core/internal` (internal.ts), for the
 * packages of this repository and their tests; they may change in any
 * release. test/public-surface.test.ts pins the list below.
 */
export { createNode, type BbyNode, type NodeOptions } from './node.js';
export { CLOSE_CODES } from './close-codes.js';
export { carryOut, isEmptyReady, READY_ORDER, type CloseEffect, type CursorEffect, type DialEffect, type Effect, type LogEffect, type LogFields, type PauseEffect, type PeerAddedEffect, type PeerRemovedEffect, type PersistEffect, type Ready, type ReadyHandlers, type ResumeEffect, type SendEffect } from './ready.js';
export { type BacklogBounds, type BatchId, COMPACT_MIN_BYTES, compactionDue, DurabilityPipeline, type DurabilityDecisions, type DurabilityOptions, epochRule, type EpochDecision } from './durability.js';
export { createMemoryNetwork, memoryAddress, MemoryNetwork, type MemoryNetworkOptions, type MemoryNetworkStats, type MemoryNodeOptions } from './memory-network.js';
export { compareEntries, type Entry } from './entry.js';
export { type Change } from './store.js';
export { type LinkId } from './peer-table.js';
export { DEFAULT_TIMING, type Timing } from './timing.js';
export { randomBytesFrom, seededRandom } from './seeded-random.js';
export { printable, quoted } from './log-text.js';
export {
  AUTH_HEADER,
  AUTH_HEADER_VALUE,
  AUTH_NONCE_BYTES,
  AUTH_TIMEOUT_MS,
  authProof,
  findSecret,
  MIN_SECRET_LENGTH,
  newNonce,
  proofMatches,
  type AuthRole,
  type AuthSide,
  type AuthTranscript,
} from './auth.js';
export { formatAddress, isLoopbackHost, isValidPort, isWildcardHost, parseAddress, type PeerAddress } from './address.js';
export {
  announcedAddress,
  checkExposure,
  CONFIG_FIELDS,
  connectAddress,
  DEFAULT_HOST,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MAX_CONNECTIONS,
  exposureWarnings,
  FSYNC_POLICIES,
  MAKE_SECRET_HINT,
  MAX_SECRET_LENGTH,
  parseConfig,
  parseSecretFile,
  type FsyncPolicy,
  type NodeConfig,
  type TlsConfig,
} from './config.js';
export { BbyError, ConfigError, ERROR_CODES, LOCAL_ERROR_CODES, ProtocolError, type ErrorCode, type ErrorCodeInfo, type LocalErrorCode } from './errors.js';
export { MAX_BATCH_CHARS, MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_NODE_ID_LENGTH, MAX_VALUE_BYTES, NODE_ID_PATTERN } from './limits.js';
export {
  checkKey,
  checkValue,
  DEFAULT_ACK_TIMEOUT_MS,
  encodeMessage,
  MAX_ACK_ID_LENGTH,
  MAX_ACK_TIMEOUT_MS,
  MAX_ACKS,
  MAX_ADDRESS_LENGTH,
  MAX_EPOCH_LENGTH,
  MAX_ERROR_CODE_LENGTH,
  MAX_ERROR_MESSAGE_LENGTH,
  MAX_KEYS_CURSOR_LENGTH,
  MAX_LIST_ITEMS,
  MAX_REQUEST_ID_LENGTH,
  MAX_SET_MANY_ENTRIES,
  MAX_WATCH_VALUE_CHARS,
  parseIncoming,
  PROTOCOL_VERSION,
  type AckMessage,
  type AddPeerRequest,
  type AddPeerResult,
  type AuthenticatedMessage,
  type AuthHandshakeMessage,
  type AuthMessage,
  type BucketRequestMessage,
  type BucketsMessage,
  type CatchUpMessage,
  type CatchUpProgress,
  type CaughtUpMessage,
  type ChallengeMessage,
  type Cursor,
  type DigestMessage,
  type EntriesMessage,
  type ErrorMessage,
  type GetRequest,
  type HelloMessage,
  type IncomingMessage,
  type KeysRequest,
  type Message,
  type NodeStatus,
  type ParseResult,
  type PeerInfo,
  type PeerListMessage,
  type PeerMessage,
  type PeersRequest,
  type PeerStatus,
  type PingMessage,
  type RemovePeerRequest,
  type RemovePeerResult,
  type ReplyMessage,
  type Request,
  type RequestId,
  type ResponseMessage,
  type SetManyRequest,
  type SetRequest,
  type Stats,
  type StatsRequest,
  type WatchRequest,
  type WatchResult,
  type WatchStateMessage,
  type WatchWrite,
  type WatchWritesMessage,
  type WelcomeMessage,
} from './protocol.js';
