"""AUTOMATIC1111's "Hires. fix" (StableDiffusionProcessingTxt2Img.sample / sample_hr_pass, v1.10) restated with
diffusers components and k-diffusion's samplers on the tiny-sd fixture, and torch's F.interpolate on random
tensors for every latent upscale mode.

Usage: /opt/diffuse-venv/bin/python tools/make_hires_refs.py
Writes test/fixtures/hires/ (cases.json, float32 .bin files; <= 0.3 MB). The torch tiny-sd is rebuilt from its
seeded builders (tools/fixtures_models.py) and checked against test/fixtures/tiny-sd's ONNX graphs first.

What is A1111's here, restated (none of its files are read):
- first pass: txt2img with k-diffusion's sampler under A1111's CFGDenoiser (cond and uncond in one batch,
  denoised = uncond + (cond - uncond) * scale), the prompt's schedule chosen per denoiser call
  (reconstruct_cond_batch), noise from torch.randn with a CPU generator seeded by the image's seed
  (ImageRNG, RNG "CPU"), ancestral noise continuing that generator; the sigma table of LDM's
  register_schedule (float64 betas, alphas_cumprod stored float32).
- target size: calculate_target_resolution (int(w * scale), or "Resize to" with aspect kept and the excess
  cropped from the latents, truncate_x/y), the VAE's factor in place of A1111's opt_f = 8 (the tiny VAE
  halves each side).
- latent upscalers: F.interpolate(samples, size=(h // f, w // f), mode, antialias) as shared.latent_upscale_modes.
- image upscalers: decode, clamp((x + 1) / 2), 255 * x truncated to uint8, images.resize_image(0, ...) with the
  upscaler (Lanczos / Nearest: Upscaler.upscale's do_upscale to int(w * scale), LANCZOS to the multiple of 8,
  then LANCZOS to the target; None: LANCZOS straight to the target), / 255, * 2 - 1, VAE encode. A1111 samples
  the encoder's posterior with torch's global generator (not the image seed); the reference takes its mean.
- second pass: sample_img2img with img2img_fix_steps semantics (steps given): total = int(hr_steps /
  min(strength, 0.999)), t_enc = hr_steps - 1, sigma_sched = sigmas(total)[total - t_enc - 1:], a fresh
  ImageRNG on the same seed at the new shape: xi = x + noise * sigma_sched[0]; the hires prompt's schedule
  with get_learned_conditioning_prompt_schedules' hires offsets (integer steps minus the first pass's total
  steps, fractions minus 1 times the hires steps); hires sampler, schedule and CFG scale.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from sampler_refs_common import load_k_diffusion  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
OUT = FIXTURES / "hires"
MAX_OUT_MB = 0.3
FACTOR = models.VAE_SCALE_FACTOR

LATENT_MODES = {
    "latent": ("bilinear", False),
    "latent-antialiased": ("bilinear", True),
    "latent-bicubic": ("bicubic", False),
    "latent-bicubic-antialiased": ("bicubic", True),
    "latent-nearest": ("nearest", False),
    "latent-nearest-exact": ("nearest-exact", False),
}


@dataclass
class Case:
    name: str
    prompt: str
    seed: int
    sampler: str  # "euler" | "euler_a" | "dpmpp_2m_karras"
    steps: int
    upscaler: str
    strength: float
    cfg: float = 7.0
    negative: str = ""
    width: int = 32
    height: int = 32
    scale: float = 2.0
    resize: tuple[int, int] | None = None
    hr_steps: int = 0
    hr_sampler: str | None = None
    hr_cfg: float | None = None
    hr_prompt: str = ""
    hr_negative: str = ""
    notes: dict = field(default_factory=dict)


CASES = [
    Case("latent-euler", "a red cat on a mat", 1001, "euler", 6, "latent", 0.7),
    Case("nearest-exact-s1.5", "a lighthouse at dusk", 1002, "euler", 5, "latent-nearest-exact", 0.55,
         scale=1.5, negative="blurry"),
    Case("lanczos-euler-a", "a bowl of fruit", 1003, "euler_a", 5, "lanczos", 0.6),
    Case("hires-sampler-cfg-prompt", "a small house", 1004, "euler", 5, "latent-bicubic-antialiased", 0.5,
         hr_sampler="dpmpp_2m_karras", hr_cfg=4.0, hr_prompt="a small house, detailed", hr_negative="flat"),
    Case("hires-steps-3-antialiased", "an old tree", 1005, "euler", 5, "latent-antialiased", 0.45, hr_steps=3),
    Case("prompt-edit-offsets", "a [dog:cat:1.5] on a [mat:sofa:8]", 1006, "euler", 6, "latent-nearest", 0.7),
    Case("resize-truncate-bicubic", "a tall tower", 1007, "euler", 4, "latent-bicubic", 0.6, width=32, height=48,
         resize=(64, 64)),
    Case("nearest-image-euler-a", "a sail boat", 1008, "euler_a", 4, "nearest", 0.65, scale=1.75),
    # A1111's DPM++ 2M Karras in the first pass too: noise times sigma_max, fractional timesteps (k-diffusion's run).
    Case("dpmpp-2m-karras-both-passes", "a quiet harbour", 1009, "dpmpp_2m_karras", 6, "latent", 0.6),
]


def target_resolution(case: Case) -> tuple[int, int, int, int]:
    """calculate_target_resolution: (upscale_to_x, upscale_to_y, truncate_x, truncate_y)."""
    w, h = case.width, case.height
    if case.resize is None:
        return int(w * case.scale), int(h * case.scale), 0, 0
    rx, ry = case.resize
    if w / h < rx / ry:
        ux, uy = rx, rx * h // w
    else:
        ux, uy = ry * w // h, ry
    return ux, uy, (ux - rx) // FACTOR, (uy - ry) // FACTOR


def prompt_schedule(prompt: str, steps: int, hires_base: int | None) -> list[tuple[int, str]]:
    """get_learned_conditioning_prompt_schedules for prompts whose edits are flat [a:b:when] groups."""
    edits = list(re.finditer(r"\[([^\[\]:]*):([^\[\]:]*):([^\[\]:]*)\]", prompt))
    int_off, flt_off = (0, 0.0) if hires_base is None else (hires_base, 1.0)

    def when(s: str) -> int:
        v = float(s)
        v = (v - flt_off) * steps if "." in s else v - int_off
        return min(steps, int(v))

    switches = sorted({steps, *[w for w in (when(m.group(3)) for m in edits) if w >= 1]})
    out = []
    for end in switches:
        text, at = "", 0
        for m in edits:
            text += prompt[at:m.start()] + (m.group(1) if end <= when(m.group(3)) else m.group(2))
            at = m.end()
        out.append((end, text + prompt[at:]))
    return out


class Conds:
    def __init__(self, pipe, prompt: str, steps: int, hires_base: int | None):
        self.schedule = prompt_schedule(prompt, steps, hires_base)
        self.encoded = [encode(pipe, text) for _, text in self.schedule]

    def at(self, step: int) -> torch.Tensor:
        for (end, _), c in zip(self.schedule, self.encoded):
            if step <= end:
                return c
        return self.encoded[-1]


def encode(pipe, text: str) -> torch.Tensor:
    ids = pipe.tokenizer(text, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        return pipe.text_encoder(ids)[0]


class CFGDenoiser:
    """A1111's CFGDenoiser on k-diffusion's eps denoiser: one batch [cond, uncond], a step counter for the schedule."""

    def __init__(self, k_model, cond: Conds, uncond: Conds, scale: float):
        self.k_model, self.cond, self.uncond, self.scale, self.step = k_model, cond, uncond, scale, 0

    def __call__(self, x, sigma, **_):
        c, u = self.cond.at(self.step), self.uncond.at(self.step)
        out = self.k_model(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=torch.cat([c, u]))
        self.step += 1
        oc, ou = out.chunk(2)
        return ou + (oc - ou) * self.scale


def sampler_parts(sampling, k_model, name: str, steps: int):
    """(sample function, sigmas) as A1111 names them: Euler and Euler a on "Automatic" (k-diffusion's
    get_sigmas), DPM++ 2M on Karras between the table's ends."""
    if name == "dpmpp_2m_karras":
        sigmas = sampling.get_sigmas_karras(steps, k_model.sigmas[0].item(), k_model.sigmas[-1].item())
        return sampling.sample_dpmpp_2m, sigmas
    fn = sampling.sample_euler if name == "euler" else sampling.sample_euler_ancestral
    return fn, k_model.get_sigmas(steps)


