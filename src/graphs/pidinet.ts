import { ElemType } from '../onnx/proto.js';
import { conv2d, scopeOf, type Net } from './layers.js';
import { GraphBuilder, type PendingWeight } from './onnx-builder.js';
import { checkStateDict, storedPrefix } from './state-dict-check.js';
import { ComponentWeights, type TensorStore } from './weights.js';

/**
 * PiDiNet (Su et al. 2021; controlnet_aux.pidi's and sd-webui-controlnet's annotator/pidinet `pidinet()`: PiDiNet(60,
 * 'carv4', dil=24, sa=True); weights table5_pidinet.pth in lllyasviel/Annotators, keys under `module.` as DataParallel
 * saved them). Its pixel-difference convolutions are built as the plain convolutions they equal (the paper's
 * section 3.3, the repo's convert_pidinet), so the graph is ordinary Conv nodes:
 *   cv: the kernel as it is;
 *   cd (central difference, sum of w·(x_i - x_centre)): the kernel with its sum taken off the centre tap;
 *   ad (angular difference, sum of w_i·(x_i - x_next clockwise)): w - w permuted clockwise;
 *   rd (radial difference, sum of w_i·(x_outer_i - x_inner_i)): a 5x5 kernel, w on the outer ring, -w on the inner.
 * Layers 0..15 (the initial convolution, then the 15 blocks' depthwise convolutions) cycle cd, ad, rd, cv.
 * Each of the four stages' output goes through a CDCM (four dilated 3x3 convolutions), a CSAM (spatial attention) and
 * a 1x1 reduction to one channel, resized bilinearly to the picture (align_corners=False); a 1x1 classifier mixes the
 * four and a sigmoid makes the edge map. The network was trained on BGR: the graph takes RGB and reverses the first
 * convolution's input channels instead.
 */

type Pdc = 'cv' | 'cd' | 'ad' | 'rd';
/** 'carv4': layer i's pixel difference. */
const pdcOf = (layer: number): Pdc => (['cd', 'ad', 'rd', 'cv'] as const)[layer % 4]!;

const INPLANE = 60;
const DIL = 24;
/** Each stage's channels and blocks (the first of stages 2..4 halves the size: a 2x2 max pool and a 1x1 shortcut). */
const STAGES: ReadonlyArray<{ channels: number; blocks: number }> = [
  { channels: INPLANE, blocks: 3 },
  { channels: 2 * INPLANE, blocks: 4 },
  { channels: 4 * INPLANE, blocks: 4 },
  { channels: 4 * INPLANE, blocks: 4 },
];
const DILATIONS = [5, 7, 9, 11];

/** The key prefix table5_pidinet.pth has (a state dict saved without it is taken too, as controlnet_aux strips it). */
const PREFIX = 'module.';

/** Every tensor of table5_pidinet.pth (after `prefix`) and its shape. */
export function pidinetTensorShapes(prefix = PREFIX): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const set = (key: string, shape: number[]): void => void shapes.set(`${prefix}${key}`, shape);
  set('init_block.weight', [INPLANE, 3, 3, 3]);
  let inChannels = INPLANE;
  STAGES.forEach(({ channels, blocks }, s) => {
    for (let b = 0; b < blocks; b++) {
      const path = `block${s + 1}_${b + 1}`;
      const from = b === 0 ? inChannels : channels;
      if (s > 0 && b === 0) {
        set(`${path}.shortcut.weight`, [channels, from, 1, 1]);
        set(`${path}.shortcut.bias`, [channels]);
      }
      set(`${path}.conv1.weight`, [from, 1, 3, 3]);
      set(`${path}.conv2.weight`, [channels, from, 1, 1]);
    }
    set(`dilations.${s}.conv1.weight`, [DIL, channels, 1, 1]);
    set(`dilations.${s}.conv1.bias`, [DIL]);
    DILATIONS.forEach((_, d) => set(`dilations.${s}.conv2_${d + 1}.weight`, [DIL, DIL, 3, 3]));
    set(`attentions.${s}.conv1.weight`, [4, DIL, 1, 1]);
    set(`attentions.${s}.conv1.bias`, [4]);
    set(`attentions.${s}.conv2.weight`, [1, 4, 3, 3]);
    set(`conv_reduces.${s}.conv.weight`, [1, DIL, 1, 1]);
    set(`conv_reduces.${s}.conv.bias`, [1]);
    inChannels = channels;
  });
  set('classifier.weight', [1, 4, 1, 1]);
  set('classifier.bias', [1]);
  return shapes;
}

