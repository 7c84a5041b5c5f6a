/**
 * The node config file, validated without touching the disk: adapters read
 * the file (and the secret files it names), this module says whether the text
 * is a usable config. Every error is one line that names the file, the field
 * and the fix.
 */
import { formatAddress, isLoopbackHost, isValidPort, isWildcardHost, parseAddress } from './address.js';
import { MIN_SECRET_LENGTH } from './auth.js';
import { ConfigError } from './errors.js';
import { printable } from './log-text.js';
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
  /**
   * The members' secrets (docs/security.md): a node presents the first when it
   * dials a peer and accepts any of them (rotation). Empty: no authentication.
   * From "secret", or from "secretFile" once read (`readConfigFile` in @bby/node
   * does; `parseConfig` alone leaves it empty and sets `secretFile`).
   */
  readonly secrets: readonly string[];
  /** Secrets for clients only: a client presents the first (else `secrets[0]`); a node accepts these or `secrets` from clients. */
  readonly clientSecrets: readonly string[];
  /** "secretFile" as written (relative to the config file), or absolute once `readConfigFile` has read it. */
  readonly secretFile?: string;
  /** "clientSecretFile", as `secretFile`. */
  readonly clientSecretFile?: string;
  /** Run on a non-loopback host without a secret, on purpose (default false); see `checkExposure`. */
  readonly insecure: boolean;
  /** TLS files: the node listens with wss:// and dials wss://, verifying certificates against `ca`. */
  readonly tls?: TlsConfig;
  /** The normalized `host:port` this node announces to its peers (never a wildcard such as 0.0.0.0). */
  readonly advertise?: string;
  /** Entries stamped further ahead of this node's clock are refused, in milliseconds; default 60 000. */
  readonly maxClockSkewMs: number;
  /** Most WebSocket connections (peers and clients) the node keeps open at once; default 1000. */
  readonly maxConnections: number;
}

/**
 * The "tls" field: paths of PEM files, relative to the config file as written
 * (`readConfigFile` makes them absolute). A node needs `cert` and `key`; `ca`
 * is the authority its peers' certificates are checked against (the system's
 * authorities without it). A config for `bby` only may hold `ca` alone.
 */
export interface TlsConfig {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/** When a node with a dataDir makes its writes durable; see docs/storage.md. */
export type FsyncPolicy = 'always' | 'everysec' | 'no';

/** The fsync policies, default first. */
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'everysec', 'no'];

/** Default interface a node listens on. */
export const DEFAULT_HOST = '127.0.0.1';

/** Default of "maxClockSkewMs": a minute, far more than NTP-synchronized clocks drift, far less than a broken clock. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000;

/** Default of "maxConnections": peers and clients together. */
export const DEFAULT_MAX_CONNECTIONS = 1000;

/** Longest accepted secret, in characters (MIN_SECRET_LENGTH in auth.ts is the shortest). */
export const MAX_SECRET_LENGTH = 1024;

/** How the errors about a missing or weak secret say to make one. */
export const MAKE_SECRET_HINT = 'make one with: openssl rand -hex 32';

/** The fields of a config file, in the order errors and `bby-node --help` list them. */
export const CONFIG_FIELDS = [
  'port',
  'host',
  'peers',
  'id',
  'dataDir',
  'fsync',
  'antiEntropyIntervalMs',
  'peerExchange',
  'secret',
  'secretFile',
  'clientSecret',
  'clientSecretFile',
  'insecure',
  'tls',
  'advertise',
  'maxClockSkewMs',
  'maxConnections',
] as const;

const TLS_FIELDS = ['cert', 'key', 'ca'] as const;

/** A config value quoted for an error message: short, one line, and never a stack overflow (a value nested thousands deep). */
function shown(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `a list of ${value.length}`;
  if (typeof value === 'object' && value !== null) return 'an object';
  if (value === undefined) return 'nothing';
  return printable(JSON.stringify(value), 100);
}

/** Parses and validates the text of a config file; `source` names the file in errors. */
export function parseConfig(text: string, source: string): NodeConfig {
  const object = parseConfigObject(text, source);
  // The parts check their fields in the order of CONFIG_FIELDS: the error is that of the first bad field.
  return {
    ...parseListen(object, source),
    peers: parsePeers(object.peers, source),
    ...parseStorage(object, source),
    ...parseReplication(object, source),
    ...parseSecrets(object, source),
    ...parseExposure(object, source),
    ...parseLimits(object, source),
  };
}

