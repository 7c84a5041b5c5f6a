/**
 * The one stream of a link (outbound-stream.ts): a catch-up and a repair go
 * out through the same window, batch by batch as the adapter reports bytes
 * written, with the frames of docs/protocol.md.
 */
import { expect } from 'chai';
import { type Entry, type Message } from '../src/index.js';
import { DEFAULT_TIMING } from '../src/index.js';
import { type CatchUpStream, moveLink, newPeerSession, NodeContext, OutboundStreams, type PeerLink, type RepairStream, Store, STREAM_WINDOW_BATCHES } from '../src/internal.js';

const BATCH_CHARS = 1_000;

/** A context with one peer link, and the streams that end there recorded. */
function setup() {
  const ctx = new NodeContext({
    id: 'a',
    epoch: 'e',
    address: '',
    timing: DEFAULT_TIMING,
    peerExchange: false,
    batchLength: BATCH_CHARS,
    now: () => 0,
    monotonic: () => 0,
    random: () => 0.5,
    store: new Store({ hashSeed: 1 }),
    closed: () => {},
  });
  const link = ctx.table.open('inbound', { kind: 'pending', credential: { role: 'none' } }, 0);
  moveLink(link, { kind: 'peer', credential: { role: 'none' }, peerId: 'b', address: null, sinceMs: 0, session: newPeerSession() });
  const ended: string[] = [];
  const streams = new OutboundStreams(ctx, {
    caughtUp: (_link, stream, seq) => ended.push(`caught up ${stream.entries} to ${seq}`),
    ended: () => ended.push('ended'),
  });
  return { ctx, link: link as PeerLink, streams, ended };
}

/** The frames queued since the last call, and the bytes they count. */
function sent(ctx: NodeContext): { messages: Message[]; bytes: number } {
  const sends = ctx.takeBatch().messages;
  return { messages: sends.map((send) => send.message), bytes: sends.reduce((total, send) => total + send.bytes, 0) };
}

/** `count` batches of one entry, each about a batch long, then `result`. */
function* batches<R>(count: number, result: R): Generator<Entry[], R> {
  for (let i = 0; i < count; i++) yield [{ key: `k${i}`, value: 'v'.repeat(BATCH_CHARS), timestamp: 1, origin: 'a' }];
  return result;
}

/** Reports everything queued on the link as written, as the adapter does, until the stream ends. */
function drain(ctx: NodeContext, link: PeerLink, streams: OutboundStreams): number[] {
  const perRound: number[] = [];
  for (let round = 0; round < 100 && (link.state.session.stream !== null || perRound.length === 0); round++) {
    const { messages, bytes } = sent(ctx);
    perRound.push(messages.length);
    link.unsentBytes -= bytes;
    streams.pump(link);
  }
  return perRound;
}

describe('OutboundStreams', () => {
  for (const kind of ['catch-up', 'repair'] as const) {
    it(`sends a ${kind} at most ${STREAM_WINDOW_BATCHES} batches ahead of the socket, and the rest as bytes are written`, () => {
      const { ctx, link, streams } = setup();
      const stream: CatchUpStream | RepairStream =
        kind === 'catch-up'
          ? { kind, batches: batches(10, 42), full: false, mayClaim: true, entries: 0, expected: 10 }
          : { kind, batches: batches(10, undefined), buckets: [true], entries: 0, expected: 10 };
      streams.start(link, stream);
      const rounds = drain(ctx, link, streams);
      expect(rounds[0]).to.equal(STREAM_WINDOW_BATCHES);
      expect(rounds.every((count) => count <= STREAM_WINDOW_BATCHES + 1)).to.equal(true);
      expect(link.state.session.stream).to.equal(null);
      expect(stream.entries).to.equal(10);
    });
  }

  it('sends a catch-up as entries that say how many are expected, and says where it ended', () => {
    const { ctx, link, streams, ended } = setup();
    streams.start(link, { kind: 'catch-up', batches: batches(2, 7), full: true, mayClaim: true, entries: 0, expected: 2 });
    const { messages } = sent(ctx);
    expect(messages.map((message) => (message.type === 'entries' ? `entries ${message.entries.length} of ${message.expected}` : message.type))).to.deep.equal(['entries 1 of 2', 'entries 1 of 2']);
    expect(ended).to.deep.equal(['caught up 2 to 7', 'ended']);
    expect(ctx.counters.catchUpEntriesSent).to.equal(2);
  });

  it('sends a repair as plain entries, and only says it ended', () => {
    const { ctx, link, streams, ended } = setup();
    streams.start(link, { kind: 'repair', batches: batches(2, undefined), buckets: [true], entries: 0, expected: 2 });
    const { messages } = sent(ctx);
    expect(messages.map((message) => (message.type === 'entries' ? `entries ${message.entries.length} of ${message.expected}` : message.type))).to.deep.equal(['entries 1 of undefined', 'entries 1 of undefined']);
    expect(ended).to.deep.equal(['ended']);
    expect(ctx.counters.repairEntriesSent).to.equal(2);
  });

  it('replaces the stream under way when another starts', () => {
    const { ctx, link, streams, ended } = setup();
    const repair: RepairStream = { kind: 'repair', batches: batches(10, undefined), buckets: [true], entries: 0, expected: 10 };
    streams.start(link, repair);
    link.unsentBytes -= sent(ctx).bytes;
    streams.start(link, { kind: 'catch-up', batches: batches(1, 3), full: false, mayClaim: true, entries: 0, expected: 1 });
    expect(repair.entries).to.equal(STREAM_WINDOW_BATCHES);
    expect(ended).to.deep.equal(['caught up 1 to 3', 'ended']);
    expect(link.state.session.stream).to.equal(null);
  });
});
