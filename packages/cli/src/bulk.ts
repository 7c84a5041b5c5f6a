/**
 * `bby CONFIG import FILE` and `bby CONFIG export`: many keys over one
 * connection, with many requests in flight instead of one round trip each.
 *
 * Import reads JSON lines (`{"key": "...", "value": "..."}` per line) or one
 * JSON object of key to value, checks every entry as `set` does, and sends
 * them in `set-many` requests of up to 1 MiB, IMPORT_BATCHES_IN_FLIGHT
 * at a time. Export asks for `keys` (page by page), then
 * `get`s them, EXPORT_IN_FLIGHT at a time, and writes JSON lines in key order,
 * which import reads back.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Readable } from 'node:stream';
import { BbyError, checkKey, checkValue, MAX_MESSAGE_BYTES, MAX_SET_MANY_ENTRIES, type Stats } from '@bby/core';
import { WebSocket } from 'ws';
import { BbyClient, NodeError, parseResponse, type RequestBody, UnreachableError } from './client.js';

/** set-many requests `import` keeps in flight. */
export const IMPORT_BATCHES_IN_FLIGHT = 4;
/** Requests `export` keeps in flight. */
export const EXPORT_IN_FLIGHT = 256;
/** Time between two progress lines on a terminal, in milliseconds. */
const PROGRESS_INTERVAL_MS = 250;
/** Export writes its output in chunks of about this many characters. */
const EXPORT_CHUNK_CHARS = 64 * 1024;

/** The input file cannot be read or holds an invalid entry; the message names the file and the line. */
export class ImportInputError extends Error {
  override name = 'ImportInputError';
}

/** What an import did. `stored + identical` is the number of `set`s answered true. */
export interface ImportSummary {
  /** Keys that were new on the node and are now stored. */
  stored: number;
  /** Keys the node already held with this very value. */
  identical: number;
  /** Keys the node holds with another value (left unchanged, as `set` does). */
  refused: number;
}

/** The import stopped at an invalid line, after sending the lines before it. */
export class ImportStoppedError extends ImportInputError {
  constructor(
    message: string,
    readonly summary: ImportSummary,
  ) {
    super(message);
  }
}

/** Where an import or export reports: a progress line (terminal only), refused keys. */
export interface BulkReporter {
  /** Writes a progress line (replaces the previous one); only called when progress is wanted. */
  progress?(text: string): void;
  /** Called for each refused key, with its line (JSON lines) or null (JSON object). */
  refused?(key: string, line: number | null): void;
}

// --- a pipelined connection -------------------------------------------------

interface Slot {
  readonly onResult: (result: unknown) => void;
}

/**
 * One WebSocket carrying many requests at once. `request` resolves when there
 * is room for another request; the first failure (an error answer, a lost
 * connection, no answer in time) is thrown by the next `request` or `drain`.
 */
export class Pipeline {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, Slot>();
  readonly #timer: NodeJS.Timeout;
  #nextId = 1;
  #failure: Error | undefined;
  #lastAnswerAt = Date.now();
  #room: (() => void) | undefined;
  #drained: (() => void) | undefined;
  #corked = false;