/** A config file's object, its fields known but not yet checked. */
type ConfigObject = Readonly<Record<string, unknown>>;

/** The text as a JSON object holding only fields of CONFIG_FIELDS. */
function parseConfigObject(text: string, source: string): ConfigObject {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    // V8 quotes the text around the error, line breaks included: one line, cut short.
    const why = printable((error as Error).message, 160);
    throw new ConfigError(`${source}: not valid JSON (${why}); a config looks like {"port": 7001, "peers": ["127.0.0.1:7002"]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${source}: must be a JSON object such as {"port": 7001}`);
  }
  const object = raw as Record<string, unknown>;
  for (const field of Object.keys(object)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(field)) {
      throw new ConfigError(`${source}: unknown field ${shown(field)}; the fields are ${CONFIG_FIELDS.join(', ')}`);
    }
  }
  return object;
}

/** "port" and "host": where the node listens. */
function parseListen(object: ConfigObject, source: string): Pick<NodeConfig, 'port' | 'host'> {
  const { port, host = DEFAULT_HOST } = object;
  if (port === undefined) throw new ConfigError(`${source}: "port" is missing; add for example "port": 7001`);
  if (!isValidPort(port)) throw new ConfigError(`${source}: "port" must be an integer from 1 to 65535, got ${shown(port)}`);
  if (typeof host !== 'string' || host === '' || !/^[A-Za-z0-9.:-]+$/.test(host)) {
    throw new ConfigError(`${source}: "host" must be a host name or IP address such as "127.0.0.1", got ${shown(host)}`);
  }
  return { port, host };
}

/** "peers": the addresses to dial at start, normalized, each once. */
function parsePeers(peers: unknown = [], source: string): string[] {
  if (!Array.isArray(peers)) throw new ConfigError(`${source}: "peers" must be a list such as ["127.0.0.1:7002"], got ${shown(peers)}`);
  const normalized: string[] = [];
  peers.forEach((peer, index) => {
    if (typeof peer !== 'string') throw new ConfigError(`${source}: "peers"[${index}] must be a string such as "127.0.0.1:7002", got ${shown(peer)}`);
    try {
      const { address } = parseAddress(peer);
      if (!normalized.includes(address)) normalized.push(address);
    } catch (error) {
      throw new ConfigError(`${source}: "peers"[${index}]: ${(error as Error).message}`);
    }
  });
  return normalized;
}

/** "id", "dataDir" and "fsync": who the node is, and where and how it keeps its data. */
function parseStorage(object: ConfigObject, source: string): Pick<NodeConfig, 'id' | 'dataDir' | 'fsync'> {
  const { id, dataDir, fsync = 'always' } = object;
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_NODE_ID_LENGTH || !NODE_ID_PATTERN.test(id))) {
    throw new ConfigError(`${source}: "id" must be 1 to ${MAX_NODE_ID_LENGTH} letters, digits, "_" or "-", got ${shown(id)}; or leave it out to get a generated id`);
  }
  if (dataDir !== undefined && (typeof dataDir !== 'string' || dataDir === '')) {
    throw new ConfigError(`${source}: "dataDir" must be a folder path such as "data/node1", got ${shown(dataDir)}`);
  }
  if (!FSYNC_POLICIES.includes(fsync as FsyncPolicy)) {
    throw new ConfigError(`${source}: "fsync" must be one of ${FSYNC_POLICIES.map((p) => JSON.stringify(p)).join(', ')}, got ${shown(fsync)}`);
  }
  return { ...(id === undefined ? {} : { id }), ...(dataDir === undefined ? {} : { dataDir }), fsync: fsync as FsyncPolicy };
}

/** "antiEntropyIntervalMs" and "peerExchange": how the node keeps in step with the mesh. */
function parseReplication(object: ConfigObject, source: string): Pick<NodeConfig, 'antiEntropyIntervalMs' | 'peerExchange'> {
  const { antiEntropyIntervalMs, peerExchange = true } = object;
  const interval = antiEntropyIntervalMs === undefined ? undefined : parseInteger(antiEntropyIntervalMs, 'antiEntropyIntervalMs', source);
  if (typeof peerExchange !== 'boolean') throw new ConfigError(`${source}: "peerExchange" must be true or false, got ${shown(peerExchange)}`);
  return { ...(interval === undefined ? {} : { antiEntropyIntervalMs: interval }), peerExchange };
}

