// The workloads of `npm run bench`. Each starts its processes, measures bby
// and its bare-ws baseline in alternation (rep 1 bare, rep 1 bby, rep 2 ...),
// stops its processes whatever happens, and returns rows for the table.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { PROTOCOL_VERSION } from '@bby/core';
import { runBby, sleep, startBareServer, startBbyNode, stopAll, tempDir, waitFor } from './lib/procs.js';
import { quantile, summarize } from './lib/stats.js';
import { Conn, drive, getText, makeKey, makeValue, setText, Watcher } from './lib/wsclient.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;

/** Settings of a quick and a full run. */
export const MODES = {
  quick: { reps: 3, warmupMs: 200, rrMs: 400, pipeMs: 500, relayWrites: 3_000, relayMs: 3_000, joinKeys: 100_000, joinReps: 3, fsyncClients: 50, fsyncMs: 500, meshSizes: [3, 5, 10], meshSets: 100 },
  full: { reps: 5, warmupMs: 1_000, rrMs: 2_000, pipeMs: 3_000, relayWrites: 20_000, relayMs: 20_000, joinKeys: 1_000_000, joinReps: 3, fsyncClients: 50, fsyncMs: 3_000, meshSizes: [3, 5, 10], meshSets: 1_000 },
};

/** Per-rep ratios bby/baseline, summarized. */
function pairedRatio(bby, base) {
  return summarize(bby.map((value, i) => value / base[i]));
}

const ms = (values) => summarize(values);
const p = (latencies, q) => quantile(latencies, q);

/** Runs `task` with connections that are closed afterwards. */
async function withConns(urls, task) {
  const conns = [];
  try {
    for (const url of urls) conns.push(await Conn.open(url));
    return await task(conns);
  } finally {
    for (const conn of conns) conn.close();
  }
}

/**
 * Runs each runner for `totalMs` in slices of `sliceMs`, taking turns, so
 * that bby and its baseline see the same share of a noisy machine. Returns,
 * per runner, the merged result: requests answered, time, rate, latencies.
 */
async function interleave(runners, { totalMs, sliceMs }) {
  const merged = Object.fromEntries(Object.keys(runners).map((name) => [name, { ops: 0, elapsedMs: 0, errors: 0, firstError: undefined, cpuMs: 0, parts: [] }]));
  const slices = Math.max(1, Math.round(totalMs / sliceMs));
  for (let slice = 0; slice < slices; slice++) {
    for (const [name, run] of Object.entries(runners)) {
      const result = await run(sliceMs);
      const m = merged[name];
      m.ops += result.ops;
      m.elapsedMs += result.elapsedMs;
      m.errors += result.errors;
      m.cpuMs += result.cpuMs ?? 0;
      m.firstError ??= result.firstError;
      m.parts.push(result.latencies);
    }
  }
  for (const m of Object.values(merged)) {
    m.rate = (m.ops * 1000) / m.elapsedMs;
    const latencies = new Float64Array(m.parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of m.parts) {
      latencies.set(part, at);
      at += part.length;
    }
    m.latencies = latencies;
    delete m.parts;
  }
  return merged;
}

/** The workloads that attach `--watchers` to the nodes their load writes to. */
export const WATCHED_WORKLOADS = ['rr', 'pipelined', 'relay', 'durable'];

/**
 * `ctx.watchers` read-only subscribers (bench/lib/wsclient.js, Watcher: the
 * live page's `watch`) on each of `nodes`, attached before the timed part and
 * reading all through it. `note()` says what they received; `check()` throws
 * if the node closed one (a watcher that fell behind is closed with 4008).
 */
async function attachWatchers(ctx, nodes) {
  const count = ctx.watchers ?? 0;
  const watchers = [];
  const statsConns = [];
  // What reached the nodes (own writes and replicated ones): what their watchers should receive.
  const reached = async () => (await Promise.all(statsConns.map((c) => c.call({ type: 'stats' })))).map((s) => s.writesAccepted + s.entriesApplied);
  const close = () => {
    for (const c of [...watchers, ...statsConns]) c.close();
  };
  let base;
  let reachedBase;
  try {
    if (count > 0) {
      for (const node of nodes) {
        statsConns.push(await Conn.open(node.url));
        for (let i = 0; i < count; i++) watchers.push(await Watcher.open(node.url));
      }
      reachedBase = await reached();
    }
    base = watchers.map((w) => ({ writes: w.writes, frames: w.frames, states: w.states, dropped: w.dropped }));
  } catch (error) {
    close();
    throw error;
  }
  if (count > 0) ctx.progress(`${count} watcher${count === 1 ? '' : 's'} (the live page's watch) on ${nodes.map((n) => n.id).join(', ')}`);
  return {
    count,
    /** Throws if the node closed a watcher (one that falls behind is closed with 4008). */
    check() {
      const closed = watchers.find((w) => w.closedByNode !== false);
      if (closed !== undefined) throw new Error(`a watcher of ${closed.conn.url} was closed by the node (code ${closed.closedByNode}) during the run`);
    },
    /** What the watchers received since they were attached, for a row's note ('' without watchers). */
    async note() {
      if (count === 0) return '';
      this.check();
      await sleep(300); // the last watch messages, sent before the stats answer, on other connections
      const now = await reached();
      const made = now.reduce((sum, n, i) => sum + n - reachedBase[i], 0);
      const sum = (field) => watchers.reduce((total, w, i) => total + w[field] - base[i][field], 0);
      const each = nodes.length === 1 ? 'the node' : `each of ${nodes.map((n) => n.id).join(' and ')}`;
      return `; ${count} watcher${count === 1 ? '' : 's'} (the live page's watch) on ${each}: ${sum('writes').toLocaleString('en-US')} writes received by them (${(made * count).toLocaleString('en-US')} = writes that reached the node × watchers) in ${sum('frames').toLocaleString('en-US')} frames, ${sum('states')} states, ${sum('dropped')} events left out, none closed`;
    },
    close,
  };
}

