/**
 * bby-node's words for a bug: one line and where to report it, the stack
 * only under BBY_DEBUG=1. (The command line itself is tested with real
 * processes in packages/cli/test/e2e-node-start.test.ts.)
 */
import { expect } from 'chai';
import { describeInternalError } from '../src/main.js';

describe('bby-node main', () => {
  describe('describeInternalError', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')\nsecond line");

    it('is one line naming the error and where to report it', () => {
      const text = describeInternalError(bug, false);
      expect(text).to.match(/^bby-node: internal error \(a bug of bby-node\): TypeError: Cannot read properties of undefined \(reading 'x'\); please report it .*BBY_DEBUG=1\n$/);
      expect(text.trimEnd().split('\n')).to.have.length(1);
    });

    it('adds the stack under BBY_DEBUG=1', () => {
      const text = describeInternalError(bug, true);
      expect(text).to.include(bug.stack!);
      expect(text).to.match(/\n\s+at /);
    });

    it('describes a thrown value that is not an Error', () => {
      expect(describeInternalError('boom', false)).to.match(/^bby-node: internal error \(a bug of bby-node\): boom; /);
    });
  });
});
