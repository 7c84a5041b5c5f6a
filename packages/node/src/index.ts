/** @bby/node: runs a bby core on real sockets. */
export { readConfigFile } from './config-file.js';
export { describeSocketError } from './describe-error.js';
export { consoleLog, DIAL_TIMEOUT_MS, startNode, StartError, TICK_INTERVAL_MS, type LogSink, type RunningNode, type StartOptions } from './node-server.js';
export { main } from './main.js';
