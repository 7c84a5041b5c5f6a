// The abusive connections of one workload: how many were opened, refused by
// the node, or closed by it (with which close code), what the node answered
// on those that read (replies, and errors by code), and the means to cut them
// all at the end. A node that refuses or drops an abuser is doing its job: it
// is counted, never treated as a failure of the script.
import { RefusedError } from './abuse-wire.js';

/** The first characters of a reply and of an error frame, as the node writes them. */
const REPLY_PREFIX = '{"type":"reply"';
const ERROR_PREFIX = '{"type":"error"';

export class AbuseTally {
  /** `drainMs`: how long `finish()` reads the connections still open before it cuts them (0: it cuts them at once); see `drain`. */
  constructor({ drainMs = 0 } = {}) {
    this.drainMs = drainMs;
    this.opened = 0;
    this.refused = 0;
    /** Refusals by reason (an HTTP status, a close code, ECONNRESET...). */
    this.refusedBy = new Map();
    this.closedByNode = 0;
    /** Closes by the node, by close code (WebSocket), 'tcp after HTTP 408' (a raw socket answered, then ended) or 'tcp' (ended or reset without a word). */
    this.closedBy = new Map();
    /** Per kind of abuser (a label given to `add`): opened, refused, closed by the node. */
    this.kinds = new Map();
    /** Frames received on abusive connections that read: replies, and errors by code. */
    this.replies = 0;
    this.errorsBy = new Map();
    this.sockets = new Set();
    this.closing = false;
  }

  #kind(kind) {
    let counts = this.kinds.get(kind);
    if (counts === undefined) {
      counts = { opened: 0, refused: 0, closedByNode: 0 };
      this.kinds.set(kind, counts);
    }
    return counts;
  }

  /**
   * Opens one abusive connection of `kind` with `open()` (a call of
   * openSocket) and tracks it; resolves with it, or with undefined when the
   * node refused it (or the workload ended meanwhile). Errors other than a
   * refusal are the script's own bugs: they propagate.
   */
  async add(kind, open) {
    const counts = this.#kind(kind);
    let socket;
    try {
      socket = await open();
    } catch (error) {
      if (!(error instanceof RefusedError)) throw error;
      if (this.closing) return undefined;
      this.refused++;
      counts.refused++;
      const reason = error.reason.replace(/ ?\d+\.\d+\.\d+\.\d+:\d+/g, '').slice(0, 60);
      this.refusedBy.set(reason, (this.refusedBy.get(reason) ?? 0) + 1);
      return undefined;
    }
    if (this.closing) {
      destroy(socket);
      return undefined;
    }
    this.opened++;
    counts.opened++;
    this.sockets.add(socket);
    if (typeof socket.terminate === 'function') socket.on('message', (data) => this.#frame(data));
    socket.once('close', (code) => {
      this.sockets.delete(socket);
      if (this.closing) return;
      this.closedByNode++;
      counts.closedByNode++;
      const key = typeof code === 'number' ? String(code) : socket.httpStatus === undefined || socket.httpStatus === 'none' ? 'tcp' : `tcp after HTTP ${socket.httpStatus}`;
      this.closedBy.set(key, (this.closedBy.get(key) ?? 0) + 1);
    });
    return socket;
  }

  /** Counts a frame the node sent an abuser: only its first characters are looked at, except for errors (small). */
  #frame(data) {
    const head = Buffer.isBuffer(data) ? data.toString('latin1', 0, 16) : '';
    if (head.startsWith(REPLY_PREFIX)) this.replies++;
    else if (head.startsWith(ERROR_PREFIX)) {
      let code = 'unreadable';
      try {
        code = String(JSON.parse(data.toString('utf8')).code);
      } catch {
        // counted as unreadable
      }
      this.errorsBy.set(code, (this.errorsBy.get(code) ?? 0) + 1);
    }
  }

  /**
   * Reads every abusive connection still open, the paused ones included,
   * until the node has closed them all or `timeoutMs` has passed: for
   * outsiders, whose refusal (an error frame, a close code) a reader that
   * never reads would not see, and whose other connections the node should
   * close within its timeouts. Only where little is queued for them: a
   * member's slow reader would pull megabytes and have the node answer more.
   */
  async drain(timeoutMs) {
    const open = [...this.sockets];
    if (open.length === 0) return;
    let timer;
    const closes = open.map((socket) => new Promise((resolve) => (socket.readyState === socket.CLOSED || socket.destroyed ? resolve() : socket.once('close', resolve))));
    for (const socket of open) if (typeof socket.terminate === 'function' && socket.isPaused) socket.resume();
    await Promise.race([Promise.all(closes), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Ends the workload's connections: drains them for `drainMs` (if any), then cuts what is left. */
  async finish() {
    if (this.drainMs > 0) await this.drain(this.drainMs);
    this.closeAll();
  }

  /** Number of abusive connections open now. */
  get open() {
    return this.sockets.size;
  }

  /** Cuts every connection still open (no close handshake: a slow reader would not read it). */
  closeAll() {
    this.closing = true;
    for (const socket of this.sockets) destroy(socket);
    this.sockets.clear();
  }

  /** A plain summary for the JSON output and the notes. */
  summary() {
    return {
      opened: this.opened,
      refused: this.refused,
      refusedBy: Object.fromEntries(this.refusedBy),
      closedByNode: this.closedByNode,
      closedBy: Object.fromEntries(this.closedBy),
      replies: this.replies,
      errorsBy: Object.fromEntries(this.errorsBy),
      kinds: Object.fromEntries(this.kinds),
    };
  }
}

function destroy(socket) {
  if (typeof socket.terminate === 'function') socket.terminate();
  else socket.destroy();
}
