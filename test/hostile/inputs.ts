import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { encodePngTextChunk, crc32 } from '../../src/image/png-text.js';
import { encodePng } from '../../src/image/encode-png.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { TINY_SD } from '../helpers/cli.js';
import { checkpointBytes, readRecipe } from '../helpers/synthetic-checkpoint.js';

/** A PNG chunk, framed. */
export function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(data.length + 12);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

/** A PNG whose header claims width x height: 420 bytes that would decode to gigabytes. */
export function bombPng(width: number, height: number, rows = 2): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const row = Buffer.alloc(1 + width * 3);
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(Array<Buffer>(rows).fill(row)))), chunk('IEND', Buffer.alloc(0))]);
}

/** Every kind of file an input can be handed, made once in `dir`. */
export interface HostileFiles {
  missing: string;
  fifo: string;
  dir: string;
  empty: string;
  text: string;
  svg: string;
  gif: string;
  bomb: string;
  truncated: string;
  valid: string;
  validMask: string;
  escapes: string;
  manyChunks: string;
  hugeChunk: string;
  badCrc: string;
  noIend: string;
  plain: string;
  keywords: string;
  ztxtBomb: string;
  deviceZero: string;
}

export async function makeHostileFiles(dir: string): Promise<HostileFiles> {
  mkdirSync(dir, { recursive: true });
  const at = (name: string) => join(dir, name);
  const pixels = (w: number, h: number) => ({ width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 251) });
  const params = 'a cat\nSteps: 3, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 32x32';
  const valid = await encodePng(pixels(32, 32), [{ keyword: 'parameters', text: params }]);
  const files: HostileFiles = {
    missing: at('missing.png'),
    fifo: at('fifo.png'),
    dir: at('folder.png'),
    empty: at('empty.png'),
    text: at('text.png'),
    svg: at('drawing.png'),
    gif: at('anim.png'),
    bomb: at('bomb.png'),
    truncated: at('truncated.png'),
    valid: at('valid.png'),
    validMask: at('mask.png'),
    escapes: at('escapes.png'),
    manyChunks: at('many-chunks.png'),
    hugeChunk: at('huge-chunk.png'),
    badCrc: at('bad-crc.png'),
    noIend: at('no-iend.png'),
    plain: at('plain.png'),
    keywords: at('keywords.png'),
    ztxtBomb: at('ztxt-bomb.png'),
    deviceZero: '/dev/zero',
  };
  execFileSync('mkfifo', [files.fifo]);
  mkdirSync(files.dir);
  writeFileSync(files.empty, '');
  writeFileSync(files.text, 'hello, not a picture\n');
  writeFileSync(files.svg, '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><image href="file:///etc/passwd"/></svg>');
  writeFileSync(files.gif, Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(20)]));
  writeFileSync(files.bomb, bombPng(12000, 12000));
  writeFileSync(files.truncated, valid.subarray(0, valid.length - 30));
  writeFileSync(files.valid, valid);
  writeFileSync(files.validMask, await encodePng({ width: 32, height: 32, channels: 3, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (Math.floor(i / 3) % 32 < 16 ? 255 : 0)) }));
  const plain = await encodePng(pixels(8, 8));
  writeFileSync(files.plain, plain);
  const body = plain.subarray(8, plain.length - 12);
  const iend = chunk('IEND', Buffer.alloc(0));
  const withChunks = (chunks: Buffer[]) => Buffer.concat([SIGNATURE, body.subarray(0, 25), ...chunks, body.subarray(25), iend]);
  writeFileSync(files.escapes, withChunks([encodePngTextChunk({ keyword: 'parameters', text: 'a \u001b]0;pwned\u0007 cat \u001b[2J\u009b31m\u202e\nSteps: 3, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 8x8' })]));
  writeFileSync(files.manyChunks, withChunks(Array.from({ length: 20_000 }, (_, i) => encodePngTextChunk({ keyword: `k${i}`, text: 'x' }))));
  writeFileSync(files.hugeChunk, withChunks([encodePngTextChunk({ keyword: 'parameters', text: 'a'.repeat(250_000) })]));
  writeFileSync(files.keywords, withChunks(Array.from({ length: 40 }, (_, i) => encodePngTextChunk({ keyword: `\u00e9key ${i}${'z'.repeat(60)}`, text: 'x' }))));
  const bad = Buffer.from(valid);
  bad[bad.indexOf('parameters') + 12] ^= 0xff;
  writeFileSync(files.badCrc, bad);
  writeFileSync(files.noIend, valid.subarray(0, valid.length - 12));
  // 16 MB of zeros in a few KB: more than one chunk may inflate to.
  const bomb = Buffer.concat([Buffer.from('parameters\0\0'), deflateSync(Buffer.alloc(20 * 2 ** 20))]);
  writeFileSync(files.ztxtBomb, withChunks([chunk('zTXt', bomb)]));
  return files;
}

/** A copy of tiny-sd made of links, with `edit` applied: one broken part per case. */
export function brokenModel(dir: string, edit: (dir: string) => void): string {
  mkdirSync(dir, { recursive: true });
  for (const part of ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder', 'tokenizer', 'scheduler']) {
    mkdirSync(join(dir, part));
    for (const file of ['model.onnx', 'config.json', 'scheduler_config.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const source = join(TINY_SD, part, file);
      try {
        if (file.endsWith('.onnx')) symlinkSync(source, join(dir, part, file));
        else copyFileSync(source, join(dir, part, file));
      } catch {
        // not every part has every file
      }
    }
  }
  copyFileSync(join(TINY_SD, 'model_index.json'), join(dir, 'model_index.json'));
  edit(dir);
  return dir;
}

/** Sets keys of a component's JSON file in a model folder. */
export function patchJson(dir: string, file: string, patch: Record<string, unknown>): void {
  const path = join(dir, file);
  writeFileSync(path, JSON.stringify({ ...(JSON.parse(readFileSync(path, 'utf8')) as object), ...patch }));
}

export const EMBEDDINGS = join(FIXTURES, 'embeddings');
export const HOSTILE_CHECKPOINTS = join(FIXTURES, 'graphs-hostile');

/**
 * A Hub BLIP captioning folder (the synthetic-recipe tiny BLIP's model.safetensors, the img2txt fixture's configs)
 * with `edit` applied to the weights' bytes and to config.json (a string is written as it is).
 */
export function brokenBlip(dir: string, edit: { weights?: (bytes: Buffer) => Buffer; config?: (config: Record<string, unknown>) => object | string }): string {
  const source = join(FIXTURES, 'tiny-interrogate', 'blip');
  mkdirSync(dir, { recursive: true });
  for (const file of ['preprocessor_config.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json']) copyFileSync(join(source, file), join(dir, file));
  const bytes = Buffer.from(checkpointBytes(readRecipe('blip')));
  writeFileSync(join(dir, 'model.safetensors'), edit.weights ? edit.weights(bytes) : bytes);
  const config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
  const edited = edit.config ? edit.config(config) : config;
  writeFileSync(join(dir, 'config.json'), typeof edited === 'string' ? edited : JSON.stringify(edited));
  return dir;
}

/** A safetensors file's bytes with its header's tensor entries edited (data untouched): headers that lie about their tensors. */
export function editedHeader(bytes: Buffer, edit: (header: Record<string, { shape?: number[] }>) => void): Buffer {
  const size = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + size).toString('utf8')) as Record<string, { shape?: number[] }>;
  edit(header);
  const json = Buffer.from(JSON.stringify(header).padEnd(Math.ceil((size + 32) / 8) * 8));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, bytes.subarray(8 + size)]);
}
