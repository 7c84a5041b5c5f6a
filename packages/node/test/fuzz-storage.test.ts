/**
 * Fuzzing the record decoder of the data folder (src/storage/record.ts;
 * issue 12, item 7): random bytes, files of valid records and garbage, and
 * valid log and snapshot files damaged as disks and crashes damage them (bit
 * flips, truncation, inserted bytes, runs of zeros, a zero-filled tail).
 *
 * Properties of `readRecords` (documented: "never throws on bad bytes"):
 * - it returns `ok`, `torn` or `corrupt`, and its offsets add up: the bytes
 *   of the records it returned, after the magic, end exactly where it says
 *   the file is fine up to (`validBytes`, the corrupt `offset`, or the end);
 * - it never returns an entry that is not in the file: for a damaged valid
 *   file, its entries are a prefix of the original ones, and every record
 *   before the first damaged byte is among them;
 * - a file cut anywhere is `ok` on a record boundary and `torn` inside a
 *   record, zeros after the last record are `torn`, and one flipped bit is
 *   `corrupt` at the start of its record (or `torn`, when it is in the length
 *   of the last record: it then runs past the end, as a torn write does).
 * Properties of `salvageRecords` (used by repair, "so that nothing intact is
 * lost"): it does not throw, returns only entries of the file and every
 * intact record of a damaged file, and its damaged ranges are ordered,
 * disjoint and inside the file.
 *
 * Runs: a fixed seed in `npm test`; FUZZ_RUNS=n and FUZZ_SEED=n|random for
 * long runs (packages/core/test/support/fuzz.ts), e.g.
 *   FUZZ_RUNS=100000 FUZZ_SEED=random npx mocha --no-config --timeout 0 packages/node/dist/test/fuzz-storage.test.js
 */
import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import fc from 'fast-check';
import { encodeRecord, LOG_MAGIC, MAX_RECORD_BYTES, readRecords, RECORD_HEADER_BYTES, type ReadResult, salvageRecords, type SalvageResult, SNAPSHOT_MAGIC, type StoredEntry } from '../src/storage/record.js';
import { fuzz } from './support/core-fuzz.js';

/** Any UTF-16 unit, lone surrogates included: JSON escapes them, and the decoder must give them back. */
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code));
const textArb = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: anyUnit, maxLength: 8 }));
const entryArb: fc.Arbitrary<StoredEntry> = fc
  .record({
    key: textArb,
    value: fc.oneof({ weight: 6, arbitrary: textArb }, fc.constantFrom('', 'x'.repeat(3000), '\u0000\n"\\'.repeat(100))),
    timestamp: fc.oneof(fc.maxSafeInteger(), fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 })),
    origin: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
    seq: fc.oneof(fc.constant(0), fc.maxSafeNat()),
  })
  .map(({ seq, ...entry }) => (seq > 0 ? { ...entry, seq } : entry));
const magicArb = fc.constantFrom(LOG_MAGIC, SNAPSHOT_MAGIC);

/** A file of valid records, and where each record starts and ends. */
interface ValidFile {
  readonly magic: Buffer;
  readonly bytes: Buffer;
  readonly entries: readonly StoredEntry[];
  readonly starts: readonly number[];
  readonly ends: readonly number[];
}

function fileOf(magic: Buffer, entries: readonly StoredEntry[]): ValidFile {
  const records = entries.map(encodeRecord);
  const starts: number[] = [];
  const ends: number[] = [];
  let offset = magic.length;
  for (const record of records) {
    starts.push(offset);
    offset += record.length;
    ends.push(offset);
  }
  return { magic, bytes: Buffer.concat([magic, ...records]), entries, starts, ends };
}

const validFileArb = fc.tuple(magicArb, fc.array(entryArb, { maxLength: 10 })).map(([magic, entries]) => fileOf(magic, entries));

/**
 * A damaged copy of a file: its bytes, and where an original offset is in it
 * (null when those bytes are gone), so that the intact records can be found.
 */
interface Damage {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly moved: (offset: number) => number | null;
}

