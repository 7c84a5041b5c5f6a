import { expect } from 'chai';
import { compactionDue, DurabilityPipeline, epochRule, type PersistEffect, type Ready, type SendEffect } from '../src/index.js';
import { CURSOR_SAVE_INTERVAL_MS, EMPTY_READY } from '../src/internal.js';

const persist = (key: string, seq: number, value = 'v'): PersistEffect => ({ type: 'persist', entry: { key, value, timestamp: 1, origin: 'a' }, seq });
const reply = (id: number, result: unknown): SendEffect => ({ type: 'send', link: 'l1', message: { type: 'reply', id, result }, text: JSON.stringify({ type: 'reply', id, result }), bytes: 10 });
const batch = (fields: Partial<Ready>): Ready => ({ ...EMPTY_READY, ...fields });

describe('DurabilityPipeline', () => {
  it('releases a batch only once its own and every earlier append are durable, in order', () => {
    const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: true });
    const first = batch({ persist: [persist('a', 1)], messages: [reply(1, true)] });
    const second = batch({ persist: [persist('b', 2)], messages: [reply(2, true)] });
    const third = batch({ messages: [reply(3, 'x')] });
    pipeline.submit(first);
    pipeline.submit(second);
    pipeline.submit(third);
    const started = pipeline.takeDecisions();
    expect(started.appends.map((append) => append.changes.map((change) => change.entry.key))).to.deep.equal([['a'], ['b']]);
    expect(started.release).to.deep.equal([]);
    pipeline.appended(started.appends[1]!.id);
    expect(pipeline.takeDecisions().release, 'the second waits for the first').to.deep.equal([]);
    pipeline.appended(started.appends[0]!.id);
    const released = pipeline.takeDecisions();
    expect(released.release).to.deep.equal([first, second, third]);
    expect(released.compact).to.equal(true);
  });

  it('releases at once what persists nothing while nothing waits, and everything at once without a disk', () => {
    const pipeline = new DurabilityPipeline({ disk: false, keepsCursors: false });
    const ready = batch({ persist: [persist('a', 1)], messages: [reply(1, true)] });
    pipeline.submit(ready);
    const decisions = pipeline.takeDecisions();
    expect(decisions.appends).to.deep.equal([]);
    expect(decisions.release).to.deep.equal([ready]);
  });

  it('pauses reading above the pause bound and resumes only below the resume bound', () => {
    const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: false, backlog: { pauseAboveBytes: 150, resumeBelowBytes: 70 } });
    pipeline.submit(batch({ persist: [persist('a', 1)] })); // 66 bytes
    expect(pipeline.takeDecisions().reading).to.equal(null);
    pipeline.submit(batch({ persist: [persist('b', 2), persist('c', 3)] })); // 132 more
    const paused = pipeline.takeDecisions();
    expect(paused.reading).to.equal('pause');
    pipeline.appended(paused.appends[0]!.id === 1 ? 1 : 1);
    expect(pipeline.takeDecisions().reading, '132 bytes still wait').to.equal(null);
    pipeline.appended(2);
    expect(pipeline.takeDecisions().reading).to.equal('resume');
    expect(pipeline.paused).to.equal(false);
  });

  it('turns a batch whose append failed into STORAGE_FAILED errors, dropping what vouches for it, and tells the core once', () => {
    const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: true });
    const forward: SendEffect = { type: 'send', link: 'p1', message: { type: 'entries', entries: [] }, text: '{}', bytes: 5 };
    pipeline.submit(batch({ persist: [persist('a', 1)], messages: [reply(1, true), forward], cursors: [{ type: 'cursor', peerId: 'p', cursor: { epoch: 'e', seq: 3 } }] }));
    pipeline.submit(batch({ persist: [persist('b', 2)], messages: [reply(2, true)] }));
    pipeline.takeDecisions();
    pipeline.appendFailed(1, 'disk full');
    pipeline.appendFailed(2, 'disk full');
    const decisions = pipeline.takeDecisions();
    expect(decisions.storageFailed).to.equal('disk full');
    expect(decisions.release.map((ready) => ready.messages.map((send) => send.message.type))).to.deep.equal([['error'], ['error']]);
    expect(decisions.release[0]!.cursors).to.deep.equal([]);
    expect(decisions.release[0]!.messages[0]!.message).to.include({ code: 'STORAGE_FAILED', id: 1 });
    expect(decisions.compact).to.equal(false);
    pipeline.storageRecovered();
    pipeline.submit(batch({ persist: [persist('c', 3)] }));
    pipeline.takeDecisions();
    pipeline.appendFailed(3, 'again');
    expect(pipeline.takeDecisions().storageFailed, 'a failure after recovery is told again').to.equal('again');
  });

  it('saves cursors only from released batches, once per interval', () => {
    const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: true });
    pipeline.submit(batch({ persist: [persist('a', 1)], cursors: [{ type: 'cursor', peerId: 'p', cursor: { epoch: 'e', seq: 1 } }] }));
    expect(pipeline.takeDecisions().saveCursorsInMs, 'not before the entries are durable').to.equal(null);
    pipeline.cursorSaveDue();
    expect(pipeline.takeDecisions().saveCursors).to.equal(null);
    pipeline.appended(1);
    expect(pipeline.takeDecisions().saveCursorsInMs).to.equal(CURSOR_SAVE_INTERVAL_MS);
    pipeline.submit(batch({ cursors: [{ type: 'cursor', peerId: 'p', cursor: { epoch: 'e', seq: 2 } }] }));
    expect(pipeline.takeDecisions().saveCursorsInMs, 'one timer for the moves meanwhile').to.equal(null);
    pipeline.cursorSaveDue();
    expect(pipeline.takeDecisions().saveCursors).to.deep.equal({ p: { epoch: 'e', seq: 2 } });
  });

  it('releases before durability only with the test-only option', () => {
    const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: false, unsafeReleaseBeforeDurable: true });
    pipeline.submit(batch({ persist: [persist('a', 1)], messages: [reply(1, true)] }));
    expect(pipeline.takeDecisions().release).to.have.length(1);
  });

  it('releases a failed batch with its true reply only with the test-only option', () => {
    const failed = batch({ persist: [persist('a', 1)], messages: [reply(1, true)] });
    const released = (options: { unsafeReleaseFailedAsKept?: boolean }) => {
      const pipeline = new DurabilityPipeline({ disk: true, keepsCursors: false, ...options });
      pipeline.submit(failed);
      pipeline.appendFailed(pipeline.takeDecisions().appends[0]!.id, 'EIO');
      return pipeline.takeDecisions().release.map((ready) => ready.messages.map((send) => send.message.type));
    };
    expect(released({})).to.deep.equal([['error']]);
    expect(released({ unsafeReleaseFailedAsKept: true })).to.deep.equal([['reply']]);
  });
});

