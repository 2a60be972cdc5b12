import { UsageError } from '../errors.js';
import { DEVICES, type Device } from '../onnx/session.js';
import { INTERROGATE_MODES, type InterrogateMode } from '../pipeline/interrogate/interrogate.js';
import { parseChoice, parseInteger } from '../settings/options.js';

/**
 * img2txt's flags: one table for commander, --help and the README's table (test/readme.test.ts checks
 * every flag is there). BLIP's lengths default to A1111's interrogate settings.
 */
export interface Img2txtSettings {
  model: string | undefined;
  blip: string | undefined;
  clip: string | undefined;
  terms: string | undefined;
  mode: InterrogateMode;
  ranks: boolean;
  minLength: number;
  maxLength: number;
  json: boolean;
  featureCache: boolean;
  device: Device;
  threads: number | undefined;
  yes: boolean;
}

export interface Img2txtOptionSpec<K extends keyof Img2txtSettings = keyof Img2txtSettings> {
  key: K;
  flags: string;
  description: string;
  parse: (raw: unknown, label: string) => Img2txtSettings[K];
  default: Img2txtSettings[K];
  /** For --help and the README: what the default means. */
  defaultText: string;
}

const spec = <K extends keyof Img2txtSettings>(s: Img2txtOptionSpec<K>): Img2txtOptionSpec<K> => s;
const path = (raw: unknown): string => String(raw);
const flag = (raw: unknown): boolean => raw === true;
const optional =
  <T>(parse: (raw: unknown, label: string) => T) =>
  (raw: unknown, label: string): T | undefined =>
    raw === undefined ? undefined : parse(raw, label);

export const IMG2TXT_OPTIONS = [
  spec({ key: 'model', flags: '-m, --model <dir>', description: 'interrogator folder holding blip/ and clip/ (and terms/, used instead of the shipped lists); the registry\'s models stand in for those it lacks', parse: optional(path), default: undefined, defaultText: '<cache>/interrogate' }),
  spec({ key: 'blip', flags: '--blip <ref>', description: "BLIP captioner: a registry id (blip-base, blip-large: pulled, then converted to ONNX once), a Hub BLIP folder (model.safetensors, config.json, preprocessor_config.json, vocab.txt: converted once) or a folder of its graphs (onnx/vision_model.onnx, onnx/text_decoder_model.onnx and those configs)", parse: optional(path), default: undefined, defaultText: '<model>/blip if it exists, else blip-base' }),
  spec({ key: 'clip', flags: '--clip <ref>', description: "CLIP: a registry id (clip-vit-large-patch14) or a folder in transformers.js's layout (onnx/vision_model.onnx, onnx/text_model.onnx, preprocessor_config.json, vocab.json, merges.txt)", parse: optional(path), default: undefined, defaultText: '<model>/clip if it exists, else clip-vit-large-patch14' }),
  spec({ key: 'terms', flags: '--terms <dir>', description: "term lists: every *.txt, one term per line; A1111's topN rule (a name like lighting.top2.list.txt keeps 2)", parse: optional(path), default: undefined, defaultText: "<model>/terms if it exists, else the shipped clip-interrogator lists (artists, flavors, mediums, movements)" }),
  spec({ key: 'mode', flags: '--mode <mode>', description: "classic: A1111's Interrogate CLIP (each list's top terms by softmax rank); fast: clip-interrogator's (the 32 best of all lists by cosine, cut to 77 tokens)", parse: parseChoice(INTERROGATE_MODES), default: 'classic', defaultText: 'classic' }),
  spec({ key: 'ranks', flags: '--ranks', description: "classic: write terms as (term:probability), A1111's 'include ranks' setting", parse: flag, default: false, defaultText: 'off' }),
  spec({ key: 'minLength', flags: '--min-length <n>', description: "BLIP's min_length in tokens, the prompt's 4 included (A1111's setting)", parse: parseInteger(0, 512), default: 24, defaultText: '24' }),
  spec({ key: 'maxLength', flags: '--max-length <n>', description: "BLIP's max_length in tokens, the prompt's 4 included (A1111's setting)", parse: parseInteger(5, 512), default: 48, defaultText: '48' }),
  spec({ key: 'json', flags: '--json', description: 'print caption, prompt and the ranked terms with their scores as JSON', parse: flag, default: false, defaultText: 'off' }),
  spec({ key: 'featureCache', flags: '--no-feature-cache', description: "encode the term lists again instead of reading their cached CLIP features (<cache>/interrogate-features)", parse: (raw) => raw !== false, default: true, defaultText: 'cached' }),
  spec({ key: 'device', flags: '--device <name>', description: `execution provider: ${DEVICES.join(', ')}`, parse: parseChoice(DEVICES), default: 'cpu', defaultText: 'cpu' }),
  spec({ key: 'threads', flags: '--threads <n>', description: 'CPU threads for ONNX Runtime', parse: optional(parseInteger(1, 1024)), default: undefined, defaultText: 'physical cores' }),
  spec({ key: 'yes', flags: '-y, --yes', description: 'download a registry model (BLIP, CLIP) that is not installed without asking', parse: flag, default: false, defaultText: 'ask on a terminal, else refuse with the pull command' }),
] as const satisfies readonly Img2txtOptionSpec[];

/** Commander's raw values -> settings, each through its row. */
export function img2txtSettings(raw: Record<string, unknown>): Img2txtSettings {
  const out: Record<string, unknown> = {};
  for (const o of IMG2TXT_OPTIONS as readonly Img2txtOptionSpec[]) {
    const label = o.flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
    out[o.key] = raw[o.key] === undefined ? o.default : o.parse(raw[o.key], label);
  }
  const settings = out as unknown as Img2txtSettings;
  if (settings.minLength > settings.maxLength) throw new UsageError(`--min-length ${settings.minLength} is more than --max-length ${settings.maxLength}`);
  return settings;
}
