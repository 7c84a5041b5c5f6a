/**
 * The public surface of @bby/core, pinned: adding, removing or renaming a
 * name that `@bby/core` exports makes this test fail, so that a change to the
 * API an embedder sees is a conscious one (change the list and
 * packages/core/README.md with it). What the repository's own packages and
 * tests need beyond it is at `@bby/core/internal` (internal.ts), not pinned.
 * The test reads the compiled declarations, which list both values and types:
 * what a consumer of the published package sees.
 */
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// This file runs as packages/core/dist/test/public-surface.test.js, beside dist/src.
const declarations = (name: string) => fileURLToPath(new URL(`../src/${name}.d.ts`, import.meta.url));

/** The names a module's declaration file exports, sorted. */
function exportedNames(file: string): string[] {
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const module = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  if (module === undefined) throw new Error(`no module in ${file}: build first (npx tsc -b)`);
  return checker.getExportsOfModule(module).map((symbol) => symbol.name).sort();
}

const PUBLIC_NAMES = [
  // The node, its options, effects and log fields; running several in one process.
  'BbyNode', 'CLOSE_CODES', 'createNode', 'Effect', 'LinkId', 'LogFields', 'NodeOptions', 'SendEffect',
  // The contract with an adapter: the typed batch, its order, and the durability policy between it and the disk.
  'carryOut', 'CloseEffect', 'CursorEffect', 'DialEffect', 'isEmptyReady', 'LogEffect', 'PauseEffect', 'PeerAddedEffect', 'PeerRemovedEffect',
  'PersistEffect', 'Ready', 'READY_ORDER', 'ReadyHandlers', 'ResumeEffect',
  'BacklogBounds', 'BatchId', 'COMPACT_MIN_BYTES', 'compactionDue', 'DurabilityDecisions', 'DurabilityOptions', 'DurabilityPipeline', 'EpochDecision', 'epochRule',
  'DEFAULT_TIMING', 'Timing', 'seededRandom', 'randomBytesFrom',
  'createMemoryNetwork', 'memoryAddress', 'MemoryNetwork', 'MemoryNetworkOptions', 'MemoryNetworkStats', 'MemoryNodeOptions',
  // What an adapter stores and recovers.
  'Change', 'compareEntries', 'Entry',
  // Configuration and addresses.
  'announcedAddress', 'checkExposure', 'CONFIG_FIELDS', 'connectAddress', 'DEFAULT_HOST', 'DEFAULT_MAX_CLOCK_SKEW_MS', 'DEFAULT_MAX_CONNECTIONS',
  'exposureWarnings', 'FSYNC_POLICIES', 'FsyncPolicy', 'MAKE_SECRET_HINT', 'MAX_SECRET_LENGTH', 'NodeConfig', 'parseConfig', 'parseSecretFile', 'TlsConfig',
  'formatAddress', 'isLoopbackHost', 'isValidPort', 'isWildcardHost', 'parseAddress', 'PeerAddress',
  // Errors.
  'BbyError', 'ConfigError', 'ERROR_CODES', 'ErrorCode', 'ErrorCodeInfo', 'LOCAL_ERROR_CODES', 'LocalErrorCode', 'ProtocolError',
  // Authentication, for a client's or an adapter's side of the handshake.
  'AUTH_HEADER', 'AUTH_HEADER_VALUE', 'AUTH_NONCE_BYTES', 'AUTH_TIMEOUT_MS', 'authProof', 'AuthRole', 'AuthSide', 'AuthTranscript', 'findSecret',
  'MIN_SECRET_LENGTH', 'newNonce', 'proofMatches',
  // The wire: messages, their parser and encoder, and the limits of docs/protocol.md.
  'AckMessage', 'AddPeerRequest', 'AddPeerResult', 'AuthenticatedMessage', 'AuthHandshakeMessage', 'AuthMessage', 'BucketRequestMessage',
  'BucketsMessage', 'CatchUpMessage', 'CatchUpProgress', 'CaughtUpMessage', 'ChallengeMessage', 'Cursor', 'DigestMessage', 'EntriesMessage',
  'ErrorMessage', 'GetRequest', 'HelloMessage', 'IncomingMessage', 'KeysRequest', 'Message', 'NodeStatus', 'ParseResult', 'PeerInfo',
  'PeerListMessage', 'PeerMessage', 'PeersRequest', 'PeerStatus', 'PingMessage', 'RemovePeerRequest', 'RemovePeerResult', 'ReplyMessage',
  'Request', 'RequestId', 'ResponseMessage', 'SetManyRequest', 'SetRequest', 'Stats', 'StatsRequest', 'WatchRequest', 'WatchResult',
  'WatchStateMessage', 'WatchWrite', 'WatchWritesMessage', 'WelcomeMessage',
  'checkKey', 'checkValue', 'encodeMessage', 'parseIncoming', 'PROTOCOL_VERSION',
  'DEFAULT_ACK_TIMEOUT_MS', 'MAX_ACK_ID_LENGTH', 'MAX_ACK_TIMEOUT_MS', 'MAX_ACKS', 'MAX_ADDRESS_LENGTH', 'MAX_BATCH_CHARS', 'MAX_EPOCH_LENGTH',
  'MAX_ERROR_CODE_LENGTH', 'MAX_ERROR_MESSAGE_LENGTH', 'MAX_KEY_BYTES', 'MAX_KEYS_CURSOR_LENGTH', 'MAX_LIST_ITEMS', 'MAX_MESSAGE_BYTES', 'MAX_NODE_ID_LENGTH',
  'MAX_REQUEST_ID_LENGTH', 'MAX_SET_MANY_ENTRIES', 'MAX_VALUE_BYTES', 'MAX_WATCH_VALUE_CHARS', 'NODE_ID_PATTERN',
  // Log text.
  'printable', 'quoted',
];

describe('the public surface of @bby/core', function () {
  this.timeout(30_000); // building a program for the checker takes a second or two

  it('exports exactly the pinned names (change the list, and the README, to change the API)', () => {
    expect(exportedNames(declarations('index'))).to.deep.equal([...PUBLIC_NAMES].sort());
  });

  it('keeps @bby/core/internal apart: no name is in both', () => {
    const internal = exportedNames(declarations('internal'));
    expect(internal).to.not.be.empty;
    expect(internal.filter((name) => PUBLIC_NAMES.includes(name))).to.deep.equal([]);
  });
});
