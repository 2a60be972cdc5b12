"""Reference noise schedules: the model's training sigmas (diffusers), k-diffusion's
sigma_to_t / t_to_sigma and get_sigmas_*, diffusers' set_timesteps for each timestep family, and
ComfyUI's / A1111's small scheduler functions restated over k-diffusion's model sigmas."""

import numpy as np
import scipy.stats
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from sampler_refs_common import SD15_CONFIG, f64s, floats

CONFIGS = {
    "sd15": SD15_CONFIG,
    "sd15_v": {**SD15_CONFIG, "prediction_type": "v_prediction"},
    "linear": {"_class_name": "DDIMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    "cosine": {"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 1000},
    "zsnr": {**SD15_CONFIG, "rescale_betas_zero_snr": True, "timestep_spacing": "trailing"},
}

SCHEDULE_STEPS = (1, 4, 7, 10, 25)


def model_refs(external) -> dict:
    out = {}
    for name, config in CONFIGS.items():
        euler = EulerDiscreteScheduler.from_config(config)
        alphas_cumprod = euler.alphas_cumprod
        k_model = external.DiscreteEpsDDPMDenoiser(None, alphas_cumprod, quantize=False)
        probe_sigmas = torch.tensor([0.01, 0.0292, 0.03, 0.1, 0.5, 1.0, 2.5, 7.0, 14.0, 14.6146, 20.0], dtype=torch.float32)
        probe_ts = torch.tensor([0.0, 0.25, 1.0, 17.5, 100.0, 499.5, 750.25, 998.9, 999.0], dtype=torch.float32)
        out[name] = {
            "config": config,
            "alphas_cumprod": floats(alphas_cumprod),
            "sigmas": floats(k_model.sigmas),
            "sigma_to_t": {"sigma": floats(probe_sigmas), "t": floats(k_model.sigma_to_t(probe_sigmas))},
            "t_to_sigma": {"t": floats(probe_ts), "sigma": floats(k_model.t_to_sigma(probe_ts))},
        }
    return out


# The scheduler functions below restate ComfyUI's comfy/samplers.py (and A1111's
# sd_schedulers.py) over k-diffusion's DiscreteSchedule; scipy supplies the Beta quantiles.

def sgm_uniform(k_model, n):
    start = k_model.sigma_to_t(k_model.sigma_max)
    end = k_model.sigma_to_t(k_model.sigma_min)
    ts = torch.linspace(float(start), float(end), n + 1)[:-1]
    return [float(k_model.t_to_sigma(t)) for t in ts] + [0.0]


def simple(k_model, n):
    stride = len(k_model.sigmas) / n
    return [float(k_model.sigmas[-(1 + int(x * stride))]) for x in range(n)] + [0.0]


def ddim_uniform(k_model, n):
    stride = max(len(k_model.sigmas) // n, 1)
    picked = [float(k_model.sigmas[x]) for x in range(1, len(k_model.sigmas), stride)]
    return [*reversed(picked), 0.0]


def beta(k_model, n, a=0.6, b=0.6):
    total = len(k_model.sigmas) - 1
    ts = np.rint(scipy.stats.beta.ppf(1 - np.linspace(0, 1, n, endpoint=False), a, b) * total)
    picked, last = [], -1
    for t in ts:
        if t != last:
            picked.append(float(k_model.sigmas[int(t)]))
        last = t
    return picked + [0.0]


def schedule_refs(sampling, external) -> dict:
    out = {}
    for name in ("sd15", "zsnr", "linear"):
        config = CONFIGS[name]
        euler = EulerDiscreteScheduler.from_config(config)
        k_model = external.DiscreteEpsDDPMDenoiser(None, euler.alphas_cumprod, quantize=False)
        smin, smax = float(k_model.sigma_min), float(k_model.sigma_max)
        per_steps = {}
        for n in SCHEDULE_STEPS:
            refs = {
                "karras": floats(sampling.get_sigmas_karras(n, smin, smax)),
                "exponential": floats(sampling.get_sigmas_exponential(n, smin, smax)),
                "uniform": floats(k_model.get_sigmas(n)),
                "sgm_uniform": floats(sgm_uniform(k_model, n)),
                "simple": floats(simple(k_model, n)),
                "ddim_uniform": floats(ddim_uniform(k_model, n)),
                "beta": floats(beta(k_model, n)),
            }
            for spacing in ("default", "leading", "linspace", "trailing"):
                cfg = config if spacing == "default" else {**config, "timestep_spacing": spacing}
                e = EulerDiscreteScheduler.from_config(cfg)
                e.set_timesteps(n)
                d = DPMSolverMultistepScheduler.from_config(cfg)
                d.set_timesteps(n)
                ddim = DDIMScheduler.from_config(cfg)
                ddim.set_timesteps(n)
                refs[f"normal_euler_{spacing}"] = {"sigmas": floats(e.sigmas), "timesteps": floats(e.timesteps),
                                                   "init_noise_sigma": float(e.init_noise_sigma)}
                refs[f"normal_dpmsolver_{spacing}"] = {"sigmas": floats(d.sigmas), "timesteps": f64s(d.timesteps)}
                refs[f"normal_ddim_{spacing}"] = {"timesteps": f64s(ddim.timesteps)}
            per_steps[str(n)] = refs
        out[name] = per_steps
    return out


def beta_ppf_refs() -> list:
    cases = []
    for a, b in ((0.6, 0.6), (0.5, 0.5), (2.0, 3.0), (0.3, 1.7)):
        ps = [1e-9, 1e-4, 0.01, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9, 0.99, 0.9999, 1 - 1e-9]
        cases.append({"a": a, "b": b, "p": ps, "x": [float(scipy.stats.beta.ppf(p, a, b)) for p in ps]})
    return cases


def karras_diffusers_note() -> dict:
    """diffusers' use_karras_sigmas spans the *spaced* timesteps' sigmas, not the model's range."""
    e = EulerDiscreteScheduler.from_config({**SD15_CONFIG, "use_karras_sigmas": True})
    e.set_timesteps(10)
    return {"euler_karras_sd15_10": floats(e.sigmas)}


def all_schedule_refs(sampling, external) -> dict:
    return {
        "models": model_refs(external),
        "schedules": schedule_refs(sampling, external),
        "beta_ppf": beta_ppf_refs(),
        "diffusers_karras": karras_diffusers_note(),
    }
