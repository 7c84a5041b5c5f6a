/** Why a node could not start (a port in use, a TLS file it cannot use), in one line naming the fix. bby-node exits 1 with it. */
export class StartError extends Error {
  override name = 'StartError';
}
