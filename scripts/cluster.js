#!/usr/bin/env node
// `npm start`: runs one bby-node per config (default: examples/node1..3.json)
// in this terminal, each output line prefixed by its node. Ctrl-C stops all;
// if one node exits on its own, the others are stopped too.
import { spawn } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'packages', 'node', 'bin', 'bby-node.js');
const configs = process.argv.length > 2 ? process.argv.slice(2) : [1, 2, 3].map((n) => join('examples', `node${n}.json`));
const colors = process.stdout.isTTY ? ['\x1b[36m', '\x1b[35m', '\x1b[33m', '\x1b[32m', '\x1b[34m'] : [''];
const reset = process.stdout.isTTY ? '\x1b[0m' : '';

const width = Math.max(...configs.map((c) => basename(c, '.json').length));
let stopping = false;
let exitCode = 0;
const children = configs.map((config, index) => {
  const name = basename(config, '.json').padEnd(width);
  const prefix = `${colors[index % colors.length]}[${name}]${reset} `;
  const child = spawn(process.execPath, [bin, config], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`));
  }
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stdout.write(`${prefix}exited (${signal ?? `code ${code}`}); stopping the others\n`);
      exitCode = 1;
      stop();
    }
    if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(exitCode);
  });
  return child;
});

process.stdout.write(`started ${configs.length} nodes; try: npx bby ${configs[1] ?? configs[0]} set MonChamp 42 (Ctrl-C stops them)\n`);

function stop() {
  stopping = true;
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
