import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openSession, type Device, type SessionSettings } from '../onnx/session.js';
import { discreteSchedule } from '../schedulers/index.js';
import type { DiscreteSchedule } from '../schedulers/types.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { ModelLoadError, UsageError } from '../errors.js';
import { componentPath, hasPart, readModelFiles, readModelJson, requirePart } from './model-files.js';
import { prepareTextEncoderModel } from './text-encoder.js';
import { readEmbeddingsDir, type EmbeddingTokens, type TextualInversion } from '../text/embeddings.js';
import { cacheRoot } from '../models/index.js';
import { cachedModelEdit } from '../onnx/edited-model-cache.js';
import { fuseAttention } from '../onnx/fuse-attention.js';
import { splitForDeepCache } from '../onnx/deep-cache-split.js';
import { splitProjections } from '../onnx/split-projections.js';
import { applyTokenMerging } from '../onnx/token-merging.js';
import { winogradGraph, type ConvAlgorithm } from './winograd.js';
import { int8Graphs, int8Mode, int8Storage, quantizesDecoder, type Quantization, type QuantizationChoice } from './quantize.js';
import { int8Support } from '../onnx/cpu-features.js';
import type { Int8Format } from '../onnx/quantize-int8.js';
import { DepthEstimator, readProcessorConfig } from './depth-estimator.js';
import { ControlNet, controlNetGraph } from './controlnet.js';
import { controlReadyUnet } from './control-unet.js';
import { readClipProcessor, safetyCheckerFiles, SafetyChecker } from './safety-checker.js';
import type { LoadedControlNet } from './controlnet.js';
import { assemble, type BundleParts, type ModelBundle, type TextEncoderPart, type VaeChoice } from './bundle.js';
import { readVaeRecord } from '../graphs/vae-convert.js';
import { readControlNetRecord } from '../graphs/controlnet-convert.js';
import { VaeDecoder } from './vae.js';
import { loadUpscaler } from './upscale/model.js';
import type { ModelFiles } from './model-files.js';
import type { PromptWeighting } from './types.js';
import { calibrator } from './calibrate.js';
import { applyLoras, type AppliedLoras, type LoraChoice, type LoraGraphs, type ModelFamily } from '../graphs/lora/apply-loras.js';
import { withHypernetworks, type HypernetworkChoice } from '../graphs/hypernetwork/apply-hypernetworks.js';

export type { ModelBundle } from './bundle.js';

