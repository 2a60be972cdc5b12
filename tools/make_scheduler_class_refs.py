"""References for diffusers' scheduler classes as src/schedulers reads them (diffusers 0.32.2).

- defaults: each class built from configs that leave keys out, straight (`Cls.from_config(file)`),
  through another class (`Cls.from_config(PNDMScheduler.from_config(file).config)`: diffusers keeps
  only the file's keys) and from a config saved by another class (every key written out): the keys
  diffuse reads, alphas_cumprod at probe timesteps, final_alpha_cumprod, and set_timesteps(10)'s
  timesteps, sigmas and init_noise_sigma.
- spacing: every class's set_timesteps for each timestep_spacing (and final_sigmas_type sigma_min,
  use_karras_sigmas, use_lu_lambdas, rescale_betas_zero_snr where the class has them) at 1-25 steps.
- loops: whole denoising loops on make_vp_refs.py's dummy UNet, driven as a pipeline drives them,
  every gaussian the scheduler draws recorded: DPMSolverSinglestep, TCD, DDIM/DDPM with clip_sample
  and thresholding, final_sigmas_type sigma_min, use_lu_lambdas, UniPC/DEIS use_karras_sigmas,
  zero-SNR Euler (ancestral) and DPM-Solver, other spacings.
- inversion: DDIMInverseScheduler loops from clean latents upwards.

Run: /opt/diffuse-venv/bin/python tools/make_scheduler_class_refs.py
Writes: test/fixtures/samplers/classes.json.gz
"""

import json
import math
from pathlib import Path

import torch
import diffusers
from diffusers.schedulers import (
    scheduling_ddim,
    scheduling_ddpm,
    scheduling_dpmsolver_multistep,
    scheduling_euler_ancestral_discrete,
    scheduling_tcd,
)
from diffusers.utils.torch_utils import randn_tensor

from gzip_json import write_gzip_text
from sampler_refs_common import SD15_CONFIG

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "samplers" / "classes.json.gz"
SHAPE = (2, 4, 4, 4)
SEED = 20240611

CLASSES = [
    "DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler", "KDPM2DiscreteScheduler", "KDPM2AncestralDiscreteScheduler", "LMSDiscreteScheduler",
    "DPMSolverSDEScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler",
    "DEISMultistepScheduler", "LCMScheduler", "TCDScheduler",
]
READ_KEYS = [
    "num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "prediction_type", "timestep_spacing",
    "steps_offset", "set_alpha_to_one", "rescale_betas_zero_snr", "clip_sample", "clip_sample_range", "thresholding",
    "dynamic_thresholding_ratio", "sample_max_value", "final_sigmas_type", "original_inference_steps", "lower_order_final",
]
PROBES = [0, 1, 250, 500, 998, 999]
# Modules whose step() draws noise through their own imported name `randn_tensor`.
NOISE_MODULES = (scheduling_ddim, scheduling_ddpm, scheduling_tcd, scheduling_dpmsolver_multistep, scheduling_euler_ancestral_discrete)


def floats(t) -> list:
    # 9 significant digits round-trip float32 exactly while keeping the JSON small.
    return [float("%.9g" % v) for v in torch.as_tensor(t).detach().to(torch.float32).flatten().tolist()]


def cls_of(name):
    return getattr(diffusers, name)


def distinct(values) -> list:
    """Consecutive repeats dropped: Heun and the KDPM2 pair repeat sigmas for their second evaluations."""
    out = []
    for v in values:
        if not out or v != out[-1]:
            out.append(v)
    return out


def timestep_record(scheduler, steps: int) -> dict:
    scheduler.set_timesteps(steps)
    if isinstance(scheduler, diffusers.PNDMScheduler):
        timesteps = sorted({int(t) for t in scheduler._timesteps}, reverse=True)
    else:
        timesteps = distinct([float(t) for t in scheduler.timesteps])
    out = {"timesteps": timesteps, "init_noise_sigma": float(scheduler.init_noise_sigma)}
    if isinstance(scheduler, (diffusers.KDPM2DiscreteScheduler, diffusers.KDPM2AncestralDiscreteScheduler)):
        # Their timesteps interleave the interpolated midpoints; the walk is every other sigma.
        out["timesteps"] = None
        out["sigmas"] = floats(scheduler.sigmas[0::2])
    elif hasattr(scheduler, "sigmas"):
        out["sigmas"] = floats(torch.tensor(distinct([float(s) for s in scheduler.sigmas])))
        if isinstance(scheduler, diffusers.DPMSolverSDEScheduler):
            out["timesteps"] = None  # its midpoints' timesteps are interleaved too
    return out