type DamageSpec =
  | { readonly kind: 'bit-flips'; readonly bits: readonly number[] }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'insert'; readonly at: number; readonly inserted: Uint8Array }
  | { readonly kind: 'zero-run'; readonly at: number; readonly length: number }
  | { readonly kind: 'zero-tail'; readonly length: number };

const damageArb: fc.Arbitrary<DamageSpec> = fc.oneof(
  fc.record({ kind: fc.constant('bit-flips'), bits: fc.array(fc.noBias(fc.nat()), { minLength: 1, maxLength: 4 }) }),
  fc.record({ kind: fc.constant('truncate'), at: fc.noBias(fc.nat()) }),
  fc.record({ kind: fc.constant('insert'), at: fc.noBias(fc.nat()), inserted: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('zero-run'), at: fc.noBias(fc.nat()), length: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ kind: fc.constant('zero-tail'), length: fc.integer({ min: 1, max: 5000 }) }),
);

function damage(original: Buffer, spec: DamageSpec): Damage {
  const length = original.length;
  switch (spec.kind) {
    case 'bit-flips': {
      const bytes = Buffer.from(original);
      for (const bit of spec.bits) if (length > 0) bytes[(bit >> 3) % length]! ^= 1 << (bit & 7);
      return { kind: spec.kind, bytes, moved: (offset) => offset };
    }
    case 'truncate': {
      const at = spec.at % (length + 1);
      return { kind: spec.kind, bytes: original.subarray(0, at), moved: (offset) => (offset <= at ? offset : null) };
    }
    case 'insert': {
      const at = spec.at % (length + 1);
      return { kind: spec.kind, bytes: Buffer.concat([original.subarray(0, at), spec.inserted, original.subarray(at)]), moved: (offset) => (offset < at ? offset : offset + spec.inserted.length) };
    }
    case 'zero-run': {
      const bytes = Buffer.from(original);
      const at = spec.at % (length + 1);
      bytes.fill(0, at, Math.min(length, at + spec.length));
      return { kind: spec.kind, bytes, moved: (offset) => offset };
    }
    case 'zero-tail':
      return { kind: spec.kind, bytes: Buffer.concat([original, Buffer.alloc(spec.length)]), moved: (offset) => offset };
  }
}

/** The original records whose bytes are all still there, unchanged, in the damaged file. */
function intactRecords(file: ValidFile, damaged: Damage): StoredEntry[] {
  return file.entries.filter((_, index) => {
    const start = damaged.moved(file.starts[index]!);
    const end = damaged.moved(file.ends[index]!);
    if (start === null || end === null || end - start !== file.ends[index]! - file.starts[index]!) return false;
    return damaged.bytes.subarray(start, end).equals(file.bytes.subarray(file.starts[index]!, file.ends[index]!));
  });
}

/** Length of the common prefix of two byte strings. */
function commonPrefix(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return i;
  return length;
}

/** An entry as the decoder returns it: `seq` only when it is positive. */
const normalized = (entry: StoredEntry) => JSON.stringify([entry.key, entry.value, entry.timestamp, entry.origin, entry.seq ?? 0]);

/**
 * Every entry some offset of `bytes` holds a record of (a length, a matching
 * checksum, a JSON array of 4 or 5 fields): what "in the file" means for
 * random bytes. A brute force over every offset, unlike the decoder.
 */
function recordsAnywhere(bytes: Buffer): Set<string> {
  const found = new Set<string>();
  for (let offset = 0; offset + RECORD_HEADER_BYTES <= bytes.length; offset++) {
    const length = bytes.readUInt32LE(offset);
    if (length === 0 || length > MAX_RECORD_BYTES || offset + RECORD_HEADER_BYTES + length > bytes.length) continue;
    const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
    if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) continue;
    try {
      const fields: unknown = JSON.parse(payload.toString('utf8'));
      if (Array.isArray(fields) && (fields.length === 4 || fields.length === 5)) {
        const [key, value, timestamp, origin, seq = 0] = fields as [string, string, number, string, number?];
        found.add(normalized({ key, value, timestamp, origin, seq }));
      }
    } catch {
      // Not JSON: not a record.
    }
  }
  return found;
}

