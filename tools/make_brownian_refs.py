"""Reference Brownian-tree noise for src/rng/brownian-tree.ts and src/rng/seed-sequence.ts.

    /opt/diffuse-venv/bin/python tools/make_brownian_refs.py

Writes test/fixtures/brownian/:
- seed_sequence.json: numpy.random.SeedSequence(entropy, spawn_key=..., pool_size=...).generate_state(n)
  for the entropies, spawn keys and pool sizes torchsde uses (and edge cases of numpy's coercion).
- noise.json + noise.bin: k-diffusion's BrownianTreeNoiseSampler (torchsde.BrownianTree underneath,
  torch CPU generator, float32) queried exactly as k-diffusion's samplers query it: every
  (sigma, sigma_next) a real sample_dpmpp_2m_sde / _3m_sde / sample_dpmpp_sde loop passes to its
  noise_sampler (recorded by wrapping the sampler), the noise returned, and for each loop the
  starting latents and the loop's final output with a dummy denoiser (x -> 0.8 x), so the
  samplers can be checked end to end. The seed conventions:
  - A1111 / k-diffusion with a list: one tree per image, seeds[i] for image i;
  - ComfyUI: one int seed, one tree over the whole batch tensor.
  noise.bin is little-endian float32; noise.json gives each array's offset (in floats) and length.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_refs_common import load_k_diffusion  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "brownian"

# ---------------------------------------------------------------- SeedSequence

ENTROPIES = [0, 1, 42, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, 12345678901234567890123456789, 2**800 + 12345]
SPAWN_KEYS = [(), (0, 0), (1, 1), (5, 3), (2**24 + 3, 25), (2**32 + 7, 40), (7,)]
POOL_SIZES = [4, 8, 24]


def seed_sequence_cases() -> list:
    cases = []
    for entropy in ENTROPIES:
        for spawn_key in SPAWN_KEYS:
            for pool_size in POOL_SIZES:
                words = np.random.SeedSequence(entropy, spawn_key=spawn_key, pool_size=pool_size).generate_state(10)
                cases.append(
                    {
                        "entropy": str(entropy),
                        "spawn_key": [str(k) for k in spawn_key],
                        "pool_size": pool_size,
                        "words": [int(w) for w in words],
                    }
                )
    # A list of ints as entropy concatenates their words.
    for entropy in ([1, 2, 3], [2**40 + 5, 9]):
        words = np.random.SeedSequence(entropy, spawn_key=(3, 2), pool_size=24).generate_state(4)
        cases.append(
            {"entropy": [str(e) for e in entropy], "spawn_key": ["3", "2"], "pool_size": 24, "words": [int(w) for w in words]}
        )
    return cases


# ---------------------------------------------------------------- Brownian noise


def sd15_sigma_range() -> tuple:
    """SD 1.5's sigma_min / sigma_max as k-diffusion's DiscreteSchedule holds them (float32)."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
    return sigmas[0].item(), sigmas[-1].item()


class Recorder:
    """Wraps a noise sampler and keeps every query and answer."""

    def __init__(self, inner):
        self.inner = inner
        self.queries = []
        self.scales = []
        self.noise = []

    def __call__(self, sigma, sigma_next):
        out = self.inner(sigma, sigma_next)
        self.queries.append([float(torch.as_tensor(sigma)), float(torch.as_tensor(sigma_next))])
        # The sampler's divisor as torch computed it: on x86 torch's CPU sqrt is MKL's, within
        # 1 ulp but not correctly rounded (CUDA's and ours are), so tests separate the two.
        self.scales.append(float((torch.as_tensor(sigma_next) - torch.as_tensor(sigma)).abs().sqrt()))
        self.noise.append(out.numpy().astype(np.float32))
        return out


class Writer:
    def __init__(self):
        self.chunks = []
        self.offset = 0

    def add(self, array) -> dict:
        flat = np.ascontiguousarray(array, dtype="<f4").reshape(-1)
        self.chunks.append(flat)
        ref = {"offset": self.offset, "length": int(flat.size)}
        self.offset += flat.size
        return ref


