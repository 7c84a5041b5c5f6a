/**
 * Every message that crosses a socket, as one discriminated union, and the
 * parser that turns untrusted text into one of them. docs/protocol.md is the
 * prose version of this file; change both together.
 *
 * Messages are JSON text frames. A client sends requests carrying an `id` and
 * gets back a `reply` or an `error` with the same id. A peer opens with
 * `hello`, is answered with `welcome`, and from then on both sides send
 * `entries`.
 */
import { parseAddress } from './address.js';
import { AUTH_NONCE_BYTES, AUTH_PROOF_HEX_DIGITS, type AuthRole, isNonce, isProof } from './auth.js';
import { BUCKET_COUNT, DIGEST_HEX_DIGITS } from './digest.js';
import { type Entry } from './entry.js';
import { ProtocolError } from './errors.js';
import { MAX_PEER_LIST } from './peer-exchange.js';
import { isWellFormed, MAX_KEY_BYTES, MAX_MESSAGE_BYTES, MAX_NODE_ID_LENGTH, MAX_VALUE_BYTES, NODE_ID_PATTERN, utf8ByteLength } from './limits.js';

/** Version of the peer protocol; peers with another version are refused. */
export const PROTOCOL_VERSION = 3;

/** Correlates a request with its reply; chosen by the client. */
export type RequestId = number | string;

/** Reads a key's value. Reply: the value, or null. */
export interface GetRequest { readonly type: 'get'; readonly id: RequestId; readonly key: string }
/**
 * Writes a key once. Reply: true when stored or already equal, false when it
 * holds another value. With `acks`, the reply waits until that many nodes
 * (this one included; `all`: every node this one knows of) hold the write, and
 * carries `acks`; after `timeoutMs` (default 5000) an ACK_TIMEOUT error says
 * how many did.
 */
export interface SetRequest {
  readonly type: 'set';
  readonly id: RequestId;
  readonly key: string;
  readonly value: string;
  readonly acks?: number | 'all';
  readonly timeoutMs?: number;
}
/**
 * Lists keys, a page at a time, in the order this node stored them (not
 * sorted: a page costs about its own size, whatever the store holds). Reply:
 * an array of at most `limit` keys, cut to fit a message; when more follow,
 * the reply carries `cursor`: ask again with it.
 */
export interface KeysRequest { readonly type: 'keys'; readonly id: RequestId; readonly cursor?: string; readonly limit?: number }
/** Lists the node's peers. Reply: array of PeerInfo. */
export interface PeersRequest { readonly type: 'peers'; readonly id: RequestId }
/** Makes the node dial another node. Reply: AddPeerResult, once connected or after the first failure. */
export interface AddPeerRequest { readonly type: 'add-peer'; readonly id: RequestId; readonly address: string }
/** Makes the node stop dialing an address and forget it. Reply: RemovePeerResult. */
export interface RemovePeerRequest { readonly type: 'remove-peer'; readonly id: RequestId; readonly address: string }
/** Reads the node's counters. Reply: Stats. */
export interface StatsRequest { readonly type: 'stats'; readonly id: RequestId }

/** Any client request. */
/** Writes many keys once each, as `set` does for one. Reply: one boolean per entry, in order. For bulk loads. */
export interface SetManyRequest {
  readonly type: 'set-many';
  readonly id: RequestId;
  readonly entries: readonly { readonly key: string; readonly value: string }[];
}

/** A `set-many` carries at most this many entries (and, like every frame, at most 1 MiB). */
export const MAX_SET_MANY_ENTRIES = 10_000;

/**
 * Subscribes this connection, read-only, to the node's writes as they reach it
 * (its own clients' writes, and entries from peers that changed its store),
 * and, unless `state` is false, to a snapshot of its mesh every second
 * (`watch-state`). Reply: `WatchResult`, then `watch-writes` and `watch-state`
 * messages carrying this request's id until the connection closes. `values`:
 * how many characters of each value to include (0 to MAX_WATCH_VALUE_CHARS,
 * default 0: none). A second `watch` on the same connection replaces the first.
 */
export interface WatchRequest { readonly type: 'watch'; readonly id: RequestId; readonly values?: number; readonly state?: boolean }

/** A `watch` includes at most this many characters of each value (the rest is cut, and the write says so). */
export const MAX_WATCH_VALUE_CHARS = 1024;

export type Request = GetRequest | SetRequest | SetManyRequest | KeysRequest | PeersRequest | AddPeerRequest | RemovePeerRequest | StatsRequest | WatchRequest;

/** First frame of a node that requires authentication, sent as it accepts a connection. */
export interface ChallengeMessage { readonly type: 'challenge'; readonly nodeId: string; readonly nonce: string }
/** The initiator's answer to `challenge`: its role, its id (peers only), its nonce and its proof (auth.ts). */
export interface AuthMessage {
  readonly type: 'auth';
  readonly role: AuthRole;
  /** The dialing node's id; absent for a client. */
  readonly nodeId?: string;
  readonly nonce: string;
  readonly proof: string;
}
/** The acceptor's proof, once the initiator's proof checked out. */
export interface AuthenticatedMessage { readonly type: 'authenticated'; readonly proof: string }

