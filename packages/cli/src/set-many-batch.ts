/**
 * A `set-many` request being filled: the entries' JSON texts, comma
 * separated, in one buffer that becomes the frame sent. Room is kept in front
 * of the first entry for the request's head, whose id is only known when it is
 * sent, so that no entry is copied twice.
 */
import { MAX_SET_MANY_ENTRIES } from '@bby/core';

/** Bytes kept for `{"type":"set-many","id":<up to 16 digits>,"entries":[`. */
const HEAD_ROOM = 64;
/** `]}` after the last entry. */
const TAIL_BYTES = 2;
const COMMA = 0x2c;

/** How full a batch may get. */
export interface BatchLimits {
  /** Bytes of the entries' JSON texts and the commas between them. */
  readonly bytes: number;
  /** Number of entries. */
  readonly entries: number;
}

/**
 * How full `bby import` fills a request: 128 KiB of entries. A node holds a
 * request's parsed entries until it is done with it, and 1 MiB requests
 * raised its memory for no gain in speed. An entry larger than this (a value
 * may take 256 KiB) goes alone in a request of its own size.
 */
export const IMPORT_BATCH: BatchLimits = { bytes: 128 * 1024, entries: MAX_SET_MANY_ENTRIES };

/** Entries for one `set-many` request, as JSON text, with the input line of each. */
export class SetManyBatch {
  readonly #bytes: Buffer;
  readonly #limit: number;
  readonly #maxEntries: number;
  #end = HEAD_ROOM;
  /** Offset of each entry's text. */
  readonly #starts: number[] = [];
  /** Input line of each entry; null inside a JSON object. */
  readonly #lines: (number | null)[] = [];
  // Entries added by `addBytes` and not copied yet: `#runSource[#runSourceStart, #runSourceEnd)` goes to `#runTarget`.
  #runSource: Buffer | undefined;
  #runSourceStart = 0;
  #runSourceEnd = 0;
  #runTarget = 0;

  constructor(limits: BatchLimits = IMPORT_BATCH) {
    this.#limit = HEAD_ROOM + limits.bytes;
    this.#maxEntries = limits.entries;
    this.#bytes = Buffer.allocUnsafe(this.#limit + TAIL_BYTES);
  }

  /** Number of entries. */
  get count(): number {
    return this.#starts.length;
  }

  /**
   * Appends an entry written as JSON text in `source[start, end)`; false when
   * it does not fit (the batch is full). The bytes are copied by `settle` (or
   * `frame`), not here: entries that follow each other in `source`, one byte
   * apart (a line end), are copied in one go. `source` must not change until then.
   */
  addBytes(source: Buffer, start: number, end: number, line: number | null): boolean {
    const at = this.#reserve(end - start);
    if (at === -1) return false;
    if (source !== this.#runSource || start !== this.#runSourceEnd + 1 || at !== this.#end + 1) {
      this.settle();
      this.#runSource = source;
      this.#runSourceStart = start;
      this.#runTarget = at;
    }
    this.#runSourceEnd = end;
    this.#commit(at, end - start, line);
    return true;
  }

  /** Copies the entries added by `addBytes` and not copied yet. */
  settle(): void {
    const source = this.#runSource;
    if (source === undefined) return;
    source.copy(this.#bytes, this.#runTarget, this.#runSourceStart, this.#runSourceEnd);
    // The run was copied with its line ends: each becomes the comma before the next entry.
    for (let i = this.#starts.length - 1; i >= 0 && this.#starts[i]! > this.#runTarget; i--) this.#bytes[this.#starts[i]! - 1] = COMMA;
    this.#runSource = undefined;
  }

  /** Appends an entry written as JSON text; false when it does not fit (the batch is full). */
  addText(text: string, line: number | null): boolean {
    const at = this.#reserve(Buffer.byteLength(text));
    if (at === -1) return false;
    this.settle();
    this.#commit(at, this.#bytes.write(text, at), line);
    return true;
  }

  /** The key of entry `index`, decoded again from its text (to name a refused key). */
  keyAt(index: number): string {
    this.settle();
    const end = index + 1 < this.#starts.length ? this.#starts[index + 1]! - 1 : this.#end;
    return (JSON.parse(this.#bytes.toString('utf8', this.#starts[index], end)) as { key: string }).key;
  }

  /** The input line of entry `index` (null inside a JSON object). */
  lineAt(index: number): number | null {
    return this.#lines[index]!;
  }

  /** The whole request with id `id`, as UTF-8 bytes. Valid until the batch is changed again. */
  frame(id: number): Buffer {
    this.settle();
    const head = `{"type":"set-many","id":${id},"entries":[`;
    const headStart = HEAD_ROOM - head.length;
    this.#bytes.write(head, headStart, 'latin1');
    this.#bytes.write(']}', this.#end, 'latin1');
    return this.#bytes.subarray(headStart, this.#end + TAIL_BYTES);
  }

  /** Where an entry of `length` bytes goes (after a comma if needed), or -1 when it does not fit. */
  #reserve(length: number): number {
    if (this.#starts.length >= this.#maxEntries) return -1;
    const at = this.#starts.length === 0 ? this.#end : this.#end + 1;
    return at + length > this.#limit ? -1 : at;
  }

  #commit(at: number, length: number, line: number | null): void {
    if (at !== this.#end) this.#bytes[this.#end] = COMMA;
    this.#starts.push(at);
    this.#lines.push(line);
    this.#end = at + length;
  }
}
