import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DiffuseError } from '../../src/errors.js';
import { encodePng } from '../../src/image/encode-png.js';
import { InvalidPngError } from '../../src/image/errors.js';
import { formatInfotext, parseInfotext } from '../../src/image/infotext.js';
import { encodePngTextChunk, insertPngText, pngTextRecord, readPngText } from '../../src/image/png-text.js';
import { readPickle } from '../../src/text/pickle-reader.js';
import { parsePromptAttention } from '../../src/text/prompt-attention.js';
import { promptLimitProblem } from '../../src/text/prompt-limits.js';
import { promptSchedule } from '../../src/text/prompt-schedule.js';
import { SafetensorsFormatError, parseSafetensorsHeader, safetensorsHeaderLength } from '../../src/text/safetensors-header.js';

/**
 * Property-based fuzzing of the parsers that read what a stranger hands us: the safetensors header,
 * the pickle reader, PNG text chunks, infotext and the prompt grammar. Each answers any input with a
 * result or its own typed error, never a TypeError, RangeError or a stack overflow, and quickly.
 * `FUZZ_RUNS` sets the runs per property (a few hundred in `npm test`; FUZZ_RUNS=100000 for a long run).
 */
const S = suite('fuzzing the parsers');
const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
const options = { numRuns: RUNS, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) };
/** No parser call may take longer than this on inputs of the sizes generated here. */
const SLOW_MS = 500;

/** Runs `parse`: a result or an error of the class `expected`; anything else fails the property. */
function only<T>(expected: abstract new (...args: never[]) => Error, parse: () => T): T | Error {
  const start = performance.now();
  let outcome: T | Error;
  try {
    outcome = parse();
  } catch (err) {
    if (!(err instanceof expected)) throw new Error(`threw ${(err as Error).constructor.name}: ${(err as Error).message}`);
    outcome = err;
  }
  const ms = performance.now() - start;
  if (ms > SLOW_MS) throw new Error(`took ${ms.toFixed(0)} ms`);
  return outcome;
}

// ---- safetensors --------------------------------------------------------------------------------
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'X9', ''];
const entry = fc.record({
  dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.anything()),
  shape: fc.oneof(fc.array(fc.oneof(fc.nat(64), fc.integer(), fc.double(), fc.constant(2 ** 53)), { maxLength: 5 }), fc.anything()),
  data_offsets: fc.oneof(fc.tuple(fc.nat(4096), fc.nat(4096)), fc.array(fc.oneof(fc.integer(), fc.double(), fc.string()), { maxLength: 3 }), fc.anything()),
});
const header = fc.dictionary(fc.oneof(fc.string(), fc.constant('__metadata__')), fc.oneof(entry, fc.anything()), { maxKeys: 6 });

S('safetensors header: any JSON or bytes is a header whose tensors tile the data, or SafetensorsFormatError', () => {
  fc.assert(
    fc.property(fc.oneof(header.map((h) => new TextEncoder().encode(JSON.stringify(h))), fc.uint8Array({ maxLength: 256 })), fc.nat(8192), (json, dataBytes) => {
      const parsed = only(SafetensorsFormatError, () => parseSafetensorsHeader(json, 8 + json.length + dataBytes));
      if (parsed instanceof Error) return;
      for (const e of parsed.entries.values()) {
        assert.ok(e.begin <= e.end && e.end <= dataBytes, `${e.name} [${e.begin}, ${e.end}) inside ${dataBytes} bytes`);
      }
    }),
    options,
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 16 }), fc.nat(), (first8, fileLength) => {
      const length = only(SafetensorsFormatError, () => safetensorsHeaderLength(first8, fileLength));
      if (!(length instanceof Error)) assert.ok(length <= fileLength - 8);
    }),
    options,
  );
});

// ---- pickles --------------------------------------------------------------------------------------
// A protocol-2 pickle of {'a': [1, 2.5, 'x'], 'b': (True, None)}, to mutate.
const PICKLE = Buffer.from('80027d71002858010000006171015d7102284b014740040000000000005801000000787103655801000000627104884e867105752e', 'hex');
const refuseAll = { resolveGlobal: () => undefined };

S('pickle reader: random bytes and mutated pickles give a value or EmbeddingError, a global refused by the allow-list stays refused', () => {
  const mutated = fc.tuple(fc.nat(PICKLE.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(PICKLE.length)).map(([at, byte, cut]) => {
    const b = Buffer.from(PICKLE);
    b[at] = byte;
    return b.subarray(0, Math.max(cut, at + 1));
  });
  const globals = fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })).map(([m, n]) => Buffer.concat([Buffer.from([0x80, 2, 0x63]), Buffer.from(`${m.replace(/\n/g, '')}\n${n.replace(/\n/g, '')}\n`), Buffer.from(')R.', 'latin1')]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated, globals), (bytes) => {
      only(DiffuseError, () => readPickle(bytes, refuseAll));
    }),
    options,
  );
});

// ---- PNG text chunks and infotext ---------------------------------------------------------------
const keyword = fc.stringMatching(/^[\x21-\x7e\xa1-\xff][\x20-\x7e\xa1-\xff]{0,78}$/).filter((k) => !k.endsWith(' ') && !k.includes('  '));

