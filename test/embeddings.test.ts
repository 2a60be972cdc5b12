import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DiffuseError } from '../src/errors.js';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { EmbeddingError, checkEmbeddingWidth, expandEmbeddingTokens, parseEmbedding, readEmbedding, readEmbeddingsDir } from '../src/text/embeddings.js';
import { readPickle } from '../src/text/pickle-reader.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, readF32, readJson } from './helpers/fixtures.js';

/**
 * Textual-inversion readers against files written by torch.save / safetensors in
 * tools/make_embedding_refs.py. The vectors are copied bit for bit (fp16/bf16 files are
 * compared with torch's own widening of the same values), so every comparison is exact.
 */

const DIR = join(FIXTURES, 'embeddings');

interface Refs {
  marker: string;
  embedding: { trigger: string; prompt: string; trigger_ids: number[]; new_ids: number[]; ids: number[] };
  files: Record<string, { kind: string; expect?: 'float32' | 'float32-row0' | 'float16' | 'bfloat16' }>;
}

const refs = readJson<Refs>(join(DIR, 'refs.json'));
const vectors = readF32(join(DIR, 'embedding_vectors.bin'));
const expected: Record<string, Float32Array> = {
  float32: vectors,
  'float32-row0': vectors.slice(0, 32),
  float16: readF32(join(DIR, 'embedding_vectors_f16.bin')),
  bfloat16: readF32(join(DIR, 'embedding_vectors_bf16.bin')),
};

const goodFiles = Object.entries(refs.files).filter(([, f]) => f.expect !== undefined);
const hostileFiles = Object.entries(refs.files).filter(([, f]) => f.kind.startsWith('hostile'));

test('every format reads to the same vectors, exactly', () => {
  assert.ok(goodFiles.length >= 9, `${goodFiles.length} good files`);
  for (const [file, { expect }] of goodFiles) {
    const emb = readEmbedding(join(DIR, file));
    const want = expected[expect!]!;
    assert.is(emb.width, 32, file);
    assert.is(emb.count, want.length / 32, file);
    assert.equal(Array.from(emb.vectors), Array.from(want), file);
  }
});

test('the trigger is the file name (A1111); diffusers files also report their token', () => {
  const a1111 = readEmbedding(join(DIR, 'tiny-emb.pt'));
  assert.is(a1111.name, 'tiny-emb');
  assert.is(a1111.token, undefined);
  assert.match(a1111.sha256, /^[0-9a-f]{64}$/);
  const diffusers = readEmbedding(join(DIR, 'learned_embeds.bin'));
  assert.is(diffusers.name, 'learned_embeds');
  assert.is(diffusers.token, '<tiny-emb>');
});

test('hostile and broken files are refused with one-line EmbeddingErrors, and nothing runs', () => {
  rmSync(refs.marker, { force: true });
  assert.ok(hostileFiles.length >= 7, `${hostileFiles.length} hostile files`);
  const messages: Record<string, string> = {};
  for (const [file] of hostileFiles) {
    try {
      readEmbedding(join(DIR, file));
      assert.unreachable(`${file} was accepted`);
    } catch (err) {
      assert.instance(err, EmbeddingError, file);
      assert.instance(err, DiffuseError, file);
      assert.is((err as DiffuseError).exitCode, 1);
      const message = (err as Error).message;
      assert.not.match(message, /\n/, `${file}: one line`);
      assert.ok(message.startsWith(`embedding ${file}: `), message);
      messages[file] = message;
    }
  }
  assert.not.ok(existsSync(refs.marker), 'a hostile pickle created its marker file');
  assert.match(messages['evil-os-system.pt']!, /refusing to load: the file references os\.system/);
  assert.match(messages['evil-builtins-eval.bin']!, /refusing to load: the file references builtins\.eval/);
  assert.match(messages['evil-storage-type.pt']!, /refusing to load: the file references posix\.system/);
  assert.match(messages['huge-header.safetensors']!, /header claims 10737418240 bytes/);
  assert.match(messages['truncated.safetensors']!, /truncated/);
  assert.match(messages['bad-offsets.safetensors']!, /spans 64 bytes but shape \[2, 32\] of F32 needs 256/);
  assert.match(messages['truncated.pt']!, /zip: .*truncated/);
});

