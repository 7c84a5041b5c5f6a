/** @bby/cli: the `bby` command and a small client library for a bby node. */
export { BbyClient, DEFAULT_TIMEOUT_MS, NodeError, parseResponse, UnreachableError, type RequestBody } from './client.js';
export { COMMANDS, findCommand, type Command } from './commands.js';
export { main, USAGE, type Output } from './main.js';
