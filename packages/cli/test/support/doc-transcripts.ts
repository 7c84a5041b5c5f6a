/**
 * Extracts the runnable examples of the docs, and compares what they print
 * with what the docs say (docs-transcripts.test.ts runs them against real
 * nodes). Pure code: no processes, no files.
 *
 * Conventions in the Markdown (keep them few; each is written where it is used):
 *
 * - A ```console block is a transcript: a line `$ command` is a command (a
 *   `# comment` on it is the shell's), the lines up to the next `$ ` are its
 *   output, stdout and stderr as a terminal shows them.
 * - A line `...` alone in an output stands for any number of lines.
 * - A command ending in `&` starts a node in the background: its output is
 *   the log lines that the nodes started in the same block (one terminal)
 *   print meanwhile; nodes of a hidden `before` have a terminal of their own. Concurrent events log in any order, so those lines must all
 *   appear, in any order; other lines only where there is a `...`.
 * - An output line may end with an annotation, two spaces or more then `# `:
 *   `# or WORD[: why]` means one word of the line may read WORD instead
 *   (such as "outbound  # or inbound: whichever of the two dialed first").
 *   Any other text after `# ` on an output line is a comment, not compared.
 * - Before a block, HTML comments (invisible on GitHub) say what the test
 *   does beyond the block:
 *   `<!-- doc-test: skip: why -->`: the block is not run; the test prints
 *   the count and the reasons, never skips silently.
 *   `<!-- doc-test: before` + transcript lines + `-->`: a hidden transcript
 *   run (and compared) first, for steps the prose describes, such as
 *   starting the nodes or writing a config.
 * - A command that only reads (no set, add-peer, import, node start, kill,
 *   no redirection into a file) whose output differs is run again, for up to
 *   a bounded time: replicated state converges, the docs show it converged.
 * - `kill -SIGNAL $(pgrep -f 'bby-node CONFIG')` is carried out by the test
 *   on the node it started with CONFIG, after checking that the node's
 *   process title is what the pattern finds; not by a real pgrep, which would
 *   also find anyone else's nodes of the same config on the machine. The
 *   test counts these as emulated.
 * - docs/protocol.md: a ```text block whose lines start with `→ ` (a frame
 *   sent) and `← ` (the answer expected) is sent to a real node line by line;
 *   text after the JSON on a line is a comment. Answers are compared in
 *   shape (same fields, same JSON types, arrays element by element), and
 *   exactly for `type`, `id`, `code`, booleans and null. A string of an
 *   answer that differs (a cursor) replaces its documented value in the
 *   frames sent after it. A ```json block is a frame that must parse, except
 *   the one after `<!-- doc-test: stats -->`, whose fields must be exactly
 *   those of a real node's `stats`.
 *
 * Normalised before comparing: log times (`19:26:29.689`), ports (the test
 * runs on free ports and maps them back to the documented 7001...), paths
 * (its temp folder back to `/tmp/...` and `examples/...`), and generated node
 * ids (learnt from a node's `listening ... as node ID` line).
 */

/** A command of a transcript with the output the docs show for it. */
export interface Step {
  readonly command: string;
  /** Output lines as written, annotations included (matchOutput reads them). */
  readonly output: readonly string[];
  /** Line of the `$ ` in its file, 1-based. */
  readonly line: number;
}

/** A fenced block of a doc file the test knows what to do with. */
export interface DocBlock {
  readonly file: string;
  /** Line of the opening fence, 1-based. */
  readonly line: number;
  readonly kind: 'console' | 'frames' | 'json';
  /** Console blocks: the steps; frames blocks: one step per `→ ` line, its answer as output. */
  readonly steps: readonly Step[];
  /** The block's text (json blocks). */
  readonly text: string;
  /** Why the block is not run, from `<!-- doc-test: skip: why -->`. */
  readonly skip?: string;
  /** Hidden steps to run first, from `<!-- doc-test: before ... -->`. */
  readonly before: readonly Step[];
  /** Other directive words (`stats`). */
  readonly tags: readonly string[];
}

const DIRECTIVE = /^<!--\s*doc-test:\s*([\s\S]*?)-->$/;

/** Splits transcript lines into steps (`$ ` lines and their output). */
export function parseTranscript(lines: readonly string[], firstLine: number): Step[] {
  const steps: { command: string; output: string[]; line: number }[] = [];
  lines.forEach((text, index) => {
    if (text.startsWith('$ ')) steps.push({ command: text.slice(2), output: [], line: firstLine + index });
    else if (steps.length > 0) steps.at(-1)!.output.push(text);
    else if (text.trim() !== '') throw new Error(`line ${firstLine + index}: output before any "$ " command: ${text}`);
  });
  for (const step of steps) while (step.output.length > 0 && step.output.at(-1)!.trim() === '') step.output.pop();
  return steps;
}

