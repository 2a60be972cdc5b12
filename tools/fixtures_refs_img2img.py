"""Reference outputs of the torch img2img and inpaint pipelines, plus VAE-encoder outputs for the init images.

Init images and masks are generated deterministically and saved as PNG; the pipelines are fed those PNGs
re-read from disk, so the TS side starts from exactly the same pixels. Every run starts from its seed alone and
records all randn draws in call order (VAE posterior samples, the pipeline's noise, the scheduler's step noise),
and the first UNet call's inputs so the conditioning (noised latents, mask, masked-image latents) can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline
from PIL import Image

import fixtures_cases as cases
from fixtures_io import RefWriter, record_randn
from fixtures_refs_txt2img import ASTRONAUT, KARRAS, NATIVE, NEGATIVE, WIDE

PROMPT = "a watercolor landscape with a red house"
DRAW_SOURCES = {cases.VAE_MODULE: "vae_posterior"}


def init_image(width: int, height: int) -> Image.Image:
    """Colour ramps plus a hard-edged disc: smooth and sharp content for the VAE to encode."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 255 * x / (width - 1)
    g = 255 * y / (height - 1)
    disc = (x - 0.6 * width) ** 2 + (y - 0.4 * height) ** 2 < (0.25 * min(width, height)) ** 2
    b = np.where(disc, 230.0, 40.0)
    rgb = np.stack([r, g, b], axis=-1).round().astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB")


def mask_image(width: int, height: int) -> Image.Image:
    """White rectangle to repaint, with a border of 127/128 values straddling diffusers' 0.5 binarize threshold."""
    m = np.zeros((height, width), dtype=np.uint8)
    top, bottom, left, right = height // 4, 3 * height // 4, width // 3, width - 2
    m[top:bottom, left:right] = 255
    m[top - 1, left:right] = 128  # 128/255 > 0.5 -> repainted
    m[bottom, left:right] = 127  # 127/255 < 0.5 -> kept
    return Image.fromarray(m, mode="L")


@dataclass(frozen=True)
class ImageCase:
    name: str
    kind: str  # "img2img" | "inpaint" (9-channel UNet) | "inpaint-legacy" (txt2img UNet in the inpaint pipeline)
    scheduler: str
    strength: float
    seed: int
    steps: int = 10
    overrides: dict[str, object] = field(default_factory=dict)
    guidance_scale: float = 7.5
    prompt: str = PROMPT
    negative_prompt: str | None = None
    size: tuple[int, int] = NATIVE


CASES: list[ImageCase] = [
    ImageCase("ddim-s0.6", "img2img", "DDIMScheduler", 0.6, 100),
    ImageCase("euler-s0.3", "img2img", "EulerDiscreteScheduler", 0.3, 101, negative_prompt=NEGATIVE),
    ImageCase("euler-a-s0.6", "img2img", "EulerAncestralDiscreteScheduler", 0.6, 102),
    ImageCase("dpmpp-2m-karras-s0.6-wide", "img2img", "DPMSolverMultistepScheduler", 0.6, 103, overrides=KARRAS, size=WIDE),
    ImageCase("pndm-s1.0", "img2img", "PNDMScheduler", 1.0, 104),
    ImageCase("unipc-s0.3-nocfg", "img2img", "UniPCMultistepScheduler", 0.3, 105, guidance_scale=1.0),
    ImageCase("lms-s0.6", "img2img", "LMSDiscreteScheduler", 0.6, 106, prompt=ASTRONAUT),
    ImageCase("ddim-s1.0", "inpaint", "DDIMScheduler", 1.0, 200),
    ImageCase("euler-s0.6", "inpaint", "EulerDiscreteScheduler", 0.6, 201, negative_prompt=NEGATIVE),
    ImageCase("dpmpp-2m-karras-s1.0", "inpaint", "DPMSolverMultistepScheduler", 1.0, 202, overrides=KARRAS),
    ImageCase("euler-a-s0.3", "inpaint", "EulerAncestralDiscreteScheduler", 0.3, 203),
    ImageCase("pndm-s1.0-wide", "inpaint", "PNDMScheduler", 1.0, 204, size=WIDE),
    ImageCase("euler-s0.6", "inpaint-legacy", "EulerDiscreteScheduler", 0.6, 300),
    ImageCase("ddim-s1.0", "inpaint-legacy", "DDIMScheduler", 1.0, 301),
]


def _inputs(writer: RefWriter) -> tuple[dict[str, object], dict[tuple[int, int], tuple[Image.Image, Image.Image]]]:
    """Write the init images and masks once per size; the pipelines get them back as read from the PNGs."""
    records: dict[str, object] = {}
    loaded = {}
    for width, height in (NATIVE, WIDE):
        tag = f"{width}x{height}"
        image_file = writer.png(f"input.init-image.{tag}", init_image(width, height))
        mask_file = writer.png(f"input.mask.{tag}", mask_image(width, height))
        records[tag] = {"width": width, "height": height, "init_image": image_file, "mask": mask_file}
        loaded[(width, height)] = tuple(Image.open(writer.out_dir / f).copy() for f in (image_file, mask_file))
    return records, loaded