test('an embedding for another hidden width is refused against the model', () => {
  const emb = readEmbedding(join(DIR, 'wrong-width.safetensors'));
  assert.is(emb.width, 48);
  assert.throws(() => checkEmbeddingWidth(emb, 32), (err: Error) => err instanceof EmbeddingError && /width 48.*hidden width is 32/.test(err.message));
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-emb-'));
  try {
    copyFileSync(join(DIR, 'tiny-emb.safetensors'), join(dir, 'tiny-emb.safetensors'));
    assert.equal(readEmbeddingsDir(dir, 32).map((e) => e.name), ['tiny-emb']);
    copyFileSync(join(DIR, 'wrong-width.safetensors'), join(dir, 'wrong-width.safetensors'));
    assert.throws(() => readEmbeddingsDir(dir, 32), /wrong-width has vectors of width 48/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('layouts the readers do not know are refused, not guessed', () => {
  assert.throws(() => parseEmbedding(new Uint8Array([1, 2, 3]), 'x.ckpt'), /unknown embedding extension '\.ckpt'/);
  // A legacy (non-zip) torch pickle: refused before any opcode is read.
  assert.throws(() => parseEmbedding(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a]), 'old.pt'), /legacy \(pre-1\.6\) torch format/);
  // Two unnamed tensors: ambiguous.
  const header = new TextEncoder().encode('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}');
  const file = new Uint8Array(8 + header.length + 8);
  new DataView(file.buffer).setBigUint64(0, BigInt(header.length), true);
  file.set(header, 8);
  assert.throws(() => parseEmbedding(file, 'two.safetensors'), /expected one tensor or 'emb_params', found 'a', 'b'/);
});

test('pickle reader: classes and callables outside the allow-list are refused at the GLOBAL', () => {
  const hooks = { resolveGlobal: () => undefined };
  // GLOBAL 'subprocess Popen', EMPTY_TUPLE, NEWOBJ, STOP
  const popen = new Uint8Array([0x80, 0x02, ...new TextEncoder().encode('csubprocess\nPopen\n'), 0x29, 0x81, 0x2e]);
  assert.throws(() => readPickle(popen, hooks), /references subprocess\.Popen/);
  // BUILD on a plain dict would be __setstate__/attribute setting in Python: refused.
  assert.throws(() => readPickle(new Uint8Array([0x80, 0x02, 0x7d, 0x7d, 0x62, 0x2e]), hooks), /BUILD at byte 4/);
  // Data-only pickles read back as plain values.
  const data = readPickle(new Uint8Array([0x80, 0x02, 0x7d, 0x58, 1, 0, 0, 0, 0x6b, 0x4b, 7, 0x73, 0x2e]), hooks);
  assert.equal(data, new Map([['k', 7]]));
});

test('the trigger token run becomes the embedding ids (A1111 prompt expansion, as the reference built it)', async () => {
  const tokenizer = await ClipTokenizer.fromDirectory(join(TINY_SD, 'tokenizer'));
  const e = refs.embedding;
  const triggerIds = tokenizer.encode(e.trigger);
  assert.equal(triggerIds, e.trigger_ids);
  const body = expandEmbeddingTokens(tokenizer.encode(e.prompt), [{ triggerIds, ids: e.new_ids }]);
  const ids = [tokenizer.bosTokenId, ...body, tokenizer.eosTokenId];
  while (ids.length < tokenizer.modelMaxLength) ids.push(tokenizer.padTokenId);
  assert.equal(ids, e.ids);
  // Longest trigger first at a position; other tokens untouched.
  assert.equal(
    expandEmbeddingTokens([5, 1, 2, 3, 1, 9], [
      { triggerIds: [1], ids: [100] },
      { triggerIds: [1, 2], ids: [200, 201] },
    ]),
    [5, 200, 201, 3, 100, 9],
  );
});

test.run();
