import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import { type Entry } from '@bby/core';
import { encodeRecord, LOG_MAGIC, readRecords, RECORD_HEADER_BYTES, salvageRecords, SNAPSHOT_MAGIC } from '../src/storage/record.js';

const entry = (key: string, value: string, timestamp = 1_700_000_000_000, origin = 'node-a'): Entry => ({ key, value, timestamp, origin });

/** A log file holding `entries`, and the offset where each record starts. */
function logOf(entries: readonly Entry[], magic = LOG_MAGIC): { bytes: Buffer; starts: number[] } {
  const starts: number[] = [];
  let offset = magic.length;
  const records = entries.map((e) => {
    const record = encodeRecord(e);
    starts.push(offset);
    offset += record.length;
    return record;
  });
  return { bytes: Buffer.concat([magic, ...records]), starts };
}

const sample = [entry('alpha', 'one', 1), entry('beta', 'two', 2, 'node-b'), entry('gamma', 'three', 3), entry('delta', '', 4, 'node-c')];

describe('storage records', () => {
  describe('round trip', () => {
    it('reads back unicode, empty, escaped and 256 KiB values exactly', () => {
      const entries = [
        entry('k', 'v'),
        entry('', ''),
        entry('ключ 🔑', 'значение ✓ 日本語 🎉'),
        entry('controls', '\u0000\u0001\n\t"\\ \u2028\u2029'),
        entry('lone surrogate', '\ud800 and \udfff'),
        entry('big', 'x'.repeat(256 * 1024)),
        entry('big unicode', '€'.repeat(100 * 1024)),
        entry('clock', 'v', Number.MAX_SAFE_INTEGER, 'o'.repeat(64)),
      ];
      const result = readRecords(logOf(entries).bytes, LOG_MAGIC);
      expect(result.status).to.equal('ok');
      expect(result.entries).to.deep.equal(entries);
    });

    it('an empty file and a file with only the magic hold no entries', () => {
      expect(readRecords(new Uint8Array(), LOG_MAGIC)).to.deep.equal({ status: 'ok', entries: [] });
      expect(readRecords(LOG_MAGIC, LOG_MAGIC)).to.deep.equal({ status: 'ok', entries: [] });
    });

    it('frames a record as length, crc32 and the JSON payload, with the sequence number last', () => {
      const record = encodeRecord({ ...entry('k', 'v', 5, 'o'), seq: 42 });
      const payload = Buffer.from('["k","v",5,"o",42]', 'utf8');
      expect(record.readUInt32LE(0)).to.equal(payload.length);
      expect(record.readUInt32LE(4)).to.equal(crc32(payload));
      expect(record.subarray(RECORD_HEADER_BYTES).equals(payload)).to.equal(true);
      expect(record.length).to.equal(RECORD_HEADER_BYTES + payload.length);
      expect(readRecords(Buffer.concat([LOG_MAGIC, record]), LOG_MAGIC).entries).to.deep.equal([{ ...entry('k', 'v', 5, 'o'), seq: 42 }]);
    });

    it('reads the 4-field payload of a record without a sequence number', () => {
      const payload = Buffer.from('["k","v",5,"o"]', 'utf8');
      const header = Buffer.alloc(RECORD_HEADER_BYTES);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(crc32(payload), 4);
      expect(readRecords(Buffer.concat([LOG_MAGIC, header, payload]), LOG_MAGIC).entries).to.deep.equal([entry('k', 'v', 5, 'o')]);
    });

    it('a log is not a snapshot: the wrong magic is corruption at offset 0', () => {
      const result = readRecords(logOf(sample).bytes, SNAPSHOT_MAGIC);
      expect(result).to.include({ status: 'corrupt', offset: 0 });
      expect(result.entries).to.deep.equal([]);
    });
  });

  describe('torn tails', () => {
    it('a file cut at every byte offset reads the whole records before the cut, as ok or torn', () => {
      const { bytes, starts } = logOf(sample);
      const ends = [...starts.slice(1), bytes.length];
      for (let cut = 0; cut <= bytes.length; cut++) {
        const result = readRecords(bytes.subarray(0, cut), LOG_MAGIC);
        const whole = ends.filter((end) => end <= cut).length;
        const validBytes = cut < LOG_MAGIC.length ? 0 : whole === 0 ? LOG_MAGIC.length : ends[whole - 1]!;
        expect(result.entries, `cut at ${cut}`).to.deep.equal(sample.slice(0, whole));
        if (cut === validBytes || cut === 0) {
          expect(result.status, `cut at ${cut}`).to.equal('ok');
        } else {
          expect(result, `cut at ${cut}`).to.deep.equal({ status: 'torn', entries: sample.slice(0, whole), validBytes, tornBytes: cut - validBytes });
        }
      }
    });

    it('a cut inside the last record, at every offset, is torn at the start of that record', () => {
      const { bytes, starts } = logOf(sample);
      const last = starts.at(-1)!;
      for (let cut = last + 1; cut < bytes.length; cut++) {
        const result = readRecords(bytes.subarray(0, cut), LOG_MAGIC);
        expect(result, `cut at ${cut}`).to.deep.equal({ status: 'torn', entries: sample.slice(0, -1), validBytes: last, tornBytes: cut - last });
      }
    });

    it('a cut inside a 256 KiB record is torn too', () => {
      const big = [...sample, entry('big', 'é'.repeat(128 * 1024))];
      const { bytes, starts } = logOf(big);
      for (const cut of [starts.at(-1)! + 4, starts.at(-1)! + 9, bytes.length - 1]) {
        expect(readRecords(bytes.subarray(0, cut), LOG_MAGIC), `cut at ${cut}`).to.deep.include({ status: 'torn', entries: sample, validBytes: starts.at(-1) });
      }
    });

    it('zeros after the last whole record are a torn tail, whatever their length', () => {
      const { bytes } = logOf(sample);
      for (const zeros of [1, 7, 8, 9, 100, 4096]) {
        const result = readRecords(Buffer.concat([bytes, Buffer.alloc(zeros)]), LOG_MAGIC);
        expect(result, `${zeros} zeros`).to.deep.equal({ status: 'torn', entries: sample, validBytes: bytes.length, tornBytes: zeros });
      }
    });

    it('a partly written record followed by zeros that end inside it is a torn tail', () => {
      const { bytes, starts } = logOf(sample);
      const last = starts.at(-1)!;
      const partial = Buffer.concat([bytes.subarray(0, last + 12), Buffer.alloc(bytes.length - last - 13)]);
      expect(readRecords(partial, LOG_MAGIC)).to.deep.equal({ status: 'torn', entries: sample.slice(0, -1), validBytes: last, tornBytes: partial.length - last });
    });

    it('a zero-filled or half-written magic is torn with nothing valid', () => {
      expect(readRecords(Buffer.alloc(5), LOG_MAGIC)).to.deep.equal({ status: 'torn', entries: [], validBytes: 0, tornBytes: 5 });
      expect(readRecords(Buffer.alloc(40), LOG_MAGIC)).to.include({ status: 'corrupt', offset: 0 });
      expect(readRecords(LOG_MAGIC.subarray(0, 3), LOG_MAGIC)).to.deep.equal({ status: 'torn', entries: [], validBytes: 0, tornBytes: 3 });
      expect(readRecords(Buffer.from('XYZ'), LOG_MAGIC)).to.include({ status: 'corrupt', offset: 0 });
    });
  });

  describe('damage', () => {
    it('flipping any single bit never yields a wrong entry: corrupt, or torn losing only the final record', () => {
      const { bytes, starts } = logOf(sample.slice(0, 3));
      const originals = sample.slice(0, 3);
      const outcomes = { corrupt: 0, torn: 0 };
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const damaged = Buffer.from(bytes);
        damaged[bit >> 3]! ^= 1 << (bit & 7);
        const result = readRecords(damaged, LOG_MAGIC);
        const where = `bit ${bit} (byte ${bit >> 3})`;
        if (result.status === 'ok') expect.fail(`${where}: read as ok`);
        // Whatever is returned is a prefix of the original entries.
        expect(result.entries, where).to.deep.equal(originals.slice(0, result.entries.length));
        if (result.status === 'torn') {
          expect(result.entries, where).to.deep.equal(originals.slice(0, -1));
          expect(result.validBytes, where).to.equal(starts.at(-1));
          outcomes.torn++;
        } else {
          // The damage is at or before the flipped byte, after the records returned.
          expect(result.offset, where).to.be.at.most(bit >> 3);
          expect(result.offset, where).to.equal(result.entries.length === 0 ? (bit >> 3 < LOG_MAGIC.length ? 0 : starts[0]) : starts[result.entries.length]);
          outcomes.corrupt++;
        }
      }
      // Sanity: both outcomes happen (a flipped length bit of the last record looks like a torn tail).
      expect(outcomes.corrupt).to.be.greaterThan(0);
      expect(outcomes.torn).to.be.greaterThan(0);
    });

    it('a length field damaged to run past the end of the file is corruption when intact records follow', () => {
      const { bytes, starts } = logOf(sample);
      const damaged = Buffer.from(bytes);
      damaged.writeUInt32LE(damaged.readUInt32LE(starts[1]!) + 1000, starts[1]!);
      const result = readRecords(damaged, LOG_MAGIC);
      expect(result).to.include({ status: 'corrupt', offset: starts[1] });
      expect(result.entries).to.deep.equal(sample.slice(0, 1));
    });

    it('an impossible length and a checksum mismatch are reported as such', () => {
      const { bytes, starts } = logOf(sample);
      const zeroLength = Buffer.from(bytes);
      zeroLength.writeUInt32LE(0, starts[2]!);
      expect(readRecords(zeroLength, LOG_MAGIC)).to.deep.include({ status: 'corrupt', offset: starts[2], entries: sample.slice(0, 2), reason: 'record length 0 is impossible' });
      const huge = Buffer.from(bytes);
      huge.writeUInt32LE(0xffffffff, starts[2]!);
      expect(readRecords(huge, LOG_MAGIC)).to.deep.include({ status: 'corrupt', offset: starts[2], reason: `record length ${0xffffffff} is impossible` });
      const payload = Buffer.from(bytes);
      payload[starts[2]! + RECORD_HEADER_BYTES + 3]! ^= 0x20;
      expect(readRecords(payload, LOG_MAGIC)).to.deep.include({ status: 'corrupt', offset: starts[2], reason: 'checksum mismatch' });
    });

    it('a record with a valid checksum but not an entry is corruption', () => {
      const payload = Buffer.from('{"key":"k"}', 'utf8');
      const header = Buffer.alloc(RECORD_HEADER_BYTES);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(crc32(payload), 4);
      const result = readRecords(Buffer.concat([LOG_MAGIC, encodeRecord(sample[0]!), header, payload]), LOG_MAGIC);
      expect(result).to.deep.include({ status: 'corrupt', offset: LOG_MAGIC.length + encodeRecord(sample[0]!).length, entries: sample.slice(0, 1) });
    });
  });

  describe('salvage', () => {
    it('keeps every intact record before and after a damaged payload', () => {
      const { bytes, starts } = logOf(sample);
      const damaged = Buffer.from(bytes);
      damaged[starts[1]! + RECORD_HEADER_BYTES + 2]! ^= 0xff;
      expect(salvageRecords(damaged, LOG_MAGIC)).to.deep.equal({
        entries: [sample[0], sample[2], sample[3]],
        damaged: [{ offset: starts[1], bytes: starts[2]! - starts[1]! }],
      });
    });

    it('keeps every intact record around a damaged length field and a garbage run', () => {
      const { bytes, starts } = logOf(sample);
      const longer = Buffer.from(bytes);
      longer.writeUInt32LE(longer.readUInt32LE(starts[2]!) + 5000, starts[2]!);
      expect(salvageRecords(longer, LOG_MAGIC).entries).to.deep.equal([sample[0], sample[1], sample[3]]);
      const garbage = Buffer.concat([bytes.subarray(0, starts[2]), Buffer.from('garbage!garbage!garbage!'), bytes.subarray(starts[2])]);
      expect(salvageRecords(garbage, LOG_MAGIC)).to.deep.equal({ entries: sample, damaged: [{ offset: starts[2], bytes: 24 }] });
    });

    it('keeps every record when the magic itself is damaged, and reports a torn tail as damage', () => {
      const { bytes } = logOf(sample);
      const badMagic = Buffer.from(bytes);
      badMagic[0] = 0;
      expect(salvageRecords(badMagic, LOG_MAGIC).entries).to.deep.equal(sample);
      const torn = bytes.subarray(0, bytes.length - 3);
      const salvaged = salvageRecords(torn, LOG_MAGIC);
      expect(salvaged.entries).to.deep.equal(sample.slice(0, -1));
      expect(salvaged.damaged).to.have.length(1);
      expect(salvaged.damaged[0]!.offset + salvaged.damaged[0]!.bytes).to.equal(torn.length);
    });

    it('skips a 1 MiB run of zeros in the middle quickly', () => {
      const { bytes, starts } = logOf(sample);
      const holed = Buffer.concat([bytes.subarray(0, starts[2]), Buffer.alloc(1024 * 1024), bytes.subarray(starts[2])]);
      const began = performance.now();
      expect(salvageRecords(holed, LOG_MAGIC)).to.deep.equal({ entries: sample, damaged: [{ offset: starts[2], bytes: 1024 * 1024 }] });
      expect(performance.now() - began).to.be.below(2000);
      expect(readRecords(holed, LOG_MAGIC)).to.deep.include({ status: 'corrupt', offset: starts[2], entries: sample.slice(0, 2) });
    });

    it('every single-bit flip loses at most the record it hit', () => {
      const { bytes, starts } = logOf(sample);
      const ends = [...starts.slice(1), bytes.length];
      for (let bit = LOG_MAGIC.length * 8; bit < bytes.length * 8; bit++) {
        const damaged = Buffer.from(bytes);
        damaged[bit >> 3]! ^= 1 << (bit & 7);
        const hit = ends.findIndex((end) => bit >> 3 < end);
        expect(salvageRecords(damaged, LOG_MAGIC).entries, `bit ${bit}`).to.deep.equal(sample.filter((_, i) => i !== hit));
      }
    });
  });
});
