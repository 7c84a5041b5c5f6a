/**
 * The commands of `bby`: their names, aliases, arguments, the request each
 * sends, and how each answer is printed.
 */
import { checkKey, checkValue, parseAddress, type AddPeerResult, type PeerInfo, type RemovePeerResult } from '@bby/core';
import { type RequestBody } from '@bby/client';

/** One command of the CLI. */
export interface Command {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly args: readonly string[];
  readonly summary: string;
  /** Builds the request; throws an Error whose message is a usage problem. */
  request(args: readonly string[]): RequestBody;
  /** Text printed on stdout for a result (without --json); `omitted` counts the rows the node left out (`peers`). */
  format(result: unknown, omitted?: number): string;
}

const lines = (items: readonly string[]) => items.map((item) => `${item}\n`).join('');

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [
  {
    name: 'set',
    aliases: [],
    args: ['KEY', 'VALUE'],
    summary: 'store VALUE under KEY once: true if stored (or already equal), false if KEY holds another value',
    request: ([key, value]) => {
      checkKey(key!);
      checkValue(value!);
      return { type: 'set', key: key!, value: value! };
    },
    format: (result) => `${String(result)}\n`,
  },
  {
    name: 'get',
    aliases: [],
    args: ['KEY'],
    summary: 'print the value of KEY, or null',
    request: ([key]) => {
      checkKey(key!);
      return { type: 'get', key: key! };
    },
    format: (result) => `${result === null ? 'null' : String(result)}\n`,
  },
  {
    name: 'keys',
    aliases: [],
    args: [],
    summary: 'print every key, one per line, sorted',
    request: () => ({ type: 'keys' }),
    format: (result) => lines(result as string[]),
  },
  {
    name: 'peers',
    aliases: ['getPeers'],
    args: [],
    summary: "list the node's peers: address, id, direction, state, sorted by address",
    request: () => ({ type: 'peers' }),
    format: (result, omitted) => `${formatPeers(result as PeerInfo[])}${omitted !== undefined && omitted > 0 ? `... and ${omitted} more\n` : ''}`,
  },
  {
    name: 'add-peer',
    aliases: ['addPeer'],
    args: ['HOST:PORT'],
    summary: 'make the node connect to another node now and keep the connection',
    request: ([address]) => ({ type: 'add-peer', address: parseAddress(address!).address }),
    format: (result) => {
      const r = result as AddPeerResult;
      return r.connected
        ? `connected to ${r.address} (node ${r.id})\n`
        : r.retrying
          ? `not connected to ${r.address} yet (${r.error ?? 'unknown error'}); the node keeps retrying\n`
          : `not connected to ${r.address} (${r.error ?? 'unknown error'})\n`;
    },
  },
  {
    name: 'remove-peer',
    aliases: ['removePeer'],
    args: ['HOST:PORT'],
    summary: 'make the node stop dialing HOST:PORT and forget it (a peer of its config file comes back at its next start)',
    request: ([address]) => ({ type: 'remove-peer', address: parseAddress(address!).address }),
    format: (result) => {
      const r = result as RemovePeerResult;
      const note = r.note === undefined ? '' : ` (${r.note})`;
      return r.removed ? `removed ${r.address}: the node no longer dials it${note}\n` : `${r.address} was not dialed by the node: nothing to remove${note}\n`;
    },
  },
  {
    name: 'stats',
    aliases: [],
    args: [],
    summary: "print the node's counters as JSON",
    request: () => ({ type: 'stats' }),
    format: (result) => `${JSON.stringify(result, null, 2)}\n`,
  },
];

/** A command that sends many requests over one connection; run by packages/cli/src/bulk.ts. */
export interface BulkCommand {
  readonly name: 'import' | 'export';
  readonly aliases: readonly string[];
  readonly args: readonly string[];
  readonly summary: string;
}

/** The bulk commands, listed in `--help` after COMMANDS. */
export const BULK_COMMANDS: readonly BulkCommand[] = [
  {
    name: 'import',
    aliases: [],
    args: ['FILE'],
    summary: 'set every key of FILE, many at a time, write-once as set: JSON lines {"key":K,"value":V} or one JSON object {K:V,...}; - reads stdin',
  },
  {
    name: 'export',
    aliases: [],
    args: [],
    summary: 'print every key and value as JSON lines {"key":K,"value":V}, sorted by key (what import reads)',
  },
];

/** A command that streams, or asks over HTTP, rather than send one request; run by packages/cli/src/monitor.ts. */
export interface MonitorCommand extends Omit<BulkCommand, 'name'> {
  readonly name: 'watch' | 'health';
}

/** Commands that stream or ask over HTTP rather than send one request (monitor.ts). */
export const MONITOR_COMMANDS: readonly MonitorCommand[] = [
  { name: 'watch', aliases: ['monitor'], args: [], summary: 'print each write as it reaches the node, one line each, until Ctrl-C (--json: one JSON object per write)' },
  { name: 'health', aliases: [], args: [], summary: "print the node's health (GET /health): ready or not and why, keys, peers up and down; exit 1 when not ready" },
];

/** The monitor command named `name`. */
export function findMonitorCommand(name: string): MonitorCommand | undefined {
  return MONITOR_COMMANDS.find((command) => command.name === name || command.aliases.includes(name));
}

/** The bulk command named `name`. */
export function findBulkCommand(name: string): BulkCommand | undefined {
  return BULK_COMMANDS.find((command) => command.name === name || command.aliases.includes(name));
}

/** The command named `name` or one of its aliases. */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name || command.aliases.includes(name));
}

/** Host, then port as a number, then outbound before inbound: a row stays in its place whichever node dialed. */
function comparePeers(a: PeerInfo, b: PeerInfo): number {
  const split = (address: string) => {
    const colon = address.lastIndexOf(':');
    return [address.slice(0, colon), Number(address.slice(colon + 1))] as const;
  };
  const [hostA, portA] = split(a.address);
  const [hostB, portB] = split(b.address);
  if (hostA !== hostB) return hostA < hostB ? -1 : 1;
  if (portA !== portB) return portA - portB;
  return a.direction === b.direction ? 0 : a.direction === 'outbound' ? -1 : 1;
}

function formatPeers(peers: readonly PeerInfo[]): string {
  if (peers.length === 0) return '(no peers)\n';
  const rows = [
    ['ADDRESS', 'ID', 'DIRECTION', 'STATE'],
    ...[...peers].sort(comparePeers).map((p) => [p.address, p.id ?? '-', p.direction, p.connected ? 'connected' : `down${p.lastError ? ` (${p.lastError})` : ''}`]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return lines(rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')));
}
