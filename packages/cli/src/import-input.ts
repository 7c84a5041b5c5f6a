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
  const packer = new InputPacker(name, limits);
  try {
    for await (const run of lineRuns(input)) {
      if (run.last) packer.takeLastLine(run.bytes);
      else packer.takeLines(run.bytes, run.end);
      yield* packer.takeFull();
    }
  } catch (error) {
    // The entries before the invalid one are sent first.
    yield* packer.takeFull();
    yield* packer.takeOpen();
    throw error;
  }
  yield* packer.finish();
}

/** Bytes of input that end just after a line end (`bytes[0, end)`), or the bytes after the last line end (`last`). */
type LineRun = { readonly bytes: Buffer; readonly end: number; readonly last: false } | { readonly bytes: Buffer; readonly last: true };

/** The input cut after its last line end at each read; what follows the input's last line end comes at the end, as one run. */
async function* lineRuns(input: Readable): AsyncGenerator<LineRun> {
  // Bytes read after the last line end, in pieces (a long line is joined once, not at every read).
  let partial: Buffer[] = [];
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
    yield { bytes, end, last: false };
  }
  if (partial.length > 0) yield { bytes: Buffer.concat(partial), last: true };
}

/**
 * Packs the lines of one input into batches: lines go in (`takeLines`, then
 * `takeLastLine`), full batches come out (`takeFull`), and `finish` yields the
 * rest. Until the first non-blank line it does not know whether the input is
 * JSON lines or one JSON object; an object is gathered whole and parsed at
 * `finish`.
 */
class InputPacker {
  readonly #name: string;
  readonly #limits: BatchLimits;
  #mode: 'unknown' | 'lines' | 'object' = 'unknown';
  readonly #objectText: string[] = [];
  // The first non-blank line, when it is a JSON object on its own: a JSON lines file with a mistake in it, or a one-line object.
  #firstObject: { text: string; line: number } | undefined;
  #lineNumber = 0;
  // A UTF-8 byte order mark (some editors write one) is skipped at the start of the input, as JSON parsers may.
  #atStart = true;
  #batch: SetManyBatch;
  // Batches filled up and not yielded yet. An entry that does not fit closes the batch and starts the
  // next; one larger than a whole batch (a value may take up to 256 KiB) gets a batch of its own size.
  readonly #full: SetManyBatch[] = [];

  constructor(name: string, limits: BatchLimits) {
    this.#name = name;
    this.#limits = limits;
    this.#batch = new SetManyBatch(limits);
  }

  /** Handles every line of `bytes[0, end)`, where `end` is just after a line end. */
  takeLines(bytes: Buffer, end: number): void {
    const utf8 = isUtf8(bytes.subarray(0, end));
    for (let start = this.#firstByte(bytes); start < end; ) {
      const newline = bytes.indexOf(NEWLINE, start);
      const lineEnd = newline > start && bytes[newline - 1] === RETURN ? newline - 1 : newline;
      this.#takeLine(bytes, start, lineEnd, utf8);
      start = newline + 1;
    }
    // The next read brings a new buffer: copy what this one still holds for the batch.
    this.#batch.settle();
  }

  /** Handles the input's last line, which has no line end. */
  takeLastLine(bytes: Buffer): void {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === RETURN ? bytes.length - 1 : bytes.length;
    const start = Math.min(this.#firstByte(bytes), end);
    this.#takeLine(bytes, start, end, isUtf8(bytes.subarray(start, end)));
  }

  /** The batches filled up since the last call. */
  *takeFull(): Generator<SetManyBatch> {
    for (const done of this.#full) yield done;
    this.#full.length = 0;
  }

  /** The batch being filled, unless it is empty. */
  *takeOpen(): Generator<SetManyBatch> {
    if (this.#batch.count > 0) yield this.#batch;
  }

  /** Once every line is in: the full batches, the entries of a JSON object input, and the last batch. */
  *finish(): Generator<SetManyBatch> {
    yield* this.takeFull();
    if (this.#mode === 'object') {
      for (const entry of this.#parseObject()) {
        this.#addEntry(entry, null);
        yield* this.takeFull();
      }
    }
    yield* this.takeOpen();
  }

  /** The input, gathered whole, as one JSON object of key to value. */
  #parseObject(): InputEntry[] {
    try {
      return parseJsonObject(this.#objectText.join('\n'), this.#name);
    } catch (error) {
      // Several objects, one per line, without "key" in the first: report it as JSON lines.
      const first = this.#firstObject;
      const rest = this.#objectText.slice(first === undefined ? 0 : first.line).join('').trim();
      if (first !== undefined && rest !== '') parseJsonLine(first.text, this.#name, first.line);
      throw error;
    }
  }

  /** Bytes to skip at the start of `bytes`: a byte order mark at the start of the input. */
  #firstByte(bytes: Buffer): number {
    if (!this.#atStart) return 0;
    this.#atStart = false;
    return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  }

  /** Handles the line `bytes[start, end)` (without its line end); `utf8` says the bytes are known to be valid UTF-8. */
  #takeLine(bytes: Buffer, start: number, end: number, utf8: boolean): void {
    this.#lineNumber++;
    const line = this.#lineNumber;
    if (this.#mode !== 'object' && utf8 && isPlainEntry(bytes, start, end)) {
      this.#mode = 'lines';
      this.#addBytes(bytes, start, end, line);
      return;
    }
    if (!utf8 && !isUtf8(bytes.subarray(start, end))) {
      throw new ImportInputError(`${this.#name} line ${line}: not valid UTF-8; save the file as UTF-8`);
    }
    const text = bytes.toString('utf8', start, end);
    if (this.#mode === 'object') {
      this.#objectText.push(text);
      return;
    }
    if (text.trim() === '') {
      if (this.#mode === 'unknown') this.#objectText.push(text);
      return;
    }
    if (this.#mode === 'unknown' && !this.#decideMode(text, line)) return;
    this.#addEntry(parseJsonLine(text, this.#name, line), line);
  }

  /** Decides from the first non-blank line whether the input is JSON lines (true: the line is an entry) or one JSON object (false: the line is part of it). */
  #decideMode(text: string, line: number): boolean {
    let first: unknown;
    try {
      first = JSON.parse(text);
    } catch {
      first = undefined;
    }
    const isObject = typeof first === 'object' && first !== null && !Array.isArray(first);
    if (isObject && 'key' in (first as object)) {
      this.#mode = 'lines';
      return true;
    }
    if (isObject) this.#firstObject = { text, line };
    this.#mode = 'object';
    this.#objectText.push(text);
    return false;
  }

  #addBytes(bytes: Buffer, start: number, end: number, line: number): void {
    if (!this.#batch.addBytes(bytes, start, end, line)) this.#nextBatch(end - start).addBytes(bytes, start, end, line);
  }

  #addEntry({ key, value }: InputEntry, line: number | null): void {
    const text = JSON.stringify({ key, value });
    if (!this.#batch.addText(text, line)) this.#nextBatch(Buffer.byteLength(text)).addText(text, line);
  }

  /** Closes the batch being filled and starts the next, large enough for an entry of `entryBytes`. */
  #nextBatch(entryBytes: number): SetManyBatch {
    this.#batch.settle();
    if (this.#batch.count > 0) this.#full.push(this.#batch);
    this.#batch = new SetManyBatch(entryBytes > this.#limits.bytes ? { bytes: entryBytes, entries: this.#limits.entries } : this.#limits);
    return this.#batch;
  }
}