/** Messages of the authentication handshake (auth.ts). */
export type AuthHandshakeMessage = ChallengeMessage | AuthMessage | AuthenticatedMessage;

/** First message of a peer connection, sent by the dialing node. */
export interface HelloMessage {
  readonly type: 'hello';
  readonly protocol: number;
  readonly nodeId: string;
  /** The sender's own listening address, `host:port`. */
  readonly address: string;
}
/** Answer to hello, sent by the accepting node. */
export interface WelcomeMessage {
  readonly type: 'welcome';
  readonly protocol: number;
  readonly nodeId: string;
  readonly address: string;
}
/**
 * Entries a peer should merge: a write, a forward, or a batch of catch-up or
 * repair. On the wire each entry is a tuple `[key, value, timestamp, origin]`
 * (see `encodeMessage`): a third cheaper to parse and write than an object.
 */
export interface EntriesMessage {
  readonly type: 'entries';
  readonly entries: readonly Entry[];
  /** Asks every node to acknowledge holding these entries, under this round id (a `set` with `acks`). */
  readonly ack?: string;
  /** Ids of the nodes this write was already sent to; they are not forwarded to again. */
  readonly seen?: readonly string[];
  /** The sender's change sequence number after these entries, for the receiver's cursor. */
  readonly upTo?: number;
  /** In a catch-up: how many entries the sender had to send when the catch-up began (an estimate: changes made meanwhile go too), for progress. */
  readonly expected?: number;
}

/** Where a node's copy of a peer's change feed stands: that peer's epoch and the last sequence number received. */
export interface Cursor { readonly epoch: string; readonly seq: number }

/** Asks the peer for its changes after `since` (or everything, when null or from another epoch). */
export interface CatchUpMessage { readonly type: 'catch-up'; readonly since: Cursor | null }
/** Ends a catch-up transfer: the receiver now has the sender's changes up to `seq` of `epoch`. */
export interface CaughtUpMessage { readonly type: 'caught-up'; readonly epoch: string; readonly seq: number; readonly full: boolean; readonly entries: number }
/**
 * Keeps a quiet link alive; any message counts as a heartbeat. `upTo` is the
 * sender's change sequence number: every change up to it either came from the
 * receiver, was sent to it, or was sent to it by another node, so the
 * receiver's cursor may move there.
 */
export interface PingMessage { readonly type: 'ping'; readonly upTo?: number }
/** Anti-entropy, step 1: the digest of the sender's whole store. */
export interface DigestMessage { readonly type: 'digest'; readonly root: string }
/** Anti-entropy, step 2: the digests of the sender's BUCKET_COUNT buckets, when the roots differ. */
export interface BucketsMessage { readonly type: 'buckets'; readonly digests: readonly string[] }
/** Anti-entropy, step 3: asks for the sender's entries of these buckets. */
export interface BucketRequestMessage { readonly type: 'bucket-request'; readonly buckets: readonly number[] }
/** Answer to an `entries` with `ack`, relayed back along the path it came: `ok` when the node now holds exactly those entries. */
export interface AckMessage { readonly type: 'ack'; readonly ack: string; readonly node: string; readonly ok: boolean }
/** Peer exchange: listening addresses of the sender's peers. */
export interface PeerListMessage { readonly type: 'peer-list'; readonly addresses: readonly string[] }

/** Any message between peers. */
export type PeerMessage =
  | HelloMessage
  | WelcomeMessage
  | EntriesMessage
  | CatchUpMessage
  | CaughtUpMessage
  | PingMessage
  | DigestMessage
  | BucketsMessage
  | BucketRequestMessage
  | AckMessage
  | PeerListMessage;

/**
 * Successful answer to a request; `acks` counts the nodes holding the write,
 * for a `set` with `acks`; `cursor` continues a `keys` listing; `omitted`
 * counts the rows a `peers` answer left out to fit a message.
 */
export interface ReplyMessage {
  readonly type: 'reply';
  readonly id: RequestId;
  readonly result: unknown;
  readonly acks?: number;
  readonly cursor?: string;
  readonly omitted?: number;
}
/** Failed request or malformed message; `id` is null when the request id could not be read. */
export interface ErrorMessage {
  readonly type: 'error';
  readonly id: RequestId | null;
  readonly code: string;
  readonly message: string;
  /** For ACK_TIMEOUT: how many nodes held the write in time. */
  readonly acks?: number;
}

/**
 * One write as a watcher sees it: the entry's key, origin and timestamp, the
 * value cut to the watch's `values` characters (`cut` says it was cut), where
 * it came from (`from`: the peer that sent it, or null for a write of this
 * node's own clients) and, for a `conflict`, that the key already held another
 * value (the entry shown is the one kept: the oldest write).
 */
export interface WatchWrite {
  readonly key: string;
  readonly origin: string;
  readonly timestamp: number;
  readonly from: string | null;
  readonly value?: string;
  readonly cut?: true;
  readonly conflict?: true;
}

