/**
 * The error codes a node may send: the wire registry of src/errors.ts, as a
 * set, so that a code added there needs no change in the tests that check
 * answers.
 */
import { ERROR_CODES as REGISTRY } from '../../src/errors.js';

/** Every code of the ErrorCode union. */
export const ERROR_CODES: ReadonlySet<string> = new Set(Object.keys(REGISTRY));