def loop_case(sampling, writer, name, sampler, steps, shape, seed, extra=None) -> dict:
    sigma_min, sigma_max = sd15_sigma_range()
    sigmas = sampling.get_sigmas_karras(steps, sigma_min, sigma_max)
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(1000 + steps), dtype=torch.float32) * sigmas[0]
    lo, hi = sigmas[sigmas > 0].min(), sigmas.max()
    noise = Recorder(sampling.BrownianTreeNoiseSampler(x0, lo, hi, seed=seed))
    model = lambda x, sigma: x * 0.8  # exact in float32, so the loop check isolates the noise
    out = getattr(sampling, sampler)(model, x0.clone(), sigmas, disable=True, noise_sampler=noise, **(extra or {}))
    return {
        "name": name,
        "sampler": sampler,
        "extra": extra or {},
        "shape": list(shape),
        "seed": [str(s) for s in seed] if isinstance(seed, list) else str(seed),
        "sigma_min": float(lo),
        "sigma_max": float(hi),
        "sigmas": [float(s) for s in sigmas],
        "queries": noise.queries,
        "scales": noise.scales,
        "noise": [writer.add(n) for n in noise.noise],
        "x0": writer.add(x0.numpy()),
        "out": writer.add(out.numpy()),
    }


def free_case(sampling, writer, name, shape, seed, sigma_min, sigma_max, queries) -> dict:
    """Arbitrary query order, repeated and reversed intervals, and a tree smaller than 16 values
    (torch's scalar randn path)."""
    f32 = lambda v: torch.tensor(v, dtype=torch.float32)
    x = torch.zeros(shape, dtype=torch.float32)
    noise = Recorder(sampling.BrownianTreeNoiseSampler(x, f32(sigma_min), f32(sigma_max), seed=seed))
    for a, b in queries:
        noise(f32(a), f32(b))
    return {
        "name": name,
        "shape": list(shape),
        "seed": [str(s) for s in seed] if isinstance(seed, list) else str(seed),
        "sigma_min": float(f32(sigma_min)),
        "sigma_max": float(f32(sigma_max)),
        "queries": noise.queries,
        "scales": noise.scales,
        "noise": [writer.add(n) for n in noise.noise],
    }


def noise_cases() -> tuple:
    sampling, _ = load_k_diffusion()
    writer = Writer()
    loops = [
        loop_case(sampling, writer, "a1111 2m_sde karras 10", "sample_dpmpp_2m_sde", 10, (1, 4, 8, 8), [1234]),
        loop_case(sampling, writer, "a1111 batch 2m_sde karras 25", "sample_dpmpp_2m_sde", 25, (2, 4, 8, 8), [42, 43]),
        loop_case(sampling, writer, "comfy batch 2m_sde karras 25", "sample_dpmpp_2m_sde", 25, (2, 4, 8, 8), 42),
        loop_case(
            sampling, writer, "comfy 2m_sde heun, seed 2^64-1", "sample_dpmpp_2m_sde", 10, (1, 4, 8, 8), 2**64 - 1,
            {"solver_type": "heun"},
        ),
        loop_case(sampling, writer, "a1111 3m_sde karras 10", "sample_dpmpp_3m_sde", 10, (1, 4, 8, 8), [2**32 - 1]),
        loop_case(sampling, writer, "a1111 dpmpp_sde karras 10", "sample_dpmpp_sde", 10, (1, 4, 8, 8), [7]),
        loop_case(sampling, writer, "a1111 batch dpmpp_sde karras 25", "sample_dpmpp_sde", 25, (2, 4, 8, 8), [100, 101]),
        loop_case(sampling, writer, "comfy dpmpp_sde karras 10, seed 2^63-1", "sample_dpmpp_sde", 10, (1, 4, 8, 8), 2**63 - 1),
    ]
    queries = [(5.0, 2.5), (0.1, 0.2), (2.5, 5.0), (0.05, 9.99), (9.99, 0.05), (1.234567, 1.234569), (0.05, 10.0)]
    free = [
        free_case(sampling, writer, "tiny tree, scalar randn path", (1, 1, 2, 3), 0, 0.05, 10.0, queries),
        free_case(sampling, writer, "tiny batch, per-image seeds", (2, 1, 2, 3), [5, 2**40], 0.05, 10.0, queries),
        free_case(sampling, writer, "comfy one tree over a batch", (2, 4, 4, 4), 99, 0.05, 10.0, queries),
    ]
    return loops, free, np.concatenate(writer.chunks)


def main() -> None:
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "seed_sequence.json").write_text(
        json.dumps({"source": f"numpy {np.__version__}", "cases": seed_sequence_cases()}) + "\n"
    )
    loops, free, data = noise_cases()
    import torchsde

    (OUT_DIR / "noise.bin").write_bytes(data.astype("<f4").tobytes())
    payload = {"source": f"torch {torch.__version__}, torchsde {torchsde.__version__}, k-diffusion 0.1.1 (CPU)", "loops": loops, "free": free}
    (OUT_DIR / "noise.json").write_text(json.dumps(payload) + "\n")
    for path in sorted(OUT_DIR.iterdir()):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