describe('epochRule', () => {
  it('keeps the epoch only under fsync always, nothing repaired, every record sequenced', () => {
    expect(epochRule({ fsyncAlways: true, repaired: false, sequenced: true, hadEpoch: true })).to.deep.equal({ keepEpoch: true, keepsCursors: true });
    expect(epochRule({ fsyncAlways: false, repaired: false, sequenced: true, hadEpoch: true })).to.deep.equal({ keepEpoch: false, keepsCursors: false });
    expect(epochRule({ fsyncAlways: true, repaired: true, sequenced: true, hadEpoch: true }).keepEpoch).to.equal(false);
  });
});

describe('compactionDue', () => {
  it('compacts a log only past its threshold and larger than both its snapshot and the live data, and counts the live entries only then', () => {
    let asked = 0;
    const live = (count: number) => () => {
      asked++;
      return count;
    };
    expect(compactionDue({ logBytes: 1_000, snapshotBytes: 0, minBytes: 1_000 }, live(0))).to.equal(false);
    expect(asked).to.equal(0);
    expect(compactionDue({ logBytes: 1_001, snapshotBytes: 0, minBytes: 1_000 }, live(0))).to.equal(true);
    expect(compactionDue({ logBytes: 1_001, snapshotBytes: 1_001, minBytes: 1_000 }, live(0))).to.equal(false);
    expect(compactionDue({ logBytes: 3_300, snapshotBytes: 0, minBytes: 1_000 }, live(100))).to.equal(true);
    expect(compactionDue({ logBytes: 3_200, snapshotBytes: 0, minBytes: 1_000 }, live(100))).to.equal(false);
    expect(asked).to.equal(4);
  });
});
