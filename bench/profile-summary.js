#!/usr/bin/env node
// Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most
// self time, and the files they live in.
//
//   node bench/profile-summary.js FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Self and total time per function of a .cpuprofile, in milliseconds. */
export function summarizeProfile(path, top = 25) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i] ?? 0));
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    let file = url === '' ? '' : url.startsWith('file://') ? relative(root, fileURLToPath(url)) : url;
    // A profile taken in another copy of the repository: name files from packages/ or node_modules/.
    const inside = /(?:^|\/)((?:packages|node_modules)\/.*)$/.exec(file);
    if (file.startsWith('..') && inside !== null) file = inside[1];
    return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
  };
  const self = new Map();
  const inclusive = new Map();
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    const name = label(node);
    self.set(name, (self.get(name) ?? 0) + us);
    // Inclusive time: once per distinct function on the stack.
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const n = label(byId.get(at));
      if (seen.has(n)) continue;
      seen.add(n);
      inclusive.set(n, (inclusive.get(n) ?? 0) + us);
    }
  }
  // Percentages are of the busy time: everything but (idle).
  const busyUs = totalUs - (self.get('(idle)') ?? 0);
  const rows = (map) =>
    [...map]
      .filter(([name]) => name !== '(idle)' && name !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / busyUs }));
  const idle = ['(idle)', '(program)', '(garbage collector)'].map((n) => ({ name: n, ms: (self.get(n) ?? 0) / 1000 }));
  return { path, totalMs: totalUs / 1000, busyMs: busyUs / 1000, idle, self: rows(self), inclusive: rows(inclusive) };
}

export function formatSummary(summary) {
  const line = (r) => `${r.ms.toFixed(0).padStart(8)} ms ${r.percent.toFixed(1).padStart(5)}%  ${r.name}`;
  return [
    `${summary.path}: ${summary.totalMs.toFixed(0)} ms sampled, ${summary.busyMs.toFixed(0)} ms busy (${summary.idle.map((r) => `${r.name} ${r.ms.toFixed(0)} ms`).join(', ')})`,
    'self time (% of busy time):',
    ...summary.self.map(line),
    'inclusive time (% of busy time):',
    ...summary.inclusive.map(line),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt === -1 ? 25 : Number(args.splice(topAt, 2)[1]);
  if (args.length === 0) {
    process.stderr.write('usage: node bench/profile-summary.js FILE.cpuprofile... [--top N]\n');
    process.exit(2);
  }
  for (const file of args) process.stdout.write(`${formatSummary(summarizeProfile(file, top))}\n\n`);
}
