/**
 * A byte arena: strings kept as UTF-8 bytes, appended to large Uint8Array
 * chunks, instead of as JavaScript strings. A million short strings then cost
 * their bytes plus 8 bytes of address and length each, instead of a string
 * object each (a header of 12 to 16 bytes, two bytes per character once one
 * is not Latin-1, and a hash field), and the garbage collector sees a few
 * big arrays instead of millions of objects.
 *
 * A string is written once and never moved or freed: the store writes a new
 * copy when a key's value is replaced, and the old bytes stay unused (values
 * are replaced only when an older write arrives, which is rare).
 *
 * Only well-formed strings are stored (the protocol refuses lone surrogates),
 * because UTF-8 cannot hold a lone surrogate: TextEncoder would turn it into
 * U+FFFD and the string read back would differ from the one written.
 *
 * Where a string is: an *address* (chunk index times the chunk size, plus the
 * offset in the chunk: 32 bits, so at most 4 GiB of arena) and a *length word*
 * (the byte length, with NON_ASCII set when a byte is above 0x7f). ASCII
 * strings, most keys in practice, are copied and compared byte by byte in
 * JavaScript, with no TextEncoder or TextDecoder call.
 */
import { foldBytes } from './digest.js';
import { isWellFormed, utf8ByteLength } from './limits.js';

/** Default chunk size: 4 MiB, 1024 chunks for the 4 GiB of 32-bit addresses. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** Flag of a length word: the string has a non-ASCII character. */
const NON_ASCII = 0x8000_0000;
const LENGTH_MASK = 0x7fff_ffff;
const ADDRESS_LIMIT = 2 ** 32;

/** Up to this many characters, strings are copied and decoded by a JS loop (cheaper than an encoder call). */
const SHORT_STRING = 32;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
// Reused by `read` for short ASCII strings.
const scratch: number[] = [];

/** Append-only UTF-8 storage for strings, in chunks of a fixed power-of-two size. */
export class Arena {
  readonly #chunkBytes: number;
  /** log2 of the chunk size: an address is `chunk index << #chunkBits | offset`. */
  readonly #chunkBits: number;
  readonly #chunks: Uint8Array[];
  /** A DataView of each chunk, for hashing its bytes four at a time. */
  readonly #views: DataView[];
  /** The chunk new strings go to, its index and the first free byte in it. */
  #chunk: Uint8Array;
  #chunkIndex = 0;
  #position = 0;

  /** `chunkBytes` is a power of two; tests use small chunks to cross chunk ends often. */
  constructor(chunkBytes = DEFAULT_CHUNK_BYTES) {
    if (!Number.isInteger(chunkBytes) || chunkBytes < 16 || chunkBytes > 2 ** 30 || (chunkBytes & (chunkBytes - 1)) !== 0) {
      throw new RangeError(`chunkBytes must be a power of two from 16 to 2^30, not ${chunkBytes}`);
    }
    this.#chunkBytes = chunkBytes;
    this.#chunkBits = Math.log2(chunkBytes);
    this.#chunk = new Uint8Array(chunkBytes);
    this.#chunks = [this.#chunk];
    this.#views = [new DataView(this.#chunk.buffer)];
  }