function parseFrames(lines: readonly string[], firstLine: number): Step[] {
  const steps: { command: string; output: string[]; line: number }[] = [];
  lines.forEach((text, index) => {
    if (text.startsWith('→ ')) steps.push({ command: jsonPrefix(text.slice(2)), output: [], line: firstLine + index });
    else if (text.startsWith('← ')) {
      if (steps.length === 0) throw new Error(`line ${firstLine + index}: an answer before any frame`);
      steps.at(-1)!.output.push(jsonPrefix(text.slice(2)));
    }
  });
  return steps;
}

/** The JSON object at the start of `text` (what follows it is a comment). */
export function jsonPrefix(text: string): string {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return text.slice(0, i + 1);
    }
  }
  throw new Error(`no complete JSON object in ${JSON.stringify(text)}`);
}

/**
 * The blocks of one Markdown file the test runs: ```console transcripts,
 * ```text blocks of `→`/`←` frames, and ```json blocks, each with the
 * directives of the HTML comments right before it.
 */
export function extractBlocks(file: string, markdown: string): DocBlock[] {
  const lines = markdown.split('\n');
  const blocks: DocBlock[] = [];
  let pending: { skip?: string; before: Step[]; tags: string[] } = { before: [], tags: [] };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('<!--') && line.includes('doc-test:')) {
      // A directive may span lines, up to its "-->".
      let end = i;
      while (!lines[end]!.includes('-->')) end++;
      const text = lines.slice(i, end + 1).join('\n');
      const match = DIRECTIVE.exec(text.trim());
      if (match === null) throw new Error(`${file}:${i + 1}: a doc-test comment must be <!-- doc-test: ... -->`);
      const body = match[1]!;
      const [word, ...rest] = body.split('\n');
      const head = word!.trim();
      if (head.startsWith('skip:')) pending.skip = head.slice('skip:'.length).trim();
      else if (head === 'before') pending.before.push(...parseTranscript(rest.filter((l) => l.trim() !== ''), i + 2));
      else if (/^[a-z-]+$/.test(head)) pending.tags.push(head);
      else throw new Error(`${file}:${i + 1}: unknown doc-test directive ${JSON.stringify(head)}`);
      i = end;
      continue;
    }
    const fence = /^```(\w*)\s*$/.exec(line);
    if (fence === null) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    const body = lines.slice(i + 1, end);
    const language = fence[1]!;
    const base = { file, line: i + 1, text: body.join('\n'), before: pending.before, tags: pending.tags, ...(pending.skip === undefined ? {} : { skip: pending.skip }) };
    if (language === 'console') blocks.push({ ...base, kind: 'console', steps: parseTranscript(body, i + 2) });
    else if (language === 'text' && body.some((l) => l.startsWith('→ '))) blocks.push({ ...base, kind: 'frames', steps: parseFrames(body, i + 2) });
    else if (language === 'json') blocks.push({ ...base, kind: 'json', steps: [] });
    else if (pending.skip !== undefined || pending.before.length > 0 || pending.tags.length > 0) throw new Error(`${file}:${i + 1}: a doc-test directive before a block the test does not run`);
    pending = { before: [], tags: [] };
    i = end;
  }
  return blocks;
}

// --- output ------------------------------------------------------------------

/** An expected output line, its annotation taken apart. */
export interface ExpectedLine {
  readonly text: string;
  /** `# or WORD`: one word of the line may read WORD instead. */
  readonly or?: string;
  /** `...`: any number of lines. */
  readonly ellipsis?: true;
}

/** Reads the annotation of an output line (see the file header). */
export function expectedLine(raw: string): ExpectedLine {
  if (raw.trim() === '...') return { text: '...', ellipsis: true };
  const annotation = /^(.*?\S)\s{2,}# (.*)$/.exec(raw);
  if (annotation === null) return { text: raw.trimEnd() };
  const or = /^or (\S+?)(:|$)/.exec(annotation[2]!);
  return { text: annotation[1]!, ...(or === null ? {} : { or: or[1]! }) };
}

const words = (text: string) => text.trim().split(/\s+/);

/** True when an actual line matches an expected one (exactly, or with the one word of `# or` swapped). */
export function lineMatches(actual: string, expected: ExpectedLine): boolean {
  if (actual.trimEnd() === expected.text) return true;
  if (expected.or === undefined) return false;
  const a = words(actual);
  const e = words(expected.text);
  if (a.length !== e.length) return false;
  const differing = a.flatMap((word, i) => (word === e[i] ? [] : [i]));
  return differing.length === 1 && a[differing[0]!] === expected.or;
}