export interface LoadOptions {
  device: Device;
  threads?: number;
  /** Load the VAE encoder too (img2img, inpaint, outpaint). */
  withEncoder?: boolean;
  /**
   * Another VAE instead of the model's (A1111's and ComfyUI's VAE choice): a folder holding
   * vae_decoder/ (and vae_encoder/ for img2img) in the diffusers ONNX layout, as given or as
   * src/graphs converts a VAE file into (with vae.json saying what it was).
   */
  vae?: string;
  /** A TAESD folder (vae_decoder/) whose decoder draws live previews; --vae's own when that is TAESD. */
  previewVae?: string;
  /** Load the folder's depth estimator (depth2img without a depth map). */
  withDepthEstimator?: boolean;
  /** A1111 numbering: 1 (default) = the last layer's hidden states. */
  clipSkip?: number;
  /**
   * Whose reading of clipSkip an SDXL model follows: the prompt weighting's (default 'a1111'; SD
   * 1.x/2.x are read alike by all three). See sdxlLayerFromEnd.
   */
  clipSkipReading?: PromptWeighting;
  /** Textual-inversion embeddings (.safetensors, .pt, .bin) triggered by their file names. */
  embeddingsDir?: string;
  /** The prompts the bundle will encode: only embeddings they name are read (default: every file). */
  embeddingPrompts?: readonly string[];
  /** Where edited graphs are cached (default: the model cache's graphs/ folder). */
  graphCache?: string;
  /** Where ONNX Runtime's optimised graphs are kept for fast loads (CPU); none when absent. */
  optimizedCache?: string;
  /** Run the UNet's attention as fused MultiHeadAttention (about half the peak memory at 512²). */
  fuseAttention?: boolean;
  /**
   * Split the UNet for DeepCache (requests' deepCache): a full graph that also outputs the deep
   * feature, and a shallow one that reuses it; both edited once and cached.
   */
  deepCache?: boolean;
  /**
   * Token merging (ToMe, src/onnx/token-merging.ts): the UNet edited once per ratio (cached) to
   * merge this fraction of the tokens before self-attention at full resolution; 0 or absent: off.
   */
  tokenMerging?: number;
  /**
   * How the UNet's 3x3 convolutions run on the CPU's float path: winograd rewrites the stride-1
   * ones as Winograd F(2x2, 3x3) (src/onnx/winograd-conv.ts, edited once and cached); auto
   * (default) rewrites the share where that pays at little memory (autoRewrites); direct leaves
   * them to ONNX Runtime's Conv. Also int8-matmul's float convolutions; ignored by the calibrated
   * int8 modes (their convolutions are int8) and on GPUs.
   */
  conv?: ConvAlgorithm;
  /** int8: the UNet and VAE decoder quantized (calibrated and cached once per model); int8-matmul: the UNet's MatMuls only; int8-attention: int8 and the UNet's attention products. */
  quantize?: Quantization;
  /** How int8 weights are stored (default: the format this CPU runs exactly, see cpu-features). */
  int8Format?: Int8Format;
  /**
   * Free the text encoder while the UNet and VAE run (less peak memory; a later image with a new
   * prompt reopens it, about 0.3 s for SD 1.5 from the optimised-graph cache).
   */
  parkTextEncoder?: boolean;
  /**
   * LoRA/LyCORIS files merged into the text encoder and UNet weights (A1111's `<lora:name:te:unet>`):
   * weights are fixed when a model loads, so LoRAs are a load option, not a request field; each
   * combination is merged once and cached.
   */
  loras?: readonly LoraChoice[];
  /** A1111 hypernetworks on the UNet's attention k/v inputs (`<hypernet:name:strength>`), applied in order. */
  hypernetworks?: readonly HypernetworkChoice[];
  /** Told when loading does something slow once (calibrating a model for int8). */
  onNote?: (message: string) => void;
  /** Told of what loading skipped but did not refuse (LoRA keys that patch nothing, a named embedding that cannot be read). */
  onWarning?: (message: string) => void;
  /**
   * A second model folder (the SDXL refiner) loaded beside this one, with the same device,
   * precision and VAE choices, for requests that set refinerSwitch.
   */
  refiner?: string;
  /**
   * ControlNet folders (controlnet/model.onnx inside, or model.onnx itself) opened beside the UNet
   * with the same settings, for requests whose control units name them.
   */
  controlnets?: readonly string[];
  /** Open the folder's safety checker (safety_checker/ and feature_extractor/) for requests that set safetyCheck. */
  withSafetyChecker?: boolean;
  /** An image upscaler graph (.onnx, Real-ESRGAN family) opened beside the model for SD upscale requests. */
  upscaler?: string;
}

export async function loadModel(dir: string, options: LoadOptions): Promise<ModelBundle> {
  const { refiner, controlnets, upscaler, ...own } = options;
  // A UNet diffuse built takes ControlNet residuals only in the graph made for runs that load ControlNets.
  const main = await loadOne(dir, { ...own, ...(controlnets?.length ? { controlResiduals: true } : {}) });
  if (main.sdxl && (own.clipSkip ?? 1) > 1 && (own.clipSkipReading ?? 'a1111') === 'a1111') {
    own.onWarning?.(`Clip skip ${own.clipSkip} changes nothing on SDXL with --prompt-weighting a1111, as in A1111 (its SDXL embedders read the model's own layer); --prompt-weighting comfy or none reads a further one`);
  }
  const bundle = await withUpscaler(await withSafetyChecker(await withControlNets(main, controlnets ?? [], own), own), upscaler, own);
  if (refiner === undefined) return bundle;
  // The refiner is another network: the base's LoRAs, embeddings and hypernetworks are not its.
  const { withEncoder: _e, withDepthEstimator: _d, embeddingsDir: _t, withSafetyChecker: _s, loras: _l, hypernetworks: _h, ...shared } = own;
  const second = await loadOne(refiner, shared).catch(async (err: unknown) => {
    await bundle.release();
    throw err;
  });
  return {
    ...bundle,
    refiner: second,
    release: async () => {
      await Promise.all([bundle.release(), second.release()]);
    },
  };
}

