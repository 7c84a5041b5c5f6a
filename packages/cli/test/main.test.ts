/**
 * The command line of `bby`, in process (main() with a recording Output): a
 * usage error is one line with a pointer to --help, `--` ends the options, a
 * word that looks like an option after the command is an error naming `--`
 * (never the help with exit 0), and a bug is one line (stack under BBY_DEBUG=1).
 */
import { expect } from 'chai';
import { describeInternalError, main, type Output } from '../src/main.js';

/** Runs main() and returns its exit code and what it wrote. */
async function bby(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const output: Output = { out: (text) => void (out += text), err: (text) => void (err += text) };
  const code = await main(argv, output);
  return { code, out, err };
}

/** A config path that does not exist: a command line that parses gets as far as reading it (a config error, not a usage error). */
const MISSING = '/nonexistent/bby-main-test.json';

describe('bby main', () => {
  describe('usage errors', () => {
    const cases: { args: string[]; says: string }[] = [
      { args: [], says: 'bby: the config file is missing (bby --help says more)\n' },
      { args: [MISSING], says: 'bby: the command is missing (bby --help says more)\n' },
      { args: ['--frob', MISSING, 'keys'], says: 'bby: unknown option --frob (bby --help says more)\n' },
      { args: [MISSING, 'set', 'k', '--acks'], says: 'bby: --acks needs a value: a number of nodes from 1 to 1024, or all (as in --acks 2) (bby --help says more)\n' },
      { args: [MISSING, 'set', 'k', 'v', '--acks', '--json'], says: 'bby: --acks needs a value: a number of nodes from 1 to 1024, or all (as in --acks 2) (bby --help says more)\n' },
      { args: ['--timeout', MISSING, 'keys'], says: 'bby: --timeout needs a whole number of milliseconds, got "/nonexistent/bby-main-test.json" (bby --help says more)\n' },
      { args: [MISSING, 'keys', '--timeout'], says: 'bby: --timeout needs a value: a whole number of milliseconds (as in --timeout 5000) (bby --help says more)\n' },
      { args: [MISSING, 'set', 'h', '-h'], says: `bby: -h after the command is read as an option; to pass it as a value, put -- before the arguments: bby ${MISSING} set -- h -h (bby --help says more)\n` },
      { args: [MISSING, 'set', 'h', '--help'], says: `bby: --help after the command is read as an option; to pass it as a value, put -- before the arguments: bby ${MISSING} set -- h --help (bby --help says more)\n` },
      { args: [MISSING, 'set', 'k', '--no such'], says: `bby: --no such after the command is read as an option (an unknown one); to pass it as a value, put -- before the arguments: bby ${MISSING} set -- k '--no such' (bby --help says more)\n` },
      { args: [MISSING, 'keys', '-h'], says: 'bby: -h after the command is read as an option, and keys takes no arguments (bby --help says more)\n' },
      { args: [MISSING, 'set', 'k', '--json'], says: `bby: set takes 2 argument(s), got 1: bby ${MISSING} set KEY VALUE; --json was read as an option: to pass it as a value, put -- before the arguments (bby --help says more)\n` },
      { args: [MISSING, 'frob'], says: 'bby: unknown command "frob"; the commands are set, get, keys, peers, add-peer, remove-peer, stats, import, export, watch, health (bby --help says more)\n' },
    ];
    for (const { args, says } of cases) {
      it(`bby ${args.join(' ') || '(nothing)'}: exit 2, one line`, async () => {
        expect(await bby(...args)).to.deep.equal({ code: 2, out: '', err: says });
      });
    }
  });

  describe('-- and values that look like options', () => {
    it('after --, -h and --json are arguments: the command line parses and the config is read', async () => {
      for (const args of [[MISSING, 'set', '--', 'h', '-h'], ['--json', MISSING, 'set', '--', '--json', '--acks'], [MISSING, '--', 'set', '-h', '-h']]) {
        const result = await bby(...args);
        expect(result.code, args.join(' ')).to.equal(2);
        expect(result.err, args.join(' ')).to.match(/^bby: \/nonexistent\/bby-main-test.json: no such file;/).and.not.include('--help');
      }
    });

    it('a value starting with one dash other than -h passes as it is (-5, -)', async () => {
      for (const value of ['-5', '-', '-x']) expect((await bby(MISSING, 'set', 'k', value)).err).to.match(/^bby: \/nonexistent\/bby-main-test.json: no such file;/);
    });

    it('-h or --help before the command prints the help and exits 0', async () => {
      for (const args of [['-h'], ['--help'], [MISSING, '--help']]) {
        const result = await bby(...args);
        expect(result.code).to.equal(0);
        expect(result.out).to.match(/^usage: bby /);
      }
    });
  });

  describe('describeInternalError', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");

    it('is one line naming the error and where to report it; the stack only under BBY_DEBUG=1', () => {
      expect(describeInternalError(bug, false)).to.match(/^bby: internal error \(a bug of bby\): TypeError: Cannot read properties of undefined \(reading 'x'\); please report it .*BBY_DEBUG=1\n$/);
      expect(describeInternalError(bug, true)).to.include(bug.stack!);
    });
  });
});
