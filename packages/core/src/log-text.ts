/**
 * Text that came from the network, made safe to put in a log line: a peer or
 * a client chooses it, so it must not be able to forge lines (a newline),
 * move the terminal's cursor (an escape sequence) or hide text (bidirectional
 * overrides), nor make one line huge.
 */

/** Longest piece of outside text put in a log line, in characters; the rest is cut with an ellipsis. */
export const MAX_LOGGED_TEXT_LENGTH = 200;

// C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides and isolates.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters to escape.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character written as an escape (`\n`, `\u001b`), cut to `maxLength`. */
export function printable(text: string, maxLength = MAX_LOGGED_TEXT_LENGTH): string {
  const cut = text.length > maxLength ? `${text.slice(0, maxLength)}…` : text;
  return cut.replace(UNPRINTABLE, (char) => {
    switch (char) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
}

/** `text` as a quoted, escaped string for a log line, as JSON writes it but with every control character escaped. */
export function quoted(text: string, maxLength = MAX_LOGGED_TEXT_LENGTH): string {
  return `"${printable(text.replace(/["\\]/g, (char) => `\\${char}`), maxLength)}"`;
}
