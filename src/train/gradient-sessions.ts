import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ModelLoadError } from '../errors.js';
import { cachedModelEdit } from '../onnx/edited-model-cache.js';
import { initializers, readFloatInitializer } from '../onnx/initializers.js';
import { ModelProto } from '../onnx/proto.js';
import { openSession, type Device, type OpenedSession } from '../onnx/session.js';
import { takeInputsEmbeds } from '../onnx/text-encoder-embeds-input.js';
import { LAST_HIDDEN_STATE } from '../onnx/text-encoder-edit.js';
import { AutodiffError } from './autodiff/errors.js';
import { GRADIENT_GRAPH_VERSION, buildGradientGraph, type GradientGraphInfo, type GradientGraphOptions } from './autodiff/gradient-graph.js';
import { TrainError } from './errors.js';

/**
 * The two graphs a textual-inversion step runs, built once per model and shape by the autodiff
 * (cached beside the model cache's other edited graphs) and opened for the gradient:
 * - the text encoder with its token lookup cut out: inputs_embeds → last_hidden_state, and
 *   d/d inputs_embeds from a fed d/d last_hidden_state;
 * - the UNet with diffusers' loss built in: mean((out_sample − target)²) and d/d encoder_hidden_states.
 * Only the UNet's plain export can be differentiated (ONNX Runtime's fused attention has no
 * gradient rule), so the model folder's own unet/model.onnx is read, never --attention fused's.
 */

export interface GradientSession {
  opened: OpenedSession;
  info: GradientGraphInfo;
}

export interface TrainSessions {
  text: GradientSession;
  unet: GradientSession;
  /** The UNet's timestep input type. */
  timestepType: 'float32' | 'int64';
  /** The text encoder's token table [vocab, width] (from the original graph). */
  table: Float32Array;
  vocab: number;
  width: number;
  sequence: number;
  release(): Promise<void>;
}

export interface TrainShape {
  batch: number;
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  /** Tokens per prompt (77). */
  sequence: number;
}

export interface SessionPlace {
  device: Device;
  threads?: number;
  /** The edited-graph cache folder. */
  graphCache: string;
}

interface TextGraphRecord extends GradientGraphInfo {
  vocab: number;
  width: number;
  table: string;
}

interface UnetGraphRecord extends GradientGraphInfo {
  timestepType: 'float32' | 'int64';
}

const ELEM_INT64 = 7;

function cannotTrain(part: string, err: unknown): never {
  if (err instanceof AutodiffError) throw new TrainError(`cannot train on this model's ${part}: ${err.message}`, { cause: err });
  throw err;
}

function textGraph(path: string, shape: TrainShape, cacheDir: string) {
  return cachedModelEdit<TextGraphRecord>({
    source: path,
    cacheDir,
    label: 'text-encoder-gradient',
    editKey: { batch: shape.batch, sequence: shape.sequence, version: GRADIENT_GRAPH_VERSION },
    edit: (bytes) => {
      const cut = takeInputsEmbeds(bytes);
      const options: GradientGraphOptions = {
        wrt: [cut.input],
        outputs: [LAST_HIDDEN_STATE],
        pinShapes: { ...(cut.keepsInputIds ? { input_ids: [shape.batch, shape.sequence] } : {}), [cut.input]: [shape.batch, shape.sequence, cut.width] },
      };
      const { model, ...info } = buildGradientGraph(cut.model, options);
      return { model, result: { ...info, vocab: cut.vocab, width: cut.width, table: cut.table } };
    },
  });
}

function unetGraph(path: string, shape: TrainShape, width: number, cacheDir: string) {
  return cachedModelEdit<UnetGraphRecord>({
    source: path,
    cacheDir,
    label: 'unet-gradient',
    editKey: { shape, width, version: GRADIENT_GRAPH_VERSION },
    edit: (bytes) => {
      const timestep = ModelProto.decode(bytes).graph.inputs.find((i) => i.name === 'timestep');
      if (!timestep?.tensorType) throw new ModelLoadError(`${path} has no 'timestep' input: not a Stable Diffusion UNet export`);
      const rank = timestep.tensorType.dims?.length ?? 1;
      const options: GradientGraphOptions = {
        wrt: ['encoder_hidden_states'],
        loss: { kind: 'mse', output: 'out_sample' },
        pinShapes: {
          sample: [shape.batch, shape.latentChannels, shape.latentHeight, shape.latentWidth],
          timestep: rank === 0 ? [] : [shape.batch],
          encoder_hidden_states: [shape.batch, shape.sequence, width],
        },
      };
      const { model, ...info } = buildGradientGraph(bytes, options);
      return { model, result: { ...info, timestepType: timestep.tensorType.elemType === ELEM_INT64 ? 'int64' : 'float32' } };
    },
  });
}

/** Builds (or finds in the cache) both graphs for this shape and opens them. */
export async function openTrainSessions(modelDir: string, shape: TrainShape, place: SessionPlace): Promise<TrainSessions> {
  const textPath = `${modelDir}/text_encoder/model.onnx`;
  const unetPath = `${modelDir}/unet/model.onnx`;
  let text: ReturnType<typeof textGraph>;
  try {
    text = textGraph(textPath, shape, place.graphCache);
  } catch (err) {
    cannotTrain('text encoder', err);
  }
  let unet: ReturnType<typeof unetGraph>;
  try {
    unet = unetGraph(unetPath, shape, text.result.width, place.graphCache);
  } catch (err) {
    cannotTrain('UNet', err);
  }
  if (shape.batch > 1 && unet.result.inputs.find((i) => i.name === 'timestep')?.dims.length === 0) {
    throw new TrainError('this UNet export takes one scalar timestep for the whole batch; train with --batch-size 1 (and --gradient-accumulation for a larger effective batch)');
  }
  const table = readTokenTable(textPath, text.result.table);
  const settings = { device: place.device, gradient: true, ...(place.threads ? { threads: place.threads } : {}) };
  const textSession = await openSession(text.path, settings);
  let unetSession: OpenedSession;
  try {
    unetSession = await openSession(unet.path, settings);
  } catch (err) {
    await textSession.session.release();
    throw err;
  }
  return {
    text: { opened: textSession, info: text.result },
    unet: { opened: unetSession, info: unet.result },
    timestepType: unet.result.timestepType,
    table,
    vocab: text.result.vocab,
    width: text.result.width,
    sequence: shape.sequence,
    release: async () => {
      await Promise.all([textSession.session.release(), unetSession.session.release()]);
    },
  };
}

function readTokenTable(textPath: string, name: string): Float32Array {
  const graph = ModelProto.decode(new Uint8Array(readFileSync(textPath))).graph;
  const init = initializers(graph).find((i) => i.name === name);
  if (!init) throw new ModelLoadError(`${textPath}: the token table ${name} is missing`);
  return readFloatInitializer(init, dirname(textPath));
}