S('PNG text: written chunks read back exactly; flipped, cut or spliced bytes give InvalidPngError', async () => {
  const base = await encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(12) });
  fc.assert(
    fc.property(fc.array(fc.record({ keyword, text: fc.string({ maxLength: 200, unit: 'binary' }) }), { maxLength: 5 }), (entries) => {
      const unique = [...new Map(entries.map((e) => [e.keyword, e])).values()];
      const png = insertPngText(base, unique);
      const read = readPngText(png);
      assert.equal(pngTextRecord(read), Object.fromEntries(unique.map((e) => [e.keyword, e.text])));
    }),
    options,
  );
  const withText = insertPngText(base, [{ keyword: 'parameters', text: 'a cat\nSteps: 3, Seed: 1' }, { keyword: 'comment', text: 'é €' }]);
  fc.assert(
    fc.property(fc.nat(withText.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(withText.length), fc.uint8Array({ maxLength: 64 }), (at, byte, cut, junk) => {
      const b = Buffer.from(withText);
      b[at] = byte;
      only(InvalidPngError, () => readPngText(b.subarray(0, cut)));
      only(InvalidPngError, () => readPngText(Buffer.concat([b.subarray(0, at), junk, b.subarray(at)])));
    }),
    options,
  );
  fc.assert(
    fc.property(fc.array(fc.record({ keyword, text: fc.string({ maxLength: 40 }) }), { maxLength: 3 }), fc.uint8Array({ maxLength: 300 }), (entries, tail) => {
      const chunks = entries.map(encodePngTextChunk);
      only(InvalidPngError, () => readPngText(Buffer.concat([withText.subarray(0, 33), ...chunks, tail])));
    }),
    options,
  );
});

const infotextChars = fc.constantFrom('a', ' ', ',', ':', '"', '\\', '\n', 'Steps', 'Seed', 'Size', 'x', '1', '.', 'Negative prompt:', 'Sampler', 'é', '\u001b', '\r', '\t');
const infotextLike = fc.array(infotextChars, { maxLength: 400 }).map((a) => a.join(''));

S('infotext: any text parses without throwing, in linear time; what formatInfotext writes reads back', () => {
  fc.assert(
    fc.property(fc.oneof(infotextLike, fc.string({ maxLength: 400, unit: 'binary' })), (text) => {
      only(RangeError, () => parseInfotext(text));
    }),
    options,
  );
  // 100x longer inputs of the worst shapes found before (quotes, commas, colons) stay well under the bound.
  fc.assert(
    fc.property(fc.array(fc.constantFrom('"', ',', ':', ' ', 'a', '\\'), { minLength: 1, maxLength: 8 }), (unit) => {
      only(RangeError, () => parseInfotext(`p\n${unit.join('').repeat(5000)}`));
    }),
    { ...options, numRuns: Math.max(10, Math.floor(RUNS / 10)) },
  );
  const prompt = fc.string({ maxLength: 80, unit: fc.constantFrom(...'ab cé€,:()[]"\\'.split('')) }).map((s) => s.trim());
  fc.assert(
    fc.property(prompt, fc.integer({ min: 1, max: 150 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (p, steps, seed) => {
      // Three parameters at least: A1111 reads a last line with fewer as part of the prompt.
      const text = formatInfotext({ prompt: p, negativePrompt: '', steps, sampler: 'Euler', seed, extra: {} });
      const back = parseInfotext(text);
      assert.is(back.prompt, p);
      assert.is(back.steps, steps);
      assert.is(back.seed, seed);
    }),
    options,
  );
});

// ---- the prompt grammar ------------------------------------------------------------------------
const promptChars = fc.constantFrom('(', ')', '[', ']', ':', '|', '\\', 'a', 'b', ' ', '1', '.', '0.5', 'BREAK', ',', '-', 'AND');
const promptLike = fc.array(promptChars, { maxLength: 300 }).map((a) => a.join(''));

S('prompt grammar: any prompt within the limits parses into weights and a schedule, or a PromptError', () => {
  fc.assert(
    fc.property(fc.oneof(promptLike, fc.string({ maxLength: 300 })), fc.integer({ min: 1, max: 150 }), (prompt, steps) => {
      const problem = promptLimitProblem(prompt, 'the prompt');
      if (problem) {
        assert.match(problem, /levels deep|characters/);
        return;
      }
      const parts = only(DiffuseError, () => parsePromptAttention(prompt));
      if (!(parts instanceof Error)) for (const p of parts) assert.ok(Number.isFinite(p.weight) || p.text === 'BREAK', JSON.stringify(p));
      const schedule = only(DiffuseError, () => promptSchedule(prompt, steps));
      if (!(schedule instanceof Error)) {
        assert.ok(schedule.length >= 1);
        assert.is(schedule.at(-1)!.endStep, steps);
      }
    }),
    options,
  );
  // At the nesting limit exactly, nothing overflows.
  for (const [open, close] of [['(', ')'], ['[', ']']]) {
    const deep = `${open.repeat(100)}a:b:0.5${close.repeat(100)}`;
    assert.is(promptLimitProblem(deep, 'p'), undefined);
    only(DiffuseError, () => promptSchedule(deep, 20));
    only(DiffuseError, () => parsePromptAttention(deep));
  }
});

S.run();
