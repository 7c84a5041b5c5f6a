#!/usr/bin/env node
// `npm run abuse`: one bby-node per workload, attacked as a broken or hostile
// client or peer would (issue 12, "Bounded under abuse"), while a
// well-behaved client does one round trip at a time. Prints, per workload,
// the node's peak RSS, the client's latencies and failures under abuse next
// to its latencies on the same node idle, and whether the node survived.
//
//   node bench/abuse.js [--quick] [--full] [--only slow-reader,repair-flood,keys-amplifier,connection-flood]
//                       [--secret member|outsider] [--repo DIR] [--json FILE] [--max-rss-mb N]
//
// About 10 s of abuse per workload (--quick: 3 s), whole run under 2 minutes;
// --full preloads 1,000,000 keys for the keys amplifier (200,000 otherwise).
// --secret puts a random secret in every node's config: the well-behaved
// client authenticates, and the abusers do too (member) or do not (outsider:
// each of their connections should be turned away). --repo runs the bby-node
// of another built checkout (an older commit) under the same script.
// A node whose RSS passes --max-rss-mb (default 6000) is killed at once: an
// unbounded node must not take the machine with it. Every process started is
// killed at the end, on an error and on Ctrl-C.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AUTH_TIMEOUT_MS } from '@bby/core';
import { newSecret } from './lib/handshake.js';
import { REQUEST_TIMEOUT_MS, WellBehavedClient } from './lib/abuse-client.js';
import { watchMemory } from './lib/abuse-memory.js';
import { Checkout, startAbuseNode } from './lib/abuse-node.js';
import { AbuseTally } from './lib/abuse-tally.js';
import { MESSAGES, openSocket, Requester } from './lib/abuse-wire.js';
import { ABUSE_WORKLOADS, openFilesLimit } from './lib/abuse-workloads.js';
import { killAll, REPO_ROOT, removeTempRoot, sleep } from './lib/procs.js';
import { fmt, quantile, table } from './lib/stats.js';

const USAGE = `usage: npm run abuse [-- --quick] [-- --full] [-- --only ${Object.keys(ABUSE_WORKLOADS).join(',')}] [-- --secret member|outsider] [-- --repo DIR] [-- --json FILE] [-- --max-rss-mb N]`;

/** What the abusers are when the nodes have a secret: members present it, outsiders do not. */
const SECRET_MODES = ['member', 'outsider'];

/**
 * How long an outsider's connections still open after the phase are read
 * before they are cut, so that the refusal of those that never read is seen
 * too, in milliseconds: the node's authentication timeout and a second.
 */
const OUTSIDER_DRAIN_MS = AUTH_TIMEOUT_MS + 1_000;

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
      secret: { type: 'string' },
      repo: { type: 'string' },
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
if (options.secret !== undefined && !SECRET_MODES.includes(options.secret)) {
  process.stderr.write(`abuse: --secret is ${SECRET_MODES.join(' or ')} (the abusers present the secret, or not), got ${JSON.stringify(options.secret)}\n`);
  process.exit(2);
}
let checkout;
try {
  checkout = new Checkout(options.repo ?? REPO_ROOT);
} catch (error) {
  process.stderr.write(`abuse: --repo: ${error.message}\n`);
  process.exit(2);
}
if (options.secret !== undefined && !checkout.hasAuthentication) {
  process.stderr.write(`abuse: --secret needs nodes that authenticate, and the bby-node of ${checkout.root} has no packages/core/dist/src/auth.js; drop --secret, or point --repo at a newer checkout\n`);
  process.exit(2);
}
const modeName = options.quick ? 'quick' : 'normal';
const settings = { ...MODES[modeName], keyCount: options.full ? 1_000_000 : 200_000, capBytes: capMb * 1e6, secretMode: options.secret };
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

