/**
 * End to end: `bby CONFIG import FILE` and `bby CONFIG export` against real
 * bby-node processes: the input formats, the write-once summary, the errors
 * that name the line, and export → import round trips.
 */
import { expect } from 'chai';
import { freePort, runBby, runBbyArgs, startNode, useCleanup, writeConfig, writeTestFile, type NodeStats } from './support/processes.js';

const jsonLines = (entries: readonly (readonly [string, string])[]) => entries.map(([key, value]) => `${JSON.stringify({ key, value })}\n`).join('');

describe('e2e: bby import and export', function () {
  this.timeout(60_000);
  useCleanup();

  it('import reads JSON lines, applies the write-once rule and prints stored, identical, refused', async () => {
    const node = await startNode({ id: 'imp' });
    expect((await node.bby('set', 'taken', 'first')).stdout).to.equal('true\n');
    expect((await node.bby('set', 'same', 'v')).stdout).to.equal('true\n');
    const file = await writeTestFile(
      'in.jsonl',
      // The "\n" between the two parts is a blank line, which import skips.
      `${jsonLines([
        ['alpha', '1'],
        ['beta', 'two words'],
        ['same', 'v'],
        ['taken', 'second'],
      ])}\n${jsonLines([['gamma', '{"json": "inside"}']])}`,
    );

    const result = await node.bby('import', file);
    expect(result.code).to.equal(0);
    expect(result.stdout).to.equal('stored 3, identical 1, refused 1\n');
    // The refused key is named with its line.
    expect(result.stderr).to.equal('bby: refused "taken" (line 4): the node holds another value for it\n');

    expect((await node.bby('get', 'beta')).stdout).to.equal('two words\n');
    expect((await node.bby('get', 'gamma')).stdout).to.equal('{"json": "inside"}\n');
    expect((await node.bby('get', 'taken')).stdout).to.equal('first\n');
    const stats = await node.json<NodeStats>('stats');
    expect(stats).to.include({ keys: 5, writesAccepted: 5, writesRefused: 1 });

    // Importing again is harmless: everything is identical now, the refusal stays.
    const again = await runBby('--json', node.path, 'import', file);
    expect(again.code).to.equal(0);
    expect(JSON.parse(again.stdout)).to.deep.equal({ stored: 0, identical: 4, refused: 1 });
  });

  it('import takes values up to the 256 KiB limit, a large one alone in its request, and export gives them back', async () => {
    const node = await startNode({ id: 'big' });
    const largest = 'v'.repeat(256 * 1024 - 2);
    const file = await writeTestFile('big.jsonl', jsonLines([['small', '1'], ['big', 'x'.repeat(200_000)], ['largest', largest], ['after', '2']]));
    const result = await node.bby('import', file);
    expect(result).to.include({ code: 0, stdout: 'stored 4, identical 0, refused 0\n', stderr: '' });
    expect((await node.bby('get', 'big')).stdout).to.equal(`${'x'.repeat(200_000)}\n`);
    expect((await node.bby('get', 'after')).stdout).to.equal('2\n');
    const exported = await node.bby('export');
    expect(exported.code).to.equal(0);
    expect(exported.stdout).to.include(`{"key":"largest","value":"${largest}"}\n`);
  });

  it('import reads one JSON object of key to value', async () => {
    const node = await startNode({ id: 'obj' });
    const file = await writeTestFile('in.json', { MonChamp: '42', 'with space': 'a b', accents: 'éàü ☃' });
    const result = await node.bby('import', file);
    expect(result).to.include({ code: 0, stdout: 'stored 3, identical 0, refused 0\n', stderr: '' });
    expect((await node.bby('get', 'accents')).stdout).to.equal('éàü ☃\n');
    expect((await node.bby('keys')).stdout).to.equal('MonChamp\naccents\nwith space\n');
  });

  it('an invalid line stops the import with an error naming the file and the line; the lines before it are kept', async () => {
    const node = await startNode({ id: 'bad' });
    const cases: [string, string, RegExp][] = [
      ['value-number.jsonl', `${jsonLines([['a', '1']])}{"key":"b","value":2}\n`, /line 2: "value" must be a string, got number 2/],
      ['no-key.jsonl', `${jsonLines([['c', '1']])}{"value":"x"}\n`, /line 2: "key" must be a string, got nothing/],
      ['broken.jsonl', `${jsonLines([['d', '1'], ['e', '2']])}{"key":"f","value":\n`, /line 3: not valid JSON/],
      ['empty-key.jsonl', `${jsonLines([['g', '1']])}{"key":"","value":"x"}\n`, /line 2: the key is empty/],
      ['array.jsonl', `${jsonLines([['h', '1']])}["i","1"]\n`, /line 2: expected an object/],
    ];
    for (const [name, content, message] of cases) {
      const file = await writeTestFile(name, content);
      const result = await node.bby('import', file);
      expect(result.code, name).to.equal(2);
      expect(result.stderr, name).to.match(new RegExp(`^bby: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} ${message.source}`));
      expect(result.stderr, name).to.include('stopped there; the entries before it were sent');
      expect(result.stdout, name).to.match(/^stored [12], identical 0, refused 0\n$/);
    }

    expect((await node.bby('keys')).stdout).to.equal('a\nc\nd\ne\ng\nh\n');

    // A key over the limit is refused before anything is sent, as `set` does.
    const big = await writeTestFile('big-key.jsonl', jsonLines([['k'.repeat(1025), 'v']]));
    const result = await node.bby('import', big);
    expect(result.code).to.equal(2);
    expect(result.stderr).to.match(/line 1: the key is 1025 bytes; the limit is 1024 bytes/);

    // A JSON object with a non-string value names the key.
    const object = await writeTestFile('object.json', { fine: 'yes', wrong: 3 });
    const objectResult = await node.bby('import', object);
    expect(objectResult.code).to.equal(2);
    expect(objectResult.stderr).to.match(/key "wrong": the value must be a string, got number 3/);
    // A JSON object is checked whole before anything is sent, and the message says so.
    expect(objectResult.stderr).to.include('stopped there; nothing was sent');
    expect((await node.bby('get', 'fine')).stdout).to.equal('null\n');
  });

  it('import and export report a missing file, a missing argument and an unreachable node', async () => {
    const node = await startNode({ id: 'errs' });
    const missing = await node.bby('import', `${node.path}.nothing`);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.equal(`bby: ${node.path}.nothing: no such file\n`);

    const noFile = await node.bby('import');
    expect(noFile.code).to.equal(2);
    expect(noFile.stderr).to.match(/import takes 1 argument\(s\), got 0/);

    const down = await writeConfig({ id: 'down', port: await freePort() });
    const file = await writeTestFile('one.jsonl', jsonLines([['a', '1']]));
    for (const args of [['import', file], ['export']]) {
      const result = await runBby(down.path, ...args);
      expect(result.code, args[0]).to.equal(1);
      expect(result.stderr, args[0]).to.match(/cannot reach the node .* is the node started\?/);
    }
  });

  it('export prints every key as JSON lines in key order, and import reads it back on another node', async () => {
    const source = await startNode({ id: 'src' });
    const entries: [string, string][] = [
      ['zeta', 'last'],
      ['alpha', 'line one\nline two'],
      ['quote"d', 'back\\slash and "quotes"'],
      ['unicode ☃', 'émoji 🎉'],
      ['empty', ''],
    ];
    const file = await writeTestFile('entries.jsonl', jsonLines(entries));
    expect((await source.bby('import', file)).stdout).to.equal('stored 5, identical 0, refused 0\n');

    const exported = await source.bby('export');
    expect(exported).to.include({ code: 0, stderr: '' });
    const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    expect(exported.stdout).to.equal(jsonLines(sorted));

    const target = await startNode({ id: 'dst' });
    const copy = await writeTestFile('copy.jsonl', exported.stdout);
    expect((await target.bby('import', copy)).stdout).to.equal('stored 5, identical 0, refused 0\n');
    expect((await target.bby('export')).stdout).to.equal(exported.stdout);
    expect((await target.bby('get', 'alpha')).stdout).to.equal('line one\nline two\n');

    // An empty node exports nothing.
    const empty = await startNode({ id: 'empty' });
    expect(await empty.bby('export')).to.include({ code: 0, stdout: '', stderr: '' });
  });

  it('export and keys work when the list of keys is larger than one 1 MiB frame (keys come in pages)', async () => {
    const node = await startNode({ id: 'many' });
    // 6,000 keys of 200 bytes: the `keys` answer is about 1.2 MB.
    const count = 6_000;
    const keys = Array.from({ length: count }, (_, i) => `${String(i).padStart(6, '0')}-${'k'.repeat(193)}`);
    const file = await writeTestFile('many.jsonl', jsonLines(keys.map((key, i) => [key, `value ${i}`])));
    const imported = await node.bby('import', file);
    expect(imported).to.include({ code: 0, stdout: `stored ${count}, identical 0, refused 0\n` });

    const exported = await node.bby('export');
    expect(exported.code).to.equal(0);
    const lines = exported.stdout.trimEnd().split('\n');
    expect(lines).to.have.length(count);
    expect(JSON.parse(lines[0]!)).to.deep.equal({ key: keys[0], value: 'value 0' });
    expect(JSON.parse(lines[count - 1]!)).to.deep.equal({ key: keys[count - 1], value: `value ${count - 1}` });

    const listed = await node.bby('keys');
    expect(listed.code).to.equal(0);
    expect(listed.stdout).to.equal(`${keys.join('\n')}\n`);
  });

  it('bby --help lists import and export', async () => {
    const help = await runBbyArgs(['--help']);
    expect(help.code).to.equal(0);
    expect(help.stdout).to.match(/^ {2}import FILE +set every key of FILE/m);
    expect(help.stdout).to.match(/^ {2}export +print every key and value as JSON lines/m);
  });
});
