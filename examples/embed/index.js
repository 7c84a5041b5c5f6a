// @ts-check
/**
 * Embedding @bby/core: three nodes in one process, wired in a line
 * (a - b - c) by the in-memory network, with 20 ms of latency and one frame in
 * ten lost. The clock is this program's own (simulated time, so the run takes
 * milliseconds and prints the same lines every time), and so is the random
 * source (seeded).
 *
 * Run: npm run build && node examples/embed/index.js
 */
import { createMemoryNetwork, seededRandom } from '@bby/core';

let nowMs = Date.UTC(2025, 0, 1);
const network = createMemoryNetwork({
  now: () => nowMs,
  monotonic: () => nowMs,
  random: seededRandom(42),
  delayMs: 20,
  lossRate: 0.1,
  onEffect: (id, effect) => {
    // persist, cursor and peer changes would go to disk here; this program keeps everything in memory.
    if (effect.type === 'log' && effect.level === 'warn') console.log(`[${id}] ${effect.message}`);
  },
});
// Compare digests every second instead of every 10 s: lost frames are repaired sooner.
const timing = { antiEntropyIntervalMs: 1000 };
const a = network.addNode({ id: 'a', timing });
const b = network.addNode({ id: 'b', timing, peers: ['a'] });
const c = network.addNode({ id: 'c', timing, peers: ['b'], peerExchange: false });
const nodes = [a, b, c];

/** Lets `ms` of simulated time pass, 10 ms at a time, ticking the nodes. */
function run(ms) {
  for (let left = ms; left > 0; left -= 10) {
    nowMs += 10;
    network.tick();
  }
}

run(500); // dials and handshakes
console.log(`a sets MonChamp=42: ${a.set('MonChamp', '42')}`);
run(10);
console.log(`c sets MonChamp=43: ${c.set('MonChamp', '43')} (c has not heard of a's write yet)`);
for (let i = 0; i < 100; i++) nodes[i % 3].set(`key-${i}`, String(i));
console.log(`wrote 100 more keys, spread over the three nodes`);

let waitedMs = 0;
const converged = () => nodes.every((node) => node.keys().length === 101 && node.get('MonChamp') === a.get('MonChamp'));
while (!converged() && waitedMs < 60_000) {
  run(100);
  waitedMs += 100;
}
console.log(`after ${waitedMs / 1000} s of simulated time:`);
for (const node of nodes) console.log(`  ${node.id}: ${node.keys().length} keys, MonChamp=${node.get('MonChamp')}`);
console.log(converged() ? 'converged: every node holds the same keys, and the oldest write of MonChamp' : 'not converged');
console.log(`frames delivered ${network.stats.delivered}, lost ${network.stats.lost}`);
process.exitCode = converged() ? 0 : 1;