/** Writes that reached the node since the last `watch-writes`; `dropped` counts the writes left out since the last one (the watcher did not read fast enough). */
export interface WatchWritesMessage { readonly type: 'watch-writes'; readonly id: RequestId; readonly writes: readonly WatchWrite[]; readonly dropped?: number }

/** The node's mesh, every second, to a watcher; `dropped` as in `watch-writes`. */
export interface WatchStateMessage { readonly type: 'watch-state'; readonly id: RequestId; readonly status: NodeStatus; readonly stats: Stats; readonly dropped?: number }

/** Answer to `watch`. */
export interface WatchResult {
  readonly watching: true;
  /** The node's id. */
  readonly node: string;
  /** How often `watch-state` comes, in milliseconds (0 without `state`). */
  readonly stateIntervalMs: number;
}

/** Any message a node sends to a client. */
export type ResponseMessage = ReplyMessage | ErrorMessage | WatchWritesMessage | WatchStateMessage;

/**
 * A catch-up on one link: `received` (or sent) entries of `expected` (the
 * sender's estimate when it began; null before its first batch), `done`
 * once it ended.
 */
export interface CatchUpProgress { readonly entries: number; readonly expected: number | null; readonly done: boolean }

/** One row of `NodeStatus.peers`: a `PeerInfo` with what a monitor wants to see of the link. */
export interface PeerStatus extends PeerInfo {
  /** `connected`; `connecting` (a dial or handshake under way); `down` (not connected, retried); `stopped` (not dialed again: another protocol version). */
  readonly state: 'connected' | 'connecting' | 'down' | 'stopped';
  /** Text sent on the link that the peer has not read yet, in bytes (flow-control.ts). */
  readonly outboundBytes: number;
  /** The peer's catch-up to this node on this link (entries received), if one began. */
  readonly catchUpIn: CatchUpProgress | null;
  /** This node's catch-up or repair to the peer while it goes out (entries sent). */
  readonly streamOut: (CatchUpProgress & { readonly kind: 'catch-up' | 'repair' }) | null;
  /** For the last live write from this peer that changed the store: how old it was on arrival (this clock minus its timestamp), in milliseconds. */
  readonly lagMs: number | null;
  /** The listening addresses of this peer's own peers, as its last `peer-list` said (peer exchange; at most MAX_PEER_LIST). */
  readonly reportedPeers: readonly string[];
}

/** What a node is doing, for monitors: `/health`, `/metrics`, `watch-state`. */
export interface NodeStatus {
  readonly id: string;
  /** This node's clock when the snapshot was taken, in milliseconds since the Unix epoch. */
  readonly nowMs: number;
  readonly epoch: string;
  /** The store's latest change sequence number. */
  readonly seq: number;
  readonly keys: number;
  /** Bytes the store holds for keys and values (its arena's chunks). */
  readonly storeBytes: number;
  /** Why writes cannot be made durable, or null while they can. */
  readonly storageFailure: string | null;
  /** Links open now: peers (handshake done), clients, pending (neither yet), watchers (clients that sent `watch`). */
  readonly links: { readonly peers: number; readonly clients: number; readonly pending: number; readonly watchers: number };
  /** One row per dial target and inbound peer, as `peers` (at most MAX_PEERS_LISTED). */
  readonly peers: readonly PeerStatus[];
}

/** Any message a node can receive. Answers (`reply`, `error`) are accepted only so that they are never answered. */
export type IncomingMessage = Request | PeerMessage | AuthHandshakeMessage | ReplyMessage | ErrorMessage;

/** Any message at all. */
export type Message = IncomingMessage | ResponseMessage;

/** One line of `peers`. */
export interface PeerInfo {
  /** Normalized `host:port` of the peer (its listening address when known). */
  readonly address: string;
  /** The peer's node id, or null before the first handshake. */
  readonly id: string | null;
  /** `outbound` when this node dials it, `inbound` when it dialed this node. */
  readonly direction: 'outbound' | 'inbound';
  readonly connected: boolean;
  /** Why the last dial failed, for an outbound peer that is not connected. */
  readonly lastError?: string;
}

/** Answer to `add-peer`. */
export interface AddPeerResult {
  readonly address: string;
  readonly connected: boolean;
  readonly id: string | null;
  /** Why the dial failed. */
  readonly error?: string;
  /** True when the node keeps dialing the address in the background. */
  readonly retrying: boolean;
}

/** Answer to `remove-peer`. */
export interface RemovePeerResult {
  readonly address: string;
  /** False when the node did not dial that address. */
  readonly removed: boolean;
  /** For an address of the config file: it comes back at the next start unless removed there. */
  readonly note?: string;
}