def total_steps(name: str, steps: int) -> int:
    return steps  # none of these samplers is second-order in A1111's table


def resize_image(image: Image.Image, w: int, h: int, upscaler: str) -> Image.Image:
    """images.resize_image(0, im, w, h, upscaler_name) for the built-in upscalers Lanczos, Nearest and None."""
    if upscaler == "none":
        return image.resize((w, h), resample=Image.LANCZOS)
    scale = max(w / image.width, h / image.height)
    if scale > 1.0:
        dest_w, dest_h = int((image.width * scale) // 8 * 8), int((image.height * scale) // 8 * 8)
        resample = Image.LANCZOS if upscaler == "lanczos" else Image.NEAREST
        for _ in range(3):
            if image.width >= dest_w and image.height >= dest_h and scale != 1:
                break
            shape = image.size
            image = image.resize((int(image.width * scale), int(image.height * scale)), resample=resample)
            if shape == image.size:
                break
        if image.size != (dest_w, dest_h):
            image = image.resize((dest_w, dest_h), resample=Image.LANCZOS)
    if image.size != (w, h):
        image = image.resize((w, h), resample=Image.LANCZOS)
    return image


def image_upscale(pipe, samples: torch.Tensor, w: int, h: int, upscaler: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The re-encoded upscale, and the VAE's decoded first pass it came from (before the 8-bit truncation)."""
    sf = pipe.vae.config.scaling_factor
    with torch.no_grad():
        decoded = pipe.vae.decode(samples / sf).sample
    lowres = torch.clamp((decoded + 1.0) / 2.0, min=0.0, max=1.0)
    batch = []
    for x in lowres:
        arr = (255.0 * np.moveaxis(x.numpy(), 0, 2)).astype(np.uint8)
        image = resize_image(Image.fromarray(arr), w, h, upscaler)
        batch.append(np.moveaxis(np.array(image).astype(np.float32) / 255.0, 2, 0))
    pixels = torch.from_numpy(np.array(batch)) * 2 - 1
    with torch.no_grad():
        return pipe.vae.encode(pixels).latent_dist.mean * sf, decoded


def run_case(pipe, sampling, k_model, case: Case, writer: RefWriter) -> dict:
    generator = torch.Generator().manual_seed(case.seed)
    shape = (4, case.height // FACTOR, case.width // FACTOR)
    noise = torch.randn(shape, generator=generator).unsqueeze(0)

    def noise_sampler_for(gen, like):
        return lambda *_: torch.randn(like.shape[1:], generator=gen).unsqueeze(0)

    fn, sigmas = sampler_parts(sampling, k_model, case.sampler, case.steps)
    first_total = total_steps(case.sampler, case.steps)
    denoiser = CFGDenoiser(k_model, Conds(pipe, case.prompt, first_total, None), Conds(pipe, case.negative, first_total, None), case.cfg)
    kwargs = {"noise_sampler": noise_sampler_for(generator, noise)} if case.sampler == "euler_a" else {}
    with torch.no_grad():
        samples = fn(denoiser, noise * sigmas[0], sigmas, disable=True, **kwargs)

    ux, uy, tx, ty = target_resolution(case)
    decoded = None
    if case.upscaler in LATENT_MODES:
        mode, aa = LATENT_MODES[case.upscaler]
        upscaled = F.interpolate(samples, size=(uy // FACTOR, ux // FACTOR), mode=mode, antialias=aa)
    else:
        upscaled, decoded = image_upscale(pipe, samples, ux, uy, case.upscaler)
    upscaled = upscaled[:, :, ty // 2:upscaled.shape[2] - (ty + 1) // 2, tx // 2:upscaled.shape[3] - (tx + 1) // 2]

    hr_steps = case.hr_steps or case.steps
    hr_sampler = case.hr_sampler or case.sampler
    total = int(hr_steps / min(case.strength, 0.999))
    t_enc = hr_steps - 1
    hr_fn, hr_sigmas = sampler_parts(sampling, k_model, hr_sampler, total)
    sigma_sched = hr_sigmas[total - t_enc - 1:]
    hr_generator = torch.Generator().manual_seed(case.seed)
    hr_noise = torch.randn(upscaled.shape[1:], generator=hr_generator).unsqueeze(0)
    xi = upscaled + hr_noise * sigma_sched[0]
    hr_total = total_steps(hr_sampler, hr_steps)
    hr_denoiser = CFGDenoiser(
        k_model,
        Conds(pipe, case.hr_prompt or case.prompt, hr_total, first_total),
        Conds(pipe, case.hr_negative or case.negative, hr_total, first_total),
        case.hr_cfg if case.hr_cfg is not None else case.cfg,
    )
    hr_kwargs = {"noise_sampler": noise_sampler_for(hr_generator, xi)} if hr_sampler == "euler_a" else {}
    with torch.no_grad():
        final = hr_fn(hr_denoiser, xi, sigma_sched, disable=True, **hr_kwargs)
    return {
        "name": case.name,
        "request": {k: v for k, v in case.__dict__.items() if k not in ("name", "notes")},
        "target": {"upscale_to": [ux, uy], "truncate": [tx, ty], "latent_size": list(final.shape[2:])},
        "hires_total_steps": total,
        "hires_calls": hr_denoiser.step,
        "first_pass_schedule": Conds(pipe, case.prompt, first_total, None).schedule,
        "hires_schedule": hr_denoiser.cond.schedule,
        "first_pass_latents": writer.array(f"{case.name}.first-pass", samples),
        "final_latents": writer.array(f"{case.name}.final", final),
        # What the 8-bit truncation sees: a value within float noise of a level boundary may land on
        # either side on another CPU, so the test can start the second pass from these exact pixels.
        **({"first_pass_decoded": writer.array(f"{case.name}.first-pass-decoded", decoded)} if decoded is not None else {}),
    }


def interpolate_refs(writer: RefWriter) -> list:
    """F.interpolate against the TS port: every mode, up and down, integer and fractional ratios."""
    g = torch.Generator().manual_seed(77)
    x = torch.randn((1, 2, 7, 9), generator=g) * 3
    out = []
    writer_input = writer.array("interpolate.input", x)
    for mode, aa in [("bilinear", False), ("bilinear", True), ("bicubic", False), ("bicubic", True), ("nearest", False), ("nearest-exact", False)]:
        for size in [(14, 18), (11, 20), (5, 4), (3, 13), (7, 9)]:
            y = F.interpolate(x, size=size, mode=mode, antialias=aa)
            tag = f"interpolate.{mode}{'-aa' if aa else ''}.{size[0]}x{size[1]}"
            out.append({"mode": mode, "antialias": aa, "size": list(size), "output": writer.array(tag, y)})
    return [writer_input, out]


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    sampling, external = load_k_diffusion()
    pipe = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, pipe, unet_in_channels=4)
    cfg = models.SD15_SCHEDULER_CONFIG
    betas = torch.linspace(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, cfg["num_train_timesteps"], dtype=torch.float64) ** 2
    alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas.numpy(), axis=0), dtype=torch.float32)

    def unet(x, t, cond):
        return pipe.unet(x, t, encoder_hidden_states=cond).sample

    k_model = external.DiscreteEpsDDPMDenoiser(unet, alphas_cumprod, quantize=False)
    writer = RefWriter(OUT)
    interp_input, interp = interpolate_refs(writer)
    cases = [run_case(pipe, sampling, k_model, case, writer) for case in CASES]
    writer.manifest("cases.json", {
        "generator": "tools/make_hires_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-sd",
        "vae_factor": FACTOR,
        "onnx_vs_torch_max_abs": errors,
        "interpolate": {"input": interp_input, "cases": interp},
        "cases": cases,
    })
    writer.finish(MAX_OUT_MB)


if __name__ == "__main__":
    main()
