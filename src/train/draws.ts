import { TorchCpuRng, type TorchCpuRngState } from '../rng/torch-cpu.js';

/**
 * Every random choice of a training run, from one torch CPU generator seeded with --seed, in a
 * fixed order per batch, so that a run is reproducible and a torch script making the same calls
 * on torch.Generator().manual_seed(seed) draws the same values (tools/make_train_refs.py does):
 *
 *   per item:  the image (the next entry of torch.randperm(images), a new permutation each
 *              epoch), the template (torch.randint(0, templates, (1,))), the flip
 *              (torch.rand(1) < flip_p, drawn even when flip_p is 0, as RandomHorizontalFlip does);
 *   per batch: the VAE sample's eps (torch.randn of the latents' shape, latent_dist.sample()),
 *              the noise (torch.randn_like(latents)), the timesteps (torch.randint(0, T, (batch,))).
 *
 * diffusers' script draws the same kinds of values from Python's and torch's global generators,
 * in an order set by its DataLoader; this stream keeps its distributions, not its order.
 */

export interface ItemDraw {
  image: number;
  template: number;
  flip: boolean;
}

export interface BatchDraw {
  items: ItemDraw[];
  /** [batch, channels, h, w] standard normals for mean + std · eps. */
  latentEps: Float32Array;
  noise: Float32Array;
  timesteps: number[];
}

export interface DrawsState {
  rng: TorchCpuRngState;
  order: number[];
  position: number;
}

export interface DrawsShape {
  images: number;
  templates: number;
  flipP: number;
  trainTimesteps: number;
  /** Values per item of the latents (channels · h · w). */
  latentSize: number;
}

export class TrainingDraws {
  private readonly rng: TorchCpuRng;
  private order: number[] = [];
  private position = 0;

  constructor(
    seed: number,
    private readonly shape: DrawsShape,
  ) {
    this.rng = new TorchCpuRng(seed);
  }

  next(batch: number): BatchDraw {
    const { images, templates, flipP, trainTimesteps, latentSize } = this.shape;
    const items: ItemDraw[] = [];
    for (let b = 0; b < batch; b++) {
      if (this.position >= this.order.length) {
        this.order = this.rng.randperm(images);
        this.position = 0;
      }
      const image = this.order[this.position++]!;
      const template = this.rng.randint(0, templates, 1)[0]!;
      const flip = this.rng.rand(1)[0]! < flipP;
      items.push({ image, template, flip });
    }
    const latentEps = this.rng.randn(batch * latentSize);
    const noise = this.rng.randn(batch * latentSize);
    const timesteps = this.rng.randint(0, trainTimesteps, batch);
    return { items, latentEps, noise, timesteps };
  }

  snapshot(): DrawsState {
    return { rng: this.rng.snapshot(), order: [...this.order], position: this.position };
  }

  restore(state: DrawsState): void {
    this.rng.restore(state.rng);
    this.order = [...state.order];
    this.position = state.position;
  }
}