/** Answer to `stats`: counters since the node started. */
export interface Stats {
  readonly id: string;
  readonly keys: number;
  /** Distinct peers connected now. */
  readonly peers: number;
  readonly clients: number;
  /** False while the node cannot write to its data folder: writes are refused (STORAGE_FAILED) until it can. */
  readonly writable: boolean;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  /** Client `set`s that stored a new key. */
  readonly writesAccepted: number;
  /** Client `set`s refused because the key holds another value. */
  readonly writesRefused: number;
  /** Entries from peers that changed the store. */
  readonly entriesApplied: number;
  /** Entries from peers that the store already had. */
  readonly duplicatesDropped: number;
  /** Entries from peers whose value differed from the stored one (whichever won). */
  readonly conflicts: number;
  /** Malformed messages received. */
  readonly errors: number;
  /** Entries sent and received by catch-up at (re)connection. */
  readonly catchUpEntriesSent: number;
  readonly catchUpEntriesReceived: number;
  /** Catch-ups this node answered with its whole store (no usable cursor). */
  readonly fullTransfersSent: number;
  /** Anti-entropy rounds started, and entries sent to repair a difference. */
  readonly antiEntropyRounds: number;
  readonly repairEntriesSent: number;
  /** Peers marked down because they stopped answering. */
  readonly peersTimedOut: number;
  /** Addresses learnt from peers' peer lists. */
  readonly peersLearned: number;
  /** Connections refused because their proof was wrong or missing (wrong secret, a message before authenticating, an impostor id). */
  readonly authFailures: number;
  /** Connections closed because they did not authenticate in time. */
  readonly authTimeouts: number;
  /** Connections authenticated as clients closed for sending a message of the peer protocol. */
  readonly forbiddenMessages: number;
  /** Second links to a connected peer that were closed (one link per pair). */
  readonly duplicateLinksClosed: number;
  /** Entries from peers refused because they were stamped further ahead than `maxClockSkewMs`. */
  readonly entriesFromFuture: number;
  /** Inbound connections closed because they sent nothing in time. */
  readonly idleConnectionsClosed: number;
  /** Links closed because they did not read what they were sent (over their outbound budget too long, or a peer far over it). */
  readonly slowLinksClosed: number;
  /** Repair requests that came while a stream was going out on their link, merged into the next repair. */
  readonly repairRequestsMerged: number;
  /** Client writes refused because the node could not write to its data folder. */
  readonly writesRefusedStorage: number;
  /** Writes and states left out of `watch` streams because the watcher did not read them fast enough. */
  readonly watchEventsDropped: number;
}

const REQUEST_TYPES = new Set(['get', 'set', 'set-many', 'keys', 'peers', 'add-peer', 'remove-peer', 'stats', 'watch']);
const PEER_TYPES = ['hello', 'welcome', 'entries', 'catch-up', 'caught-up', 'ping', 'digest', 'buckets', 'bucket-request', 'ack', 'peer-list'];
const AUTH_TYPES = ['challenge', 'auth', 'authenticated'];

/** Longest wait a `set` with `acks` may ask for, in milliseconds. */
export const MAX_ACK_TIMEOUT_MS = 60_000;

/** Default wait of a `set` with `acks`, in milliseconds. */
export const DEFAULT_ACK_TIMEOUT_MS = 5_000;

/** True for a message type that is a client request. */
export function isRequest(message: IncomingMessage): message is Request {
  return REQUEST_TYPES.has(message.type);
}

/** Result of parsing one incoming frame. */
export type ParseResult =
  | { readonly ok: true; readonly message: IncomingMessage }
  | { readonly ok: false; readonly error: ProtocolError; readonly id: RequestId | null };

/**
 * Parses one text frame into a message a node understands, or says why it
 * cannot. `byteLength` is the frame's size in UTF-8 bytes when the transport
 * knows it; otherwise a long frame is measured here.
 */
export function parseIncoming(text: string, byteLength?: number): ParseResult {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short frames need no byte count.
  const tooLarge = byteLength !== undefined ? byteLength > MAX_MESSAGE_BYTES : text.length > MAX_MESSAGE_BYTES || (text.length * 3 > MAX_MESSAGE_BYTES && utf8ByteLength(text) > MAX_MESSAGE_BYTES);
  if (tooLarge) {
    return fail(null, 'MESSAGE_TOO_LARGE', `message is larger than ${MAX_MESSAGE_BYTES} bytes; split it`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail(null, 'BAD_JSON', 'message is not valid JSON; send one JSON object per text frame');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(null, 'BAD_MESSAGE', 'message must be a JSON object with a "type" field');
  }
  const m = raw as Record<string, unknown>;
  const id = isRequestId(m.id) ? m.id : null;
  try {
    return { ok: true, message: validate(m) };
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error, id };
    throw error;
  }
}

function fail(id: RequestId | null, code: ProtocolError['code'], message: string): ParseResult {
  return { ok: false, error: new ProtocolError(code, message), id };
}

function isRequestId(value: unknown): value is RequestId {
  return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.length <= MAX_REQUEST_ID_LENGTH);
}

function bad(message: string): ProtocolError {
  return new ProtocolError('BAD_MESSAGE', message);
}

/** The message's type for an error about it: never String() of what the sender chose (an object with its own toString would throw). */
function nameOf(m: Record<string, unknown>): string {
  return typeof m.type === 'string' ? m.type.slice(0, MAX_QUOTED_TYPE_LENGTH) : 'message';
}

