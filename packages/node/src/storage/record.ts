/**
 * Record framing of the log and snapshot files. docs/storage.md describes the
 * bytes; change both together.
 *
 *   file    = magic (8 bytes) record*
 *   record  = length (u32 LE) crc32(payload) (u32 LE) payload (length bytes)
 *   payload = UTF-8 JSON array [key, value, timestamp, origin, seq]
 *
 * `seq` is the node's local sequence number of the change (0 when unknown);
 * readers also accept the 4-field form.
 *
 * Reading tells a torn tail (the file ends inside its last record, or in
 * zeros: a crash during an append) from corruption (a complete record whose
 * checksum does not match, or a length no record can have).
 */
import { crc32 } from 'node:zlib';
import { type Entry, MAX_MESSAGE_BYTES } from '@bby/core';

/** First 8 bytes of a log file. */
export const LOG_MAGIC = Buffer.from('BBYLOG01', 'ascii');
/** First 8 bytes of a snapshot file. */
export const SNAPSHOT_MAGIC = Buffer.from('BBYSNP01', 'ascii');
/** Bytes of a record header: length and checksum. */
export const RECORD_HEADER_BYTES = 8;
/** No valid record payload is longer: an entry always fits in one wire message. */
export const MAX_RECORD_BYTES = MAX_MESSAGE_BYTES;

/** An entry as stored: with the node's local sequence number of the change, when it has one. */
export type StoredEntry = Entry & { readonly seq?: number };

/** Encodes one entry as a framed record. */
export function encodeRecord(entry: StoredEntry): Buffer {
  const payload = Buffer.from(JSON.stringify([entry.key, entry.value, entry.timestamp, entry.origin, entry.seq ?? 0]), 'utf8');
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  record.writeUInt32LE(payload.length, 0);
  record.writeUInt32LE(crc32(payload), 4);
  payload.copy(record, RECORD_HEADER_BYTES);
  return record;
}

/** Outcome of reading a whole file. */
export type ReadResult =
  | { readonly status: 'ok'; readonly entries: StoredEntry[] }
  /** The file ends inside its last record: `validBytes` are intact, `tornBytes` follow. */
  | { readonly status: 'torn'; readonly entries: StoredEntry[]; readonly validBytes: number; readonly tornBytes: number }
  /** A record is damaged at `offset`; `entries` are the intact records before it. */
  | { readonly status: 'corrupt'; readonly entries: StoredEntry[]; readonly offset: number; readonly reason: string };

type Inspection =
  | { readonly kind: 'record'; readonly entry: StoredEntry; readonly size: number }
  | { readonly kind: 'torn' }
  | { readonly kind: 'corrupt'; readonly reason: string };

/** What the bytes at `offset` are: a whole valid record, a torn tail, or damage. */
function inspectAt(bytes: Buffer, offset: number): Inspection {
  const remaining = bytes.length - offset;
  if (isZero(bytes, offset) || remaining < RECORD_HEADER_BYTES) return { kind: 'torn' };
  const length = bytes.readUInt32LE(offset);
  if (length === 0 || length > MAX_RECORD_BYTES) return { kind: 'corrupt', reason: `record length ${length} is impossible` };
  if (remaining < RECORD_HEADER_BYTES + length) return { kind: 'torn' };
  const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) return { kind: 'corrupt', reason: 'checksum mismatch' };
  const entry = decodePayload(payload);
  if (entry === null) return { kind: 'corrupt', reason: 'the record is not a valid entry' };
  return { kind: 'record', entry, size: RECORD_HEADER_BYTES + length };
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Reads every record after the magic; never throws on bad bytes. */
export function readRecords(data: Uint8Array, magic: Buffer): ReadResult {
  const bytes = asBuffer(data);
  const entries: StoredEntry[] = [];
  if (bytes.length < magic.length) {
    // A crash while creating the file can leave a prefix of the magic, or nothing.
    if (bytes.length === 0) return { status: 'ok', entries };
    if (magic.subarray(0, bytes.length).equals(bytes) || isZero(bytes, 0)) return { status: 'torn', entries, validBytes: 0, tornBytes: bytes.length };
    return { status: 'corrupt', entries, offset: 0, reason: `the file does not start with ${magic.toString('ascii')}` };
  }
  if (!bytes.subarray(0, magic.length).equals(magic)) {
    return { status: 'corrupt', entries, offset: 0, reason: `the file does not start with ${magic.toString('ascii')}` };
  }
  let offset = magic.length;
  while (offset < bytes.length) {
    const found = inspectAt(bytes, offset);
    if (found.kind === 'torn') {
      // A damaged length can also run past the end: that is no torn tail if intact records follow.
      if (intactRecordFollows(bytes, offset)) return { status: 'corrupt', entries, offset, reason: 'the record runs past the end of the file, but intact records follow' };
      return { status: 'torn', entries, validBytes: offset, tornBytes: bytes.length - offset };
    }
    if (found.kind === 'corrupt') return { status: 'corrupt', entries, offset, reason: found.reason };
    entries.push(found.entry);
    offset += found.size;
  }
  return { status: 'ok', entries };
}

