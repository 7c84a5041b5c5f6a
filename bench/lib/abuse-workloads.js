// The workloads of `npm run abuse` (issue 12, "Bounded under abuse"). Each
// preloads a fresh node (`prepare`), then `start`s its abusers, which run
// until `stop()`; `stop()` ends every abusive connection (AbuseTally.finish)
// and returns what the abusers did. Every connection is opened by openSocket
// (abuse-wire.js) and tracked by the workload's AbuseTally. With a node that
// has a secret (`node.secret`), the preload always authenticates, and the
// abusers present it when `settings.secretMode` is 'member' and not when it is
// 'outsider' (`abuserSecret`).
import { readFileSync } from 'node:fs';
import { MAX_VALUE_BYTES } from '@bby/core';
import { ALL_BUCKETS, MESSAGES, openSocket, Requester } from './abuse-wire.js';

/** A preload request may take this long (a node busy storing 1 MiB), in milliseconds. */
const PRELOAD_TIMEOUT_MS = 60_000;

/** `set-many` requests in flight during a preload. */
const PRELOAD_WINDOW = 4;

/** A `set-many` frame stays under the node's 1 MiB limit with room for the JSON around the entries, in characters. */
const PRELOAD_FRAME_CHARS = 900 * 1024;

/** The longest value a node takes: 256 KiB as JSON, quotes included. */
const BIG_VALUE_CHARS = MAX_VALUE_BYTES - 2;

/** An abuser writes while its socket holds less than this unsent, in bytes, so that the script's own memory stays bounded. */
const ABUSER_UNSENT_BYTES = 64 * 1024;

/**
 * A pumping abuser writes at most PUMP_FRAMES frames every PUMP_INTERVAL_MS:
 * 1,600 `get`s of 256 KiB a second per reader, 32,000 for 20, where a node
 * answered about 100 a second to a client that reads, on the 2-vCPU
 * development machine. The
 * node's receive buffers never run dry, and the CPU the script leaves is the
 * node's (writing as fast as `ws` can took as much CPU as the node itself).
 */
const PUMP_FRAMES = 16;
const PUMP_INTERVAL_MS = 10;

/** A 256 KiB ASCII value, different for each `n` (cut from one long pattern). */
function bigValue(n) {
  const head = `${n}:`;
  return head + PATTERN.slice(n % 997, n % 997 + BIG_VALUE_CHARS - head.length);
}
const PATTERN = (() => {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let x = 2654435761;
  const chars = new Array(BIG_VALUE_CHARS + 1024);
  for (let i = 0; i < chars.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    chars[i] = alphabet[(x >>> 16) % alphabet.length];
  }
  return chars.join('');
})();

/** A key of 16 characters: a prefix and a zero-padded counter. */
const key16 = (prefix, n) => `${prefix}${String(n).padStart(16 - prefix.length, '0')}`;

/** The secret the abusers present: the node's for members, none for outsiders and for a node without one. */
export function abuserSecret(node, settings) {
  return settings.secretMode === 'member' ? node.secret : undefined;
}

/** Stores `count` entries made by `entry(i)` with pipelined `set-many` requests (as a member); returns the bytes of keys and values sent. */
async function preload(node, count, entry) {
  const requester = new Requester(await openSocket(node.url, { role: 'client', secret: node.secret, timeoutMs: PRELOAD_TIMEOUT_MS }));
  let bytes = 0;
  try {
    let next = 0;
    const batch = () => {
      const entries = [];
      let chars = 0;
      while (next < count && entries.length < 10_000) {
        const e = entry(next);
        const size = e.key.length + e.value.length + 24;
        if (entries.length > 0 && chars + size > PRELOAD_FRAME_CHARS) break;
        entries.push(e);
        chars += size;
        bytes += e.key.length + e.value.length;
        next++;
      }
      return entries;
    };
    const lane = async () => {
      while (next < count) {
        const entries = batch();
        const result = await requester.request((id) => MESSAGES.setMany(id, entries), PRELOAD_TIMEOUT_MS);
        if (!Array.isArray(result) || result.length !== entries.length) throw new Error(`set-many answered ${JSON.stringify(result).slice(0, 100)}`);
      }
    };
    await Promise.all(Array.from({ length: PRELOAD_WINDOW }, lane));
    return bytes;
  } finally {
    requester.close();
  }
}