  private constructor(
    readonly url: string,
    socket: WebSocket,
    readonly inFlight: number,
    readonly timeoutMs: number,
  ) {
    this.#socket = socket;
    socket.on('message', (data) => this.#onMessage(String(data)));
    socket.on('close', (code, reason) => {
      const why = reason.length > 0 ? reason.toString() : code === 1009 ? 'message too large' : 'connection closed';
      this.#fail(new UnreachableError(url, `the node closed the connection: ${why}`));
    });
    // One timer for the connection rather than one per request.
    this.#timer = setInterval(() => {
      if (this.#pending.size > 0 && Date.now() - this.#lastAnswerAt > timeoutMs) {
        this.#fail(new UnreachableError(url, `no answer within ${timeoutMs} ms`));
      }
    }, Math.min(1_000, timeoutMs));
    this.#timer.unref();
  }

  /** Opens a connection; rejects with UnreachableError. */
  static connect(url: string, options: { inFlight: number; timeoutMs: number }): Promise<Pipeline> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: options.timeoutMs, maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false });
      socket.once('open', () => resolve(new Pipeline(url, socket, options.inFlight, options.timeoutMs)));
      socket.once('error', (error: NodeJS.ErrnoException) => {
        const reason = error.code === 'ECONNREFUSED' ? 'connection refused' : (error.code ?? error.message);
        reject(new UnreachableError(url, reason));
      });
      socket.on('error', () => undefined);
    });
  }

  /**
   * Sends a request; `onResult` gets its result, in the order of the
   * requests. Returns undefined when another request may be sent at once,
   * else a promise that resolves when one may. Throws the first failure.
   */
  request(body: RequestBody, onResult: (result: unknown) => void): Promise<void> | undefined {
    return this.requestText((id) => JSON.stringify({ ...body, id }), onResult);
  }

  /** As `request`, for a request written as text by `write(id)`. */
  requestText(write: (id: number) => string, onResult: (result: unknown) => void): Promise<void> | undefined {
    if (this.#failure !== undefined) throw this.#failure;
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#lastAnswerAt = Date.now();
    this.#pending.set(id, { onResult });
    this.#cork();
    this.#socket.send(write(id));
    if (this.#pending.size < this.inFlight) return undefined;
    return new Promise<void>((resolve) => (this.#room = resolve)).then(() => {
      if (this.#failure !== undefined) throw this.#failure;
    });
  }

  /** Sends one request and waits for its result. */
  async call(body: RequestBody): Promise<unknown> {
    let result: unknown;
    await this.request(body, (r) => (result = r));
    await this.drain();
    return result;
  }

  /**
   * Requests sent in one go leave in one write rather than one system call
   * each: the socket is corked until the current burst of work is done.
   */
  #cork(): void {
    const raw = (this.#socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (this.#corked || raw === undefined) return;
    this.#corked = true;
    raw.cork();
    setImmediate(() => {
      this.#corked = false;
      raw.uncork();
    });
  }

  /** Waits until every request is answered. */
  async drain(): Promise<void> {
    if (this.#pending.size > 0 && this.#failure === undefined) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (this.#failure !== undefined) throw this.#failure;
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING) this.#socket.close(1000, 'done');
  }

  #onMessage(text: string): void {
    const message = parseResponse(text);
    if (message === null) return;
    const slot = this.#pending.get(message.id);
    if (slot === undefined) return;
    this.#pending.delete(message.id);
    this.#lastAnswerAt = Date.now();
    if (message.type === 'reply') slot.onResult(message.result);
    else this.#fail(new NodeError(message.code, message.message));
    this.#wake();
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#pending.clear();
    clearInterval(this.#timer);
    this.#wake();
  }

  #wake(): void {
    if (this.#room !== undefined && (this.#pending.size < this.inFlight || this.#failure !== undefined)) {
      const room = this.#room;
      this.#room = undefined;
      room();
    }
    if (this.#drained !== undefined && (this.#pending.size === 0 || this.#failure !== undefined)) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained();
    }
  }
}

// --- reading the input --------------------------------------------------------

/** One entry of the input, with the line it came from (null inside a JSON object). */
export interface InputEntry {
  readonly key: string;
  readonly value: string;
  readonly line: number | null;
  /** The line's own JSON text (JSON lines input): sent as it is, with no stringify. */
  readonly text?: string;
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
  return { key, value, line, text };
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
    entries.push({ key, value, line: null });
  }
  return entries;
}

