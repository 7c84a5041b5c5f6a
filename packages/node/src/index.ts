/** @bby/node: runs a bby core on real sockets. */
// The config reader and the error wording live in @bby/client (bby needs them without the server); re-exported for embedders of the node.
export { readConfigFile, MAX_SECRET_FILE_BYTES, type ReadConfigOptions } from '@bby/client';
export { describeSocketError, describeTlsError, CERTIFICATE_NOT_TRUSTED, HOSTNAME_MISMATCH, PEER_WITH_TLS, PEER_WITHOUT_TLS } from '@bby/client';
export {
  clientTlsOptions,
  CONNECTION_MARGIN,
  CONNECTIONS_CHECK_INTERVAL_MS,
  createHttpServer,
  dialUrl,
  HEADERS_TIMEOUT_MS,
  refuseUpgrade,
  REQUEST_TIMEOUT_MS,
  TLS_HANDSHAKE_TIMEOUT_MS,
  urlScheme,
  type ClientTlsOptions,
  type CreateServerOptions,
  type HttpServer,
  type UrlScheme,
} from './transport.js';
export { CLOSE_GRACE_MS, consoleLog, DIAL_TIMEOUT_MS, startNode, StartError, type StartCode, TICK_INTERVAL_MS, type RunningNode, type StartOptions } from './node-server.js';
export { createLogSink, LOG_FORMATS, LOG_LEVELS, type LogDetails, type LogFormat, type LogLevel, type LogSink, type LogSinkOptions } from './log-sink.js';
export { main } from './main.js';
export { Persistence, DataDirError, type Recovered, type RecoverOptions } from './persistence.js';
export { DiskPipeline, DISK_RETRY_INTERVAL_MS, type DiskCore, type DiskPipelineHooks, type DiskPipelineOptions } from './disk-pipeline.js';
export { realScheduler, type Scheduler } from './scheduler.js';
export { Storage, CorruptionError, StorageFailure, type StorageOptions, type Recovery } from './storage/engine.js';
export { COMPACT_MIN_BYTES } from '@bby/core';
export { nodeFileSystem, type FileSystem, type AppendFile } from './storage/file-system.js';