/** True when the actual lines match the expected ones in order, `...` standing for any lines. */
export function matchOutput(actual: readonly string[], expected: readonly string[]): boolean {
  const want = expected.map(expectedLine);
  const memo = new Map<string, boolean>();
  const from = (a: number, e: number): boolean => {
    const key = `${a},${e}`;
    const known = memo.get(key);
    if (known !== undefined) return known;
    let result: boolean;
    if (e === want.length) result = a === actual.length;
    else if (want[e]!.ellipsis) result = from(a, e + 1) || (a < actual.length && from(a + 1, e));
    else result = a < actual.length && lineMatches(actual[a]!, want[e]!) && from(a + 1, e + 1);
    memo.set(key, result);
    return result;
  };
  return from(0, 0);
}

/**
 * Matches log lines that came in any order: every expected line must match a
 * distinct actual one. Returns the expected lines still missing (empty when
 * all are there) and whether actual lines are left over where no `...` allows it.
 */
export function matchUnordered(actual: readonly string[], expected: readonly string[]): { missing: string[]; extra: string[] } {
  const want = expected.map(expectedLine);
  const free = [...actual];
  const missing: string[] = [];
  for (const line of want) {
    if (line.ellipsis) continue;
    const index = free.findIndex((a) => lineMatches(a, line));
    if (index === -1) missing.push(line.text);
    else free.splice(index, 1);
  }
  return { missing, extra: want.some((l) => l.ellipsis) ? [] : free };
}

/** Log times (`19:26:29.689 info ...`) read the same whatever the clock. */
export function normaliseTimes(line: string): string {
  return line.replace(/^\d\d:\d\d:\d\d\.\d{3} /, '00:00:00.000 ');
}

/** True for a command that only reads: run again while its output differs (see the file header). */
export function onlyReads(command: string): boolean {
  if (/&\s*$/.test(command) || /(^|\s)>/.test(command)) return false;
  if (/\b(kill|bby-node|echo\s+'\{)/.test(command)) return false;
  const bbyCommands = [...command.matchAll(/\bbby\s+(?:--?\S+\s+(?:\d+\s+)?)*\S+\.json\s+(\S+)/g)].map((m) => m[1]!);
  if (bbyCommands.length === 0) return /^(jq|head|cat)\b/.test(command.trim());
  return bbyCommands.every((c) => ['get', 'keys', 'peers', 'getPeers', 'stats', 'export'].includes(c));
}

// --- frames (docs/protocol.md) -------------------------------------------------

/** Fields whose value is compared exactly, not only in kind. */
const EXACT_FIELDS = new Set(['type', 'id', 'code']);

/**
 * Differences between an answer and the documented one, in shape (see the
 * file header); empty when they agree. `strings` collects documented string
 * values that came back otherwise (documented value to actual one).
 */
export function shapeDifferences(actual: unknown, documented: unknown, path = '', strings = new Map<string, string>(), exact = false): string[] {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  const where = path === '' ? 'the answer' : path;
  if (kind(actual) !== kind(documented)) return [`${where} is ${JSON.stringify(actual)}, the doc has ${JSON.stringify(documented)}`];
  if (Array.isArray(documented)) {
    const a = actual as unknown[];
    if (a.length !== documented.length) return [`${where} has ${a.length} items, the doc ${documented.length}: ${JSON.stringify(actual)}`];
    return documented.flatMap((item, i) => shapeDifferences(a[i], item, `${path}[${i}]`, strings));
  }
  if (typeof documented === 'object' && documented !== null) {
    const a = actual as Record<string, unknown>;
    const d = documented as Record<string, unknown>;
    const missing = Object.keys(d).filter((k) => !(k in a));
    const extra = Object.keys(a).filter((k) => !(k in d));
    if (missing.length > 0 || extra.length > 0) {
      return [`${where}: ${[...missing.map((k) => `no field "${k}"`), ...extra.map((k) => `an undocumented field "${k}"`)].join(', ')}: ${JSON.stringify(actual)}`];
    }
    return Object.keys(d).flatMap((k) => shapeDifferences(a[k], d[k], path === '' ? k : `${path}.${k}`, strings, EXACT_FIELDS.has(k)));
  }
  if (typeof documented === 'boolean' || exact) {
    return actual === documented ? [] : [`${where} is ${JSON.stringify(actual)}, the doc says ${JSON.stringify(documented)}`];
  }
  if (typeof documented === 'string' && actual !== documented) strings.set(documented, actual as string);
  return [];
}

/** A frame to send, with the documented strings that came back otherwise replaced by what came back. */
export function substitute(frame: string, strings: ReadonlyMap<string, string>): string {
  let text = frame;
  for (const [documented, actual] of strings) if (documented.length >= 6) text = text.split(JSON.stringify(documented)).join(JSON.stringify(actual));
  return text;
}
