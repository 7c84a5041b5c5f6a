#!/usr/bin/env node
// `npm run abuse`: one bby-node per workload, attacked as a broken or hostile
// client or peer would (issue 12, "Bounded under abuse"), while a
// well-behaved client does one round trip at a time. Prints, per workload,
// the node's peak RSS, the client's latencies and failures under abuse next
// to its latencies on the same node idle, and whether the node survived.
//
//   node bench/abuse.js [--quick] [--full] [--only slow-reader,repair-flood,keys-amplifier,connection-flood]
//                       [--json FILE] [--max-rss-mb N]
//
// About 10 s of abuse per workload (--quick: 3 s), whole run under 2 minutes;
// --full preloads 1,000,000 keys for the keys amplifier (200,000 otherwise).
// A node whose RSS passes --max-rss-mb (default 6000) is killed at once: an
// unbounded node must not take the machine with it. Every process started is
// killed at the end, on an error and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { REQUEST_TIMEOUT_MS, WellBehavedClient } from './lib/abuse-client.js';
import { watchMemory } from './lib/abuse-memory.js';
import { AbuseTally } from './lib/abuse-tally.js';
import { MESSAGES, openSocket, Requester } from './lib/abuse-wire.js';
import { ABUSE_WORKLOADS, openFilesLimit } from './lib/abuse-workloads.js';
import { killAll, REPO_ROOT, removeTempRoot, sleep, startBbyNode } from './lib/procs.js';
import { fmt, quantile, table } from './lib/stats.js';

const USAGE = `usage: npm run abuse [-- --quick] [-- --full] [-- --only ${Object.keys(ABUSE_WORKLOADS).join(',')}] [-- --json FILE] [-- --max-rss-mb N]`;

/** Durations of the phases, in milliseconds: the client alone on the idle node, then under abuse. */
const MODES = {
  normal: { idleMs: 2_000, abuseMs: 10_000 },
  quick: { idleMs: 1_000, abuseMs: 3_000 },
};

/** How long a node may take to answer `stats` once its abusers are gone, in milliseconds (at most the abuse phase). */
const RECOVERY_TIMEOUT_MS = 10_000;

/** How long a stopping node gets before SIGKILL, in milliseconds. */
const STOP_GRACE_MS = 2_000;

