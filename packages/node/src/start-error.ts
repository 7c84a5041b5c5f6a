import { BbyError, type LocalErrorCode } from '@bby/core';

/** Why a node could not start (a port in use, a TLS file it cannot use, a data folder locked or damaged), in one line naming the fix. bby-node exits 1 with it. */
export class StartError extends BbyError {
  override name = 'StartError';
  constructor(message: string, code: Extract<LocalErrorCode, 'START_FAILED' | 'DATA_DIR_LOCKED' | 'DATA_DAMAGED'> = 'START_FAILED') {
    super(code, message);
  }
}