/** Bytes of the records `entries`, once encoded: where a reader that returned them stands. */
function recordBytes(entries: readonly StoredEntry[]): number {
  return entries.reduce((sum, entry) => sum + encodeRecord(entry).length, 0);
}

/** The documented shape of a ReadResult, and offsets that add up. */
function checkReadResult(result: ReadResult, bytes: Buffer, magic: Buffer): void {
  expect(['ok', 'torn', 'corrupt']).to.include(result.status);
  expect(result.entries).to.be.an('array');
  const consumed = result.entries.length === 0 && bytes.length < magic.length ? 0 : magic.length + recordBytes(result.entries);
  switch (result.status) {
    case 'ok':
      expect(consumed === bytes.length || bytes.length === 0, `ok, but ${consumed} of ${bytes.length} bytes read`).to.equal(true);
      return;
    case 'torn':
      expect(result.validBytes, 'torn: validBytes is where the returned records end').to.equal(consumed);
      expect(result.validBytes + result.tornBytes, 'torn: validBytes + tornBytes').to.equal(bytes.length);
      expect(result.tornBytes).to.be.greaterThan(0);
      return;
    case 'corrupt':
      expect(result.offset, 'corrupt: the offset is where the returned records end (or 0, a bad magic)').to.be.oneOf([consumed, 0]);
      if (result.offset === 0) expect(result.entries).to.deep.equal([]);
      expect(result.offset).to.be.below(Math.max(bytes.length, 1));
      expect(result.reason).to.be.a('string').and.not.equal('');
  }
}

function checkSalvageResult(result: SalvageResult, bytes: Buffer): void {
  let previousEnd = 0;
  for (const range of result.damaged) {
    expect(range.offset, 'damaged ranges are ordered and disjoint').to.be.at.least(previousEnd);
    expect(range.bytes).to.be.greaterThan(0);
    previousEnd = range.offset + range.bytes;
    expect(previousEnd, 'damaged ranges are inside the file').to.be.at.most(bytes.length);
  }
}

/** KNOWN BUGS: none found so far in the decoder. */

