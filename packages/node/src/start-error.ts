import { BbyError } from '@bby/core';

/** Why a node could not start (a port in use, a TLS file it cannot use), in one line naming the fix. bby-node exits 1 with it. */
export class StartError extends BbyError {
  override name = 'StartError';
  constructor(message: string) {
    super('START_FAILED', message);
  }
}