let keySerial = 0;
/** A request maker for `set`s of new 16-byte keys with 100-byte values. */
const newSets = (prefix) => (id) => {
  const n = keySerial++;
  return setText(id, makeKey(prefix, n), makeValue(n));
};

// --- one request in flight ------------------------------------------------------------

export async function roundTrip(ctx) {
  const { reps, warmupMs, rrMs } = ctx.mode;
  const node = await startBbyNode({ id: 'rr', group: 'rr' });
  const bare = await startBareServer({ id: 'bare-rr' });
  let watch;
  try {
    watch = await attachWatchers(ctx, [node]);
    return await withConns([node.url, bare.url], async ([bbyConn, bareConn]) => {
      const GET_KEYS = 1_000;
      await drive([bbyConn], { window: 64, total: GET_KEYS, request: (id) => setText(id, makeKey('g', id - 1), makeValue(id - 1)) });
      const gets = (id) => getText(id, makeKey('g', id % GET_KEYS));
      // The server's CPU time over each slice: steadier than round trips on a shared machine (10 ms ticks, summed over many slices).
      const withCpu = (proc, run) => async (durationMs) => {
        const before = proc.proc.cpuMs();
        const result = await run(durationMs);
        return { ...result, cpuMs: proc.proc.cpuMs() - before };
      };
      const variants = {
        bareSet: withCpu(bare, (durationMs) => drive([bareConn], { window: 1, durationMs, request: newSets('x') })),
        bbySet: withCpu(node, (durationMs) => drive([bbyConn], { window: 1, durationMs, request: newSets('s') })),
        bareGet: withCpu(bare, (durationMs) => drive([bareConn], { window: 1, durationMs, request: gets })),
        bbyGet: withCpu(node, (durationMs) => drive([bbyConn], { window: 1, durationMs, request: gets })),
      };
      for (const conn of [bareConn, bbyConn]) await drive([conn], { window: 1, durationMs: warmupMs, request: newSets('w') });
      const runs = { bareSet: [], bbySet: [], bareGet: [], bbyGet: [] };
      for (let rep = 0; rep < reps; rep++) {
        const merged = await interleave(variants, { totalMs: rrMs, sliceMs: 100 });
        for (const [name, result] of Object.entries(merged)) {
          if (result.errors > 0) throw new Error(`${name}: ${result.errors} error answers, first: ${result.firstError}`);
          runs[name].push(result);
        }
        watch.check();
        ctx.progress(`rr rep ${rep + 1}: ${Object.entries(merged).map(([name, r]) => `${name} p50 ${(p(r.latencies, 0.5) * 1000).toFixed(0)} µs, ${Math.round(r.rate)}/s`).join('; ')}`);
      }
      const watchNote = await watch.note();
      // One request in flight: the median round trip is the figure (a mean rate would be ruled by the stalls of a shared machine).
      const row = (op) => {
        const bby = runs[`bby${op}`].map((r) => p(r.latencies, 0.5) * 1000);
        const base = runs[`bare${op}`].map((r) => p(r.latencies, 0.5) * 1000);
        const rate = (results) => Math.round(median(results.map((r) => r.rate)));
        const cpu = (results) => ((results.reduce((sum, r) => sum + r.cpuMs, 0) * 1000) / results.reduce((sum, r) => sum + r.ops, 0)).toFixed(1);
        return {
          workload: `${op.toLowerCase()}, 1 client, 1 request in flight: median round trip`,
          unit: 'µs',
          bby: ms(bby),
          baseline: ms(base),
          baselineLabel: 'bare ws round trip',
          // Higher is better, as for rates: bare time / bby time.
          ratio: pairedRatio(base, bby),
          target: '≥ 0.9×',
          targetRatio: 0.9,
          note: `mean rate ${rate(runs[`bby${op}`]).toLocaleString('en-US')} req/s (bare ${rate(runs[`bare${op}`]).toLocaleString('en-US')} req/s); p99 ${median(runs[`bby${op}`].map((r) => p(r.latencies, 0.99) * 1000)).toFixed(0)} µs (bare ${median(runs[`bare${op}`].map((r) => p(r.latencies, 0.99) * 1000)).toFixed(0)} µs); server CPU per request ${cpu(runs[`bby${op}`])} µs (bare ${cpu(runs[`bare${op}`])} µs)${watchNote}`,
        };
      };
      return [row('Get'), row('Set')];
    });
  } finally {
    watch?.close();
    await stopAll([node, bare]);
  }
}

