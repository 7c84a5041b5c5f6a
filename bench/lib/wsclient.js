// The load generator's client: @bby/client's BbyClient (built by `tsc -b`,
// which npm run bench runs first), the same client as `bby`'s. The load
// itself goes as frames built as text (`send`, `sendMany` corked into one
// write), whose replies reach `onText` unparsed and are checked by their
// first characters (both bby and the bare server answer
// `{"type":"reply",...`), so the client does the same work whatever server
// it talks to; control requests (`call`) are numbered by the client and
// matched by id.
import { BbyClient, NodeError } from '@bby/client';
import { securityOf } from './procs.js';

export class Conn {
  /**
   * Opens a connection; rejects after `timeoutMs`. To a bby node of a run with
   * `--security`, it authenticates first (as a client, or as the peer
   * `peerId`), over wss:// with the run's CA for 'tls'; the handshake is per
   * connection, outside what the workloads time.
   */
  static async open(url, timeoutMs = 10_000, { peerId } = {}) {
    const security = securityOf(url);
    const target = {
      url,
      ...(security === undefined ? {} : { secret: security.secret }),
      ...(security?.ca === undefined ? {} : { tls: { ca: security.ca, rejectUnauthorized: true } }),
      ...(peerId === undefined ? {} : { peerId }),
    };
    try {
      return new Conn(url, await BbyClient.connect(target, timeoutMs));
    } catch (error) {
      throw new Error(`cannot connect to ${url}: ${error.message}`);
    }
  }

  constructor(url, client) {
    this.url = url;
    this.client = client;
    this.closed = false;
    client.onClose(() => (this.closed = true));
  }

  /** Gets the text of every frame that is not the answer to a `call` (undefined: none). */
  set onText(listener) {
    this.client.onFrame(listener);
  }

  /** Calls `listener(code)` once the connection closes. */
  onClose(listener) {
    this.client.onClose((_reason, code) => listener(code));
  }

  /** Sends a frame; numbered by the caller, answered to `onText`. */
  send(text) {
    this.client.send(text);
  }

  /** Sends several frames in one write. */
  sendMany(texts) {
    this.client.cork();
    for (const text of texts) this.client.send(text);
  }

  /** A control request (stats, keys, peers), never while frames of `send` are in flight; resolves with its result. */
  async call(body, timeoutMs = 30_000) {
    try {
      return (await this.client.requestReply(body, timeoutMs)).result;
    } catch (error) {
      throw error instanceof NodeError ? new Error(`${error.code}: ${error.message}`) : new Error(`${body.type} to ${this.url}: ${error.message}`);
    }
  }

  close() {
    this.client.close();
    this.closed = true;
  }
}

