/**
 * `bby import`'s input reader: JSON lines and JSON objects packed into
 * set-many requests. Lines written plainly are copied as bytes, others are
 * parsed; both must give the same requests, the same line numbers and the
 * same errors, wherever the reads cut the input.
 */
import { Readable } from 'node:stream';
import { expect } from 'chai';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '@bby/core';
import { ImportInputError, isPlainEntry, readBatches } from '../src/import-input.js';
import { type BatchLimits, type SetManyBatch } from '../src/set-many-batch.js';

interface Sent {
  key: string;
  value: string;
  line: number | null;
}

/** Reads `input` cut into reads of `pieceBytes` bytes; returns the requests' entries, or the error with the entries sent before it. */
async function readAll(input: string | Buffer, pieceBytes = 1 << 16, limits?: BatchLimits): Promise<{ batches: Sent[][]; error?: Error }> {
  const bytes = typeof input === 'string' ? Buffer.from(input) : input;
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += pieceBytes) pieces.push(bytes.subarray(i, i + pieceBytes));
  const batches: Sent[][] = [];
  try {
    for await (const batch of readBatches(Readable.from(pieces), 'in.jsonl', limits)) batches.push(decode(batch));
  } catch (error) {
    return { batches, error: error as Error };
  }
  return { batches };
}

/** The entries of a batch, read back from the request it makes (which must be valid JSON). */
function decode(batch: SetManyBatch): Sent[] {
  const request = JSON.parse(batch.frame(7).toString('utf8')) as { type: string; id: number; entries: { key: string; value: string }[] };
  expect(request).to.include({ type: 'set-many', id: 7 });
  expect(request.entries).to.have.length(batch.count);
  return request.entries.map((entry, index) => {
    expect(Object.keys(entry)).to.deep.equal(['key', 'value']);
    expect(batch.keyAt(index)).to.equal(entry.key);
    return { ...entry, line: batch.lineAt(index) };
  });
}

const plain = (key: string, value: string) => `{"key":"${key}","value":"${value}"}`;

