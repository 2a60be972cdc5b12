"""Reference sampling loops on the dummy network: k-diffusion's sample_* functions, and
diffusers' scheduler step loops (driven the way StableDiffusionPipeline drives them)."""

import torch
from diffusers import (
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
)
from diffusers.schedulers import (
    scheduling_dpmsolver_multistep,
    scheduling_dpmsolver_sde,
    scheduling_euler_ancestral_discrete,
    scheduling_k_dpm_2_ancestral_discrete,
)

from sampler_refs_common import SD15_CONFIG, SHAPE, PoolNoise, dummy_net, floats, noise_pool
from sampler_refs_schedules import beta, ddim_uniform, sgm_uniform, simple

STEPS = 10
PREDICTIONS = ("epsilon", "v_prediction")


def k_samplers(sampling):
    """id -> (function, extra kwargs, whether it takes a noise_sampler)."""
    return {
        "euler": (sampling.sample_euler, {}, False),
        "euler_a": (sampling.sample_euler_ancestral, {}, True),
        "heun": (sampling.sample_heun, {}, False),
        "dpm2": (sampling.sample_dpm_2, {}, False),
        "dpm2_a": (sampling.sample_dpm_2_ancestral, {}, True),
        "lms": (sampling.sample_lms, {}, False),
        "dpmpp_2s_a": (sampling.sample_dpmpp_2s_ancestral, {}, True),
        "dpmpp_2m": (sampling.sample_dpmpp_2m, {}, False),
        "dpmpp_sde": (sampling.sample_dpmpp_sde, {}, True),
        "dpmpp_2m_sde": (sampling.sample_dpmpp_2m_sde, {"solver_type": "midpoint"}, True),
        "dpmpp_2m_sde_heun": (sampling.sample_dpmpp_2m_sde, {"solver_type": "heun"}, True),
        "dpmpp_3m_sde": (sampling.sample_dpmpp_3m_sde, {}, True),
    }


def k_denoiser(external, prediction):
    alphas_cumprod = EulerDiscreteScheduler.from_config(SD15_CONFIG).alphas_cumprod
    cls = external.DiscreteEpsDDPMDenoiser if prediction == "epsilon" else external.DiscreteVDDPMDenoiser
    return cls(dummy_net, alphas_cumprod, quantize=False)


def k_schedules(sampling, k_model, n):
    euler = EulerDiscreteScheduler.from_config(SD15_CONFIG)
    euler.set_timesteps(n)
    smin, smax = float(k_model.sigma_min), float(k_model.sigma_max)
    return {
        "normal": euler.sigmas,
        "karras": sampling.get_sigmas_karras(n, smin, smax),
        "exponential": sampling.get_sigmas_exponential(n, smin, smax),
        "uniform": k_model.get_sigmas(n),
        "sgm_uniform": torch.tensor(sgm_uniform(k_model, n)),
        "simple": torch.tensor(simple(k_model, n)),
        "ddim_uniform": torch.tensor(ddim_uniform(k_model, n)),
        "beta": torch.tensor(beta(k_model, n)),
    }


def k_diffusion_cases(sampling, external, x_noise, pool) -> list:
    cases = []
    for prediction in PREDICTIONS:
        k_model = k_denoiser(external, prediction)
        schedules = k_schedules(sampling, k_model, STEPS)
        for sampler_id, (fn, kwargs, noisy) in k_samplers(sampling).items():
            names = ["normal", "karras", "exponential"]
            if prediction == "epsilon" and sampler_id in ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_sde"):
                names += ["uniform", "sgm_uniform", "simple", "ddim_uniform", "beta"]
            for schedule in names:
                sigmas = schedules[schedule].to(torch.float32)
                noise = PoolNoise(pool)
                extra = {"noise_sampler": noise} if noisy else {}
                x = fn(k_model, x_noise * sigmas[0], sigmas, disable=True, **kwargs, **extra)
                cases.append({
                    "sampler": sampler_id,
                    "schedule": schedule,
                    "prediction": prediction,
                    "sigmas": floats(sigmas),
                    "noise_used": noise.used,
                    "out": floats(x),
                })
    return cases


# id -> (scheduler class, config overrides, module whose randn_tensor draws the step noise)
DIFFUSERS = {
    "euler": (EulerDiscreteScheduler, {}, None),
    "euler_a": (EulerAncestralDiscreteScheduler, {}, scheduling_euler_ancestral_discrete),
    "heun": (HeunDiscreteScheduler, {}, None),
    "dpm2": (KDPM2DiscreteScheduler, {}, None),
    "dpm2_a": (KDPM2AncestralDiscreteScheduler, {}, scheduling_k_dpm_2_ancestral_discrete),
    "lms": (LMSDiscreteScheduler, {}, None),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}, None),
    "dpmpp_2m_sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++"}, scheduling_dpmsolver_multistep),
    "dpmpp_sde": (DPMSolverSDEScheduler, {}, None),
}


def run_diffusers(cls, config, n, x_noise, noise, module):
    """One pipeline-style loop; every gaussian the scheduler draws comes from `noise`."""
    scheduler = cls.from_config(config)
    scheduler.set_timesteps(n)
    saved = {}
    if module is not None:
        saved = {"randn_tensor": module.randn_tensor}
        module.randn_tensor = lambda *args, **kwargs: noise()
    saved_tree = scheduling_dpmsolver_sde.BrownianTreeNoiseSampler
    scheduling_dpmsolver_sde.BrownianTreeNoiseSampler = lambda *args, **kwargs: noise
    try:
        latents = x_noise * scheduler.init_noise_sigma
        seen = []
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t)
            seen.append(float(t))
            latents = scheduler.step(dummy_net(model_input, t), t, latents).prev_sample
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
        scheduling_dpmsolver_sde.BrownianTreeNoiseSampler = saved_tree
    sigmas = [float(s) for s in scheduler.sigmas]
    distinct = [s for i, s in enumerate(sigmas) if i == 0 or s != sigmas[i - 1]]
    return {
        "init_noise_sigma": float(scheduler.init_noise_sigma),
        "sigmas": floats(torch.tensor(distinct)),
        "timesteps_seen": seen,
        "noise_used": noise.used,
        "out": floats(latents),
    }


def diffusers_cases(x_noise, pool) -> list:
    cases = []
    # SD 1.5's file sets no timestep_spacing, so each scheduler class uses its own default
    # (linspace for all of these); SDXL-style configs set "leading" explicitly.
    variants = [("normal", {}, STEPS), ("normal", {}, 7), ("normal_leading", {"timestep_spacing": "leading"}, STEPS),
                ("karras", {"use_karras_sigmas": True}, STEPS)]
    for prediction in PREDICTIONS:
        for sampler_id, (cls, overrides, module) in DIFFUSERS.items():
            for variant, schedule_overrides, n in variants:
                if n != STEPS and prediction != "epsilon":
                    continue
                config = {**SD15_CONFIG, **overrides, **schedule_overrides, "prediction_type": prediction}
                result = run_diffusers(cls, config, n, x_noise, PoolNoise(pool), module)
                cases.append({"sampler": sampler_id, "variant": variant, "prediction": prediction,
                              "steps": n, "config": config, **result})
    return cases


def all_loop_refs(sampling, external) -> dict:
    x_noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1234), dtype=torch.float32)
    pool = noise_pool(5678)
    return {
        "shape": list(SHAPE),
        "x_noise": floats(x_noise),
        "noise_pool": floats(pool),
        "k_diffusion": k_diffusion_cases(sampling, external, x_noise, pool),
        "diffusers": diffusers_cases(x_noise, pool),
    }