async function loadOne(dir: string, options: Omit<LoadOptions, 'refiner'> & { controlResiduals?: boolean }): Promise<ModelBundle> {
  const files = readModelFiles(resolve(dir));
  const settings = sessionSettings(options);
  const other = options.vae ? otherVae(options.vae, files, Boolean(options.withEncoder)) : undefined;
  const vaeDir = other?.dir ?? files.dir;
  const sdxl = hasPart(files.dir, 'text_encoder_2');
  const paths = {
    unet: requirePart(files.dir, 'unet'),
    decoder: requirePart(vaeDir, 'vae_decoder'),
    encoder: options.withEncoder ? requirePart(vaeDir, 'vae_encoder') : undefined,
    depth: options.withDepthEstimator ? requirePart(files.dir, 'depth_estimator') : undefined,
  };
  let schedule: DiscreteSchedule;
  try {
    schedule = discreteSchedule(files.schedulerConfig);
  } catch (err) {
    throw new ModelLoadError(`scheduler/scheduler_config.json: ${(err as Error).message}`, { cause: err });
  }
  const graphCache = options.graphCache ?? join(cacheRoot(), 'graphs');
  const clipSkip = options.clipSkip ?? 1;
  const embeddings = options.embeddingsDir ? readEmbeddingsDir(options.embeddingsDir, sdxl ? sdxlTextWidths(files.dir, options.embeddingsDir) : textWidth(files.dir), options.embeddingPrompts, options.onWarning) : [];
  if (sdxl && options.hypernetworks?.length) {
    throw new UsageError(`hypernetworks apply to SD 1.x/2.x models only and ${basename(files.dir)} is SDXL; leave the <hypernet:…> tags out for this model`);
  }
  const textGraphs = sdxl
    ? { ...(hasPart(files.dir, 'text_encoder') ? { textEncoder: requirePart(files.dir, 'text_encoder') } : {}), textEncoder2: requirePart(files.dir, 'text_encoder_2') }
    : { textEncoder: requirePart(files.dir, 'text_encoder') };
  const networks = await withLoras({ ...textGraphs, unet: paths.unet }, options, { textWidth: textWidth(files.dir), sdxl }, graphCache);
  const text = sdxl ? await sdxlTextParts(files.dir, networks, sdxlLayerFromEnd(clipSkip, options.clipSkipReading ?? 'a1111'), embeddings, graphCache) : await singleTextPart(files.dir, networks.textEncoder!, clipSkip, embeddings, graphCache);
  const unetWithNetworks = withHypernetworks(networks.unet, options.hypernetworks ?? [], graphCache);
  const unetForControl = options.controlResiduals ? controlReadyUnet(unetWithNetworks, files.dir, graphCache) : unetWithNetworks;
  const unetMerged = options.tokenMerging ? tokenMergedUnet(unetForControl, options.tokenMerging, graphCache) : unetForControl;
  // int8-attention rewrites the attention's two products, which the fused kernel no longer has.
  const unetSource = options.fuseAttention && options.quantize !== 'int8-attention' ? fusedGraph(unetMerged, graphCache, 'unet') : unetMerged;
  const tokenizer = text.texts[0]!.tokenizer;
  const parts: BundleParts = {
    files,
    texts: text.texts,
    ...(sdxl ? { sdxl: { forceZerosForEmptyPrompt: forceZerosForEmptyPrompt(files.modelIndex) } } : {}),
    schedule,
    clipSkip,
    embeddings: embeddingTokens(tokenizer, text.embeddings),
    embeddingHashes: Object.fromEntries(embeddings.map((e) => [e.name, e.sha256.slice(0, 12)])),
    loras: networks.loras,
  };
  const asked = options.quantize && options.quantize !== 'none' ? options.quantize : undefined;
  const cpu = asked ? int8Support() : undefined;
  const mode = asked && cpu ? int8Mode(cpu, asked) : undefined;
  if (asked && mode !== asked) options.onNote?.(`--quantize ${asked} runs as ${mode} on this CPU: int8 convolutions are no faster than float ones here (diffuse doctor)`);
  const quantization: QuantizationChoice | undefined = mode && cpu ? { mode, format: options.int8Format ?? cpu.format } : undefined;
  const unquantized = { unet: unetSource, decoder: paths.decoder };
  const split = cpuGraphs(
    quantization && cpu
      ? await int8Graphs({ ...quantization, ...int8Storage(cpu, quantization.format), decoder: quantizesDecoder(cpu) }, unquantized, graphCache, calibrator(parts, settings), (what) =>
          options.onNote?.(`calibrating the int8 ${what} (once per model; the float model runs a few steps)`),
        )
      : unquantized,
    options,
    graphCache,
  );
  // Float convolutions (fp32's, int8-matmul's) follow --conv; the calibrated int8 modes' are int8.
  const graphs = !quantization || quantization.mode === 'int8-matmul' ? await convGraphs(split, options, graphCache) : split;
  const depthConfig = paths.depth ? readProcessorConfig(requirePart(files.dir, 'feature_extractor', 'preprocessor_config.json')) : undefined;
  const previewPath = options.previewVae && resolve(options.previewVae) !== other?.dir ? requirePart(resolve(options.previewVae), 'vae_decoder') : undefined;
  const unetGraphs = options.deepCache ? deepCacheUnet(graphs.unet, graphCache) : { full: graphs.unet, shallow: undefined };
  const [texts, unet, decoder, encoder, depth, preview, shallowUnet] = await Promise.all([
    Promise.all(parts.texts.map((t) => openSession(t.path, settings))),
    openSession(unetGraphs.full, settings),
    openSession(graphs.decoder, settings),
    paths.encoder ? openSession(paths.encoder, settings) : Promise.resolve(undefined),
    paths.depth ? openSession(paths.depth, settings) : Promise.resolve(undefined),
    previewPath ? openSession(previewPath, settings) : Promise.resolve(undefined),
    unetGraphs.shallow ? openSession(unetGraphs.shallow, settings) : Promise.resolve(undefined),
  ]);
  const assembled = assemble(parts, { texts, unet, decoder, encoder, shallowUnet }, options.parkTextEncoder ? (i) => openSession(parts.texts[i]!.path, settings) : undefined);
  const bundle = {
    ...assembled,
    ...(other ? { vae: { ...other.choice, decoderPath: paths.decoder }, vaeScale: other.scale ?? assembled.vaeScale } : {}),
    ...(quantization ? { quantization } : {}),
    ...(options.tokenMerging ? { tokenMerging: options.tokenMerging } : {}),
    ...(preview ? { previewDecoder: new VaeDecoder(preview), release: async () => { await Promise.all([assembled.release(), preview.session.release()]); } } : {}),
  };
  if (options.previewVae && !preview) bundle.previewDecoder = bundle.vaeDecoder;
  if (!depth || !depthConfig) return bundle;
  return {
    ...bundle,
    depthEstimator: new DepthEstimator(depth, depthConfig),
    release: async () => {
      await Promise.all([bundle.release(), depth.session.release()]);
    },
  };
}

