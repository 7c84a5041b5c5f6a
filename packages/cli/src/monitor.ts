/**
 * `bby CONFIG watch [--json]`: one line per write as it reaches the node
 * (like `redis-cli monitor`), until Ctrl-C or the node goes away; and
 * `bby CONFIG health`: the node's `GET /health`.
 *
 * Keys, values and node ids come from the node and from whoever wrote them:
 * every one is printed JSON-quoted and with control characters escaped, so
 * that a key cannot forge a line or move the terminal's cursor.
 */
import http from 'node:http';
import https from 'node:https';
import { printable, type WatchStateMessage, type WatchWrite, type WatchWritesMessage } from '@bby/core';
import { BbyClient, type ConnectionTarget } from '@bby/client';
import { exitCodeFor } from './exit-code.js';

/** Characters of each value `bby watch` shows; the rest is cut (the line says so with `...`). */
export const WATCH_VALUE_CHARS = 64;

/** Where `watch` and `health` write; the CLI's Output. */
interface Sink {
  out(text: string): void;
  err(text: string): void;
}

/** `HH:MM:SS.mmm` of a timestamp in milliseconds, UTC, as bby-node's log lines. */
export function clockTime(timestampMs: number): string {
  return new Date(timestampMs).toISOString().slice(11, 23);
}

/** A string from outside, for a terminal: JSON-quoted, then control and other invisible characters escaped. */
function quote(text: string): string {
  return printable(JSON.stringify(text), Infinity);
}

/** One line of `bby watch` for a write: when, who wrote it, the key, the value, and where it came from. */
export function formatWrite(write: WatchWrite): string {
  const value = write.value === undefined ? '' : ` ${quote(write.value)}${write.cut === true ? '...' : ''}`;
  const via = write.from === null ? 'client' : `from ${printable(write.from)}`;
  const conflict = write.conflict === true ? '  conflict: kept the oldest write' : '';
  return `${clockTime(write.timestamp)} ${printable(write.origin)} ${quote(write.key)}${value}  (${via})${conflict}\n`;
}

/**
 * Watches until `stop` resolves (Ctrl-C) or the connection closes; resolves
 * to the exit code: 0 when stopped, 1 when the node went away. Errors on
 * connecting are thrown as the other commands' are (main.ts prints them).
 */
export async function runWatch(target: ConnectionTarget, options: { json: boolean; timeoutMs: number }, output: Sink, stop: Promise<void>): Promise<number> {
  const client = await BbyClient.connect(target, options.timeoutMs);
  const onMessage = (message: WatchWritesMessage | WatchStateMessage) => {
    if (message.type !== 'watch-writes') return;
    if (message.dropped !== undefined) {
      if (options.json) output.out(`${JSON.stringify({ dropped: message.dropped })}\n`);
      else output.err(`bby: ${message.dropped} writes left out: this terminal did not keep up\n`);
    }
    for (const write of message.writes) output.out(options.json ? `${JSON.stringify(write)}\n` : formatWrite(write));
  };
  const closed = new Promise<string>((resolve) => client.onClose(resolve));
  const reply = await client.watch({ values: WATCH_VALUE_CHARS, state: false }, onMessage);
  const node = (reply.result as { node?: unknown }).node;
  output.err(`bby: watching the writes that reach node ${printable(String(node))} at ${target.url}; Ctrl-C stops\n`);
  const outcome = await Promise.race([stop.then(() => 'stopped' as const), closed]);
  client.close();
  if (outcome === 'stopped') return 0;
  output.err(`bby: the node closed the connection (${printable(outcome)})\n`);
  return exitCodeFor('NODE_UNREACHABLE');
}

/** The answer of `GET /health`, as bby-node sends it (http-routes.ts). */
interface HealthAnswer {
  readonly status: number;
  readonly body: string;
}

/** GETs a path of the node's port with the config's TLS and, with a secret, `Authorization: Bearer`. */
export function httpGet(target: ConnectionTarget, path: string, timeoutMs: number): Promise<HealthAnswer> {
  const url = new URL(path, target.url.replace(/^ws/, 'http'));
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: timeoutMs, headers: target.secret === undefined ? {} : { Authorization: `Bearer ${target.secret}` }, ...(target.tls ?? {}) }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** `bby CONFIG health`: prints the node's health; exit 0 when ready, 1 when not ready or unreachable. */
export async function runHealth(target: ConnectionTarget, options: { json: boolean; timeoutMs: number; configPath: string }, output: Sink): Promise<number> {
  let answer: HealthAnswer;
  try {
    answer = await httpGet(target, '/health', options.timeoutMs);
  } catch (error) {
    output.err(`bby: cannot reach the node at ${target.url} (${printable((error as Error).message)}); is the node started? Start it with: bby-node ${options.configPath}\n`);
    return exitCodeFor('NODE_UNREACHABLE');
  }
  let health: { ready?: unknown; reasons?: unknown; store?: { keys?: unknown }; peers?: { up?: unknown; down?: unknown; connecting?: unknown }; catchUps?: { inProgress?: unknown; entries?: unknown; expected?: unknown }; node?: unknown };
  try {
    health = JSON.parse(answer.body) as typeof health;
  } catch {
    output.err(`bby: the node at ${target.url} answered /health with HTTP ${answer.status} and no JSON: is it a bby-node of this version?\n`);
    return 1;
  }
  if (options.json) output.out(`${JSON.stringify(health)}\n`);
  else {
    const reasons = Array.isArray(health.reasons) ? health.reasons.map((reason) => printable(String(reason))) : [];
    const peers = health.peers ?? {};
    const catchUps = health.catchUps ?? {};
    const lines = [
      health.ready === true ? 'ready' : `not ready: ${reasons.join('; ')}`,
      `keys: ${String(health.store?.keys ?? '?')}`,
      `peers: ${String(peers.up)} up, ${String(peers.down)} down, ${String(peers.connecting)} connecting`,
      ...(Number(catchUps.inProgress) > 0 ? [`catching up: ${String(catchUps.entries)} of ${String(catchUps.expected)} entries`] : []),
    ];
    output.out(`${lines.join('\n')}\n`);
  }
  return health.ready === true ? 0 : 1;
}
