"""Reference runs of diffusers' timestep-defined schedulers for src/schedulers/vp-*.ts.

Each case runs a full denoising loop the way a diffusers pipeline does (initial latents from the
generator, scale_model_input, UNet, scheduler.step with the same generator), over a 2x4x4x4 latent,
with a deterministic stand-in for the UNet that the TypeScript test defines identically:

    out = tanh(0.5 * x_in + 0.1 * sin(t / 100))   (read as epsilon or v by the scheduler config)

Schedulers are built from Stable Diffusion 1.5's scheduler_config.json exactly as a pipeline swaps
them (`Cls.from_config(pipe.scheduler.config)`), so they inherit what SD 1.5 ships and keep their own
defaults for the keys the config leaves at default (UniPC and DEIS keep 'linspace' spacing).
Every gaussian draw the scheduler makes is recorded so the test can replay it through a NoiseSource.

ComfyUI's uni_pc / uni_pc_bh2 (comfy/extra_samplers/uni_pc.py, sample_unipc) are run too when
COMFYUI_DIR points at a ComfyUI checkout (ComfyUI is not on PyPI; that file needs only torch and tqdm):
its sigma-space loop driven by a k-diffusion-style denoiser around the same dummy UNet.

Run: /opt/diffuse-venv/bin/python tools/make_vp_refs.py
     COMFYUI_DIR=/path/to/ComfyUI /opt/diffuse-venv/bin/python tools/make_vp_refs.py
Writes: test/fixtures/vp-samplers/refs.json.gz (and comfy-unipc.json with COMFYUI_DIR)
"""

import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DEISMultistepScheduler,
    LCMScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers import (
    scheduling_ddim,
    scheduling_ddpm,
    scheduling_lcm,
)
from diffusers.utils.torch_utils import randn_tensor

from gzip_json import write_gzip_text
from sampler_refs_common import SD15_CONFIG as SD15_SCHEDULER_CONFIG

FIXTURES = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "vp-samplers"
OUT = FIXTURES / "refs.json.gz"
COMFY_OUT = FIXTURES / "comfy-unipc.json"


SHAPE = (2, 4, 4, 4)
SEED = 20240611
# 7 does not divide 1000: with trailing spacing it exercises the "t - 1000 // steps" quirk of DDIM and PNDM.
STEPS = (5, 7, 10, 25)

# name -> (scheduler class, config overrides, extra step() kwargs, whether step() takes the generator)
SCHEDULERS = {
    "ddim": (DDIMScheduler, {}, {"eta": 0.0}, True),
    "ddim_eta0.5": (DDIMScheduler, {}, {"eta": 0.5}, True),
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}, {}, False),
    "pndm_prk": (PNDMScheduler, {"skip_prk_steps": False}, {}, False),
    "unipc": (UniPCMultistepScheduler, {}, {}, False),
    "deis": (DEISMultistepScheduler, {}, {}, False),
    "lcm": (LCMScheduler, {}, {}, True),
    "ddpm": (DDPMScheduler, {}, {}, True),
}

