/**
 * @bby/sim: the deterministic simulator of a bby mesh (simulation.ts), for
 * the tests and `npm run soak`, and its preset for the core's tests
 * (cluster.ts: no disk, no faults, no latency). Private to this repository.
 */
export * from './cluster.js';
export * from './simulation.js';
