#!/usr/bin/env node
// `npm run bench`: measures bby against a bare `ws` baseline in the same run.
//
//   node bench/run.js [--full] [--json FILE] [--only rr,pipelined,relay,durable,mesh,join]
//                     [--reps N] [--profile] [--security none|secret|tls] [--watchers N]
//
// Quick by default (well under a minute); --full for the full run (1,000,000
// keys for the join and memory rows). Results go to bench/results/<date>.json
// unless --json names a file. --profile runs every bby-node under
// `node --cpu-prof` and prints the functions with the most self time (the
// figures of a profiled run are slower: do not compare them). --security runs
// every bby node with a secret (every connection authenticates once), or with
// a secret and TLS, against the same plain baselines. --watchers N attaches N
// read-only subscribers, each sending the live page's `watch` request, to each
// node the load writes to (rr, pipelined, relay, durable) before the timed
// part; they read everything all through it (the baselines have none).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, type as osType, release } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeProfile } from './profile-summary.js';
import { killAll, processOptions, REPO_ROOT, removeTempRoot } from './lib/procs.js';
import { fmt, fmtSpread, table } from './lib/stats.js';
import { MODES, WATCHED_WORKLOADS, WORKLOADS } from './workloads.js';

const USAGE = `usage: npm run bench [-- --full] [-- --json FILE] [-- --only ${Object.keys(WORKLOADS).join(',')}] [-- --reps N] [-- --profile] [-- --security none|secret|tls] [-- --watchers N]`;

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      full: { type: 'boolean', default: false },
      json: { type: 'string' },
      only: { type: 'string' },
      reps: { type: 'string' },
      profile: { type: 'boolean', default: false },
      security: { type: 'string', default: 'none' },
      watchers: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (error) {
  process.stderr.write(`bench: ${error.message}\n${USAGE}\n`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const modeName = options.full ? 'full' : 'quick';
const mode = { ...MODES[modeName] };
if (options.reps !== undefined) {
  const reps = Number(options.reps);
  if (!Number.isInteger(reps) || reps < 1) {
    process.stderr.write(`bench: --reps needs a whole number ≥ 1\n`);
    process.exit(2);
  }
  mode.reps = reps;
  mode.joinReps = reps;
}
if (!['none', 'secret', 'tls'].includes(options.security)) {
  process.stderr.write(`bench: --security is none, secret (every connection authenticates) or tls (a secret and wss://), got ${JSON.stringify(options.security)}\n`);
  process.exit(2);
}
processOptions.security = options.security;
const watchers = Number(options.watchers);
if (!Number.isInteger(watchers) || watchers < 0 || watchers > 1000) {
  process.stderr.write(`bench: --watchers needs a whole number from 0 to 1000, got ${JSON.stringify(options.watchers)}\n`);
  process.exit(2);
}
const selected = options.only === undefined ? Object.keys(WORKLOADS) : options.only.split(',').map((s) => s.trim());
for (const name of selected) {
  if (!(name in WORKLOADS)) {
    process.stderr.write(`bench: unknown workload ${JSON.stringify(name)}; the workloads are ${Object.keys(WORKLOADS).join(', ')}\n`);
    process.exit(2);
  }
}

const stamp = new Date().toISOString().replace(/[:]/g, '-').replace(/\..*/, '');
const resultsDir = join(REPO_ROOT, 'bench', 'results');
if (options.profile) {
  processOptions.profileDir = join(resultsDir, `profile-${stamp}`);
  mkdirSync(processOptions.profileDir, { recursive: true });
}

// Stop every process we started, whatever ends the run.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}: stopping the processes\n`);
    killAll();
    void removeTempRoot().finally(() => process.exit(130));
  });
}

const log = (text) => process.stderr.write(`${text}\n`);
const ctx = { mode, watchers, progress: (text) => log(`  ${text}`) };