def outcome(fn):
    try:
        return fn()
    except Exception as exc:  # a combination diffusers refuses is recorded as refused
        return {"error": type(exc).__name__}


def read_keys(scheduler) -> dict:
    return {k: scheduler.config[k] for k in READ_KEYS if k in scheduler.config}


PARTIAL = {
    "empty": {},
    "betas_only": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    "v_no_betas": {"num_train_timesteps": 1000, "prediction_type": "v_prediction"},
    "sd15_no_set_alpha": {k: v for k, v in SD15_CONFIG.items() if k not in ("set_alpha_to_one", "clip_sample")},
}


def defaults_refs() -> list:
    cases = []
    for config_name, config in PARTIAL.items():
        pndm = diffusers.PNDMScheduler.from_config(config)
        saved = {k: v for k, v in dict(pndm.config).items() if k != "_use_default_values"}
        saved["_class_name"] = "PNDMScheduler"
        sources = {"file": config, "via_pndm": pndm.config, "saved_pndm": saved}
        for name in CLASSES:
            for source_name, source in sources.items():
                scheduler = cls_of(name).from_config(source)
                record = {
                    "class": name,
                    "config": config_name,
                    "source": source_name,
                    # What the TS side reads as the file: the saved dict is a file written with every key.
                    "file": saved if source_name == "saved_pndm" else config,
                    "resolved": read_keys(scheduler),
                    "alphas_cumprod": floats(scheduler.alphas_cumprod[PROBES]),
                }
                if hasattr(scheduler, "final_alpha_cumprod"):
                    record["final_alpha_cumprod"] = float(scheduler.final_alpha_cumprod)
                record.update(outcome(lambda: timestep_record(scheduler, 10)))
                cases.append(record)
    return cases


def spacing_variants(name: str) -> dict:
    cls = cls_of(name)
    keys = set(cls._get_init_keys(cls))
    variants = {"default": {}}
    if "timestep_spacing" in keys:
        variants.update({s: {"timestep_spacing": s} for s in ("leading", "linspace", "trailing")})
    if "final_sigmas_type" in keys:
        variants["sigma_min"] = {"final_sigmas_type": "sigma_min"}
    if "use_lu_lambdas" in keys:
        variants["lu_lambdas"] = {"use_lu_lambdas": True}
    if name in ("DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler", "DPMSolverSinglestepScheduler"):
        variants["karras"] = {"use_karras_sigmas": True}
    if "rescale_betas_zero_snr" in keys:
        variants["zsnr"] = {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}
    return variants


def spacing_refs() -> list:
    cases = []
    for name in CLASSES:
        for variant, overrides in spacing_variants(name).items():
            for steps in (1, 4, 7, 10, 25):
                config = {**SD15_CONFIG, **overrides}
                scheduler = cls_of(name).from_config(config)
                cases.append({"class": name, "variant": variant, "config": config, "steps": steps,
                              **outcome(lambda: timestep_record(scheduler, steps))})
    return cases


def dummy_unet(x: torch.Tensor, t) -> torch.Tensor:
    """tools/make_vp_refs.py's stand-in UNet."""
    return torch.tanh(0.5 * x + 0.1 * torch.sin(torch.as_tensor(t).to(torch.float32) / 100))


