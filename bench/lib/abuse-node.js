// The node under attack in `npm run abuse`: one `bby-node` of a given
// checkout (this one, or another's with `--repo`, to measure older code with
// the same script), on a free loopback port, memory only, no peer exchange,
// and, with `--secret`, a random secret in its config. The process is a Proc
// of procs.js: tracked, and killed when the script ends however it ends.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { freePort, Proc, tempDir } from './procs.js';

/** How long a node may take to print that it listens, in milliseconds. */
const START_TIMEOUT_MS = 20_000;

/** A built checkout of bby whose `bby-node` the script runs. */
export class Checkout {
  /**
   * `root`: the checkout's folder. Throws an Error naming the fix when its
   * bby-node is missing or not built.
   */
  constructor(root) {
    this.root = resolve(root);
    this.nodeBin = join(this.root, 'packages', 'node', 'bin', 'bby-node.js');
    if (!existsSync(this.nodeBin)) throw new Error(`${this.root} has no packages/node/bin/bby-node.js: is it a bby checkout?`);
    if (!existsSync(join(this.root, 'packages', 'node', 'dist')) || !existsSync(join(this.root, 'node_modules'))) {
      throw new Error(`${this.root} is not built: run npm ci && npx tsc -b there first`);
    }
  }

  /** Whether its nodes can require a secret (the authentication of docs/protocol.md is in its core). */
  get hasAuthentication() {
    return existsSync(join(this.root, 'packages', 'core', 'dist', 'src', 'auth.js'));
  }
}

/**
 * Writes a config and starts the checkout's `bby-node`; resolves once it
 * listens with `{ id, url, configPath, proc, secret }`. `secret` (optional)
 * goes into the config: the node then refuses whoever does not present it.
 */
export async function startAbuseNode(checkout, { id, group = 'abuse', secret }) {
  const dir = await tempDir(group);
  const port = await freePort();
  const config = { id, port, peers: [], peerExchange: false, ...(secret === undefined ? {} : { secret }) };
  const configPath = join(dir, `${id}.json`);
  await writeFile(configPath, JSON.stringify(config));
  const proc = new Proc(`bby-node ${id}`, [checkout.nodeBin, configPath]);
  await proc.waitForOutput(/listening on wss?:\/\/(\S+) as node (\S+)/, START_TIMEOUT_MS);
  return { id, port, url: `ws://127.0.0.1:${port}`, configPath, proc, secret };
}
