/**
 * What the bby-node of this checkout can do, asked once per test run: tests
 * of features the node gains later (authentication, TLS) skip with the reason
 * printed until the node answers the probe, and run from then on.
 */
import { once } from 'node:events';
import { AUTH_HEADER } from '@bby/core';
import { WebSocket } from 'ws';
import { cleanup, startNode, writeConfig } from './processes.js';

const PROBE_SECRET = 'probe-secret-0123456789abcdef';

let authAnswer: Promise<string | undefined> | undefined;

/**
 * Undefined when a bby-node whose config has a secret answers the upgrade
 * with the x-bby-auth header and sends `challenge` first; otherwise the reason
 * to print when skipping. Starts one node (stopped before it resolves).
 */
export function nodeAuthMissing(): Promise<string | undefined> {
  authAnswer ??= (async () => {
    try {
      const node = await startNode(await writeConfig({ id: 'auth-probe', file: 'auth-probe.json', extra: { secret: PROBE_SECRET } }));
      const socket = new WebSocket(`ws://${node.address}`, { perMessageDeflate: false });
      let header: string | string[] | undefined;
      socket.on('upgrade', (response) => (header = response.headers[AUTH_HEADER]));
      socket.on('error', () => undefined);
      const first = await Promise.race([
        once(socket, 'message').then(([data]) => String(data)),
        new Promise<undefined>((resolve) => setTimeout(resolve, 2_000, undefined)),
      ]);
      socket.terminate();
      if (header === undefined) return `this checkout's bby-node does not authenticate yet (no ${AUTH_HEADER} header with a secret in its config); the test runs once it does`;
      if (first === undefined || !first.includes('"challenge"')) return `this checkout's bby-node sends no challenge first (got ${JSON.stringify(first ?? 'nothing')})`;
      return undefined;
    } finally {
      await cleanup();
    }
  })();
  return authAnswer;
}

let tlsAnswer: Promise<string | undefined> | undefined;

/** Undefined when a bby-node whose config has "tls" listens with wss://; otherwise the reason to print when skipping. */
export function nodeTlsMissing(tls: Readonly<Record<string, string>>): Promise<string | undefined> {
  tlsAnswer ??= (async () => {
    try {
      const node = await startNode(await writeConfig({ id: 'tls-probe', file: 'tls-probe.json', extra: { tls } }));
      if (!/listening on wss:\/\//.test(node.process.stdout)) return "this checkout's bby-node does not listen with TLS yet (its config's \"tls\" is not used); the test runs once it does";
      return undefined;
    } finally {
      await cleanup();
    }
  })();
  return tlsAnswer;
}
