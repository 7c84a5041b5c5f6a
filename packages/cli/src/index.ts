/** @bby/cli: the `bby` command. Its client of a bby node is @bby/client, re-exported here for the programs that took it from this package. */
export { BbyClient, ConnectionError, connectionTarget, DEFAULT_TIMEOUT_MS, NodeError, openConnection, parseResponse, printable, UnreachableError, type ConnectionFailure, type ConnectionTarget, type RequestBody } from '@bby/client';
export { COMMANDS, findCommand, type Command } from './commands.js';
export { main, USAGE, type Output } from './main.js';
