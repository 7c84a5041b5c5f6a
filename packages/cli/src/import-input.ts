/**
 * The input of `bby import`, read as bytes and packed into `set-many`
 * requests: JSON lines (`{"key": "...", "value": "..."}` per line) or one
 * JSON object of key to value. Every entry is checked as `set` checks its
 * arguments, and the first invalid one is reported with its line.
 *
 * Most lines are written the way `bby export` and `JSON.stringify` write
 * them: `{"key":"…","value":"…"}` with no space and no escape. Such a line is
 * checked on its bytes and copied into the request as it is, with no string
 * or object made for it: for large imports, decoding and parsing each line
 * cost more than everything else the CLI does. Any other line is decoded,
 * parsed and written again as `{"key":…,"value":…}`.
 */
import { isUtf8 } from 'node:buffer';
import { type Readable } from 'node:stream';
import { BbyError, checkKey, checkValue, MAX_KEY_BYTES, MAX_VALUE_BYTES } from '@bby/core';
import { type BatchLimits, IMPORT_BATCH, SetManyBatch } from './set-many-batch.js';

/** The input file cannot be read or holds an invalid entry; the message names the file and the line. */
export class ImportInputError extends BbyError {
  override name = 'ImportInputError';
  constructor(message: string) {
    super('BAD_INPUT', message);
  }
}

/** One entry of the input. */
export interface InputEntry {
  readonly key: string;
  readonly value: string;
}

const describeType = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`.slice(0, 60));

/** Checks key and value as `set` does; throws ImportInputError naming `where`. */
function checkEntry(key: string, value: string, where: string): void {
  try {
    checkKey(key);
    checkValue(value);
  } catch (error) {
    if (error instanceof BbyError) throw new ImportInputError(`${where}: ${error.message}`);
    throw error;
  }
}

/** Parses one line of JSON lines input; throws ImportInputError naming the line. */
export function parseJsonLine(text: string, name: string, line: number): InputEntry {
  const where = `${name} line ${line}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ImportInputError(`${where}: not valid JSON (${(error as Error).message}); each line must be {"key": "...", "value": "..."}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ImportInputError(`${where}: expected an object {"key": "...", "value": "..."}, got ${describeType(raw)}`);
  }
  const { key, value } = raw as Record<string, unknown>;
  if (typeof key !== 'string') throw new ImportInputError(`${where}: "key" must be a string, got ${key === undefined ? 'nothing' : describeType(key)}`);
  if (typeof value !== 'string') throw new ImportInputError(`${where}: "value" must be a string, got ${value === undefined ? 'nothing' : describeType(value)}`);
  checkEntry(key, value, where);
  return { key, value };
}

/** Line (1-based) of a character offset in a text. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Parses a whole-file JSON object of key to value; throws ImportInputError. */
export function parseJsonObject(text: string, name: string): InputEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    const where = position === null ? name : `${name} line ${lineOf(text, Number(position[1]))}`;
    throw new ImportInputError(`${where}: not valid JSON (${message}); the input must be JSON lines {"key": "...", "value": "..."} or one JSON object {"key": "value", ...}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ImportInputError(`${name}: expected JSON lines {"key": "...", "value": "..."} or one JSON object {"key": "value", ...}, got ${describeType(raw)}`);
  }
  const entries: InputEntry[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const where = `${name} key ${JSON.stringify(key).slice(0, 80)}`;
    if (typeof value !== 'string') throw new ImportInputError(`${where}: the value must be a string, got ${describeType(value)}`);
    checkEntry(key, value, where);
    entries.push({ key, value });
  }
  return entries;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;
const RETURN = 0x0d;
const PLAIN_HEAD = Buffer.from('{"key":"');
const PLAIN_MIDDLE = Buffer.from('","value":"');
const PLAIN_TAIL = Buffer.from('"}');

/** True when `bytes[start, end)` equals `expected`. */
function bytesAt(bytes: Buffer, start: number, expected: Buffer): boolean {
  for (let i = 0; i < expected.length; i++) if (bytes[start + i] !== expected[i]) return false;
  return true;
}

/** Offset of the quote that ends a JSON string starting at `start`, or -1 when it holds an escape or a control character. */
function plainStringEnd(bytes: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (byte === QUOTE) return i;
    if (byte === BACKSLASH || byte < 0x20) return -1;
  }
  return -1;
}

/**
 * True when the UTF-8 bytes `bytes[start, end)` are exactly
 * `{"key":"K","value":"V"}` with K and V free of escapes and control
 * characters, and within `set`'s limits (K not empty): then they are the JSON
 * text of a valid entry as they are. False does not mean invalid, only that
 * the line needs parsing.
 */
export function isPlainEntry(bytes: Buffer, start: number, end: number): boolean {
  if (end - start < PLAIN_HEAD.length + 1 + PLAIN_MIDDLE.length + PLAIN_TAIL.length || !bytesAt(bytes, start, PLAIN_HEAD)) return false;
  const keyStart = start + PLAIN_HEAD.length;
  const keyEnd = plainStringEnd(bytes, keyStart, end);
  if (keyEnd <= keyStart || keyEnd - keyStart > MAX_KEY_BYTES || !bytesAt(bytes, keyEnd, PLAIN_MIDDLE)) return false;
  const valueStart = keyEnd + PLAIN_MIDDLE.length;
  const valueEnd = plainStringEnd(bytes, valueStart, end);
  // A value's JSON text is its bytes and two quotes.
  return valueEnd === end - PLAIN_TAIL.length && valueEnd - valueStart + 2 <= MAX_VALUE_BYTES && bytesAt(bytes, valueEnd, PLAIN_TAIL);
}

