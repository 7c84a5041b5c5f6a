/**
 * @bby/sim: the deterministic simulator of a bby mesh (simulation.ts), for
 * the tests and `npm run soak`. Private to this repository.
 */
export * from './simulation.js';
