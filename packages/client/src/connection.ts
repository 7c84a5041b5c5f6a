/**
 * Opening a connection to a node, for every client of the protocol
 * (BbyClient, so `bby`, its import and export, and the bench's load
 * generator): ws:// or wss:// with the config's CA, then, when the config
 * has a secret, the client side of the handshake of docs/protocol.md:
 *
 *   upgrade answered with `x-bby-auth: hmac-sha256` (AUTH_HEADER)
 *   <- challenge {nodeId, nonce}
 *   -> auth {role: "client", nonce, proof}       (role "peer" and nodeId for a peer)
 *   <- authenticated {proof}        checked with proofMatches
 *
 * The connection is handed over only once the node has proved it holds the
 * secret too: the protocol would let requests follow `auth` at once, but
 * then a key and value could reach a listener that is not the node (one
 * round trip is the price, paid once per connection).
 *
 * Every way this can fail becomes one line naming the fix: a ConnectionError
 * (the config and the node disagree, or the node is busy) or an
 * UnreachableError (nothing answered).
 */
import { type Socket } from 'node:net';
import { AUTH_HEADER, AUTH_HEADER_VALUE, BbyError, CLOSE_CODES, connectAddress, MAX_MESSAGE_BYTES, parseIncoming, printable as printableText, type NodeConfig } from '@bby/core';
import { ClientHandshake } from './client-handshake.js';
import { type ClientTlsOptions, clientTlsOptions, urlScheme } from './client-tls.js';
import { CERTIFICATE_NOT_TRUSTED, describeSocketError, describeTlsError, HOSTNAME_MISMATCH, PEER_WITH_TLS, PEER_WITHOUT_TLS } from './describe-error.js';
import { WebSocket } from './ws.js';

/** Where and how to connect: made from a config by `connectionTarget`, or just a URL (a node without secret or TLS). */
export interface ConnectionTarget {
  /** `ws://host:port` or `wss://host:port`. */
  readonly url: string;
  /** TLS options for wss:// (the CA); `clientTlsOptions`. */
  readonly tls?: ClientTlsOptions;
  /** The secret this client presents; without it, a node that requires one is refused with a clear message. */
  readonly secret?: string;
  /** Authenticate as the peer of this id rather than as a client (the bench's observer); the caller then sends `hello`. */
  readonly peerId?: string;
  /** The config file, named in messages ("the config" when absent). */
  readonly configPath?: string;
}

/** The node could not be reached, or the connection was lost before the answer. bby exits 1. */
export class UnreachableError extends BbyError {
  override name = 'UnreachableError';
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super('NODE_UNREACHABLE', `cannot reach the node at ${url} (${reason})`);
  }
}

/** Why a connection was refused; see ConnectionError. */
export type ConnectionFailure =
  | 'wrong-secret'
  | 'secret-required'
  | 'node-without-secret'
  | 'unknown-auth'
  | 'node-not-proven'
  | 'auth-timeout'
  | 'node-speaks-tls'
  | 'node-without-tls'
  | 'certificate-not-trusted'
  | 'hostname-mismatch'
  | 'tls-failed'
  | 'busy'
  | 'refused';

/** Failures that a retry may cure (the node is busy, or starting): NODE_BUSY (bby exits 1), the others CONNECTION_REFUSED (2). */
const TRANSIENT: ReadonlySet<ConnectionFailure> = new Set(['busy', 'auth-timeout']);

/** The node answered, but this config cannot talk to it (CONNECTION_REFUSED), or not now (NODE_BUSY). The message is one line that names the fix. */
export class ConnectionError extends BbyError {
  override name = 'ConnectionError';
  constructor(
    readonly failure: ConnectionFailure,
    readonly url: string,
    message: string,
  ) {
    super(TRANSIENT.has(failure) ? 'NODE_BUSY' : 'CONNECTION_REFUSED', message);
  }
}

/** Characters of an HTTP error body shown to the user. */
const MAX_BODY_SHOWN = 200;

/**
 * How `bby` reaches the node of `config`: its "advertise" address (the one a
 * certificate names) or its host (loopback for 0.0.0.0 and ::), wss:// with
 * the config's CA when it has "tls" (the node's `clientTlsOptions`), and the
 * secret clients present: `clientSecrets[0] ?? secrets[0]`. Throws
 * ConfigError when "tls"."ca" cannot be read or is not PEM.
 */
