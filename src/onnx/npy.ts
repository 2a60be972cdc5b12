/**
 * Tensors as numpy's .npy files (format versions 1–3): what Python users load with `np.load` and
 * hand to a diffusers pipeline as `latents=`, and what they hand back. Written as numpy 1.26 writes
 * them (version 1.0, header padded to 64 bytes); read strictly: little-endian float32 or float64,
 * C order, the data exactly as long as the shape says.
 */

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;
/** numpy refuses headers past 10 000 bytes unless told otherwise; nothing honest needs more. */
const MAX_HEADER = 10_000;

export interface NpyTensor {
  shape: number[];
  data: Float32Array;
}

/** Why a buffer is not a tensor this reader takes; the caller names the file. */
export class NpyFormatError extends Error {}

export function encodeNpy(data: Float32Array, shape: readonly number[]): Buffer {
  if (shape.reduce((a, b) => a * b, 1) !== data.length) throw new Error(`shape ${shape.join('x')} does not hold ${data.length} values`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const header = `${dict}${' '.repeat((ALIGN - (unpadded % ALIGN)) % ALIGN)}\n`;
  const out = Buffer.alloc(MAGIC.length + 4 + header.length + data.length * 4);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  const body = out.subarray(10 + header.length);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i]!, i * 4);
  return out;
}

export function decodeNpy(bytes: Buffer): NpyTensor {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new NpyFormatError('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new NpyFormatError(`.npy format version ${major}.${bytes[7]} is not one numpy writes (1, 2 or 3)`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) throw new NpyFormatError('the .npy header is cut short');
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = 8 + lengthBytes;
  if (headerLength > MAX_HEADER) throw new NpyFormatError(`the .npy header is ${headerLength} bytes; numpy writes at most ${MAX_HEADER}`);
  if (bytes.length < start + headerLength) throw new NpyFormatError('the .npy header is cut short');
  const header = bytes.subarray(start, start + headerLength).toString(major === 3 ? 'utf8' : 'latin1');
  const { descr, fortranOrder, shape } = parseHeader(header);
  if (fortranOrder) throw new NpyFormatError('the array is in Fortran order; save it with np.ascontiguousarray first');
  const itemSize = descr === '<f4' ? 4 : descr === '<f8' ? 8 : 0;
  if (!itemSize) throw new NpyFormatError(`dtype '${descr}' is not float32 or float64 (little-endian); save it with .astype(np.float32)`);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(start + headerLength);
  if (body.length !== count * itemSize) {
    throw new NpyFormatError(`shape (${shape.join(', ')}) needs ${count * itemSize} bytes of data; the file has ${body.length}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = itemSize === 4 ? body.readFloatLE(i * 4) : body.readDoubleLE(i * 8);
  return { shape, data };
}

/** The header's Python dict literal, as numpy writes it: exactly the keys descr, fortran_order and shape. */
function parseHeader(text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const body = /^\s*\{(.*)\}\s*$/s.exec(text.replace(/\n$/, ''))?.[1];
  if (body === undefined) throw new NpyFormatError('the .npy header is not a dict');
  const entry = /\s*'(\w+)'\s*:\s*('[^']*'|True|False|\([\d\s,]*\))\s*(,|$)/y;
  const seen = new Map<string, string>();
  let at = 0;
  while (at < body.length && body.slice(at).trim() !== '') {
    entry.lastIndex = at;
    const m = entry.exec(body);
    if (!m) throw new NpyFormatError(`cannot read the .npy header near '${body.slice(at, at + 20)}'`);
    if (seen.has(m[1]!)) throw new NpyFormatError(`the .npy header gives '${m[1]}' twice`);
    seen.set(m[1]!, m[2]!);
    at = entry.lastIndex;
  }
  const keys = [...seen.keys()].sort().join(',');
  if (keys !== 'descr,fortran_order,shape') throw new NpyFormatError(`the .npy header has keys ${keys || 'none'}; numpy writes descr, fortran_order and shape`);
  const descr = seen.get('descr')!;
  const order = seen.get('fortran_order')!;
  const shapeText = seen.get('shape')!;
  if (!descr.startsWith("'") || (order !== 'True' && order !== 'False') || !shapeText.startsWith('(')) throw new NpyFormatError('the .npy header has values of the wrong kind');
  const dims = shapeText.slice(1, -1).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const shape = dims.map((d) => Number(d));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw new NpyFormatError(`the .npy shape ${shapeText} is not whole numbers`);
  return { descr: descr.slice(1, -1), fortranOrder: order === 'True', shape };
}