const median = (values) => quantile(values, 0.5);

// --- 64 requests in flight, two peers replicating ---------------------------------------

export async function pipelined(ctx) {
  const { reps, warmupMs, pipeMs } = ctx.mode;
  const procs = [];
  let watch;
  try {
    const a = await startBbyNode({ id: 'pipe-a', group: 'pipe' });
    procs.push(a);
    const [b, c] = await Promise.all([startBbyNode({ id: 'pipe-b', group: 'pipe', peers: [a.address] }), startBbyNode({ id: 'pipe-c', group: 'pipe', peers: [a.address] })]);
    procs.push(b, c);
    const bare = await startBareServer({ id: 'bare-pipe' });
    procs.push(bare);
    watch = await attachWatchers(ctx, [a]);
    return await withConns([a.url, b.url, c.url, bare.url], async ([aConn, bConn, cConn, bareConn]) => {
      await waitFor(async () => (await aConn.call({ type: 'stats' })).peers === 2, { what: 'pipe-a to have 2 peers', timeoutMs: 20_000 });
      const caughtUp = async () => {
        const target = (await aConn.call({ type: 'stats' })).keys;
        await waitFor(async () => (await bConn.call({ type: 'stats' })).keys >= target && (await cConn.call({ type: 'stats' })).keys >= target, { what: 'the peers to apply every write', timeoutMs: 60_000 });
      };
      await drive([bareConn], { window: 64, durationMs: warmupMs, request: newSets('w') });
      await drive([aConn], { window: 64, durationMs: warmupMs, request: newSets('w') });
      await caughtUp();
      const bby = [];
      const base = [];
      const lag = [];
      const cpu = { a: 0, b: 0, c: 0, bare: 0, bbySets: 0, bareSets: 0 };
      for (let rep = 0; rep < reps; rep++) {
        const cpuBefore = [a, b, c, bare].map((x) => x.proc.cpuMs());
        const { bareRun, bbyRun } = await interleave(
          {
            bareRun: (durationMs) => drive([bareConn], { window: 64, durationMs, request: newSets('x') }),
            bbyRun: (durationMs) => drive([aConn], { window: 64, durationMs, request: newSets('p') }),
          },
          { totalMs: pipeMs, sliceMs: 200 },
        );
        base.push(bareRun.rate);
        if (bbyRun.errors > 0) throw new Error(`${bbyRun.errors} error answers, first: ${bbyRun.firstError}`);
        bby.push(bbyRun.rate);
        const t0 = performance.now();
        await caughtUp();
        lag.push(performance.now() - t0);
        const cpuAfter = [a, b, c, bare].map((x) => x.proc.cpuMs());
        ['a', 'b', 'c', 'bare'].forEach((name, i) => {
          cpu[name] += cpuAfter[i] - cpuBefore[i];
        });
        cpu.bbySets += bbyRun.ops;
        cpu.bareSets += bareRun.ops;
        watch.check();
        ctx.progress(`pipelined rep ${rep + 1}: bby ${Math.round(bbyRun.rate)} req/s, bare ${Math.round(bareRun.rate)} req/s, peers caught up ${Math.round(lag.at(-1))} ms later`);
      }
      const watchNote = await watch.note();
      return [
        {
          workload: 'set, 1 client, 64 in flight, 2 peers replicating',
          unit: 'req/s',
          bby: ms(bby),
          baseline: ms(base),
          baselineLabel: 'bare ws, 64 in flight',
          ratio: pairedRatio(bby, base),
          target: '≥ 0.8×',
          targetRatio: 0.8,
          note:
            `peers applied the last write ${Math.round(median(lag))} ms (median) after the last reply; ` +
            `CPU per set: node ${((cpu.a * 1000) / cpu.bbySets).toFixed(0)} µs, each peer ${((cpu.b * 500 + cpu.c * 500) / cpu.bbySets).toFixed(0)} µs; bare server ${((cpu.bare * 1000) / cpu.bareSets).toFixed(0)} µs per request${watchNote}`,
        },
      ];
    });
  } finally {
    watch?.close();
    await stopAll(procs);
  }
}

// --- replication through a line A–B–C ---------------------------------------------------

/** Connects as a peer (hello/welcome) to observe the `entries` a node forwards. */
async function observer(url) {
  const peerId = `observer-${process.pid}`;
  const conn = await Conn.open(url, 10_000, { peerId });
  const welcomed = new Promise((resolve) => {
    conn.onText = (text) => {
      if (text.startsWith('{"type":"welcome"')) resolve();
    };
  });
  conn.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, nodeId: peerId, address: '127.0.0.1:1' }));
  await Promise.race([welcomed, sleep(10_000).then(() => Promise.reject(new Error(`no welcome from ${url}`)))]);
  // A peer that stays silent for 4 s is closed by the node (failure detection): keep talking.
  const heartbeat = setInterval(() => conn.send('{"type":"ping"}'), 1_000);
  conn.onClose(() => clearInterval(heartbeat));
  return conn;
}