/**
 * The input as `set-many` batches, in order, each as full as `limits` allow.
 * JSON lines when the first non-blank line is on its own a JSON object with a
 * "key" field; otherwise the whole input is read as one JSON object of key
 * to value. Throws ImportInputError naming the line of the first invalid
 * entry, after yielding the batch of the entries before it.
 */
export async function* readBatches(input: Readable, name: string, limits: BatchLimits = IMPORT_BATCH): AsyncGenerator<SetManyBatch> {
  // Set inside the line handlers below (the cast keeps TypeScript from narrowing it to 'unknown' here).
  let mode = 'unknown' as 'unknown' | 'lines' | 'object';
  const objectText: string[] = [];
  // The first non-blank line, when it is a JSON object on its own: a JSON lines file with a mistake in it, or a one-line object.
  let firstObject: { text: string; line: number } | undefined;
  let lineNumber = 0;
  let batch = new SetManyBatch(limits);
  // Batches filled up and not yielded yet. An entry that does not fit closes the batch and starts the
  // next; one larger than a whole batch (a value may take up to 256 KiB) gets a batch of its own size.
  const full: SetManyBatch[] = [];
  const nextBatch = (entryBytes: number): SetManyBatch => {
    batch.settle();
    if (batch.count > 0) full.push(batch);
    batch = new SetManyBatch(entryBytes > limits.bytes ? { bytes: entryBytes, entries: limits.entries } : limits);
    return batch;
  };
  const addBytes = (bytes: Buffer, start: number, end: number, line: number): void => {
    if (!batch.addBytes(bytes, start, end, line)) nextBatch(end - start).addBytes(bytes, start, end, line);
  };
  const addEntry = ({ key, value }: InputEntry, line: number | null): void => {
    const text = JSON.stringify({ key, value });
    if (!batch.addText(text, line)) nextBatch(Buffer.byteLength(text)).addText(text, line);
  };

  /** Handles the line `bytes[start, end)` (without its line end); `utf8` says the bytes are known to be valid UTF-8. */
  const takeLine = (bytes: Buffer, start: number, end: number, utf8: boolean): void => {
    lineNumber++;
    const line = lineNumber;
    if (mode !== 'object' && utf8 && isPlainEntry(bytes, start, end)) {
      mode = 'lines';
      addBytes(bytes, start, end, line);
      return;
    }
    if (!utf8 && !isUtf8(bytes.subarray(start, end))) {
      throw new ImportInputError(`${name} line ${line}: not valid UTF-8; save the file as UTF-8`);
    }
    const text = bytes.toString('utf8', start, end);
    if (mode === 'object') {
      objectText.push(text);
      return;
    }
    if (text.trim() === '') {
      if (mode === 'unknown') objectText.push(text);
      return;
    }
    if (mode === 'unknown') {
      let first: unknown;
      try {
        first = JSON.parse(text);
      } catch {
        first = undefined;
      }
      const isObject = typeof first === 'object' && first !== null && !Array.isArray(first);
      if (isObject && 'key' in (first as object)) mode = 'lines';
      else {
        if (isObject) firstObject = { text, line };
        mode = 'object';
        objectText.push(text);
        return;
      }
    }
    addEntry(parseJsonLine(text, name, line), line);
  };

  // A UTF-8 byte order mark (some editors write one) is skipped at the start of the input, as JSON parsers may.
  let atStart = true;
  const firstByte = (bytes: Buffer): number => {
    if (!atStart) return 0;
    atStart = false;
    return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  };

  /** Handles every line of `bytes[0, end)`, where `end` is just after a line end. */
  const takeLines = (bytes: Buffer, end: number): void => {
    const utf8 = isUtf8(bytes.subarray(0, end));
    for (let start = firstByte(bytes); start < end; ) {
      const newline = bytes.indexOf(NEWLINE, start);
      const lineEnd = newline > start && bytes[newline - 1] === RETURN ? newline - 1 : newline;
      takeLine(bytes, start, lineEnd, utf8);
      start = newline + 1;
    }
    // The next read brings a new buffer: copy what this one still holds for the batch.
    batch.settle();
  };

  // Bytes read after the last line end, in pieces (a long line is joined once, not at every read).
  let partial: Buffer[] = [];
  const flushFull = function* (): Generator<SetManyBatch> {
    for (const done of full) yield done;
    full.length = 0;
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const lastNewline = piece.lastIndexOf(NEWLINE);
      if (lastNewline === -1) {
        partial.push(piece);
        continue;
      }
      const bytes = partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      const end = bytes.length - (piece.length - lastNewline - 1);
      partial = end < bytes.length ? [bytes.subarray(end)] : [];
      takeLines(bytes, end);
      yield* flushFull();
    }
    if (partial.length > 0) {
      const bytes = Buffer.concat(partial);
      const end = bytes.length > 0 && bytes[bytes.length - 1] === RETURN ? bytes.length - 1 : bytes.length;
      const start = Math.min(firstByte(bytes), end);
      takeLine(bytes, start, end, isUtf8(bytes.subarray(start, end)));
    }
  } catch (error) {
    // The entries before the invalid one are sent first.
    yield* flushFull();
    if (batch.count > 0) yield batch;
    throw error;
  }
  yield* flushFull();
  if (mode !== 'object') {
    if (batch.count > 0) yield batch;
    return;
  }
  let entries: InputEntry[];
  try {
    entries = parseJsonObject(objectText.join('\n'), name);
  } catch (error) {
    // Several objects, one per line, without "key" in the first: report it as JSON lines.
    const rest = objectText.slice(firstObject === undefined ? 0 : firstObject.line).join('').trim();
    if (firstObject !== undefined && rest !== '') parseJsonLine(firstObject.text, name, firstObject.line);
    throw error;
  }
  for (const entry of entries) {
    addEntry(entry, null);
    yield* flushFull();
  }
  if (batch.count > 0) yield batch;
}
