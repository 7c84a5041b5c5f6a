/**
 * The handshake of a link, from the socket to a client or peer link
 * (link-state.ts says which state allows what):
 * - authentication (auth.ts), when the mesh has a secret: the acceptor
 *   challenges, the initiator proves it holds the secret and checks the
 *   acceptor's proof; nothing else is read before;
 * - `hello` and `welcome`: the protocol versions must match, a link back to
 *   this node is dropped, and two nodes keep one link at most: dials that
 *   crossed keep the dial of the smaller id, a link that looks dead is
 *   replaced, any other second link is refused;
 * - the timeouts of a connection that never finishes: no auth within
 *   AUTH_TIMEOUT_MS, nothing at all within IDLE_CONNECTION_TIMEOUT_MS.
 */
import { dialableAddress } from './address.js';
import { AUTH_TIMEOUT_MS, type AuthTranscript, authProof, findSecret, newNonce, proofMatches } from './auth.js';
import { CLOSE_CODES } from './close-codes.js';
import { type Dials, HANDSHAKE_TIMEOUT_MS } from './dials.js';
import { BbyError, ProtocolError } from './errors.js';
import { type AuthenticatingState, type Credential, credentialOf, isClientState, type LinkState, moveLink, newPeerSession } from './link-state.js';
import { printable } from './log-text.js';
import { type NodeContext } from './node-context.js';
import { type Link, type LinkId, type PeerLink } from './peer-table.js';
import { type IncomingMessage, type ParseResult, PROTOCOL_VERSION, type RequestId } from './protocol.js';

/** An inbound connection that sends nothing (no request, no hello) for this long is closed, in milliseconds. */
export const IDLE_CONNECTION_TIMEOUT_MS = 10_000;

/**
 * Two links to one peer in opposite directions whose handshakes finished
 * within this long of each other are dials that crossed, resolved by the
 * rule of the smaller id; a later one is a second link to a live peer,
 * refused. As long as a dial may take, in milliseconds.
 */
export const CROSSED_DIALS_WINDOW_MS = HANDSHAKE_TIMEOUT_MS;

/** The secrets a node authenticates with (NodeOptions). */
export interface HandshakeSecrets {
  /** The mesh's: this node presents the first, and accepts any from peers and clients. */
  readonly secrets: readonly string[];
  /** What a client may present: its own secrets, then the mesh's. */
  readonly clientSecrets: readonly string[];
  /** Cryptographically strong random bytes, for nonces; there whenever `secrets` are. */
  readonly randomBytes: ((size: number) => Uint8Array) | undefined;
}

/** What the node does as a link becomes a peer link (node.ts wires it to the other concerns). */
export interface HandshakeHooks {
  /** The link is the peer's link now, before its welcome goes out. */
  joined(link: PeerLink): void;
  /** The handshake is done and logged: the first messages of a peer link (catch-up, peer list) go next. */
  connected(link: PeerLink): void;
}

/** The handshakes of one node's links; see the file header. */
export class Handshake {
  readonly #ctx: NodeContext;
  readonly #secrets: readonly string[];
  readonly #clientSecrets: readonly string[];
  readonly #randomBytes: ((size: number) => Uint8Array) | undefined;
  readonly #dials: Dials;
  readonly #hooks: HandshakeHooks;

  constructor(ctx: NodeContext, secrets: HandshakeSecrets, dials: Dials, hooks: HandshakeHooks) {
    this.#ctx = ctx;
    this.#secrets = secrets.secrets;
    this.#clientSecrets = secrets.clientSecrets;
    this.#randomBytes = secrets.randomBytes;
    this.#dials = dials;
    this.#hooks = hooks;
  }

  /**
   * An inbound connection that did not authenticate within AUTH_TIMEOUT_MS,
   * or sent nothing at all within IDLE_CONNECTION_TIMEOUT_MS, holds a socket
   * for nothing: it is closed.
   */
  closeIdle(nowMs: number): void {
    for (const link of this.#ctx.table.idleInbound(nowMs - AUTH_TIMEOUT_MS)) {
      if (link.state.kind === 'challenged') {
        this.#ctx.counters.authTimeouts++;
        this.refuse(link, null, 'AUTH_TIMEOUT', CLOSE_CODES.AUTH_TIMEOUT, `no authentication within ${AUTH_TIMEOUT_MS} ms; send "auth" in answer to "challenge" (docs/protocol.md)`);
      } else if (nowMs - link.openedAtMs > IDLE_CONNECTION_TIMEOUT_MS) {
        this.#ctx.counters.idleConnectionsClosed++;
        this.#ctx.closeLink(link.id, CLOSE_CODES.IDLE, `nothing received within ${IDLE_CONNECTION_TIMEOUT_MS} ms`, 'idle');
      }
    }
  }