export async function connectionTarget(config: NodeConfig, configPath: string): Promise<ConnectionTarget> {
  const secret = config.clientSecrets[0] ?? config.secrets[0];
  const common = { ...(secret === undefined ? {} : { secret }), configPath };
  if (config.tls === undefined) return { url: `ws://${connectAddress(config)}`, ...common };
  return { url: `${urlScheme(config)}://${connectAddress(config)}`, tls: clientTlsOptions(config, configPath), ...common };
}

/** An open, authenticated connection: the WebSocket, and the TCP or TLS socket under it (from the upgrade's response: public, unlike ws's `_socket`), which a client corks to send a burst of frames in one write. */
export interface OpenConnection {
  readonly webSocket: WebSocket;
  readonly transport: Socket;
}

/**
 * Opens a WebSocket to a node and authenticates when the target has a secret;
 * resolves once requests may be sent. Rejects with UnreachableError when
 * nothing answers within `timeoutMs`, ConnectionError when the node refuses.
 */
export function openConnection(target: ConnectionTarget | string, timeoutMs: number): Promise<OpenConnection> {
  const { url, tls = {}, secret, peerId, configPath = 'the config' } = typeof target === 'string' ? ({ url: target } as ConnectionTarget) : target;
  const refused = (failure: ConnectionFailure, message: string) => new ConnectionError(failure, url, message);
  const dialed: Dialed = { url, configPath, tls };
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false, ...tls });
    let settled = false;
    let authScheme: string | undefined;
    const handshake = secret === undefined ? undefined : new ClientHandshake(secret, peerId === undefined ? 'client' : 'peer', peerId);
    let transport: Socket | undefined;

    const timer = setTimeout(() => fail(new UnreachableError(url, `no answer within ${timeoutMs} ms`)), timeoutMs);
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('close', onClose);
    };
    const fail = (error: Error) => {
      if (settled) return;
      finish();
      socket.terminate();
      reject(error);
    };
    const succeed = () => {
      if (settled) return;
      finish();
      resolve({ webSocket: socket, transport: transport! });
    };

    // The socket's later errors are reported by its 'close' to whoever uses it.
    socket.on('error', (error: NodeJS.ErrnoException) => fail(describeFailure(dialed, error)));
    socket.on('upgrade', (response) => {
      transport = response.socket;
      const value = response.headers[AUTH_HEADER];
      authScheme = Array.isArray(value) ? value.join(',') : value;
    });
    socket.on('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < MAX_BODY_SHOWN * 4) body += chunk;
      });
      response.on('error', () => undefined);
      response.on('end', () => {
        request.destroy();
        fail(describeResponse(dialed, response.statusCode ?? 0, String(response.headers.upgrade ?? ''), body));
      });
    });
    socket.once('open', () => {
      if (authScheme === undefined) {
        if (secret === undefined) succeed();
        else fail(refused('node-without-secret', `the node at ${url} runs without a secret but ${configPath} has one, so bby cannot tell it is the right node: restart the node with this config (bby-node ${configPath})`));
        return;
      }
      if (authScheme !== AUTH_HEADER_VALUE) {
        fail(refused('unknown-auth', `the node at ${url} asks for authentication ${JSON.stringify(printable(authScheme))}, which this bby does not know: run the same bby version on both`));
      } else if (secret === undefined) fail(secretRequired(dialed));
      // Otherwise the node's challenge comes next.
    });

    const onMessage = (data: unknown) => {
      const parsed = parseIncoming(String(data));
      if (!parsed.ok) return fail(refused('node-not-proven', `the node at ${url} sent something other than the handshake (${parsed.error.message}): is it a bby node of the same version?`));
      const message = parsed.message;
      if (message.type === 'error') {
        if (message.code === 'AUTH_FAILED') return fail(wrongSecret(dialed));
        if (message.code === 'AUTH_REQUIRED') return fail(secretRequired(dialed));
        return fail(refused('refused', `the node at ${url} refused the connection: ${printable(message.message)} (${printable(message.code)})`));
      }
      if (handshake === undefined || authScheme === undefined) return;
      if (message.type === 'challenge' && !handshake.answered) {
        socket.send(handshake.answer(message));
        return;
      }
      if (message.type === 'authenticated' && handshake.answered) {
        if (handshake.verify(message)) succeed();
        else fail(refused('node-not-proven', `the node at ${url} did not prove it holds the secret of ${configPath}: it may not be the node you meant; check "host", "port" and "advertise" in ${configPath}`));
        return;
      }
      fail(refused('node-not-proven', `the node at ${url} sent ${JSON.stringify(message.type)} instead of the handshake: is it a bby node of the same version?`));
    };
    const onClose = (code: number, reason: Buffer) => {
      if (code === CLOSE_CODES.AUTH_FAILED) fail(wrongSecret(dialed));
      else if (code === CLOSE_CODES.AUTH_REQUIRED) fail(secretRequired(dialed));
      else if (code === CLOSE_CODES.AUTH_TIMEOUT) fail(refused('auth-timeout', `the node at ${url} gave up waiting for this client to authenticate; try again`));
      else if (code === CLOSE_CODES.FORBIDDEN) fail(refused('refused', `the node at ${url} refused this client a peer's message (FORBIDDEN)`));
      else fail(new UnreachableError(url, `the node closed the connection: ${reason.length > 0 ? printable(reason.toString()) : `code ${code}`}`));
    };
    socket.on('message', onMessage);
    socket.on('close', onClose);
  });
}