/**
 * The graphs as the CPU runs them best, float or int8: the UNet's projections read in slices
 * computed per slice (the same numbers without the copies).
 */
function cpuGraphs(graphs: { unet: string; decoder: string }, options: Pick<LoadOptions, 'device'>, cacheDir: string): { unet: string; decoder: string } {
  return options.device === 'cpu' ? { ...graphs, unet: splitProjectionsOnce(graphs.unet, cacheDir, 'unet') } : graphs;
}

/**
 * Unless --conv direct, the UNet's float 3x3 convolutions (auto's share or all) rewritten as
 * Winograd. Not the VAE decoder's: at 512² its convolutions work on 128-512 channels of up to
 * 512x512 pixels, where the transformed tiles (4 values per pixel and channel) cost more than the
 * saved multiplies (full-size SD 1.5: 2.3x the wall time, peak RSS 5.2 GB instead of 1.8 GB).
 */
async function convGraphs(graphs: { unet: string; decoder: string }, options: Pick<LoadOptions, 'conv' | 'device'>, cacheDir: string): Promise<{ unet: string; decoder: string }> {
  const conv = options.conv ?? 'auto';
  if (options.device !== 'cpu' || conv === 'direct') return graphs;
  // A speed edit like speedEdit's: a graph it cannot read is loaded as it is, for ONNX Runtime to say what is wrong.
  return { ...graphs, unet: await winogradGraph(graphs.unet, cacheDir, 'unet', conv).catch(() => graphs.unet) };
}

