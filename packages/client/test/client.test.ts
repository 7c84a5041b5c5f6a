/**
 * BbyClient and Pipeline against a scripted WebSocket server on loopback (no
 * bby-node: the server answers as the test says): replies matched by id
 * whatever their order, raw frames and their answers, corking, the window and
 * the sticky first failure of a pipeline, and the peer side of the
 * authentication handshake.
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo } from 'node:net';
import { AUTH_HEADER, AUTH_HEADER_VALUE, authProof, newNonce, type AuthTranscript } from '@bby/core';
import { expect } from 'chai';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import { BbyClient, NodeError, Pipeline, UnreachableError } from '../src/index.js';

/** A request as the scripted server reads it. */
interface Incoming {
  readonly type: string;
  readonly id: number;
  readonly key?: string;
}

/** Scripts a server: `onRequest` gets each parsed request and its socket; `chunks` counts the TCP reads of every connection. */
async function startServer(onRequest: (request: Incoming, socket: ServerSocket) => void, options: { secret?: string } = {}): Promise<{ url: string; chunks: () => number; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  let chunks = 0;
  if (options.secret !== undefined) server.on('headers', (headers) => headers.push(`${AUTH_HEADER}: ${AUTH_HEADER_VALUE}`));
  server.on('connection', (socket, request) => {
    request.socket.on('data', () => chunks++);
    let authenticated = options.secret === undefined;
    const nonce = newNonce(randomBytes);
    if (!authenticated) socket.send(JSON.stringify({ type: 'challenge', nodeId: 'server', nonce }));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Incoming & { role?: 'client' | 'peer'; nodeId?: string; nonce?: string; proof?: string };
      if (!authenticated) {
        const transcript: AuthTranscript = { role: message.role!, acceptorId: 'server', initiatorId: message.nodeId ?? '', acceptorNonce: nonce, initiatorNonce: message.nonce! };
        if (message.type !== 'auth' || message.proof !== authProof(options.secret!, 'initiator', transcript)) return socket.close(4010, 'auth failed');
        authenticated = true;
        socket.send(JSON.stringify({ type: 'authenticated', proof: authProof(options.secret!, 'acceptor', transcript) }));
        return;
      }
      onRequest(message, socket);
    });
  });
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    chunks: () => chunks,
    close: () => {
      for (const client of server.clients) client.terminate();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const reply = (socket: ServerSocket, id: number, result: unknown) => socket.send(JSON.stringify({ type: 'reply', id, result }));

describe('BbyClient', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });

  it('matches replies to requests by id when the node answers out of order', async () => {
    const held: Incoming[] = [];
    const server = await startServer((request, socket) => {
      held.push(request);
      // Answers the whole burst at once, last first.
      if (held.length === 20) for (const r of held.reverse()) reply(socket, r.id, r.key);
    });
    stops.push(server.close);
    const client = await BbyClient.connect(server.url, 2_000);
    try {
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      expect(await Promise.all(keys.map((key) => client.request({ type: 'get', key })))).to.deep.equal(keys);
      expect(client.inFlight).to.equal(0);
    } finally {
      client.close();
    }
  });

  it('rejects with NodeError for an error answer and UnreachableError for a lost connection', async () => {
    const server = await startServer((request, socket) => {
      if (request.key === 'bad') socket.send(JSON.stringify({ type: 'error', id: request.id, code: 'INVALID_KEY', message: 'no' }));
      else socket.close(1011, 'gone');
    });
    stops.push(server.close);
    const client = await BbyClient.connect(server.url, 2_000);
    const refused = await client.request({ type: 'get', key: 'bad' }).catch((error: unknown) => error);
    expect(refused).to.be.instanceOf(NodeError).with.property('code', 'INVALID_KEY');
    const lost = await client.request({ type: 'get', key: 'x' }).catch((error: unknown) => error);
    expect(lost).to.be.instanceOf(UnreachableError);
    expect((lost as Error).message).to.contain('the node closed the connection: gone');
  });

  it('hands frames sent as they are, and their answers, to onFrame, unparsed', async () => {
    const server = await startServer((request, socket) => reply(socket, request.id, 'raw'));
    stops.push(server.close);
    const client = await BbyClient.connect(server.url, 2_000);
    try {
      const frames: string[] = [];
      const both = new Promise<void>((resolve) =>
        client.onFrame((text) => {
          frames.push(text);
          if (frames.length === 2) resolve();
        }),
      );
      client.send('{"type":"get","id":"a","key":"k"}');
      client.send('{"type":"get","id":"b","key":"k"}');
      await both;
      expect(frames).to.deep.equal(['{"type":"reply","id":"a","result":"raw"}', '{"type":"reply","id":"b","result":"raw"}']);
      // A numbered request still gets its own answer, not onFrame.
      expect(await client.request({ type: 'get', key: 'k' })).to.equal('raw');
      expect(frames).to.have.length(2);
    } finally {
      client.close();
    }
  });

  it('sends the frames of one turn of the event loop in one write once corked', async () => {
    let received = 0;
    const server = await startServer((request, socket) => {
      if (++received === 50) reply(socket, request.id, 'all');
    });
    stops.push(server.close);
    const client = await BbyClient.connect(server.url, 2_000);
    try {
      const before = server.chunks();
      const last = new Promise<string>((resolve) => client.onFrame(resolve));
      client.cork();
      for (let i = 1; i <= 50; i++) client.send(`{"type":"get","id":${i},"key":"k${i}"}`);
      await last;
      expect(server.chunks() - before).to.equal(1);
    } finally {
      client.close();
    }
  });

  it('authenticates as a peer when given a peerId, and refuses nothing that proves itself', async () => {
    const secret = '0123456789abcdef0123456789abcdef';
    const server = await startServer((request, socket) => reply(socket, request.id, 'member'), { secret });
    stops.push(server.close);
    for (const target of [{ url: server.url, secret }, { url: server.url, secret, peerId: 'observer' }]) {
      const client = await BbyClient.connect(target, 2_000);
      expect(await client.request({ type: 'get', key: 'k' })).to.equal('member');
      client.close();
    }
  });
});