/** The connection being opened, as the messages of its failures name it. */
interface Dialed {
  readonly url: string;
  readonly configPath: string;
  readonly tls: ClientTlsOptions;
}

function wrongSecret({ url, configPath }: Dialed): ConnectionError {
  return new ConnectionError('wrong-secret', url, `the node at ${url} refused the secret of ${configPath} (AUTH_FAILED): put the node's "clientSecret" (or its "secret") in ${configPath}`);
}

function secretRequired({ url, configPath }: Dialed): ConnectionError {
  return new ConnectionError('secret-required', url, `the node at ${url} requires a secret and ${configPath} has none: add the node's "clientSecret" (or "secret") to ${configPath}`);
}

function describeFailure({ url, configPath, tls }: Dialed, error: NodeJS.ErrnoException): Error {
  const tlsPhrase = describeTlsError(error);
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (tlsPhrase === PEER_WITHOUT_TLS) {
    return new ConnectionError('node-without-tls', url, `the node at ${url} does not speak TLS but ${configPath} has "tls": remove "tls" from ${configPath}, or restart the node with this config (bby-node ${configPath})`);
  }
  if (tlsPhrase === CERTIFICATE_NOT_TRUSTED) {
    const fix = tls.ca === undefined ? `set "tls"."ca" in ${configPath} to the CA that signed the nodes' certificates` : `"tls"."ca" of ${configPath} must be the CA that signed the nodes' certificates`;
    return new ConnectionError('certificate-not-trusted', url, `the node at ${url} has a certificate not signed by a CA this config trusts: ${fix} (docs/security.md)`);
  }
  if (tlsPhrase === HOSTNAME_MISMATCH) {
    return new ConnectionError('hostname-mismatch', url, `the certificate of the node at ${url} does not name ${host}: connect to an address it names ("advertise" in ${configPath}), or make its certificate for ${host} (scripts/make-certs.sh)`);
  }
  if (tlsPhrase !== undefined && tlsPhrase !== PEER_WITH_TLS) return new ConnectionError('tls-failed', url, `TLS with the node at ${url} failed: ${tlsPhrase}`);
  return new UnreachableError(url, describeSocketError(error));
}

function describeResponse({ url, configPath }: Dialed, status: number, upgrade: string, body: string): Error {
  if (status === 426 && /\bTLS\b/i.test(upgrade)) {
    return new ConnectionError('node-speaks-tls', url, `the node at ${url} speaks TLS and ${configPath} has no "tls": add "tls": {"ca": "ca.pem"} to ${configPath}, with the CA that signed the nodes' certificates (docs/security.md)`);
  }
  const why = printable(body.split('\n')[0]!.trim()).slice(0, MAX_BODY_SHOWN);
  if (status === 503) return new ConnectionError('busy', url, `the node at ${url} cannot take this connection now (HTTP 503${why === '' ? '' : `: ${why}`}); try again in a moment`);
  return new ConnectionError('refused', url, `the node at ${url} refused the WebSocket connection (HTTP ${status}${why === '' ? '' : `: ${why}`}): is it a bby node?`);
}

/** Text from the network made safe to print on one line: control characters escaped (@bby/core's `printable`, uncut). */
export function printable(text: string): string {
  return printableText(text, Infinity);
}
