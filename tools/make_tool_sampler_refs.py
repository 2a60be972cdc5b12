"""References from k-diffusion, AUTOMATIC1111 and ComfyUI for the samplers and noise tables they have
and diffusers does not.

- k-diffusion 0.1.1.post1 (installed): sample_dpm_fast and sample_dpm_adaptive on the dummy network
  of sampler_refs_common.py, called as ComfyUI calls them (sigma_max = sigmas[0], sigma_min = the
  last sigma above 0, n = steps), eta 0 (k-diffusion's and ComfyUI's default) and 1 (A1111's),
  every gaussian drawn from a recorded pool.
- A1111_DIR: modules/sd_samplers_extra.py's restart_sampler (lifted with `ast`, as
  make_schedule_refs.py does) on the same network, its noise through the
  `k_diffusion.sampling.torch.randn_like` A1111 patches in, replayed from the pool.
- COMFYUI_DIR: the training sigmas of ComfyUI's ModelSamplingDiscrete (comfy/model_sampling.py and
  make_beta_schedule of comfy/ldm/modules/diffusionmodules/util.py), and A1111's: the LDM
  register_schedule lines A1111 runs (float64 betas and cumprod stored as float32, restated below
  as make_schedule_refs.py does) under k-diffusion's CompVisDenoiser; each tool's Karras schedule on
  its own table.

Run: A1111_DIR=<stable-diffusion-webui> COMFYUI_DIR=<ComfyUI> /opt/diffuse-venv/bin/python tools/make_tool_sampler_refs.py
Writes: test/fixtures/samplers/tool-samplers.json.gz
"""

import json
import math
import types
from pathlib import Path

import numpy as np
import torch

from gzip_json import write_gzip_text
from make_schedule_refs import checkout, load_defs
from sampler_refs_common import OUT_DIR, SD15_CONFIG, SHAPE, PoolNoise, dummy_net, floats, load_k_diffusion
from sampler_refs_loops import k_denoiser

OUT = OUT_DIR / "tool-samplers.json.gz"
POOL = 96


def pool_noise() -> torch.Tensor:
    return torch.randn((POOL,) + SHAPE, generator=torch.Generator().manual_seed(4321), dtype=torch.float32)


def schedules(sampling, k_model, n: int) -> dict:
    return {
        "karras": sampling.get_sigmas_karras(n, float(k_model.sigma_min), float(k_model.sigma_max)).to(torch.float32),
        "uniform": k_model.get_sigmas(n).to(torch.float32),
    }


