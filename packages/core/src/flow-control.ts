/**
 * How much a connection may make a node hold for it. The core counts, per
 * link, the text of the frames it asked the adapter to send and that the
 * adapter has not yet reported written out (`written` events): what the
 * socket still holds in memory because the other side does not read it.
 *
 * - A client over its budget is not answered any more: its next frames wait
 *   unread (and the adapter stops reading its socket, so TCP slows it), until
 *   it has read half of what waits. A pipelining client is slowed, never
 *   dropped; one that stays over budget too long is closed.
 * - A peer is never left unread (two peers each waiting for the other to read
 *   would wait forever): one over the budget for too long, or far over it, is
 *   closed, and catches up from its cursor when it reconnects.
 * - Catch-up and repair stream a few batches ahead of the socket, never more.
 *
 * Sizes are counted as characters of JSON text, exactly for answers and
 * errors (what a client can make a node send): a frame takes that many bytes
 * when it is ASCII, at most three times as many otherwise. Entries, which
 * only members send and receive, count the characters of their strings
 * (`entryLength`): escapes can make their frame up to six times longer.
 */
import { type Message } from './protocol.js';
import { entryLength, jsonStringLength } from './sync.js';
import { MAX_MESSAGE_BYTES } from './limits.js';

/**
 * Text waiting to be written on a link above which the node stops answering a
 * client, in bytes (as characters of JSON): four answers of the largest value,
 * or a page of keys. It bounds memory (twenty readers that do not read hold
 * about 20 × 1 MiB of answers, which the socket buffers and V8 hold about three
 * times over) and the burst of answers made before the first pause: every
 * such reader that starts at once makes the node encode up to a budget of
 * answers in one go (npm run abuse measures both).
 */
export const OUTBOUND_BUDGET_BYTES = 1024 * 1024;

/** A paused client is answered again once what waits for it drops below this, in bytes: half, so that it is not paused again at once. */
export const OUTBOUND_RESUME_BYTES = OUTBOUND_BUDGET_BYTES / 2;

/** A catch-up or repair stream sends its next batch only while less than this many batches' worth waits on the link. */
export const STREAM_WINDOW_BATCHES = 4;

/** A link over its budget for longer than this is closed, in milliseconds: a reader that stopped reading. */
export const SLOW_LINK_TIMEOUT_MS = 20_000;

/**
 * A peer link with more than this waiting is closed at once, in bytes: its
 * node catches up from its cursor when it reconnects. Far above a client's
 * budget: a peer that pauses reading while its disk catches up (a bulk
 * import) is not cut off for it.
 */
export const PEER_OUTBOUND_LIMIT_BYTES = 32 * 1024 * 1024;

/**
 * Frames a paused client may still deliver (what its socket had read before
 * the pause), in bytes: one read of the socket plus one whole frame. More
 * means the reading was not paused; the link is then closed.
 */
export const MAX_HELD_BYTES = 2 * MAX_MESSAGE_BYTES;

/** Characters of JSON a frame takes: exact for answers and errors, the entries' characters for entries; cheap enough for every frame. */
export function frameLength(message: Message): number {
  switch (message.type) {
    case 'entries': {
      let length = 64 + (message.seen?.length ?? 0) * 24;
      for (const entry of message.entries) length += entryLength(entry) + 1;
      return length;
    }
    case 'reply':
      return 64 + resultLength(message.result);
    case 'error':
      // Small, and quoting what a client sent (an address, escaped twice): measured, not guessed.
      return JSON.stringify(message).length;
    case 'watch-writes': {
      // Keys, values and origins come from outside: measured as JSON, as node.ts counts them for the watcher's queue.
      let length = 64;
      for (const write of message.writes) length += 64 + jsonStringLength(write.key) + write.origin.length + (write.from?.length ?? 0) + (write.value === undefined ? 0 : jsonStringLength(write.value));
      return length;
    }
    case 'watch-state':
      // Once a second per watcher: measured.
      return JSON.stringify(message).length;
    case 'buckets':
      return 32 + message.digests.length * 19;
    case 'peer-list':
      return 32 + message.addresses.length * 64;
    default:
      return 128;
  }
}

/** Characters of JSON a reply's result takes. */
function resultLength(result: unknown): number {
  if (typeof result === 'string') return jsonStringLength(result);
  if (Array.isArray(result)) {
    let length = 2;
    for (const item of result) length += (typeof item === 'string' ? jsonStringLength(item) : typeof item === 'boolean' ? 5 : JSON.stringify(item).length) + 1;
    return length;
  }
  return JSON.stringify(result ?? null).length;
}
