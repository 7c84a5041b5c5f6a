/**
 * A stand-in for a node, in the test's process: the real transport
 * (createHttpServer: plain or TLS), the acceptor side of the handshake of
 * docs/protocol.md written from auth.ts, and a few requests answered from a
 * Map. It lets the CLI's connection messages be tested whatever stage the real
 * node's authentication is at, and plays the nodes a real one must not be
 * (an impostor whose proof is wrong, a node answering 503).
 */
import { randomBytes } from 'node:crypto';
import { authProof, AUTH_HEADER, AUTH_HEADER_VALUE, findSecret, newNonce, parseConfig, parseIncoming, type AuthTranscript, type NodeConfig, type Request } from '@bby/core';
import { createHttpServer, refuseUpgrade, type HttpServer } from '@bby/node/transport';
import { WebSocketServer, type WebSocket } from 'ws';

/** How the fake node behaves. */
export type FakeBehaviour =
  /** Follows the protocol. */
  | 'honest'
  /** Accepts any proof and answers `authenticated` with a proof made without the secret: an impostor. */
  | 'impostor'
  /** Answers every upgrade with HTTP 503 and this body. */
  | { readonly status503: string }
  /** Sends `challenge`, then closes with this code at the first frame, whatever it is. */
  | { readonly closeWith: number };

/** Options of `startFakeNode`. */
export interface FakeNodeOptions {
  /** Config fields (port, tls, secret, clientSecret, peers-rows...): parsed as a config, so paths must be absolute. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly behaviour?: FakeBehaviour;
  /** Rows the `peers` answer says it left out (`omitted`). */
  readonly omittedPeers?: number;
}

/** A running fake node. */
export interface FakeNode {
  readonly port: number;
  readonly config: NodeConfig;
  /** Every `auth` frame received, as parsed. */
  readonly auths: { role: string; nodeId?: string }[];
  /** Every request answered. */
  readonly requests: Request[];
  close(): Promise<void>;
}

const NODE_ID = 'fake';

/** Starts a fake node on the config's port; close it after the test. */
export async function startFakeNode(options: FakeNodeOptions): Promise<FakeNode> {
  const config = parseConfig(JSON.stringify(options.config), 'fake-node.json');
  const behaviour = options.behaviour ?? 'honest';
  const server: HttpServer = await createHttpServer(config, 'fake-node.json');
  const wss = new WebSocketServer({ noServer: true });
  const requiresAuth = config.secrets.length > 0;
  wss.on('headers', (headers) => {
    if (requiresAuth) headers.push(`${AUTH_HEADER}: ${AUTH_HEADER_VALUE}`);
  });
  const store = new Map<string, string>();
  const auths: { role: string; nodeId?: string }[] = [];
  const requests: Request[] = [];
  server.on('upgrade', (request, socket, head) => {
    if (typeof behaviour === 'object' && 'status503' in behaviour) {
      refuseUpgrade(socket, 503, behaviour.status503);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => serve(ws));
  });

  function serve(ws: WebSocket): void {
    let transcript: Omit<AuthTranscript, 'role' | 'initiatorId' | 'initiatorNonce'> | undefined;
    let authenticated = !requiresAuth;
    if (requiresAuth) {
      transcript = { acceptorId: NODE_ID, acceptorNonce: newNonce(randomBytes) };
      ws.send(JSON.stringify({ type: 'challenge', nodeId: NODE_ID, nonce: transcript.acceptorNonce }));
    }
    ws.on('message', (data) => {
      if (typeof behaviour === 'object' && 'closeWith' in behaviour) {
        ws.close(behaviour.closeWith, 'closed by the fake node');
        return;
      }
      const parsed = parseIncoming(String(data));
      if (!parsed.ok) return;
      const message = parsed.message;
      if (!authenticated) {
        if (message.type !== 'auth' || transcript === undefined) {
          ws.send(JSON.stringify({ type: 'error', id: null, code: 'AUTH_REQUIRED', message: 'authenticate first' }));
          ws.close(4011, 'authentication required');
          return;
        }
        auths.push({ role: message.role, ...(message.nodeId === undefined ? {} : { nodeId: message.nodeId }) });
        const full: AuthTranscript = { ...transcript, role: message.role, initiatorId: message.nodeId ?? '', initiatorNonce: message.nonce };
        const accepted = message.role === 'client' ? [...config.clientSecrets, ...config.secrets] : config.secrets;
        const secret = findSecret(accepted, message.proof, 'initiator', full);
        if (behaviour === 'impostor') {
          authenticated = true;
          ws.send(JSON.stringify({ type: 'authenticated', proof: authProof('not the secret at all, an impostor', 'acceptor', full) }));
          return;
        }
        if (secret === undefined) {
          ws.send(JSON.stringify({ type: 'error', id: null, code: 'AUTH_FAILED', message: 'authentication failed' }));
          ws.close(4010, 'authentication failed');
          return;
        }
        authenticated = true;
        ws.send(JSON.stringify({ type: 'authenticated', proof: authProof(secret, 'acceptor', full) }));
        return;
      }
      if (!('id' in message) || message.type === 'reply' || message.type === 'error') return;
      const request = message as Request;
      requests.push(request);
      ws.send(JSON.stringify(answer(request)));
    });
  }

  function answer(request: Request): object {
    const reply = (result: unknown, extra: object = {}) => ({ type: 'reply', id: request.id, result, ...extra });
    switch (request.type) {
      case 'set': {
        const held = store.get(request.key);
        if (held === undefined) store.set(request.key, request.value);
        return reply(held === undefined || held === request.value);
      }
      case 'get':
        return reply(store.get(request.key) ?? null);
      case 'keys':
        return reply([...store.keys()]);
      case 'peers':
        return reply(
          [{ address: '127.0.0.1:1', id: 'shown', direction: 'outbound', connected: true }],
          options.omittedPeers === undefined ? {} : { omitted: options.omittedPeers },
        );
      case 'remove-peer':
        return reply({ address: request.address, removed: request.address === '127.0.0.1:1', ...(request.address === '127.0.0.1:1' ? { note: 'it is in the config file: remove it there too' } : {}) });
      case 'stats':
        return reply({ id: NODE_ID, keys: store.size });
      default:
        return { type: 'error', id: request.id, code: 'BAD_MESSAGE', message: `the fake node does not do ${request.type}` };
    }
  }

  return {
    port: config.port,
    config,
    auths,
    requests,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
