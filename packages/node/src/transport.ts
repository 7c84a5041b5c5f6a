/**
 * What a node listens with and dials with: plain HTTP or HTTPS under the
 * WebSocket upgrade, chosen by the config's "tls", with the timeouts and the
 * connection cap that keep a silent or flooding client from holding sockets.
 *
 * The server answers no upgrade itself: the adapter (node-server.ts) listens
 * to its 'upgrade' event and hands sockets to a `WebSocketServer({ noServer:
 * true })`, or answers 503 while the node loads its data or is full. What
 * this module does answer:
 *  - a plain HTTP request without upgrade that `onRequest` does not take
 *    (the adapter's /health, /metrics and page, http-routes.ts): 426;
 *  - a plain-HTTP request to a TLS node: 426 with `Upgrade: TLS/1.3`
 *    (RFC 2817), so that the other side can say "this node speaks TLS"
 *    rather than "connection reset" (describe-error.ts of @bby/client);
 *  - silence: a connection that has not sent its request headers within
 *    HEADERS_TIMEOUT_MS (after the TLS handshake, itself bounded by
 *    TLS_HANDSHAKE_TIMEOUT_MS) is closed.
 */
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { type Duplex } from 'node:stream';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { announcedAddress, ConfigError, formatAddress, parseAddress, type NodeConfig } from '@bby/core';
import * as bbyClient from '@bby/client';
import { checkCertificatePem, type ClientTlsOptions, tlsFileError, urlScheme } from '@bby/client';
import { StartError } from './start-error.js';

export { type ClientTlsOptions, type UrlScheme, urlScheme } from '@bby/client';

/** How long a connection may take to send its HTTP upgrade request's headers, in milliseconds (issue 12: "HTTP headers within 5 s"). */
export const HEADERS_TIMEOUT_MS = 5_000;

/** How long a TLS handshake may take, in milliseconds; the headers' time starts after it. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;

/** How long a whole plain HTTP request may take, in milliseconds (Node wants at least HEADERS_TIMEOUT_MS; upgraded sockets are not concerned). */
export const REQUEST_TIMEOUT_MS = 10_000;

/** How long an idle keep-alive HTTP connection (a scraper of /metrics) stays open, in milliseconds. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** How often Node looks for connections past HEADERS_TIMEOUT_MS: a silent one is closed at most this late, in milliseconds. */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

/**
 * TCP connections the server accepts beyond "maxConnections": room for the
 * adapter to answer 503 "too many connections" to a few more rather than have
 * them cut without a word. Past it, Node closes new sockets at once.
 */
export const CONNECTION_MARGIN = 64;

/** A node's HTTP server: plain, or TLS when the config has "tls". */
export type HttpServer = http.Server | https.Server;

/** Options of `createHttpServer`. */
export interface CreateServerOptions {
  /** Gets one line per TLS set-up that works here but will fail elsewhere (a certificate that does not name the announced address, or is not signed by "ca"). */
  readonly onWarning?: (message: string) => void;
  /** Answers a plain HTTP request (not an upgrade) and returns true, or returns false to leave it to the 426 answer. */
  readonly onRequest?: (request: http.IncomingMessage, response: http.ServerResponse) => boolean;
}

/** The URL a node with this config dials `address` (`host:port`, or a URL whose scheme is ignored) at. */
export function dialUrl(config: NodeConfig, address: string): string {
  return `${urlScheme(config)}://${parseAddress(address).address}`;
}

/**
 * The TLS options of a node's dials: @bby/client's `clientTlsOptions`, with a
 * "ca" it cannot use a StartError (bby-node exits 1), as for the other TLS
 * files. Call once and reuse the result for every dial.
 */
export function clientTlsOptions(config: NodeConfig, source = 'the config'): ClientTlsOptions {
  return asStartError(() => bbyClient.clientTlsOptions(config, source));
}

/** Runs a check of @bby/client and makes its ConfigError a StartError: a node that cannot use its TLS files does not start. */
function asStartError<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ConfigError) throw new StartError(error.message);
    throw error;
  }
}

