/**
 * Docs that a test keeps true: the ```console transcripts of README.md and
 * docs/course.md run against real bby-node processes with the real bby CLI,
 * the request/answer frames and JSON examples of docs/protocol.md are sent
 * to a real node. The conventions (what is normalised, `...`, `# or WORD`,
 * `<!-- doc-test: ... -->`) are in support/doc-transcripts.ts.
 *
 * Each file is one session, in the order of the file (the course's sections
 * follow one another), in a temp folder holding copies of examples/*.json
 * and of /tmp/..., every documented port (7000 to 7999) mapped to a free one
 * of four digits too (the documented one plus 1000, or another offset), so
 * that tables keep their columns and their order.
 */
import { expect } from 'chai';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { parseConfig, parseIncoming } from '@bby/core';
import {
  extractBlocks,
  expectedLine,
  lineMatches,
  matchOutput,
  matchUnordered,
  normaliseTimes,
  onlyReads,
  shapeDifferences,
  substitute,
  type DocBlock,
  type Step,
} from './support/doc-transcripts.js';
import { BBY_BIN, BBY_NODE_BIN, CLI_TIMEOUT_MS, isPortFree, makeTempDir, REPO_ROOT, startNode, TrackedProcess, useCleanup, waitFor, writeConfig } from './support/processes.js';

/** How long a read may take to show what the docs show (replication, catch-up), in ms. */
const CONVERGE_TIMEOUT_MS = 15_000;
/** How long a background node may take to log the documented lines, in ms. */
const LOG_TIMEOUT_MS = 15_000;

/** What was not run, printed at the end so that the count stays visible. */
const notRun: string[] = [];
const emulated: string[] = [];
let blocksRun = 0;

interface Background {
  /** The arguments of bby-node as the doc writes them. */
  readonly args: string;
  readonly proc: TrackedProcess;
  /** The block it was started in: the nodes of one block log to one terminal. */
  readonly terminal: string;
  /** Lines of its output already shown. */
  consumed: number;
}

/** One doc file's session: its temp folder, its ports, its background nodes. */
class Session {
  readonly #ports = new Map<number, number>();
  readonly #ids = new Map<string, string>();
  readonly #background: Background[] = [];
  /** What the session adds to a documented port (see #freeFourDigitPort). */
  #offset: number | undefined;

  private constructor(readonly dir: string) {}

  static async open(): Promise<Session> {
    const session = new Session(await makeTempDir());
    await mkdir(join(session.dir, 'examples'));
    await mkdir(join(session.dir, 'tmp'));
    for (const name of ['node1.json', 'node2.json', 'node3.json']) {
      const text = await readFile(join(REPO_ROOT, 'examples', name), 'utf8');
      await writeFile(join(session.dir, 'examples', name), await session.rewrite(text));
    }
    return session;
  }