/** Longest request id a node takes as a string, in characters (a number is any finite one): the id is sent back with the answer. */
export const MAX_REQUEST_ID_LENGTH = 64;

/** Longest `keys` cursor a node takes, in characters: the ones it gives (`SLOT.HASH`) are about 20. */
export const MAX_KEYS_CURSOR_LENGTH = 64;

/** Characters of a sender's message type an error quotes back: longer than every known type. */
const MAX_QUOTED_TYPE_LENGTH = 40;

/** Longest change-feed epoch a node takes (its own are 12 characters): a peer's is kept as a cursor and sent back. */
export const MAX_EPOCH_LENGTH = 64;

/** Longest address a node takes in a frame (add-peer, remove-peer, hello, welcome, peer-list), in characters. */
export const MAX_ADDRESS_LENGTH = 300;

/** Most nodes a `set` may ask to acknowledge it (`acks`): far beyond any mesh, and a bound on what one request makes a node track. */
export const MAX_ACKS = 1024;

/** Most items of any list in a frame (`seen`, `nodes`, addresses), before each is checked: a list is walked once per frame. */
export const MAX_LIST_ITEMS = 1024;

/** Longest acknowledgement round id (`ack` of `entries` and `ack`), in characters: a node makes `EPOCH.N`, about 20. */
export const MAX_ACK_ID_LENGTH = 128;

/** What a node keeps of an `error` frame it receives, in characters: the code, and the message (logged escaped). */
export const MAX_ERROR_CODE_LENGTH = 64;
/** See MAX_ERROR_CODE_LENGTH. */
export const MAX_ERROR_MESSAGE_LENGTH = 500;

function requireId(m: Record<string, unknown>): RequestId {
  if (!isRequestId(m.id)) throw bad(`"${nameOf(m)}" needs an "id" (number or short string) to match its reply`);
  return m.id;
}

function requireString(m: Record<string, unknown>, field: string): string {
  const value = m[field];
  if (typeof value !== 'string') throw bad(`"${nameOf(m)}" needs "${field}" as a string`);
  return value;
}

// The store keeps strings as UTF-8, which cannot hold a lone surrogate (arena.ts).
function notWellFormed(what: 'key' | 'value'): ProtocolError {
  return bad(`the ${what} is not well-formed Unicode: it has a lone surrogate (half of a UTF-16 pair, \\uD800 to \\uDFFF, without its other half); send whole characters (String.prototype.toWellFormed() replaces lone ones with U+FFFD)`);
}

/** Checks a key against the limits; throws ProtocolError. */
export function checkKey(key: string): void {
  if (key === '') throw bad('the key is empty; use a non-empty string');
  if (!isWellFormed(key)) throw notWellFormed('key');
  // A UTF-16 unit is at most 3 UTF-8 bytes: short keys need no count.
  if (key.length * 3 <= MAX_KEY_BYTES) return;
  const bytes = utf8ByteLength(key);
  if (bytes > MAX_KEY_BYTES) throw new ProtocolError('KEY_TOO_LARGE', `the key is ${bytes} bytes; the limit is ${MAX_KEY_BYTES} bytes`);
}

/** Checks a value against the limits; throws ProtocolError. */
export function checkValue(value: string): void {
  if (!isWellFormed(value)) throw notWellFormed('value');
  // As JSON a UTF-16 unit takes at most 6 bytes (\u0000): short values need no count.
  if (value.length * 6 + 2 <= MAX_VALUE_BYTES) return;
  const bytes = utf8ByteLength(JSON.stringify(value));
  if (bytes > MAX_VALUE_BYTES) {
    throw new ProtocolError('VALUE_TOO_LARGE', `the value is ${bytes} bytes as JSON; the limit is ${MAX_VALUE_BYTES} bytes (${MAX_VALUE_BYTES / 1024} KiB)`);
  }
}

function shortString(m: Record<string, unknown>, field: string, maxLength: number): string {
  const value = requireString(m, field);
  if (value.length > maxLength) throw bad(`"${nameOf(m)}" needs "${field}" of at most ${maxLength} characters`);
  return value;
}

function checkNonce(m: Record<string, unknown>): string {
  if (!isNonce(m.nonce)) throw bad(`"${nameOf(m)}" needs "nonce" as ${AUTH_NONCE_BYTES * 2} lowercase hex digits`);
  return m.nonce;
}

function checkProof(m: Record<string, unknown>): string {
  if (!isProof(m.proof)) throw bad(`"${nameOf(m)}" needs "proof" as ${AUTH_PROOF_HEX_DIGITS} lowercase hex digits`);
  return m.proof;
}

function nodeIdList(m: Record<string, unknown>, field: string): string[] {
  const value = m[field];
  if (!Array.isArray(value) || value.length > MAX_LIST_ITEMS || !value.every(isNodeId)) throw bad(`"${nameOf(m)}" needs "${field}" as a list of node ids`);
  return value;
}