describe('Pipeline', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(stops.splice(0).map((stop) => stop()));
  });

  it('keeps at most inFlight requests unanswered and hands results over in request order', async () => {
    let unanswered = 0;
    let most = 0;
    const server = await startServer((request, socket) => {
      unanswered++;
      most = Math.max(most, unanswered);
      setImmediate(() => {
        unanswered--;
        reply(socket, request.id, request.key);
      });
    });
    stops.push(server.close);
    const pipeline = await Pipeline.connect(server.url, { inFlight: 4, timeoutMs: 2_000 });
    try {
      const results: unknown[] = [];
      for (let i = 0; i < 40; i++) await pipeline.request({ type: 'get', key: `k${i}` }, (result) => results.push(result));
      await pipeline.drain();
      expect(results).to.deep.equal(Array.from({ length: 40 }, (_, i) => `k${i}`));
      expect(most).to.be.within(1, 4);
    } finally {
      pipeline.close();
    }
  });

  it('throws its first failure from the next request and from drain', async () => {
    const server = await startServer((request, socket) => {
      if (request.key === 'bad') socket.send(JSON.stringify({ type: 'error', id: request.id, code: 'INVALID_KEY', message: 'no' }));
      else reply(socket, request.id, true);
    });
    stops.push(server.close);
    const pipeline = await Pipeline.connect(server.url, { inFlight: 8, timeoutMs: 2_000 });
    try {
      pipeline.request({ type: 'get', key: 'bad' }, () => undefined);
      const drained = await pipeline.drain().catch((error: unknown) => error);
      expect(drained).to.be.instanceOf(NodeError).with.property('code', 'INVALID_KEY');
      expect(() => pipeline.request({ type: 'get', key: 'ok' }, () => undefined)).to.throw(NodeError);
    } finally {
      pipeline.close();
    }
  });

  it('fails with UnreachableError when the node stops answering', async () => {
    const server = await startServer(() => undefined);
    stops.push(server.close);
    const pipeline = await Pipeline.connect(server.url, { inFlight: 8, timeoutMs: 200 });
    try {
      pipeline.request({ type: 'get', key: 'k' }, () => undefined);
      const drained = await pipeline.drain().catch((error: unknown) => error);
      expect(drained).to.be.instanceOf(UnreachableError);
      expect((drained as Error).message).to.contain('no answer within 200 ms');
    } finally {
      pipeline.close();
    }
  });
});
