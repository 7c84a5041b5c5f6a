/**
 * Peer addresses. Users write `host:port`, `[::1]:port`, `ws://host:port` or
 * `wss://host:port`; the rest of bby works with the normalized `host:port`
 * form and its URL. Whether a node dials with TLS is decided by its config's
 * "tls", not by the scheme written in front of an address.
 */
import { BbyError } from './errors.js';

/** A parsed peer address. */
export interface PeerAddress {
  /** Host name or IP, without brackets. */
  readonly host: string;
  readonly port: number;
  /** Normalized `host:port` (IPv6 hosts in brackets). */
  readonly address: string;
  /** WebSocket URL to dial without TLS (`ws://`); a node with "tls" dials `wss://` (node's transport.ts). */
  readonly url: string;
}

/** Formats a host and port as `host:port`, bracketing IPv6 hosts. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** True when `port` is an integer from 1 to 65535. */
export function isValidPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Parses `host:port`, `[v6]:port`, `ws://host:port` or `wss://host:port`; throws BbyError('BAD_ADDRESS') otherwise. */
export function parseAddress(text: string): PeerAddress {
  const bad = (why: string) =>
    new BbyError('BAD_ADDRESS', `bad peer address ${JSON.stringify(text)}: ${why}; write it as host:port, for example 127.0.0.1:7002`);
  if (typeof text !== 'string' || text.trim() === '') throw bad('it is empty');
  let rest = text.trim();
  const scheme = /^([a-z]+):\/\//i.exec(rest);
  if (scheme) {
    const name = scheme[1]!.toLowerCase();
    if (name !== 'ws' && name !== 'wss') throw bad(`only ws:// and wss:// are supported, not ${scheme[1]}://`);
    rest = rest.slice(scheme[0].length).replace(/\/$/, '');
  }
  let host: string;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(rest);
  if (v6) {
    host = v6[1]!;
    portText = v6[2]!;
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) throw bad('the port is missing');
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) throw bad('put an IPv6 host in brackets, as [::1]:7002');
    if (!/^[A-Za-z0-9.-]+$/.test(host)) throw bad(`${JSON.stringify(host)} is not a host name or IP address`);
  }
  const port = /^\d+$/.test(portText) ? Number(portText) : NaN;
  if (!isValidPort(port)) throw bad(`the port must be from 1 to 65535, got ${JSON.stringify(portText)}`);
  const address = formatAddress(host, port);
  return { host, port, address, url: `ws://${address}` };
}

/**
 * The eight 16-bit groups of an IPv6 address (`::` shorthand and a trailing
 * dotted IPv4 part allowed, no brackets, no zone), or null when `text` is not one.
 */
function ipv6Groups(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(':')) return null;
  let tail: number[] = [];
  let rest = text;
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const octets = ipv4Octets(v4[2]!);
    if (octets === null) return null;
    tail = [(octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!];
    rest = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const parseGroups = (part: string): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    if (groups.some((group) => !/^[0-9a-fA-F]{1,4}$/.test(group))) return null;
    return groups.map((group) => parseInt(group, 16));
  };
  const halves = rest.split('::');
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]!);
  const back = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === null || back === null) return null;
  const given = head.length + back.length + tail.length;
  if (halves.length === 1) return given === 8 ? [...head, ...tail] : null;
  if (given > 7) return null;
  return [...head, ...new Array<number>(8 - given).fill(0), ...back, ...tail];
}

/** The four octets of a dotted IPv4 address, or null. */
function ipv4Octets(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((part) => !/^\d{1,3}$/.test(part) || Number(part) > 255)) return null;
  return parts.map(Number);
}

/** The IPv4 address an IPv6 address maps (`::ffff:a.b.c.d`), or null. */
function mappedIpv4(groups: readonly number[]): number[] | null {
  if (groups.slice(0, 5).some((group) => group !== 0) || groups[5] !== 0xffff) return null;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff];
}

/**
 * True when `host` can only be reached from this machine: 127.0.0.0/8, ::1
 * (however written, also IPv4-mapped) and `localhost`. Anything else,
 * including names this function cannot resolve, counts as reachable from the
 * network: a node that is not sure it is private must protect itself.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower === 'localhost.') return true;
  const v4 = ipv4Octets(bare);
  if (v4 !== null) return v4[0] === 127;
  const v6 = ipv6Groups(bare);
  if (v6 === null) return false;
  const mapped = mappedIpv4(v6);
  if (mapped !== null) return mapped[0] === 127;
  return v6.slice(0, 7).every((group) => group === 0) && v6[7] === 1;
}

/**
 * True for the "every interface" addresses (0.0.0.0, ::, however written):
 * fine to listen on, but nobody can dial them, so a node never announces one.
 */
export function isWildcardHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const v4 = ipv4Octets(bare);
  if (v4 !== null) return v4.every((octet) => octet === 0);
  const v6 = ipv6Groups(bare);
  if (v6 === null) return false;
  const mapped = mappedIpv4(v6);
  return mapped !== null ? mapped.every((octet) => octet === 0) : v6.every((group) => group === 0);
}

/**
 * The normalized `host:port` of an address a peer announced (`hello`,
 * `welcome`, a peer list), or null when it is not one or names a wildcard
 * host: an old or broken member may announce `0.0.0.0:PORT`, which nobody can
 * dial (a node dialing it reaches itself), so it is never kept nor relayed.
 */
export function dialableAddress(text: string): string | null {
  let parsed: PeerAddress;
  try {
    parsed = parseAddress(text);
  } catch {
    return null;
  }
  return isWildcardHost(parsed.host) ? null : parsed.address;
}