/**
 * An HTTP server (HTTPS with "tls") already listening on the config's host
 * and port, with the timeouts and connection cap of this module. Throws
 * StartError, one line naming the field or the config and the fix, when the
 * port is taken or forbidden, the host is not an address of this machine, or
 * a TLS file is missing, unreadable, not PEM, expired, or the key does not
 * match the certificate.
 *
 * The caller attaches `server.on('upgrade', ...)` and closes the server. It
 * may also listen to 'tlsClientError' (failed TLS handshakes; this module
 * already ends each such socket).
 */
export async function createHttpServer(config: NodeConfig, source: string, options: CreateServerOptions = {}): Promise<HttpServer> {
  const timeouts = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS };
  let server: HttpServer;
  const onRequest = options.onRequest;
  const answer =
    onRequest === undefined
      ? answerPlainRequest
      : (request: http.IncomingMessage, response: http.ServerResponse) => {
          if (!onRequest(request, response)) answerPlainRequest(request, response);
        };
  if (config.tls === undefined) server = http.createServer(timeouts, answer);
  else {
    const material = await loadServerTls(config, source, options.onWarning ?? (() => undefined));
    server = https.createServer({ ...timeouts, ...material, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS, minVersion: 'TLSv1.2' }, answer);
    server.on('tlsClientError', onTlsClientError);
  }
  server.maxConnections = config.maxConnections + CONNECTION_MARGIN;
  // A monitoring client's idle keep-alive connection holds a socket this long at most (Node's default, said here).
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  await listen(server, config, source);
  return server;
}

/**
 * Answers an upgrade request with an HTTP error instead of a WebSocket, and
 * closes the socket: for the adapter's 503 while the node loads its data or
 * past "maxConnections". `reason` is one line of plain text (such as "too many
 * connections" or "starting: loading its data"); `bby` shows it to the user.
 */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason.replace(/[\r\n]+/g, ' ')}\n`;
  const text = http.STATUS_CODES[status] ?? 'Error';
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  // A client that does not read its answer does not hold the socket.
  setTimeout(() => socket.destroy(), HEADERS_TIMEOUT_MS).unref();
}

/** Answers an HTTP request that is not a WebSocket upgrade: this port speaks WebSocket only. */
function answerPlainRequest(_request: http.IncomingMessage, response: http.ServerResponse): void {
  const body = 'this is a bby node: it speaks WebSocket only; talk to it with bby CONFIG COMMAND\n';
  response.writeHead(426, { Upgrade: 'websocket', Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/**
 * A TLS handshake failed. When the other side sent plain HTTP (a ws:// dial),
 * OpenSSL says so (ERR_SSL_HTTP_REQUEST) and the raw socket is still writable:
 * answer in plain HTTP, which ws reports as "Unexpected server response: 426".
 * `_parent` is Node's (private) link from the TLS socket to the TCP socket;
 * where it is missing the socket is only closed.
 */
function onTlsClientError(error: NodeJS.ErrnoException, tlsSocket: TLSSocket): void {
  const raw = (tlsSocket as unknown as { _parent?: Socket })._parent;
  if (error.code === 'ERR_SSL_HTTP_REQUEST' && raw !== undefined && raw.writable) {
    const body = 'this bby node speaks TLS: dial it with wss:// (a config with "tls")\n';
    raw.end(`HTTP/1.1 426 Upgrade Required\r\nUpgrade: TLS/1.3, HTTP/1.1\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    raw.setTimeout(HEADERS_TIMEOUT_MS, () => raw.destroy());
    return;
  }
  tlsSocket.destroy();
}