  /** A documented text as the test runs it: its ports and /tmp paths. */
  async rewrite(text: string): Promise<string> {
    for (const match of text.matchAll(/\b7\d{3}\b/g)) {
      const port = Number(match[0]);
      if (!this.#ports.has(port)) this.#ports.set(port, await this.#freeFourDigitPort(port));
    }
    return text.replace(/\b7\d{3}\b/g, (port) => String(this.#ports.get(Number(port)))).replaceAll('/tmp/', `${this.dir}/tmp/`);
  }

  /**
   * A free port of four digits, as the documented ones: columns (`peers`) keep
   * their width. Outside 7000-7999, so that mapping back is one to one.
   */
  async #freeFourDigitPort(doc: number): Promise<number> {
    // Shifted by one offset for the whole session, so that ports keep their order (`peers` sorts by port).
    for (const offset of [this.#offset, 1000, 2000, -3000, -2000]) {
      if (offset !== undefined && (await isPortFree(doc + offset))) {
        if (this.#offset !== undefined && offset !== this.#offset) process.stdout.write(`      docs: port ${doc + this.#offset} is taken; ${doc} runs on ${doc + offset}, out of order\n`);
        this.#offset ??= offset;
        return doc + offset;
      }
    }
    throw new Error(`no free port for the documented ${doc} at ${doc + 1000}, ${doc + 2000}, ${doc - 3000} or ${doc - 2000}`);
  }

  /** What the test saw, as the docs would show it. */
  unmap(text: string): string[] {
    let out = text.replaceAll(`${this.dir}/tmp/`, '/tmp/').replaceAll(`${this.dir}/`, '');
    for (const [doc, real] of this.#ports) out = out.replace(new RegExp(`\\b${real}\\b`, 'g'), String(doc));
    for (const [real, doc] of this.#ids) out = out.replaceAll(real, doc);
    const lines = out.split('\n').map(normaliseTimes);
    while (lines.length > 0 && lines.at(-1) === '') lines.pop();
    return lines;
  }

  /** Runs one step; `terminal` names its block (background nodes of one block share a terminal). */
  async run(step: Step, where: string, terminal: string): Promise<void> {
    const command = step.command.trim();
    const kill = /^kill(?: -(\w+))? \$\(pgrep -f '(?:bby-node )?(.+)'\)$/.exec(command);
    if (kill !== null) return this.#kill(kill[1], kill[2]!, step, where);
    const background = /^npx bby-node (.+?)\s*&$/.exec(command);
    if (background !== null) return this.#startBackground(background[1]!, step, where, terminal);
    const expected = step.output.map((l) => normaliseTimes(l));
    const retry = onlyReads(command);
    const deadline = Date.now() + (retry ? CONVERGE_TIMEOUT_MS : 0);
    for (;;) {
      const lines = this.unmap(await this.#shell(await this.rewrite(command)));
      if (matchOutput(lines, expected)) return;
      if (Date.now() >= deadline) {
        expect.fail(`${where}: $ ${command}\nexpected:\n${step.output.join('\n')}\nbut got${retry ? ` (read again for ${CONVERGE_TIMEOUT_MS} ms)` : ''}:\n${lines.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async #shell(command: string): Promise<string> {
    // `npx bby` runs the build of this checkout; both streams in one pipe, in the order a terminal shows them.
    const prelude = `cd '${this.dir}' && exec 2>&1; npx() { "$@"; }; bby() { '${process.execPath}' '${BBY_BIN}' "$@"; }; bby-node() { '${process.execPath}' '${BBY_NODE_BIN}' "$@"; };`;
    const proc = new TrackedProcess(`$ ${command}`, 'bash', ['-c', `${prelude}\n${command}`]);
    await proc.waitForExit(CLI_TIMEOUT_MS);
    return proc.stdout;
  }

  async #startBackground(docArgs: string, step: Step, where: string, terminal: string): Promise<void> {
    const args = await this.rewrite(docArgs);
    const proc = new TrackedProcess(`bby-node ${docArgs}`, 'bash', ['-c', `cd '${this.dir}' && exec '${process.execPath}' '${BBY_NODE_BIN}' ${args} 2>&1`]);
    this.#background.push({ args: docArgs, proc, terminal, consumed: 0 });
    // A config without "id": the node generates one; the docs show the one of their run.
    const configPath = resolve(this.dir, args.split(/\s+/).at(-1)!);
    const generated = !('id' in (JSON.parse(await readFile(configPath, 'utf8')) as object));
    const documentedId = step.output.map((l) => / as node (\S+)$/.exec(l)?.[1]).find((id) => id !== undefined);
    if (generated && documentedId !== undefined) {
      const match = await proc.waitForOutput(/listening on wss?:\/\/\S+ as node (\S+)/, LOG_TIMEOUT_MS);
      this.#ids.set(match[1]!, documentedId);
    }
    const expected = step.output.map((l) => normaliseTimes(l));
    let result = { missing: [] as string[], extra: [] as string[] };
    try {
      await waitFor(
        () => {
          result = matchUnordered(this.#freshLogLines(terminal), expected);
          return result.missing.length === 0;
        },
        { timeoutMs: LOG_TIMEOUT_MS, intervalMs: 50, what: 'the documented log lines' },
      );
    } catch {
      expect.fail(`${where}: $ ${step.command}\nthese lines never appeared:\n${result.missing.join('\n')}\nthe nodes logged:\n${this.#freshLogLines(terminal).join('\n')}`);
    }
    expect(result.extra, `${where}: $ ${step.command}: lines the doc does not show (add "..." where other lines may come)`).to.deep.equal([]);
    for (const b of this.#background) b.consumed = b.proc.stdout.split('\n').length - 1;
  }

  /** The complete lines every background node logged since the last command that showed them. */
  #freshLogLines(terminal: string): string[] {
    return this.#background.filter((b) => b.terminal === terminal).flatMap((b) => {
      const lines = b.proc.stdout.split('\n').slice(0, -1).slice(b.consumed);
      return lines.length === 0 ? [] : this.unmap(lines.join('\n'));
    });
  }

  async #kill(signal: string | undefined, docArgs: string, step: Step, where: string): Promise<void> {
    const target = this.#background.find((b) => b.args === docArgs && b.proc.exitStatus === undefined);
    if (target === undefined) expect.fail(`${where}: $ ${step.command}: no node runs with ${docArgs}`);
    emulated.push(`${where}: ${step.command}`);
    // The documented pattern finds this node by its process title (bby-node sets it), paths mapped as for every command. The signal
    // still goes to this pid alone: a real pgrep would also find the nodes of anyone else running the examples on this machine.
    const cmdline = await readFile(`/proc/${target.proc.pid}/cmdline`, 'utf8').catch(() => undefined);
    if (cmdline !== undefined) {
      const title = cmdline.replaceAll('\0', ' ').trim();
      expect(title, `${where}: $ ${step.command}: the process title pgrep -f reads`).to.include(`bby-node ${await this.rewrite(docArgs)}`);
    }
    target.proc.child.kill(signal === undefined ? 'SIGTERM' : signal === '9' ? 'SIGKILL' : (`SIG${signal.replace(/^SIG/, '')}` as NodeJS.Signals));
    await target.proc.waitForExit(5_000);
    expect(step.output, `${where}: kill prints nothing`).to.deep.equal([]);
  }
}

async function docBlocks(file: string): Promise<DocBlock[]> {
  return extractBlocks(file, await readFile(join(REPO_ROOT, file), 'utf8'));
}

/** Runs the console blocks of one file, in order, in one session. */
async function runTranscripts(file: string): Promise<void> {
  const blocks = await docBlocks(file);
  const session = await Session.open();
  for (const block of blocks) {
    if (block.kind === 'json') {
      // A config example: it must be a config bby-node takes.
      expect(() => parseConfig(block.text, `${file}:${block.line}`), `${file}:${block.line}`).not.to.throw();
      blocksRun++;
      continue;
    }
    if (block.skip !== undefined) {
      notRun.push(`${file}:${block.line}: ${block.skip}`);
      continue;
    }
    for (const step of block.before) await session.run(step, `${file}:${step.line} (hidden, before the block of line ${block.line})`, `${file}:${block.line}:before`);
    for (const step of block.steps) await session.run(step, `${file}:${step.line}`, `${file}:${block.line}`);
    blocksRun++;
  }
}

/** A raw WebSocket to a node: each frame sent, the next frame received. */
async function openSocket(url: string): Promise<{ exchange(text: string): Promise<unknown>; close(): void }> {
  const socket = new WebSocket(url);
  const inbox: string[] = [];
  socket.on('message', (data) => inbox.push(String(data)));
  await new Promise<void>((resolveOpen, reject) => {
    socket.once('open', resolveOpen);
    socket.once('error', reject);
  });
  return {
    async exchange(text) {
      socket.send(text);
      await waitFor(() => inbox.length > 0, { timeoutMs: 10_000, intervalMs: 10, what: `an answer to ${text}` });
      return JSON.parse(inbox.shift()!);
    },
    close: () => socket.close(),
  };
}

describe('docs: the transcripts and examples of the docs hold against real nodes', function () {
  this.timeout(240_000);
  useCleanup();

  after(() => {
    process.stdout.write(`      docs: ${blocksRun} blocks run; ${emulated.length} kill $(pgrep ...) lines emulated on the nodes the test started; ${notRun.length} blocks not run:\n`);
    for (const line of notRun) process.stdout.write(`        not run: ${line}\n`);
  });

  it('README.md: the console transcripts', async () => {
    await runTranscripts('README.md');
  });

  it('docs/course.md: the console transcripts, as one session', async () => {
    await runTranscripts('docs/course.md');
  });

  it('docs/protocol.md: each → frame sent to a node gets the ← answer in shape; the JSON examples parse; stats has the documented fields', async () => {
    const blocks = await docBlocks('docs/protocol.md');
    const session = await Session.open();
    // The doc's 7003 is node3; its 7999 stays free (a port nobody listens on).
    await startNode(await writeConfig({ id: 'node3', port: Number(await session.rewrite('7003')) }));
    await session.rewrite('7999');
    const node1 = await startNode({ id: 'node1' });
    const socket = await openSocket(`ws://${node1.address}`);
    const strings = new Map<string, string>();
    expect(blocks.filter((b) => b.kind === 'frames').length, 'request/answer blocks in docs/protocol.md').to.be.at.least(1);
    for (const block of blocks) {
      if (block.skip !== undefined) {
        notRun.push(`docs/protocol.md:${block.line}: ${block.skip}`);
        continue;
      }
      if (block.kind === 'frames') {
        for (const step of block.steps) {
          const answer = await socket.exchange(substitute(await session.rewrite(step.command), strings));
          const seen = JSON.parse(session.unmap(JSON.stringify(answer)).join('\n')) as unknown;
          expect(step.output, `docs/protocol.md:${step.line}: one answer per frame`).to.have.length(1);
          const differences = shapeDifferences(seen, JSON.parse(step.output[0]!), '', strings);
          expect(differences, `docs/protocol.md:${step.line}: ${step.command}`).to.deep.equal([]);
        }
      } else if (block.kind === 'json' && block.tags.includes('stats')) {
        const stats = await socket.exchange('{"type":"stats","id":"s"}');
        const documented = JSON.parse(block.text) as Record<string, unknown>;
        expect(shapeDifferences((stats as { result: unknown }).result, { ...documented, writable: true }), `docs/protocol.md:${block.line}: Stats`).to.deep.equal([]);
      } else if (block.kind === 'json') {
        const parsed = parseIncoming(block.text);
        expect(parsed.ok, `docs/protocol.md:${block.line}: ${parsed.ok ? '' : parsed.error.message}`).to.equal(true);
      } else {
        expect.fail(`docs/protocol.md:${block.line}: a console block; protocol.md has frames`);
      }
      blocksRun++;
    }
    socket.close();
  });
});

describe('docs: the transcript conventions (support/doc-transcripts.ts)', () => {
  it('reads "# or WORD" as one word that may differ, and any other "# " as a comment', () => {
    const line = expectedLine('127.0.0.1:7003  node3  outbound   connected        # or inbound: whichever of the two dialed first');
    expect(line).to.deep.equal({ text: '127.0.0.1:7003  node3  outbound   connected', or: 'inbound' });
    expect(lineMatches('127.0.0.1:7003  node3  inbound    connected', line)).to.equal(true);
    expect(lineMatches('127.0.0.1:7003  node3  outbound   connected', line)).to.equal(true);
    expect(lineMatches('127.0.0.1:7003  node3  inbound    down', line)).to.equal(false);
    expect(lineMatches('127.0.0.1:7003  node2  inbound    connected', line)).to.equal(false);
    expect(expectedLine('42   # a comment')).to.deep.equal({ text: '42' });
    expect(lineMatches('43', expectedLine('42   # a comment'))).to.equal(false);
  });

  it('matches "..." with any number of lines, and nothing else', () => {
    expect(matchOutput(['a', 'x', 'y', 'b'], ['a', '...', 'b'])).to.equal(true);
    expect(matchOutput(['a', 'b'], ['a', '...', 'b'])).to.equal(true);
    expect(matchOutput(['a', 'b', 'c'], ['a', 'b'])).to.equal(false);
    expect(matchOutput(['a'], ['a', 'b'])).to.equal(false);
  });

  it('matches background logs in any order, with no extra line unless "..." allows it', () => {
    expect(matchUnordered(['b', 'a'], ['a', 'b'])).to.deep.equal({ missing: [], extra: [] });
    expect(matchUnordered(['b', 'a', 'c'], ['a', 'b'])).to.deep.equal({ missing: [], extra: ['c'] });
    expect(matchUnordered(['b', 'c'], ['...', 'a', 'b'])).to.deep.equal({ missing: ['a'], extra: [] });
  });

  it('reads again only commands that only read', () => {
    for (const c of ['npx bby examples/node3.json get MonChamp       # replicated', 'npx bby --json examples/node3.json stats | jq -c .', 'npx bby examples/node2.json peers', 'for n in 1 2; do npx bby --json examples/node$n.json stats | jq -c .; done']) {
      expect(onlyReads(c), c).to.equal(true);
    }
    for (const c of ['npx bby examples/node1.json set MonChamp 43', 'npx bby-node examples/node1.json &', 'npx bby x.json export > /tmp/b.jsonl', 'npx bby examples/node1.json add-peer 127.0.0.1:7003']) {
      expect(onlyReads(c), c).to.equal(false);
    }
  });

  it('compares answers in shape, types, ids and booleans exactly, and collects the strings that differ', () => {
    const strings = new Map<string, string>();
    expect(shapeDifferences({ type: 'reply', id: 5, result: ['a'], cursor: '2.aa' }, { type: 'reply', id: 5, result: ['MonChamp'], cursor: '1.4d6f1c2a' }, '', strings)).to.deep.equal([]);
    expect(strings.get('1.4d6f1c2a')).to.equal('2.aa');
    expect(shapeDifferences({ type: 'reply', id: 5, result: false }, { type: 'reply', id: 5, result: true })).to.have.length(1);
    expect(shapeDifferences({ type: 'reply', id: 5, result: {}, extra: 1 }, { type: 'reply', id: 5, result: {} })[0]).to.include('undocumented field "extra"');
    expect(shapeDifferences({ type: 'error', id: 1, code: 'BAD_MESSAGE' }, { type: 'error', id: 1, code: 'UNKNOWN_TYPE' })).to.have.length(1);
  });
});