CONFIGS = {
    "sd15": {},
    "sd15_trailing": {"timestep_spacing": "trailing"},
    "sd15_v": {"prediction_type": "v_prediction"},
    # The zero terminal SNR recipe; PNDM and DEIS have no rescale_betas_zero_snr, so they sit it out.
    "sd15_v_zsnr": {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
}
ZERO_SNR_SCHEDULERS = ("ddim", "ddim_eta0.5", "unipc", "lcm", "ddpm")

# Modules whose step() draws noise through their own imported name `randn_tensor`.
NOISE_MODULES = (scheduling_ddim, scheduling_ddpm, scheduling_lcm)


def dummy_unet(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.tanh(0.5 * x + 0.1 * torch.sin(t.to(torch.float32) / 100))


def floats(t: torch.Tensor) -> list:
    # 9 significant digits round-trip float32 exactly while keeping the JSON small.
    return [float("%.9g" % v) for v in t.detach().to(torch.float32).flatten().tolist()]


def run_case(cls, overrides: dict, step_kwargs: dict, takes_generator: bool, steps: int) -> dict:
    base = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    scheduler = cls.from_config(base.config, **overrides)
    scheduler.set_timesteps(steps)

    generator = torch.Generator("cpu").manual_seed(SEED)
    latents = randn_tensor(SHAPE, generator=generator, dtype=torch.float32) * scheduler.init_noise_sigma

    draws = []

    def recording_randn(*args, **kwargs):
        sample = randn_tensor(*args, **kwargs)
        draws.append(floats(sample))
        return sample

    for module in NOISE_MODULES:
        module.randn_tensor = recording_randn
    try:
        unet_timesteps = []
        for t in scheduler.timesteps:
            model_in = scheduler.scale_model_input(latents, t)
            out = dummy_unet(model_in, t)
            unet_timesteps.append(int(t))
            kwargs = dict(step_kwargs)
            if takes_generator:
                kwargs["generator"] = generator
            latents = scheduler.step(out, t, latents, **kwargs).prev_sample
    finally:
        for module in NOISE_MODULES:
            module.randn_tensor = randn_tensor

    return {
        "unetTimesteps": unet_timesteps,
        "noise": draws,
        "final": floats(latents),
    }


def sampler_timesteps(cls, overrides: dict, steps: int) -> list:
    """The distinct timesteps the sampler walks, i.e. what the TS side receives as sigmas."""
    base = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    scheduler = cls.from_config(base.config, **overrides)
    scheduler.set_timesteps(steps)
    if isinstance(scheduler, PNDMScheduler):
        # PNDM's list repeats timesteps (PLMS warm-up) and adds half steps (PRK); the walk is _timesteps.
        return sorted({int(t) for t in scheduler._timesteps}, reverse=True)
    return [int(t) for t in scheduler.timesteps]


def main() -> None:
    base = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    generator = torch.Generator("cpu").manual_seed(SEED)
    init = randn_tensor(SHAPE, generator=generator, dtype=torch.float32)

    cases = []
    for config_name, config_overrides in CONFIGS.items():
        for name, (cls, overrides, step_kwargs, takes_generator) in SCHEDULERS.items():
            if config_overrides.get("rescale_betas_zero_snr") and name not in ZERO_SNR_SCHEDULERS:
                continue
            merged = {**config_overrides, **overrides}
            for steps in STEPS:
                result = run_case(cls, merged, step_kwargs, takes_generator, steps)
                cases.append(
                    {
                        "scheduler": name,
                        "config": config_name,
                        "predictionType": merged.get("prediction_type", "epsilon"),
                        "rescaleBetasZeroSnr": merged.get("rescale_betas_zero_snr", False),
                        "timestepSpacing": merged.get("timestep_spacing", "default"),
                        "steps": steps,
                        "eta": step_kwargs.get("eta", 0.0),
                        "timesteps": sampler_timesteps(cls, merged, steps),
                        **result,
                    }
                )

    lcm = LCMScheduler.from_config(base.config)
    lcm_timesteps = {}
    for steps in range(1, 51):
        lcm.set_timesteps(steps)
        lcm_timesteps[str(steps)] = [int(t) for t in lcm.timesteps]

    doc = {
        "about": "diffusers %s scheduler loops on a dummy UNet, see tools/make_vp_refs.py"
        % __import__("diffusers").__version__,
        "unet": "tanh(0.5 * x + 0.1 * sin(t / 100))",
        "shape": list(SHAPE),
        "seed": SEED,
        "numTrainTimesteps": base.config.num_train_timesteps,
        "finalAlphaCumprod": float(base.final_alpha_cumprod),
        "alphasCumprod": floats(base.alphas_cumprod),
        "initLatents": floats(init),
        "lcmTimesteps": lcm_timesteps,
        "cases": cases,
    }
    assert all(math.isfinite(v) for c in cases for v in c["final"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_gzip_text(OUT, json.dumps(doc, separators=(",", ":")) + "\n")
    print("wrote %s: %d cases, %d bytes" % (OUT, len(cases), OUT.stat().st_size))


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """k-diffusion get_sigmas_karras (float32), with the final 0."""
    ramp = torch.linspace(0, 1, n)
    min_inv_rho = sigma_min ** (1 / rho)
    max_inv_rho = sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def simple_sigmas(model_sigmas: torch.Tensor, n: int) -> torch.Tensor:
    """ComfyUI simple_scheduler: every len/n-th training sigma from the top, with the final 0."""
    stride = len(model_sigmas) / n
    picked = [float(model_sigmas[-(1 + int(x * stride))]) for x in range(n)]
    return torch.tensor(picked + [0.0], dtype=torch.float32)


def make_comfy_refs(comfyui_dir: str) -> None:
    path = Path(comfyui_dir) / "comfy" / "extra_samplers" / "uni_pc.py"
    spec = importlib.util.spec_from_file_location("comfy_uni_pc", path)
    uni_pc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(uni_pc)

    base = PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)
    model_sigmas = ((1 - base.alphas_cumprod) / base.alphas_cumprod) ** 0.5
    log_sigmas = np.log(model_sigmas.to(torch.float64).numpy())

    def sigma_to_t(sigma: float) -> float:
        # k-diffusion's log-sigma interpolation, in float64 like the TS denoiser's.
        log_sigma = math.log(sigma)
        low = int(np.clip(np.searchsorted(log_sigmas, log_sigma, side="right") - 1, 0, len(log_sigmas) - 2))
        w = (log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1])
        w = min(max(w, 0.0), 1.0)
        return (1 - w) * low + w * (low + 1)

    def denoiser(prediction_type: str):
        # A ComfyUI model call: sigma-space x in, x0 out (c_in, then eps or v back to x0).
        def model(x: torch.Tensor, sigma: torch.Tensor, **kwargs) -> torch.Tensor:
            s = sigma.view(-1, 1, 1, 1)
            c_in = 1 / (s * s + 1) ** 0.5
            t = torch.tensor([sigma_to_t(float(v)) for v in sigma], dtype=torch.float32).view(-1, 1, 1, 1)
            out = dummy_unet(x * c_in, t)
            if prediction_type == "epsilon":
                return x - s * out
            return x * (1 / (s * s + 1)) - out * (s * c_in)

        return model

    generator = torch.Generator("cpu").manual_seed(SEED)
    init = randn_tensor(SHAPE, generator=generator, dtype=torch.float32)
    cases = []
    for prediction_type in ("epsilon", "v_prediction"):
        for schedule in ("karras", "simple"):
            for steps in STEPS:
                if schedule == "karras":
                    sigmas = karras_sigmas(steps, float(model_sigmas[0]), float(model_sigmas[-1]))
                else:
                    sigmas = simple_sigmas(model_sigmas, steps)
                for variant in ("bh1", "bh2"):
                    x = init * torch.sqrt(1 + sigmas[0] ** 2)
                    result = uni_pc.sample_unipc(
                        denoiser(prediction_type), x, sigmas.clone(), extra_args={}, disable=True, variant=variant
                    )
                    cases.append(
                        {
                            "variant": variant,
                            "predictionType": prediction_type,
                            "schedule": schedule,
                            "steps": steps,
                            "sigmas": floats(sigmas),
                            "final": floats(result),
                        }
                    )
    doc = {
        "about": "ComfyUI comfy/extra_samplers/uni_pc.py sample_unipc on a dummy UNet, see tools/make_vp_refs.py",
        "unet": "tanh(0.5 * x + 0.1 * sin(t / 100))",
        "shape": list(SHAPE),
        "initLatents": floats(init),
        "cases": cases,
    }
    COMFY_OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print("wrote %s: %d cases, %d bytes" % (COMFY_OUT, len(cases), COMFY_OUT.stat().st_size))


if __name__ == "__main__":
    main()
    if os.environ.get("COMFYUI_DIR"):
        make_comfy_refs(os.environ["COMFYUI_DIR"])
    else:
        print("COMFYUI_DIR not set: kept %s as it is" % COMFY_OUT.name)
