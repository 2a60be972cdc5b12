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
  /** What did the arithmetic: "onnxruntime-node 1.30.0", "onnxruntime 1.20.1", "torch 2.5.1". */
  runtime?: string;
  /** With --repeats: how many runs, and the slowest and fastest run's median step. */
  runs?: number;
  stepSpread?: [number, number];
  /** The row this one is an option of (Peer.reference), and how it compares with that row's run of the same turn. */
  reference?: string;
  stepRatio?: number;
  wholeImageRatio?: number;
  /** Cosine of the final latents and PSNR of the 8-bit image against the reference's (same seed). */
  latentCosine?: number;
  psnrDb?: number;
  note?: string;
}

/** How one run's outputs differ from the reference run's (bench/compare.ts reads them). */
export interface OutputDistance {
  latentCosine: number;
  psnrDb: number;
}

/**
 * A row set beside its reference's run of the same turn: time ratios taken pairwise, so a slow
 * spell of a shared machine that falls on both cancels, and the output distance when known.
 */
export function withReference(row: Summary, reference: Summary, distance?: OutputDistance): Summary {
  return {
    ...row,
    reference: reference.tool,
    ...(row.stepMedianS !== undefined && reference.stepMedianS !== undefined ? { stepRatio: row.stepMedianS / reference.stepMedianS } : {}),
    ...(row.wholeImageS !== undefined && reference.wholeImageS !== undefined ? { wholeImageRatio: row.wholeImageS / reference.wholeImageS } : {}),
    ...(distance ?? {}),
  };
}

/** `withFloor` false: the floor (issue 7's SD 1.5 UNet cost) says nothing of the row's model (SDXL). */
export function summarize(row: Row, withFloor = true): Summary {
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
    ...(withFloor ? { timesFloor: step / ((floorSeconds(row.width, row.height) * (r.unet_batch ?? 2)) / 2) } : {}),
    textEncoderS: r.text_encoder_s,
    vaeDecodeS: r.vae_decode_s,
    loadS: r.load_s,
    firstStepS: r.load_s + r.text_encoder_s + (r.step_s[0] ?? Number.NaN),
    ...(row.peakRssMb !== undefined ? { peakRssMb: row.peakRssMb } : {}),
    wholeImageS: r.text_encoder_s + r.step_s.reduce((a, b) => a + b, 0) + r.vae_decode_s + (r.png_s ?? 0),
    ...(r.overhead_s ? { overheadStepS: median(r.overhead_s.denoise_per_step), overheadTotalS: r.overhead_s.total } : {}),
    load,
    ...(r.runtime ? { runtime: r.runtime } : {}),
    note: `steps ${r.step_s.map((s) => s.toFixed(2)).join(' ')}`,
  };
}

const NUMERIC: (keyof Summary)[] = [
  'stepMedianS', 'stepBestS', 'timesFloor', 'textEncoderS', 'vaeDecodeS', 'loadS', 'firstStepS', 'peakRssMb', 'wholeImageS', 'overheadStepS', 'overheadTotalS',
  'stepRatio', 'wholeImageRatio', 'latentCosine', 'psnrDb',
];

/**
 * The runs of each tool and size (--repeats) as one row: each number the median over the runs
 * that finished (the best step the best of all), the spread of their median steps, every run's
 * load average and failures kept in the note.
 */
export function combineRuns(summaries: readonly Summary[]): Summary[] {
  const groups = new Map<string, Summary[]>();
  for (const s of summaries) groups.set(`${s.tool}\u0000${s.size}`, [...(groups.get(`${s.tool}\u0000${s.size}`) ?? []), s]);
  return [...groups.values()].map((runs) => {
    if (runs.length === 1) return runs[0]!;
    const done = runs.filter((r) => r.stepMedianS !== undefined);
    const out: Summary = { tool: runs[0]!.tool, size: runs[0]!.size, load: runs.map((r) => r.load).join('; '), runs: runs.length };
    for (const key of NUMERIC) {
      // Infinity stays (the PSNR of identical images); NaN is a number that was not measured.
      const xs = done.map((r) => r[key] as number | undefined).filter((x): x is number => x !== undefined && !Number.isNaN(x));
      if (xs.length) (out as unknown as Record<string, number>)[key] = key === 'stepBestS' ? Math.min(...xs) : median(xs);
    }
    const medians = done.map((r) => r.stepMedianS!);
    if (medians.length) out.stepSpread = [Math.min(...medians), Math.max(...medians)];
    if (done[0]?.runtime) out.runtime = done[0].runtime;
    const reference = done.find((r) => r.reference)?.reference;
    if (reference) out.reference = reference;
    const failed = runs.filter((r) => r.stepMedianS === undefined).map((r) => r.note);
    out.note = `${done.length} of ${runs.length} runs finished${failed.length ? `; ${failed.join('; ')}` : ''}`;
    return out;
  });
}

const fmt = (x: number | undefined, digits = 2): string => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

const COLUMNS: [string, (s: Summary) => string][] = [
  ['tool', (s) => s.tool],
  ['size', (s) => s.size],
  ['s / step (median)', (s) => fmt(s.stepMedianS)],
  ['spread (runs)', (s) => (s.stepSpread ? `${fmt(s.stepSpread[0])}–${fmt(s.stepSpread[1])} (${s.runs})` : '—')],
  ['× floor', (s) => fmt(s.timesFloor)],
  ['best step s', (s) => fmt(s.stepBestS)],
  ['text enc s', (s) => fmt(s.textEncoderS)],
  ['VAE decode s', (s) => fmt(s.vaeDecodeS)],
  ['load s', (s) => fmt(s.loadS, 1)],
  ['to 1st step s', (s) => fmt(s.firstStepS, 1)],
  ['whole image s', (s) => fmt(s.wholeImageS, 1)],
  ['peak RSS MB', (s) => fmt(s.peakRssMb, 0)],
  ['own overhead s/step', (s) => fmt(s.overheadStepS, 3)],
  ['runtime', (s) => s.runtime ?? '—'],
  ['vs reference: step ×, image ×, latent cosine, PSNR', vsReference],
  ['load avg before → after', (s) => s.load],
  ['note', (s) => s.note ?? ''],
];

function vsReference(s: Summary): string {
  if (!s.reference) return '—';
  const image = s.psnrDb === Infinity ? 'identical image' : `${fmt(s.psnrDb, 1)} dB`;
  const quality = s.latentCosine === undefined ? 'outputs not compared' : `${s.latentCosine.toFixed(5)}, ${image}`;
  return `${s.reference}: ${fmt(s.stepRatio, 3)}, ${fmt(s.wholeImageRatio, 3)}, ${quality}`;
}

export function markdownTable(summaries: readonly Summary[]): string {
  const head = `| ${COLUMNS.map(([h]) => h).join(' | ')} |`;
  const rule = `| ${COLUMNS.map(() => '---').join(' | ')} |`;
  const body = summaries.map((s) => `| ${COLUMNS.map(([, f]) => f(s).replace(/\|/g, '\\|')).join(' | ')} |`);
  return [head, rule, ...body].join('\n');
}