function stringList(m: Record<string, unknown>, field: string, maxLength: number): string[] {
  const value = m[field];
  if (!Array.isArray(value) || value.length > MAX_LIST_ITEMS || !value.every((item) => typeof item === 'string' && item.length <= maxLength)) {
    throw bad(`"${nameOf(m)}" needs "${field}" as a list of short strings`);
  }
  return value as string[];
}

function sequenceNumber(m: Record<string, unknown>, field: string): number {
  const value = m[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad(`"${nameOf(m)}" needs "${field}" as a non-negative integer`);
  return value;
}

function digestString(text: string): string {
  if (text.length !== DIGEST_HEX_DIGITS || !/^[0-9a-f]+$/.test(text)) throw bad(`a digest is ${DIGEST_HEX_DIGITS} lowercase hex digits`);
  return text;
}

function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_NODE_ID_LENGTH && NODE_ID_PATTERN.test(value);
}

/** A node id field: 1 to MAX_NODE_ID_LENGTH of A-Z a-z 0-9 _ - (as in config files), so that ids never need escaping in a frame. */
function checkNodeId(m: Record<string, unknown>, field: string): string {
  const nodeId = m[field];
  if (!isNodeId(nodeId)) throw bad(`"${field}" must be a node id: 1 to ${MAX_NODE_ID_LENGTH} of A-Z a-z 0-9 _ -`);
  return nodeId;
}

/** One entry on the wire: `[key, value, timestamp, origin]`. */
export type EntryTuple = readonly [key: string, value: string, timestamp: number, origin: string];

function validateEntry(raw: unknown, index: number): Entry {
  if (!Array.isArray(raw) || raw.length !== 4) throw bad(`entries[${index}] must be [key, value, timestamp, origin]`);
  const [key, value, timestamp, origin] = raw as unknown[];
  if (typeof key !== 'string' || typeof value !== 'string' || typeof origin !== 'string') {
    throw bad(`entries[${index}] needs key, value and origin as strings`);
  }
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw bad(`entries[${index}] needs the timestamp as a non-negative integer (milliseconds)`);
  }
  if (origin === '' || origin.length > MAX_NODE_ID_LENGTH) throw bad(`entries[${index}]: the origin must be 1 to ${MAX_NODE_ID_LENGTH} characters`);
  checkKey(key);
  checkValue(value);
  return { key, value, timestamp, origin };
}

/** The text frame of a message: JSON, with the entries of an `entries` message as tuples. */
export function encodeMessage(message: Message): string {
  if (message.type !== 'entries') return JSON.stringify(message);
  return JSON.stringify({ ...message, entries: entryTuples(message.entries) });
}

function entryTuples(entries: readonly Entry[]): EntryTuple[] {
  const tuples: EntryTuple[] = new Array(entries.length);
  for (let i = 0; i < tuples.length; i++) {
    const entry = entries[i]!;
    tuples[i] = [entry.key, entry.value, entry.timestamp, entry.origin];
  }
  return tuples;
}

/** `toJSON` of the `entries` messages a node hands out: the wire form (the spread leaves this non-enumerable method out). */
function entriesMessageToJSON(this: EntriesMessage): object {
  return { ...this, entries: entryTuples(this.entries) };
}

/**
 * Makes `JSON.stringify(message)` write the same frame as `encodeMessage`: an
 * `entries` message gets a non-enumerable `toJSON` that writes its entries as
 * tuples. The node does this to every message of the effects it hands out, so
 * that an adapter that serializes a `send` effect's `message` itself, rather
 * than writing its `text`, still replicates.
 */
export function makeJSONEncodable(message: Message): void {
  if (message.type === 'entries' && !Object.hasOwn(message, 'toJSON')) {
    Object.defineProperty(message, 'toJSON', { value: entriesMessageToJSON, enumerable: false, configurable: false, writable: false });
  }
}