/** "secret", "secretFile", "clientSecret" and "clientSecretFile": what members and clients must prove. */
function parseSecrets(object: ConfigObject, source: string): Pick<NodeConfig, 'secrets' | 'clientSecrets' | 'secretFile' | 'clientSecretFile'> {
  const secrets = parseSecretField(object, 'secret', 'secretFile', source);
  const clientSecrets = parseSecretField(object, 'clientSecret', 'clientSecretFile', source);
  return {
    secrets: secrets.secrets,
    clientSecrets: clientSecrets.secrets,
    ...(secrets.file === undefined ? {} : { secretFile: secrets.file }),
    ...(clientSecrets.file === undefined ? {} : { clientSecretFile: clientSecrets.file }),
  };
}

/** "insecure", "tls" and "advertise": how the node faces the network. */
function parseExposure(object: ConfigObject, source: string): Pick<NodeConfig, 'insecure' | 'tls' | 'advertise'> {
  const { insecure = false, tls, advertise } = object;
  if (typeof insecure !== 'boolean') throw new ConfigError(`${source}: "insecure" must be true or false, got ${shown(insecure)}`);
  const tlsConfig = tls === undefined ? undefined : parseTls(tls, source);
  const advertised = advertise === undefined ? undefined : parseAdvertise(advertise, source);
  return { insecure, ...(tlsConfig === undefined ? {} : { tls: tlsConfig }), ...(advertised === undefined ? {} : { advertise: advertised }) };
}

/** "maxClockSkewMs" and "maxConnections": what the node accepts at most. */
function parseLimits(object: ConfigObject, source: string): Pick<NodeConfig, 'maxClockSkewMs' | 'maxConnections'> {
  const { maxClockSkewMs = DEFAULT_MAX_CLOCK_SKEW_MS, maxConnections = DEFAULT_MAX_CONNECTIONS } = object;
  return { maxClockSkewMs: parseInteger(maxClockSkewMs, 'maxClockSkewMs', source), maxConnections: parseInteger(maxConnections, 'maxConnections', source) };
}

/** The integer fields: their bounds (inclusive), the unit their errors name, and the default their errors name, if any. */
const INTEGER_FIELDS = {
  antiEntropyIntervalMs: { min: 100, max: 3_600_000, unit: 'milliseconds' },
  maxClockSkewMs: { min: 1_000, max: 86_400_000, unit: 'milliseconds', fallback: DEFAULT_MAX_CLOCK_SKEW_MS },
  maxConnections: { min: 1, max: 100_000, fallback: DEFAULT_MAX_CONNECTIONS },
} as const satisfies Record<string, { min: number; max: number; unit?: string; fallback?: number }>;

