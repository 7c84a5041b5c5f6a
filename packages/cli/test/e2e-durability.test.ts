/**
 * End to end: durability of a bby-node with a dataDir, with real processes.
 * Nodes killed with SIGKILL at random moments keep every acknowledged write,
 * a killed node catches up with the mesh, the id and added peers survive a
 * restart, one dataDir per node, damaged logs are refused and repaired, and
 * every fsync policy keeps writes across a clean restart.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { UnreachableError } from '@bby/client';
import {
  connectClient,
  restartNode,
  runBby,
  runNodeToExit,
  startNode,
  useCleanup,
  waitFor,
  waitForConnected,
  waitForValue,
  writeConfig,
  freePort,
  spawnNode,
  type NodeHandle,
  type TrackedProcess,
  type NodeStats,
  type PeerRow,
} from './support/processes.js';
import { mulberry32, setAll, wrongValues } from './support/load.js';

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits for the node's `N keys loaded` line and returns N. */
async function keysLoaded(node: NodeHandle): Promise<number> {
  const match = await node.process.waitForOutput(/: (\d+) keys loaded/, 5_000);
  return Number(match[1]);
}

/** The lines a node wrote on stderr (its warnings). */
const warnings = (node: NodeHandle) => node.process.stderr.split('\n').filter((line) => line !== '');

/** Checks every entry with the in-process client, and asserts none is missing. */
async function expectAll(node: NodeHandle, entries: ReadonlyMap<string, string>): Promise<void> {
  const client = await connectClient(node.address);
  const wrong = await wrongValues((key) => client.request({ type: 'get', key }), entries);
  client.close();
  expect(wrong, `entries missing or wrong on node ${node.id}`).to.deep.equal([]);
}

/** Entries `prefix-0 .. prefix-(count-1)`, each with a distinct value. */
function makeEntries(prefix: string, count: number): Map<string, string> {
  return new Map(Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, `value of ${prefix}-${i}: ${'x'.repeat(i % 7)}${i * 7919}`]));
}

/** The framed records of a log file: where each starts and how long it is (header included). */
function records(data: Buffer): { start: number; size: number }[] {
  const found: { start: number; size: number }[] = [];
  let offset = 8; // magic
  while (offset + 8 <= data.length) {
    const size = 8 + data.readUInt32LE(offset);
    found.push({ start: offset, size });
    offset += size;
  }
  expect(offset, 'the log parses into whole records').to.equal(data.length);
  return found;
}

/** Path of the newest log file in a data folder. */
async function newestLog(dataDir: string): Promise<string> {
  const logs = (await readdir(dataDir)).filter((name) => /^log-\d{8}\.bby$/.test(name)).sort();
  expect(logs, `log files in ${dataDir}`).not.to.have.length(0);
  return join(dataDir, logs.at(-1)!);
}