/** The graph with GEGLU's projection computed half by half (src/onnx/split-projections.ts), edited once and cached beside links to its weights. */
function splitProjectionsOnce(path: string, cacheDir: string, label: 'unet' | 'controlnet'): string {
  return speedEdit(path, () =>
    cachedModelEdit({
      source: path,
      cacheDir,
      label: `${label}-split-projections`,
      editKey: { splitProjections: 1 },
      edit: (model) => {
        const edited = splitProjections(model);
        return { model: edited.model, result: { split: edited.split } };
      },
    }).path,
  );
}

/** How every session of one load is opened: the device, threads and optimised-graph cache the options give. */
function sessionSettings(options: Pick<LoadOptions, 'device' | 'threads' | 'optimizedCache'>): SessionSettings {
  return { device: options.device, ...(options.threads ? { threads: options.threads } : {}), ...(options.optimizedCache ? { optimizedCache: options.optimizedCache } : {}) };
}

/** The bundle with its ControlNets opened (each folder once); a failure releases what was opened. */
async function withControlNets(bundle: ModelBundle, dirs: readonly string[], options: Omit<LoadOptions, 'refiner' | 'controlnets'>): Promise<ModelBundle> {
  const unique = [...new Map(dirs.map((d) => [resolve(d), d])).values()];
  if (unique.length === 0) return bundle;
  const settings = sessionSettings(options);
  const opened: LoadedControlNet[] = [];
  try {
    for (const dir of unique) {
      const path = controlNetGraph(dir);
      const record = readControlNetRecord(dir);
      const identity = record ? { name: record.name, hash: record.a1111OldHash } : { name: controlNetName(dir) };
      // Its attention as the UNet's: unfused, a 512² ControlNet's [2, 8, 4096, 4096] scores grew its arena by gigabytes.
      const graphCache = options.graphCache ?? join(cacheRoot(), 'graphs');
      const fused = options.fuseAttention ? fusedGraph(path, graphCache, 'controlnet') : path;
      const graph = options.device === 'cpu' ? splitProjectionsOnce(fused, graphCache, 'controlnet') : fused;
      opened.push({ dir, ...identity, net: new ControlNet(await openSession(graph, settings), path) });
    }
  } catch (err) {
    await Promise.all([bundle.release(), ...opened.map((c) => c.net.release())]);
    throw err;
  }
  return {
    ...bundle,
    controlNets: opened,
    release: async () => {
      await Promise.all([bundle.release(), ...opened.map((c) => c.net.release())]);
    },
  };
}

/** The bundle with the model folder's safety checker opened, when asked; a failure releases the bundle. */
async function withUpscaler(bundle: ModelBundle, path: string | undefined, options: Omit<LoadOptions, 'refiner' | 'controlnets'>): Promise<ModelBundle> {
  if (path === undefined) return bundle;
  const upscaler = await loadUpscaler(path, sessionSettings(options)).catch(async (err: unknown) => {
    await bundle.release();
    throw err;
  });
  return {
    ...bundle,
    upscaler,
    release: async () => {
      await Promise.all([bundle.release(), upscaler.release()]);
    },
  };
}

async function withSafetyChecker(bundle: ModelBundle, options: Omit<LoadOptions, 'refiner' | 'controlnets'>): Promise<ModelBundle> {
  if (!options.withSafetyChecker) return bundle;
  const settings = sessionSettings(options);
  const opened = await openChecker(bundle.files.dir, settings).catch(async (err: unknown) => {
    await bundle.release();
    throw err;
  });
  return {
    ...bundle,
    safetyChecker: opened.checker,
    release: async () => {
      await Promise.all([bundle.release(), opened.release()]);
    },
  };
}

