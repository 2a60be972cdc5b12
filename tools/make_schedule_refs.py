"""Reference numbers for the schedules ComfyUI and AUTOMATIC1111 (>=1.10) have beyond k-diffusion's:
kl_optimal, Align Your Steps, linear_quadratic and polyexponential, for SD 1.5's training schedule
(scaled_linear 0.00085-0.012, 1000 steps).

Neither ComfyUI nor A1111 is on PyPI, so their source files are read from checkouts you point at:
each scheduler function (and ComfyUI's ModelSamplingDiscrete / make_beta_schedule) is taken out of
its file with `ast` and executed on its own, since importing the modules would pull in the whole
application. Nothing of either is copied into this repository.

  COMFYUI_DIR  comfy/samplers.py (kl_optimal_scheduler, linear_quadratic_schedule),
               comfy/model_sampling.py (ModelSamplingDiscrete),
               comfy/ldm/modules/diffusionmodules/util.py (make_beta_schedule),
               comfy_extras/nodes_align_your_steps.py (AlignYourStepsScheduler, imported whole)
  A1111_DIR    modules/sd_schedulers.py (kl_optimal, get_align_your_steps_sigmas)

A1111's "Polyexponential" is k-diffusion's get_sigmas_polyexponential with rho = 1 (its
default_rho); the installed k-diffusion 0.1.1.post1 has the same function A1111 vendors.

Each tool's sigma_min / sigma_max come from its own model: ComfyUI computes the training sigmas in
float64 and rounds them once (ModelSamplingDiscrete); A1111 hands k-diffusion's CompVisDenoiser the
LDM's alphas_cumprod, a float64 np.cumprod stored as float32 (ldm/models/diffusion/ddpm.py
register_schedule, restated below: it is three lines of the stability-ai repository A1111 clones).
Both differ from diffusers' float32 sigmas (diffuse's model) by up to ~1.3e-5 relative at sigma_min,
so the fixture records the sigma range each reference used.

Run: COMFYUI_DIR=/path/to/ComfyUI A1111_DIR=/path/to/stable-diffusion-webui \
         /opt/diffuse-venv/bin/python tools/make_schedule_refs.py
Writes: test/fixtures/samplers/more-schedules.json
"""

import ast
import importlib.util
import math
import os
import types
from pathlib import Path

import numpy as np
import scipy.stats
import torch

from sampler_refs_common import SD15_CONFIG, floats, load_k_diffusion, write_json

STEPS = (1, 2, 4, 10, 11, 20, 25, 50)


def checkout(var: str) -> Path:
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"{var} must point at a checkout (see this script's docstring)")
    return Path(value)


def load_defs(path: Path, names: tuple, namespace: dict) -> dict:
    """Executes only the named top-level functions/classes of a source file in `namespace`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    picked = [node for node in tree.body if getattr(node, "name", None) in names]
    missing = set(names) - {node.name for node in picked}
    if missing:
        raise SystemExit(f"{path}: no {', '.join(sorted(missing))}")
    exec(compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def comfy_functions(root: Path) -> dict:
    ns = load_defs(root / "comfy" / "samplers.py", ("kl_optimal_scheduler", "linear_quadratic_schedule"),
                   {"torch": torch, "math": math})
    util = load_defs(root / "comfy" / "ldm" / "modules" / "diffusionmodules" / "util.py", ("make_beta_schedule",),
                     {"torch": torch, "np": np, "math": math})
    # Older ComfyUI returns the float64 betas as numpy, newer as a torch tensor: same values.
    make_betas = lambda *a, **k: torch.as_tensor(util["make_beta_schedule"](*a, **k))  # noqa: E731
    sampling = load_defs(root / "comfy" / "model_sampling.py", ("ModelSamplingDiscrete",),
                         {"torch": torch, "math": math, "make_beta_schedule": make_betas})
    spec = importlib.util.spec_from_file_location("nodes_align_your_steps", root / "comfy_extras" / "nodes_align_your_steps.py")
    ays = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ays)
    ns["model_sampling"] = sampling["ModelSamplingDiscrete"]()  # SD1.x defaults: linear 0.00085-0.012 on sqrt(beta)
    ns["AlignYourStepsScheduler"] = ays.AlignYourStepsScheduler
    return ns


def a1111_functions(root: Path, sampling) -> dict:
    shared = types.SimpleNamespace(sd_model=types.SimpleNamespace(is_sdxl=False))
    return load_defs(root / "modules" / "sd_schedulers.py", ("kl_optimal", "get_align_your_steps_sigmas"),
                     {"torch": torch, "np": np, "stats": scipy.stats, "shared": shared,
                      "k_diffusion": types.SimpleNamespace(sampling=sampling)})


def a1111_model_sigmas(external) -> torch.Tensor:
    """A1111's model_wrap.sigmas for SD 1.x: k-diffusion's CompVisDenoiser over the LDM alphas_cumprod."""
    cfg = SD15_CONFIG
    betas = (torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, cfg["num_train_timesteps"], dtype=torch.float64) ** 2).numpy()
    alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas, axis=0), dtype=torch.float32)
    return external.DiscreteEpsDDPMDenoiser(None, alphas_cumprod, quantize=False).sigmas


def comfy_refs(ns: dict) -> dict:
    ms = ns["model_sampling"]
    smin, smax = float(ms.sigma_min), float(ms.sigma_max)
    ays = ns["AlignYourStepsScheduler"]()
    per_steps = {}
    for n in STEPS:
        refs = {
            "linear_quadratic": floats(ns["linear_quadratic_schedule"](ms, n)),
            "align_your_steps": floats(ays.get_sigmas("SD1", n, 1.0)[0]),
            "align_your_steps_sdxl": floats(ays.get_sigmas("SDXL", n, 1.0)[0]),
        }
        # kl_optimal_scheduler divides by n - 1: one step gives [nan, 0], so there is no reference for it.
        if n > 1:
            refs["kl_optimal"] = floats(ns["kl_optimal_scheduler"](n=n, sigma_min=smin, sigma_max=smax))
        per_steps[str(n)] = refs
    return {"sigma_min": smin, "sigma_max": smax, "steps": per_steps}


def a1111_refs(ns: dict, sampling, external) -> dict:
    sigmas = a1111_model_sigmas(external)
    smin, smax = sigmas[0].item(), sigmas[-1].item()
    per_steps = {}
    for n in STEPS:
        per_steps[str(n)] = {
            "kl_optimal": floats(ns["kl_optimal"](n, smin, smax, "cpu")),
            "align_your_steps": floats(ns["get_align_your_steps_sigmas"](n, smin, smax, "cpu")),
            "polyexponential": floats(sampling.get_sigmas_polyexponential(n, smin, smax, rho=1.0)),
        }
    return {"sigma_min": smin, "sigma_max": smax, "steps": per_steps}


def main() -> None:
    torch.set_num_threads(1)
    sampling, external = load_k_diffusion()
    comfy = comfy_functions(checkout("COMFYUI_DIR"))
    a1111 = a1111_functions(checkout("A1111_DIR"), sampling)
    write_json("more-schedules.json", {
        "config": SD15_CONFIG,
        "comfyui": comfy_refs(comfy),
        "a1111": a1111_refs(a1111, sampling, external),
    })


if __name__ == "__main__":
    main()