let options;
try {
  ({ values: options } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      only: { type: 'string' },
      json: { type: 'string' },
      'max-rss-mb': { type: 'string', default: '6000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (error) {
  process.stderr.write(`abuse: ${error.message}\n${USAGE}\n`);
  process.exit(2);
}
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const capMb = Number(options['max-rss-mb']);
if (!Number.isInteger(capMb) || capMb < 100) {
  process.stderr.write(`abuse: --max-rss-mb needs a whole number of megabytes ≥ 100\n`);
  process.exit(2);
}
const selected = options.only === undefined ? Object.keys(ABUSE_WORKLOADS) : options.only.split(',').map((s) => s.trim());
for (const name of selected) {
  if (!(name in ABUSE_WORKLOADS)) {
    process.stderr.write(`abuse: unknown workload ${JSON.stringify(name)}; the workloads are ${Object.keys(ABUSE_WORKLOADS).join(', ')}\n`);
    process.exit(2);
  }
}
const modeName = options.quick ? 'quick' : 'normal';
const settings = { ...MODES[modeName], keyCount: options.full ? 1_000_000 : 200_000, capBytes: capMb * 1e6 };
settings.recoveryMs = Math.min(RECOVERY_TIMEOUT_MS, settings.abuseMs);

// Stop every process we started, whatever ends the run (procs.js kills them on 'exit' too).
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\nabuse: ${signal}: stopping the processes\n`);
    killAll();
    void removeTempRoot().finally(() => process.exit(130));
  });
}

const log = (text) => process.stderr.write(`${text}\n`);

function gitDescribe() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim() !== '';
    return `${commit}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** Asks a fresh connection for `stats`; resolves with the time it took, or undefined. */
async function statsAnswerMs(url, timeoutMs) {
  const started = performance.now();
  let requester;
  try {
    requester = new Requester(await openSocket(url, { role: 'client', timeoutMs }));
    await requester.request((id) => MESSAGES.stats(id), Math.max(1, timeoutMs - (performance.now() - started)));
    return performance.now() - started;
  } catch {
    return undefined;
  } finally {
    requester?.close();
  }
}

/** p50, p99 and max of a client phase's latencies (Infinity: never answered), in milliseconds. */
function latencySummary(result) {
  const all = result.latencies;
  return {
    requests: result.ok + result.timedOut + result.failed,
    ok: result.ok,
    timedOut: result.timedOut,
    failed: result.failed,
    firstFailure: result.firstFailure,
    p50Ms: quantile(all, 0.5),
    p99Ms: quantile(all, 0.99),
    maxMs: all.reduce((max, v) => (v > max ? v : max), all.length === 0 ? NaN : -Infinity),
    probes: { tried: result.probes.tried, ok: result.probes.ok, p50Ms: quantile(result.probes.latencies, 0.5) },
  };
}

async function runWorkload(workload) {
  const node = await startBbyNode({ id: `abuse-${workload.name}`, group: 'abuse' });
  let client;
  let abusers;
  let tally;
  try {
    const t0 = performance.now();
    const prepared = await workload.prepare(node, settings);
    log(`  preloaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${prepared}`);
    client = await WellBehavedClient.start(node.url);
    const idle = latencySummary(await client.run(settings.idleMs, 'idle'));
    const rssIdle = node.proc.memory().rss;
    log(`  idle: p50 ${fmt(idle.p50Ms)} ms, p99 ${fmt(idle.p99Ms)} ms over ${idle.requests} requests; node RSS ${fmt(rssIdle / 1e6)} MB`);
    const cpuBefore = node.proc.cpuMs();
    const scriptCpuBefore = process.cpuUsage();
    const memory = watchMemory(node.proc, { capBytes: settings.capBytes });
    tally = new AbuseTally();
    abusers = workload.start(node, settings, tally);
    // The abusers are cut after abuseMs; the client's requests sent until then are followed to their answer or timeout.
    const abuseMs = settings.abuseMs * (workload.phaseFactor ?? 1);
    const clientRun = client.run(abuseMs, 'abuse');
    await sleep(abuseMs);
    const cpuMs = node.proc.cpuMs() - cpuBefore;
    const scriptCpu = process.cpuUsage(scriptCpuBefore);
    const aliveAtEnd = node.proc.exitStatus === undefined;
    const abuse = await abusers.stop();
    abusers = undefined;
    const loaded = latencySummary(await clientRun);
    const peak = memory.stop();
    const hwm = node.proc.memory().hwm;
    const recoveryMs = aliveAtEnd ? await statsAnswerMs(node.url, settings.recoveryMs) : undefined;
    let outcome;
    if (peak.cappedAtMs !== undefined) outcome = `killed at the ${capMb.toLocaleString('en-US')} MB cap after ${(peak.cappedAtMs / 1000).toFixed(1)} s`;
    else if (!aliveAtEnd) outcome = `died (${node.proc.exitStatus.signal ?? `exit code ${node.proc.exitStatus.code}`})`;
    else outcome = 'yes';
    const row = {
      workload: workload.name,
      title: workload.title,
      prepared,
      rssIdleBytes: rssIdle,
      rssPeakBytes: peak.peakBytes,
      vmHwmBytes: hwm,
      abuseMs,
      cappedAtMs: peak.cappedAtMs,
      nodeCpuMs: cpuMs,
      scriptCpuMs: (scriptCpu.user + scriptCpu.system) / 1000,
      idle,
      loaded,
      alive: outcome === 'yes',
      outcome,
      recoveryMs,
      abusers: { ...tally.summary(), ...abuse },
    };
    log(
      `  under abuse: p50 ${fmt(loaded.p50Ms)} ms, p99 ${fmt(loaded.p99Ms)} ms, max ${fmt(loaded.maxMs)} ms; ${loaded.timedOut} timed out, ${loaded.failed} failed of ${loaded.requests}; peak RSS ${fmt(peak.peakBytes / 1e6)} MB; alive: ${outcome}`,
    );
    log(`  ${abuse.note}`);
    return row;
  } finally {
    abusers?.stop().catch(() => undefined);
    tally?.closeAll();
    await client?.stop();
    await node.proc.stop(STOP_GRACE_MS);
  }
}

const meta = {
  date: new Date().toISOString(),
  mode: modeName,
  settings: { ...settings, requestTimeoutMs: REQUEST_TIMEOUT_MS },
  node: process.version,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGB: Math.round(totalmem() / 1e9),
  openFilesLimit: openFilesLimit(),
  loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  commit: gitDescribe(),
};
log(`bby abuse, ${modeName} run: ${meta.cpus} × ${meta.cpuModel}, Node ${meta.node}, open files limit ${meta.openFilesLimit ?? 'unknown'}, RSS cap ${capMb} MB, load average ${meta.loadAverageAtStart.join(' ')}`);

const started = performance.now();
const rows = [];
const failures = [];
for (const name of selected) {
  if (interrupted) break;
  const workload = ABUSE_WORKLOADS[name];
  log(`[${name}] ${workload.title}`);
  try {
    rows.push(await runWorkload(workload));
  } catch (error) {
    failures.push({ workload: name, error: error.stack ?? String(error) });
    log(`  FAILED: ${error.stack ?? error}`);
  }
}
await removeTempRoot();
meta.seconds = Number(((performance.now() - started) / 1000).toFixed(1));
meta.loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));