/** Lines of a text stream, in arrays, without their line ends. */
async function* readLines(input: Readable): AsyncGenerator<string[]> {
  input.setEncoding('utf8');
  let rest = '';
  for await (const chunk of input as AsyncIterable<string>) {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop()!;
    yield lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  }
  if (rest !== '') yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

/**
 * The entries of an input stream, in arrays as they are read. JSON lines
 * when the first non-blank line is on its own a JSON object with a "key"
 * field; otherwise the whole input is read as one JSON object of key to
 * value. Throws ImportInputError naming the line of the first invalid entry
 * (the entries before it, in the same chunk, are yielded first).
 */
export async function* readEntries(input: Readable, name: string): AsyncGenerator<InputEntry[]> {
  let mode: 'unknown' | 'lines' | 'object' = 'unknown';
  const objectText: string[] = [];
  // The first non-blank line, when it is a JSON object on its own: a JSON lines file with a mistake in it, or a one-line object.
  let firstObject: { text: string; line: number } | undefined;
  let lineNumber = 0;
  for await (const lines of readLines(input)) {
    const batch: InputEntry[] = [];
    for (const text of lines) {
      lineNumber++;
      if (mode === 'object') {
        objectText.push(text);
        continue;
      }
      if (text.trim() === '') {
        if (mode === 'unknown') objectText.push(text);
        continue;
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
          if (isObject) firstObject = { text, line: lineNumber };
          mode = 'object';
          objectText.push(text);
          continue;
        }
      }
      let entry: InputEntry;
      try {
        entry = parseJsonLine(text, name, lineNumber);
      } catch (error) {
        if (batch.length > 0) yield batch;
        throw error;
      }
      batch.push(entry);
    }
    if (batch.length > 0) yield batch;
  }
  if (mode !== 'object') return;
  let entries: InputEntry[];
  try {
    entries = parseJsonObject(objectText.join('\n'), name);
  } catch (error) {
    // Several objects, one per line, without "key" in the first: report it as JSON lines.
    const rest = objectText.slice(firstObject === undefined ? 0 : firstObject.line).join('').trim();
    if (firstObject !== undefined && rest !== '') parseJsonLine(firstObject.text, name, firstObject.line);
    throw error;
  }
  for (let i = 0; i < entries.length; i += 4096) yield entries.slice(i, i + 4096);
}

// --- import -------------------------------------------------------------------

/** Options of `importFile`. */
export interface ImportOptions {
  readonly url: string;
  /** Path of a file, or `-` for standard input. */
  readonly file: string;
  readonly timeoutMs: number;
  readonly inFlight?: number;
  readonly reporter?: BulkReporter;
  /** Standard input, for `-`; default process.stdin. */
  readonly stdin?: Readable;
}

/**
 * Sends every entry of `file` as a `set`. Throws ImportInputError before
 * connecting when the file cannot be opened, ImportStoppedError at an invalid
 * entry (after the entries before it are answered), UnreachableError or
 * NodeError when the node fails.
 */
