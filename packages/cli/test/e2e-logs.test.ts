/** End to end: bby-node --log-format json and --log-level warn, on real processes. */
import { expect } from 'chai';
import { spawnNode, startNode, useCleanup, waitFor, writeConfig } from './support/processes.js';

describe('e2e: bby-node logs', function () {
  this.timeout(30_000);
  useCleanup();

  it('--log-format json prints one JSON object a line, naming the node and the event, with its fields', async () => {
    const a = await startNode({ id: 'log-a' });
    const file = await writeConfig({ id: 'log-b', peers: [a.address] });
    const b = spawnNode(['--log-format', 'json', file.path]);
    await b.waitForOutput(/"event":"peer-connected"/, 10_000);
    await a.bby('set', 'k', 'v');
    await waitFor(async () => (await a.query({ type: 'get', key: 'k' })) === 'v', { what: 'the write on log-a' });
    const records = b.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.length).to.be.greaterThan(2);
    for (const record of records) {
      expect(Object.keys(record), JSON.stringify(record)).to.deep.equal(['time', 'level', 'node', 'event', 'message', 'fields']);
      expect(record.node).to.equal('log-b');
      expect(record.time).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    expect(records[0]).to.deep.include({ event: 'listening', fields: { url: `ws://${file.address}`, id: 'log-b' } });
    expect(records.find((r) => r.event === 'peer-connected')).to.deep.include({ fields: { peer: 'log-a', address: a.address, direction: 'outbound' } });
  });

  it('--log-level warn prints warnings only; a bad value is one line and exit 2', async () => {
    const file = await writeConfig({ id: 'log-quiet', peers: ['127.0.0.1:1'] });
    const quiet = spawnNode(['--log-level', 'warn', file.path]);
    await quiet.waitForOutput(/cannot reach peer 127\.0\.0\.1:1/, 10_000, 'stderr');
    expect(quiet.stdout).to.equal('');
    const bad = spawnNode(['--log-level', 'debug', file.path]);
    expect((await bad.exited).code).to.equal(2);
    expect(bad.stderr).to.equal('bby-node: --log-level is info or warn, not "debug" (bby-node --help says more)\n');
  });
});
