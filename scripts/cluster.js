#!/usr/bin/env node
// `npm start`: runs one bby-node per config (default: examples/node1..3.json)
// in this terminal, each output line prefixed by its node. Ctrl-C stops all.
//
// A cluster you can break: a node that dies (`kill -9 $(pgrep -f 'bby-node
// examples/node2.json')`) leaves the others running, and comes back when you
// type `r 2` or `restart node2` (then Enter) in this terminal; `r` alone
// restarts every node that is down. Nothing restarts on its own, so that
// writes can be made while a node is down. A node that fails at its first
// start (a port in use, a bad config) stops the cluster: that is a setup to
// fix, not a crash to watch.
//
// Each node runs as `bby-node CONFIG` (bby-node sets its process title), so
// `pgrep -f 'bby-node examples/node2.json'` finds it.
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

/** One node of the cluster: its config, its current process (or null while it is down). */
const nodes = configs.map((config, index) => ({
  config,
  name: basename(config, '.json'),
  number: index + 1,
  prefix: `${colors[index % colors.length]}[${basename(config, '.json').padEnd(width)}]${reset} `,
  child: null,
  /** True once this node has said "listening" at least once: a later exit is a crash, not a setup error. */
  started: false,
}));

const running = (node) => node.child !== null;

function start(node) {
  const child = spawn(process.execPath, [bin, node.config], { stdio: ['ignore', 'pipe', 'pipe'] });
  node.child = child;
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (/ info listening on /.test(line)) node.started = true;
      process.stdout.write(`${node.prefix}${line}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    node.child = null;
    const how = signal ?? `code ${code}`;
    if (stopping) {
      // Stopped by us: nothing to say.
    } else if (!node.started) {
      process.stdout.write(`${node.prefix}exited (${how}) before it started; stopping the others\n`);
      exitCode = 1;
      stop();
    } else {
      process.stdout.write(`${node.prefix}exited (${how}); the others keep running. Type r ${node.number} (or restart ${node.name}) and Enter to start it again\n`);
    }
    exitIfAllDown();
  });
}

function exitIfAllDown() {
  if (stopping && !nodes.some(running)) process.exit(exitCode);
}

function stop() {
  stopping = true;
  for (const node of nodes) node.child?.kill('SIGTERM');
  exitIfAllDown();
}

/** The nodes a typed name or number designates (`2`, `node2`, `examples/node2.json`); all that are down when none is given. */
function designated(words) {
  if (words.length === 0) return nodes.filter((node) => !running(node));
  return words.map((word) => nodes.find((node) => String(node.number) === word || node.name === word || node.config === word) ?? word);
}

function command(line) {
  const [verb, ...words] = line.trim().split(/\s+/).filter((w) => w !== '');
  if (verb === undefined) return;
  if (verb === 'r' || verb === 'restart') {
    const targets = designated(words);
    if (targets.length === 0) process.stdout.write(`every node is running; kill one first, such as: kill -9 $(pgrep -f 'bby-node ${nodes[0].config}')\n`);
    for (const target of targets) {
      if (typeof target === 'string') process.stdout.write(`no node ${target}; the nodes are ${nodes.map((n) => `${n.number} (${n.name})`).join(', ')}\n`);
      else if (running(target)) process.stdout.write(`${target.prefix}is running (pid ${target.child.pid}); nothing to restart\n`);
      else {
        process.stdout.write(`${target.prefix}restarting\n`);
        start(target);
      }
    }
  } else process.stdout.write(`commands: r N or restart NAME (start a node that is down again; r alone: every node that is down); Ctrl-C stops all\n`);
}

for (const node of nodes) start(node);
process.stdout.write(
  `started ${configs.length} nodes; try: npx bby ${configs[1] ?? configs[0]} set MonChamp 42 (Ctrl-C stops them; a node that dies is restarted when you type r N)\n`,
);

// Typed commands. Without a terminal or a pipe on stdin (`npm start < /dev/null`), there are none, and that is fine.
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!stopping) command(line);
});
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