/**
 * Writes `count` new keys on `client` (at most `window` not yet seen by the
 * observer) and times each until the observer receives it.
 */
function replicate(client, watcher, { prefix, count, durationMs, window }) {
  return new Promise((resolve, reject) => {
    const sentAt = new Map();
    const delays = [];
    let issued = 0;
    let observed = 0;
    let replies = 0;
    let errors = 0;
    let firstError;
    let lastArrival = 0;
    let lastProgress = performance.now();
    const started = performance.now();
    const deadline = started + durationMs;
    const texts = [];
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearInterval(watchdog);
      client.onText = undefined;
      watcher.onText = undefined;
      if (error) reject(error);
      else resolve({ observed, elapsedMs: lastArrival - started, rate: (observed * 1000) / (lastArrival - started), delays: Float64Array.from(delays), errors, firstError, replies });
    };
    const refill = () => {
      texts.length = 0;
      const now = performance.now();
      while (issued - observed < window && issued < count && now < deadline) {
        const key = makeKey(prefix, keySerial++);
        sentAt.set(key, now);
        issued++;
        texts.push(setText(issued, key, makeValue(issued)));
      }
      if (texts.length > 0) client.sendMany(texts);
      if (issued === observed && (issued >= count || now >= deadline)) finish();
    };
    client.onText = (text) => {
      replies++;
      if (!text.startsWith('{"type":"reply"')) {
        errors++;
        firstError ??= text.slice(0, 300);
      }
    };
    watcher.onText = (text) => {
      if (!text.startsWith('{"type":"entries"')) return;
      const now = performance.now();
      // Entries travel as [key, value, timestamp, origin].
      for (const [key] of JSON.parse(text).entries) {
        const at = sentAt.get(key);
        if (at === undefined) continue;
        sentAt.delete(key);
        delays.push(now - at);
        observed++;
      }
      lastArrival = now;
      lastProgress = now;
      refill();
    };
    const watchdog = setInterval(() => {
      if (performance.now() - lastProgress > 15_000) finish(new Error(`replication stalled: ${observed} of ${issued} writes seen at the end of the line (${errors} errors, first: ${firstError})`));
    }, 500);
    refill();
  });
}

export async function relay(ctx) {
  const { reps, relayWrites, relayMs } = ctx.mode;
  const procs = [];
  try {
    const a = await startBbyNode({ id: 'line-a', group: 'line' });
    procs.push(a);
    const b = await startBbyNode({ id: 'line-b', group: 'line', peers: [a.address] });
    procs.push(b);
    const c = await startBbyNode({ id: 'line-c', group: 'line', peers: [b.address] });
    procs.push(c);
    const r3 = await startBareServer({ id: 'bare-r3' });
    procs.push(r3);
    const r2 = await startBareServer({ id: 'bare-r2', forward: r3.url });
    procs.push(r2);
    const r1 = await startBareServer({ id: 'bare-r1', forward: r2.url });
    procs.push(r1);
    const bbyWatch = await observer(c.url);
    const bareWatch = await observer(r3.url);
    let watch;
    try {
      watch = await attachWatchers(ctx, [a]);
      return await withConns([a.url, r1.url], async ([aConn, r1Conn]) => {
        // The line is up once a write crosses it.
        const probe = async (client, watcher, what) =>
          waitFor(async () => (await replicate(client, watcher, { prefix: 'q', count: 1, durationMs: 1_000, window: 1 }).catch(() => ({ observed: 0 }))).observed === 1, { what, timeoutMs: 30_000, intervalMs: 200 });
        await probe(aConn, bbyWatch, 'a write on line-a to reach line-c');
        await probe(r1Conn, bareWatch, 'a message to cross the bare relays');
        const warm = { prefix: 'w', count: 500, durationMs: 2_000, window: 64 };
        await replicate(r1Conn, bareWatch, warm);
        await replicate(aConn, bbyWatch, warm);
        const bby = [];
        const base = [];
        // Each rep takes turns, slice by slice, between the bare relay and bby.
        const SLICE = 1_000;
        const slices = Math.max(1, Math.round(relayWrites / SLICE));
        const merge = (parts) => {
          const observed = parts.reduce((sum, r) => sum + r.observed, 0);
          const elapsedMs = parts.reduce((sum, r) => sum + r.elapsedMs, 0);
          const delays = new Float64Array(parts.reduce((sum, r) => sum + r.delays.length, 0));
          let at = 0;
          for (const r of parts) {
            delays.set(r.delays, at);
            at += r.delays.length;
          }
          return { observed, elapsedMs, rate: (observed * 1000) / elapsedMs, delays, errors: parts.reduce((sum, r) => sum + r.errors, 0), firstError: parts.find((r) => r.firstError)?.firstError };
        };
        for (let rep = 0; rep < reps; rep++) {
          const options = { count: SLICE, durationMs: relayMs / slices, window: 64 };
          const bareParts = [];
          const bbyParts = [];
          for (let slice = 0; slice < slices; slice++) {
            bareParts.push(await replicate(r1Conn, bareWatch, { ...options, prefix: 'x' }));
            bbyParts.push(await replicate(aConn, bbyWatch, { ...options, prefix: 'r' }));
          }
          const bareRun = merge(bareParts);
          const bbyRun = merge(bbyParts);
          base.push(bareRun);
          if (bbyRun.errors > 0) throw new Error(`${bbyRun.errors} error answers, first: ${bbyRun.firstError}`);
          bby.push(bbyRun);
          watch.check();
          ctx.progress(`relay rep ${rep + 1}: bby ${Math.round(bbyRun.rate)} writes/s (p50 ${p(bbyRun.delays, 0.5).toFixed(2)} ms), bare ${Math.round(bareRun.rate)} msg/s (p50 ${p(bareRun.delays, 0.5).toFixed(2)} ms)`);
        }
        const delay = (runs, q) => ms(runs.map((r) => p(r.delays, q)));
        const watchNote = await watch.note();
        return [
          {
            workload: 'replication A→B→C (writes on A applied on C), 64 in flight',
            unit: 'writes/s',
            bby: ms(bby.map((r) => r.rate)),
            baseline: ms(base.map((r) => r.rate)),
            baselineLabel: 'bare ws relay through 3 processes',
            ratio: pairedRatio(
              bby.map((r) => r.rate),
              base.map((r) => r.rate),
            ),
            target: '≥ 0.7×',
            targetRatio: 0.7,
            ...(watchNote === '' ? {} : { note: watchNote.replace(/^; /, '') }),
          },
          ...[0.5, 0.99].map((q) => ({
            workload: `replication delay A→C, p${Math.round(q * 100)}`,
            unit: 'ms',
            bby: delay(bby, q),
            baseline: delay(base, q),
            baselineLabel: 'bare relay',
            ratio: pairedRatio(
              bby.map((r) => p(r.delays, q)),
              base.map((r) => p(r.delays, q)),
            ),
            target: 'printed (ratio: bby/bare, lower is better)',
          })),
        ];
      });
    } finally {
      watch?.close();
      bbyWatch.close();
      bareWatch.close();
    }
  } finally {
    await stopAll(procs);
  }
}

