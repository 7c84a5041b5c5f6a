// The abusive connections of one workload: how many were opened, refused by
// the node, or closed by it (with which close code), and the means to cut
// them all at the end. A node that refuses or drops an abuser is doing its
// job: it is counted, never treated as a failure of the script.
import { RefusedError } from './abuse-wire.js';

export class AbuseTally {
  constructor() {
    this.opened = 0;
    this.refused = 0;
    /** Refusals by reason (an HTTP status, a close code, ECONNRESET...). */
    this.refusedBy = new Map();
    this.closedByNode = 0;
    /** Closes by the node, by close code (WebSocket) or 'tcp' (a raw socket ended). */
    this.closedBy = new Map();
    /** Per kind of abuser (a label given to `add`): opened, refused, closed by the node. */
    this.kinds = new Map();
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
    socket.once('close', (code) => {
      this.sockets.delete(socket);
      if (this.closing) return;
      this.closedByNode++;
      counts.closedByNode++;
      const key = typeof code === 'number' ? String(code) : 'tcp';
      this.closedBy.set(key, (this.closedBy.get(key) ?? 0) + 1);
    });
    return socket;
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
      kinds: Object.fromEntries(this.kinds),
    };
  }
}

function destroy(socket) {
  if (typeof socket.terminate === 'function') socket.terminate();
  else socket.destroy();
}
