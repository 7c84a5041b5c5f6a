/**
 * The core's fuzzing support (frames of every message type, seeds and run
 * counts from FUZZ_RUNS and FUZZ_SEED, error codes), for the
 * adapter's fuzz tests. It is test code, which @bby/core does not export,
 * and each package builds to its own dist/: this loads the core's compiled
 * copy from beside this package's, typed by its source.
 */
import type * as ErrorCodes from '../../../core/test/support/error-codes.js';
import type * as Frames from '../../../core/test/support/frames.js';
import type * as Fuzz from '../../../core/test/support/fuzz.js';

// This file runs as packages/node/dist/test/support/core-fuzz.js.
const supportUrl = (name: string) => new URL(`../../../../core/dist/test/support/${name}`, import.meta.url).href;

/** packages/core/test/support/frames.ts */
export const frames = (await import(supportUrl('frames.js'))) as typeof Frames;
/** packages/core/test/support/fuzz.ts */
export const fuzz = (await import(supportUrl('fuzz.js'))) as typeof Fuzz;
/** packages/core/test/support/error-codes.ts */
export const errorCodes = (await import(supportUrl('error-codes.js'))) as typeof ErrorCodes;
