/**
 * The safetensors header, validated as the reference library (huggingface/safetensors,
 * `SafeTensors::read_metadata`) validates it: an 8-byte little-endian length of at most 100 MB
 * that fits the file, a UTF-8 JSON object, every dtype known, every tensor's byte span equal to
 * its shape times its element size, and the spans tiling the data section from its first byte
 * to the file's last with no gap and no overlap. Everything is checked before any tensor is
 * read, so a hostile header can neither make a reader allocate nor read out of bounds.
 */

/** The reference implementation refuses headers above 100 MB. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

/** Every dtype the format defines, with its element size. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets into the data section (which starts at `dataStart` in the file). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** File offset of the data section: 8 + the header length. */
  dataStart: number;
}

/** What is wrong with a file that is not valid safetensors; readers wrap it in their own typed error. */
export class SafetensorsFormatError extends Error {}

function fail(message: string): never {
  throw new SafetensorsFormatError(message);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The header length from the file's first 8 bytes, checked against the limit and the file's size. */
export function safetensorsHeaderLength(first8: Uint8Array, fileLength: number): number {
  if (fileLength < 8 || first8.length < 8) fail(`file is ${fileLength} bytes, too short for a header`);
  const length = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    fail(`header claims ${length} bytes, more than the format's ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit (not safetensors, or hostile)`);
  }
  if (length > BigInt(fileLength - 8)) {
    fail(`header claims ${length} bytes but the file has ${fileLength - 8} after the length (truncated or not safetensors)`);
  }
  return Number(length);
}

/** Parses and validates the JSON header (`json` = the header's bytes) of a file of `fileLength` bytes. */
export function parseSafetensorsHeader(json: Uint8Array, fileLength: number): SafetensorsHeader {
  const dataStart = 8 + json.length;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch {
    fail('header is not valid UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = readMetadata(value);
      continue;
    }
    entries.set(name, readEntry(name, value));
  }
  checkTiling([...entries.values()], fileLength - dataStart);
  return { entries, metadata, dataStart };
}

function readEntry(name: string, value: unknown): SafetensorsEntry {
  if (typeof value !== 'object' || value === null) fail(`tensor '${name}' has no description`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  const size = typeof dtype === 'string' ? SAFETENSORS_DTYPE_BYTES[dtype] : undefined;
  if (size === undefined) fail(`tensor '${name}' has dtype ${JSON.stringify(dtype)}, which safetensors does not define`);
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) fail(`tensor '${name}' has invalid data_offsets`);
  const [begin, end] = offsets as [number, number];
  const count = (shape as number[]).reduce((n, d) => n * d, 1);
  if (!Number.isSafeInteger(count * size)) fail(`tensor '${name}' has an absurd shape [${shape.join(', ')}]`);
  if (end < begin || end - begin !== count * size) {
    fail(`tensor '${name}' spans ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype as string} needs ${count * size}`);
  }
  return { name, dtype: dtype as string, shape: [...(shape as number[])], begin, end };
}

/** The spans, sorted, must cover [0, dataLength) exactly: the reference refuses gaps, overlaps and trailing bytes. */
function checkTiling(entries: SafetensorsEntry[], dataLength: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let previous: SafetensorsEntry | undefined;
  for (const e of sorted) {
    if (e.end > dataLength) fail(`tensor '${e.name}' ends at byte ${e.end} of a ${dataLength}-byte data section (truncated file?)`);
    if (e.begin < at) fail(`tensors '${previous!.name}' and '${e.name}' overlap`);
    if (e.begin > at) fail(`${e.begin - at} bytes before tensor '${e.name}' belong to no tensor (offsets are not contiguous)`);
    at = e.end;
    previous = e;
  }
  if (at !== dataLength) fail(`the data section has ${dataLength} bytes but the tensors cover ${at} (truncated or padded file)`);
}

function readMetadata(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(`__metadata__ value for '${key}' is not a string`);
    out[key] = v;
  }
  return out;
}
