// Watermark payloads as the invisible-watermark library forms them: set_watermark('bits', [...]) takes each
// value mod 2, 'bytes' unpacks every byte most significant bit first (np.unpackbits), and reading back packs
// them the same way.

export type Bit = 0 | 1;

/**
 * The fixed 48-bit message of Stability's SDXL scripts and diffusers' StableDiffusionXLWatermarker:
 * WATERMARK_BITS = bin(0b101100111110110010010000011110111011000110011110)[2:], i.e. 0xB3EC907BB19E.
 */
export const SDXL_WATERMARK_BITS: readonly Bit[] = Object.freeze(bitsFromString('101100111110110010010000011110111011000110011110'));

/** A string of 0s and 1s. Throws RangeError on anything else. */
export function bitsFromString(s: string): Bit[] {
  if (!/^[01]+$/.test(s)) throw new RangeError(`a bit string is 0s and 1s (got ${JSON.stringify(s)})`);
  return [...s].map((c) => (c === '1' ? 1 : 0));
}

export const bitString = (bits: readonly Bit[]): string => bits.join('');

/** set_watermark('bytes', text.encode('utf-8')), as CompVis' scripts mark "StableDiffusionV1". */
export function bitsFromText(text: string): Bit[] {
  const bits: Bit[] = [];
  for (const byte of new TextEncoder().encode(text)) {
    for (let k = 7; k >= 0; k--) bits.push(((byte >> k) & 1) as Bit);
  }
  return bits;
}

/** np.packbits: whole bytes only (null when the length is not a multiple of 8). */
export function bytesFromBits(bits: readonly Bit[]): Uint8Array | null {
  if (bits.length === 0 || bits.length % 8 !== 0) return null;
  const bytes = new Uint8Array(bits.length / 8);
  bits.forEach((b, i) => (bytes[i >> 3]! |= b << (7 - (i & 7))));
  return bytes;
}

/** The bits read as UTF-8 text, or null when they are not whole bytes of valid UTF-8. */
export function textFromBits(bits: readonly Bit[]): string | null {
  const bytes = bytesFromBits(bits);
  if (!bytes) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