/** What `salvageRecords` found: every intact record, and the damaged byte ranges it skipped. */
export interface SalvageResult {
  readonly entries: StoredEntry[];
  readonly damaged: { readonly offset: number; readonly bytes: number }[];
}

/**
 * Reads every intact record, skipping damaged ranges: after a bad record it
 * looks for the next offset where a whole record with a matching checksum
 * starts. Used by repair, so that nothing intact is lost.
 */
export function salvageRecords(data: Uint8Array, magic: Buffer): SalvageResult {
  const bytes = asBuffer(data);
  const entries: StoredEntry[] = [];
  const damaged: { offset: number; bytes: number }[] = [];
  const hasMagic = bytes.length >= magic.length && bytes.subarray(0, magic.length).equals(magic);
  let offset = hasMagic ? magic.length : 0;
  let damageStart = -1;
  while (offset < bytes.length) {
    // Not inspectAt: its zero-tail check would make a long run of zeros quadratic.
    const found = recordAt(bytes, offset);
    if (found === null) {
      if (damageStart < 0) damageStart = offset;
      offset++;
      continue;
    }
    if (damageStart >= 0) damaged.push({ offset: damageStart, bytes: offset - damageStart });
    damageStart = -1;
    entries.push(found.entry);
    offset += found.size;
  }
  if (damageStart >= 0) damaged.push({ offset: damageStart, bytes: bytes.length - damageStart });
  return { entries, damaged };
}

/** The whole valid record at `offset`, or null; in time independent of what follows it (no zero scan). */
function recordAt(bytes: Buffer, offset: number): { entry: StoredEntry; size: number } | null {
  if (bytes.length - offset < RECORD_HEADER_BYTES) return null;
  const length = bytes.readUInt32LE(offset);
  if (length === 0 || length > MAX_RECORD_BYTES || offset + RECORD_HEADER_BYTES + length > bytes.length) return null;
  const payload = bytes.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) return null;
  const entry = decodePayload(payload);
  return entry === null ? null : { entry, size: RECORD_HEADER_BYTES + length };
}

/** True when a whole valid record starts after `from`. */
function intactRecordFollows(bytes: Buffer, from: number): boolean {
  for (let offset = from + 1; offset + RECORD_HEADER_BYTES < bytes.length; offset++) if (recordAt(bytes, offset)) return true;
  return false;
}

function isZero(bytes: Buffer, from: number): boolean {
  for (let i = from; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function decodePayload(payload: Buffer): StoredEntry | null {
  try {
    const fields: unknown = JSON.parse(payload.toString('utf8'));
    if (!Array.isArray(fields) || (fields.length !== 4 && fields.length !== 5)) return null;
    const [key, value, timestamp, origin, seq = 0] = fields as unknown[];
    if (typeof key !== 'string' || typeof value !== 'string' || typeof origin !== 'string' || typeof timestamp !== 'number') return null;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null;
    return seq > 0 ? { key, value, timestamp, origin, seq } : { key, value, timestamp, origin };
  } catch {
    return null;
  }
}