/** A 16-byte key: a prefix and a counter, zero-padded. */
export function makeKey(prefix, i) {
  const n = String(i);
  return `${prefix}${'0'.repeat(Math.max(0, 16 - prefix.length - n.length))}${n}`.slice(-16);
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
// Values are cut from a fixed pseudo-random pool: cheap to make, different from key to key.
const POOL = (() => {
  let x = 2654435761;
  let text = '';
  for (let i = 0; i < 8192; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    text += ALPHABET[(x >>> 16) % ALPHABET.length];
  }
  return text;
})();

/** A 100-byte ASCII value that differs from key to key. */
export function makeValue(i, bytes = 100) {
  const head = `v${i}-`;
  const offset = (i * 7919) % (POOL.length - bytes);
  return head + POOL.slice(offset, offset + bytes - head.length);
}

export const setText = (id, key, value) => `{"type":"set","id":${id},"key":"${key}","value":"${value}"}`;
export const getText = (id, key) => `{"type":"get","id":${id},"key":"${key}"}`;

const REPLY_PREFIX = '{"type":"reply"';

/**
 * Drives connections in a closed loop: each keeps `window` requests in
 * flight, until `total` requests are answered or `durationMs` has passed.
 * `request(seq)` returns the text of request number seq (1-based, unique
 * across connections). Returns the count, the elapsed time and every
 * latency in milliseconds.
 */
export function drive(conns, { window, total = Infinity, durationMs = Infinity, request }) {
  return new Promise((resolve, reject) => {
    let issued = 0;
    let answered = 0;
    let errors = 0;
    let firstError;
    const latencyCap = Math.min(Number.isFinite(total) ? total : 2_000_000, 2_000_000);
    const latencies = new Float64Array(latencyCap);
    const started = performance.now();
    const deadline = started + durationMs;
    let finished = false;
    const canIssue = () => issued < total && performance.now() < deadline;
    const states = conns.map((conn) => ({ conn, sentAt: [], head: 0, inFlight: 0, refillQueued: false }));
    const finish = () => {
      if (finished) return;
      finished = true;
      for (const s of states) s.conn.onText = undefined;
      clearTimeout(watchdog);
      const elapsedMs = performance.now() - started;
      resolve({ ops: answered, elapsedMs, rate: (answered * 1000) / elapsedMs, latencies: latencies.subarray(0, Math.min(answered, latencyCap)), errors, firstError });
    };
    const maybeDone = () => {
      if (!canIssue() && states.every((s) => s.inFlight === 0)) finish();
    };
    const texts = [];
    const refill = (s) => {
      s.refillQueued = false;
      if (finished) return;
      texts.length = 0;
      while (s.inFlight < window && canIssue()) {
        issued++;
        s.inFlight++;
        s.sentAt.push(performance.now());
        texts.push(request(issued));
      }
      if (texts.length === 1) s.conn.send(texts[0]);
      else if (texts.length > 1) s.conn.sendMany(texts);
      maybeDone();
    };
    for (const s of states) {
      s.conn.onText = (text) => {
        const now = performance.now();
        const sentAt = s.sentAt[s.head++];
        if (s.head > 4096) {
          s.sentAt.splice(0, s.head);
          s.head = 0;
        }
        s.inFlight--;
        if (answered < latencyCap) latencies[answered] = now - sentAt;
        answered++;
        if (!text.startsWith(REPLY_PREFIX)) {
          errors++;
          firstError ??= text.slice(0, 300);
        }
        if (window === 1) refill(s);
        else if (!s.refillQueued) {
          // Answers that came in one read are followed by one write of new requests.
          s.refillQueued = true;
          queueMicrotask(() => refill(s));
        }
      };
    }
    // A bound on the whole run, whatever happens to the server.
    const watchdog = setTimeout(
      () => {
        if (finished) return;
        finished = true;
        reject(new Error(`load did not finish: ${answered} of ${issued} requests answered`));
      },
      (Number.isFinite(durationMs) ? durationMs : 0) + 60_000 + (Number.isFinite(total) ? total / 5 : 0),
    );
    for (const s of states) refill(s);
  });
}

/**
 * The `watch` request exactly as the live page sends it
 * (packages/node/page/page.js, startWatch): the first 40 characters of each
 * value, and the mesh state every second (`state` defaults to true).
 */
export const PAGE_WATCH_TEXT = '{"type":"watch","id":1,"values":40}';

/**
 * A read-only subscriber standing in for an open live page: a `Conn`
 * (authenticated like every connection of a run with --security) that sends
 * the page's `watch` and parses every frame it receives, as the page does.
 * `open` resolves once the node said `watching` and sent its first state.
 */
export class Watcher {
  static async open(url, timeoutMs = 10_000) {
    const conn = await Conn.open(url, timeoutMs);
    const watcher = new Watcher(conn);
    try {
      await watcher.ready(timeoutMs);
    } catch (error) {
      conn.close();
      throw error;
    }
    return watcher;
  }

  constructor(conn) {
    this.conn = conn;
    this.frames = 0;
    this.chars = 0;
    this.writes = 0;
    this.states = 0;
    /** Events the node left out for this watcher (the `dropped` field of its messages). */
    this.dropped = 0;
    this.closedByNode = false;
    conn.onClose((code) => {
      if (!this.closing) this.closedByNode = code;
    });
  }

  ready(timeoutMs) {
    return new Promise((resolve, reject) => {
      let watching = false;
      const timer = setTimeout(() => reject(new Error(`no watch reply and state from ${this.conn.url} within ${timeoutMs} ms`)), timeoutMs);
      this.conn.onText = (text) => {
        this.frames++;
        this.chars += text.length;
        const message = JSON.parse(text);
        if (message.dropped !== undefined) this.dropped += message.dropped;
        if (message.type === 'watch-writes') this.writes += message.writes.length;
        else if (message.type === 'watch-state') {
          this.states++;
          if (watching) {
            clearTimeout(timer);
            resolve();
          }
        } else if (message.type === 'reply' && message.id === 1 && message.result?.watching === true) watching = true;
        else if (message.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`watch refused by ${this.conn.url}: ${text.slice(0, 200)}`));
        }
      };
      this.conn.send(PAGE_WATCH_TEXT);
    });
  }

  close() {
    this.closing = true;
    this.conn.close();
  }
}
