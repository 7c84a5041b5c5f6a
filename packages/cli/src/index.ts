/** @bby/cli: the `bby` command and a small client library for a bby node. */
export { BbyClient, DEFAULT_TIMEOUT_MS, NodeError, parseResponse, type RequestBody } from './client.js';
export { ConnectionError, connectionTarget, openConnection, printable, UnreachableError, type ConnectionFailure, type ConnectionTarget } from './connection.js';
export { COMMANDS, findCommand, type Command } from './commands.js';
export { main, USAGE, type Output } from './main.js';