def run_loop(name: str, config: dict, steps: int, step_kwargs: dict) -> dict:
    scheduler = cls_of(name).from_config(config)
    scheduler.set_timesteps(steps)
    generator = torch.Generator("cpu").manual_seed(SEED)
    init = randn_tensor(SHAPE, generator=generator, dtype=torch.float32)
    latents = init * scheduler.init_noise_sigma
    draws = []

    def recording_randn(*args, **kwargs):
        sample = randn_tensor(*args, **kwargs)
        draws.append(floats(sample))
        return sample

    for module in NOISE_MODULES:
        module.randn_tensor = recording_randn
    try:
        seen = []
        for t in scheduler.timesteps:
            seen.append(float(t))
            out = dummy_unet(scheduler.scale_model_input(latents, t), t)
            kwargs = dict(step_kwargs)
            if "generator" in scheduler.step.__code__.co_varnames:
                kwargs["generator"] = generator
            latents = scheduler.step(out, t, latents, **kwargs).prev_sample
    finally:
        for module in NOISE_MODULES:
            module.randn_tensor = randn_tensor
    return {"initLatents": floats(init), "initNoiseSigma": float(scheduler.init_noise_sigma),
            "unetTimesteps": seen, "noise": draws, "final": floats(latents)}


V = {"prediction_type": "v_prediction"}
ZSNR = {"prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"}
THRESHOLD = {"thresholding": True, "dynamic_thresholding_ratio": 0.995}

# (label, class, schedule diffuse runs, config overrides, step kwargs, step counts)
LOOPS = [
    ("dpm_singlestep", "DPMSolverSinglestepScheduler", "normal", {}, {}, (1, 2, 5, 6, 7, 10, 25)),
    ("dpm_singlestep_v", "DPMSolverSinglestepScheduler", "normal", V, {}, (6, 7)),
    ("dpm_singlestep_sigma_min", "DPMSolverSinglestepScheduler", "normal", {"final_sigmas_type": "sigma_min"}, {}, (6, 7)),
    ("dpm_singlestep_sigma_min_lof", "DPMSolverSinglestepScheduler", "normal", {"final_sigmas_type": "sigma_min", "lower_order_final": True}, {}, (6,)),
    ("dpm_singlestep_karras", "DPMSolverSinglestepScheduler", "karras", {"use_karras_sigmas": True}, {}, (8,)),
    ("tcd", "TCDScheduler", "normal", {}, {}, (1, 2, 4, 8)),
    ("tcd_gamma0", "TCDScheduler", "normal", {}, {"eta": 0.0}, (4,)),
    ("tcd_gamma1", "TCDScheduler", "normal", {}, {"eta": 1.0}, (4,)),
    ("tcd_v", "TCDScheduler", "normal", V, {"eta": 0.3}, (4,)),
    ("tcd_zsnr", "TCDScheduler", "normal", ZSNR, {"eta": 0.3}, (4,)),
    ("ddim_clip", "DDIMScheduler", "normal", {"clip_sample": True}, {"eta": 0.0}, (5, 10)),
    ("ddim_clip_range", "DDIMScheduler", "normal", {"clip_sample": True, "clip_sample_range": 1.5}, {"eta": 0.0}, (10,)),
    ("ddim_threshold", "DDIMScheduler", "normal", {**THRESHOLD, "sample_max_value": 1.5}, {"eta": 0.0}, (5, 10)),
    ("ddim_threshold_4", "DDIMScheduler", "normal", {**THRESHOLD, "sample_max_value": 4.0}, {"eta": 0.5}, (10,)),
    ("ddim_threshold_v", "DDIMScheduler", "normal", {**THRESHOLD, **V, "sample_max_value": 2.0}, {"eta": 0.0}, (10,)),
    ("ddpm_clip", "DDPMScheduler", "normal", {"clip_sample": True}, {}, (10,)),
    ("ddpm_threshold", "DDPMScheduler", "normal", {**THRESHOLD, "sample_max_value": 1.5}, {}, (10,)),
    ("euler_sigma_min", "EulerDiscreteScheduler", "normal", {"final_sigmas_type": "sigma_min"}, {}, (10,)),
    ("dpmpp_2m_sigma_min", "DPMSolverMultistepScheduler", "normal", {"final_sigmas_type": "sigma_min"}, {}, (10,)),
    ("dpmpp_2m_lu", "DPMSolverMultistepScheduler", "lu_lambdas", {"use_lu_lambdas": True}, {}, (10, 25)),
    ("dpmpp_2m_karras_sigma_min", "DPMSolverMultistepScheduler", "karras", {"use_karras_sigmas": True, "final_sigmas_type": "sigma_min"}, {}, (10,)),
    ("unipc_sigma_min", "UniPCMultistepScheduler", "normal", {"final_sigmas_type": "sigma_min"}, {}, (10,)),
    ("unipc_karras", "UniPCMultistepScheduler", "karras", {"use_karras_sigmas": True}, {}, (10,)),
    ("deis_karras", "DEISMultistepScheduler", "karras", {"use_karras_sigmas": True}, {}, (10,)),
    ("euler_zsnr", "EulerDiscreteScheduler", "normal", ZSNR, {}, (7,)),
    ("euler_a_zsnr", "EulerAncestralDiscreteScheduler", "normal", ZSNR, {}, (7,)),
    ("dpmpp_2m_zsnr", "DPMSolverMultistepScheduler", "normal", ZSNR, {}, (7,)),
    ("heun_trailing", "HeunDiscreteScheduler", "normal", {"timestep_spacing": "trailing"}, {}, (7,)),
    ("lms_leading", "LMSDiscreteScheduler", "normal", {"timestep_spacing": "leading"}, {}, (7,)),
    ("dpm2_trailing", "KDPM2DiscreteScheduler", "normal", {"timestep_spacing": "trailing"}, {}, (7,)),
    ("unipc_leading", "UniPCMultistepScheduler", "normal", {"timestep_spacing": "leading"}, {}, (7,)),
    ("deis_trailing", "DEISMultistepScheduler", "normal", {"timestep_spacing": "trailing"}, {}, (7,)),
    ("pndm_linspace", "PNDMScheduler", "normal", {"timestep_spacing": "linspace"}, {}, (7,)),
    ("ddpm_trailing", "DDPMScheduler", "normal", {"timestep_spacing": "trailing"}, {}, (7,)),
]