/** Checks a parsed frame by its type: one line per type, the longer checks in the functions below. */
function validate(m: Record<string, unknown>): IncomingMessage {
  switch (m.type) {
    case 'get':
      return validateGet(m);
    case 'set':
      return validateSet(m);
    case 'set-many':
      return validateSetMany(m);
    case 'keys':
      return validateKeys(m);
    case 'peers':
    case 'stats':
      return { type: m.type, id: requireId(m) };
    case 'watch':
      return validateWatch(m);
    case 'add-peer':
    case 'remove-peer':
      return { type: m.type, id: requireId(m), address: shortString(m, 'address', MAX_ADDRESS_LENGTH) };
    case 'challenge':
      return { type: 'challenge', nodeId: checkNodeId(m, 'nodeId'), nonce: checkNonce(m) };
    case 'auth':
      return validateAuth(m);
    case 'authenticated':
      return { type: 'authenticated', proof: checkProof(m) };
    case 'hello':
    case 'welcome':
      if (typeof m.protocol !== 'number') throw bad(`"${m.type}" needs "protocol" as a number`);
      return { type: m.type, protocol: m.protocol, nodeId: checkNodeId(m, 'nodeId'), address: shortString(m, 'address', MAX_ADDRESS_LENGTH) };
    case 'entries':
      return validateEntries(m);
    case 'ack':
      return validateAck(m);
    case 'catch-up':
      return validateCatchUp(m);
    case 'caught-up':
      if (typeof m.full !== 'boolean') throw bad('"caught-up" needs "full" as a boolean');
      return { type: 'caught-up', epoch: shortString(m, 'epoch', MAX_EPOCH_LENGTH), seq: sequenceNumber(m, 'seq'), full: m.full, entries: sequenceNumber(m, 'entries') };
    case 'ping':
      return m.upTo === undefined ? { type: 'ping' } : { type: 'ping', upTo: sequenceNumber(m, 'upTo') };
    case 'digest':
      return { type: 'digest', root: digestString(requireString(m, 'root')) };
    case 'buckets':
      return validateBuckets(m);
    case 'bucket-request':
      return validateBucketRequest(m);
    case 'peer-list':
      return validatePeerList(m);
    case 'reply':
      return { type: 'reply', id: isRequestId(m.id) ? m.id : 0, result: m.result };
    case 'watch-writes':
    case 'watch-state':
      // What a node sends a watcher: a node that receives one only drops it (answers are never answered).
      return { type: 'reply', id: isRequestId(m.id) ? m.id : 0, result: `a "${m.type}" message` };
    case 'error':
      return validateError(m);
    default:
      // No "type", or not a string: a missing or mistyped field, as anywhere else.
      if (typeof m.type !== 'string') throw bad('a message needs "type" as a string, such as "get"');
      throw new ProtocolError('UNKNOWN_TYPE', `unknown message type ${JSON.stringify(m.type.slice(0, MAX_QUOTED_TYPE_LENGTH))}; known types are ${[...REQUEST_TYPES, ...PEER_TYPES, ...AUTH_TYPES].join(', ')}`);
  }
}

function validateGet(m: Record<string, unknown>): GetRequest {
  const id = requireId(m);
  const key = requireString(m, 'key');
  checkKey(key);
  return { type: 'get', id, key };
}

function validateSet(m: Record<string, unknown>): SetRequest {
  const id = requireId(m);
  const key = requireString(m, 'key');
  const value = requireString(m, 'value');
  checkKey(key);
  checkValue(value);
  if (m.acks !== undefined && m.acks !== 'all' && !(Number.isInteger(m.acks) && (m.acks as number) >= 1 && (m.acks as number) <= MAX_ACKS)) {
    throw bad(`"acks" must be a number of nodes from 1 to ${MAX_ACKS}, or "all"`);
  }
  if (m.timeoutMs !== undefined && !(Number.isInteger(m.timeoutMs) && (m.timeoutMs as number) >= 1 && (m.timeoutMs as number) <= MAX_ACK_TIMEOUT_MS)) {
    throw bad(`"timeoutMs" must be a whole number of milliseconds from 1 to ${MAX_ACK_TIMEOUT_MS}`);
  }
  return {
    type: 'set',
    id,
    key,
    value,
    ...(m.acks === undefined ? {} : { acks: m.acks as number | 'all' }),
    ...(m.timeoutMs === undefined ? {} : { timeoutMs: m.timeoutMs as number }),
  };
}

function validateSetMany(m: Record<string, unknown>): SetManyRequest {
  const id = requireId(m);
  if (!Array.isArray(m.entries) || m.entries.length > MAX_SET_MANY_ENTRIES) {
    throw bad(`"set-many" needs "entries" as a list of at most ${MAX_SET_MANY_ENTRIES} {key, value} objects`);
  }
  // The parsed objects are checked and passed on as they are (only `key` and `value` are read): no copy per entry.
  const entries = m.entries as { key: string; value: string }[];
  for (let index = 0; index < entries.length; index++) {
    const e = entries[index] as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.key !== 'string' || typeof e.value !== 'string') {
      throw bad(`"set-many" entries[${index}] needs "key" and "value" as strings`);
    }
    checkKey(e.key);
    checkValue(e.value);
  }
  return { type: 'set-many', id, entries };
}

function validateKeys(m: Record<string, unknown>): KeysRequest {
  const id = requireId(m);
  // Pages used to follow a key in sorted order; an old client would loop on the first page if "after" were ignored.
  if (m.after !== undefined) throw bad('"keys" pages with "cursor" (from the previous reply), not "after"; update the client');
  if (m.cursor !== undefined && (typeof m.cursor !== 'string' || m.cursor.length > MAX_KEYS_CURSOR_LENGTH)) throw bad('"keys" needs "cursor" as the string of the previous reply');
  if (m.limit !== undefined && !(Number.isInteger(m.limit) && (m.limit as number) >= 1)) throw bad('"keys" needs "limit" as a positive integer');
  return {
    type: 'keys',
    id,
    ...(m.cursor === undefined ? {} : { cursor: m.cursor as string }),
    ...(m.limit === undefined ? {} : { limit: m.limit as number }),
  };
}

