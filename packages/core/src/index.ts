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
 */
export * from './flow-control.js';
export { createNode, CLOSE_CODES, CATCH_UP_LOG_INTERVAL_MS, IDLE_CONNECTION_TIMEOUT_MS, MAX_WATCH_PENDING_CHARS, WATCH_BUDGET_BYTES, WATCH_STATE_INTERVAL_MS, HANDSHAKE_TIMEOUT_MS, CROSSED_DIALS_WINDOW_MS, MAX_KEYS_PAGE_LENGTH, MAX_SEEN, type BbyNode, type NodeOptions } from './node.js';
export { carryOut, EMPTY_READY, groupEffects, isEmptyReady, READY_ORDER, readyEffects, type CloseEffect, type CursorEffect, type DialEffect, type Effect, type LogEffect, type LogFields, type PauseEffect, type PeerAddedEffect, type PeerRemovedEffect, type PersistEffect, type Ready, type ReadyHandlers, type ResumeEffect, type SendEffect } from './ready.js';
export { BACKLOG_PAUSE_BYTES, BACKLOG_RESUME_BYTES, type BatchId, CURSOR_SAVE_INTERVAL_MS, DurabilityPipeline, type DurabilityDecisions, type DurabilityOptions, epochRule, type EpochDecision, estimateBytes, RECORD_OVERHEAD_BYTES, unkept } from './durability.js';
export { createMemoryNetwork, memoryAddress, MemoryNetwork, type MemoryNetworkOptions, type MemoryNetworkStats, type MemoryNodeOptions } from './memory-network.js';
export { compareEntries, type Entry } from './entry.js';
export * from './auth.js';
export { printable, quoted, MAX_LOGGED_TEXT_LENGTH } from './log-text.js';
export { Store, type Change, type MergeResult } from './store.js';
export { BUCKET_COUNT, bucketOf, Digests, entryHash } from './digest.js';
export { differingBuckets, entriesInBuckets } from './anti-entropy.js';
export { addressesToLearn, FORGOTTEN_FOR_MS, LEARNED_MAX_FAILURES, LearningBudget, MAX_FORGOTTEN, MAX_LEARNED_PEERS, MAX_LEARNED_PER_LIST, MAX_LEARNED_PER_MINUTE, MAX_PEER_LIST } from './peer-exchange.js';
export { DEFAULT_TIMING, type Timing } from './timing.js';
export { MAX_DIAL_TARGETS, MAX_LOST_PEERS, MAX_PEERS_LISTED, PeerTable, type LinkAuth, type OutboundStream, type DialTarget, type Link, type LinkId, type TargetSource, type Watcher } from './peer-table.js';
export { batchEntries, coalesceEntries, entryLength, jsonStringLength } from './sync.js';
export { retryDelayMs, RETRY_BASE_MS, RETRY_CAP_MS } from './backoff.js';
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
export { BbyError, ConfigError, ProtocolError, type ErrorCode } from './errors.js';
export * from './protocol.js';
export * from './limits.js';
export { seededRandom } from './seeded-random.js';
