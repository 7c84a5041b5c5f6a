#!/usr/bin/env node
// `npm run bench:requests`: how long one request holds a node's event loop,
// per request type, with 1,000,000 keys in the store (issue "Bounded under
// abuse": no single request may hold the loop for more than a few
// milliseconds). Each figure is the core's work (receive, then takeReady)
// plus encoding the frames it sends, which is what the adapter's event loop
// does for one request; the socket writes come on top, in proportion to the
// answer's size.
//
//   node bench/request-cost.js [--keys N] [--runs N]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createNode, PROTOCOL_VERSION } from '@bby/core';
import { BUCKET_COUNT } from '@bby/core/internal';
import { table } from './lib/stats.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '200' } } });
const keyCount = Number(values.keys);
const runs = Number(values.runs);

let clock = 1_700_000_000_000;
let seed = 1;
const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
const node = createNode({ id: 'measured', now: () => clock, random, address: '127.0.0.1:1' });
const started = performance.now();
for (let i = 0; i < keyCount; i++) node.set(`key-${String(i).padStart(8, '0')}`, `value of key ${i} `.padEnd(100, '.'));
node.takeReady();
process.stderr.write(`loaded ${keyCount.toLocaleString('en-US')} keys in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);

const client = node.accept();
/** A peer link that did its handshake; each stream request gets its own, so that streams never wait for each other. */
let peer;
let peers = 0;
const newPeer = () => {
  if (peer !== undefined) node.closed(peer, 'measured');
  peer = node.accept();
  node.receive(peer, JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: `peer-${peers++}`, address: '127.0.0.1:2' }));
};

/** Times `request()` (the frames it makes a node receive), `runs` times; the frames sent are reported written at once. */
function measure(name, request, setup = () => undefined) {
  const times = [];
  let bytes = 0;
  for (let run = 0; run < runs; run++) {
    setup(run);
    node.takeReady();
    const start = performance.now();
    for (const [link, frame] of request(run)) node.receive(link, frame);
    const { messages } = node.takeReady();
    for (const send of messages) bytes += send.text.length;
    times.push(performance.now() - start);
    const written = new Map();
    for (const send of messages) written.set(send.link, (written.get(send.link) ?? 0) + send.bytes);
    for (const [link, sum] of written) node.written(link, sum);
    node.takeReady();
    clock += 1;
  }
  times.sort((a, b) => a - b);
  return [name, times[Math.floor(times.length / 2)].toFixed(3), times[Math.floor(times.length * 0.99)].toFixed(3), times.at(-1).toFixed(3), Math.round(bytes / runs).toLocaleString('en-US')];
}

let fresh = 0;
const rows = [
  measure('get', (run) => [[client, JSON.stringify({ type: 'get', id: run, key: `key-${String(run * 7919 % keyCount).padStart(8, '0')}` })]]),
  measure('set (a new key)', (run) => [[client, JSON.stringify({ type: 'set', id: run, key: `fresh-${fresh++}`, value: 'v' })]]),
  measure('set (an existing key)', (run) => [[client, JSON.stringify({ type: 'set', id: run, key: 'key-00000001', value: 'other' })]]),
  measure('keys, limit 1, after a new key (the amplifier of the issue)', (run) => [[client, JSON.stringify({ type: 'keys', id: run, limit: 1 })]], () => node.set(`amp-${fresh++}`, 'v')),
  measure('keys, a whole page (about 168 K characters)', (run) => [[client, JSON.stringify({ type: 'keys', id: run })]]),
  measure('set-many, 1,000 new keys', (run) => [[client, JSON.stringify({ type: 'set-many', id: run, entries: Array.from({ length: 1000 }, (_, i) => ({ key: `many-${run}-${i}`, value: 'v' })) })]]),
  measure('stats', (run) => [[client, JSON.stringify({ type: 'stats', id: run })]]),
  measure('peers', (run) => [[client, JSON.stringify({ type: 'peers', id: run })]]),
  measure('catch-up from a recent cursor (first window)', () => [[peer, JSON.stringify({ type: 'catch-up', since: { epoch: node.epoch, seq: node.stats().keys - 10 } })]], newPeer),
  measure('catch-up of the whole store (first window)', () => [[peer, JSON.stringify({ type: 'catch-up', since: null })]], newPeer),
  measure('bucket-request, 1 bucket (first window)', (run) => [[peer, JSON.stringify({ type: 'bucket-request', buckets: [run % BUCKET_COUNT] })]], newPeer),
  measure('bucket-request, every bucket (first window)', () => [[peer, JSON.stringify({ type: 'bucket-request', buckets: Array.from({ length: BUCKET_COUNT }, (_, i) => i) })]], newPeer),
  measure('digest that differs (answered with 256 bucket digests)', () => [[peer, JSON.stringify({ type: 'digest', root: '0123456789abcdef' })]], newPeer),
];
process.stdout.write(`\nevent loop time per request, ${keyCount.toLocaleString('en-US')} keys in the store, ${runs} runs each, Node ${process.version}\n\n`);
process.stdout.write(`${table(['request', 'median ms', 'p99 ms', 'max ms', 'bytes sent per request'], rows)}\n`);
