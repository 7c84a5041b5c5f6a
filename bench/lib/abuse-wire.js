// The wire of `npm run abuse`: every connection the script opens goes
// through `openSocket`, and every frame it sends is built by `MESSAGES`.
// When nodes ask for authentication (issue 11), the handshake goes into
// `openSocket` (a secret from the node's config) and nowhere else; the
// abusers then attack as members, the harder case.
//
// A node is free to refuse or close an abusive connection (HTTP 503, close
// codes 4008 "too slow", 4009 "idle", 4010-4013 auth, ...): `openSocket`
// rejects with a `RefusedError`, never anything the caller must not expect.
import { connect } from 'node:net';
import { PROTOCOL_VERSION } from '@bby/core';
import WebSocket from 'ws';

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
 *
 * `paused`: once the connection is usable, stop reading it (a slow reader).
 * Resolves with the `ws` WebSocket (or the net.Socket for 'tcp'); rejects
 * with RefusedError when the node refuses, closes or does not answer within
 * `timeoutMs`.
 */
export function openSocket(url, { role, nodeId = 'evil', paused = false, send, timeoutMs = OPEN_TIMEOUT_MS }) {
  if (role === 'tcp') return openTcp(url, send, timeoutMs);
  if (role !== 'client' && role !== 'peer') throw new TypeError(`openSocket: unknown role ${JSON.stringify(role)}; use 'client', 'peer' or 'tcp'`);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD_BYTES, handshakeTimeout: timeoutMs });
    let settled = false;
    const timer = setTimeout(() => fail('no answer in time'), timeoutMs);
    const fail = (reason) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(new RefusedError(url, reason));
    };
    const ready = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.off('message', onHandshake);
      if (paused) ws.pause();
      resolve(ws);
    };
    const onHandshake = (data) => {
      const text = data.toString('utf8');
      if (text.startsWith('{"type":"welcome"')) ready();
      else if (text.startsWith('{"type":"error"')) fail(`error before welcome: ${text.slice(0, 200)}`);
    };
    // A later error (a reset while writing) shows as 'close'; callers count closes.
    ws.on('error', (error) => fail(error.message));
    ws.once('close', (code, reason) => fail(`closed with code ${code}${reason.length > 0 ? ` (${reason.toString()})` : ''}`));
    ws.once('open', () => {
      if (role === 'client') return ready();
      ws.on('message', onHandshake);
      ws.send(MESSAGES.hello(nodeId));
    });
  });
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