// --- durable writes -----------------------------------------------------------------------

export async function durable(ctx) {
  const { reps, warmupMs, fsyncMs, fsyncClients } = ctx.mode;
  const procs = [];
  let watch;
  try {
    const no = await startBbyNode({ id: 'fsync-no', group: 'fsync', dataDir: true, fsync: 'no' });
    procs.push(no);
    const always = await startBbyNode({ id: 'fsync-always', group: 'fsync', dataDir: true, fsync: 'always' });
    procs.push(always);
    watch = await attachWatchers(ctx, [no, always]);
    const urls = (url) => Array.from({ length: fsyncClients }, () => url);
    return await withConns(urls(no.url), (noConns) =>
      withConns(urls(always.url), async (alwaysConns) => {
        await drive(noConns, { window: 1, durationMs: warmupMs, request: newSets('w') });
        await drive(alwaysConns, { window: 1, durationMs: warmupMs, request: newSets('w') });
        const runs = { no: [], always: [] };
        for (let rep = 0; rep < reps; rep++) {
          const merged = await interleave(
            {
              no: (durationMs) => drive(noConns, { window: 1, durationMs, request: newSets('n') }),
              always: (durationMs) => drive(alwaysConns, { window: 1, durationMs, request: newSets('a') }),
            },
            { totalMs: fsyncMs, sliceMs: 200 },
          );
          for (const [name, result] of Object.entries(merged)) {
            if (result.errors > 0) throw new Error(`fsync ${name}: ${result.errors} error answers, first: ${result.firstError}`);
            runs[name].push(result);
            watch.check();
            ctx.progress(`fsync ${name} rep ${rep + 1}: ${Math.round(result.rate)} sets/s, p50 ${p(result.latencies, 0.5).toFixed(2)} ms`);
          }
        }
        const lat = (results, q) => median(results.map((r) => p(r.latencies, q)));
        const watchNote = await watch.note();
        return [
          {
            workload: `durable set, ${fsyncClients} clients × 1 in flight, fsync "always"`,
            unit: 'sets/s',
            bby: ms(runs.always.map((r) => r.rate)),
            baseline: ms(runs.no.map((r) => r.rate)),
            baselineLabel: 'same with fsync "no"',
            ratio: pairedRatio(
              runs.always.map((r) => r.rate),
              runs.no.map((r) => r.rate),
            ),
            target: '≥ 0.5× (within 2×)',
            targetRatio: 0.5,
            note: `p50/p99 latency ${lat(runs.always, 0.5).toFixed(2)}/${lat(runs.always, 0.99).toFixed(2)} ms (fsync no: ${lat(runs.no, 0.5).toFixed(2)}/${lat(runs.no, 0.99).toFixed(2)} ms)${watchNote}`,
          },
        ];
      }),
    );
  } finally {
    watch?.close();
    await stopAll(procs);
  }
}

