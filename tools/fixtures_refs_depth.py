"""Reference outputs of diffusers' StableDiffusionDepth2ImgPipeline with an explicit depth_map, plus bicubic resizes.

The init images are PNGs re-read from disk and the depth maps float32 .bin files, so the TS side starts from exactly
the same inputs. Every run starts from its seed alone; its pre-loop draws (VAE posterior sample, then the add_noise
noise) are recorded and checked to replay from one generator. A UNet pre-hook records what the UNet received: the
depth channel (resized to latent size, then min/max-normalised to [-1, 1]) and every call's timestep.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import fixtures_cases as cases
from fixtures_io import ArrayRef, RefWriter, record_randn
from fixtures_refs_img2img import init_image
from fixtures_refs_txt2img import KARRAS, NATIVE, NEGATIVE, WIDE

PIPELINE_MODULE = "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_depth2img"
PROMPT = "a stone bridge over a river at dusk"
DRAW_SOURCES = {cases.VAE_MODULE: "vae_posterior"}

Size = tuple[int, int]  # (width, height) in pixels
DepthShape = tuple[int, int, int]  # [batch, height, width] as passed to the pipeline


@dataclass(frozen=True)
class DepthCase:
    name: str
    scheduler: str
    steps: int
    strength: float
    guidance_scale: float
    seed: int
    size: Size
    depth_shape: DepthShape
    overrides: dict[str, object] = field(default_factory=dict)
    num_images_per_prompt: int = 1
    negative_prompt: str | None = None
    record_first_sample: bool = False  # save the whole first UNet sample (latents + depth) too


CASES: list[DepthCase] = [
    DepthCase("ddim-s0.8", "DDIMScheduler", 4, 0.8, 7.5, 500, NATIVE, (1, 32, 32), record_first_sample=True),
    # Depth map portrait (20 high, 13 wide) for a landscape image: bicubic shrinks rows and stretches columns.
    # Also Euler's first UNet sample: scale_model_input divides the latents but not the depth channel.
    DepthCase(
        "euler-s0.6-wide", "EulerDiscreteScheduler", 5, 0.6, 7.5, 501, WIDE, (1, 20, 13),
        negative_prompt=NEGATIVE, record_first_sample=True,
    ),
    DepthCase(
        "dpmpp-2m-karras-s1.0-nocfg", "DPMSolverMultistepScheduler", 6, 1.0, 1.0, 502, NATIVE, (1, 32, 32), KARRAS
    ),
    DepthCase("pndm-s0.5-cfg5-batch2", "PNDMScheduler", 4, 0.5, 5.0, 503, NATIVE, (1, 32, 32), num_images_per_prompt=2),
]

# Standalone F.interpolate(mode="bicubic", align_corners=False) references: (name, input [H, W], output [H, W]).
BICUBIC_CASES: list[tuple[str, tuple[int, int], tuple[int, int]]] = [
    ("down-2x", (32, 32), (16, 16)),
    ("down-4x-by-3x", (64, 48), (16, 16)),
    ("up-3x", (5, 7), (15, 21)),
    ("mixed-non-integer", (20, 13), (16, 24)),
    ("down-non-integer", (37, 23), (16, 12)),
    ("identity", (9, 11), (9, 11)),
    ("row-1px", (1, 9), (4, 16)),
    ("column-1px-to-3px", (9, 1), (5, 3)),
    ("to-1x1", (6, 8), (1, 1)),
    ("from-1x1", (1, 1), (3, 2)),
]


def depth_map(height: int, width: int, seed: int) -> np.ndarray:
    """[1, H, W] float32 in a DPT-like range (relative inverse depth, larger = nearer): a ground plane receding
    towards the top, a rounded object in front, and a little noise so no two pixels are equal."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    plane = 3.0 + 6.0 * y
    blob = 5.0 * np.exp(-((x - 0.35) ** 2 + (y - 0.55) ** 2) / 0.03)
    noise = 0.05 * np.random.default_rng(seed).standard_normal((height, width))
    return (plane + blob + noise).astype(np.float32)[None]