class CountingModel:
    """The denoiser, counting calls (DPM adaptive's evaluation count is part of what must match)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def dpm_solver_refs(sampling, external, x_noise, pool) -> list:
    cases = []
    for prediction in ("epsilon", "v_prediction"):
        k_model = k_denoiser(external, prediction)
        for name, fn in (("dpm_fast", sampling.sample_dpm_fast), ("dpm_adaptive", sampling.sample_dpm_adaptive)):
            for schedule, n in (("karras", 10), ("uniform", 20), ("karras", 7)):
                if name == "dpm_adaptive" and n != 10:
                    continue
                sigmas = schedules(sampling, k_model, n)[schedule]
                for eta in (0.0, 1.0):
                    noise = PoolNoise(pool)
                    model = CountingModel(k_model)
                    sigma_min = float(sigmas[-1] if sigmas[-1] > 0 else sigmas[-2])
                    kwargs = {"n": n} if name == "dpm_fast" else {}
                    x = fn(model, x_noise * sigmas[0], sigma_min, float(sigmas[0]), **kwargs, disable=True, eta=eta, noise_sampler=noise)
                    cases.append({"sampler": name, "schedule": schedule, "prediction": prediction, "eta": eta,
                                  "sigmas": floats(sigmas), "calls": model.calls, "noise_used": noise.used, "out": floats(x)})
    return cases


def restart_refs(root: Path, sampling, external, x_noise, pool) -> list:
    shim = types.SimpleNamespace(sampling=types.SimpleNamespace(torch=None))
    ns = load_defs(root / "modules" / "sd_samplers_extra.py", ("restart_sampler",),
                   {"torch": torch, "tqdm": __import__("tqdm"), "k_diffusion": shim})
    cases = []
    for prediction in ("epsilon", "v_prediction"):
        k_model = k_denoiser(external, prediction)
        for schedule, n in (("karras", 10), ("karras", 20), ("karras", 24), ("uniform", 20), ("karras", 36), ("karras", 40)):
            if prediction != "epsilon" and n not in (20, 36):
                continue
            sigmas = schedules(sampling, k_model, n)[schedule]
            noise = PoolNoise(pool)
            shim.sampling.torch = types.SimpleNamespace(randn_like=lambda x: noise())
            model = CountingModel(k_model)
            x = ns["restart_sampler"](model, x_noise * sigmas[0], sigmas, disable=True)
            cases.append({"schedule": schedule, "prediction": prediction, "sigmas": floats(sigmas), "calls": model.calls,
                          "noise_used": noise.used, "out": floats(x)})
    return cases


# Models as (diffusers config, ComfyUI sampling_settings): SD 1.x/2.x, and the plain linear betas.
TABLE_MODELS = {
    "sd15": (SD15_CONFIG, {"beta_schedule": "linear", "linear_start": 0.00085, "linear_end": 0.012}),
    "linear": ({"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "num_train_timesteps": 1000},
               {"beta_schedule": "sqrt_linear", "linear_start": 0.0001, "linear_end": 0.02}),
}


def a1111_sigmas(external, config: dict) -> torch.Tensor:
    """A1111's model_wrap.sigmas: LatentDiffusion.register_schedule (float64 betas, np.cumprod, stored
    float32), then k-diffusion's CompVisDenoiser. LDM's "linear" is diffusers' scaled_linear."""
    n = config["num_train_timesteps"]
    if config["beta_schedule"] == "scaled_linear":
        betas = torch.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, n, dtype=torch.float64) ** 2
    else:
        betas = torch.linspace(config["beta_start"], config["beta_end"], n, dtype=torch.float64)
    alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas.numpy(), axis=0), dtype=torch.float32)
    return external.DiscreteEpsDDPMDenoiser(None, alphas_cumprod, quantize=False).sigmas


def table_refs(root: Path, sampling, external) -> dict:
    util = load_defs(root / "comfy" / "ldm" / "modules" / "diffusionmodules" / "util.py", ("make_beta_schedule", "betas_for_alpha_bar"),
                     {"torch": torch, "np": np, "math": math})
    make_betas = lambda *a, **k: torch.as_tensor(util["make_beta_schedule"](*a, **k))  # noqa: E731
    discrete = load_defs(root / "comfy" / "model_sampling.py", ("ModelSamplingDiscrete",),
                         {"torch": torch, "math": math, "make_beta_schedule": make_betas})["ModelSamplingDiscrete"]
    out = {}
    for name, (config, settings) in TABLE_MODELS.items():
        comfy = discrete(types.SimpleNamespace(sampling_settings=settings)).sigmas
        a1111 = a1111_sigmas(external, config)
        out[name] = {
            "config": config,
            "comfyui": floats(comfy),
            "a1111": floats(a1111),
            "comfyui_karras": floats(sampling.get_sigmas_karras(10, float(comfy[0]), float(comfy[-1]))),
            "a1111_karras": floats(sampling.get_sigmas_karras(10, a1111[0].item(), a1111[-1].item())),
        }
    return out


def main() -> None:
    torch.set_num_threads(1)
    sampling, external = load_k_diffusion()
    x_noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1234), dtype=torch.float32)
    pool = pool_noise()
    doc = {"shape": list(SHAPE), "x_noise": floats(x_noise), "noise_pool": floats(pool),
           "dpm_solver": dpm_solver_refs(sampling, external, x_noise, pool)}
    doc["restart"] = restart_refs(checkout("A1111_DIR"), sampling, external, x_noise, pool)
    doc["noise_tables"] = table_refs(checkout("COMFYUI_DIR"), sampling, external)
    write_gzip_text(OUT, json.dumps(doc, separators=(",", ":")) + "\n")
    print("wrote %s (%d bytes): %s" % (OUT, OUT.stat().st_size, ", ".join(k for k in doc if k not in ("shape", "x_noise", "noise_pool"))))


if __name__ == "__main__":
    main()
