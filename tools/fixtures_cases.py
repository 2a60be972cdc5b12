"""Pieces shared by the txt2img and img2img/inpaint reference writers."""
from __future__ import annotations

import diffusers
import torch

from fixtures_io import ArrayRef, RefWriter, to_json_value

PIPELINE_MODULES = {
    "txt2img": "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
    "img2img": "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img",
    "inpaint": "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint",
}
VAE_MODULE = "diffusers.models.autoencoders.vae"


def make_scheduler(base_config, class_name: str, overrides: dict[str, object]):
    """The usual user pattern: `<Scheduler>.from_config(pipe.scheduler.config, **overrides)`."""
    cls = getattr(diffusers, class_name)
    return cls.from_config(base_config, **overrides)


def scheduler_record(class_name: str, overrides: dict[str, object], scheduler) -> dict[str, object]:
    """Class, the overrides used, the full resulting config, and the schedule the pipeline actually ran."""
    record: dict[str, object] = {
        "class": class_name,
        "overrides": to_json_value(overrides),
        "config": to_json_value({k: v for k, v in scheduler.config.items() if not k.startswith("_")}),
        "timesteps": scheduler.timesteps.to(torch.float64).tolist(),
        "init_noise_sigma": float(scheduler.init_noise_sigma),
    }
    if getattr(scheduler, "sigmas", None) is not None:
        record["sigmas"] = scheduler.sigmas.to(torch.float64).tolist()
    return record


def token_ids(pipe, text: str) -> list[int]:
    tok = pipe.tokenizer
    return tok(text, padding="max_length", max_length=tok.model_max_length, truncation=True).input_ids


def decode_and_save(writer: RefWriter, pipe, name: str, latents: torch.Tensor) -> dict[str, object]:
    """Decode final latents exactly as the pipeline does and save float [0,1] NHWC image + diffusers' PNGs."""
    with torch.no_grad():
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
    image = pipe.image_processor.postprocess(decoded, output_type="pt")  # NCHW in [0,1], pre-uint8
    if float(image.std()) < 1e-3:
        raise AssertionError(f"{name}: decoded image is (nearly) constant")
    pngs = pipe.image_processor.postprocess(decoded, output_type="pil")
    return {
        "image": writer.array(f"{name}.image", image.permute(0, 2, 3, 1)),
        "png": [writer.png(f"{name}.{i}", im) for i, im in enumerate(pngs)],
    }


def split_draws(case: str, draws: list[tuple[str, torch.Tensor]], scheduler_module: str) -> tuple[list, list]:
    """Separate the scheduler's per-step noise from the other draws (pipeline latents/noise, VAE samples)."""
    step_noise = [t for m, t in draws if m == scheduler_module]
    other = [(m, t) for m, t in draws if m != scheduler_module]
    if step_noise and any(t.shape != step_noise[0].shape for t in step_noise):
        raise AssertionError(f"{case}: scheduler noise draws have different shapes")
    return other, step_noise


def save_step_noise(writer: RefWriter, name: str, step_noise: list[torch.Tensor]) -> ArrayRef | None:
    return writer.array(f"{name}.step-noise", torch.stack(step_noise)) if step_noise else None


def assert_same(case: str, what: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if not torch.equal(a, b):
        raise AssertionError(f"{case}: {what} differ (max abs {float((a - b).abs().max())})")
