/**
 * The link states and their transition table (link-state.ts): the moves it
 * lists are made, any other is refused, and the table is what the house rules
 * say.
 */
import { expect } from 'chai';
import { INITIAL_STATES, initialLinkState, LINK_TRANSITIONS, type LinkState, type LinkStateKind, LinkStateError, moveLink, newPeerSession } from '../src/internal.js';

const PENDING: LinkState = { kind: 'pending', credential: { role: 'none' } };
const PEER: LinkState = { kind: 'peer', credential: { role: 'none' }, peerId: 'b', address: '127.0.0.1:7001', sinceMs: 5, session: newPeerSession() };

/** A state of each kind, to try every move. */
const SAMPLES: { readonly [Kind in LinkStateKind]: LinkState } = {
  challenged: { kind: 'challenged', nonce: 'n' },
  'awaiting-challenge': { kind: 'awaiting-challenge' },
  'awaiting-proof': { kind: 'awaiting-proof', acceptorId: 'b', acceptorNonce: 'n', expectedProof: 'p' },
  pending: PENDING,
  client: { kind: 'client', credential: { role: 'none' } },
  peer: PEER,
  refused: { kind: 'refused', was: 'pending' },
};

const KINDS = Object.keys(SAMPLES) as LinkStateKind[];

function linkIn(state: LinkState): { id: string; direction: 'inbound'; state: LinkState } {
  return { id: 'in-1', direction: 'inbound', state };
}

describe('link states (link-state.ts)', () => {
  describe('moveLink', () => {
    it('makes a move the table lists', () => {
      const link = linkIn(PENDING);
      moveLink(link, PEER);
      expect(link.state).to.equal(PEER);
    });

    it('refuses a move the table does not list, and leaves the link as it was', () => {
      const link = linkIn(PEER);
      expect(() => moveLink(link, PENDING)).to.throw(LinkStateError, /may not move from peer to pending/);
      expect(link.state).to.equal(PEER);
    });

    it('says which link and which move, with a code', () => {
      const link = linkIn({ kind: 'refused', was: 'client' });
      try {
        moveLink(link, { kind: 'client', credential: { role: 'none' } });
        expect.fail('the move was made');
      } catch (error) {
        expect(error).to.be.instanceOf(LinkStateError);
        const refused = error as LinkStateError;
        expect([refused.code, refused.link, refused.from, refused.to]).to.deep.equal(['CORE_BUG', 'in-1', 'refused', 'client']);
      }
    });

    it('allows exactly the moves of LINK_TRANSITIONS, from every state to every state', () => {
      for (const from of KINDS) {
        for (const to of KINDS) {
          const link = linkIn(SAMPLES[from]);
          const allowed = LINK_TRANSITIONS[from].includes(to);
          if (allowed) expect(() => moveLink(link, SAMPLES[to]), `${from} -> ${to}`).to.not.throw();
          else expect(() => moveLink(link, SAMPLES[to]), `${from} -> ${to}`).to.throw(LinkStateError);
        }
      }
    });
  });

  describe('the table', () => {
    it('never leads back: a peer and a refused link move nowhere, and no state moves to itself', () => {
      expect(LINK_TRANSITIONS.peer).to.deep.equal([]);
      expect(LINK_TRANSITIONS.refused).to.deep.equal([]);
      for (const kind of KINDS) expect(LINK_TRANSITIONS[kind], kind).to.not.include(kind);
    });

    it('lets every state but peer be refused, and only pending and client links become peers', () => {
      for (const kind of KINDS) expect(LINK_TRANSITIONS[kind].includes('refused'), kind).to.equal(kind !== 'peer' && kind !== 'refused');
      expect(KINDS.filter((kind) => LINK_TRANSITIONS[kind].includes('peer'))).to.deep.equal(['pending', 'client']);
    });
  });

  describe('initialLinkState', () => {
    it('lets an inbound link begin challenged or pending, an outbound one awaiting the challenge or pending', () => {
      expect(INITIAL_STATES).to.deep.equal({ inbound: ['challenged', 'pending'], outbound: ['awaiting-challenge', 'pending'] });
      expect(initialLinkState('in-1', 'inbound', SAMPLES.challenged)).to.equal(SAMPLES.challenged);
      expect(initialLinkState('out-1', 'outbound', SAMPLES['awaiting-challenge'])).to.equal(SAMPLES['awaiting-challenge']);
    });

    it('refuses a link that would begin in any other state', () => {
      expect(() => initialLinkState('in-1', 'inbound', PEER)).to.throw(LinkStateError, /from \(new\) to peer/);
      expect(() => initialLinkState('out-1', 'outbound', SAMPLES.challenged)).to.throw(LinkStateError);
    });
  });
});
