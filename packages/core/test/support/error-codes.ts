/**
 * The error codes a node may send: the members of `ErrorCode` in
 * src/errors.ts, read from the source (a type has no runtime value), so that
 * a code added there needs no change in the tests that check answers.
 */
import { readFileSync } from 'node:fs';

// This file runs as packages/core/dist/test/support/error-codes.js; the sources are in packages/core/src.
const source = readFileSync(new URL('../../../src/errors.ts', import.meta.url), 'utf8');

/** Every code of the ErrorCode union. */
export const ERROR_CODES: ReadonlySet<string> = new Set([.../export type ErrorCode\s*=([^;]+);/.exec(source)![1]!.matchAll(/'([A-Z_]+)'/g)].map((match) => match[1]!));