/** Checks an integer field against its bounds in INTEGER_FIELDS. */
function parseInteger(value: unknown, field: keyof typeof INTEGER_FIELDS, source: string): number {
  const bounds: { min: number; max: number; unit?: string; fallback?: number } = INTEGER_FIELDS[field];
  if (isIntegerIn(value, bounds.min, bounds.max)) return value;
  const unit = bounds.unit === undefined ? '' : ` (${bounds.unit})`;
  const fallback = bounds.fallback === undefined ? '' : `; the default is ${bounds.fallback}`;
  throw new ConfigError(`${source}: ${JSON.stringify(field)} must be an integer from ${bounds.min} to ${bounds.max}${unit}, got ${shown(value)}${fallback}`);
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Reads "secret" (or "clientSecret") and its "...File" twin: at most one of the two. */
function parseSecretField(object: Record<string, unknown>, field: 'secret' | 'clientSecret', fileField: 'secretFile' | 'clientSecretFile', source: string): { secrets: string[]; file?: string } {
  const value = object[field];
  const file = object[fileField];
  if (value !== undefined && file !== undefined) {
    throw new ConfigError(`${source}: both ${JSON.stringify(field)} and ${JSON.stringify(fileField)} are set; keep one of them (the file keeps the secret out of the config)`);
  }
  if (file !== undefined) {
    if (typeof file !== 'string' || file.trim() === '') {
      throw new ConfigError(`${source}: ${JSON.stringify(fileField)} must be the path of a file holding one secret per line, such as "secret.txt" (relative to the config file); ${MAKE_SECRET_HINT} > secret.txt`);
    }
    return { secrets: [], file };
  }
  if (value === undefined) return { secrets: [] };
  const shape = `${JSON.stringify(field)} must be a string of ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters, or a list of them (the first is presented, all are accepted); ${MAKE_SECRET_HINT}`;
  if (typeof value === 'string') return { secrets: [checkSecret(value, `${source}: ${JSON.stringify(field)}`)] };
  if (!Array.isArray(value)) throw new ConfigError(`${source}: ${shape}, got ${describeKind(value)}`);
  if (value.length === 0) throw new ConfigError(`${source}: ${JSON.stringify(field)} is an empty list; give at least one secret, or leave the field out; ${MAKE_SECRET_HINT}`);
  return {
    secrets: value.map((item, index) => {
      const where = `${source}: ${JSON.stringify(field)}[${index}]`;
      if (typeof item !== 'string') throw new ConfigError(`${where} must be a string of ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} characters, got ${describeKind(item)}; ${MAKE_SECRET_HINT}`);
      return checkSecret(item, where);
    }),
  };
}

/** What kind of JSON value this is, without showing it (it may be a secret). */
function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/**
 * Checks one secret; `where` starts the error ("file: \"secret\"[1]"). The
 * message never shows the secret: errors end up in terminals and logs.
 */
function checkSecret(secret: string, where: string): string {
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(`${where} is ${secret.length} characters; a secret needs at least ${MIN_SECRET_LENGTH} (a short one can be guessed from one recorded handshake); ${MAKE_SECRET_HINT}`);
  }
  if (secret.length > MAX_SECRET_LENGTH) throw new ConfigError(`${where} is ${secret.length} characters; a secret may have at most ${MAX_SECRET_LENGTH}; ${MAKE_SECRET_HINT}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find control characters in a secret.
  if (/[\u0000-\u001f\u007f]/.test(secret)) throw new ConfigError(`${where} holds a control character or line break; use printable characters only; ${MAKE_SECRET_HINT}`);
  if (secret.trim() !== secret) throw new ConfigError(`${where} starts or ends with a space; remove it (a secret file trims lines, so the same secret would differ there)`);
  return secret;
}

/**
 * The secrets of a secret file's text: one per line; blank lines and lines
 * starting with `#` are skipped; spaces around a line are trimmed. Throws
 * ConfigError naming the config file, the field and the secret file (never a
 * secret) when a line is not a usable secret or when there is none.
 */
export function parseSecretFile(text: string, source: string, field: 'secretFile' | 'clientSecretFile', path: string): string[] {
  const secrets: string[] = [];
  text.split('\n').forEach((rawLine, index) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    secrets.push(checkSecret(line, `${source}: ${JSON.stringify(field)} ${path}: line ${index + 1}`));
  });
  if (secrets.length === 0) {
    throw new ConfigError(`${source}: ${JSON.stringify(field)} ${path} holds no secret (only blank lines or # comments); put one on a line: openssl rand -hex 32 > ${path}`);
  }
  return secrets;
}

function parseTls(tls: unknown, source: string): TlsConfig {
  const example = '{"cert": "node1.pem", "key": "node1-key.pem", "ca": "ca.pem"} (paths relative to the config file; scripts/make-certs.sh makes them)';
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) throw new ConfigError(`${source}: "tls" must be an object such as ${example}, got ${shown(tls)}`);
  const object = tls as Record<string, unknown>;
  for (const field of Object.keys(object)) {
    if (!(TLS_FIELDS as readonly string[]).includes(field)) throw new ConfigError(`${source}: unknown field "tls".${shown(field)}; the fields of "tls" are cert, key, ca`);
  }
  const result: { cert?: string; key?: string; ca?: string } = {};
  for (const field of TLS_FIELDS) {
    const value = object[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.trim() === '') throw new ConfigError(`${source}: "tls".${shown(field)} must be the path of a PEM file, such as ${JSON.stringify(`${field === 'ca' ? 'ca' : field === 'key' ? 'node1-key' : 'node1'}.pem`)}, got ${shown(value)}`);
    result[field] = value;
  }
  if ((result.cert === undefined) !== (result.key === undefined)) {
    throw new ConfigError(`${source}: "tls" has ${result.cert === undefined ? '"key" but no "cert"' : '"cert" but no "key"'}; a node needs both, such as ${example}`);
  }
  if (result.cert === undefined && result.ca === undefined) throw new ConfigError(`${source}: "tls" is empty; write it as ${example}`);
  return result;
}