export async function importFile(options: ImportOptions): Promise<ImportSummary> {
  const { file, reporter = {} } = options;
  const fromStdin = file === '-';
  const name = fromStdin ? 'standard input' : file;
  let input: Readable;
  let size = 0;
  if (fromStdin) input = options.stdin ?? process.stdin;
  else {
    try {
      const info = await stat(file);
      if (info.isDirectory()) throw new ImportInputError(`${file} is a folder; give a file of JSON lines or a JSON object`);
      size = info.size;
    } catch (error) {
      if (error instanceof ImportInputError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw new ImportInputError(code === 'ENOENT' ? `${file}: no such file` : `cannot read ${file}: ${code ?? (error as Error).message}`);
    }
    input = createReadStream(file);
  }
  const readError = new Promise<never>((_, reject) => {
    input.once('error', (error: NodeJS.ErrnoException) => reject(new ImportInputError(`cannot read ${name}: ${error.code ?? error.message}`)));
  });
  readError.catch(() => undefined);

  const pipeline = await Pipeline.connect(options.url, { inFlight: options.inFlight ?? IMPORT_BATCHES_IN_FLIGHT, timeoutMs: options.timeoutMs });
  const started = Date.now();
  let trues = 0;
  let refused = 0;
  let progressTimer: NodeJS.Timeout | undefined;
  const showProgress = reporter.progress;
  if (showProgress !== undefined) {
    progressTimer = setInterval(() => {
      const seconds = (Date.now() - started) / 1000;
      const rate = seconds > 0 ? Math.round((trues + refused) / seconds) : 0;
      const read = size > 0 ? (input as ReadStream).bytesRead / size : undefined;
      showProgress(`${read === undefined ? '' : `${progressBar(read)} `}${(trues + refused).toLocaleString('en-US')} keys, ${rate.toLocaleString('en-US')} keys/s`);
    }, PROGRESS_INTERVAL_MS);
    progressTimer.unref();
  }
  try {
    const before = (await pipeline.call({ type: 'stats' })) as Stats;
    const summarize = async (): Promise<ImportSummary> => {
      await pipeline.drain();
      const after = (await pipeline.call({ type: 'stats' })) as Stats;
      // A `true` does not say whether the key was new: the node's counter does (other writers at the same time count too).
      const stored = Math.max(0, Math.min(trues, after.writesAccepted - before.writesAccepted));
      return { stored, identical: trues - stored, refused };
    };
    try {
      const batches = readEntries(input, name);
      for (;;) {
        const next = await Promise.race([batches.next(), readError]);
        if (next.done) break;
        for (const batch of setManyBatches(next.value)) {
          const wait = pipeline.requestText(setManyText(batch), (results) => {
            (results as boolean[]).forEach((result, index) => {
              if (result === true) trues++;
              else {
                refused++;
                reporter.refused?.(batch[index]!.key, batch[index]!.line);
              }
            });
          });
          if (wait !== undefined) await wait;
        }
      }
    } catch (error) {
      if (!(error instanceof ImportInputError)) throw error;
      let summary: ImportSummary;
      try {
        summary = await summarize();
      } catch {
        throw error;
      }
      throw new ImportStoppedError(error.message, summary);
    }
    return await summarize();
  } finally {
    clearInterval(progressTimer);
    pipeline.close();
    if (!fromStdin) input.destroy();
  }
}

/**
 * A set-many request's entries take at most this many bytes of JSON, counted
 * at 6 bytes per character (the longest escape), so that any text fits the
 * frame cap; about 1,400 entries of a 16-byte key and a 100-byte value.
 */
const SET_MANY_BATCH_BYTES = MAX_MESSAGE_BYTES - 4096;

/** Cuts entries into set-many requests: at most MAX_SET_MANY_ENTRIES entries and SET_MANY_BATCH_BYTES each. */
function* setManyBatches(entries: readonly InputEntry[]): Generator<InputEntry[]> {
  let batch: InputEntry[] = [];
  let chars = 0;
  for (const entry of entries) {
    // A line's JSON text takes at most 3 UTF-8 bytes per character; a key and value still to be
    // written as JSON, up to 6 (the longest escape): count that much so a request always fits.
    const size = entry.text === undefined ? (entry.key.length + entry.value.length) * 6 + 32 : entry.text.length * 3 + 1;
    if (batch.length > 0 && (chars + size > SET_MANY_BATCH_BYTES || batch.length >= MAX_SET_MANY_ENTRIES)) {
      yield batch;
      batch = [];
      chars = 0;
    }
    batch.push(entry);
    chars += size;
  }
  if (batch.length > 0) yield batch;
}

/** The text of a set-many request for `batch`: JSON lines go as they were read, other entries are written. */
function setManyText(batch: readonly InputEntry[]): (id: number) => string {
  const entries = batch.map((entry) => entry.text ?? JSON.stringify({ key: entry.key, value: entry.value })).join(',');
  return (id) => `{"type":"set-many","id":${id},"entries":[${entries}]}`;
}

function progressBar(fraction: number, width = 24): string {
  const filled = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`;
}

// --- export -------------------------------------------------------------------

/** Options of `exportAll`. */
export interface ExportOptions {
  readonly url: string;
  readonly timeoutMs: number;
  /** Writes a chunk of output; may wait (backpressure). */
  readonly write: (text: string) => void | Promise<void>;
  readonly inFlight?: number;
  readonly reporter?: BulkReporter;
}

/** Writes every key and value of the node as JSON lines, in key order; resolves to the number of keys written. */
export async function exportAll(options: ExportOptions): Promise<number> {
  const lister = await BbyClient.connect(options.url, options.timeoutMs);
  let keys: string[];
  try {
    keys = await lister.allKeys();
  } finally {
    lister.close();
  }
  const pipeline = await Pipeline.connect(options.url, { inFlight: options.inFlight ?? EXPORT_IN_FLIGHT, timeoutMs: options.timeoutMs });
  let chunk = '';
  let written = 0;
  let pendingWrite: void | Promise<void> = undefined;
  const started = Date.now();
  try {
    const showProgress = options.reporter?.progress;
    let lastProgress = started;
    for (const key of keys) {
      const wait = pipeline.request({ type: 'get', key }, (value) => {
        // Keys are never deleted, so a listed key has a value; skip one anyway rather than print null.
        if (typeof value !== 'string') return;
        chunk += `${JSON.stringify({ key, value })}\n`;
        written++;
      });
      if (wait !== undefined) await wait;
      if (chunk.length >= EXPORT_CHUNK_CHARS) {
        await pendingWrite;
        pendingWrite = options.write(chunk);
        chunk = '';
      }
      if (showProgress !== undefined && Date.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = Date.now();
        showProgress(`${progressBar(written / keys.length)} ${written.toLocaleString('en-US')} of ${keys.length.toLocaleString('en-US')} keys`);
      }
    }
    await pipeline.drain();
    await pendingWrite;
    if (chunk !== '') await options.write(chunk);
    return written;
  } finally {
    pipeline.close();
  }
}

// --- the command line -----------------------------------------------------------

/** Where the bulk commands print; main.ts's Output. */
export interface BulkOutput {
  out(text: string): void;
  err(text: string): void;
  /** True when stderr is a terminal: a progress line is shown there. */
  readonly errIsTTY?: boolean;
  /** Writes to stdout and resolves once it may take more; default `out`. */
  outAndWait?(text: string): Promise<void>;
}

/** What main.ts knows when it hands over a bulk command. */
export interface BulkInvocation {
  readonly url: string;
  readonly configPath: string;
  readonly json: boolean;
  readonly timeoutMs: number;
}

/** Refused keys printed one by one before they are only counted. */
const REFUSED_SHOWN = 10;

/** Runs `import FILE` or `export`; resolves to the exit code (0 done, 1 node unreachable, 2 bad input or refused request). */
export async function runBulkCommand(name: 'import' | 'export', args: readonly string[], invocation: BulkInvocation, output: BulkOutput): Promise<number> {
  const progress = output.errIsTTY === true ? (text: string) => output.err(`\r${text}\x1b[K`) : undefined;
  const clearProgress = () => {
    if (progress !== undefined) output.err('\r\x1b[K');
  };
  try {
    if (name === 'export') {
      const write = output.outAndWait?.bind(output) ?? ((text: string) => output.out(text));
      try {
        await exportAll({ url: invocation.url, timeoutMs: invocation.timeoutMs, write, ...(progress ? { reporter: { progress } } : {}) });
      } catch (error) {
        // The reader went away (`bby ... export | head`): not an error of ours.
        if ((error as NodeJS.ErrnoException).code === 'EPIPE') return 0;
        throw error;
      } finally {
        clearProgress();
      }
      return 0;
    }
    let refusedCount = 0;
    const reporter: BulkReporter = {
      ...(progress ? { progress } : {}),
      refused: (key, line) => {
        refusedCount++;
        if (refusedCount > REFUSED_SHOWN) return;
        clearProgress();
        output.err(`bby: refused ${JSON.stringify(key)}${line === null ? '' : ` (line ${line})`}: the node holds another value for it\n`);
      },
    };
    const printSummary = (summary: ImportSummary) => {
      if (summary.refused > REFUSED_SHOWN) output.err(`bby: ... and ${summary.refused - REFUSED_SHOWN} more refused keys\n`);
      output.out(invocation.json ? `${JSON.stringify(summary)}\n` : `stored ${summary.stored}, identical ${summary.identical}, refused ${summary.refused}\n`);
    };
    try {
      const summary = await importFile({ url: invocation.url, file: args[0]!, timeoutMs: invocation.timeoutMs, reporter });
      clearProgress();
      printSummary(summary);
      return 0;
    } catch (error) {
      clearProgress();
      if (error instanceof ImportStoppedError) {
        const { stored, identical, refused } = error.summary;
        // A JSON object is checked whole before anything is sent; JSON lines go as they are read.
        const before = stored + identical + refused > 0 ? 'the entries before it were sent (importing again is safe: keys already stored count as identical)' : 'nothing was sent';
        output.err(`bby: ${error.message}\nbby: stopped there; ${before}\n`);
        printSummary(error.summary);
        return 2;
      }
      if (error instanceof ImportInputError) {
        output.err(`bby: ${error.message}\n`);
        return 2;
      }
      throw error;
    }
  } catch (error) {
    if (error instanceof UnreachableError) {
      output.err(`bby: ${error.message}; is the node started? Start it with: bby-node ${invocation.configPath}\n`);
      return 1;
    }
    if (error instanceof NodeError) {
      output.err(`bby: the node refused the request: ${error.message} (${error.code})\n`);
      return 2;
    }
    throw error;
  }
}
