/** @bby/client: the WebSocket client of a bby node, and the config file it connects with. */
export { BbyClient, DEFAULT_TIMEOUT_MS, NodeError, parseResponse, type Answer, type RequestBody } from './client.js';
export { ConnectionError, connectionTarget, openConnection, printable, UnreachableError, type ConnectionFailure, type ConnectionTarget, type OpenConnection } from './connection.js';
export { Pipeline, type PipelineOptions } from './pipeline.js';
export { ClientHandshake, type HandshakeRole } from './client-handshake.js';
export { readConfigFile, MAX_SECRET_FILE_BYTES, type ReadConfigOptions } from './config-file.js';
export { checkCertificatePem, clientTlsOptions, tlsFileError, urlScheme, type ClientTlsOptions, type TlsFileField, type UrlScheme } from './client-tls.js';
export { describeSocketError, describeTlsError, CERTIFICATE_NOT_TRUSTED, HOSTNAME_MISMATCH, PEER_WITH_TLS, PEER_WITHOUT_TLS } from './describe-error.js';