function listen(server: HttpServer, config: NodeConfig, source: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const where = `port ${config.port} on ${config.host}`;
    const onError = (error: NodeJS.ErrnoException) => {
      server.close();
      if (error.code === 'EADDRINUSE') reject(new StartError(`${where} is already in use (config ${source}): another node, maybe started with the same config, is running; stop it or change "port"`));
      else if (error.code === 'EACCES') reject(new StartError(`permission denied to listen on ${where} (config ${source}): choose a port above 1023`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
        reject(new StartError(`cannot listen on ${where} (config ${source}): "${config.host}" is not an address of this machine; use one of its addresses, "0.0.0.0" for all of them, or "127.0.0.1"`));
      } else reject(new StartError(`cannot listen on ${where} (config ${source}): ${error.message}`));
    };
    server.once('error', onError);
    server.listen({ host: config.host, port: config.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The cert, key and ca of a TLS node, each checked with a message naming its field. */
async function loadServerTls(config: NodeConfig, source: string, warn: (message: string) => void): Promise<{ cert: Buffer; key: Buffer; ca?: Buffer }> {
  const tls = config.tls!;
  if (tls.cert === undefined || tls.key === undefined) {
    throw new StartError(`${source}: "tls" has no "cert" and "key": a node needs both to listen with TLS ("ca" alone is for a bby-only config); make them with scripts/make-certs.sh (docs/security.md)`);
  }
  const read = async (field: 'cert' | 'key' | 'ca', file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (error) {
      throw new StartError(tlsFileError(field, file, source, error as NodeJS.ErrnoException));
    }
  };
  const [cert, key, ca] = await Promise.all([read('cert', tls.cert), read('key', tls.key), tls.ca === undefined ? undefined : read('ca', tls.ca)]);
  const certificate = asStartError(() => checkCertificatePem('cert', tls.cert!, source, cert));
  const authority = ca === undefined ? undefined : asStartError(() => checkCertificatePem('ca', tls.ca!, source, ca));
  const text = key.toString('latin1');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new StartError(`${source}: "tls"."key" ${tls.key} is encrypted with a passphrase, which bby-node cannot ask for; decrypt it: openssl pkey -in ${tls.key} -out ${tls.key}.plain (then chmod 600 it)`);
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(text)) {
    throw new StartError(`${source}: "tls"."key" ${tls.key} is not a PEM private key (no "-----BEGIN PRIVATE KEY-----"); give the key file made with the certificate (scripts/make-certs.sh makes NAME-key.pem)`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch (error) {
    throw new StartError(`${source}: "tls"."key" ${tls.key} is not a usable private key (${(error as Error).message}); give the key file made with the certificate`);
  }
  if (!matches) throw new StartError(`${source}: "tls"."key" ${tls.key} does not match "tls"."cert" ${tls.cert}; give the key made together with that certificate (scripts/make-certs.sh writes NAME.pem and NAME-key.pem)`);
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now) throw new StartError(`${source}: "tls"."cert" ${tls.cert} expired on ${certificate.validTo}; make a new one (scripts/make-certs.sh)`);
  if (Date.parse(certificate.validFrom) > now) throw new StartError(`${source}: "tls"."cert" ${tls.cert} is not valid before ${certificate.validFrom}; check this machine's clock, or make a new certificate`);
  try {
    createSecureContext({ cert, key, ...(ca === undefined ? {} : { ca }) });
  } catch (error) {
    throw new StartError(`${source}: "tls" files cannot be used together (${(error as Error).message}); make them again with scripts/make-certs.sh`);
  }
  if (authority !== undefined && !certificate.verify(authority.publicKey)) {
    warn(`${source}: "tls"."cert" ${tls.cert} is not signed by "tls"."ca" ${tls.ca}: peers that trust that authority will refuse this node; make its certificate with the same CA (scripts/make-certs.sh)`);
  }
  const announced = announcedAddress(config);
  if (announced !== undefined) {
    const { host } = parseAddress(announced);
    const named = isIP(host) === 0 ? certificate.checkHost(host) : certificate.checkIP(host);
    if (named === undefined) {
      warn(`${source}: "tls"."cert" ${tls.cert} does not name ${host}, the address this node announces (it names ${certificate.subjectAltName ?? 'nothing'}): peers dialing ${formatAddress(host, config.port)} will refuse it; make a certificate for it: scripts/make-certs.sh DIR NAME:${host}`);
    }
  }
  return { cert, key, ...(ca === undefined ? {} : { ca }) };
}

export { StartError } from './start-error.js';
