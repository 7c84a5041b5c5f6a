/**
 * The classes of `error` frames between peers (src/peer-errors.ts): each is
 * expected only with its fault on its link; anything else fails the run.
 */
import { expect } from 'chai';
import { classifyPeerError, type DirectionFaults, EXPECTED_PEER_ERRORS, type ErrorContext } from '../src/peer-errors.js';

const clean: DirectionFaults = { dropped: new Set(), duplicated: new Set(), reordered: false, held: false };
const link = (toSender: Partial<DirectionFaults> = {}, fromSender: Partial<DirectionFaults> = {}, paused = false, senderCannotWrite = false, senderRefusedLink = false): ErrorContext => ({
  toSender: { ...clean, ...toSender },
  fromSender: { ...clean, ...fromSender },
  paused,
  senderCannotWrite,
  senderRefusedLink,
});
const error = (code: string, message: string) => ({ type: 'error' as const, id: null, code, message });

const beforeHandshake = error('NOT_A_PEER', '"catch-up" before the handshake; a peer must send "hello" first');
const secondWelcome = error('BAD_MESSAGE', 'unexpected "welcome" on an outbound link that already did its handshake');
const beforeAuth = error('AUTH_REQUIRED', 'this node requires authentication: present the secret of the mesh (the config\'s "secret" or "clientSecret"); docs/security.md');
const authTimeout = error('AUTH_REQUIRED', 'no authentication within 5000 ms; send "auth" in answer to "challenge" (docs/protocol.md)');
const diskFailed = error('STORAGE_FAILED', 'node n1 cannot write to its disk now; it rejoins the mesh once it can');

const nameOf = (result: ReturnType<typeof classifyPeerError>) => ('expected' in result ? result.expected.name : `unexpected: ${result.unexpected}`);

describe('peer error classes', () => {
  it('each class is expected with its fault on the link', () => {
    expect(nameOf(classifyPeerError(beforeHandshake, link({ dropped: new Set(['welcome']) })))).to.equal('frame before the handshake');
    expect(nameOf(classifyPeerError(beforeHandshake, link({ reordered: true })))).to.equal('frame before the handshake');
    expect(nameOf(classifyPeerError(beforeHandshake, link({}, {}, false, true, true)))).to.equal('frame before the handshake');
    expect(nameOf(classifyPeerError(secondWelcome, link({ duplicated: new Set(['welcome']) })))).to.equal('second handshake');
    expect(nameOf(classifyPeerError(beforeAuth, link({ dropped: new Set(['auth']) })))).to.equal('frame before authentication');
    expect(nameOf(classifyPeerError(authTimeout, link({}, { dropped: new Set(['challenge']) })))).to.equal('authentication timeout');
    expect(nameOf(classifyPeerError(authTimeout, link({}, {}, true)))).to.equal('authentication timeout');
    expect(nameOf(classifyPeerError(authTimeout, link({ held: true })))).to.equal('authentication timeout');
    expect(nameOf(classifyPeerError(diskFailed, link({}, {}, false, true)))).to.equal('disk failed');
  });

  it('a known class without its fault on the link is unexpected, and says which rule failed', () => {
    for (const frame of [beforeHandshake, secondWelcome, beforeAuth, authTimeout, diskFailed]) {
      expect(nameOf(classifyPeerError(frame, link())), frame.message).to.match(/^unexpected: a ".+" without its fault on the link \(expected only when .+\); link faults: none$/);
    }
    // The fault must be the right one: a duplicated hello does not explain a second welcome, a dropped entries frame no handshake.
    expect(nameOf(classifyPeerError(secondWelcome, link({ duplicated: new Set(['hello']) })))).to.match(/^unexpected/);
    expect(nameOf(classifyPeerError(beforeHandshake, link({ dropped: new Set(['entries']) })))).to.match(/^unexpected/);
  });

  it('any other error frame between peers is unexpected', () => {
    const faulty = link({ dropped: new Set(['hello', 'welcome', 'auth']), duplicated: new Set(['hello', 'welcome']), reordered: true, held: true }, {}, true, true, true);
    for (const frame of [error('BAD_MESSAGE', 'entries must be an array'), error('STALE_CURSOR', 'anything'), error('NOT_A_PEER', 'some other text')]) {
      expect(nameOf(classifyPeerError(frame, faulty))).to.match(/^unexpected: no expected class of peer error has code/);
    }
  });

  it('every class has a name of its own and a rule', () => {
    expect(new Set(EXPECTED_PEER_ERRORS.map((c) => c.name)).size).to.equal(EXPECTED_PEER_ERRORS.length);
    for (const c of EXPECTED_PEER_ERRORS) expect(c.rule).to.have.length.above(20);
  });
});
