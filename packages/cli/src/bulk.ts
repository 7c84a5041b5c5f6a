/**
 * `bby CONFIG import FILE` and `bby CONFIG export`: many keys over one
 * connection, with many requests in flight instead of one round trip each.
 *
 * Import reads JSON lines (`{"key": "...", "value": "..."}` per line) or one
 * JSON object of key to value (import-input.ts), and sends the entries in
 * `set-many` requests of 128 KiB (one larger entry goes alone, in a request
 * of its size), IMPORT_BATCHES_IN_FLIGHT at a time. Export asks for `keys` (page by page), then
 * `get`s them, EXPORT_IN_FLIGHT at a time, and writes JSON lines in key order,
 * which import reads back.
 */
import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { type Readable } from 'node:stream';
import { type Stats } from '@bby/core';
import { BbyClient, type ConnectionTarget, Pipeline } from '@bby/client';
import { exitCodeFor, reportFailure } from './exit-code.js';
import { ImportInputError, readBatches } from './import-input.js';
import { progressLine } from './progress.js';

/** set-many requests `import` keeps in flight. */
export const IMPORT_BATCHES_IN_FLIGHT = 4;
/** Requests `export` keeps in flight. */
export const EXPORT_IN_FLIGHT = 256;
/** Time between two progress lines on a terminal, in milliseconds. */
const PROGRESS_INTERVAL_MS = 250;
/** Export writes its output in chunks of about this many characters. */
const EXPORT_CHUNK_CHARS = 64 * 1024;

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

// --- import -------------------------------------------------------------------

/** Options of `importFile`. */
export interface ImportOptions {
  /** The node: a ws:// URL, or a target made from a config by `connectionTarget`. */
  readonly target: ConnectionTarget | string;
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
  const { reporter = {} } = options;
  const input = await openImportInput(options.file, options.stdin);
  const pipeline = await Pipeline.connect(options.target, { inFlight: options.inFlight ?? IMPORT_BATCHES_IN_FLIGHT, timeoutMs: options.timeoutMs });
  const tally: ImportTally = { trues: 0, refused: 0 };
  const stopProgress = reporter.progress === undefined ? undefined : showImportProgress(reporter.progress, input, tally);
  try {
    const before = (await pipeline.call({ type: 'stats' })) as Stats;
    try {
      await sendBatches(pipeline, input, tally, reporter);
    } catch (error) {
      if (!(error instanceof ImportInputError)) throw error;
      const summary = await summarizeImport(pipeline, before, tally).catch(() => {
        throw error;
      });
      throw new ImportStoppedError(error.message, summary);
    }
    return await summarizeImport(pipeline, before, tally);
  } finally {
    stopProgress?.();
    pipeline.close();
    input.close();
  }
}

/** The file (or standard input) an import reads, opened before connecting. */
interface ImportInput {
  readonly stream: Readable;
  /** The file's name in messages: its path, or "standard input". */
  readonly name: string;
  /** The file's size in bytes, for the part read shown by the progress line; 0 for standard input. */
  readonly size: number;
  /** Rejects with ImportInputError when reading fails. */
  readonly readError: Promise<never>;
  /** Closes the file (standard input stays open). */
  close(): void;
}