describe('e2e: durability of bby-node with a dataDir', function () {
  this.timeout(60_000);
  useCleanup();

  it('keeps every acknowledged write when killed with SIGKILL at random moments, 20 times in a row', async function () {
    this.timeout(120_000);
    const RUNS = 20;
    const CONCURRENCY = 16;
    const seed = Number(process.env.BBY_KILL_SEED ?? 0x5eed);
    // Two streams: the kill moments depend on the seed only, not on how many writes each run made.
    const killRandom = mulberry32(seed);
    const random = mulberry32(seed ^ 0x9e3779b9);
    const config = await writeConfig({ id: 'victim', dataDir: 'data-victim', fsync: 'always' });
    const acknowledged = new Map<string, string>();
    const startedAt = Date.now();
    let attempted = 0;
    let lost = 0;
    let tornWarnings = 0;
    let refusals = 0;
    let node = await startNode(config);
    expect(await keysLoaded(node)).to.equal(0);
    let runs = 0;
    let finalLoaded = 0;

    /** Checks a freshly (re)started node: clean start, every acknowledged write there. */
    const checkRestart = async (run: number) => {
      const loaded = await keysLoaded(node);
      for (const line of warnings(node)) {
        expect(line, `run ${run}: the only warning allowed at start is a torn tail`).to.match(/warn dropped a torn record of \d+ bytes at the end of log-\d{8}\.bby/);
        tornWarnings++;
      }
      const client = await connectClient(node.address);
      const wrong = await wrongValues((key) => client.request({ type: 'get', key }), acknowledged);
      client.close();
      lost += wrong.length;
      expect(wrong, `run ${run}: acknowledged writes missing after the restart`).to.deep.equal([]);
      expect(loaded, `run ${run}: keys loaded vs writes acknowledged`).to.be.at.least(acknowledged.size);
      expect(loaded, `run ${run}: keys loaded vs writes attempted`).to.be.at.most(attempted);
    };

    try {
      for (let run = 1; run <= RUNS; run++) {
        runs = run;
        const client = await connectClient(node.address);
        const killAfterMs = 50 + Math.floor(killRandom() * 351);
        let stopped = false;
        const worker = async (w: number) => {
          for (let i = 0; !stopped; i++) {
            const key = `run${run}-w${w}-${i}`;
            const value = `${key}=${Math.floor(random() * 1e9).toString(36)}`;
            attempted++;
            try {
              const result = await client.request({ type: 'set', key, value });
              if (result !== true) refusals++;
              else acknowledged.set(key, value);
            } catch (error) {
              // The kill cuts the connection: the requests in flight are in doubt, and never acknowledged.
              if (!(error instanceof UnreachableError)) throw error;
              return;
            }
          }
        };
        const writers = Array.from({ length: CONCURRENCY }, (_, w) => worker(w));
        await delay(killAfterMs);
        const status = await node.kill(); // resolves once the process has exited and its pipes are closed
        stopped = true;
        await Promise.all(writers);
        expect(status.signal, `run ${run}: killed`).to.equal('SIGKILL');

        node = await restartNode(config);
        await checkRestart(run);
        // A few through the CLI too (a process each, so not every run): a write of the run just killed, and the very first one.
        const recent = [...acknowledged].filter(([key]) => key.startsWith(`run${run}-`));
        const checkedByCli = run === 1 || run === RUNS / 2 || run === RUNS;
        const picks = checkedByCli ? [recent[Math.floor(random() * recent.length)], run === RUNS ? [...acknowledged][0] : undefined] : [];
        for (const pick of picks) {
          if (pick === undefined) continue;
          const [key, value] = pick;
          expect(await node.bby('get', key), `run ${run}: bby get ${key}`).to.include({ code: 0, stdout: `${value}\n` });
        }
      }
      finalLoaded = await keysLoaded(node);
    } finally {
      // The figures, even when a check above failed.
      const elapsed = ((Date.now() - startedAt) / 1000).toFixed(1);
      console.log(
        `      kill test (seed ${seed}): ${runs} runs of SIGKILL, ${attempted} writes sent, ${acknowledged.size} acknowledged, ${lost} acknowledged writes lost; ` +
          `${finalLoaded > 0 ? finalLoaded - acknowledged.size : '?'} unacknowledged writes kept anyway; ${tornWarnings} torn tails dropped; ${elapsed} s`,
      );
    }
    expect(refusals, 'set of a fresh key answered false').to.equal(0);
    expect((await node.stop()).code, 'clean stop at the end').to.equal(0);
    expect(acknowledged.size, 'writes acknowledged in total').to.be.at.least(RUNS * CONCURRENCY);
    expect(lost).to.equal(0);
  });

  it('a killed node that restarts catches up on what the mesh wrote while it was down', async () => {
    const aPort = await freePort();
    const a = await startNode({ id: 'mesh-a', port: aPort, dataDir: 'data-mesh-a' });
    const bConfig = await writeConfig({ id: 'mesh-b', peers: [a.address], dataDir: 'data-mesh-b' });
    let b = await startNode(bConfig);
    await waitForConnected(b, ['mesh-a']);

    const before = makeEntries('before', 200);
    const aClient = await connectClient(a.address);
    await setAll(aClient, before);
    await waitFor(async () => (await b.query<NodeStats>({ type: 'stats' })).keys === before.size, { what: 'mesh-b to hold the first 200 keys' });

    expect((await b.kill()).signal).to.equal('SIGKILL');
    const during = makeEntries('during', 200);
    await setAll(aClient, during);
    expect((await a.bby('set', 'during-cli', 'written while b was down')).stdout).to.equal('true\n');
    during.set('during-cli', 'written while b was down');

    b = await restartNode(bConfig);
    // What b had before the kill comes back from its own disk, before any peer speaks.
    expect(await keysLoaded(b)).to.equal(before.size);
    expect(warnings(b)).to.deep.equal([]);
    await waitForConnected(b, ['mesh-a'], 15_000);
    await waitFor(async () => (await b.query<NodeStats>({ type: 'stats' })).keys === before.size + during.size, { what: 'mesh-b to catch up' });
    await expectAll(b, new Map([...before, ...during]));
    await waitForValue(b, 'during-cli', 'written while b was down');
    expect(await b.bby('get', 'before-17')).to.include({ code: 0, stdout: `${before.get('before-17')}\n` });
    expect(await b.bby('get', 'during-42')).to.include({ code: 0, stdout: `${during.get('during-42')}\n` });

    // And what it caught up on is on its disk too.
    expect((await b.stop()).code).to.equal(0);
    b = await restartNode(bConfig);
    expect(await keysLoaded(b)).to.equal(before.size + during.size);
  });

  it("keeps the node's id and the peers added with add-peer across a restart", async () => {
    const other = await startNode({ id: 'other' });
    // No "id" in the config: the node generates one, and must find it again in its dataDir.
    let node = await startNode({ id: 'anonymous', omitId: true, dataDir: 'data-anonymous' });
    const id = node.id;
    expect(id).to.match(/^[A-Za-z0-9_-]+$/);
    const added = await node.bby('add-peer', other.address);
    expect(added).to.include({ code: 0, stdout: `connected to ${other.address} (node other)\n` });

    expect((await node.stop()).code).to.equal(0);
    node = await restartNode(node);
    const stats = JSON.parse((await node.bby('stats', '--json')).stdout) as NodeStats;
    expect(stats.id, 'the same id after a restart').to.equal(id);
    await waitForConnected(node, ['other']);
    const peers = JSON.parse((await node.bby('peers', '--json')).stdout) as PeerRow[];
    expect(peers).to.deep.include({ address: other.address, id: 'other', direction: 'outbound', connected: true });
    // The other side sees the same node coming back.
    await waitFor(async () => (await other.query<PeerRow[]>({ type: 'peers' })).some((r) => r.id === id && r.connected), { what: `other to see ${id} again` });

    // A second restart, this time after a SIGKILL: still the same node, still the same peer.
    await node.kill();
    node = await restartNode(node);
    expect(node.id).to.equal(id);
    await waitForConnected(node, ['other']);
  });

  it('without dataDir, says once at start that keys are kept in memory only', async () => {
    const node = await startNode({ id: 'memory' });
    expect((await node.bby('set', 'k', 'v')).stdout).to.equal('true\n');
    expect(await node.bby('get', 'k')).to.include({ stdout: 'v\n' });
    const output = node.process.stdout + node.process.stderr;
    expect(output.match(/keys are kept in memory only/g), output).to.have.length(1);
    expect(output).not.to.match(/keys loaded/);

    const durable = await startNode({ id: 'durable', dataDir: 'data-durable' });
    expect(await keysLoaded(durable)).to.equal(0);
    expect(durable.process.stdout + durable.process.stderr).not.to.match(/memory only/);
  });

  it('refuses a second node on the same dataDir, naming the folder and the holder; the first keeps serving', async () => {
    const first = await startNode({ id: 'holder', dataDir: 'shared' });
    const dataDir = first.dataDir!;
    expect((await first.bby('set', 'before', '1')).stdout).to.equal('true\n');
    // The same folder spelled two ways: relative, and absolute with a detour.
    const configs = [await writeConfig({ id: 'intruder', dataDir: 'shared' }), await writeConfig({ id: 'intruder2', dataDir: `${join(dataDir, '..', 'shared')}/` })];
    for (const config of configs) {
      const startedAt = Date.now();
      const result = await runNodeToExit([config.path], 10_000);
      expect(Date.now() - startedAt, 'exits quickly').to.be.below(5_000);
      expect(result.code, result.stderr).to.be.a('number').and.not.equal(0);
      expect(result.stderr).to.include(`data folder ${dataDir} is in use by process ${first.process.pid}`);
      expect(result.stderr).to.include(config.path);
      expect(result.stderr.trimEnd().split('\n'), 'one line').to.have.length(1);
      expect(result.stderr).not.to.match(/^\s+at /m);
      expect(result.stdout).not.to.match(/listening on/);
    }
    expect(first.process.exitStatus).to.equal(undefined);
    expect((await readFile(join(dataDir, 'LOCK'), 'utf8')).trim()).to.equal(String(first.process.pid));
    expect(await first.bby('get', 'before')).to.include({ code: 0, stdout: '1\n' });
    expect((await first.bby('set', 'after', '2')).stdout).to.equal('true\n');
    // A clean stop releases the folder.
    expect((await first.stop()).code).to.equal(0);
    expect(existsSync(join(dataDir, 'LOCK'))).to.equal(false);
  });

  it('after a SIGKILL left a stale LOCK, of two nodes started at the same moment on that dataDir exactly one starts', async () => {
    const configs = [await writeConfig({ id: 'racer', file: 'racer-1.json', dataDir: 'raced' }), await writeConfig({ id: 'racer', file: 'racer-2.json', dataDir: 'raced' })];
    const first = await startNode(configs[0]!);
    expect((await first.bby('set', 'k', 'v')).stdout).to.equal('true\n');
    let killHolder = () => first.kill();
    const up = (p: TrackedProcess) => p.waitForOutput(/listening on/, 10_000).then(
      () => true,
      () => false,
    );
    for (let round = 1; round <= 5; round++) {
      await killHolder(); // leaves LOCK with the pid of a process that is gone
      expect(existsSync(join(configs[0]!.dataDir!, 'LOCK'))).to.equal(true);
      const racers = configs.map((config, i) => spawnNode([config.path], `racer ${i + 1} (round ${round})`));
      const started = await Promise.all(racers.map(up));
      expect(started.filter(Boolean), `round ${round}: how many of the two started`).to.have.length(1);
      const winner = racers[started.indexOf(true)]!;
      const loser = racers[started.indexOf(false)]!;
      const status = await loser.waitForExit(5_000);
      expect(status.code, `round ${round}: the other one exits non-zero`).to.be.a('number').and.not.equal(0);
      expect(loser.stderr).to.include(`is in use by process ${winner.pid}`);
      expect((await readFile(join(configs[0]!.dataDir!, 'LOCK'), 'utf8')).trim()).to.equal(String(winner.pid));
      killHolder = () => {
        winner.child.kill('SIGKILL');
        return winner.exited;
      };
      const client = await connectClient(configs[started.indexOf(true)]!.address);
      expect(await client.request({ type: 'get', key: 'k' })).to.equal('v');
      client.close();
    }
  });

  it('refuses a log damaged in the middle, naming the file, the offset and --repair; --repair keeps every intact record', async () => {
    const config = await writeConfig({ id: 'damaged', dataDir: 'data-damaged' });
    let node = await startNode(config);
    const entries = makeEntries('key', 60);
    await setAll(await connectClient(node.address), entries, 8);
    expect((await node.stop()).code).to.equal(0);

    const log = await newestLog(config.dataDir!);
    const data = await readFile(log);
    const all = records(data);
    expect(all).to.have.length(entries.size);
    const middle = Math.floor(data.length / 2);
    const hit = all.findIndex((r) => r.start <= middle && middle < r.start + r.size);
    expect(hit, 'the flipped byte is not in the last record').to.be.within(1, all.length - 2);
    const damagedKey = JSON.parse(data.subarray(all[hit]!.start + 8, all[hit]!.start + all[hit]!.size).toString('utf8'))[0] as string;
    data[middle] = data[middle]! ^ 0x20;
    await writeFile(log, data);

    const refused = await runNodeToExit([config.path], 10_000);
    expect(refused.code, refused.stderr).to.equal(1);
    expect(refused.stderr).to.include(`${log} is damaged at byte ${all[hit]!.start}`);
    expect(refused.stderr).to.include('--repair');
    expect(refused.stderr).to.include(config.path);
    expect(refused.stderr).not.to.match(/^\s+at /m);
    expect(refused.stdout).not.to.match(/listening on/);
    // Refusing touched nothing.
    expect((await readFile(log)).equals(data)).to.equal(true);

    node = await startNode(config, { args: ['--repair'] });
    expect(await keysLoaded(node)).to.equal(entries.size - 1);
    expect(warnings(node).join('\n')).to.match(new RegExp(`repaired ${escapeRegExp(log.split('/').at(-1)!)}: kept ${entries.size - 1} intact records, skipped \\d+ bytes at ${all[hit]!.start}`));
    const intact = new Map([...entries].filter(([key]) => key !== damagedKey));
    await expectAll(node, intact);
    expect(await node.bby('get', damagedKey)).to.include({ code: 0, stdout: 'null\n' });
    const [someKey, someValue] = [...intact][hit]!;
    expect(await node.bby('get', someKey)).to.include({ code: 0, stdout: `${someValue}\n` });
    expect(existsSync(`${log}.damaged`), 'the damaged file is kept aside').to.equal(true);
    expect((await readFile(`${log}.damaged`)).equals(data)).to.equal(true);
    // The repaired node takes writes, and starts cleanly from then on.
    expect((await node.bby('set', 'after-repair', 'yes')).stdout).to.equal('true\n');
    expect((await node.stop()).code).to.equal(0);
    node = await restartNode(config);
    expect(await keysLoaded(node)).to.equal(entries.size);
    expect(warnings(node)).to.deep.equal([]);
    await expectAll(node, new Map([...intact, ['after-repair', 'yes']]));
  });

  it('drops a torn last record with a warning that says how many bytes', async () => {
    const config = await writeConfig({ id: 'torn', dataDir: 'data-torn' });
    let node = await startNode(config);
    const entries = makeEntries('torn', 30);
    await setAll(await connectClient(node.address), entries, 4);
    expect((await node.stop()).code).to.equal(0);

    const log = await newestLog(config.dataDir!);
    const data = await readFile(log);
    const last = records(data).at(-1)!;
    const lastKey = JSON.parse(data.subarray(last.start + 8).toString('utf8'))[0] as string;
    const CUT = 5;
    await truncate(log, data.length - CUT);

    node = await restartNode(config);
    expect(await keysLoaded(node)).to.equal(entries.size - 1);
    const torn = last.size - CUT;
    expect(warnings(node)).to.have.length(1);
    expect(warnings(node)[0]).to.include(`dropped a torn record of ${torn} bytes at the end of ${log.split('/').at(-1)}`);
    entries.delete(lastKey);
    await expectAll(node, entries);
    expect(await node.bby('get', lastKey)).to.include({ code: 0, stdout: 'null\n' });
    // The tail is cut for good: new writes follow the last intact record.
    expect((await node.bby('set', lastKey, 'again')).stdout).to.equal('true\n');
    entries.set(lastKey, 'again');
    expect((await node.stop()).code).to.equal(0);
    node = await restartNode(config);
    expect(await keysLoaded(node)).to.equal(entries.size);
    expect(warnings(node)).to.deep.equal([]);
    await expectAll(node, entries);
  });

  for (const fsync of ['always', 'everysec', 'no', undefined] as const) {
    it(`fsync ${fsync === undefined ? 'left out (always)' : JSON.stringify(fsync)}: accepted, and writes survive a clean restart`, async () => {
      const config = await writeConfig({ id: `fsync-${fsync ?? 'default'}`, dataDir: `data-${fsync ?? 'default'}`, ...(fsync === undefined ? {} : { fsync }) });
      let node = await startNode(config);
      await node.process.waitForOutput(new RegExp(`\\(fsync ${fsync ?? 'always'}\\): 0 keys loaded`), 5_000);
      const entries = makeEntries(`fsync-${fsync}`, 300);
      await setAll(await connectClient(node.address), entries);
      expect((await node.bby('set', 'via-cli', 'yes')).stdout).to.equal('true\n');
      entries.set('via-cli', 'yes');
      expect((await node.stop()).code).to.equal(0);

      node = await restartNode(config);
      expect(await keysLoaded(node)).to.equal(entries.size);
      expect(warnings(node)).to.deep.equal([]);
      await expectAll(node, entries);
      expect(await node.bby('get', 'via-cli')).to.include({ code: 0, stdout: 'yes\n' });
    });
  }

  it('an invalid fsync value exits 2 naming the field', async () => {
    for (const [name, fsync] of [['sometimes', 'sometimes'], ['true', true], ['ALWAYS', 'ALWAYS']] as const) {
      const config = await writeConfig({ id: `bad-fsync-${name}`, dataDir: 'data-bad', fsync });
      const result = await runNodeToExit([config.path], 5_000);
      expect(result.code, result.stderr).to.equal(2);
      expect(result.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(result.stderr).to.match(new RegExp(`^bby-node: ${escapeRegExp(config.path)}: "fsync" must be one of "always", "everysec", "no", got ${escapeRegExp(JSON.stringify(fsync))}`));
      expect(result.stdout).to.equal('');
    }
    // The CLI reads the same config: it refuses it too, rather than guessing.
    const config = await writeConfig({ id: 'bad-fsync-cli', fsync: 'sometimes' });
    const cli = await runBby(config.path, 'keys');
    expect(cli.code).to.equal(2);
    expect(cli.stderr).to.include('"fsync"');
  });
});
