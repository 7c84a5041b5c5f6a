/**
 * The plain HTTP side of a node's port (requests that are not a WebSocket
 * upgrade): `GET /health`, `GET /metrics` and the live page (`GET /`,
 * `/page.js`, `/page.css`). Anything else keeps the 426 answer of
 * transport.ts.
 *
 * Bounds: the HTTP server's own timeouts (headers 5 s, a whole request 10 s,
 * keep-alive 5 s) and its socket cap (maxConnections + 64) hold for these
 * requests too; only GET and HEAD are taken, and a request body is never
 * read. Every answer is small: /health and /metrics list at most
 * MAX_PEERS_LISTED peers.
 *
 * With a secret in the config, /metrics and the full /health require the
 * client credential, `Authorization: Bearer <clientSecret or secret>` (or the
 * same secret as the password of Basic authentication), compared in constant
 * time; /health without it says ready or not and why with counts only: no
 * key, no value, no node id or address. The page's files hold no data: its
 * data comes over the WebSocket, which authenticates as `bby` does
 * (docs/security.md).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type NodeConfig, type NodeStatus } from '@bby/core';
import { type MetricsSnapshot, type NodeMetrics } from './metrics.js';

/** What the routes read from a running node; undefined while it loads its data folder. */
export interface RouteSource {
  readonly metrics: NodeMetrics;
  snapshot(): MetricsSnapshot;
  /** True when the node keeps its keys in a data folder. */
  readonly durable: boolean;
}

/** The answer of `GET /health`. */
export interface Health {
  readonly ready: boolean;
  /** Why not ready, one phrase each; empty when ready. */
  readonly reasons: readonly string[];
  readonly store: { readonly loaded: boolean; readonly keys?: number };
  readonly disk: { readonly dataDir: boolean; readonly writable: boolean; readonly failure?: string };
  readonly peers: { readonly up: number; readonly down: number; readonly connecting: number };
  readonly catchUps: { readonly inProgress: number; readonly entries: number; readonly expected: number };
  /** With the credential (or without a secret): the node's id and its peers. */
  readonly node?: string;
  readonly peerList?: readonly { readonly address: string; readonly id: string | null; readonly state: string; readonly lastError?: string }[];
}

const PAGE_FILES: Record<string, { readonly file: string; readonly type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};

/** The page's files, read once (they ship in the package's `page/` folder). */
const pageCache = new Map<string, Buffer>();
function pageFile(name: string): Buffer {
  let body = pageCache.get(name);
  if (body === undefined) {
    body = readFileSync(new URL(`../../page/${name}`, import.meta.url));
    pageCache.set(name, body);
  }
  return body;
}

/** Headers of every answer: nothing is cached, nothing is framed or sniffed, and the page loads nothing from elsewhere. */
const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
};

/**
 * The handler transport.ts calls for each plain HTTP request; `source()` is
 * undefined while the node loads its data (then 503). Returns false for a
 * path it does not serve.
 */
export function httpRoutes(config: NodeConfig, source: () => RouteSource | undefined): (request: IncomingMessage, response: ServerResponse) => boolean {
  const tokens = [...config.clientSecrets, ...config.secrets].map(digest);
  return (request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const isPage = Object.hasOwn(PAGE_FILES, path);
    // Every browser asks for it with the page: no icon, rather than a 426 error in the console.
    if (path === '/favicon.ico') {
      response.writeHead(204).end();
      return true;
    }
    if (path !== '/health' && path !== '/metrics' && !isPage) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, 'text/plain; charset=utf-8', `${path} answers GET only\n`, { Allow: 'GET, HEAD' });
      return true;
    }
    const authorized = tokens.length === 0 || presents(request, tokens);
    const running = source();
    if (path === '/health') {
      const health = running === undefined ? loadingHealth() : healthOf(running.snapshot().status, running.durable, authorized);
      send(response, health.ready ? 200 : 503, 'application/json', `${JSON.stringify(health)}\n`);
      return true;
    }
    if (path === '/metrics') {
      if (!authorized) {
        send(response, 401, 'text/plain; charset=utf-8', 'this node has a secret: send "Authorization: Bearer <its clientSecret or secret>" (docs/security.md)\n', { 'WWW-Authenticate': 'Bearer realm="bby"' });
        return true;
      }
      if (running === undefined) {
        send(response, 503, 'text/plain; charset=utf-8', 'starting: loading its data\n');
        return true;
      }
      running.metrics.render(running.snapshot()).then(
        (text) => send(response, 200, running.metrics.contentType, text),
        (error: Error) => send(response, 500, 'text/plain; charset=utf-8', `metrics failed: ${error.message}\n`),
      );
      return true;
    }
    const page = PAGE_FILES[path]!;
    send(response, 200, page.type, pageFile(page.file));
    return true;
  };
}

