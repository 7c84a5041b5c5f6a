// The wire of `npm run abuse`: every connection the script opens goes
// through `openSocket`, and every frame it sends is built by `MESSAGES`.
// When a node asks for authentication (its upgrade answer carries
// `x-bby-auth`), `openSocket` does the client side of the handshake
// (handshake.js) with the secret it is given, and only then hands the
// connection over: the abusers then attack as members. Without a secret it
// hands the connection over as it is, and an outsider's first frame is what
// the node refuses.
//
// A node is free to refuse or close an abusive connection (HTTP 503, close
// codes 4008 "too slow", 4009 "idle", 4010-4013 auth, ...): `openSocket`
// rejects with a `RefusedError`, never anything the caller must not expect.
import { connect } from 'node:net';
import { PROTOCOL_VERSION } from '@bby/core';
import WebSocket from 'ws';
import { AUTH_HEADER, AUTH_HEADER_VALUE, ClientHandshake } from './handshake.js';

/** The largest frame a node sends is 1 MiB; room to spare, in bytes. */
const MAX_PAYLOAD_BYTES = 4 * 1024 * 1024;

/** How long opening a connection (and, for a peer, its handshake) may take, in milliseconds. */
export const OPEN_TIMEOUT_MS = 5_000;

/** Indexes of every anti-entropy bucket: a `bucket-request` for the whole store. */
export const ALL_BUCKETS = Array.from({ length: 256 }, (_, i) => i);

/** Every frame the script sends, as text. Request ids are numbers or strings, chosen by the caller. */
export const MESSAGES = {
  // client requests
  get: (id, key) => JSON.stringify({ type: 'get', id, key }),
  set: (id, key, value) => JSON.stringify({ type: 'set', id, key, value }),
  setMany: (id, entries) => JSON.stringify({ type: 'set-many', id, entries }),
  keys: (id, limit) => JSON.stringify({ type: 'keys', id, limit }),
  stats: (id) => JSON.stringify({ type: 'stats', id }),
  // peer messages
  hello: (nodeId) => JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId, address: '127.0.0.1:1' }),
  bucketRequest: (buckets) => JSON.stringify({ type: 'bucket-request', buckets }),
  ping: () => '{"type":"ping"}',
  // raw HTTP: the head of a WebSocket upgrade, without the blank line that ends it
  partialUpgrade: (host) => `GET / HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n`,
};

/** The node refused or closed a connection before it was usable; `reason` says how (an HTTP status, a close code, a reset). */
export class RefusedError extends Error {
  name = 'RefusedError';
  constructor(url, reason) {
    super(`${url} refused the connection: ${reason}`);
    this.reason = reason;
  }
}

/**
 * Opens a connection to a node, the only way the script does.
 *
 * - `role: 'client'`: a WebSocket ready for client requests.
 * - `role: 'peer'`: a WebSocket that said `hello` as node `nodeId` and was answered `welcome`.
 * - `role: 'tcp'`: a raw TCP socket that writes `send` (if any) once connected and nothing more.
 *   It reads (and drops) what the node sends: a socket that is not read never
 *   sees the node end it, only a reset. The status of an HTTP answer (408 from
 *   the header timeout) is kept in `socket.httpStatus`.
 *
 * `secret`: when the node asks for authentication, the connection
 * authenticates with it (as a client, or as peer `nodeId`) and is handed over
 * once the node proved it holds the same secret. Without one, a client
 * connection is handed over unauthenticated (an outsider: the node refuses
 * its first frame) and a peer sends `hello` unauthenticated. A secret given
 * for a node that asks for none is the script's mistake: a plain Error.
 *
 * `paused`: once the connection is usable, stop reading it (a slow reader).
 * Resolves with the `ws` WebSocket (or the net.Socket for 'tcp'); rejects
 * with RefusedError when the node refuses, closes or does not answer within
 * `timeoutMs`.
 */