def bicubic_input(height: int, width: int, seed: int) -> np.ndarray:
    """[1, 1, H, W]: a smooth ramp, a hard step (bicubic overshoots it) and noise, with negative values."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    step = np.where(x + 0.5 * y > 0.5 * (width + 0.5 * height), 4.0, -2.0)
    values = 0.3 * x - 0.2 * y + step + np.random.default_rng(seed).standard_normal((height, width))
    return values.astype(np.float32)[None, None]


def bicubic_refs(writer: RefWriter) -> list[dict[str, object]]:
    refs = []
    for i, (name, in_size, out_size) in enumerate(BICUBIC_CASES):
        x = torch.from_numpy(bicubic_input(*in_size, seed=700 + i))
        y = F.interpolate(x, size=out_size, mode="bicubic", align_corners=False)
        refs.append({
            "name": name,
            "size": list(out_size),
            "input": writer.array(f"bicubic.{name}.input", x),
            "output": writer.array(f"bicubic.{name}.output", y),
        })
    return refs


InitImage = tuple[str, Image.Image]  # PNG file name, the image as read back from it


def _inputs(writer: RefWriter) -> tuple[dict[str, object], dict[Size, InitImage], dict[DepthShape, ArrayRef]]:
    """Write each init image and depth map once; the pipeline gets the image back as read from its PNG."""
    images: dict[Size, InitImage] = {}
    image_files: dict[str, str] = {}
    for width, height in sorted({c.size for c in CASES}):
        file = writer.png(f"input.init-image.{width}x{height}", init_image(width, height))
        image_files[f"{width}x{height}"] = file
        images[(width, height)] = (file, Image.open(writer.out_dir / file).copy())
    depths: dict[DepthShape, ArrayRef] = {}
    for i, shape in enumerate(sorted({c.depth_shape for c in CASES})):
        name = f"input.depth.{'x'.join(map(str, shape))}"
        depths[shape] = writer.array(name, depth_map(shape[1], shape[2], seed=600 + i))
    return {"init_images": image_files, "depth_maps": list(depths.values())}, images, depths


def _load_depth(writer: RefWriter, ref: ArrayRef) -> torch.Tensor:
    data = np.fromfile(writer.out_dir / str(ref["file"]), dtype="<f4").reshape(ref["shape"])
    return torch.from_numpy(data)


def _record_unet_calls(pipe):
    """Forward pre-hook keeping every UNet call's (sample, timestep)."""
    calls: list[tuple[torch.Tensor, float]] = []

    def hook(_module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        calls.append((sample.detach().clone(), float(torch.as_tensor(timestep).reshape(-1)[0])))

    return calls, pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)


