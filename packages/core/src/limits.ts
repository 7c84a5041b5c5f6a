/**
 * Size limits shared by every part of bby. Units are last in the names.
 *
 * Why these numbers: a message on the wire is capped at 1 MiB, and any entry a
 * node accepts must fit in one message with room to spare, so the largest
 * value is a quarter of that and the largest key is small.
 */

/** Largest WebSocket message a node or client accepts, in bytes. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** Largest value, measured as JSON text in UTF-8 bytes (escapes count). */
export const MAX_VALUE_BYTES = 256 * 1024;

/** Largest node id, in characters. */
export const MAX_NODE_ID_LENGTH = 64;

/** Node ids are short and safe to print, to use in file names, and to write in JSON as they are (one byte per character). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]+$/;

/**
 * A sync or forward message carries entries of at most this many characters
 * (`entryLength`). A character takes at most 6 bytes in JSON (`\u0000`), so
 * 6 times this, plus the rest of the message (a `seen` list of MAX_SEEN
 * ids), stays under MAX_MESSAGE_BYTES whatever the text.
 */
export const MAX_BATCH_CHARS = 168 * 1024;

/** Number of UTF-8 bytes of a string, without allocating. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

// ES2024 adds String.prototype.isWellFormed (Node 20 has it); the repo's ES2022 lib does not declare it.
declare global {
  interface String {
    isWellFormed(): boolean;
  }
}

/** True when `text` is well-formed Unicode: no lone surrogate, so UTF-8 round-trips it exactly. */
export function isWellFormed(text: string): boolean {
  return text.isWellFormed();
}