describe('fuzz: the storage record decoder', function () {
  this.timeout(fuzz.fuzzTimeoutMs(60_000));

  it('never throws on random bytes, with or without a magic, and returns only records the bytes hold', () => {
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
      fc.tuple(magicArb, fc.uint8Array({ maxLength: 512 })).map(([magic, bytes]) => Buffer.concat([magic, bytes])),
    );
    fc.assert(
      fc.property(bytesArb, magicArb, (bytes, magic) => {
        const read = readRecords(bytes, magic);
        checkReadResult(read, bytes, magic);
        const salvaged = salvageRecords(bytes, magic);
        checkSalvageResult(salvaged, bytes);
        const inFile = recordsAnywhere(bytes);
        for (const entry of [...read.entries, ...salvaged.entries]) expect(inFile.has(normalized(entry)), `entry ${JSON.stringify(entry)} is in the file`).to.equal(true);
      }),
      fuzz.fuzzParameters(400, 100),
    );
  });

  it('reads valid records between runs of garbage: salvage finds every one of them, and nothing else', () => {
    const chunkArb = fc.oneof(entryArb.map((entry) => ({ entry, bytes: encodeRecord(entry) })), fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => ({ entry: null, bytes: Buffer.from(bytes) })));
    fc.assert(
      fc.property(magicArb, fc.boolean(), fc.array(chunkArb, { maxLength: 12 }), (magic, withMagic, chunks) => {
        const bytes = Buffer.concat([withMagic ? magic : Buffer.alloc(0), ...chunks.map((chunk) => chunk.bytes)]);
        const read = readRecords(bytes, magic);
        checkReadResult(read, bytes, magic);
        const salvaged = salvageRecords(bytes, magic);
        checkSalvageResult(salvaged, bytes);
        const inFile = recordsAnywhere(bytes);
        for (const entry of [...read.entries, ...salvaged.entries]) expect(inFile.has(normalized(entry)), `entry ${JSON.stringify(entry)} is in the file`).to.equal(true);
        const salvagedSet = new Set(salvaged.entries.map(normalized));
        for (const chunk of chunks) if (chunk.entry !== null) expect(salvagedSet.has(normalized(chunk.entry)), `record ${JSON.stringify(chunk.entry)} is salvaged`).to.equal(true);
      }),
      fuzz.fuzzParameters(300, 101),
    );
  });

  it('reads a damaged valid file as a prefix of its records, never a wrong one, and salvages every intact record', () => {
    fc.assert(
      fc.property(validFileArb, damageArb, (file, spec) => {
        const damaged = damage(file.bytes, spec);
        const bytes = damaged.bytes;
        const read = readRecords(bytes, file.magic);
        checkReadResult(read, bytes, file.magic);
        expect(read.entries, 'read: a prefix of the original records').to.deep.equal(file.entries.slice(0, read.entries.length));
        // Every record that ends before the first damaged byte is read.
        const undamaged = commonPrefix(bytes, file.bytes);
        const before = file.ends.filter((end) => end <= undamaged).length;
        expect(read.entries.length, `records before the first damaged byte (${undamaged})`).to.be.at.least(before);

        const salvaged = salvageRecords(bytes, file.magic);
        checkSalvageResult(salvaged, bytes);
        const originals = new Set(file.entries.map(normalized));
        for (const entry of salvaged.entries) expect(originals.has(normalized(entry)), `salvaged ${JSON.stringify(entry)} is an original record`).to.equal(true);
        const salvagedSet = new Set(salvaged.entries.map(normalized));
        // Salvage skips a damaged magic as damage: records right after it are still found.
        for (const entry of intactRecords(file, damaged)) expect(salvagedSet.has(normalized(entry)), `intact record ${JSON.stringify(entry)} is salvaged (${damaged.kind})`).to.equal(true);
      }),
      fuzz.fuzzParameters(500, 102),
    );
  });

  it('tells a torn tail from corruption as documented: a cut, zeros at the end, one flipped bit', () => {
    fc.assert(
      fc.property(validFileArb, fc.noBias(fc.nat()), fc.integer({ min: 1, max: 5000 }), (file, at, zeros) => {
        const { bytes, magic, entries, starts, ends } = file;
        // A cut after the magic: ok on a record boundary, torn inside a record, with the records before the cut.
        const cut = magic.length + (at % (bytes.length - magic.length + 1));
        const whole = ends.filter((end) => end <= cut).length;
        const boundary = whole === 0 ? magic.length : ends[whole - 1]!;
        const truncated = readRecords(bytes.subarray(0, cut), magic);
        if (cut === boundary) expect(truncated).to.deep.equal({ status: 'ok', entries: entries.slice(0, whole) });
        else expect(truncated).to.deep.equal({ status: 'torn', entries: entries.slice(0, whole), validBytes: boundary, tornBytes: cut - boundary });
        // Zeros after the last record (a crash while appending).
        expect(readRecords(Buffer.concat([bytes, Buffer.alloc(zeros)]), magic)).to.deep.equal({ status: 'torn', entries, validBytes: bytes.length, tornBytes: zeros });
        // One flipped bit.
        const bit = at % (bytes.length * 8);
        const flipped = Buffer.from(bytes);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        const result = readRecords(flipped, magic);
        const byte = bit >> 3;
        if (byte < magic.length) {
          expect(result).to.deep.include({ status: 'corrupt', offset: 0, entries: [] });
          return;
        }
        const record = ends.findIndex((end) => byte < end);
        const inLastLength = record === entries.length - 1 && byte < starts[record]! + 4;
        if (result.status === 'torn' && inLastLength) expect(result).to.deep.include({ entries: entries.slice(0, -1), validBytes: starts[record] });
        else expect(result, `bit ${bit} in record ${record}`).to.deep.include({ status: 'corrupt', offset: starts[record], entries: entries.slice(0, record) });
      }),
      fuzz.fuzzParameters(400, 103),
    );
  });
});
