#!/usr/bin/env node
// The baseline of the benchmark: a bare `ws` server with no store behind it,
// exchanging messages of the same size and shape as bby.
//
//   node bench/bare-server.js --port P --id NAME [--forward ws://host:port]
//
// Like bby-node, it parses every frame as JSON and writes every answer with
// JSON.stringify, one frame per message; unlike bby-node it keeps nothing:
//   set      -> {"type":"reply","id":…,"result":true}, and an `entries`
//               message with the entry (and a `seen` list, as bby sends) to
//               every peer (the --forward hop and the connections that sent
//               `hello`)
//   get      -> {"type":"reply","id":…,"result":"<100 bytes>"}
//   entries  -> counted, and passed on to every peer but the sender (with
//               `seen` extended, as bby forwards)
//   hello    -> {"type":"welcome",…}; the connection is a peer from then on
//   stats    -> {"type":"reply","id":…,"result":{"entriesReceived":…}}
//   prepare  -> {"count":N}: makes N entries (16-byte keys, 100-byte values)
//               and keeps them, as a node keeps its store
//   stream   -> {"to":URL}: sends the prepared entries to URL in `entries`
//               batches of about 168 K characters, as a node does for a
//               joining peer; replies once they are queued
import { parseArgs } from 'node:util';
import { MAX_BATCH_CHARS, PROTOCOL_VERSION } from '@bby/core';
import { entryLength } from '@bby/core/internal';
import WebSocket, { WebSocketServer } from 'ws';
import { makeKey, makeValue } from './lib/wsclient.js';

const { values } = parseArgs({ options: { port: { type: 'string' }, id: { type: 'string', default: 'bare' }, forward: { type: 'string' } } });
const id = values.id;
const VALUE = makeValue(0);
const MAX_PAYLOAD = 1024 * 1024;

const peers = new Set();
let entriesReceived = 0;

const server = new WebSocketServer({ host: '127.0.0.1', port: Number(values.port), maxPayload: MAX_PAYLOAD, perMessageDeflate: false });
server.on('listening', () => process.stdout.write(`listening on ws://127.0.0.1:${values.port} as bare server ${id}\n`));
server.on('connection', (socket) => wire(socket));

if (values.forward !== undefined) connectForward(values.forward);

function connectForward(url) {
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
  socket.on('open', () => {
    socket.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: id, address: `127.0.0.1:${values.port}` }));
    peers.add(socket);
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    peers.delete(socket);
    setTimeout(() => connectForward(url), 100);
  });
  wire(socket);
}

function broadcast(message, except) {
  let text;
  for (const peer of peers) {
    if (peer === except || peer.readyState !== WebSocket.OPEN) continue;
    text ??= JSON.stringify(message);
    peer.send(text);
  }
}

function wire(socket) {
  socket.on('error', () => undefined);
  socket.on('close', () => peers.delete(socket));
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString('utf8'));
    switch (message.type) {
      case 'set':
        socket.send(JSON.stringify({ type: 'reply', id: message.id, result: true }));
        broadcast({ type: 'entries', entries: [[message.key, message.value, Date.now(), id]], seen: [id, `${id}-next`] }, socket);
        return;
      case 'get':
        socket.send(JSON.stringify({ type: 'reply', id: message.id, result: VALUE }));
        return;
      case 'entries':
        entriesReceived += message.entries.length;
        broadcast({ type: 'entries', entries: message.entries, seen: [...(message.seen ?? []), id] }, socket);
        return;
      case 'hello':
        peers.add(socket);
        socket.send(JSON.stringify({ type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: id, address: `127.0.0.1:${values.port}` }));
        return;
      case 'welcome':
      case 'ping':
        return;
      case 'stats':
        socket.send(JSON.stringify({ type: 'reply', id: message.id, result: { entriesReceived } }));
        return;
      case 'prepare':
        prepared = Array.from({ length: message.count }, (_, i) => ({ key: makeKey('s', i), value: makeValue(i), timestamp: Date.now(), origin: id }));
        socket.send(JSON.stringify({ type: 'reply', id: message.id, result: prepared.length }));
        return;
      case 'stream':
        stream(message.to, () => socket.send(JSON.stringify({ type: 'reply', id: message.id, result: true })));
        return;
      default:
        socket.send(JSON.stringify({ type: 'error', id: message.id ?? null, code: 'UNKNOWN_TYPE', message: `unknown type ${message.type}` }));
    }
  });
}

let prepared = [];

function stream(url, done) {
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
  socket.on('error', () => undefined);
  socket.on('message', () => undefined);
  socket.on('open', () => {
    socket.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: `${id}-stream`, address: `127.0.0.1:${values.port}` }));
    let batch = [];
    let length = 0;
    for (const entry of prepared) {
      const size = entryLength(entry);
      if (batch.length > 0 && length + size > MAX_BATCH_CHARS) {
        socket.send(JSON.stringify({ type: 'entries', entries: batch }));
        batch = [];
        length = 0;
      }
      // As a node does: kept as objects, written as [key, value, timestamp, origin] tuples.
      batch.push([entry.key, entry.value, entry.timestamp, entry.origin]);
      length += size + 1;
    }
    if (batch.length > 0) socket.send(JSON.stringify({ type: 'entries', entries: batch }));
    // Closed once the data is out, so that the receiver has no peer left to pass entries to.
    socket.close(1000, 'done');
    done();
  });
}

// Existing connections would keep server.close() waiting: just exit.
const stop = () => process.exit(0);
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