// --- deliveries per set in a full mesh ----------------------------------------------------

/** Links nodes[from..to) into a full mesh with the nodes before them (add-peer answers once connected). */
async function linkMesh(nodes, conns, from, to) {
  await Promise.all(
    conns.slice(from, to).map(async (conn, offset) => {
      const i = from + offset;
      for (let j = 0; j < i; j++) {
        const result = await conn.call({ type: 'add-peer', address: nodes[j].address });
        if (!result.connected) throw new Error(`${nodes[i].id} cannot connect to ${nodes[j].id}: ${result.error}`);
      }
    }),
  );
}

export async function mesh(ctx) {
  const { reps, meshSizes, meshSets } = ctx.mode;
  const largest = Math.max(...meshSizes);
  // The largest mesh's nodes are started once; each size links a few more of them in.
  const started = await Promise.allSettled(Array.from({ length: largest }, (_, i) => startBbyNode({ id: `mesh-${i}`, group: 'mesh' })));
  const nodes = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    return await withConns(
      nodes.map((node) => node.url),
      async (allConns) => {
        const rows = [];
        let linked = 0;
        for (const n of [...meshSizes].sort((a, b) => a - b)) {
          await linkMesh(nodes, allConns, linked, n);
          linked = n;
          const conns = allConns.slice(0, n);
          await waitFor(async () => (await Promise.all(conns.map((c) => c.call({ type: 'stats' })))).every((s) => s.peers === n - 1), { what: `a full mesh of ${n}`, timeoutMs: 30_000, intervalMs: 100 });
          const totals = async () => {
            const stats = await Promise.all(conns.map((c) => c.call({ type: 'stats' })));
            const sum = (field) => stats.reduce((total, s) => total + (s[field] ?? 0), 0);
            return { keys: stats.map((s) => s.keys), deliveries: sum('entriesApplied') + sum('duplicatesDropped'), catchUp: sum('catchUpEntriesReceived'), timedOut: sum('peersTimedOut'), antiEntropy: sum('antiEntropyRounds') };
          };
          // The new links' catch-ups stream the keys of the earlier sizes: let them end before counting.
          let settled;
          let quietPolls = 0;
          await waitFor(
            async () => {
              const now = await totals();
              quietPolls = settled !== undefined && now.deliveries === settled.deliveries ? quietPolls + 1 : 0;
              settled = now;
              return quietPolls >= 3;
            },
            { what: `the catch-ups of the mesh of ${n} to end`, timeoutMs: 60_000, intervalMs: 100 },
          );
          const perSet = [];
          const extra = { catchUp: 0, timedOut: 0, antiEntropy: 0 };
          for (let rep = 0; rep < reps; rep++) {
            const before = await totals();
            const expected = before.keys[0] + meshSets;
            const run = await drive([conns[0]], { window: 16, total: meshSets, request: newSets(`m${n}r${rep}`) });
            if (run.errors > 0) throw new Error(`${run.errors} error answers, first: ${run.firstError}`);
            let last;
            await waitFor(
              async () => {
                const now = await totals();
                const stable = last !== undefined && now.deliveries === last.deliveries && now.keys.every((k) => k >= expected);
                last = now;
                return stable;
              },
              { what: `every node of the mesh of ${n} to hold ${expected} keys`, timeoutMs: 60_000, intervalMs: 100 },
            );
            perSet.push((last.deliveries - before.deliveries) / meshSets);
            extra.catchUp += last.catchUp - before.catchUp;
            extra.timedOut += last.timedOut - before.timedOut;
            const rounds = last.antiEntropy - before.antiEntropy;
            extra.antiEntropy += rounds;
            ctx.progress(`mesh ${n} rep ${rep + 1}: ${perSet.at(-1).toFixed(2)} deliveries per set (${rounds} anti-entropy rounds started during the run)`);
          }
          const summary = ms(perSet);
          rows.push({
            workload: `deliveries per set, full mesh of ${n}`,
            unit: '',
            bby: summary,
            baseline: undefined,
            baselineLabel: `N−1 = ${n - 1}, (N−1)² = ${(n - 1) ** 2}`,
            target: `≤ ${(1.5 * (n - 1)).toFixed(1)} (1.5×(N−1))`,
            met: summary.median <= 1.5 * (n - 1),
            note: `during the runs: ${extra.antiEntropy} anti-entropy rounds started, ${extra.timedOut} peer links timed out, ${extra.catchUp} entries came again by catch-up (counted as deliveries)`,
          });
        }
        return rows;
      },
    );
  } finally {
    await stopAll(nodes);
  }
}

// --- bulk import, join catch-up and memory --------------------------------------------------