describe('import input: JSON lines and objects into set-many requests', () => {
  it('recognises plain lines on their bytes, and leaves every other line to the parser', () => {
    const check = (text: string) => isPlainEntry(Buffer.from(text), 0, Buffer.byteLength(text));
    expect(check(plain('k', 'v'))).to.equal(true);
    expect(check(plain('clé', 'été ☃ 😀'))).to.equal(true);
    expect(check(plain('k', ''))).to.equal(true);
    // Valid, but not plain: parsed instead.
    expect(check('{"key": "k", "value": "v"}')).to.equal(false);
    expect(check('{"value":"v","key":"k"}')).to.equal(false);
    expect(check(plain('k', 'a\\"b'))).to.equal(false);
    expect(check(plain('k', 'a\\u0041'))).to.equal(false);
    // Invalid ones are never plain: the parser names their fault.
    expect(check(plain('', 'v'))).to.equal(false);
    expect(check(plain('k', 'a\tb'))).to.equal(false);
    expect(check(`${plain('k', 'v')} `)).to.equal(false);
    expect(check('{"key":"k","value":"v"')).to.equal(false);
    expect(check('{"key":"k","value":"v"}}')).to.equal(false);
    expect(check(plain('k'.repeat(MAX_KEY_BYTES + 1), 'v'))).to.equal(false);
    expect(check(plain('k'.repeat(MAX_KEY_BYTES), 'v'))).to.equal(true);
    expect(check(plain('k', 'v'.repeat(MAX_VALUE_BYTES - 1)))).to.equal(false);
    expect(check(plain('k', 'v'.repeat(MAX_VALUE_BYTES - 2)))).to.equal(true);
  });

  it('plain and parsed lines give the same entries and line numbers, however the reads cut the input', async () => {
    const lines = [
      plain('a', '1'),
      '',
      '{"key": "b", "value": "two words", "extra": 1}',
      plain('c', 'été ☃ 😀'),
      '   ',
      '{"value":"x","key":"d"}',
      JSON.stringify({ key: 'e', value: 'quote " and \\ and \n newline' }),
      plain('f', '6'),
    ];
    const expected: Sent[] = [
      { key: 'a', value: '1', line: 1 },
      { key: 'b', value: 'two words', line: 3 },
      { key: 'c', value: 'été ☃ 😀', line: 4 },
      { key: 'd', value: 'x', line: 6 },
      { key: 'e', value: 'quote " and \\ and \n newline', line: 7 },
      { key: 'f', value: '6', line: 8 },
    ];
    for (const ending of ['\n', '\r\n']) {
      for (const last of ['', ending]) {
        const text = lines.join(ending) + last;
        for (const pieceBytes of [1, 2, 3, 7, 64, 1 << 16]) {
          const { batches, error } = await readAll(text, pieceBytes);
          expect(error, `${JSON.stringify(ending)} pieces of ${pieceBytes}`).to.equal(undefined);
          expect(batches.flat(), `${JSON.stringify(ending)} pieces of ${pieceBytes}`).to.deep.equal(expected);
        }
      }
    }
  });

  it('fills each request up to its byte and entry limits, in order, and no further', async () => {
    const count = 500;
    const text = Array.from({ length: count }, (_, i) => (i % 3 === 0 ? JSON.stringify({ value: `v${i}`, key: `k${i}` }) : plain(`k${i}`, `v${i}`))).join('\n');
    const limits = { bytes: 1000, entries: 40 };
    const { batches, error } = await readAll(text, 333, limits);
    expect(error).to.equal(undefined);
    expect(batches.flat().map((entry) => entry.key)).to.deep.equal(Array.from({ length: count }, (_, i) => `k${i}`));
    expect(batches.flat().map((entry) => entry.line)).to.deep.equal(Array.from({ length: count }, (_, i) => i + 1));
    for (const batch of batches) {
      expect(batch.length).to.be.at.most(limits.entries);
      // The entries' JSON texts and the commas between them.
      const bytes = batch.reduce((sum, entry) => sum + Buffer.byteLength(JSON.stringify({ key: entry.key, value: entry.value })), batch.length - 1);
      expect(bytes).to.be.at.most(limits.bytes);
    }
    // Full requests: the next entry would not have fitted.
    for (const [index, batch] of batches.slice(0, -1).entries()) {
      const next = batches[index + 1]![0]!;
      const bytes = batch.reduce((sum, entry) => sum + Buffer.byteLength(JSON.stringify({ key: entry.key, value: entry.value })) + 1, 0);
      expect(batch.length === limits.entries || bytes + Buffer.byteLength(JSON.stringify({ key: next.key, value: next.value })) > limits.bytes).to.equal(true);
    }
  });

  it('an entry larger than a request goes alone, in a request of its own size, and the next ones follow as usual', async () => {
    // With the real limits: a value of 200,000 and one of the largest allowed, between small entries, plain and parsed.
    const largest = 'v'.repeat(MAX_VALUE_BYTES - 2);
    const lines = [plain('a', '1'), plain('big', 'x'.repeat(200_000)), plain('b', '2'), JSON.stringify({ value: largest, key: 'largest' }), plain('c', '3')];
    for (const pieceBytes of [4096, 1 << 16]) {
      const { batches, error } = await readAll(lines.join('\n'), pieceBytes);
      expect(error).to.equal(undefined);
      expect(batches.map((batch) => batch.map((entry) => entry.key))).to.deep.equal([['a'], ['big'], ['b'], ['largest'], ['c']]);
      expect(batches[1]![0]!.value).to.have.length(200_000);
      expect(batches[3]![0]).to.deep.equal({ key: 'largest', value: largest, line: 4 });
    }
    // With small limits: a 300-byte entry among 20-byte ones, and two in a row.
    const text = [plain('a', '1'), plain('b', 'y'.repeat(280)), plain('c', 'z'.repeat(290)), plain('d', '4'), plain('e', '5')].join('\n');
    const { batches, error } = await readAll(text, 7, { bytes: 100, entries: 10 });
    expect(error).to.equal(undefined);
    expect(batches.map((batch) => batch.map((entry) => entry.key))).to.deep.equal([['a'], ['b'], ['c'], ['d', 'e']]);
  });

  it('skips a UTF-8 byte order mark at the start of the input, and only there', async () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const pieceBytes of [1, 2, 1 << 16]) {
      const lines = await readAll(Buffer.concat([bom, Buffer.from(`${plain('a', '1')}\n${plain('b', '2')}\n`)]), pieceBytes);
      expect(lines.error).to.equal(undefined);
      expect(lines.batches.flat()).to.deep.equal([
        { key: 'a', value: '1', line: 1 },
        { key: 'b', value: '2', line: 2 },
      ]);
      const object = await readAll(Buffer.concat([bom, Buffer.from('{"k": "v"}')]), pieceBytes);
      expect(object.batches.flat()).to.deep.equal([{ key: 'k', value: 'v', line: null }]);
    }
    // Anywhere else it is a character like any other: not valid JSON there.
    const { error } = await readAll(Buffer.concat([Buffer.from(`${plain('a', '1')}\n`), bom, Buffer.from(plain('b', '2'))]));
    expect(error?.message).to.match(/^in\.jsonl line 2: not valid JSON/);
  });

  it('an invalid line stops the reading with its line number, after the entries before it', async () => {
    const cases: [string, RegExp][] = [
      [`${plain('a', '1')}\n${plain('', 'v')}\n`, /in\.jsonl line 2: the key is empty/],
      [`${plain('a', '1')}\n{"key":"b","value":2}\n`, /in\.jsonl line 2: "value" must be a string, got number 2/],
      [`${plain('a', '1')}\n${plain('b', 'tab\there')}\n`, /in\.jsonl line 2: not valid JSON/],
      [`${plain('a', '1')}\n${plain('b', 'v'.repeat(MAX_VALUE_BYTES))}\n`, /in\.jsonl line 2: the value is \d+ bytes as JSON; the limit is/],
      [`${plain('a', '1')}\n${plain('b', '\\ud800')}\n`, /in\.jsonl line 2: .*well-formed/],
    ];
    for (const [text, message] of cases) {
      const { batches, error } = await readAll(text, 5);
      expect(error, text.slice(0, 60)).to.be.instanceOf(ImportInputError);
      expect(error!.message).to.match(message);
      expect(batches.flat()).to.deep.equal([{ key: 'a', value: '1', line: 1 }]);
    }
  });

  it('a line that is not valid UTF-8 is an error naming it, not a silent replacement', async () => {
    const text = Buffer.concat([Buffer.from(`${plain('a', '1')}\n{"key":"b","value":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]);
    for (const pieceBytes of [3, 1 << 16]) {
      const { batches, error } = await readAll(text, pieceBytes);
      expect(error).to.be.instanceOf(ImportInputError);
      expect(error!.message).to.equal('in.jsonl line 2: not valid UTF-8; save the file as UTF-8');
      expect(batches.flat()).to.deep.equal([{ key: 'a', value: '1', line: 1 }]);
    }
  });

  it('reads one JSON object of key to value, over several lines, with null lines', async () => {
    const object = { MonChamp: '42', 'with space': 'a b', accents: 'éàü ☃' };
    const { batches, error } = await readAll(JSON.stringify(object, null, 2), 4);
    expect(error).to.equal(undefined);
    expect(batches.flat()).to.deep.equal(Object.entries(object).map(([key, value]) => ({ key, value, line: null })));
  });
});