function gitDescribe() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
    return `${commit}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

const meta = {
  date: new Date().toISOString(),
  mode: modeName,
  settings: mode,
  node: process.version,
  os: `${osType()} ${release()}`,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGB: Math.round(totalmem() / 1e9),
  loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  commit: gitDescribe(),
  profiled: options.profile,
  security: options.security,
  watchers,
};
const watched = selected.filter((name) => WATCHED_WORKLOADS.includes(name));
const watchersText =
  watchers === 0
    ? ''
    : `, ${watchers} watcher${watchers === 1 ? '' : 's'} (the live page's watch request, reading everything) attached to each bby node the load writes to in ${watched.length === 0 ? 'no selected workload' : watched.join(', ')}${watched.length < selected.length ? ` (none in ${selected.filter((n) => !watched.includes(n)).join(', ')})` : ''}`;

log(`bby bench, ${modeName} run: ${meta.cpus} × ${meta.cpuModel}, Node ${meta.node}, load average ${meta.loadAverageAtStart.join(' ')}${options.profile ? ', bby-node under --cpu-prof' : ''}${watchersText}`);
const started = performance.now();
const rows = [];
const failures = [];
for (const name of selected) {
  if (interrupted) break;
  const t0 = performance.now();
  log(`[${name}]`);
  try {
    const produced = await WORKLOADS[name](ctx);
    for (const row of produced) {
      if (row.met === undefined && row.targetRatio !== undefined && row.ratio !== undefined) row.met = row.ratio.median >= row.targetRatio;
      rows.push({ group: name, ...row });
    }
    log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (error) {
    failures.push({ workload: name, error: error.stack ?? String(error) });
    log(`  FAILED: ${error.stack ?? error}`);
  }
}
await removeTempRoot();
meta.seconds = Number(((performance.now() - started) / 1000).toFixed(1));
meta.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));

const withUnit = (summary, unit) => (summary === undefined ? '' : fmtSpread(summary, unit));
const text = table(
  ['workload', 'bby: median (min–max)', 'baseline: median (min–max)', 'ratio', 'target', 'met'],
  rows.map((row) => [
    row.workload,
    withUnit(row.bby, row.unit),
    row.baseline === undefined ? (row.baselineLabel ?? '') : `${withUnit(row.baseline, row.unit)} ${row.baselineLabel ? `(${row.baselineLabel})` : ''}`,
    row.ratio === undefined ? '' : `${fmt(row.ratio.median)}× (${fmt(row.ratio.min)}–${fmt(row.ratio.max)})`,
    row.target ?? '',
    row.met === undefined ? '' : row.met ? 'yes' : 'NO',
  ]),
);
const notes = rows.filter((row) => row.note).map((row) => `- ${row.workload}: ${row.note}`);
process.stdout.write(`\n${modeName} run${options.security === 'none' ? '' : ` (bby nodes with --security ${options.security})`}, ${meta.date}, ${meta.cpus} CPUs (${meta.cpuModel}), Node ${meta.node}, commit ${meta.commit}, ${meta.seconds} s, load average ${meta.loadAverageAtStart.join('/')} → ${meta.loadAverageAtEnd.join('/')}${watchersText}\n`);
process.stdout.write(`Each figure: median of ${mode.reps} runs (join: ${mode.joinReps}), (min–max); ratio: median (min–max) of the per-run ratios bby/baseline.\n\n`);
process.stdout.write(`${text}\n`);
if (notes.length > 0) process.stdout.write(`\n${notes.join('\n')}\n`);
for (const failure of failures) process.stdout.write(`\nworkload ${failure.workload} FAILED:\n${failure.error}\n`);

let profiles;
if (options.profile) {
  const files = readdirSync(processOptions.profileDir).filter((f) => f.endsWith('.cpuprofile'));
  profiles = files.map((file) => summarizeProfile(join(processOptions.profileDir, file), 15));
  for (const summary of profiles) process.stdout.write(`\n${formatSummary(summary)}\n`);
}

const jsonPath = options.json ?? join(resultsDir, `${stamp}-${modeName}.json`);
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify({ meta, rows, failures, profiles }, null, 2)}\n`);
process.stdout.write(`\nresults written to ${jsonPath}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