/** Writes `count` entries as JSON lines, keys `prefix` + counter from `from`. */
async function writeImportFile(path, from, count) {
  const out = createWriteStream(path);
  let chunk = '';
  for (let i = from; i < from + count; i++) {
    chunk += `{"key":"${makeKey('k', i)}","value":"${makeValue(i)}"}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

/** Wall-clock time (ms since epoch) of a bby-node log line's `HH:MM:SS.mmm` (UTC). */
function logTime(hms) {
  const now = new Date();
  const [h, m, rest] = hms.split(':');
  const [s, milli] = rest.split('.');
  let t = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), Number(h), Number(m), Number(s), Number(milli));
  if (t > Date.now() + 3_600_000) t -= 86_400_000;
  return t;
}

export async function joinCatchUp(ctx) {
  const { joinKeys: n, joinReps, reps } = ctx.mode;
  // The targets are for 1,000,000 keys: with fewer (the quick run), starting processes and connecting weigh too much to judge them.
  const judged = n >= 1_000_000;
  const dir = await tempDir('join');
  const rows = [];
  const procs = [];
  try {
    // Load the holder with `bby import`, in `reps` files of about n/reps keys each.
    const holder = await startBbyNode({ id: 'holder', group: 'join' });
    procs.push(holder);
    await sleep(200);
    const emptyRss = holder.proc.memory().rss;
    const parts = Array.from({ length: reps }, (_, i) => Math.floor((n * (i + 1)) / reps) - Math.floor((n * i) / reps));
    const files = [];
    let from = 0;
    for (const [i, count] of parts.entries()) {
      const path = join(dir, `import-${i}.jsonl`);
      await writeImportFile(path, from, count);
      files.push({ path, count });
      from += count;
    }
    const importRates = [];
    const holderCpuBefore = holder.proc.cpuMs();
    for (const [i, { path, count }] of files.entries()) {
      const result = await runBby([holder.configPath, 'import', path], 120_000 + count / 2);
      const expected = `stored ${count}, identical 0, refused 0\n`;
      if (result.code !== 0 || result.stdout !== expected) throw new Error(`bby import exited ${result.code ?? result.signal}: ${result.stdout}${result.stderr}`);
      importRates.push((count * 1000) / result.ms);
      ctx.progress(`import ${i + 1}/${files.length}: ${count} keys in ${Math.round(result.ms)} ms`);
    }
    rows.push({
      workload: `bby import (CLI process, ${parts[0].toLocaleString('en-US')} keys per run)`,
      unit: 'keys/s',
      bby: ms(importRates),
      target: '≥ 200,000 keys/s',
      met: judged ? median(importRates) >= 200_000 : undefined,
      note: `the node spent ${(((holder.proc.cpuMs() - holderCpuBefore) * 1000) / n).toFixed(1)} µs of CPU per imported key; each run includes starting the CLI process (about 0.2 s on this machine)${judged ? '' : '; target judged on 1,000,000 keys (full run)'}`,
    });

    // The same keys in one file, into a new node each run: a bulk load of all n keys, where starting the CLI weighs less.
    const wholePath = join(dir, 'import-all.jsonl');
    await writeImportFile(wholePath, 0, n);
    const wholeRates = [];
    const wholeCpu = [];
    for (let rep = 0; rep < joinReps; rep++) {
      const importer = await startBbyNode({ id: `importer${rep}`, group: 'join' });
      procs.push(importer);
      try {
        const cpuBefore = importer.proc.cpuMs();
        const result = await runBby([importer.configPath, 'import', wholePath], 120_000 + n / 2);
        if (result.code !== 0 || result.stdout !== `stored ${n}, identical 0, refused 0\n`) throw new Error(`bby import exited ${result.code ?? result.signal}: ${result.stdout}${result.stderr}`);
        wholeRates.push((n * 1000) / result.ms);
        wholeCpu.push(((importer.proc.cpuMs() - cpuBefore) * 1000) / n);
        ctx.progress(`import of one file, run ${rep + 1}: ${n} keys in ${Math.round(result.ms)} ms`);
      } finally {
        await importer.proc.stop();
      }
    }
    rows.push({
      workload: `bby import (CLI process, one file of ${n.toLocaleString('en-US')} keys into an empty node)`,
      unit: 'keys/s',
      bby: ms(wholeRates),
      target: '≥ 200,000 keys/s',
      met: judged ? median(wholeRates) >= 200_000 : undefined,
      note: `the node spent ${median(wholeCpu).toFixed(1)} µs of CPU per imported key${judged ? '' : '; target judged on 1,000,000 keys (full run)'}`,
    });
    const holderConn = await Conn.open(holder.url);
    try {
      const stats = await holderConn.call({ type: 'stats' });
      if (stats.keys !== n) throw new Error(`the holder has ${stats.keys} keys after the import, expected ${n}`);
    } finally {
      holderConn.close();
    }
    await sleep(500);
    const rssSamples = [];
    for (let i = 0; i < 3; i++) {
      rssSamples.push(holder.proc.memory().rss);
      await sleep(200);
    }
    const raw = n * (KEY_BYTES + VALUE_BYTES);
    const rss = ms(rssSamples);
    rows.push({
      workload: `memory: RSS of a node holding ${n.toLocaleString('en-US')} keys (loaded by import)`,
      unit: 'MB',
      bby: ms(rssSamples.map((b) => b / 1e6)),
      baseline: summarize([raw / 1e6]),
      baselineLabel: 'raw bytes of keys and values',
      ratio: summarize(rssSamples.map((b) => b / raw)),
      target: '≤ 2.5× raw (ratio: ÷ raw bytes)',
      met: judged ? rss.median / raw <= 2.5 : undefined,
      note: `empty node ${(emptyRss / 1e6).toFixed(0)} MB; growth ${((rss.median - emptyRss) / raw).toFixed(2)}× raw${judged ? '' : '; target judged on 1,000,000 keys (full run)'}`,
    });

    // Join catch-up, against a bare one-way stream of the same entries.
    const receiver = await startBareServer({ id: 'bare-sink' });
    procs.push(receiver);
    const sender = await startBareServer({ id: 'bare-source' });
    procs.push(sender);
    const catchUp = [];
    const bareRates = [];
    const peaks = [];
    const afterRss = [];
    const cpuPerKey = { joiner: [], holder: [] };
    await withConns([sender.url, receiver.url], async ([senderConn, receiverConn]) => {
      await senderConn.call({ type: 'prepare', count: n }, 120_000);
      for (let rep = 0; rep < joinReps; rep++) {
        // Baseline: the same number of entries streamed between two bare processes.
        const before = (await receiverConn.call({ type: 'stats' })).entriesReceived;
        const t0 = performance.now();
        await senderConn.call({ type: 'stream', to: receiver.url }, 120_000);
        await waitFor(async () => (await receiverConn.call({ type: 'stats' })).entriesReceived >= before + n, { what: 'the bare stream', timeoutMs: 60_000 + n / 5, intervalMs: 20 });
        bareRates.push((n * 1000) / (performance.now() - t0));

        const holderCpuBefore = holder.proc.cpuMs();
        const joiner = await startBbyNode({ id: `joiner${rep}`, group: 'join', peers: [holder.address] });
        procs.push(joiner);
        try {
          const conn = await Conn.open(joiner.url);
          try {
            const { match } = await joiner.proc.waitForOutput(/^(\d\d:\d\d:\d\d\.\d{3}) info connected to peer holder/m, 30_000);
            const connectedAt = logTime(match[1]);
            const cpuAtConnect = { joiner: joiner.proc.cpuMs(), holder: holderCpuBefore };
            await waitFor(async () => (await conn.call({ type: 'stats' }, 60_000)).keys >= n, { what: `joiner${rep} to hold ${n} keys`, timeoutMs: 60_000 + n / 5, intervalMs: 20 });
            const seconds = (Date.now() - connectedAt) / 1000;
            cpuPerKey.joiner.push(((joiner.proc.cpuMs() - cpuAtConnect.joiner) * 1000) / n);
            cpuPerKey.holder.push(((holder.proc.cpuMs() - cpuAtConnect.holder) * 1000) / n);
            catchUp.push(n / seconds);
            const memory = joiner.proc.memory();
            peaks.push(memory.hwm);
            afterRss.push(memory.rss);
            ctx.progress(`join rep ${rep + 1}: ${n} keys in ${seconds.toFixed(2)} s (${Math.round(n / seconds)} keys/s), peak RSS ${(memory.hwm / 1e6).toFixed(0)} MB; bare stream ${Math.round(bareRates.at(-1))} entries/s`);
          } finally {
            conn.close();
          }
        } finally {
          await joiner.proc.stop();
        }
      }
    });
    rows.push({
      workload: `join catch-up: new node, peer holds ${n.toLocaleString('en-US')} keys`,
      unit: 'keys/s',
      bby: ms(catchUp),
      baseline: ms(bareRates),
      baselineLabel: 'bare ws one-way stream, same entries',
      ratio: pairedRatio(catchUp, bareRates),
      target: '≥ 250,000 keys/s',
      met: judged ? median(catchUp) >= 250_000 : undefined,
      note: `CPU per key: joiner ${median(cpuPerKey.joiner).toFixed(1)} µs, holder ${median(cpuPerKey.holder).toFixed(1)} µs (the bare stream has no store: the ratio compares with the transport alone)${judged ? '' : '; target judged on 1,000,000 keys (full run)'}`,
    });
    rows.push({
      workload: 'join catch-up: peak RSS of the joiner (VmHWM)',
      unit: 'MB',
      bby: ms(peaks.map((b) => b / 1e6)),
      baseline: summarize([raw / 1e6]),
      baselineLabel: 'raw bytes of keys and values',
      ratio: summarize(peaks.map((b) => b / raw)),
      target: 'printed (ratio: ÷ raw bytes)',
      note: `RSS right after catch-up ${(median(afterRss) / 1e6).toFixed(0)} MB; holder peak ${((holder.proc.memory().hwm ?? NaN) / 1e6).toFixed(0)} MB`,
    });
    return rows;
  } finally {
    await stopAll(procs);
  }
}

/** Every workload, in the order they run. */
export const WORKLOADS = { rr: roundTrip, pipelined, relay, durable, mesh, join: joinCatchUp };
