// diffuse upscale IMG -o OUT: A1111's extras-tab "Upscale" with an ESRGAN-family ONNX model. The picture
// is read as A1111 reads it there (image.convert("RGB"): alpha dropped, stored colours kept), upscaled by
// src/pipeline/upscale, and written as a PNG that keeps the input's text chunks (its A1111 parameters) and
// adds the postprocessing infotext A1111 writes (`postprocessing` and `extras` chunks).

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { encodePng } from '../image/encode-png.js';
import { readImageFile } from '../image/load-image.js';
import { readPngText } from '../image/png-text.js';
import { writeFileAtomic } from '../image/write.js';
import { DEVICES, type Device } from '../onnx/session.js';
import { a1111UpscaleTarget, checkTiling, loadUpscaler, upscaleRaster, type ChannelOrder } from '../pipeline/upscale/index.js';
import { parseChoice, parseInteger, parseNumber } from '../settings/options.js';
import { UPSCALE_OPTIONS } from './upscale-options.js';
import { DEFAULT_UPSCALER, chooseUpscaler } from './upscaler-choice.js';

/** The largest picture written: 16384x16384 (a 805 MB raster); an 8192x8192 input at 4x would be 3.2 GB. */
const MAX_OUTPUT_SIDE = 16384;
const PNG_SIGNATURE = '\x89PNG\r\n\x1a\n';
/** The chunks A1111's extras tab writes its infotext to (a re-upscaled picture gets new ones). */
const POSTPROCESS_KEYWORDS = ['postprocessing', 'extras'];

interface UpscaleFlags {
  output: string;
  model?: string;
  scale?: string;
  tile: string;
  tileOverlap: string;
  channelOrder: string;
  device: string;
  threads?: string;
  overwrite?: boolean;
  offline?: boolean;
  yes?: boolean;
  quiet?: boolean;
}

/** A1111's postprocessing infotext for one upscale: "Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+". */
export function postprocessInfotext(scale: number, upscaler: string): string {
  const quoted = /[,:"\n]/.test(upscaler) ? JSON.stringify(upscaler) : upscaler;
  return `Postprocess upscale by: ${scale}, Postprocess upscaler: ${quoted}`;
}

function progress(quiet: boolean): ((done: number, total: number) => void) | undefined {
  if (quiet) return undefined;
  const tty = process.stderr.isTTY;
  return (done, total) => {
    if (tty) process.stderr.write(`\rupscaling: tile ${done}/${total}${done === total ? '\n' : ''}`);
    else if (done === total) process.stderr.write(`upscaling: ${total} tile${total === 1 ? '' : 's'} done\n`);
  };
}

async function upscale(imagePath: string, flags: UpscaleFlags): Promise<void> {
  if (!/\.png$/i.test(flags.output)) throw new UsageError(`-o/--output must name a .png file (got '${flags.output}')`);
  if (existsSync(flags.output) && !flags.overwrite) throw new UsageError(`${flags.output} exists; pass --overwrite to replace it`);
  const tile = parseInteger(0, 8192)(flags.tile, '--tile');
  const overlap = parseInteger(0, 4096)(flags.tileOverlap, '--tile-overlap');
  checkTiling(tile, overlap);
  const channelOrder = parseChoice(['rgb', 'bgr'] as const)(flags.channelOrder, '--channel-order') as ChannelOrder;
  const device = parseChoice(DEVICES)(flags.device, '--device') as Device;
  const threads = flags.threads === undefined ? undefined : parseInteger(1, 1024)(flags.threads, '--threads');
  const wanted = flags.scale === undefined ? undefined : parseNumber(0.05, 8)(flags.scale, '--scale');
  const quiet = Boolean(flags.quiet);

  const { bytes, rgb } = await readImageFile(imagePath, 'image', { alpha: 'drop' });
  const chosen = await chooseUpscaler(flags.model ?? DEFAULT_UPSCALER, '--model', { offline: Boolean(flags.offline), yes: Boolean(flags.yes), quiet });
  const upscaler = await loadUpscaler(chosen.path, { device, ...(threads ? { threads } : {}) });
  try {
    const scale = wanted ?? upscaler.scale;
    const target = a1111UpscaleTarget(rgb.width, rgb.height, scale);
    if (target.width > MAX_OUTPUT_SIDE || target.height > MAX_OUTPUT_SIDE) {
      throw new UsageError(`${imagePath} at --scale ${scale} would be ${target.width}x${target.height}; at most ${MAX_OUTPUT_SIDE}x${MAX_OUTPUT_SIDE} is written: use a smaller --scale`);
    }
    const onTile = progress(quiet);
    const out = await upscaleRaster(upscaler, rgb, { tile, overlap, channelOrder, ...target, ...(onTile ? { onTile } : {}) });
    const kept = bytes.toString('latin1', 0, 8) === PNG_SIGNATURE ? readPngText(bytes).filter((c) => !POSTPROCESS_KEYWORDS.includes(c.keyword)) : [];
    const info = postprocessInfotext(scale, chosen.name);
    const text = [...kept.map(({ keyword, text }) => ({ keyword, text })), ...POSTPROCESS_KEYWORDS.map((keyword) => ({ keyword, text: info }))];
    const written = await writeFileAtomic(flags.output, await encodePng(out, text), { ifExists: flags.overwrite ? 'overwrite' : 'error' });
    process.stdout.write(`${written}: ${rgb.width}x${rgb.height} -> ${out.width}x${out.height} (${chosen.name}, x${upscaler.scale} model${scale === upscaler.scale ? '' : `, resized for x${scale}`})\n`);
  } finally {
    await upscaler.release();
  }
}

export function defineUpscale(cmd: Command): Command {
  cmd.argument('<image>', 'PNG, JPEG or WebP file');
  for (const o of UPSCALE_OPTIONS) {
    if (o.flags.startsWith('-o,')) cmd.requiredOption(o.flags, o.description);
    else if (o.default !== undefined && o.flags !== '-m, --model <ref>') cmd.option(o.flags, o.description, o.default);
    else cmd.option(o.flags, o.description);
  }
  return cmd.action(upscale);
}
