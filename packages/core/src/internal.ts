/**
 * @bby/core/internal: the parts the node is built from, for the packages of
 * this repository (`@bby/node`, `@bby/cli`), the bench and the tests. Not a
 * public API: any release may change it. An embedder needs only `@bby/core`
 * (index.ts); test/public-surface.test.ts pins both lists.
 */
// The node's parts (node.ts dispatches to them) and their limits.
export { credentialOf, INITIAL_STATES, initialLinkState, isAuthenticating, isClientState, isPendingState, LINK_TRANSITIONS, LinkStateError, moveLink, newPeerSession, peerIdOf, type Credential, type PeerSession, type LinkState, type LinkStateKind } from './link-state.js';
export { NodeContext, type Counters, type NodeSettings, type QueuedReady, type QueuedSend } from './node-context.js';
export { OutboundStreams, type CatchUpStream, type OutboundStream, type RepairStream, type StreamHooks } from './outbound-stream.js';
export { CROSSED_DIALS_WINDOW_MS, IDLE_CONNECTION_TIMEOUT_MS } from './handshake.js';
export { HANDSHAKE_TIMEOUT_MS } from './dials.js';
export { MAX_KEYS_PAGE_LENGTH } from './client-requests.js';
export { MAX_SEEN } from './broadcast.js';
export { MAX_ACK_ROUTES, MAX_KNOWN_NODES } from './ack-rounds.js';
export { CATCH_UP_LOG_INTERVAL_MS } from './catch-up.js';
export { MAX_WATCH_PENDING_CHARS, WATCH_BUDGET_BYTES, WATCH_STATE_INTERVAL_MS, type Watcher } from './watchers.js';
// What they are built from.
export * from './flow-control.js';
export { EMPTY_READY, readyEffects } from './ready.js';
export { BACKLOG_PAUSE_BYTES, BACKLOG_RESUME_BYTES, CURSOR_SAVE_INTERVAL_MS, estimateBytes, RECORD_OVERHEAD_BYTES, unkept } from './durability.js';
export { Store, type MergeResult, type StoreOptions } from './store.js';
export { Arena, DEFAULT_CHUNK_BYTES } from './arena.js';
export { hashKey, KeyIndex } from './key-index.js';
export { BUCKET_COUNT, bucketOf, DIGEST_HEX_DIGITS, Digests, entryHash } from './digest.js';
export { differingBuckets, entriesInBuckets } from './anti-entropy.js';
export { addressesToLearn, FORGOTTEN_FOR_MS, LEARNED_MAX_FAILURES, LearningBudget, MAX_FORGOTTEN, MAX_LEARNED_PEERS, MAX_LEARNED_PER_LIST, MAX_LEARNED_PER_MINUTE, MAX_PEER_LIST } from './peer-exchange.js';
export { MAX_DIAL_TARGETS, MAX_LOST_PEERS, MAX_PEERS_LISTED, PeerTable, isPeerLink, type DialTarget, type Link, type PeerLink, type TargetSource } from './peer-table.js';
export { batchChanges, batchEntries, coalesceEntries, entryLength, jsonStringLength } from './sync.js';
export { retryDelayMs, RETRY_BASE_MS, RETRY_CAP_MS } from './backoff.js';
export { dialableAddress } from './address.js';
export { isNonce, isProof } from './auth.js';
export { MAX_LOGGED_TEXT_LENGTH } from './log-text.js';
export { LOG_PERIOD_MS, LogLimiter, MAX_LOG_LINES_PER_PERIOD, MAX_LOG_SOURCES } from './log-limiter.js';
export { isWellFormed, utf8ByteLength } from './limits.js';
export { isRequest, makeJSONEncodable, type EntryTuple } from './protocol.js';
