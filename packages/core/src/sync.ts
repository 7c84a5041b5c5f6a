/**
 * Cutting a stream of entries into messages that stay under the wire limit.
 * Used for catch-up (a node sends a peer what it missed, or its whole store) and for
 * forwarding. Sizes are counted in characters (UTF-16 code units) of the
 * entries' strings, without looking for characters JSON escapes: a character
 * takes at most 6 bytes in the frame, which MAX_BATCH_CHARS allows for.
 * `coalesceEntries` does the reverse for many small forwards to one peer: it
 * merges them.
 */
import { type Entry } from './entry.js';
import { type QueuedSend } from './node-context.js';
import { type LinkId } from './peer-table.js';
import { type EntriesMessage } from './protocol.js';
import { type Change } from './store.js';
import { MAX_BATCH_CHARS } from './limits.js';

// Characters JSON.stringify escapes: quote, backslash, controls, lone surrogates.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON escapes.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Length of a string's JSON text, quotes included, in UTF-16 code units. */
export function jsonStringLength(text: string): number {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text).length : text.length + 2;
}

/**
 * Length of an entry's wire tuple with nothing escaped, in UTF-16 code units:
 * `["",""," ",""]` is 11 characters, the timestamp at most 16 digits. Its
 * JSON text is at most 6 bytes per character of this.
 */
export function entryLength(entry: Entry): number {
  return 27 + entry.key.length + entry.value.length + entry.origin.length;
}

/** Splits entries into batches of at most `maxLength` characters (`entryLength`; a single larger entry gets a batch of its own). */
export function* batchEntries(entries: Iterable<Entry>, maxLength = MAX_BATCH_CHARS): Generator<Entry[]> {
  let batch: Entry[] = [];
  let length = 0;
  for (const entry of entries) {
    const size = entryLength(entry);
    if (batch.length > 0 && length + size > maxLength) {
      yield batch;
      batch = [];
      length = 0;
    }
    batch.push(entry);
    length += size + 1;
  }
  if (batch.length > 0) yield batch;
}

/** `batchEntries` over a store iteration (`Store.changesSince`); returns what the iteration returns. */
export function* batchChanges<R>(changes: Iterator<Change, R>, maxLength = MAX_BATCH_CHARS): Generator<Entry[], R> {
  let result: { value: R } | undefined;
  function* entries(): Generator<Entry> {
    for (let next = changes.next(); ; next = changes.next()) {
      if (next.done === true) {
        result = { value: next.value };
        return;
      }
      yield next.value.entry;
    }
  }
  yield* batchEntries(entries(), maxLength);
  return result!.value;
}

/**
 * Merges `entries` messages queued back to back for one link (nothing else for
 * that link between them, same `seen`, no acknowledgement round) into one
 * message, up to `maxLength` characters of entries, so that a burst of writes
 * costs each peer one frame instead of one per write. Order per link is kept;
 * the merged message carries the later `upTo`. Links whose runs are made of
 * the very same messages (a broadcast) share one merged message, so that the
 * adapter writes its JSON once.
 */
export function coalesceEntries(sends: QueuedSend[], maxLength = MAX_BATCH_CHARS): QueuedSend[] {
  // Nothing to merge unless two messages carry entries (a `set` queues a reply and one forward per peer): skip the bookkeeping.
  let entriesMessages = 0;
  for (const send of sends) {
    if (send.message.type === 'entries' && ++entriesMessages === 2) break;
  }
  if (entriesMessages < 2) return sends;
  /** A run of mergeable messages for one link, at `index` of the output; `bytes` adds up their sends' estimates. */
  type Run = { readonly index: number; readonly send: QueuedSend; readonly sources: EntriesMessage[]; length: number; bytes: number };
  const open = new Map<LinkId, Run>();
  const runs: Run[] = [];
  const out: QueuedSend[] = [];
  for (const queued of sends) {
    const message = queued.message;
    if (message.type !== 'entries' || message.ack !== undefined || message.seen === undefined) {
      open.delete(queued.link);
      out.push(queued);
      continue;
    }
    let length = 0;
    for (const entry of message.entries) length += entryLength(entry) + 1;
    const run = open.get(queued.link);
    if (run !== undefined && sameList(run.sources[0]!.seen!, message.seen) && run.length + length <= maxLength) {
      if (run.sources.length === 1) runs.push(run);
      run.sources.push(message);
      run.length += length;
      run.bytes += queued.bytes;
      continue;
    }
    open.set(queued.link, { index: out.length, send: queued, sources: [message], length, bytes: queued.bytes });
    out.push(queued);
  }
  const built: { sources: EntriesMessage[]; message: EntriesMessage }[] = [];
  for (const run of runs) {
    let merged = built.find((b) => b.sources.length === run.sources.length && b.sources.every((source, i) => source === run.sources[i]))?.message;
    if (merged === undefined) {
      let upTo: number | undefined;
      for (const source of run.sources) if (source.upTo !== undefined) upTo = source.upTo;
      merged = { type: 'entries', entries: run.sources.flatMap((source) => source.entries), seen: run.sources[0]!.seen!, ...(upTo === undefined ? {} : { upTo }) };
      built.push({ sources: run.sources, message: merged });
    }
    out[run.index] = { ...run.send, message: merged, bytes: run.bytes };
  }
  return out;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
