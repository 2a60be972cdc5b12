// diffuse watermark embed|detect: the invisible watermark of Stability's scripts and diffusers' SDXL pipeline
// (src/image/watermark) for pictures made elsewhere. Exit codes of detect: 0 the payload is there, 1 it is
// not (or the image could not be read), 2 usage.

import { extname } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { withAlpha } from '../image/alpha.js';
import { encodePng } from '../image/encode-png.js';
import { UnsupportedOutputFormatError } from '../image/errors.js';
import { type LoadedImage, readImageFile } from '../image/load-image.js';
import { readPngText } from '../image/png-text.js';
import { writeFileAtomic } from '../image/write.js';
import { detectWatermark } from '../image/watermark/detect.js';
import { embedWatermark, readWatermark } from '../image/watermark/dwt-dct.js';
import type { ChannelOrder } from '../image/watermark/opencv-yuv.js';
import { type Bit, SDXL_WATERMARK_BITS, bitString, bitsFromString, bitsFromText, bytesFromBits, textFromBits } from '../image/watermark/payload.js';
import { parseInteger } from '../settings/options.js';

const PNG_SIGNATURE = '\x89PNG\r\n\x1a\n';

interface Input {
  bytes: Buffer;
  image: LoadedImage;
}

/** The picture as cv2.imread gives it to the library: colours as stored, alpha dropped (kept aside). */
async function readInput(path: string): Promise<Input> {
  const { bytes, ...image } = await readImageFile(path, 'image', { alpha: 'drop' });
  return { bytes, image };
}

function bitsOption(raw: string, flag: string): Bit[] {
  try {
    return bitsFromString(raw);
  } catch {
    throw new UsageError(`${flag} takes a string of 0s and 1s, e.g. 101100111110 (got '${raw}')`);
  }
}

function textOption(raw: string, flag: string): Bit[] {
  if (raw === '') throw new UsageError(`${flag} cannot be empty`);
  return bitsFromText(raw);
}

function orderOption(raw: string, allowed: readonly string[]): string {
  if (!allowed.includes(raw)) throw new UsageError(`--channel-order must be one of ${allowed.join(', ')} (got '${raw}')`);
  return raw;
}

interface Payload {
  bits: readonly Bit[];
  /** How the payload is named in messages. */
  label: string;
}

function payloadOf(text: string | undefined, bits: string | undefined, textFlag: string, bitsFlag: string): Payload {
  if (text !== undefined && bits !== undefined) throw new UsageError(`give ${textFlag} or ${bitsFlag}, not both`);
  if (text !== undefined) return { bits: textOption(text, textFlag), label: JSON.stringify(text) };
  if (bits !== undefined) {
    const parsed = bitsOption(bits, bitsFlag);
    return { bits: parsed, label: `the ${parsed.length}-bit payload` };
  }
  return { bits: SDXL_WATERMARK_BITS, label: 'the SDXL watermark' };
}

const hex = (bits: readonly Bit[]): string | null => {
  const bytes = bytesFromBits(bits);
  return bytes && Buffer.from(bytes).toString('hex').toUpperCase();
};

const formatChance = (p: number): string => (p < 1e-6 ? p.toExponential(1) : String(Number(p.toPrecision(2))));

interface EmbedFlags {
  output: string;
  text?: string;
  bits?: string;
  channelOrder: string;
  overwrite?: boolean;
}

interface DetectFlags {
  expect?: string;
  expectBits?: string;
  bits?: string;
  channelOrder: string;
  json?: boolean;
}

async function embed(path: string, flags: EmbedFlags): Promise<void> {
  if (extname(flags.output).toLowerCase() !== '.png') throw new UnsupportedOutputFormatError(flags.output, 'only .png output is supported here (it keeps the text chunks, and lossy formats erase the mark)');
  const payload = payloadOf(flags.text, flags.bits, '--text', '--bits');
  const channelOrder = orderOption(flags.channelOrder, ['bgr', 'rgb']) as ChannelOrder;
  const { bytes, image } = await readInput(path);
  const marked = embedWatermark(withAlpha(image.rgb, image.alpha), payload.bits, { channelOrder });
  // A1111 parameters, ComfyUI workflows and other text chunks travel with the picture
  const text = bytes.toString('latin1', 0, 8) === PNG_SIGNATURE ? readPngText(bytes).map(({ keyword, text }) => ({ keyword, text })) : [];
  const written = await writeFileAtomic(flags.output, await encodePng(marked, text), { ifExists: flags.overwrite ? 'overwrite' : 'error' });
  process.stdout.write(`${written}: marked with ${payload.label} (${payload.bits.length} bits, channel order ${channelOrder})\n`);
}