/** Clockwise neighbour of each 3x3 tap (row-major), as the paper's APDC pairs them; the centre pairs with itself. */
const CLOCKWISE = [3, 0, 1, 6, 4, 2, 7, 8, 5];
/** RPDC: where a 3x3 kernel's eight outer taps land on the 5x5 ring, and on the ring inside it. */
const OUTER_RING = [0, 2, 4, 10, 14, 20, 22, 24];
const INNER_RING = [6, 7, 8, 11, 13, 16, 17, 18];

/** The plain kernel (3x3, or 5x5 for rd) a pixel-difference kernel `w` [n, 3, 3] equals. */
export function vanillaKernel(pdc: Pdc, w: Float32Array): Float32Array {
  const n = w.length / 9;
  if (pdc === 'cv') return w;
  if (pdc === 'rd') {
    const out = new Float32Array(n * 25);
    for (let k = 0; k < n; k++) {
      for (let t = 0; t < 8; t++) {
        out[k * 25 + OUTER_RING[t]!] = w[k * 9 + t + 1]!;
        out[k * 25 + INNER_RING[t]!] = -w[k * 9 + t + 1]!;
      }
    }
    return out;
  }
  const out = new Float32Array(w.length);
  for (let k = 0; k < n; k++) {
    const at = k * 9;
    if (pdc === 'ad') {
      for (let t = 0; t < 9; t++) out[at + t] = w[at + t]! - w[at + CLOCKWISE[t]!]!;
    } else {
      // torch sums the kernel in float32 (weights.sum(dim=[2, 3])) and subtracts a separate 1x1 convolution's output.
      let sum = 0;
      for (let t = 0; t < 9; t++) sum = Math.fround(sum + w[at + t]!);
      for (let t = 0; t < 9; t++) out[at + t] = t === 4 ? w[at + t]! - sum : w[at + t]!;
    }
  }
  return out;
}

/** A pixel-difference convolution (`groups` 1 or depthwise) as the plain Conv it equals; no bias. */
function pdcConv(net: Net, path: string, x: string, pdc: Pdc, groups: number, reverseInput = false): string {
  const stored = net.w.take(`${path}.weight`, 'as-is', [undefined, undefined, 3, 3]);
  const [out, inPerGroup] = stored.dims as [number, number];
  const size = pdc === 'rd' ? 5 : 3;
  const weight: PendingWeight = {
    name: stored.name,
    dims: [out, inPerGroup, size, size],
    read: async () => {
      const w = await stored.read();
      return vanillaKernel(pdc, reverseInput ? reverseChannels(w, out, inPerGroup, 9) : w);
    },
  };
  const pad = (size - 1) / 2;
  return net.g.op('Conv', [x, net.g.weight(weight)], scopeOf(path), { kernel_shape: [size, size], pads: [pad, pad, pad, pad], strides: [1, 1], dilations: [1, 1], group: groups });
}

/** [out, in, k] with the `in` axis reversed (BGR weights read by RGB planes). */
function reverseChannels(w: Float32Array, out: number, inChannels: number, k: number): Float32Array {
  const r = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inChannels; i++) r.set(w.subarray((o * inChannels + i) * k, (o * inChannels + i + 1) * k), (o * inChannels + inChannels - 1 - i) * k);
  return r;
}

