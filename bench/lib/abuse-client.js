// The well-behaved client of `npm run abuse`: one request at a time on one
// connection (a `set` of a new key, then a `get` of it, and again), each with
// a timeout; and, once a second, a new connection that asks for one key (can
// a newcomer still get in?). On a node with a secret it is a member: every
// connection authenticates first. It runs in a worker thread, so that the
// abusers' work in the main thread does not delay its clock: what it
// measures is the node.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { MESSAGES, openSocket, RefusedError, Requester, RequestTimeout } from './abuse-wire.js';

/** A request not answered within this time counts as timed out (its real latency is kept if the answer comes later in the phase), in milliseconds. */
export const REQUEST_TIMEOUT_MS = 2_000;

/** How often a new connection is tried during a phase, in milliseconds. */
export const PROBE_INTERVAL_MS = 1_000;

/** A 100-byte value, as the bench writes. */
const VALUE = 'v'.repeat(100);

/** The client, seen from the main thread. */
export class WellBehavedClient {
  /** Starts the worker and connects it to `url` (before any abuse, as a client already connected would be), with `secret` if the node has one. */
  static async start(url, { secret } = {}) {
    const worker = new Worker(new URL(import.meta.url), { workerData: { url, secret } });
    const client = new WellBehavedClient(worker);
    await client.#next();
    return client;
  }

  constructor(worker) {
    this.worker = worker;
    this.waiters = [];
    worker.on('message', (message) => this.waiters.shift()?.resolve(message));
    worker.on('error', (error) => this.waiters.shift()?.reject(error));
    worker.on('exit', (code) => {
      for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`the well-behaved client's worker exited (code ${code})`));
    });
  }

  #next() {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject })).then((message) => {
      if (message.type === 'error') throw new Error(`well-behaved client: ${message.message}`);
      return message;
    });
  }

  /**
   * Runs round trips for `durationMs`; resolves with `{ latencies (ms; Infinity
   * for an answer that never came), ok, timedOut, failed, firstFailure,
   * probes: { tried, ok, latencies } }`.
   */
  async run(durationMs, tag) {
    const answer = this.#next();
    this.worker.postMessage({ durationMs, tag });
    return (await answer).result;
  }

  async stop() {
    await this.worker.terminate();
  }
}

// --- inside the worker ---------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function connect(url, secret) {
  return new Requester(await openSocket(url, { role: 'client', secret, timeoutMs: REQUEST_TIMEOUT_MS }));
}

/** One new connection, one `get`: `{ ms }`, the time from connecting to the answer, or `{ failure }`, why not (an HTTP status, a close, "timeout"). */
async function probe(url, secret, key) {
  const started = performance.now();
  let requester;
  try {
    requester = await connect(url, secret);
    await requester.request((id) => MESSAGES.get(id, key), Math.max(1, REQUEST_TIMEOUT_MS - (performance.now() - started)));
    return { ms: performance.now() - started };
  } catch (error) {
    if (error instanceof RefusedError) return { failure: error.reason.replace(/ \(.*\)$/, '') };
    if (error instanceof RequestTimeout) return { failure: 'timeout' };
    return { failure: error.message };
  } finally {
    requester?.close();
  }
}

async function runPhase(state, { durationMs, tag }) {
  const latencies = [];
  let ok = 0;
  let timedOut = 0;
  let failed = 0;
  let firstFailure;
  const probes = { tried: 0, ok: 0, latencies: [], failedBy: {} };
  const probing = [];
  const probeTimer = setInterval(() => {
    probes.tried++;
    probing.push(
      probe(state.url, state.secret, `wb-${tag}-0`).then(({ ms, failure }) => {
        if (failure !== undefined) {
          probes.failedBy[failure] = (probes.failedBy[failure] ?? 0) + 1;
          return;
        }
        probes.ok++;
        probes.latencies.push(ms);
      }),
    );
  }, PROBE_INTERVAL_MS);
  let lateAnswers = 0;
  const onLate = (ms) => {
    lateAnswers++;
    latencies.push(ms);
  };
  const deadline = performance.now() + durationMs;
  for (let i = 0; performance.now() < deadline; i++) {
    if (state.requester === undefined || state.requester.closed) {
      try {
        state.requester = await connect(state.url, state.secret);
      } catch (error) {
        failed++;
        firstFailure ??= `reconnecting: ${error.message}`;
        await sleep(100);
        continue;
      }
    }
    const requester = state.requester;
    requester.onLate = onLate;
    const key = `wb-${tag}-${i >> 1}`;
    const make = i % 2 === 0 ? (id) => MESSAGES.set(id, key, VALUE) : (id) => MESSAGES.get(id, key);
    const started = performance.now();
    try {
      await requester.request(make, REQUEST_TIMEOUT_MS);
      latencies.push(performance.now() - started);
      ok++;
    } catch (error) {
      if (error instanceof RequestTimeout) timedOut++;
      else {
        failed++;
        firstFailure ??= error.message;
      }
    }
  }
  clearInterval(probeTimer);
  await Promise.all(probing);
  // Answers still missing at the end of the phase never came (or their connection was lost): they count as infinitely slow.
  for (let i = lateAnswers; i < timedOut; i++) latencies.push(Infinity);
  if (state.requester !== undefined) {
    state.requester.late.clear();
    state.requester.onLate = undefined;
  }
  return { latencies, ok, timedOut, failed, firstFailure, probes };
}

if (!isMainThread) {
  const state = { url: workerData.url, secret: workerData.secret, requester: undefined };
  try {
    state.requester = await connect(state.url, state.secret);
    parentPort.postMessage({ type: 'ready' });
  } catch (error) {
    parentPort.postMessage({ type: 'error', message: error.message });
  }
  parentPort.on('message', (phase) => {
    runPhase(state, phase).then(
      (result) => parentPort.postMessage({ type: 'result', result }),
      (error) => parentPort.postMessage({ type: 'error', message: error.stack ?? String(error) }),
    );
  });
}