async function detect(path: string, flags: DetectFlags): Promise<void> {
  const order = orderOption(flags.channelOrder, ['auto', 'bgr', 'rgb']);
  const length = flags.bits === undefined ? undefined : parseInteger(1, 65536)(flags.bits, '--bits');
  if (length !== undefined && flags.expect === undefined && flags.expectBits === undefined) {
    // no payload to compare with: read the bits, in the library's own channel order unless told otherwise
    const channelOrder: ChannelOrder = order === 'rgb' ? 'rgb' : 'bgr';
    const bits = readWatermark((await readInput(path)).image.rgb, length, { channelOrder });
    const record = { image: path, channelOrder, bits: bitString(bits), hex: hex(bits), text: textFromBits(bits) };
    process.stdout.write(flags.json ? `${JSON.stringify(record, null, 2)}\n` : `${record.bits}${record.text === null ? '' : ` (text: ${JSON.stringify(record.text)})`}\n`);
    return;
  }
  const payload = payloadOf(flags.expect, flags.expectBits, '--expect', '--expect-bits');
  if (length !== undefined && length !== payload.bits.length) {
    throw new UsageError(`--bits ${length} does not match the expected payload's ${payload.bits.length} bits (leave --bits out)`);
  }
  const orders: ChannelOrder[] = order === 'auto' ? ['bgr', 'rgb'] : [order as ChannelOrder];
  const found = detectWatermark((await readInput(path)).image.rgb, payload.bits, orders);
  process.exitCode = found.matches ? 0 : 1;
  if (flags.json) {
    const record = {
      image: path,
      match: found.matches,
      matchedBits: found.matchedBits,
      totalBits: found.totalBits,
      chance: found.chance,
      channelOrder: found.channelOrder,
      expected: bitString(payload.bits),
      decoded: bitString(found.decoded),
      decodedText: textFromBits(found.decoded),
    };
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return;
  }
  const agreement = `${found.matchedBits} of ${found.totalBits} bits agree with ${payload.label}`;
  process.stdout.write(
    found.matches
      ? `watermark found: ${agreement} (channel order ${found.channelOrder}; chance agreement ${formatChance(found.chance)})\n`
      : `no watermark: ${agreement} (an unmarked image agrees this well with probability ${formatChance(found.chance)})\n`,
  );
}

export function defineWatermark(watermark: Command): Command {
  watermark
    .command('embed')
    .description('mark a picture (PNG out; text chunks such as A1111 parameters are kept)')
    .argument('<image>', 'PNG, JPEG or WebP file')
    .requiredOption('-o, --output <path>', '.png file to write')
    .option('--text <text>', 'payload: the UTF-8 bytes of this text (as CompVis marks "StableDiffusionV1")')
    .option('--bits <bits>', 'payload: a string of 0s and 1s (default: the 48-bit SDXL message)')
    .option('--channel-order <order>', "bgr (true colours, as Stability's scripts) or rgb (RGB read as BGR, as diffusers)", 'bgr')
    .option('--overwrite', 'replace an existing output file')
    .action(embed);

  watermark
    .command('detect')
    .description('say whether a picture carries a payload (exit 0 yes, 1 no)')
    .argument('<image>', 'PNG, JPEG or WebP file')
    .option('--expect <text>', 'the payload is this text (default: the 48-bit SDXL message)')
    .option('--expect-bits <bits>', 'the payload is this string of 0s and 1s')
    .option('--bits <n>', 'number of bits; alone, read that many bits and print them (no verdict)')
    .option('--channel-order <order>', 'auto (try both), bgr or rgb', 'auto')
    .option('--json', 'print the result as JSON')
    .action(detect);

  return watermark;
}
