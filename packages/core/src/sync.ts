/**
 * Cutting a stream of entries into messages that stay under the wire limit.
 * Used for the join sync (a node sends its whole store to a new peer) and for
 * forwarding. Sizes are counted in UTF-16 code units of the JSON text; with
 * MAX_BATCH_BYTES at a quarter of MAX_MESSAGE_BYTES, a batch stays under the
 * limit even when every character takes 3 UTF-8 bytes.
 */
import { type Entry } from './entry.js';
import { MAX_BATCH_BYTES } from './limits.js';

// Characters JSON.stringify escapes: quote, backslash, controls, lone surrogates.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Length of a string's JSON text, quotes included, in UTF-16 code units. */
export function jsonStringLength(text: string): number {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text).length : text.length + 2;
}

/** Length of an entry's JSON text, in UTF-16 code units. */
export function entryJsonLength(entry: Entry): number {
  // {"key":,"value":,"timestamp":,"origin":} is 40 characters; the timestamp at most 16 digits.
  return 56 + jsonStringLength(entry.key) + jsonStringLength(entry.value) + jsonStringLength(entry.origin);
}

/** Splits entries into batches of at most `maxLength` JSON characters (a single larger entry gets a batch of its own). */
export function* batchEntries(entries: Iterable<Entry>, maxLength = MAX_BATCH_BYTES): Generator<Entry[]> {
  let batch: Entry[] = [];
  let length = 0;
  for (const entry of entries) {
    const entryLength = entryJsonLength(entry);
    if (batch.length > 0 && length + entryLength > maxLength) {
      yield batch;
      batch = [];
      length = 0;
    }
    batch.push(entry);
    length += entryLength + 1;
  }
  if (batch.length > 0) yield batch;
}
