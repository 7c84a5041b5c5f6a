#!/usr/bin/env node
// Write throughput of one bby-node under each fsync policy, on this machine.
//
//   npm run build && node scripts/measure-fsync.js [N] [CLIENTS]
//
// For each policy ("always", "everysec", "no", and a memory-only node for
// reference) it starts a bby-node on a free loopback port with a fresh temp
// dataDir, writes N distinct keys (default 5000) from CLIENTS concurrent
// client connections (default 50, one request in flight each), checks the
// node holds N keys, stops it, and prints: policy, writes/s, elapsed.
// Everything it starts is stopped, and its temp folders removed, even on error.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BbyClient } from '@bby/client';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeBin = join(root, 'packages', 'node', 'bin', 'bby-node.js');
const N = Number(process.argv[2] ?? 5000);
const CLIENTS = Number(process.argv[3] ?? 50);
if (!Number.isInteger(N) || N < 1 || !Number.isInteger(CLIENTS) || CLIENTS < 1) {
  process.stderr.write('usage: node scripts/measure-fsync.js [N] [CLIENTS]\n');
  process.exit(2);
}
const POLICIES = ['always', 'everysec', 'no', null]; // null: no dataDir, memory only

const children = new Set();
const folders = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts bby-node on a config; resolves once it listens. */
function startNode(configPath) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [nodeBin, configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      if (/keys loaded|memory only/.test(output)) resolve(child);
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', (code, signal) => {
      children.delete(child);
      reject(new Error(`bby-node exited (${signal ?? `code ${code}`}) before it was ready:\n${output}`));
    });
  });
}

function stopNode(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve(code);
    });
    child.kill(signal);
  });
}

async function measure(policy) {
  const dir = await mkdtemp(join(tmpdir(), 'bby-fsync-'));
  folders.add(dir);
  const port = await freePort();
  const config = { id: `measure-${policy ?? 'memory'}`, port, peers: [], ...(policy === null ? {} : { dataDir: 'data', fsync: policy }) };
  const configPath = join(dir, 'node.json');
  await writeFile(configPath, JSON.stringify(config));
  const child = await startNode(configPath);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => BbyClient.connect(`ws://127.0.0.1:${port}`, 30_000)));
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < N; i = next++) {
        const result = await client.request({ type: 'set', key: `key-${i}`, value: `value of key ${i}` });
        if (result !== true) throw new Error(`set key-${i} answered ${JSON.stringify(result)}`);
      }
    }),
  );
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const stats = await clients[0].request({ type: 'stats' });
  if (stats.keys !== N) throw new Error(`the node holds ${stats.keys} keys, expected ${N}`);
  for (const client of clients) client.close();
  const code = await stopNode(child);
  if (code !== 0) throw new Error(`bby-node exited with code ${code} on SIGTERM`);
  await rm(dir, { recursive: true, force: true });
  folders.delete(dir);
  return { policy: policy ?? '(memory only)', rate: (N / elapsedMs) * 1000, elapsedMs };
}

async function cleanUp() {
  await Promise.all([...children].map((child) => stopNode(child)));
  await Promise.all([...folders].map((dir) => rm(dir, { recursive: true, force: true })));
}

process.once('SIGINT', () => void cleanUp().then(() => process.exit(130)));

try {
  const rows = [];
  for (const policy of POLICIES) rows.push(await measure(policy));
  process.stdout.write(`${N} distinct keys, ${CLIENTS} concurrent clients (one request in flight each), one node on 127.0.0.1\n\n`);
  const table = [['policy', 'writes/s', 'elapsed'], ...rows.map((r) => [r.policy, String(Math.round(r.rate)), `${(r.elapsedMs / 1000).toFixed(2)} s`])];
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  for (const [index, row] of table.entries()) {
    process.stdout.write(`| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |\n`);
    if (index === 0) process.stdout.write(`|${widths.map((w, c) => (c === 0 ? ` ${'-'.repeat(w)} ` : ` ${'-'.repeat(w - 1)}: `)).join('|')}|\n`);
  }
} catch (error) {
  process.stderr.write(`measure-fsync: ${error.stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