export function openSocket(url, { role, nodeId = 'evil', secret, paused = false, send, timeoutMs = OPEN_TIMEOUT_MS }) {
  if (role === 'tcp') return openTcp(url, send, timeoutMs);
  if (role !== 'client' && role !== 'peer') throw new TypeError(`openSocket: unknown role ${JSON.stringify(role)}; use 'client', 'peer' or 'tcp'`);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES, handshakeTimeout: timeoutMs });
    let settled = false;
    let authScheme;
    let handshake;
    let authenticated = false;
    const timer = setTimeout(() => fail('no answer in time'), timeoutMs);
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      ws.off('message', onHandshake);
    };
    const fail = (reason) => {
      if (settled) return;
      settle();
      ws.terminate();
      reject(new RefusedError(url, reason));
    };
    const mistake = (message) => {
      if (settled) return;
      settle();
      ws.terminate();
      reject(new Error(`${url}: ${message}`));
    };
    const ready = () => {
      if (settled) return;
      settle();
      if (paused) ws.pause();
      resolve(ws);
    };
    const onHandshake = (data) => {
      let message;
      try {
        message = JSON.parse(data.toString('utf8'));
      } catch {
        return mistake('a frame that is not JSON during the handshake');
      }
      if (message.type === 'error') return fail(`error ${message.code}`);
      if (message.type === 'challenge' && handshake !== undefined && !handshake.answered) {
        ws.send(handshake.answer(message));
        // The protocol lets hello follow auth at once; the node acts on it once the proof checked out.
        if (role === 'peer') ws.send(MESSAGES.hello(nodeId));
        return;
      }
      if (message.type === 'authenticated' && handshake !== undefined) {
        if (!handshake.verify(message)) return mistake('the node did not prove it holds the secret of its config');
        authenticated = true;
        if (role === 'client') ready();
        return;
      }
      if (message.type === 'welcome' && role === 'peer' && (handshake === undefined || authenticated)) return ready();
      if (message.type === 'challenge' && handshake === undefined) return; // an outsider peer: its hello is refused next
      mistake(`${JSON.stringify(message.type)} during the handshake`);
    };
    // A later error (a reset while writing) shows as 'close'; callers count closes.
    ws.on('error', (error) => fail(refusalReason(error)));
    ws.once('close', (code, reason) => fail(`closed with code ${code}${reason.length > 0 ? ` (${reason.toString()})` : ''}`));
    ws.on('upgrade', (response) => {
      const value = response.headers[AUTH_HEADER];
      authScheme = Array.isArray(value) ? value.join(',') : value;
    });
    ws.once('open', () => {
      if (authScheme === undefined && secret !== undefined) return mistake('the node asks for no authentication, but the script was given a secret for it');
      if (authScheme !== undefined && authScheme !== AUTH_HEADER_VALUE) return mistake(`the node asks for authentication ${JSON.stringify(authScheme)}, which this script does not know`);
      if (authScheme !== undefined && secret !== undefined) handshake = new ClientHandshake(secret, role, nodeId);
      if (role === 'client' && handshake === undefined) return ready();
      ws.on('message', onHandshake);
      if (role === 'peer' && handshake === undefined) ws.send(MESSAGES.hello(nodeId));
    });
  });
}

/** How an error of `ws` while connecting reads in the tally: "HTTP 503" rather than ws's sentence. */
function refusalReason(error) {
  const status = /^Unexpected server response: (\d+)/.exec(error.message);
  return status === null ? (error.code ?? error.message) : `HTTP ${status[1]}`;
}

function openTcp(url, send, timeoutMs) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    const timer = setTimeout(() => fail('no TCP connection in time'), timeoutMs);
    let settled = false;
    const fail = (reason) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new RefusedError(url, reason));
    };
    socket.on('error', (error) => fail(error.code ?? error.message));
    socket.once('close', () => fail('closed'));
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (send !== undefined) socket.write(send);
      socket.on('data', (data) => {
        socket.httpStatus ??= /^HTTP\/1\.[01] (\d{3})/.exec(data.toString('latin1', 0, 16))?.[1] ?? 'none';
      });
      resolve(socket);
    });
  });
}

/** A request that got no answer within its time. */
export class RequestTimeout extends Error {
  name = 'RequestTimeout';
}

/**
 * Requests and their answers on one client connection, matched by id, each
 * with its own timeout. An answer that comes after its timeout is passed to
 * `onLate(ms)`, so that a stall is measured to its real end.
 */
export class Requester {
  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.late = new Map();
    this.onLate = undefined;
    this.closed = false;
    ws.on('message', (data) => this.#onMessage(data));
    ws.once('close', (code) => {
      this.closed = true;
      for (const { reject, timer } of this.pending.values()) {
        clearTimeout(timer);
        reject(new Error(`connection closed (code ${code})`));
      }
      this.pending.clear();
    });
  }

  /** Sends `make(id)`; resolves with the reply's `result`, rejects on an `error` answer, a close or a timeout. */
  request(make, timeoutMs) {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Error('connection closed'));
    const id = this.nextId++;
    const sentAt = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.late.set(id, sentAt);
        reject(new RequestTimeout(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, sentAt });
      this.ws.send(make(id));
    });
  }

  #onMessage(data) {
    const text = data.toString('utf8');
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      return;
    }
    const call = this.pending.get(answer.id);
    if (call === undefined) {
      const sentAt = this.late.get(answer.id);
      if (sentAt !== undefined) {
        this.late.delete(answer.id);
        this.onLate?.(performance.now() - sentAt);
      }
      return;
    }
    this.pending.delete(answer.id);
    clearTimeout(call.timer);
    if (answer.type === 'reply') call.resolve(answer.result);
    else call.reject(new Error(`${answer.code}: ${answer.message}`));
  }

  close() {
    this.ws.terminate();
  }
}
