/**
 * The `ws` WebSocket class, loaded with `require`. ws is CommonJS: through
 * Node's ESM loader each of its files is also lexed for named exports, which
 * added about 30 ms to the start of every bby command (Node 20, measured
 * alone: 60-75 ms against 30-45 ms).
 */
import { createRequire } from 'node:module';
import type WsWebSocket from 'ws';

/** The ws client class. */
export const WebSocket = createRequire(import.meta.url)('ws') as typeof WsWebSocket;
/** A ws client socket. */
export type WebSocket = WsWebSocket;
