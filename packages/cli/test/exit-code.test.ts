import { BbyError, ConfigError, ERROR_CODES, LOCAL_ERROR_CODES } from '@bby/core';
import { expect } from 'chai';
import { ConnectionError, NodeError, UnreachableError } from '@bby/client';
import { exitCodeFor, reportFailure } from '../src/exit-code.js';
import { ImportInputError } from '../src/import-input.js';

/** What reportFailure printed and returned for `error`. */
function reported(error: unknown): { text: string; exit: number } {
  let text = '';
  const exit = reportFailure(error, 'conf/node.json', { err: (line) => (text += line) });
  return { text, exit };
}

describe('exit-code', () => {
  describe('exitCodeFor', () => {
    it('gives 1 to the codes where trying again may work, 3 to ACK_TIMEOUT, 2 to every other code of the registry', () => {
      const codes = [...Object.keys(ERROR_CODES), ...Object.keys(LOCAL_ERROR_CODES)];
      const byExit = (exit: number) => codes.filter((code) => exitCodeFor(code) === exit).sort();
      expect(byExit(1)).to.deep.equal(['NODE_BUSY', 'NODE_UNREACHABLE']);
      expect(byExit(3)).to.deep.equal(['ACK_TIMEOUT']);
      expect(byExit(2)).to.have.length(codes.length - 3);
    });

    it('gives 2 to a code this bby does not know (a newer node refused the request)', () => {
      expect(exitCodeFor('SOMETHING_NEW')).to.equal(2);
    });
  });

  describe('reportFailure', () => {
    it('prints one line per failure, with the hint that goes with it, and returns the exit code of its code', () => {
      expect(reported(new UnreachableError('ws://127.0.0.1:7001', 'connection refused'))).to.deep.equal({
        text: 'bby: cannot reach the node at ws://127.0.0.1:7001 (connection refused); is the node started? Start it with: bby-node conf/node.json\n',
        exit: 1,
      });
      expect(reported(new ConnectionError('busy', 'ws://h:1', 'the node cannot take this connection now'))).to.deep.equal({ text: 'bby: the node cannot take this connection now\n', exit: 1 });
      expect(reported(new ConnectionError('wrong-secret', 'ws://h:1', 'the node refused the secret'))).to.deep.equal({ text: 'bby: the node refused the secret\n', exit: 2 });
      expect(reported(new NodeError('ACK_TIMEOUT', 'held by 1 of 3 nodes', 1))).to.deep.equal({ text: 'bby: not acknowledged by enough nodes in time: held by 1 of 3 nodes\n', exit: 3 });
      expect(reported(new NodeError('STORAGE_FAILED', 'disk\nfull'))).to.deep.equal({ text: 'bby: the node refused the request: disk\\nfull (STORAGE_FAILED)\n', exit: 2 });
      expect(reported(new ConfigError('conf/node.json: "port" is missing'))).to.deep.equal({ text: 'bby: conf/node.json: "port" is missing\n', exit: 2 });
      expect(reported(new ImportInputError('in.jsonl line 3: not valid JSON'))).to.deep.equal({ text: 'bby: in.jsonl line 3: not valid JSON\n', exit: 2 });
      expect(reported(new BbyError('KEY_TOO_LARGE', 'key too large'))).to.deep.equal({ text: 'bby: key too large\n', exit: 2 });
    });

    it('throws again what is not a bby error (a bug, reported by run as an internal error)', () => {
      const bug = new TypeError('x is undefined');
      expect(() => reported(bug)).to.throw(bug);
    });
  });
});
