"""diffusers StableDiffusionImg2ImgPipeline references for the samplers test/fixtures/pipeline covers only in txt2img.

Usage: /opt/diffuse-venv/bin/python tools/make_img2img_more_refs.py
Writes test/fixtures/img2img-more/ (cases.json + float32 .bin references and PNGs) on the tiny-sd fixture, in
tools/fixtures_refs_img2img.py's case format without the decoded images (the test compares final latents; that
keeps the folder under 0.5 MB), plus `unet_timesteps` (every UNet call's timestep, in order).
The torch tiny-sd is rebuilt from its seeded builders and checked against test/fixtures/tiny-sd's ONNX graphs first.

Strengths are picked for diffusers' cut `timesteps[t_start * scheduler.order:]`, t_start = steps - int(steps *
strength): second-order schedulers (Heun, KDPM2) whose timesteps repeat or interleave, PNDM whose list repeats one
entry, t_start = 1, and a strength whose product with steps is not an integer.
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
import fixtures_refs_img2img as img2img_refs  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from fixtures_refs_img2img import ImageCase  # noqa: E402
from fixtures_refs_txt2img import KARRAS, NATIVE, NEGATIVE  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
OUT = FIXTURES / "img2img-more"
MAX_OUT_MB = 0.5

SDE = {"algorithm_type": "sde-dpmsolver++"}

# (steps, strength) -> t_start noted per case; order-2 schedulers cut at 2 * t_start.
CASES: list[ImageCase] = [
    ImageCase("heun-s0.5", "img2img", "HeunDiscreteScheduler", 0.5, 400, steps=6),  # t_start 3
    ImageCase("heun-s0.9-tstart1", "img2img", "HeunDiscreteScheduler", 0.9, 401, steps=5),  # t_start 1
    ImageCase("dpm2-s0.5", "img2img", "KDPM2DiscreteScheduler", 0.5, 402, steps=6, negative_prompt=NEGATIVE),
    ImageCase("dpm2-s0.9-tstart1", "img2img", "KDPM2DiscreteScheduler", 0.9, 403, steps=5),
    ImageCase("dpm2-a-s0.6", "img2img", "KDPM2AncestralDiscreteScheduler", 0.6, 404, steps=6),  # t_start 3
    ImageCase("deis-s0.6", "img2img", "DEISMultistepScheduler", 0.6, 405, steps=8),  # t_start 4
    ImageCase("deis-s0.9-tstart1", "img2img", "DEISMultistepScheduler", 0.9, 406, steps=8),  # int(7.2) = 7
    ImageCase("ddpm-s0.5", "img2img", "DDPMScheduler", 0.5, 407, steps=8),  # t_start 4, step noise
    ImageCase("dpmpp-2m-sde-s0.6", "img2img", "DPMSolverMultistepScheduler", 0.6, 408, steps=8, overrides=SDE),
    ImageCase("dpmpp-2m-sde-karras-s0.5", "img2img", "DPMSolverMultistepScheduler", 0.5, 409, steps=6,
              overrides={**SDE, **KARRAS}),
    ImageCase("euler-karras-s0.5", "img2img", "EulerDiscreteScheduler", 0.5, 410, steps=6, overrides=KARRAS),
    ImageCase("euler-karras-s0.9-tstart1", "img2img", "EulerDiscreteScheduler", 0.9, 411, steps=5, overrides=KARRAS),
    ImageCase("pndm-s0.5", "img2img", "PNDMScheduler", 0.5, 412, steps=8),  # t_start 4
    ImageCase("pndm-s0.75", "img2img", "PNDMScheduler", 0.75, 413, steps=8),  # t_start 2
    ImageCase("pndm-s0.875-tstart1", "img2img", "PNDMScheduler", 0.875, 414, steps=8),  # t_start 1
    ImageCase("unipc-s0.37", "img2img", "UniPCMultistepScheduler", 0.37, 415, steps=8),  # int(2.96) = 2
    ImageCase("unipc-s0.9-tstart1", "img2img", "UniPCMultistepScheduler", 0.9, 416, steps=8),
    ImageCase("ddim-s0.37", "img2img", "DDIMScheduler", 0.37, 417, steps=10),  # int(3.7) = 3
    ImageCase("ddim-s0.57", "img2img", "DDIMScheduler", 0.57, 418, steps=10),  # 10 * 0.57 = 5.699999999999999
]


def _init_image(writer: RefWriter) -> tuple[dict[str, object], Image.Image]:
    width, height = NATIVE
    tag = f"{width}x{height}"
    file = writer.png(f"input.init-image.{tag}", img2img_refs.init_image(width, height))
    return {tag: {"width": width, "height": height, "init_image": file}}, Image.open(writer.out_dir / file).copy()


def _unet_timesteps(pipe) -> tuple[list[float], object]:
    timesteps: list[float] = []

    def hook(_module, args, kwargs):
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        timesteps.append(float(torch.as_tensor(timestep).reshape(-1)[0]))

    return timesteps, pipe.unet.register_forward_pre_hook(hook, with_kwargs=True)


def write_references(txt2img_pipe, writer: RefWriter) -> dict[str, object]:
    pipe = img2img_refs.StableDiffusionImg2ImgPipeline(**txt2img_pipe.components, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base = pipe.scheduler
    inputs, image = _init_image(writer)
    records = []
    try:
        for case in CASES:
            pipe.scheduler = base  # each case's scheduler comes from tiny-sd's own config
            timesteps, handle = _unet_timesteps(pipe)
            try:
                record = img2img_refs.run_case(pipe, case, {case.size: (image, None)}, writer, decode=False)
            finally:
                handle.remove()
            records.append({**record, "unet_timesteps": timesteps})
    finally:
        pipe.scheduler = base
    return {"inputs": inputs, "img2img": records}


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    pipe = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, pipe, unet_in_channels=4)
    writer = RefWriter(OUT)
    manifest = {
        "generator": "tools/make_img2img_more_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-sd",
        "onnx_vs_torch_max_abs": errors,
        "conventions": {
            "format": "as test/fixtures/pipeline/cases.json's img2img cases (see its conventions)",
            "unet_timesteps": "the timestep of every UNet call, in order (CFG batches count once): "
            "scheduler.timesteps[t_start * scheduler.order:], t_start = steps - int(steps * strength)",
        },
        **write_references(pipe, writer),
    }
    writer.manifest("cases.json", manifest)
    writer.finish(MAX_OUT_MB)


if __name__ == "__main__":
    main()