async function openChecker(dir: string, settings: SessionSettings): Promise<{ checker: SafetyChecker; release: () => Promise<void> }> {
  const paths = safetyCheckerFiles(dir);
  const processor = readClipProcessor(paths.processor);
  const opened = await openSession(paths.graph, settings);
  try {
    return { checker: new SafetyChecker(opened, processor), release: () => opened.session.release() };
  } catch (err) {
    await opened.session.release();
    throw err;
  }
}

/** A1111 names a ControlNet by its file; a folder by its name (the parent's for DIR/controlnet). */
function controlNetName(dir: string): string {
  const base = basename(resolve(dir));
  return base === 'controlnet' ? basename(resolve(dir, '..')) : base;
}

interface TextParts {
  texts: TextEncoderPart[];
  /** The token ids each embedding's vectors got in the (first) encoder. */
  embeddings: Array<{ name: string; ids: number[] }>;
}

/** SD 1.x/2.x: one text encoder, CLIP skip and embeddings edited into its graph. */
async function singleTextPart(dir: string, path: string, clipSkip: number, embeddings: TextualInversion[], graphCache: string): Promise<TextParts> {
  requirePart(dir, 'tokenizer', 'vocab.json');
  const tokenizer = await ClipTokenizer.fromDirectory(componentPath(dir, 'tokenizer', ''));
  const prepared = prepareTextEncoderModel(path, { clipSkip, embeddings }, graphCache);
  return { texts: [{ path: prepared.path, tokenizer, hiddenOutput: prepared.hiddenOutput }], embeddings: prepared.embeddings };
}

/**
 * The layer SDXL's two encoders are read at, counted from the last (1: the penultimate, SDXL's own),
 * for A1111's clip skip n as each prompt weighting's reference reads it:
 * - a1111: the penultimate whatever n. A1111's SDXL embedders (sd_hijack_clip's
 *   FrozenCLIPEmbedderForSDXLWithCustomWords, sd_hijack_open_clip's FrozenOpenCLIPEmbedder2WithCustomWords)
 *   read the layer the model's config names; only with its "Clip skip SDXL" option on (off by default,
 *   and not in the infotext) does clip_l read hidden_states[-n], which for n = 2 is the same layer;
 * - comfy: hidden_states[-n] of both encoders, as CLIPSetLastLayer(-n) sets both (SDXLClipModel
 *   passes it to clip_l and clip_g, neither layer-normed); n = 1 is no such node, the penultimate;
 * - none: diffusers' clip_skip = n - 1, hidden_states[-(n + 1)] of both.
 */
function sdxlLayerFromEnd(clipSkip: number, reading: PromptWeighting): number {
  if (reading === 'a1111') return 1;
  if (reading === 'comfy') return Math.max(clipSkip - 1, 1);
  return clipSkip;
}

/**
 * SDXL: text_encoder/ (CLIP ViT-L) when present and text_encoder_2/ (OpenCLIP ViT-bigG, with the
 * pooled text_embeds), each read at the layer `layerFromEnd` before the last (sdxlLayerFromEnd).
 * An embedding's clip_l vectors join the first encoder's token table and its clip_g vectors the
 * second's, as diffusers' load_textual_inversion once per encoder with its tokenizer (and A1111's
 * per-embedder clip_l/clip_g) place them.
 */