/**
 * Writes `text` on `ws` (PUMP_FRAMES every PUMP_INTERVAL_MS, while less than
 * ABUSER_UNSENT_BYTES wait in its socket) until `isStopped()`; counts frames
 * in `counter.sent`.
 */
function pump(ws, text, counter, isStopped) {
  const timer = setInterval(() => {
    if (isStopped() || ws.readyState !== ws.OPEN) {
      clearInterval(timer);
      return;
    }
    for (let frames = 0; frames < PUMP_FRAMES && ws.bufferedAmount < ABUSER_UNSENT_BYTES; frames++) {
      ws.send(text);
      counter.sent++;
    }
  }, PUMP_INTERVAL_MS);
}

/** Runs `open` for `count` connections, `concurrency` at a time, until `isStopped()`. */
async function openMany(count, concurrency, isStopped, open) {
  let next = 0;
  const lane = async () => {
    while (next < count && !isStopped()) {
      next++;
      await open();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

// --- 1. slow readers ------------------------------------------------------------------------

const SLOW_READERS = 20;

export const slowReader = {
  name: 'slow-reader',
  title: `${SLOW_READERS} clients that stop reading, each sending get "big" (256 KiB) ${((PUMP_FRAMES * 1000) / PUMP_INTERVAL_MS).toLocaleString('en-US')} times a second`,
  async prepare(node) {
    await preload(node, 1, () => ({ key: 'big', value: bigValue(0) }));
    return `"big" holds ${BIG_VALUE_CHARS.toLocaleString('en-US')} characters`;
  },
  start(node, settings, tally) {
    let stopped = false;
    const counter = { sent: 0 };
    const text = MESSAGES.get(1, 'big');
    const secret = abuserSecret(node, settings);
    // All connect first, then all start at once: the first ones would otherwise keep the node too busy to let the others in.
    const opening = Promise.all(Array.from({ length: SLOW_READERS }, () => tally.add('slow reader', () => openSocket(node.url, { role: 'client', secret, paused: true })))).then((sockets) => {
      for (const ws of sockets) if (ws !== undefined) pump(ws, text, counter, () => stopped);
    });
    return {
      async stop() {
        stopped = true;
        await tally.finish();
        await opening;
        return { requestsSent: counter.sent, note: `${counter.sent.toLocaleString('en-US')} gets of "big" written (${((counter.sent * BIG_VALUE_CHARS) / 1e9).toFixed(1)} GB of answers asked for)` };
      },
    };
  },
};

// --- 2. repair flood --------------------------------------------------------------------------

/** 400 values of 256 KiB: about 100 MiB in the store. */
const REPAIR_VALUES = 400;
/** `bucket-request`s per burst, and the time between bursts. */
const REPAIR_BURST = 10;
const REPAIR_BURST_INTERVAL_MS = 1_000;

export const repairFlood = {
  name: 'repair-flood',
  title: `a fake peer (hello as "evil") sending ${REPAIR_BURST} × bucket-request [0..255] every ${REPAIR_BURST_INTERVAL_MS / 1000} s to a node holding ~100 MiB`,
  async prepare(node) {
    const bytes = await preload(node, REPAIR_VALUES, (i) => ({ key: key16('r', i), value: bigValue(i) }));
    return `${REPAIR_VALUES} values, ${(bytes / 1e6).toFixed(0)} MB of keys and values`;
  },
  start(node, settings, tally) {
    let stopped = false;
    let bursts = 0;
    let received = 0;
    let frames = 0;
    let timer;
    const request = MESSAGES.bucketRequest(ALL_BUCKETS);
    const opening = tally.add('fake peer', () => openSocket(node.url, { role: 'peer', nodeId: 'evil', secret: abuserSecret(node, settings) })).then((ws) => {
      if (ws === undefined || stopped) return;
      // It reads (and drops) whatever the node sends: the amplification alone, not a slow reader.
      ws.on('message', (data) => {
        received += data.length;
        frames++;
      });
      const burst = () => {
        if (stopped || ws.readyState !== ws.OPEN) return;
        for (let i = 0; i < REPAIR_BURST; i++) ws.send(request);
        bursts++;
      };
      burst();
      timer = setInterval(burst, REPAIR_BURST_INTERVAL_MS);
    });
    return {
      async stop() {
        stopped = true;
        clearInterval(timer);
        await tally.finish();
        await opening;
        return {
          bursts,
          bytesReceived: received,
          framesReceived: frames,
          note: `${bursts} bursts (${bursts * REPAIR_BURST} bucket-requests, ${((bursts * REPAIR_BURST * request.length) / 1024).toFixed(0)} KiB) brought the fake peer ${(received / 1e6).toFixed(0)} MB in ${frames.toLocaleString('en-US')} frames`,
        };
      },
    };
  },
};

// --- 3. keys as a CPU amplifier ---------------------------------------------------------------

/** Pairs of (set a new key, keys limit 1) kept in flight. */
const AMPLIFIER_PAIRS = 30;

export const keysAmplifier = {
  name: 'keys-amplifier',
  title: `a client pipelining ${AMPLIFIER_PAIRS} pairs of (set a new key, keys with limit 1) on a node preloaded with many keys`,
  async prepare(node, settings) {
    await preload(node, settings.keyCount, (i) => ({ key: key16('k', i), value: key16('v', i) }));
    return `${settings.keyCount.toLocaleString('en-US')} keys of 16 bytes with 16-byte values`;
  },
  start(node, settings, tally) {
    let stopped = false;
    let sent = 0;
    let answered = 0;
    let serial = 0;
    const opening = tally.add('amplifier', () => openSocket(node.url, { role: 'client', secret: abuserSecret(node, settings) })).then((ws) => {
      if (ws === undefined || stopped) return;
      const refill = () => {
        if (stopped || ws.readyState !== ws.OPEN) return;
        while (sent - answered < 2 * AMPLIFIER_PAIRS) {
          const n = serial++;
          ws.send(MESSAGES.set(`a${n}`, key16('amp', n), 'x'));
          ws.send(MESSAGES.keys(`b${n}`, 1));
          sent += 2;
        }
      };
      ws.on('message', (data) => {
        // The challenge of a node with a secret answers no request.
        if (data.toString('latin1', 0, 20).startsWith('{"type":"challenge"')) return;
        answered++;
        refill();
      });
      refill();
    });
    return {
      async stop() {
        stopped = true;
        await tally.finish();
        await opening;
        return { pairsSent: sent / 2, answers: answered, note: `${(sent / 2).toLocaleString('en-US')} pairs sent, ${answered.toLocaleString('en-US')} answers received` };
      },
    };
  },
};

// --- 4. connection flood ----------------------------------------------------------------------

const FLOOD = { idleWebSockets: 5_000, partialUpgrades: 3_000, silentTcp: 1_000 };
/** Connections being opened at once, per kind. */
const FLOOD_CONCURRENCY = 50;
/** File descriptors kept free for everything else (the well-behaved client, the node's files, the preload), per process. */
const FD_RESERVE = 200;

/** The soft limit on open files of this process (inherited by the node), from /proc; undefined when unknown. */
export function openFilesLimit() {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (match === null) return undefined;
    return match[1] === 'unlimited' ? Infinity : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** The flood's counts, scaled down to fit the open files limit (both ends of every connection are on this machine). */
export function floodCounts() {
  const wanted = FLOOD.idleWebSockets + FLOOD.partialUpgrades + FLOOD.silentTcp;
  const limit = openFilesLimit() ?? Infinity;
  const room = limit - FD_RESERVE;
  if (room >= wanted) return { ...FLOOD, limit, scaled: false };
  const factor = Math.max(0, room) / wanted;
  return { idleWebSockets: Math.floor(FLOOD.idleWebSockets * factor), partialUpgrades: Math.floor(FLOOD.partialUpgrades * factor), silentTcp: Math.floor(FLOOD.silentTcp * factor), limit, scaled: true };
}

export const connectionFlood = {
  name: 'connection-flood',
  /** Opening 9,000 connections takes most of 10 s on 2 vCPUs: 1.5× the phase leaves them held together for a while. */
  phaseFactor: 1.5,
  get title() {
    const c = floodCounts();
    return `${c.idleWebSockets.toLocaleString('en-US')} idle WebSockets + ${c.partialUpgrades.toLocaleString('en-US')} half-sent HTTP upgrades + ${c.silentTcp.toLocaleString('en-US')} silent TCP connections`;
  },
  async prepare(node) {
    await preload(node, 1, () => ({ key: 'small', value: 'x' }));
    const c = floodCounts();
    return c.scaled ? `open files limit ${c.limit}: the flood is scaled down to fit (raise it with ulimit -n)` : `open files limit ${c.limit}`;
  },
  start(node, settings, tally) {
    let stopped = false;
    const isStopped = () => stopped;
    const secret = abuserSecret(node, settings);
    const counts = floodCounts();
    const host = new URL(node.url).host;
    const opening = Promise.all([
      openMany(counts.idleWebSockets, FLOOD_CONCURRENCY, isStopped, () => tally.add('idleWebSockets', () => openSocket(node.url, { role: 'client', secret }))),
      openMany(counts.partialUpgrades, FLOOD_CONCURRENCY, isStopped, () => tally.add('partialUpgrades', () => openSocket(node.url, { role: 'tcp', send: MESSAGES.partialUpgrade(host) }))),
      openMany(counts.silentTcp, FLOOD_CONCURRENCY, isStopped, () => tally.add('silentTcp', () => openSocket(node.url, { role: 'tcp' }))),
    ]);
    const started = performance.now();
    let allOpenAfterMs;
    void opening.then(() => {
      if (!stopped) allOpenAfterMs = performance.now() - started;
    });
    return {
      async stop() {
        stopped = true;
        const heldAtEnd = tally.open;
        await tally.finish();
        await opening;
        const perKind = {};
        for (const kind of Object.keys(FLOOD)) perKind[kind] = { wanted: counts[kind], ...(tally.kinds.get(kind) ?? { opened: 0, refused: 0, closedByNode: 0 }) };
        const text = Object.entries(perKind)
          .map(([kind, c]) => `${kind} ${c.opened.toLocaleString('en-US')}/${c.wanted.toLocaleString('en-US')} opened${c.refused > 0 ? `, ${c.refused.toLocaleString('en-US')} refused` : ''}${c.closedByNode > 0 ? `, ${c.closedByNode.toLocaleString('en-US')} closed by the node` : ''}`)
          .join('; ');
        return {
          perKind,
          heldAtEnd,
          allOpenAfterMs,
          note: `${text}; ${heldAtEnd.toLocaleString('en-US')} still open at the end${allOpenAfterMs === undefined ? ' (the script had not opened them all by then)' : `; all opened within ${(allOpenAfterMs / 1000).toFixed(1)} s`}`,
        };
      },
    };
  },
};

/** Every workload, in the order they run. */
export const ABUSE_WORKLOADS = Object.fromEntries([slowReader, repairFlood, keysAmplifier, connectionFlood].map((w) => [w.name, w]));