const ms = (value) => (value === Infinity ? '∞' : fmt(value));
const mb = (bytes) => (bytes === undefined ? '-' : fmt(bytes / 1e6));
const text = table(
  ['workload', 'node RSS idle → peak (MB)', 'client p50 / p99 / max under abuse (ms)', 'timed out + failed / requests', 'new connections served', 'client p50 / p99 idle (ms)', 'node alive', 'abusers closed by node'],
  rows.map((row) => [
    row.workload,
    `${mb(row.rssIdleBytes)} → ${row.cappedAtMs === undefined ? '' : '≥ '}${mb(row.rssPeakBytes)}`,
    `${ms(row.loaded.p50Ms)} / ${ms(row.loaded.p99Ms)} / ${ms(row.loaded.maxMs)}`,
    `${row.loaded.timedOut} + ${row.loaded.failed} / ${row.loaded.requests.toLocaleString('en-US')}`,
    `${row.loaded.probes.ok} / ${row.loaded.probes.tried}`,
    `${ms(row.idle.p50Ms)} / ${ms(row.idle.p99Ms)}`,
    row.outcome,
    `${row.abusers.closedByNode.toLocaleString('en-US')} of ${row.abusers.opened.toLocaleString('en-US')}${row.abusers.refused > 0 ? ` (+${row.abusers.refused.toLocaleString('en-US')} refused)` : ''}`,
  ]),
);
process.stdout.write(
  `\nabuse ${modeName} run, ${meta.date}, ${meta.cpus} CPUs (${meta.cpuModel}), Node ${meta.node}, commit ${meta.commit}, ${meta.seconds} s, load average ${meta.loadAverageAtStart.join('/')} → ${meta.loadAverageAtEnd.join('/')}\n`,
);
process.stdout.write(
  `Per workload: a fresh node; ${settings.idleMs / 1000} s of the well-behaved client alone (idle), then ${settings.abuseMs / 1000} s under abuse (connection-flood: ${(settings.abuseMs * 1.5) / 1000} s, to hold its connections together a while). The client does one set or get at a time (timeout ${REQUEST_TIMEOUT_MS / 1000} s; a late answer keeps its real latency, ∞ = never answered) and opens a new connection once a second. RSS polled every 50 ms; cap ${capMb.toLocaleString('en-US')} MB.\n\n`,
);
process.stdout.write(`${text}\n\n`);
for (const row of rows) {
  const closes = Object.entries(row.abusers.closedBy).map(([code, n]) => `${n} × ${code}`);
  const refusals = Object.entries(row.abusers.refusedBy).map(([reason, n]) => `${n} × ${reason}`);
  const extra = [
    `CPU during the abuse: node ${fmt(row.nodeCpuMs / 1000)} s, this script (abusers and client) ${fmt(row.scriptCpuMs / 1000)} s`,
    row.recoveryMs === undefined ? (row.alive ? `no stats answer within ${settings.recoveryMs / 1000} s once the abusers were cut` : undefined) : `stats answered ${fmt(row.recoveryMs)} ms after the abusers were cut`,
    closes.length > 0 ? `abusive connections closed by the node: ${row.abusers.closedByNode} (${closes.join(', ')})` : 'abusive connections closed by the node: 0',
    refusals.length > 0 ? `refused: ${refusals.join(', ')}` : undefined,
    row.loaded.firstFailure === undefined ? undefined : `first client failure: ${row.loaded.firstFailure}`,
  ].filter(Boolean);
  process.stdout.write(`- ${row.workload}: ${row.title}; ${row.prepared}. ${row.abusers.note}; ${extra.join('; ')}.\n`);
}
for (const failure of failures) process.stdout.write(`\nworkload ${failure.workload} FAILED:\n${failure.error}\n`);

const stamp = meta.date.replace(/[:]/g, '-').replace(/\..*/, '');
const jsonPath = options.json ?? join(REPO_ROOT, 'bench', 'results', `${stamp}-abuse-${modeName}.json`);
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify({ meta, rows, failures }, (_, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
process.stdout.write(`\nresults written to ${jsonPath}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