/** Opens the input of an import: `-` for standard input, else a file that must exist and not be a folder (ImportInputError). */
async function openImportInput(file: string, stdin: Readable | undefined): Promise<ImportInput> {
  if (file === '-') return importInput(stdin ?? process.stdin, 'standard input', 0, () => undefined);
  let size: number;
  try {
    const info = await stat(file);
    if (info.isDirectory()) throw new ImportInputError(`${file} is a folder; give a file of JSON lines or a JSON object`);
    size = info.size;
  } catch (error) {
    if (error instanceof ImportInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ImportInputError(code === 'ENOENT' ? `${file}: no such file` : `cannot read ${file}: ${code ?? (error as Error).message}`);
  }
  const stream = createReadStream(file);
  return importInput(stream, file, size, () => stream.destroy());
}

function importInput(stream: Readable, name: string, size: number, close: () => void): ImportInput {
  const readError = new Promise<never>((_, reject) => {
    stream.once('error', (error: NodeJS.ErrnoException) => reject(new ImportInputError(`cannot read ${name}: ${error.code ?? error.message}`)));
  });
  readError.catch(() => undefined);
  return { stream, name, size, readError, close };
}

/** The answers of an import so far: `set`s answered true, and refused. */
interface ImportTally {
  trues: number;
  refused: number;
}

/** Shows a progress line every PROGRESS_INTERVAL_MS (with the part of the file read, when its size is known); returns what stops it. */
function showImportProgress(show: (text: string) => void, input: ImportInput, tally: ImportTally): () => void {
  const started = Date.now();
  const timer = setInterval(() => {
    const read = input.size > 0 ? (input.stream as ReadStream).bytesRead / input.size : undefined;
    show(progressLine(tally.trues + tally.refused, Date.now() - started, read));
  }, PROGRESS_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Sends the input's entries in set-many batches, counting the answers into `tally`; throws ImportInputError at an invalid entry or when reading fails. */
async function sendBatches(pipeline: Pipeline, input: ImportInput, tally: ImportTally, reporter: BulkReporter): Promise<void> {
  const batches = readBatches(input.stream, input.name);
  for (;;) {
    const next = await Promise.race([batches.next(), input.readError]);
    if (next.done) return;
    const batch = next.value;
    const wait = pipeline.requestFrame(
      (id) => batch.frame(id),
      (results) => {
        (results as boolean[]).forEach((result, index) => {
          if (result === true) tally.trues++;
          else {
            tally.refused++;
            reporter.refused?.(batch.keyAt(index), batch.lineAt(index));
          }
        });
      },
    );
    if (wait !== undefined) await wait;
  }
}

/** Waits for every answer, then tells new keys from identical ones by the node's count of accepted writes since `before`. */
async function summarizeImport(pipeline: Pipeline, before: Stats, tally: ImportTally): Promise<ImportSummary> {
  await pipeline.drain();
  const after = (await pipeline.call({ type: 'stats' })) as Stats;
  // A `true` does not say whether the key was new: the node's counter does (other writers at the same time count too).
  const stored = Math.max(0, Math.min(tally.trues, after.writesAccepted - before.writesAccepted));
  return { stored, identical: tally.trues - stored, refused: tally.refused };
}

// --- export -------------------------------------------------------------------

/** Options of `exportAll`. */
export interface ExportOptions {
  /** The node: a ws:// URL, or a target made from a config by `connectionTarget`. */
  readonly target: ConnectionTarget | string;
  readonly timeoutMs: number;
  /** Writes a chunk of output; may wait (backpressure). */
  readonly write: (text: string) => void | Promise<void>;
  readonly inFlight?: number;
  readonly reporter?: BulkReporter;
}

/** Writes every key and value of the node as JSON lines, in key order; resolves to the number of keys written. */
export async function exportAll(options: ExportOptions): Promise<number> {
  const lister = await BbyClient.connect(options.target, options.timeoutMs);
  let keys: string[];
  try {
    keys = await lister.allKeys();
  } finally {
    lister.close();
  }
  const pipeline = await Pipeline.connect(options.target, { inFlight: options.inFlight ?? EXPORT_IN_FLIGHT, timeoutMs: options.timeoutMs });
  let chunk = '';
  let written = 0;
  let pendingWrite: void | Promise<void> | undefined;
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
        showProgress(progressLine(written, lastProgress - started, written / keys.length, keys.length));
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
  readonly target: ConnectionTarget;
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
        await exportAll({ target: invocation.target, timeoutMs: invocation.timeoutMs, write, ...(progress ? { reporter: { progress } } : {}) });
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
      const summary = await importFile({ target: invocation.target, file: args[0]!, timeoutMs: invocation.timeoutMs, reporter });
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
        return exitCodeFor(error.code);
      }
      throw error;
    }
  } catch (error) {
    return reportFailure(error, invocation.configPath, output);
  }
}
