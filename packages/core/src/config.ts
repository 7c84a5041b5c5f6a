/**
 * The node config file, validated without touching the disk: adapters read
 * the file, this module says whether its text is a usable config. Every error
 * names the file, the field and the fix.
 */
import { isValidPort, parseAddress } from './address.js';
import { ConfigError } from './errors.js';
import { MAX_NODE_ID_LENGTH, NODE_ID_PATTERN } from './limits.js';

/** A validated node config. */
export interface NodeConfig {
  /** Port the node listens on, 1 to 65535. */
  readonly port: number;
  /** Interface the node listens on; default 127.0.0.1. */
  readonly host: string;
  /** Normalized `host:port` addresses of the peers to dial at start. */
  readonly peers: readonly string[];
  /** Node id; when absent the node generates one. */
  readonly id?: string;
  /** Folder for the node's log, snapshots and identity; without it the node keeps keys in memory only. */
  readonly dataDir?: string;
  /** When writes reach the disk: `always` (before `set` answers), `everysec`, or `no` (left to the OS). */
  readonly fsync: FsyncPolicy;
  /** How often the node compares its store with each peer's (anti-entropy), in milliseconds; default 10 000. */
  readonly antiEntropyIntervalMs?: number;
  /** Learn and dial the peers of peers (default true); false keeps exactly the topology the configs describe. */
  readonly peerExchange: boolean;
}

/** When a node with a dataDir makes its writes durable; see docs/storage.md. */
export type FsyncPolicy = 'always' | 'everysec' | 'no';

/** The fsync policies, default first. */
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'everysec', 'no'];

/** Default interface a node listens on. */
export const DEFAULT_HOST = '127.0.0.1';

const FIELDS = ['port', 'host', 'peers', 'id', 'dataDir', 'fsync', 'antiEntropyIntervalMs', 'peerExchange'] as const;

/** Parses and validates the text of a config file; `source` names the file in errors. */
export function parseConfig(text: string, source: string): NodeConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${source}: not valid JSON (${(error as Error).message}); a config looks like {"port": 7001, "peers": ["127.0.0.1:7002"]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${source}: must be a JSON object such as {"port": 7001}`);
  }
  const object = raw as Record<string, unknown>;
  for (const field of Object.keys(object)) {
    if (!(FIELDS as readonly string[]).includes(field)) {
      throw new ConfigError(`${source}: unknown field ${JSON.stringify(field)}; the fields are ${FIELDS.join(', ')}`);
    }
  }
  const { port, host = DEFAULT_HOST, peers = [], id, dataDir, fsync = 'always', antiEntropyIntervalMs, peerExchange = true } = object;
  if (port === undefined) throw new ConfigError(`${source}: "port" is missing; add for example "port": 7001`);
  if (!isValidPort(port)) throw new ConfigError(`${source}: "port" must be an integer from 1 to 65535, got ${JSON.stringify(port)}`);
  if (typeof host !== 'string' || host === '' || !/^[A-Za-z0-9.:-]+$/.test(host)) {
    throw new ConfigError(`${source}: "host" must be a host name or IP address such as "127.0.0.1", got ${JSON.stringify(host)}`);
  }
  if (!Array.isArray(peers)) throw new ConfigError(`${source}: "peers" must be a list such as ["127.0.0.1:7002"], got ${JSON.stringify(peers)}`);
  const normalized: string[] = [];
  peers.forEach((peer, index) => {
    if (typeof peer !== 'string') throw new ConfigError(`${source}: "peers"[${index}] must be a string such as "127.0.0.1:7002", got ${JSON.stringify(peer)}`);
    try {
      const { address } = parseAddress(peer);
      if (!normalized.includes(address)) normalized.push(address);
    } catch (error) {
      throw new ConfigError(`${source}: "peers"[${index}]: ${(error as Error).message}`);
    }
  });
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_NODE_ID_LENGTH || !NODE_ID_PATTERN.test(id))) {
    throw new ConfigError(`${source}: "id" must be 1 to ${MAX_NODE_ID_LENGTH} letters, digits, "_" or "-", got ${JSON.stringify(id)}; or leave it out to get a generated id`);
  }
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    throw new ConfigError(`${source}: "dataDir" must be a folder path such as "data/node1", got ${JSON.stringify(dataDir)}`);
  }
  if (!FSYNC_POLICIES.includes(fsync as FsyncPolicy)) {
    throw new ConfigError(`${source}: "fsync" must be one of ${FSYNC_POLICIES.map((p) => JSON.stringify(p)).join(', ')}, got ${JSON.stringify(fsync)}`);
  }
  if (antiEntropyIntervalMs !== undefined && (typeof antiEntropyIntervalMs !== 'number' || !Number.isInteger(antiEntropyIntervalMs) || antiEntropyIntervalMs < 100 || antiEntropyIntervalMs > 3_600_000)) {
    throw new ConfigError(`${source}: "antiEntropyIntervalMs" must be an integer from 100 to 3600000 (milliseconds), got ${JSON.stringify(antiEntropyIntervalMs)}`);
  }
  if (typeof peerExchange !== 'boolean') throw new ConfigError(`${source}: "peerExchange" must be true or false, got ${JSON.stringify(peerExchange)}`);
  return {
    port,
    fsync: fsync as FsyncPolicy,
    peerExchange,
    ...(antiEntropyIntervalMs === undefined ? {} : { antiEntropyIntervalMs }),
    host,
    peers: normalized,
    ...(id === undefined ? {} : { id }),
    ...(dataDir === undefined ? {} : { dataDir }),
  };
}