function validateWatch(m: Record<string, unknown>): WatchRequest {
  const id = requireId(m);
  if (m.values !== undefined && !(Number.isInteger(m.values) && (m.values as number) >= 0 && (m.values as number) <= MAX_WATCH_VALUE_CHARS)) {
    throw bad(`"watch" needs "values" as a number of characters from 0 to ${MAX_WATCH_VALUE_CHARS}`);
  }
  if (m.state !== undefined && typeof m.state !== 'boolean') throw bad('"watch" needs "state" as a boolean');
  return { type: 'watch', id, ...(m.values === undefined ? {} : { values: m.values as number }), ...(m.state === undefined ? {} : { state: m.state }) };
}

function validateAuth(m: Record<string, unknown>): AuthMessage {
  if (m.role !== 'peer' && m.role !== 'client') throw bad('"auth" needs "role" as "peer" or "client"');
  const nodeId = m.role === 'peer' ? checkNodeId(m, 'nodeId') : undefined;
  return { type: 'auth', role: m.role, ...(nodeId === undefined ? {} : { nodeId }), nonce: checkNonce(m), proof: checkProof(m) };
}

function validateEntries(m: Record<string, unknown>): EntriesMessage {
  if (!Array.isArray(m.entries)) throw bad('"entries" needs "entries" as an array');
  const entries = m.entries.map(validateEntry);
  const seen = m.seen === undefined ? undefined : nodeIdList(m, 'seen');
  const upTo = m.upTo === undefined ? undefined : sequenceNumber(m, 'upTo');
  const expected = m.expected === undefined ? undefined : sequenceNumber(m, 'expected');
  if (m.ack !== undefined && (typeof m.ack !== 'string' || m.ack.length > MAX_ACK_ID_LENGTH)) throw bad('"entries" needs "ack" as a short string');
  return {
    type: 'entries',
    entries,
    ...(seen === undefined ? {} : { seen }),
    ...(upTo === undefined ? {} : { upTo }),
    ...(expected === undefined ? {} : { expected }),
    ...(m.ack === undefined ? {} : { ack: m.ack as string }),
  };
}

function validateAck(m: Record<string, unknown>): AckMessage {
  if (typeof m.ok !== 'boolean') throw bad('"ack" needs "ok" as a boolean');
  const ack = requireString(m, 'ack');
  if (ack.length > MAX_ACK_ID_LENGTH) throw bad('"ack" needs "ack" as a short string');
  return { type: 'ack', ack, node: checkNodeId(m, 'node'), ok: m.ok };
}

function validateCatchUp(m: Record<string, unknown>): CatchUpMessage {
  if (m.since === null || m.since === undefined) return { type: 'catch-up', since: null };
  if (typeof m.since !== 'object' || Array.isArray(m.since)) throw bad('"catch-up" needs "since" as {epoch, seq} or null');
  // Named for the errors: the sender's own fields of "since" say nothing trustworthy.
  const since = { epoch: (m.since as Record<string, unknown>).epoch, seq: (m.since as Record<string, unknown>).seq, type: 'catch-up' };
  return { type: 'catch-up', since: { epoch: shortString(since, 'epoch', MAX_EPOCH_LENGTH), seq: sequenceNumber(since, 'seq') } };
}

function validateBuckets(m: Record<string, unknown>): BucketsMessage {
  const digests = stringList(m, 'digests', DIGEST_HEX_DIGITS);
  if (digests.length !== BUCKET_COUNT) throw bad(`"buckets" needs ${BUCKET_COUNT} digests`);
  return { type: 'buckets', digests: digests.map(digestString) };
}

function validateBucketRequest(m: Record<string, unknown>): BucketRequestMessage {
  if (!Array.isArray(m.buckets) || m.buckets.length > BUCKET_COUNT || !m.buckets.every((b) => Number.isInteger(b) && b >= 0 && b < BUCKET_COUNT)) {
    throw bad(`"bucket-request" needs "buckets" as a list of integers from 0 to ${BUCKET_COUNT - 1}`);
  }
  return { type: 'bucket-request', buckets: m.buckets as number[] };
}

function validatePeerList(m: Record<string, unknown>): PeerListMessage {
  const addresses = stringList(m, 'addresses', MAX_ADDRESS_LENGTH);
  if (addresses.length > MAX_PEER_LIST) throw bad(`"peer-list" carries at most ${MAX_PEER_LIST} addresses, not ${addresses.length}`);
  addresses.forEach((address, index) => {
    try {
      parseAddress(address);
    } catch {
      throw bad(`"peer-list" addresses[${index}] is not a host:port address`);
    }
  });
  return { type: 'peer-list', addresses };
}

/** An `error` frame is kept, cut short, whatever it holds: it is logged, never answered. */
function validateError(m: Record<string, unknown>): ErrorMessage {
  return {
    type: 'error',
    id: isRequestId(m.id) ? m.id : null,
    code: typeof m.code === 'string' ? m.code.slice(0, MAX_ERROR_CODE_LENGTH) : 'UNKNOWN',
    message: typeof m.message === 'string' ? m.message.slice(0, MAX_ERROR_MESSAGE_LENGTH) : '',
  };
}
