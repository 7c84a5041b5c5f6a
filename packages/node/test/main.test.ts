/**
 * bby-node's words for a bug: one line and where to report it, the stack
 * only under BBY_DEBUG=1. (The command line itself is tested with real
 * processes in packages/cli/test/e2e-node-start.test.ts.)
 */
import { expect } from 'chai';
import { LOCAL_ERROR_CODES, type LocalErrorCode } from '@bby/core';
import { describeInternalError, exitCodeFor } from '../src/main.js';

describe('bby-node main', () => {
  describe('exitCodeFor', () => {
    it('exits 2 when the command line or the config must change, 1 for every other failure to start', () => {
      expect(exitCodeFor('BAD_USAGE')).to.equal(2);
      expect(exitCodeFor('BAD_CONFIG')).to.equal(2);
      for (const code of ['START_FAILED', 'DATA_DIR_LOCKED', 'DATA_DAMAGED'] satisfies LocalErrorCode[]) expect(exitCodeFor(code), code).to.equal(1);
      const twos = Object.keys(LOCAL_ERROR_CODES).filter((code) => exitCodeFor(code) === 2);
      expect(twos.sort()).to.deep.equal(['BAD_CONFIG', 'BAD_USAGE']);
    });
  });

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
