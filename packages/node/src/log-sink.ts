/**
 * Where bby-node's log lines go, in one of two formats: `text` (the default,
 * for people: `12:00:00.000 info connected to peer node2 ...`) or `json`
 * (for log shippers: one object a line, `{time, level, node, event, message,
 * fields}`). Warnings go to stderr, the rest to stdout, in both formats.
 */
import { type LogFields, printable } from '@bby/core';

/** How much is logged: `info` everything, `warn` warnings only. */
export type LogLevel = 'info' | 'warn';

/** The two formats of `--log-format`. */
export type LogFormat = 'text' | 'json';

/** The log levels and formats bby-node takes, for its usage errors. */
export const LOG_LEVELS: readonly LogLevel[] = ['info', 'warn'];
/** See LOG_LEVELS. */
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** What a log line is about, beside its text: a stable event name and its facts. */
export interface LogDetails {
  readonly event: string;
  readonly fields?: LogFields | undefined;
}

/** Receives the node's log lines. */
export type LogSink = (level: 'info' | 'warn', message: string, details?: LogDetails) => void;

/** Options of `createLogSink`. */
export interface LogSinkOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  /** The node's id once known (it may be generated at start): the `node` of JSON lines. */
  readonly nodeId?: () => string | null;
  /** Where lines go; default process.stdout and process.stderr. */
  readonly write?: (stream: 'stdout' | 'stderr', line: string) => void;
  /** The clock of the `time` field; default Date.now. */
  readonly now?: () => number;
}

/** A log sink for `--log-level` and `--log-format`. */
export function createLogSink(options: LogSinkOptions = {}): LogSink {
  const level = options.level ?? 'info';
  const format = options.format ?? 'text';
  const write = options.write ?? ((stream, line) => (stream === 'stderr' ? process.stderr : process.stdout).write(line));
  const now = options.now ?? Date.now;
  return (lineLevel, message, details) => {
    if (level === 'warn' && lineLevel === 'info') return;
    const stream = lineLevel === 'warn' ? 'stderr' : 'stdout';
    const time = new Date(now()).toISOString();
    if (format === 'json') {
      // JSON.stringify escapes every control character: one line whatever the message or fields hold.
      const record = { time, level: lineLevel, node: options.nodeId?.() ?? null, event: details?.event ?? 'log', message, fields: details?.fields ?? {} };
      write(stream, `${JSON.stringify(record)}\n`);
      return;
    }
    // The core escapes what came from outside already; this keeps any message to one line whatever it holds.
    write(stream, `${time.slice(11, 23)} ${lineLevel} ${printable(message, Infinity)}\n`);
  };
}