/** PDCBlock: [max pool,] depthwise pixel-difference conv, ReLU, 1x1 conv, plus the input (or its 1x1 shortcut). */
function pdcBlock(net: Net, path: string, x: string, pdc: Pdc, inChannels: number, outChannels: number, downsample: boolean): string {
  const { g } = net;
  const scope = scopeOf(path);
  const input = downsample ? g.op('MaxPool', [x], scope, { kernel_shape: [2, 2], strides: [2, 2] }) : x;
  const y = g.op('Relu', [pdcConv(net, `${path}.conv1`, input, pdc, inChannels)], scope);
  const mixed = conv2d(net, `${path}.conv2`, y, inChannels, outChannels, { bias: false });
  const skip = downsample ? conv2d(net, `${path}.shortcut`, input, inChannels, outChannels) : input;
  return g.op('Add', [mixed, skip], scope);
}

/** CDCM then CSAM then MapReduce: one stage's features to a one-channel edge map at the stage's size. */
function sideOutput(net: Net, s: number, x: string, channels: number): string {
  const { g } = net;
  const cdcm = `dilations.${s}`;
  const reduced = conv2d(net, `${cdcm}.conv1`, g.op('Relu', [x], scopeOf(cdcm)), channels, DIL);
  const branches = DILATIONS.map((d, k) => {
    const path = `${cdcm}.conv2_${k + 1}`;
    const weight = g.weight(net.w.take(`${path}.weight`, 'as-is', [DIL, DIL, 3, 3]));
    return g.op('Conv', [reduced, weight], scopeOf(path), { kernel_shape: [3, 3], pads: [d, d, d, d], strides: [1, 1], dilations: [d, d], group: 1 });
  });
  const dilated = branches.slice(1).reduce((sum, b) => g.op('Add', [sum, b], scopeOf(cdcm)), branches[0]!);
  const csam = `attentions.${s}`;
  const squeezed = conv2d(net, `${csam}.conv1`, g.op('Relu', [dilated], scopeOf(csam)), DIL, 4);
  const mask = g.op('Sigmoid', [conv2d(net, `${csam}.conv2`, squeezed, 4, 1, { bias: false })], scopeOf(csam));
  return conv2d(net, `conv_reduces.${s}.conv`, g.op('Mul', [dilated, mask], scopeOf(csam)), DIL, 1);
}

/** image [1, 3, H, W] (RGB / 255; sides multiples of 8) -> edge [1, 1, H, W] in 0..1. */
export function buildPidinet(store: TensorStore): GraphBuilder {
  const prefix = storedPrefix(store, 'init_block.weight', [PREFIX, '']);
  checkStateDict(store, pidinetTensorShapes(prefix), "PiDiNet's table5_pidinet.pth", "lllyasviel/Annotators' table5_pidinet.pth");
  const g = new GraphBuilder('pidinet', 'float32');
  const net: Net = { g, w: new ComponentWeights('PiDiNet', store, (name) => ({ key: `${prefix}${name}` })) };
  const image = g.input('image', ElemType.FLOAT, [1, 3, 'height', 'width']);
  const size = g.op('Slice', [g.op('Shape', [image], '/size'), g.ints([2]), g.ints([4])], '/size');
  const fullSize = g.op('Concat', [g.ints([1, 1]), size], '/size', { axis: 0 });

  let h = pdcConv(net, 'init_block', image, pdcOf(0), 1, true);
  let layer = 1;
  let inChannels = INPLANE;
  const sides: string[] = [];
  STAGES.forEach(({ channels, blocks }, s) => {
    for (let b = 0; b < blocks; b++, layer++) {
      const downsample = s > 0 && b === 0;
      h = pdcBlock(net, `block${s + 1}_${b + 1}`, h, pdcOf(layer), downsample ? inChannels : channels, channels, downsample);
    }
    const side = sideOutput(net, s, h, channels);
    sides.push(g.op('Resize', [side, '', '', fullSize], `/side${s + 1}`, { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }));
    inChannels = channels;
  });
  const fused = conv2d(net, 'classifier', g.op('Concat', sides, '/classifier', { axis: 1 }), 4, 1);
  g.output(g.op('Sigmoid', [fused], '/edge'), 'edge', ElemType.FLOAT, [1, 1, 'height', 'width']);
  return g;
}
