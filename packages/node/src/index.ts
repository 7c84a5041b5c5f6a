/** @bby/node: runs a bby core on real sockets. */
export { readConfigFile } from './config-file.js';
export { describeSocketError } from './describe-error.js';
export { CLOSE_GRACE_MS, consoleLog, DIAL_TIMEOUT_MS, startNode, StartError, TICK_INTERVAL_MS, type LogSink, type RunningNode, type StartOptions } from './node-server.js';
export { main } from './main.js';
export { Persistence, DataDirError } from './persistence.js';
export { Storage, CorruptionError, StorageFailure, COMPACT_MIN_BYTES, type StorageOptions, type Recovery } from './storage/engine.js';
export { nodeFileSystem, type FileSystem, type AppendFile } from './storage/file-system.js';