def _vae_encoder_refs(pipe, writer: RefWriter, images) -> list[dict[str, object]]:
    refs = []
    for (width, height), (image, _) in images.items():
        name = f"vae-encoder.{width}x{height}"
        pixels = pipe.image_processor.preprocess(image, height=height, width=width)
        with torch.no_grad():
            dist = pipe.vae.encode(pixels).latent_dist
        refs.append({
            "name": name,
            "init_image": f"{width}x{height}",
            "pixels": writer.array(f"{name}.pixels", pixels),
            "mean": writer.array(f"{name}.mean", dist.mean),
            "logvar": writer.array(f"{name}.logvar", dist.logvar),
            "std": writer.array(f"{name}.std", dist.std),
        })
    return refs


def _first_unet_call(pipe):
    """Forward pre-hook capturing (sample, timestep) of the first UNet call of a run."""
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(_module, args, kwargs):
        if not captured:
            sample = args[0] if args else kwargs["sample"]
            timestep = args[1] if len(args) > 1 else kwargs["timestep"]
            captured.append((sample.detach().clone(), torch.as_tensor(timestep).detach().clone()))

    return captured, pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)


def run_case(pipe, case: ImageCase, images, writer: RefWriter, decode: bool = True) -> dict[str, object]:
    """One pipeline run and its record; decode=False leaves out the decoded image (.bin and PNGs)."""
    name = f"{case.kind}.{case.name}"
    width, height = case.size
    image, mask = images[case.size]
    pipe.scheduler = cases.make_scheduler(pipe.scheduler.config, case.scheduler, case.overrides)
    scheduler_module = type(pipe.scheduler).__module__
    pipeline_module = cases.PIPELINE_MODULES["img2img" if case.kind == "img2img" else "inpaint"]
    extra = {} if case.kind == "img2img" else {"mask_image": mask, "height": height, "width": width}
    captured, handle = _first_unet_call(pipe)
    try:
        with record_randn(pipeline_module, cases.VAE_MODULE, scheduler_module) as draws:
            final = pipe(
                prompt=case.prompt,
                negative_prompt=case.negative_prompt,
                image=image,
                strength=case.strength,
                guidance_scale=case.guidance_scale,
                num_inference_steps=case.steps,
                generator=torch.Generator("cpu").manual_seed(case.seed),
                output_type="latent",
                **extra,
            ).images
    finally:
        handle.remove()
    pre_loop, step_noise = cases.split_draws(name, draws, scheduler_module)
    _check_draws_replay(name, case.seed, pre_loop)
    sample, timestep = captured[0]
    return {
        "name": case.name,
        "kind": case.kind,
        "model": "tiny-sd-inpaint" if case.kind == "inpaint" else "tiny-sd",
        "prompt": case.prompt,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "strength": case.strength,
        "num_inference_steps": case.steps,
        "width": width,
        "height": height,
        "init_image": f"{width}x{height}",
        "seed": case.seed,
        "stochastic": bool(step_noise),
        "scheduler": cases.scheduler_record(case.scheduler, case.overrides, pipe.scheduler),
        "pre_loop_draws": [
            {"source": DRAW_SOURCES.get(module, "pipeline_noise"), **writer.array(f"{name}.draw{i}", t)}
            for i, (module, t) in enumerate(pre_loop)
        ],
        "step_noise": cases.save_step_noise(writer, name, step_noise),
        "first_unet_input": {
            "sample": writer.array(f"{name}.first-unet-sample", sample),
            "timestep": float(timestep.reshape(-1)[0]),
        },
        "final_latents": writer.array(f"{name}.final-latents", final),
        **(cases.decode_and_save(writer, pipe, name, final) if decode else {}),
    }


def _check_draws_replay(name: str, seed: int, draws: list[tuple[str, torch.Tensor]]) -> None:
    """The pre-loop draws must be successive randn calls on one generator: what the TS side replays."""
    generator = torch.Generator("cpu").manual_seed(seed)
    for module, drawn in draws:
        cases.assert_same(name, f"draw from {module} vs replayed randn", drawn, torch.randn(drawn.shape, generator=generator))


def write_references(txt2img_pipe, inpaint_pipe: StableDiffusionInpaintPipeline, writer: RefWriter) -> dict[str, object]:
    img2img = StableDiffusionImg2ImgPipeline(**txt2img_pipe.components, requires_safety_checker=False)
    legacy_inpaint = StableDiffusionInpaintPipeline(**txt2img_pipe.components, requires_safety_checker=False)
    pipes = {"img2img": img2img, "inpaint": inpaint_pipe, "inpaint-legacy": legacy_inpaint}
    for p in pipes.values():
        p.set_progress_bar_config(disable=True)
    base_scheduler = txt2img_pipe.scheduler
    input_records, images = _inputs(writer)
    records = []
    for case in CASES:
        pipe = pipes[case.kind]
        pipe.scheduler = base_scheduler
        records.append(run_case(pipe, case, images, writer))
    for p in pipes.values():
        p.scheduler = base_scheduler
    return {
        "inputs": input_records,
        "vae_encoder": _vae_encoder_refs(img2img, writer, images),
        "img2img": [r for r in records if r["kind"] == "img2img"],
        "inpaint": [r for r in records if r["kind"] != "img2img"],
    }
