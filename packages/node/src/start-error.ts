import { BbyError, type LocalErrorCode } from '@bby/core';

/** The codes a failed start carries: a data folder locked by another process or damaged, or anything else (a port in use, a TLS file it cannot use). */
export type StartCode = Extract<LocalErrorCode, 'START_FAILED' | 'DATA_DIR_LOCKED' | 'DATA_DAMAGED'>;

/** Why a node could not start (a port in use, a TLS file it cannot use, a data folder locked or damaged), in one line naming the fix. bby-node exits 1 with it. */
export class StartError extends BbyError {
  override name = 'StartError';
  constructor(message: string, code: StartCode = 'START_FAILED') {
    super(code, message);
  }
}
