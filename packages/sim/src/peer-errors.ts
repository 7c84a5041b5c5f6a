/**
 * The `error` frames one node may send another in a simulated run, each with
 * the rule that makes it expected. Nodes of one mesh, running the same code,
 * never refuse each other's frames on a healthy link, so an `error` between
 * peers is expected only when a fault of the run explains it, on the very
 * link it was sent on (a frame the loss fault dropped, one the duplication
 * fault delivered twice, one the reorder fault let overtake another, one held
 * by a silent partition, or an end paused) or on its sender's disk (failed:
 * it leaves its peers until it can write). Every other error frame (another
 * code or message, or one of these without its fault) is a bug, and fails
 * the run with its seed.
 */
import { type Message } from '@bby/core';

/** What the network did to the frames of one direction of a link. */
export interface DirectionFaults {
  /** Types of the frames the loss fault dropped. */
  readonly dropped: ReadonlySet<string>;
  /** Types of the frames the duplication fault delivered twice. */
  readonly duplicated: ReadonlySet<string>;
  /** Whether a frame arrived before one sent earlier (the reorder fault). */
  readonly reordered: boolean;
  /** Whether frames waited for a silent partition to heal. */
  readonly held: boolean;
}

/** What the faults of the run did around an error frame before it was sent: on its link, and to its sender. */
export interface ErrorContext {
  /** To the frames going to the error's sender. */
  readonly toSender: DirectionFaults;
  /** To the frames its sender sent. */
  readonly fromSender: DirectionFaults;
  /** Whether either end was paused (SIGSTOP) while the link was open. */
  readonly paused: boolean;
  /** Whether the sender's storage had failed (it refuses writes, and its peers, until its disk works again). */
  readonly senderCannotWrite: boolean;
  /** Whether the sender refused this link's handshake before, because its disk failed (a "disk failed" error frame). */
  readonly senderRefusedLink: boolean;
}

/** A class of error frame between peers, and why a fault makes it expected. */
export interface PeerErrorClass {
  /** Short name, as counted in `SimCounts.peerErrorsByClass`. */
  readonly name: string;
  readonly code: string;
  /** Matches the frame's `message`; its first group, if any, is the type of the frame refused. */
  readonly message: RegExp;
  /** The rule, in words. */
  readonly rule: string;
  /** Whether the link's faults make this frame expected; `refused` is the type the message names, if any. */
  readonly expected: (faults: ErrorContext, refused: string | undefined) => boolean;
}

/** The handshake's frames, and the authentication handshake's (auth.ts). */
const HANDSHAKE = ['hello', 'welcome'];
const AUTHENTICATION = ['challenge', 'auth', 'authenticated'];

const droppedAny = (faults: DirectionFaults, types: readonly string[]) => types.some((type) => faults.dropped.has(type));

/** Every error frame a simulated run may send between peers; see the file header. */
export const EXPECTED_PEER_ERRORS: readonly PeerErrorClass[] = [
  {
    name: 'frame before the handshake',
    code: 'NOT_A_PEER',
    message: /^"([\w-]+)" before the handshake; a peer must send "hello" first$/,
    rule: 'a hello or welcome going to the sender was dropped or overtaken, or the sender refused it (its disk failed), so the other end finished its handshake (and sent peer frames) while the sender never did',
    expected: ({ toSender, senderRefusedLink }) => droppedAny(toSender, HANDSHAKE) || toSender.reordered || senderRefusedLink,
  },
  {
    name: 'frame before authentication',
    code: 'AUTH_REQUIRED',
    message: /^this node requires authentication: /,
    rule: 'the "auth" going to the sender was dropped or overtaken by the "hello" sent right after it',
    expected: ({ toSender }) => toSender.dropped.has('auth') || toSender.reordered,
  },
  {
    name: 'second handshake',
    code: 'BAD_MESSAGE',
    message: /^unexpected "(hello|welcome)" on an (?:inbound|outbound) link that already did its handshake$/,
    rule: 'the duplication fault delivered that hello or welcome twice',
    expected: ({ toSender }, refused) => refused !== undefined && toSender.duplicated.has(refused),
  },
  {
    name: 'disk failed',
    code: 'STORAGE_FAILED',
    message: /^node \S+ cannot write to its disk now; it rejoins the mesh once it can$/,
    rule: "the sender's disk failed (an fsync failed, or the disk is full): it refuses its peers' handshakes until a retry writes what it holds",
    expected: ({ senderCannotWrite }) => senderCannotWrite,
  },
  {
    name: 'authentication timeout',
    code: 'AUTH_REQUIRED',
    message: /^no authentication within \d+ ms; /,
    rule: 'the "auth" never came in time: a frame of the authentication (the challenge, the auth) was dropped or held by a silent partition, or an end was paused',
    expected: ({ toSender, fromSender, paused }) => droppedAny(toSender, AUTHENTICATION) || droppedAny(fromSender, AUTHENTICATION) || toSender.held || fromSender.held || paused,
  },
];

/** The class of an error frame whose rule holds on its link, or a line saying why it is unexpected. */
export function classifyPeerError(error: Extract<Message, { type: 'error' }>, faults: ErrorContext): { readonly expected: PeerErrorClass } | { readonly unexpected: string } {
  const text = String(error.message);
  const found = EXPECTED_PEER_ERRORS.find((c) => c.code === error.code && c.message.test(text));
  if (found === undefined) return { unexpected: `no expected class of peer error has code ${error.code} and this message` };
  if (!found.expected(faults, found.message.exec(text)?.[1])) return { unexpected: `a "${found.name}" without its fault on the link (expected only when ${found.rule}); link faults: ${describeFaults(faults)}` };
  return { expected: found };
}

/** The faults of a link, in one line, for failure messages. */
export function describeFaults(faults: ErrorContext): string {
  const direction = (name: string, d: DirectionFaults) =>
    [
      d.dropped.size > 0 ? `dropped ${[...d.dropped].join(',')}` : '',
      d.duplicated.size > 0 ? `duplicated ${[...d.duplicated].join(',')}` : '',
      d.reordered ? 'reordered' : '',
      d.held ? 'held by a silent partition' : '',
    ]
      .filter((part) => part !== '')
      .map((part) => `${name} ${part}`);
  const parts = [...direction('to the sender:', faults.toSender), ...direction('from the sender:', faults.fromSender), faults.paused ? 'an end paused' : '', faults.senderCannotWrite ? 'the sender cannot write' : '', faults.senderRefusedLink ? 'the sender refused the link (disk failed)' : ''].filter((part) => part !== '');
  return parts.length > 0 ? parts.join('; ') : 'none';
}
