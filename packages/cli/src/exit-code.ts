/**
 * How a `bby` command ends on an error: one line on stderr and an exit code
 * decided from the error's code (the registry of @bby/core's errors.ts), in
 * this one place for every command. The codes, as README.md and `bby --help`
 * list them: 0 the node answered; 1 try again (the node cannot be reached, or
 * is busy); 2 something must change first (usage, config, input, a request
 * the node refused, a connection this config cannot make); 3 `set --acks` was
 * not acknowledged by enough nodes in time.
 */
import { BbyError, type ErrorCode, type LocalErrorCode } from '@bby/core';
import { NodeError, printable, UnreachableError } from '@bby/client';

/** An exit code of `bby` for a failure. */
export type FailureExitCode = 1 | 2 | 3;

/** The code of a `set --acks` that did not reach enough nodes in time: bby exits 3. */
const NOT_ACKNOWLEDGED: ErrorCode = 'ACK_TIMEOUT';

/** Codes for which trying again later may work, unchanged: bby exits 1. */
const TRY_AGAIN: ReadonlySet<string> = new Set<LocalErrorCode>(['NODE_UNREACHABLE', 'NODE_BUSY']);

/** The exit code for an error's code; a code this bby does not know (a newer node's) is a refused request, 2. */
export function exitCodeFor(code: string): FailureExitCode {
  if (code === NOT_ACKNOWLEDGED) return 3;
  return TRY_AGAIN.has(code) ? 1 : 2;
}

/**
 * Prints the one line for the error that ended a command and returns its
 * exit code. Anything but a bby error (a bug) is thrown again, for `run` to
 * report as an internal error.
 */
export function reportFailure(error: unknown, configPath: string, output: { err(text: string): void }): FailureExitCode {
  if (error instanceof UnreachableError) output.err(`bby: ${error.message}; is the node started? Start it with: bby-node ${configPath}\n`);
  else if (error instanceof NodeError && error.code === NOT_ACKNOWLEDGED) output.err(`bby: not acknowledged by enough nodes in time: ${error.message}\n`);
  else if (error instanceof NodeError) output.err(`bby: the node refused the request: ${printable(error.message)} (${printable(error.code)})\n`);
  else if (error instanceof BbyError) output.err(`bby: ${error.message}\n`);
  else throw error;
  return exitCodeFor(error.code);
}
