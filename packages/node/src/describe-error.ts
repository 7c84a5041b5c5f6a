/** Short, human wording for socket errors, for logs and `peers`. */
const WORDING: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
};

/** One short phrase for an error from `ws` or `net`. */
export function describeSocketError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && WORDING[code] !== undefined) return WORDING[code];
  if (/handshake has timed out/i.test(error.message)) return 'timed out during the WebSocket handshake';
  if (error instanceof AggregateError && error.errors.length > 0) return describeSocketError(error.errors[0] as Error);
  return error.message || code || 'unknown error';
}