def loop_refs() -> list:
    cases = []
    for label, name, schedule, overrides, step_kwargs, step_counts in LOOPS:
        config = {**SD15_CONFIG, **overrides}
        for steps in step_counts:
            cases.append({"label": label, "class": name, "schedule": schedule, "config": config, "steps": steps,
                          "eta": step_kwargs.get("eta"), **run_loop(name, config, steps, step_kwargs)})
    return cases


def inversion_refs() -> list:
    cases = []
    generator = torch.Generator("cpu").manual_seed(SEED + 1)
    clean = randn_tensor(SHAPE, generator=generator, dtype=torch.float32) * 0.8
    for overrides in ({}, {"set_alpha_to_one": True}, {"timestep_spacing": "trailing"}, {"clip_sample": True}, V,
                      {**V, "timestep_spacing": "trailing", "set_alpha_to_one": True}):
        config = {**SD15_CONFIG, **overrides}
        for steps in (5, 10):
            scheduler = diffusers.DDIMInverseScheduler.from_config(config)
            scheduler.set_timesteps(steps)
            latents = clean.clone()
            seen = []
            for t in scheduler.timesteps:
                seen.append(int(t))
                latents = scheduler.step(dummy_unet(latents, t), t, latents).prev_sample
            cases.append({"config": config, "steps": steps, "unetTimesteps": seen, "final": floats(latents)})
    return {"clean": floats(clean), "cases": cases}


def main() -> None:
    torch.set_num_threads(1)
    doc = {
        "about": "diffusers %s scheduler classes, see tools/make_scheduler_class_refs.py" % diffusers.__version__,
        "shape": list(SHAPE),
        "probes": PROBES,
        "defaults": defaults_refs(),
        "spacing": spacing_refs(),
        "loops": loop_refs(),
        "inversion": inversion_refs(),
    }
    assert all(math.isfinite(v) for c in doc["loops"] for v in c["final"])
    write_gzip_text(OUT, json.dumps(doc, separators=(",", ":")) + "\n")
    print("wrote %s (%d bytes)" % (OUT, OUT.stat().st_size))


if __name__ == "__main__":
    main()
