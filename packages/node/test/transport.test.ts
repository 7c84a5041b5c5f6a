/**
 * transport.ts in-process: plain and TLS listening, what each kind of client
 * mismatch is told, the start errors of bad TLS files, and the timeouts that
 * close silent connections (measured, not assumed).
 */
import { once } from 'node:events';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseConfig, type NodeConfig } from '@bby/core';
import { expect } from 'chai';
import { WebSocket, WebSocketServer } from 'ws';
import {
  CERTIFICATE_NOT_TRUSTED,
  clientTlsOptions,
  CONNECTION_MARGIN,
  CONNECTIONS_CHECK_INTERVAL_MS,
  createHttpServer,
  describeSocketError,
  dialUrl,
  HEADERS_TIMEOUT_MS,
  HOSTNAME_MISMATCH,
  PEER_WITH_TLS,
  PEER_WITHOUT_TLS,
  refuseUpgrade,
  TLS_HANDSHAKE_TIMEOUT_MS,
  urlScheme,
  type HttpServer,
} from '../src/index.js';
import { StartError } from '../src/start-error.js';
import { certsUnavailable, makeCerts, skipWithReason } from './support/certs.js';
import { freePort } from './support/wait.js';

const SOURCE = 'test/node1.json';

function config(fields: Record<string, unknown>): NodeConfig {
  return parseConfig(JSON.stringify(fields), SOURCE);
}

/** Servers made by the test, closed (with their connections) after it. */
const servers: HttpServer[] = [];

/** A server as the adapter will run it: every upgrade handed to a noServer WebSocketServer that echoes. */
async function serve(nodeConfig: NodeConfig, warnings: string[] = []): Promise<HttpServer> {
  const server = await createHttpServer(nodeConfig, SOURCE, { onWarning: (message) => warnings.push(message) });
  servers.push(server);
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => wss.handleUpgrade(request, socket, head, (ws) => ws.on('message', (data) => ws.send(String(data)))));
  return server;
}

/** Dials `url` with ws; resolves with the open socket or the phrase describing the failure. */
function dial(url: string, options: object = {}): Promise<{ socket?: WebSocket; failure?: string }> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { handshakeTimeout: 5_000, ...options });
    socket.once('open', () => resolve({ socket }));
    socket.once('error', (error) => resolve({ failure: describeSocketError(error) }));
  });
}

async function echo(socket: WebSocket, text: string): Promise<string> {
  const answer = once(socket, 'message');
  socket.send(text);
  const [data] = await answer;
  socket.close();
  return String(data);
}

/** Expects `promise` to reject with a one-line StartError matching `pattern`. */
async function startError(promise: Promise<unknown>, pattern: RegExp): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error, String(error)).to.be.instanceOf(StartError);
    const message = (error as Error).message;
    expect(message.includes('\n'), message).to.equal(false);
    expect(message).to.match(pattern);
    return message;
  }
  throw new Error(`expected a StartError matching ${pattern}`);
}

