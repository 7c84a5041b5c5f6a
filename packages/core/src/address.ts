/**
 * Peer addresses. Users write `host:port`, `[::1]:port` or `ws://host:port`;
 * the rest of bby works with the normalized `host:port` form and its URL.
 */
import { BbyError } from './errors.js';

/** A parsed peer address. */
export interface PeerAddress {
  /** Host name or IP, without brackets. */
  readonly host: string;
  readonly port: number;
  /** Normalized `host:port` (IPv6 hosts in brackets). */
  readonly address: string;
  /** WebSocket URL to dial. */
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

/** Parses `host:port`, `[v6]:port` or `ws://host:port`; throws BbyError('BAD_ADDRESS') otherwise. */
export function parseAddress(text: string): PeerAddress {
  const bad = (why: string) =>
    new BbyError('BAD_ADDRESS', `bad peer address ${JSON.stringify(text)}: ${why}; write it as host:port, for example 127.0.0.1:7002`);
  if (typeof text !== 'string' || text.trim() === '') throw bad('it is empty');
  let rest = text.trim();
  const scheme = /^([a-z]+):\/\//i.exec(rest);
  if (scheme) {
    if (scheme[1]!.toLowerCase() !== 'ws') throw bad(`only ws:// is supported, not ${scheme[1]}://`);
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
