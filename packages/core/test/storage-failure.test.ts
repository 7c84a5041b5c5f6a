/**
 * A node whose adapter cannot make writes durable (storageFailed): a state
 * with reads still answered, not a crash; back to normal on storageRecovered.
 */
import { expect } from 'chai';
import { BbyError, CLOSE_CODES } from '../src/index.js';
import { Cluster, resultOf } from '@bby/sim';

describe('storage failure: a state, not a crash', () => {
  function failedPair() {
    const cluster = new Cluster();
    const a = cluster.addNode('a');
    const b = cluster.addNode('b', { peers: ['a'] });
    cluster.stabilize();
    a.set('before', 'kept');
    cluster.stabilize();
    a.storageFailed('no space left on device (ENOSPC)');
    cluster.stabilize();
    return { cluster, a, b };
  }

  it('refuses writes with STORAGE_FAILED naming the reason, and keeps answering reads', () => {
    const { cluster, a } = failedPair();
    const client = cluster.client('a');
    const refused = client.request({ type: 'set', key: 'k', value: 'v' });
    expect(refused).to.include({ type: 'error', code: 'STORAGE_FAILED' });
    expect(refused.type === 'error' && refused.message).to.include('ENOSPC');
    expect(client.request({ type: 'set-many', entries: [{ key: 'k', value: 'v' }] })).to.include({ code: 'STORAGE_FAILED' });
    // The same value again must not answer true either: nothing is acknowledged while the disk fails.
    expect(client.request({ type: 'set', key: 'before', value: 'kept' })).to.include({ code: 'STORAGE_FAILED' });
    expect(resultOf(client.request({ type: 'get', key: 'before' }))).to.equal('kept');
    expect(resultOf(client.request({ type: 'stats' }))).to.include({ writable: false, writesRefusedStorage: 3 });
    expect(() => a.set('lib', 'v')).to.throw(BbyError).with.property('code', 'STORAGE_FAILED');
  });

  it('leaves its peers with close code 4007, does not dial them, and takes none of their entries meanwhile', () => {
    const { cluster, a, b } = failedPair();
    expect(cluster.counters.closeCodes).to.include(CLOSE_CODES.STORAGE_FAILED);
    expect(a.stats().peers).to.equal(0);
    b.set('from-b', 'v');
    cluster.advance(5_000);
    expect(a.stats().peers).to.equal(0);
    expect(a.get('from-b')).to.equal(null);
  });

  it('rejoins its peers once the disk works again, and catches up what they wrote meanwhile', () => {
    const { cluster, a, b } = failedPair();
    b.set('from-b', 'v');
    cluster.advance(3_000);
    a.storageRecovered();
    cluster.advance(3_000);
    expect(a.stats()).to.include({ peers: 1, writable: true });
    expect(a.get('from-b')).to.equal('v');
    expect(a.set('after', 'v')).to.equal(true);
  });
});