  /** An inbound connection (BbyNode.accept): with a secret, it is challenged at once. */
  accept(remote?: string): LinkId {
    const state: LinkState = this.#secrets.length > 0 ? { kind: 'challenged', nonce: newNonce(this.#randomBytes!) } : { kind: 'pending', credential: { role: 'none' } };
    const link = this.#ctx.table.open('inbound', state, this.#ctx.nowMs(), remote ?? null);
    if (state.kind === 'challenged') this.#ctx.send(link.id, { type: 'challenge', nodeId: this.#ctx.id, nonce: state.nonce });
    return link.id;
  }

  /** The outbound connection is open (BbyNode.opened): without a secret, hello goes out. */
  opened(linkId: LinkId): void {
    const link = this.#ctx.table.link(linkId);
    if (link === undefined || link.direction !== 'outbound') return;
    // With a secret, hello waits for the acceptor's challenge (it goes right behind this node's proof).
    if (credentialOf(link.state)?.role === 'none') this.#sendHello(link);
  }

  #sendHello(link: Link): void {
    this.#ctx.send(link.id, { type: 'hello', protocol: PROTOCOL_VERSION, nodeId: this.#ctx.id, address: this.#ctx.address });
  }

  /**
   * One step of the authentication handshake (auth.ts) on a link that has
   * not finished it: nothing but the expected message is acted on.
   */
  authenticate(link: Link, auth: AuthenticatingState, parsed: ParseResult): void {
    const message = parsed.ok ? parsed.message : undefined;
    switch (auth.kind) {
      case 'challenged': {
        if (message?.type !== 'auth') {
          this.#ctx.counters.authFailures++;
          const id = parsed.ok ? ('id' in parsed.message && parsed.message.type !== 'error' && parsed.message.type !== 'reply' ? (parsed.message.id as RequestId) : null) : parsed.id;
          this.refuse(link, id, 'AUTH_REQUIRED', CLOSE_CODES.AUTH_REQUIRED, 'this node requires authentication: present the secret of the mesh (the config\'s "secret" or "clientSecret"); docs/security.md');
          return;
        }
        const transcript: AuthTranscript = { role: message.role, acceptorId: this.#ctx.id, initiatorId: message.nodeId ?? '', acceptorNonce: auth.nonce, initiatorNonce: message.nonce };
        const secret = findSecret(message.role === 'peer' ? this.#secrets : this.#clientSecrets, message.proof, 'initiator', transcript);
        if (secret === undefined) {
          this.#ctx.counters.authFailures++;
          this.refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `wrong secret for a ${message.role}: the proof does not match any secret this node accepts`);
          return;
        }
        if (message.role === 'client') moveLink(link, { kind: 'client', credential: { role: 'client' } });
        else moveLink(link, { kind: 'pending', credential: { role: 'peer', peerId: message.nodeId ?? null } });
        this.#ctx.send(link.id, { type: 'authenticated', proof: authProof(secret, 'acceptor', transcript) });
        return;
      }
      case 'awaiting-challenge': {
        if (message?.type !== 'challenge') {
          this.#refuseOutbound(link, message);
          return;
        }
        const initiatorNonce = newNonce(this.#randomBytes!);
        const transcript: AuthTranscript = { role: 'peer', acceptorId: message.nodeId, initiatorId: this.#ctx.id, acceptorNonce: message.nonce, initiatorNonce };
        const secret = this.#secrets[0]!;
        moveLink(link, { kind: 'awaiting-proof', acceptorId: message.nodeId, acceptorNonce: message.nonce, expectedProof: authProof(secret, 'acceptor', transcript) });
        this.#ctx.send(link.id, { type: 'auth', role: 'peer', nodeId: this.#ctx.id, nonce: initiatorNonce, proof: authProof(secret, 'initiator', transcript) });
        this.#sendHello(link);
        return;
      }
      case 'awaiting-proof': {
        // The same challenge again (a frame delivered twice) changes nothing.
        if (message?.type === 'challenge' && message.nonce === auth.acceptorNonce) return;
        if (message?.type !== 'authenticated') {
          this.#refuseOutbound(link, message);
          return;
        }
        if (!proofMatches(auth.expectedProof, message.proof)) {
          this.#ctx.counters.authFailures++;
          const target = this.#ctx.table.targetOfLink(link.id);
          this.refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `the node at ${target?.address ?? 'this address'} (${auth.acceptorId}) could not prove it holds this mesh's secret`);
          return;
        }
        moveLink(link, { kind: 'pending', credential: { role: 'peer', peerId: auth.acceptorId } });
        return;
      }
    }
  }

  /** An outbound link got something else than the next step of the handshake: the dial failed. */
  #refuseOutbound(link: Link, message: IncomingMessage | undefined): void {
    const target = this.#ctx.table.targetOfLink(link.id);
    const where = target?.address ?? 'a peer';
    // The acceptor explains a refusal in an error frame before it closes: say that rather than what it was not.
    const reason = message?.type === 'error' ? `${printable(message.code)}: ${printable(message.message)}` : `it sent ${message === undefined ? 'a malformed frame' : `"${message.type}"`} instead of the authentication handshake; does it run with the same secret?`;
    moveLink(link, { kind: 'refused', was: 'pending' });
    this.#ctx.closeLink(link.id, CLOSE_CODES.AUTH_FAILED, 'authentication failed', `authentication with ${where} failed (${reason})`);
  }

  /**
   * Refuses a link for good: an error frame that says why (with the request id
   * when there is one, so a client can print it), a close with `code`, and a
   * rate-limited log line naming where it came from.
   */
  refuse(link: Link, id: RequestId | null, code: 'AUTH_REQUIRED' | 'AUTH_FAILED' | 'AUTH_TIMEOUT' | 'FORBIDDEN', closeCode: number, message: string): void {
    moveLink(link, { kind: 'refused', was: isClientState(link.state) ? 'client' : 'pending' });
    this.#ctx.send(link.id, { type: 'error', id, code: code === 'AUTH_TIMEOUT' ? 'AUTH_REQUIRED' : code, message });
    this.#ctx.askClose(link.id, closeCode, code.toLowerCase().replace('_', ' '));
    const source = link.remote ?? link.id;
    this.#ctx.logFromOutside(source, 'connection-refused', `refused a connection ${link.direction === 'inbound' ? `from ${source}` : `to ${this.#ctx.table.targetOfLink(link.id)?.address ?? source}`}: ${code} (${message})`, { remote: source, direction: link.direction, code });
  }

  /**
   * A `hello` (inbound) or `welcome` (outbound) on a link that may say it:
   * the link becomes a peer link, unless the protocol versions differ, it
   * leads back to this node, the disk fails, or it is a second link to a
   * connected node that may not replace the first (one link per pair).
   */
  greeted(link: Link, credential: Credential, type: 'hello' | 'welcome', protocol: number, peerId: string, address: string): void {
    const expected = link.direction === 'inbound' ? 'hello' : 'welcome';
    if (type !== expected || link.state.kind === 'peer') {
      this.#ctx.reject(link, null, new ProtocolError('BAD_MESSAGE', `unexpected "${type}" on an ${link.direction} link that ${link.state.kind === 'peer' ? 'already did its handshake' : `expects "${expected}"`}`));
      return;
    }
    if (credential.role === 'peer' && credential.peerId !== peerId) {
      this.#ctx.counters.authFailures++;
      this.refuse(link, null, 'AUTH_FAILED', CLOSE_CODES.AUTH_FAILED, `"${type}" names node ${peerId}, but the connection authenticated as ${credential.peerId}`);
      return;
    }
    const target = this.#ctx.table.targetOfLink(link.id);
    if (protocol !== PROTOCOL_VERSION) {
      this.#ctx.reject(link, null, new ProtocolError('PROTOCOL_MISMATCH', `peer speaks protocol ${protocol}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both`));
      this.#ctx.askClose(link.id, CLOSE_CODES.PROTOCOL_MISMATCH, 'protocol version mismatch');
      // A dialed node answered in another version: redialing gets the same answer.
      if (target !== undefined) this.#dials.halt(target, `node ${peerId} speaks protocol ${protocol}, this node speaks ${PROTOCOL_VERSION}; run the same bby version on both`);
      return;
    }
    if (peerId === this.#ctx.id) {
      // A node that dialed itself: answer, so that the dialing side sees its own id and stops.
      if (type === 'hello') {
        this.#ctx.send(link.id, { type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: this.#ctx.id, address: this.#ctx.address });
        return;
      }
      if (target !== undefined) {
        this.#ctx.table.removeTarget(target.address);
        this.#ctx.log('warn', 'peer-is-self', `peer address ${target.address} is this node itself; not dialing it again (remove it from "peers")`, { address: target.address });
        this.#dials.answerAddPeer(target.address, { address: target.address, connected: false, id: this.#ctx.id, error: 'that address is this node itself', retrying: false });
      }
      this.#ctx.askClose(link.id, CLOSE_CODES.SELF, 'connected to itself');
      return;
    }
    if (target !== undefined) target.peerId = peerId;
    if (this.#ctx.storageFailure !== null) {
      this.#ctx.reject(link, null, new BbyError('STORAGE_FAILED', `node ${this.#ctx.id} cannot write to its disk now; it rejoins the mesh once it can`));
      this.#ctx.askClose(link.id, CLOSE_CODES.STORAGE_FAILED, 'storage failed');
      return;
    }
    const existing = this.#ctx.table.peerLink(peerId);
    if (existing !== undefined && !this.#replaces(link, existing, peerId)) {
      this.#closeDuplicate(link, existing);
      return;
    }
    moveLink(link, { kind: 'peer', credential, peerId, address: target?.address ?? dialableAddress(address), sinceMs: this.#ctx.nowMs(), session: newPeerSession() });
    if (existing !== undefined) this.#closeDuplicate(existing, link);
    this.#ctx.table.found(peerId);
    this.#hooks.joined(link);
    if (type === 'hello') {
      this.#ctx.send(link.id, { type: 'welcome', protocol: PROTOCOL_VERSION, nodeId: this.#ctx.id, address: this.#ctx.address });
    }
    if (target !== undefined) this.#dials.reached(target, peerId);
    this.#ctx.log('info', 'peer-connected', `connected to peer ${peerId} at ${link.state.address ?? 'unknown address'} (${link.direction})`, { peer: peerId, address: link.state.address, direction: link.direction });
    this.#hooks.connected(link);
  }

  /**
   * Whether a new link to a connected peer replaces its `existing` one (one
   * link per pair). An existing link that looks dead (nothing heard on it for
   * two heartbeat periods, where a live peer pings every period) is replaced:
   * the peer restarted, or its network came back. Two dials that crossed
   * (the existing link is in the other direction and became a peer link less
   * than CROSSED_DIALS_WINDOW_MS ago) keep the dial of the smaller id, on both
   * nodes, whatever the order their handshakes finished in. Any other second
   * link is refused, and its dialer retries until the old link is gone: a
   * connection claiming the id of a live peer (an impostor) never takes its
   * place, whichever way it came.
   */
  #replaces(link: Link, existing: PeerLink, peerId: string): boolean {
    const nowMs = this.#ctx.nowMs();
    if (nowMs - existing.lastHeardAtMs > 2 * this.#ctx.timing.heartbeatIntervalMs) return true;
    if (link.direction === existing.direction || nowMs - existing.state.sinceMs >= CROSSED_DIALS_WINDOW_MS) return false;
    // This node dialed its outbound link: that one is the dial of the smaller id when this node's id is the smaller.
    return (link.direction === 'outbound') === this.#ctx.id < peerId;
  }

  /** Closes `loser`, a second link to the node `winner` leads to. */
  #closeDuplicate(loser: Link, winner: PeerLink): void {
    this.#ctx.counters.duplicateLinksClosed++;
    const peerId = winner.state.peerId;
    const reason = `duplicate link: already connected to node ${peerId}`;
    this.#ctx.log('info', 'duplicate-link', `closed a second link to ${peerId} (${loser.direction}); one link per pair is kept (${winner.direction})`, { peer: peerId, closed: loser.direction, kept: winner.direction });
    this.#ctx.askClose(loser.id, CLOSE_CODES.DUPLICATE_LINK, reason);
    const target = this.#ctx.table.targetOfLink(loser.id);
    if (target !== undefined) this.#dials.answerAddPeer(target.address, { address: target.address, connected: true, id: peerId, retrying: false });
    this.#ctx.forget(loser.id, reason);
  }
}