function parseAdvertise(advertise: unknown, source: string): string {
  const example = '"10.0.0.1:7001" (the address other machines dial to reach this node)';
  if (typeof advertise !== 'string') throw new ConfigError(`${source}: "advertise" must be a host:port such as ${example}, got ${shown(advertise)}`);
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseAddress(advertise));
  } catch (error) {
    throw new ConfigError(`${source}: "advertise": ${(error as Error).message.replace(/for example 127\.0\.0\.1:7002$/, `for example ${example}`)}`);
  }
  if (isWildcardHost(host)) {
    throw new ConfigError(`${source}: "advertise" is ${shown(advertise)}, which nobody can dial; write the address other machines reach this node at, such as ${example}`);
  }
  return formatAddress(host, port);
}

/**
 * Refuses a config that would leave a node open to whoever can reach it: a
 * `host` that is not loopback with no secret (unless `"insecure": true`), and
 * a "clientSecret" without "secret" (the node would require nothing at all).
 * Called by bby-node before it listens, never by bby (a client config need not
 * be a node's). Throws ConfigError with one line naming the fix.
 */
export function checkExposure(config: NodeConfig, source: string): void {
  if ((config.secretFile !== undefined && config.secrets.length === 0) || (config.clientSecretFile !== undefined && config.clientSecrets.length === 0)) {
    // A programming error rather than a user's: parseConfig does not read files.
    throw new ConfigError(`${source}: the secret file was not read; load the config with readConfigFile (@bby/node), not parseConfig alone`);
  }
  if (config.secrets.length === 0 && config.clientSecrets.length > 0) {
    throw new ConfigError(`${source}: "clientSecret" is set but "secret" is not, so the node would require no secret at all; add "secret" (the members' secret; ${MAKE_SECRET_HINT})`);
  }
  if (config.secrets.length > 0 || config.insecure || isLoopbackHost(config.host)) return;
  throw new ConfigError(
    `${source}: "host" is ${JSON.stringify(config.host)}, reachable from other machines, and there is no "secret": anyone who can reach port ${config.port} could read and write every key; add "secret" (${MAKE_SECRET_HINT}), or "insecure": true on a network you trust entirely`,
  );
}

/**
 * Warnings bby-node prints at start, one line each: a node left open on
 * purpose (`"insecure": true` on a non-loopback host without a secret), and a
 * node listening on every interface with no "advertise" (it announces no
 * address its peers could dial, so they cannot learn it by peer exchange).
 */
export function exposureWarnings(config: NodeConfig, source: string): string[] {
  const warnings: string[] = [];
  if (config.insecure && config.secrets.length === 0 && !isLoopbackHost(config.host)) {
    warnings.push(`${source}: "insecure": true: listening on ${formatAddress(config.host, config.port)} with no secret; anyone who can reach it can read and write every key and join the mesh; add "secret" to close it`);
  }
  if (isWildcardHost(config.host) && config.advertise === undefined) {
    warnings.push(`${source}: "host" is ${JSON.stringify(config.host)} and there is no "advertise": this node announces no address its peers can dial, so they cannot learn it from each other; set "advertise" to the address other machines reach it at, such as "10.0.0.1:${config.port}"`);
  }
  return warnings;
}

/**
 * The `host:port` a node announces to its peers (hello, welcome, peer lists):
 * "advertise", else its host and port, and none for a wildcard host (0.0.0.0,
 * ::), which nobody could dial.
 */
export function announcedAddress(config: NodeConfig): string | undefined {
  if (config.advertise !== undefined) return config.advertise;
  return isWildcardHost(config.host) ? undefined : formatAddress(config.host, config.port);
}

/**
 * The `host:port` a client on the node's machine dials: "advertise" (the
 * name a TLS certificate is made for), else the host, with loopback for a
 * wildcard host.
 */
export function connectAddress(config: NodeConfig): string {
  if (config.advertise !== undefined) return config.advertise;
  if (!isWildcardHost(config.host)) return formatAddress(config.host, config.port);
  return formatAddress(config.host.includes(':') ? '::1' : '127.0.0.1', config.port);
}