/** What /health says while the data folder loads. */
function loadingHealth(): Health {
  return { ready: false, reasons: ['loading its data folder'], store: { loaded: false }, disk: { dataDir: true, writable: false }, peers: { up: 0, down: 0, connecting: 0 }, catchUps: { inProgress: 0, entries: 0, expected: 0 } };
}

/**
 * Ready: the store is loaded, the disk takes writes, and no catch-up to this
 * node is under way (its reads may miss what is still coming). Peers down do
 * not make a node unready (it serves and takes writes alone, and they catch up
 * later), but they are counted.
 */
export function healthOf(status: NodeStatus, durable: boolean, detailed: boolean): Health {
  const reasons: string[] = [];
  if (status.storageFailure !== null) reasons.push('the data folder cannot be written: writes are refused');
  let up = 0;
  let down = 0;
  let connecting = 0;
  let inProgress = 0;
  let entries = 0;
  let expected = 0;
  for (const row of status.peers) {
    if (row.state === 'connected') up++;
    else if (row.state === 'connecting') connecting++;
    else down++;
    if (row.catchUpIn !== null && !row.catchUpIn.done) {
      inProgress++;
      entries += row.catchUpIn.entries;
      expected += row.catchUpIn.expected ?? 0;
    }
  }
  if (inProgress > 0) reasons.push(`catching up from ${inProgress} peer${inProgress === 1 ? '' : 's'}`);
  const health: Health = {
    ready: reasons.length === 0,
    reasons,
    store: { loaded: true, keys: status.keys },
    disk: { dataDir: durable, writable: status.storageFailure === null, ...(detailed && status.storageFailure !== null ? { failure: status.storageFailure } : {}) },
    peers: { up, down, connecting },
    catchUps: { inProgress, entries, expected },
  };
  if (!detailed) return health;
  return {
    ...health,
    node: status.id,
    peerList: status.peers.map((row) => ({ address: row.address, id: row.id, state: row.state, ...(row.lastError === undefined ? {} : { lastError: row.lastError }) })),
  };
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  response.writeHead(status, { ...COMMON_HEADERS, ...headers, 'Content-Type': type, 'Content-Length': bytes.length });
  response.end(response.req.method === 'HEAD' ? undefined : bytes);
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Whether the request carries one of the secrets, as a bearer token or a Basic password; compared in constant time (digests of equal length). */
function presents(request: IncomingMessage, tokens: readonly Buffer[]): boolean {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || header.length > 4096) return false;
  let presented: string | undefined;
  const [scheme, rest] = [header.slice(0, header.indexOf(' ')).toLowerCase(), header.slice(header.indexOf(' ') + 1).trim()];
  if (scheme === 'bearer') presented = rest;
  else if (scheme === 'basic') {
    const decoded = Buffer.from(rest, 'base64').toString('utf8');
    presented = decoded.slice(decoded.indexOf(':') + 1);
  }
  if (presented === undefined || presented === '') return false;
  const candidate = digest(presented);
  let match = false;
  for (const token of tokens) match = timingSafeEqual(candidate, token) || match;
  return match;
}
