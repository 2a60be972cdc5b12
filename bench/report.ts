import type { Row } from './measure.js';
import { floorSeconds } from './settings.js';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The numbers of one row that the table and the JSON summary show. */
export interface Summary {
  tool: string;
  size: string;
  stepMedianS?: number;
  /** Fastest step: the least disturbed by other jobs on a shared machine. */
  stepBestS?: number;
  /** Median step time over the machine floor: 1 would be the floor, 2 twice as slow. */
  timesFloor?: number;
  textEncoderS?: number;
  vaeDecodeS?: number;
  loadS?: number;
  /** Model load + text encoder + first step: how long until the first step is done. */
  firstStepS?: number;
  peakRssMb?: number;
  /** Text encoder to the last byte of the image: encode, all steps, decode (and for diffuse the PNG). */
  wholeImageS?: number;
  /** diffuse only: median per-step time outside InferenceSession.run, and the whole run's. */
  overheadStepS?: number;
  overheadTotalS?: number;
  load: string;
  note?: string;
}

export function summarize(row: Row): Summary {
  const size = `${row.width}x${row.height}`;
  const load = `${row.loadBefore.toFixed(2)} → ${row.loadAfter?.toFixed(2) ?? '?'}`;
  const r = row.result;
  if (!r) return { tool: row.tool, size, load, note: `skipped: ${row.skipped}` };
  const step = median(r.step_s);
  return {
    tool: row.tool,
    size,
    stepMedianS: step,
    stepBestS: Math.min(...r.step_s),
    timesFloor: step / ((floorSeconds(row.width, row.height) * (r.unet_batch ?? 2)) / 2),
    textEncoderS: r.text_encoder_s,
    vaeDecodeS: r.vae_decode_s,
    loadS: r.load_s,
    firstStepS: r.load_s + r.text_encoder_s + (r.step_s[0] ?? Number.NaN),
    ...(row.peakRssMb !== undefined ? { peakRssMb: row.peakRssMb } : {}),
    wholeImageS: r.text_encoder_s + r.step_s.reduce((a, b) => a + b, 0) + r.vae_decode_s + (r.png_s ?? 0),
    ...(r.overhead_s ? { overheadStepS: median(r.overhead_s.denoise_per_step), overheadTotalS: r.overhead_s.total } : {}),
    load,
    note: `steps ${r.step_s.map((s) => s.toFixed(2)).join(' ')}`,
  };
}

const fmt = (x: number | undefined, digits = 2): string => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

const COLUMNS: [string, (s: Summary) => string][] = [
  ['tool', (s) => s.tool],
  ['size', (s) => s.size],
  ['s / step (median)', (s) => fmt(s.stepMedianS)],
  ['× floor', (s) => fmt(s.timesFloor)],
  ['best step s', (s) => fmt(s.stepBestS)],
  ['text enc s', (s) => fmt(s.textEncoderS)],
  ['VAE decode s', (s) => fmt(s.vaeDecodeS)],
  ['load s', (s) => fmt(s.loadS, 1)],
  ['to 1st step s', (s) => fmt(s.firstStepS, 1)],
  ['whole image s', (s) => fmt(s.wholeImageS, 1)],
  ['peak RSS MB', (s) => fmt(s.peakRssMb, 0)],
  ['own overhead s/step', (s) => fmt(s.overheadStepS, 3)],
  ['load avg before → after', (s) => s.load],
  ['note', (s) => s.note ?? ''],
];

export function markdownTable(summaries: readonly Summary[]): string {
  const head = `| ${COLUMNS.map(([h]) => h).join(' | ')} |`;
  const rule = `| ${COLUMNS.map(() => '---').join(' | ')} |`;
  const body = summaries.map((s) => `| ${COLUMNS.map(([, f]) => f(s).replace(/\|/g, '\\|')).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}