/** Opens a raw TCP connection, optionally writes `text`, and resolves with how long the server took to close it (or null past `limitMs`). */
function closedAfterMs(port: number, text: string | null, limitMs: number, host = '127.0.0.1'): Promise<number | null> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = netConnect(port, host, () => {
      if (text !== null) socket.write(text);
    });
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    const limit = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, limitMs);
    socket.once('close', () => {
      clearTimeout(limit);
      resolve(Date.now() - started);
    });
  });
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('transport: plain', () => {
  it('listens on host:port with ws:// and hands upgrades to the adapter', async () => {
    const port = await freePort();
    const nodeConfig = config({ port });
    expect(urlScheme(nodeConfig)).to.equal('ws');
    expect(dialUrl(nodeConfig, `wss://127.0.0.1:${port}`)).to.equal(`ws://127.0.0.1:${port}`);
    expect(clientTlsOptions(nodeConfig)).to.deep.equal({});
    await serve(nodeConfig);
    const { socket, failure } = await dial(`ws://127.0.0.1:${port}`);
    expect(failure).to.equal(undefined);
    expect(await echo(socket!, 'ping')).to.equal('ping');
  });

  it('answers a plain HTTP request 426: it speaks WebSocket only', async () => {
    const port = await freePort();
    await serve(config({ port }));
    const response = await fetch(`http://127.0.0.1:${port}/`);
    expect(response.status).to.equal(426);
    expect(response.headers.get('upgrade')).to.equal('websocket');
    expect(await response.text()).to.include('speaks WebSocket only');
  });

  it('refuseUpgrade answers an HTTP status with a one-line reason a client can show', async () => {
    const port = await freePort();
    const server = await createHttpServer(config({ port }), SOURCE);
    servers.push(server);
    server.on('upgrade', (_request, socket) => refuseUpgrade(socket, 503, 'too many connections\r\nX-Forged: header'));
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}`);
      socket.on('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += String(chunk)));
        response.on('end', () => resolve({ status: response.statusCode!, body }));
      });
      socket.on('error', reject);
    });
    expect(answer).to.deep.equal({ status: 503, body: 'too many connections X-Forged: header\n' });
  });

  it('caps TCP connections at maxConnections plus a margin, beyond which sockets are closed at once', async () => {
    const port = await freePort();
    const server = await serve(config({ port, maxConnections: 2 }));
    expect(server.maxConnections).to.equal(2 + CONNECTION_MARGIN);
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2 + CONNECTION_MARGIN; i++) {
        const socket = netConnect(port, '127.0.0.1');
        socket.on('error', () => undefined);
        sockets.push(socket);
        await once(socket, 'connect');
      }
      const closedIn = await closedAfterMs(port, null, 2_000);
      expect(closedIn, 'one more connection is closed at once').to.be.a('number').and.below(1_000);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('says the port is in use, naming the config and the fix', async () => {
    const port = await freePort();
    await serve(config({ port }));
    await startError(createHttpServer(config({ port }), SOURCE), new RegExp(`^port ${port} on 127.0.0.1 is already in use \\(config ${SOURCE}\\).*change "port"$`));
  });

  it('says when the host is not an address of this machine', async () => {
    await startError(createHttpServer(config({ port: await freePort(), host: '192.0.2.77', insecure: true }), SOURCE), /"192\.0\.2\.77" is not an address of this machine/);
  });
});

describe('transport: TLS', () => {
  let dir: string;
  let certs: (name: string) => string;

  before(async function () {
    const unavailable = certsUnavailable();
    if (unavailable !== undefined) skipWithReason(this, unavailable);
    this.timeout(30_000);
    dir = await mkdtemp(join(tmpdir(), 'bby-certs-'));
    await makeCerts(dir, { node1: ['10.0.0.1'], other: ['10.0.0.9'] });
    await makeCerts(join(dir, 'foreign'), { stranger: ['10.0.0.1'] });
    certs = (name) => join(dir, name);
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const tlsConfig = (port: number, extra: Record<string, unknown> = {}) =>
    config({ port, tls: { cert: certs('node1.pem'), key: certs('node1-key.pem'), ca: certs('ca.pem') }, ...extra });

  it('listens with wss://: a client that trusts the CA connects and talks', async () => {
    const port = await freePort();
    const nodeConfig = tlsConfig(port);
    expect(urlScheme(nodeConfig)).to.equal('wss');
    expect(dialUrl(nodeConfig, `127.0.0.1:${port}`)).to.equal(`wss://127.0.0.1:${port}`);
    await serve(nodeConfig);
    const { socket, failure } = await dial(`wss://127.0.0.1:${port}`, clientTlsOptions(nodeConfig, SOURCE));
    expect(failure).to.equal(undefined);
    expect(await echo(socket!, 'over TLS')).to.equal('over TLS');
  });

  it('a client without the CA fails: certificate not trusted', async () => {
    const port = await freePort();
    await serve(tlsConfig(port));
    expect((await dial(`wss://127.0.0.1:${port}`)).failure).to.equal(CERTIFICATE_NOT_TRUSTED);
    const foreign = config({ port: 1, tls: { ca: join(dir, 'foreign', 'ca.pem') } });
    expect((await dial(`wss://127.0.0.1:${port}`, clientTlsOptions(foreign))).failure).to.equal(CERTIFICATE_NOT_TRUSTED);
  });

  it('a certificate that does not name the dialed address fails: hostname mismatch', async () => {
    const port = await freePort();
    // Every 127/8 address is this machine's, but the certificate names 127.0.0.1 only.
    await serve(tlsConfig(port, { host: '127.0.0.2', insecure: true }));
    expect((await dial(`wss://127.0.0.2:${port}`, clientTlsOptions(tlsConfig(port)))).failure).to.equal(HOSTNAME_MISMATCH);
  });

  it('plain ws:// to a TLS node fails: it speaks TLS and the client does not', async () => {
    const port = await freePort();
    await serve(tlsConfig(port));
    expect((await dial(`ws://127.0.0.1:${port}`)).failure).to.equal(PEER_WITH_TLS);
  });

  it('wss:// to a plain node fails: it does not speak TLS', async () => {
    const port = await freePort();
    await serve(config({ port }));
    expect((await dial(`wss://127.0.0.1:${port}`, clientTlsOptions(tlsConfig(port)))).failure).to.equal(PEER_WITHOUT_TLS);
  });

  it('warns when the certificate does not name the announced address, or is not signed by "ca"', async () => {
    const warnings: string[] = [];
    await serve(tlsConfig(await freePort(), { host: '127.0.0.1', advertise: '10.0.0.2:7001' }), warnings);
    await serve(tlsConfig(await freePort(), { tls: { cert: certs('node1.pem'), key: certs('node1-key.pem'), ca: join(dir, 'foreign', 'ca.pem') } }), warnings);
    expect(warnings).to.have.length(2);
    expect(warnings[0]).to.include('does not name 10.0.0.2, the address this node announces').and.include('scripts/make-certs.sh DIR NAME:10.0.0.2');
    expect(warnings[1]).to.include('is not signed by "tls"."ca"');
    const quiet: string[] = [];
    await serve(tlsConfig(await freePort(), { advertise: '10.0.0.1:7001' }), quiet);
    expect(quiet).to.deep.equal([]);
  });

  describe('start errors', () => {
    it('a missing cert, key or ca file names the field, the path and the fix', async () => {
      const port = await freePort();
      for (const field of ['cert', 'key', 'ca'] as const) {
        const tls = { cert: certs('node1.pem'), key: certs('node1-key.pem'), ca: certs('ca.pem'), [field]: certs('missing.pem') };
        const message = await startError(createHttpServer(config({ port, tls }), SOURCE), new RegExp(`^${SOURCE}: "tls"\\."${field}" .*missing\\.pem: no such file`));
        expect(message).to.include('scripts/make-certs.sh');
      }
    });

    it('a file that is not PEM, a key of another certificate, a ca-only config: each says what to give', async () => {
      const port = await freePort();
      const notPem = certs('not-pem.pem');
      await writeFile(notPem, 'hello\n');
      await startError(createHttpServer(config({ port, tls: { cert: notPem, key: certs('node1-key.pem') } }), SOURCE), /"tls"\."cert" .*not-pem\.pem is not a PEM certificate/);
      await startError(createHttpServer(config({ port, tls: { cert: certs('node1.pem'), key: notPem } }), SOURCE), /"tls"\."key" .*not-pem\.pem is not a PEM private key/);
      await startError(createHttpServer(config({ port, tls: { cert: certs('node1.pem'), key: certs('node1-key.pem'), ca: notPem } }), SOURCE), /"tls"\."ca" .*is not a PEM certificate/);
      await startError(
        createHttpServer(config({ port, tls: { cert: certs('node1.pem'), key: certs('other-key.pem') } }), SOURCE),
        /"tls"\."key" .*other-key\.pem does not match "tls"\."cert" .*node1\.pem; give the key made together with that certificate/,
      );
      await startError(createHttpServer(config({ port, tls: { ca: certs('ca.pem') } }), SOURCE), /"tls" has no "cert" and "key": a node needs both/);
    });

    it('an unreadable key says so (when permissions apply: not as root)', async function () {
      if (process.getuid?.() === 0) skipWithReason(this, 'root reads any file, so permission denied cannot be shown');
      const locked = certs('locked-key.pem');
      await copyFile(certs('node1-key.pem'), locked);
      await chmod(locked, 0o000);
      await startError(createHttpServer(config({ port: await freePort(), tls: { cert: certs('node1.pem'), key: locked } }), SOURCE), /"tls"\."key" .*permission denied/);
    });

    it('clientTlsOptions refuses a missing or non-PEM ca the same way', () => {
      expect(() => clientTlsOptions(config({ port: 1, tls: { ca: certs('missing.pem') } }), SOURCE)).to.throw(StartError, /"tls"\."ca" .*missing\.pem: no such file/);
      expect(() => clientTlsOptions(config({ port: 1, tls: { ca: certs('node1-key.pem') } }), SOURCE)).to.throw(StartError, /is not a PEM certificate/);
    });
  });

  describe('timeouts (measured)', function () {
    this.timeout(20_000);
    // Silent connections must be closed within a few seconds; the bound leaves a second for a loaded machine.
    const boundMs = HEADERS_TIMEOUT_MS + CONNECTIONS_CHECK_INTERVAL_MS + 1_000;

    it('closes connections that send nothing, half a request line, or stop after the TLS handshake', async () => {
      expect(TLS_HANDSHAKE_TIMEOUT_MS).to.be.at.most(HEADERS_TIMEOUT_MS);
      const plainPort = await freePort();
      const tlsPort = await freePort();
      await serve(config({ port: plainPort }));
      const nodeConfig = tlsConfig(tlsPort);
      await serve(nodeConfig);
      const afterHandshake = new Promise<number | null>((resolve) => {
        const started = Date.now();
        const socket = tlsConnect({ port: tlsPort, host: '127.0.0.1', ...clientTlsOptions(nodeConfig) });
        socket.on('error', () => undefined);
        socket.on('data', () => undefined);
        const limit = setTimeout(() => {
          socket.destroy();
          resolve(null);
        }, boundMs + 2_000);
        socket.once('close', () => {
          clearTimeout(limit);
          resolve(Date.now() - started);
        });
      });
      const [plainSilent, plainHalf, plainHeaders, tlsSilent, tlsHalfHello] = await Promise.all([
        closedAfterMs(plainPort, null, boundMs + 2_000),
        closedAfterMs(plainPort, 'GET / HT', boundMs + 2_000),
        closedAfterMs(plainPort, 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n', boundMs + 2_000),
        closedAfterMs(tlsPort, null, boundMs + 2_000),
        // The first bytes of a TLS record header: a handshake that never completes.
        closedAfterMs(tlsPort, '\x16\x03\x01\x02\x00', boundMs + 2_000),
      ]);
      const results = { plainSilent, plainHalf, plainHeaders, tlsSilent, tlsHalfHello, tlsAfterHandshake: await afterHandshake };
      for (const [name, closedIn] of Object.entries(results)) {
        expect(closedIn, `${name}: closed by the server (${JSON.stringify(results)})`).to.be.a('number');
        expect(closedIn!, `${name}: closed within ${boundMs} ms`).to.be.below(boundMs);
        // Not before the timeout: a slow but honest client gets its full time.
        expect(closedIn!, `${name}: not closed early`).to.be.at.least(Math.min(HEADERS_TIMEOUT_MS, TLS_HANDSHAKE_TIMEOUT_MS) - 100);
      }
    });
  });
});