async function sdxlTextParts(dir: string, graphs: Pick<LoraGraphs, 'textEncoder' | 'textEncoder2'>, layerFromEnd: number, embeddings: TextualInversion[], graphCache: string): Promise<TextParts> {
  const layer = { layerFromEnd };
  const texts: TextEncoderPart[] = [];
  let first: TextParts['embeddings'] | undefined;
  for (const [graph, tokenizer, source] of [['text_encoder', 'tokenizer', graphs.textEncoder], ['text_encoder_2', 'tokenizer_2', graphs.textEncoder2]] as const) {
    if (source === undefined) continue;
    requirePart(dir, tokenizer, 'vocab.json');
    const rows = embeddings.map((e) => ({ ...e, ...(graph === 'text_encoder' ? {} : e.clipG) }));
    // Only the token table changes: SDXL's layers are read from the hidden_states.N outputs.
    const prepared = prepareTextEncoderModel(source, { embeddings: rows }, graphCache);
    const tok = await ClipTokenizer.fromDirectory(componentPath(dir, tokenizer, ''));
    first ??= prepared.embeddings;
    texts.push({
      path: prepared.path,
      tokenizer: tok,
      hiddenOutput: layer,
      embeddings: embeddingTokens(tok, prepared.embeddings),
      ...(graph === 'text_encoder_2' ? { pooledOutput: 'text_embeds' } : {}),
    });
  }
  return { texts, embeddings: first ?? [] };
}

/** Each embedding's trigger as this tokenizer reads it, and the ids its vectors got in that encoder. */
function embeddingTokens(tokenizer: ClipTokenizer, embeddings: TextParts['embeddings']): EmbeddingTokens[] {
  return embeddings.map((e) => ({ triggerIds: tokenizer.encode(e.name), ids: e.ids }));
}

/** diffusers' default: true for the SDXL base and inpainting pipelines, false for the img2img (refiner) one. */
function forceZerosForEmptyPrompt(modelIndex: Record<string, unknown>): boolean {
  const value = modelIndex.force_zeros_for_empty_prompt;
  return typeof value === 'boolean' ? value : modelIndex._class_name !== 'StableDiffusionXLImg2ImgPipeline';
}

/** The graphs with the LoRAs merged (the given ones without any); unused keys are reported, not refused. */
async function withLoras(graphs: LoraGraphs, options: LoadOptions, family: ModelFamily, cacheDir: string): Promise<Omit<AppliedLoras, 'unused'>> {
  if (!options.loras?.length) return { ...graphs, loras: [] };
  const applied = await applyLoras(graphs, options.loras, family, cacheDir);
  for (const u of applied.unused) {
    options.onWarning?.(`LoRA ${u.name}: ${u.count} key${u.count === 1 ? '' : 's'} skipped — no such layer in this model, or a kind diffuse does not merge (IA3, OFT, GLoRA) — e.g. ${u.examples.join(', ')}`);
  }
  return applied;
}

/**
 * --vae: a folder with the VAE graphs, refused in one line when it has none, has no encoder for an
 * image task, or makes latents of another width than the model's. TAESD (AutoencoderTiny) works
 * on the UNet's latents as they are (its own scaling factor, 1); another AutoencoderKL keeps the
 * model's scaling factor, as A1111 and ComfyUI do.
 */
function otherVae(path: string, files: ModelFiles, withEncoder: boolean): { dir: string; choice: Omit<VaeChoice, 'decoderPath'>; scale?: number } {
  const dir = resolve(path);
  if (!existsSync(join(dir, 'vae_decoder', 'model.onnx'))) {
    throw new UsageError(`--vae ${path}: no vae_decoder/model.onnx there; pass a VAE file (.safetensors, .ckpt, .pt), taesd, or a VAE folder in the diffusers ONNX layout (vae_decoder/, and vae_encoder/ for img2img)`);
  }
  const record = readVaeRecord(dir);
  const label = record?.name ?? path;
  if (withEncoder && !existsSync(join(dir, 'vae_encoder', 'model.onnx'))) {
    throw new UsageError(`--vae ${label} has no encoder, which img2img, inpaint, outpaint and depth2img need (for TAESD, put taesd_encoder beside taesd_decoder)`);
  }
  const config = readVaeConfig(join(dir, 'vae_decoder', 'config.json'));
  const channels = record?.latentChannels ?? config.latent_channels;
  if (typeof channels === 'number' && channels !== files.latentChannels) {
    throw new UsageError(`--vae ${label} reads ${channels}-channel latents but this model makes ${files.latentChannels}; choose a VAE of the model's family`);
  }
  const levels = Array.isArray(config.block_out_channels) ? config.block_out_channels.length : undefined;
  if (levels !== undefined && 2 ** (levels - 1) !== files.vaeScaleFactor) {
    throw new UsageError(`--vae ${label} makes ${2 ** (levels - 1)} pixels per latent but this model's VAE ${files.vaeScaleFactor}; choose a VAE of the model's family`);
  }
  const tiny = record ? record.kind === 'taesd' : config._class_name === 'AutoencoderTiny';
  const choice = { name: record?.name ?? basename(dir), ...(record && !tiny ? { hash: record.a1111Hash } : {}), tiny };
  return { dir, choice, ...(tiny ? { scale: typeof config.scaling_factor === 'number' ? config.scaling_factor : 1 } : {}) };
}

