/** Short, human wording for socket and TLS errors, for logs, `peers` and `bby`. */
const WORDING: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
};

/** The other side's certificate is not signed by an authority this side trusts ("tls"."ca"). */
export const CERTIFICATE_NOT_TRUSTED = 'certificate not trusted (not signed by the "ca" of this config)';
/** The other side's certificate does not name the host that was dialed. */
export const HOSTNAME_MISMATCH = 'hostname mismatch (the certificate does not name the dialed address)';
/** wss:// to a plain ws:// node. */
export const PEER_WITHOUT_TLS = 'the other side does not speak TLS (it has no "tls" in its config)';
/** ws:// to a node with "tls" (it answers 426, transport.ts). */
export const PEER_WITH_TLS = 'the other side speaks TLS and this side does not (add "tls" to this config)';

/** OpenSSL's verification codes that mean "signed by no authority we trust". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

/** One short phrase for a TLS failure, or undefined when `error` is not one. */
export function describeTlsError(error: Error): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && UNTRUSTED.has(code)) return CERTIFICATE_NOT_TRUSTED;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return HOSTNAME_MISMATCH;
  if (code === 'CERT_HAS_EXPIRED') return 'certificate expired';
  if (code === 'CERT_NOT_YET_VALID') return "certificate not yet valid (check both machines' clocks)";
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long|unknown protocol/i.test(error.message)) return PEER_WITHOUT_TLS;
  if (/Unexpected server response: 426/.test(error.message)) return PEER_WITH_TLS;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timed out during the TLS handshake';
  if ((code?.startsWith('ERR_SSL_') ?? false) || code === 'EPROTO') return `TLS handshake failed (${code === 'EPROTO' ? error.message.replace(/^.*?:error:[0-9A-F]+:(?:SSL routines:)?(?:[^:]*:)?/, '').replace(/:.*$/s, '') : code})`;
  return undefined;
}

/** One short phrase for an error from `ws`, `net` or `tls`. */
export function describeSocketError(error: Error): string {
  const tls = describeTlsError(error);
  if (tls !== undefined) return tls;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && WORDING[code] !== undefined) return WORDING[code];
  if (/handshake has timed out/i.test(error.message)) return 'timed out during the WebSocket handshake';
  if (/Unexpected server response: 503/.test(error.message)) return 'the other side refused the connection for now (HTTP 503: starting, or too many connections)';
  if (error instanceof AggregateError && error.errors.length > 0) return describeSocketError(error.errors[0] as Error);
  return error.message || code || 'unknown error';
}