def _expected_depth_channel(depth: torch.Tensor, case: DepthCase, vae_scale_factor: int) -> torch.Tensor:
    """The conditioning as the pipeline documents it, computed independently of it: bicubic to latent size,
    per-map min/max to [-1, 1], one copy per image, then [uncond, cond] halves under CFG."""
    width, height = case.size
    latent_size = (height // vae_scale_factor, width // vae_scale_factor)
    resized = F.interpolate(depth.unsqueeze(1), size=latent_size, mode="bicubic", align_corners=False)
    lo = resized.amin(dim=(1, 2, 3), keepdim=True)
    hi = resized.amax(dim=(1, 2, 3), keepdim=True)
    normalised = 2.0 * (resized - lo) / (hi - lo) - 1.0
    batch = normalised.repeat(case.num_images_per_prompt, 1, 1, 1)
    return torch.cat([batch, batch]) if case.guidance_scale > 1 else batch


def _call(pipe, case: DepthCase, image: Image.Image, depth: torch.Tensor, output_type: str):
    return pipe(
        prompt=PROMPT,
        negative_prompt=case.negative_prompt,
        image=image,
        depth_map=depth,
        strength=case.strength,
        guidance_scale=case.guidance_scale,
        num_inference_steps=case.steps,
        num_images_per_prompt=case.num_images_per_prompt,
        generator=torch.Generator("cpu").manual_seed(case.seed),
        output_type=output_type,
    ).images


def _check_draws_replay(name: str, seed: int, draws: list[tuple[str, torch.Tensor]]) -> None:
    generator = torch.Generator("cpu").manual_seed(seed)
    for module, drawn in draws:
        replayed = torch.randn(drawn.shape, generator=generator)
        cases.assert_same(name, f"draw from {module} vs replayed randn", drawn, replayed)


def _run_case(
    pipe, scheduler_config, case: DepthCase, init: InitImage, depth_ref: ArrayRef, writer: RefWriter
) -> dict[str, object]:
    name = f"depth2img.{case.name}"
    image_file, image = init
    depth = _load_depth(writer, depth_ref)
    pipe.scheduler = cases.make_scheduler(scheduler_config, case.scheduler, case.overrides)
    scheduler_module = type(pipe.scheduler).__module__
    calls, handle = _record_unet_calls(pipe)
    try:
        with record_randn(PIPELINE_MODULE, cases.VAE_MODULE, scheduler_module) as draws:
            final = _call(pipe, case, image, depth, "latent")
    finally:
        handle.remove()
    pre_loop, step_noise = cases.split_draws(name, draws, scheduler_module)
    if step_noise:
        raise AssertionError(f"{name}: {case.scheduler} drew step noise; the cases are meant to be deterministic")
    _check_draws_replay(name, case.seed, pre_loop)
    depth_channel = calls[0][0][:, 4:5]
    for i, (sample, _) in enumerate(calls):
        cases.assert_same(name, f"depth channel of UNet call {i} vs call 0", sample[:, 4:5], depth_channel)
    cases.assert_same(name, "UNet depth channel vs own bicubic + normalisation",
                      depth_channel, _expected_depth_channel(depth, case, pipe.vae_scale_factor))
    record: dict[str, object] = {
        "name": case.name,
        "model": "tiny-sd-depth",
        "prompt": PROMPT,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "strength": case.strength,
        "num_inference_steps": case.steps,
        "num_images_per_prompt": case.num_images_per_prompt,
        "width": case.size[0],
        "height": case.size[1],
        "seed": case.seed,
        "init_image": image_file,
        "depth_map": depth_ref,
        "scheduler": cases.scheduler_record(case.scheduler, case.overrides, pipe.scheduler),
        "unet_timesteps": [t for _, t in calls],
        "pre_loop_draws": [
            {"source": DRAW_SOURCES.get(module, "pipeline_noise"), **writer.array(f"{name}.draw{i}", t)}
            for i, (module, t) in enumerate(pre_loop)
        ],
        "unet_depth_channel": writer.array(f"{name}.unet-depth-channel", depth_channel),
    }
    if case.record_first_sample:
        record["first_unet_sample"] = writer.array(f"{name}.first-unet-sample", calls[0][0])
    record["final_latents"] = writer.array(f"{name}.final-latents", final)
    record.update(cases.decode_and_save(writer, pipe, name, final))
    via_pipeline = _call(pipe, case, image, depth, "np")
    saved = np.fromfile(writer.out_dir / record["image"]["file"], dtype="<f4").reshape(via_pipeline.shape)
    if not np.array_equal(saved, via_pipeline):
        raise AssertionError(f"{name}: saved image differs from the pipeline's own output_type='np' result")
    return record


def write_references(pipe, writer: RefWriter) -> dict[str, object]:
    pipe.set_progress_bar_config(disable=True)
    base = pipe.scheduler
    input_records, images, depths = _inputs(writer)
    try:
        records = [
            _run_case(pipe, base.config, case, images[case.size], depths[case.depth_shape], writer) for case in CASES
        ]
    finally:
        pipe.scheduler = base
    return {"inputs": input_records, "depth2img": records, "bicubic": bicubic_refs(writer)}