function readVaeConfig(path: string): Record<string, unknown> {
  try {
    return readModelJson(path);
  } catch {
    // Exports without a config: an AutoencoderKL, as optimum writes SD's.
    return {};
  }
}

/**
 * A UNet or ControlNet graph with its attention blocks fused, edited once and cached beside links to
 * its weights (`label`: the cache entry's prefix, 'unet' or 'controlnet').
 */
function fusedGraph(path: string, cacheDir: string, label: 'unet' | 'controlnet'): string {
  return speedEdit(path, () => fuseOnce(path, cacheDir, label));
}

/**
 * An edit that only speeds things up and saves memory (attention fusion, the projection split, Winograd): a
 * graph it cannot read is loaded as it is, and ONNX Runtime says what is wrong with it.
 */
function speedEdit(path: string, edit: () => string): string {
  try {
    return edit();
  } catch {
    return path;
  }
}

function fuseOnce(path: string, cacheDir: string, label: 'unet' | 'controlnet'): string {
  return cachedModelEdit({
    source: path,
    cacheDir,
    label: `${label}-fused-attention`,
    editKey: { fuseAttention: 1 },
    edit: (model) => {
      const fused = fuseAttention(model);
      return { model: fused.model, result: { fused: fused.fused, skipped: fused.skipped } };
    },
  }).path;
}

/** The UNet with token merging at `ratio` (src/onnx/token-merging.ts), edited once per ratio and cached beside links to its weights. */
function tokenMergedUnet(path: string, ratio: number, cacheDir: string): string {
  return cachedModelEdit({
    source: path,
    cacheDir,
    label: 'unet-token-merging',
    editKey: { tokenMerging: 1, ratio },
    edit: (model) => {
      const edited = applyTokenMerging(model, ratio);
      return { model: edited.model, result: { merged: edited.merged, lower: edited.lower } };
    },
  }).path;
}

/** DeepCache's two UNet graphs (src/onnx/deep-cache-split.ts), each cut once and cached beside links to the weights. */
function deepCacheUnet(path: string, cacheDir: string): { full: string; shallow: string } {
  const part = (which: 'full' | 'shallow') =>
    cachedModelEdit({
      source: path,
      cacheDir,
      label: `unet-deep-cache-${which}`,
      editKey: { deepCache: 1, part: which },
      edit: (model) => {
        const split = splitForDeepCache(model);
        return { model: split[which], result: { nodes: split.nodes, shallowNodes: split.shallowNodes } };
      },
    }).path;
  return { full: part('full'), shallow: part('shallow') };
}

/** A text encoder's hidden width from its config.json (768 for SD 1.x), which embeddings must match. */
function textWidth(dir: string, part = 'text_encoder', otherwise = 768): number {
  const path = join(dir, part, 'config.json');
  // Hub exports without a config: SD 1.x's (or bigG's) width. readModelFiles has checked the value.
  const width = existsSync(path) ? readModelJson(path).hidden_size : undefined;
  return typeof width === 'number' ? width : otherwise;
}

/** CLIP ViT-L's and bigG's widths, which an SDXL embedding's clip_l and clip_g must have. */
function sdxlTextWidths(dir: string, embeddingsDir: string): [number, number] {
  if (!hasPart(dir, 'text_encoder')) {
    throw new UsageError(`--embeddings-dir ${embeddingsDir}: ${basename(dir)} has only the second SDXL text encoder (a refiner), which cannot take clip_l vectors; use embeddings with the base model`);
  }
  return [textWidth(dir), textWidth(dir, 'text_encoder_2', 1280)];
}
