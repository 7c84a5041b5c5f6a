/**
 * End to end: `bby` behaves like a Unix tool. A reader that goes away
 * (`bby CONFIG keys | head -1`) ends every command quietly with exit 0, and
 * `--` lets any value be stored (`bby CONFIG set -- h -h`), while `set h -h`
 * is a usage error, not the help with exit 0.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { BBY_BIN, startNode, testDir, useCleanup, type NodeHandle } from './support/processes.js';

const run = promisify(execFile);

/**
 * Runs `bby ARGS` with a stdout whose reader goes away: at once (`closeAt`
 * 'start': before any answer is written) or after the first chunk (`head`).
 */
function bbyIntoClosedPipe(args: readonly string[], closeAt: 'start' | 'first-chunk'): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; received: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BBY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let received = 0;
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (closeAt === 'start') child.stdout.destroy();
    else
      child.stdout.once('data', (chunk: Buffer) => {
        received = chunk.length;
        child.stdout.destroy();
      });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bby ${args.join(' ')} still running after 15 s; stderr: ${stderr}`));
    }, 15_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, received });
    });
  });
}

describe('e2e: bby as a Unix tool', function () {
  this.timeout(60_000);
  useCleanup();

  describe('a closed stdout (EPIPE)', () => {
    let node: NodeHandle;
    const KEYS = 30_000;

    beforeEach(async () => {
      node = await startNode({ id: 'epipe', peers: ['127.0.0.1:1'] });
      // Far more than a pipe holds (64 KiB): the writes after the reader left fail.
      const lines = Array.from({ length: KEYS }, (_, i) => `${JSON.stringify({ key: `key-${String(i).padStart(6, '0')}`, value: 'v' })}\n`).join('');
      const file = join(await testDir(), 'keys.jsonl');
      await writeFile(file, lines);
      expect((await node.bby('import', file)).code).to.equal(0);
      expect((await node.bby('set', 'big', 'x'.repeat(120 * 1024))).stdout).to.equal('true\n');
    });

    it('keys, --json keys, get, peers, stats and export: exit 0 and nothing on stderr, whether the reader leaves at once or after the first chunk', async () => {
      const commands = [['keys'], ['--json', 'keys'], ['get', 'big'], ['peers'], ['--json', 'peers'], ['stats'], ['--json', 'stats'], ['export']];
      for (const command of commands) {
        const args = command[0] === '--json' ? ['--json', node.path, ...command.slice(1)] : [node.path, ...command];
        for (const closeAt of ['start', 'first-chunk'] as const) {
          const result = await bbyIntoClosedPipe(args, closeAt);
          expect(result, `bby ${command.join(' ')} (${closeAt})`).to.include({ code: 0, signal: null, stderr: '' });
        }
      }
    });

    it("in a shell: bby CONFIG keys | head -1 prints the first key, and bby's exit status is 0", async () => {
      const script = `set -o pipefail; '${process.execPath}' '${BBY_BIN}' '${node.path}' keys | head -1; echo "status \${PIPESTATUS[0]}"`;
      const { stdout, stderr } = await run('bash', ['-c', script], { timeout: 15_000 });
      expect(stdout).to.equal('big\nstatus 0\n');
      expect(stderr).to.equal('');
    });
  });

  describe('--', () => {
    it('set -- h -h stores "-h"; set h -h stores nothing and exits 2 naming --, not the help with 0', async () => {
      const node = await startNode({ id: 'dashes' });
      const refused = await node.bby('set', 'h', '-h');
      expect(refused).to.include({ code: 2, stdout: '' });
      expect(refused.stderr).to.equal(`bby: -h after the command is read as an option; to pass it as a value, put -- before the arguments: bby ${node.path} set -- h -h (bby --help says more)\n`);
      expect((await node.bby('get', 'h')).stdout).to.equal('null\n');

      expect(await node.bby('set', '--', 'h', '-h')).to.include({ code: 0, stdout: 'true\n', stderr: '' });
      expect(await node.bby('get', 'h')).to.include({ code: 0, stdout: '-h\n' });
      expect(await node.bby('set', '--', '--json', '--acks')).to.include({ code: 0, stdout: 'true\n' });
      expect((await node.bby('get', '--', '--json')).stdout).to.equal('--acks\n');
    });
  });
});