/** The commit checked out in `dir`, short, and whether tracked files were changed. */
function gitDescribe(dir) {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: dir, encoding: 'utf8' }).trim() !== '';
    return `${commit}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** Asks a fresh connection (a member's, on a node with a secret) for `stats`; resolves with `{ ms, stats }`, or undefined. */
async function statsAfter(node, timeoutMs) {
  const started = performance.now();
  let requester;
  try {
    requester = new Requester(await openSocket(node.url, { role: 'client', secret: node.secret, timeoutMs }));
    const stats = await requester.request((id) => MESSAGES.stats(id), Math.max(1, timeoutMs - (performance.now() - started)));
    return { ms: performance.now() - started, stats };
  } catch {
    return undefined;
  } finally {
    requester?.close();
  }
}

/** Counters of `stats` that tell how a node dealt with its abusers, where its version has them. */
const DEFENCE_COUNTERS = ['clients', 'authFailures', 'authTimeouts', 'forbiddenMessages', 'idleConnectionsClosed', 'slowLinksClosed', 'repairRequestsMerged', 'repairEntriesSent', 'errors'];

/** A row's name: the workload, its key count for the amplifier, and who the abusers are on nodes with a secret. */
function rowName(workload) {
  const keys = workload.name === 'keys-amplifier' ? ` (${settings.keyCount.toLocaleString('en-US')} keys)` : '';
  return `${workload.name}${keys}${settings.secretMode === undefined ? '' : `, ${settings.secretMode}s`}`;
}

/** `n × what` for each entry of a count object, most first; '' when empty. */
function countsText(counts) {
  return Object.entries(counts ?? {})
    .sort((a, b) => b[1] - a[1])
    .map(([what, n]) => `${n.toLocaleString('en-US')} × ${what}`)
    .join(', ');
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
    maxMs: all.reduce((max, v) => Math.max(max, v), all.length === 0 ? NaN : -Infinity),
    probes: { tried: result.probes.tried, ok: result.probes.ok, p50Ms: quantile(result.probes.latencies, 0.5), failedBy: result.probes.failedBy },
  };
}

async function runWorkload(workload) {
  const node = await startAbuseNode(checkout, { id: `abuse-${workload.name}`, secret: settings.secretMode === undefined ? undefined : newSecret() });
  let client;
  let abusers;
  let tally;
  try {
    const t0 = performance.now();
    const prepared = await workload.prepare(node, settings);
    log(`  preloaded in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${prepared}`);
    client = await WellBehavedClient.start(node.url, { secret: node.secret });
    const idle = latencySummary(await client.run(settings.idleMs, 'idle'));
    const rssIdle = node.proc.memory().rss;
    log(`  idle: p50 ${fmt(idle.p50Ms)} ms, p99 ${fmt(idle.p99Ms)} ms over ${idle.requests} requests; node RSS ${fmt(rssIdle / 1e6)} MB`);
    const cpuBefore = node.proc.cpuMs();
    const scriptCpuBefore = process.cpuUsage();
    const memory = watchMemory(node.proc, { capBytes: settings.capBytes });
    tally = new AbuseTally({ drainMs: settings.secretMode === 'outsider' ? OUTSIDER_DRAIN_MS : 0 });
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
    const after = aliveAtEnd ? await statsAfter(node, settings.recoveryMs) : undefined;
    const recoveryMs = after?.ms;
    const defences = after === undefined ? undefined : Object.fromEntries(DEFENCE_COUNTERS.filter((name) => name in after.stats).map((name) => [name, after.stats[name]]));
    let outcome;
    if (peak.cappedAtMs !== undefined) outcome = `killed at the ${capMb.toLocaleString('en-US')} MB cap after ${(peak.cappedAtMs / 1000).toFixed(1)} s`;
    else if (!aliveAtEnd) outcome = `died (${node.proc.exitStatus.signal ?? `exit code ${node.proc.exitStatus.code}`})`;
    else outcome = 'yes';
    const row = {
      workload: rowName(workload),
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
      defences,
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
  secretMode: settings.secretMode ?? 'none',
  nodeRepo: checkout.root,
  commit: gitDescribe(checkout.root),
  scriptCommit: gitDescribe(REPO_ROOT),
};
const commitText = checkout.root === resolve(REPO_ROOT) ? meta.commit : `${meta.commit} (bby-node of ${checkout.root}; script at ${meta.scriptCommit})`;
log(`bby abuse, ${modeName} run of bby-node at ${commitText}: ${meta.cpus} × ${meta.cpuModel}, Node ${meta.node}, open files limit ${meta.openFilesLimit ?? 'unknown'}, RSS cap ${capMb} MB, load average ${meta.loadAverageAtStart.join(' ')}${settings.secretMode === undefined ? '' : `, nodes with a secret, abusers ${settings.secretMode}s`}`);

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
  ['workload', 'node RSS idle → peak (MB)', 'client p50 / p99 / max under abuse (ms)', 'timed out + failed / requests', 'new connections served', 'client p50 / p99 idle (ms)', 'node alive', 'abusers closed by node', 'abusers refused'],
  rows.map((row) => [
    row.workload,
    `${mb(row.rssIdleBytes)} → ${row.cappedAtMs === undefined ? '' : '≥ '}${mb(row.rssPeakBytes)}`,
    `${ms(row.loaded.p50Ms)} / ${ms(row.loaded.p99Ms)} / ${ms(row.loaded.maxMs)}`,
    `${row.loaded.timedOut} + ${row.loaded.failed} / ${row.loaded.requests.toLocaleString('en-US')}`,
    `${row.loaded.probes.ok} / ${row.loaded.probes.tried}`,
    `${ms(row.idle.p50Ms)} / ${ms(row.idle.p99Ms)}`,
    row.outcome,
    `${row.abusers.closedByNode.toLocaleString('en-US')} of ${row.abusers.opened.toLocaleString('en-US')}${row.abusers.closedByNode > 0 ? ` (${countsText(row.abusers.closedBy)})` : ''}`,
    row.abusers.refused > 0 ? `${row.abusers.refused.toLocaleString('en-US')} (${countsText(row.abusers.refusedBy)})` : '0',
  ]),
);
process.stdout.write(
  `\nabuse ${modeName} run, ${meta.date}, ${meta.cpus} CPUs (${meta.cpuModel}), Node ${meta.node}, bby-node at ${commitText}${settings.secretMode === undefined ? '' : `, nodes with a secret, abusers ${settings.secretMode}s`}, ${meta.seconds} s, load average ${meta.loadAverageAtStart.join('/')} → ${meta.loadAverageAtEnd.join('/')}\n`,
);
process.stdout.write(
  `Per workload: a fresh node; ${settings.idleMs / 1000} s of the well-behaved client alone (idle), then ${settings.abuseMs / 1000} s under abuse (connection-flood: ${(settings.abuseMs * 1.5) / 1000} s, to hold its connections together a while). The client does one set or get at a time (timeout ${REQUEST_TIMEOUT_MS / 1000} s; a late answer keeps its real latency, ∞ = never answered) and opens a new connection once a second${settings.secretMode === undefined ? '' : ' (it authenticates on each)'}. RSS polled every 50 ms; cap ${capMb.toLocaleString('en-US')} MB.${settings.secretMode === 'outsider' ? ` After the phase, the outsiders' connections still open are read for up to ${OUTSIDER_DRAIN_MS / 1000} s, so that the refusal of those that never read is counted too.` : ''}\n\n`,
);
process.stdout.write(`${text}\n\n`);
for (const row of rows) {
  const closes = countsText(row.abusers.closedBy);
  const refusals = countsText(row.abusers.refusedBy);
  const answered = [row.abusers.replies > 0 ? `${row.abusers.replies.toLocaleString('en-US')} replies` : '', countsText(row.abusers.errorsBy) === '' ? '' : `errors ${countsText(row.abusers.errorsBy)}`].filter(Boolean);
  const turnedAway = row.abusers.closedByNode + row.abusers.refused;
  const extra = [
    `CPU during the abuse: node ${fmt(row.nodeCpuMs / 1000)} s, this script (abusers and client) ${fmt(row.scriptCpuMs / 1000)} s`,
    row.recoveryMs === undefined ? (row.alive ? `no stats answer within ${settings.recoveryMs / 1000} s once the abusers were cut` : undefined) : `stats answered ${fmt(row.recoveryMs)} ms after the abusers were cut`,
    closes !== '' ? `abusive connections closed by the node: ${row.abusers.closedByNode} (${closes})` : 'abusive connections closed by the node: 0',
    refusals !== '' ? `refused: ${refusals}` : undefined,
    settings.secretMode === 'outsider' ? `outsiders turned away (refused, or closed by the node): ${turnedAway.toLocaleString('en-US')} of ${(row.abusers.opened + row.abusers.refused).toLocaleString('en-US')} tried` : undefined,
    answered.length > 0 ? `the node sent the abusers that read ${answered.join(', ')}` : undefined,
    countsText(row.loaded.probes.failedBy) === '' ? undefined : `new connections not served: ${countsText(row.loaded.probes.failedBy)}`,
    row.defences === undefined ? undefined : `node stats after the cut: ${Object.entries(row.defences).map(([name, n]) => `${name} ${n}`).join(', ')}`,
    row.loaded.firstFailure === undefined ? undefined : `first client failure: ${row.loaded.firstFailure}`,
  ].filter(Boolean);
  process.stdout.write(`- ${row.workload}: ${row.title}; ${row.prepared}. ${row.abusers.note}; ${extra.join('; ')}.\n`);
}
for (const failure of failures) process.stdout.write(`\nworkload ${failure.workload} FAILED:\n${failure.error}\n`);

const stamp = meta.date.replace(/[:]/g, '-').replace(/\..*/, '');
const jsonPath = options.json ?? join(REPO_ROOT, 'bench', 'results', `${stamp}-abuse-${modeName}${settings.secretMode === undefined ? '' : `-${settings.secretMode}s`}.json`);
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify({ meta, rows, failures }, (_, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
process.stdout.write(`\nresults written to ${jsonPath}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