  /** Bytes of the chunks allocated, in bytes: what the arena holds in memory, used or not. */
  get allocatedBytes(): number {
    let bytes = 0;
    for (const chunk of this.#chunks) bytes += chunk.byteLength;
    return bytes;
  }

  /**
   * Appends `text` and puts its address at `into[at]` and its length word at
   * `into[at + 1]`. Throws a RangeError, storing nothing, for a string that is
   * not well-formed or when the arena is full.
   */
  write(text: string, into: Uint32Array, at: number): void {
    const room = this.#chunkBytes - this.#position;
    // Fast paths, when the string fits in the current chunk: a JS copy for short
    // ASCII, else one encodeInto (it stops, writing nothing usable, when out of room).
    if (text.length <= SHORT_STRING && text.length <= room && this.#copyAscii(text)) {
      this.#placed(into, at, this.#position, text.length, 0);
      return;
    }
    if (text.length <= room) {
      const { read, written } = encoder.encodeInto(text, this.#chunk.subarray(this.#position, this.#position + Math.min(room, text.length * 3)));
      if (read === text.length) {
        if (written !== text.length) checkWellFormed(text);
        this.#placed(into, at, this.#position, written, written === text.length ? 0 : NON_ASCII);
        return;
      }
    }
    // Does not fit (or might not): count the bytes, then start a chunk.
    checkWellFormed(text);
    const bytes = utf8ByteLength(text);
    const flags = bytes === text.length ? 0 : NON_ASCII;
    if (bytes > this.#chunkBytes) {
      // A string larger than a chunk gets a chunk of its own; the current chunk stays current.
      const chunk = new Uint8Array(bytes);
      encoder.encodeInto(text, chunk);
      into[at] = this.#addChunk(chunk) * this.#chunkBytes;
      into[at + 1] = (bytes | flags) >>> 0;
      return;
    }
    const chunk = new Uint8Array(this.#chunkBytes);
    this.#chunkIndex = this.#addChunk(chunk);
    this.#chunk = chunk;
    this.#position = 0;
    encoder.encodeInto(text, chunk.subarray(0, bytes));
    this.#placed(into, at, 0, bytes, flags);
  }

  /** The string at `address` with length word `word`. */
  read(address: number, word: number): string {
    const length = word & LENGTH_MASK;
    const chunk = this.#chunks[address >>> this.#chunkBits]!;
    const start = address & (this.#chunkBytes - 1);
    if (length <= SHORT_STRING && (word & NON_ASCII) === 0) {
      // One fromCharCode call gives a flat string; appending char by char would build a rope.
      scratch.length = length;
      for (let i = 0; i < length; i++) scratch[i] = chunk[start + i]!;
      return String.fromCharCode.apply(null, scratch);
    }
    return decoder.decode(chunk.subarray(start, start + length));
  }

  /** Folds the bytes of the string at `address` with length word `word` into the entry hash being computed (digest.ts). */
  fold(address: number, word: number): void {
    const index = address >>> this.#chunkBits;
    foldBytes(this.#chunks[index]!, this.#views[index]!, address & (this.#chunkBytes - 1), word & LENGTH_MASK);
  }

  /** Whether `text` is the string at `address` with length word `word`, without decoding ASCII. */
  equals(text: string, address: number, word: number): boolean {
    const length = word & LENGTH_MASK;
    if ((word & NON_ASCII) !== 0) return length >= text.length && this.read(address, word) === text;
    if (length !== text.length) return false;
    const chunk = this.#chunks[address >>> this.#chunkBits]!;
    const start = address & (this.#chunkBytes - 1);
    for (let i = 0; i < length; i++) if (chunk[start + i] !== text.charCodeAt(i)) return false;
    return true;
  }

  /** Copies `text` to the current position if it is all ASCII; false (the bytes copied so far unused) otherwise. */
  #copyAscii(text: string): boolean {
    const chunk = this.#chunk;
    const position = this.#position;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) return false;
      chunk[position + i] = code;
    }
    return true;
  }

  /** Records a string written at `position` of the current chunk, and moves past it. */
  #placed(into: Uint32Array, at: number, position: number, bytes: number, flags: number): void {
    into[at] = this.#chunkIndex * this.#chunkBytes + position;
    into[at + 1] = (bytes | flags) >>> 0;
    this.#position = position + bytes;
  }

  /** Adds a chunk, returns its index. */
  #addChunk(chunk: Uint8Array): number {
    if ((this.#chunks.length + 1) * this.#chunkBytes > ADDRESS_LIMIT) {
      throw new RangeError(`the arena is full: ${ADDRESS_LIMIT / 2 ** 30} GiB of keys and values`);
    }
    this.#views.push(new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    return this.#chunks.push(chunk) - 1;
  }
}

function checkWellFormed(text: string): void {
  if (!isWellFormed(text)) throw new RangeError('the store holds well-formed Unicode only: this string has a lone surrogate');
}
