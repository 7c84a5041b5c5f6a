/**
 * @bby/node/internal: parts of the adapter for the other packages of this
 * repository (the simulator, @bby/sim, and the tests). Not a public API: any
 * release may change it.
 */
export { Crash, MemoryFileSystem, type CrashOptions, type FaultCode, type Faults, type OpKind, type RandomFaults } from './storage/memory-fs.js';
