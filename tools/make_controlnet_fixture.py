"""Build the tiny ControlNet fixture and diffusers StableDiffusionControlNet*Pipeline references.

Usage: /opt/diffuse-venv/bin/python tools/make_controlnet_fixture.py
Writes test/fixtures/tiny-sd-control/: unet/ (a UNet at half tiny-sd's widths taking the ControlNet residuals as
extra inputs), controlnet/ (`ControlNetModel.from_unet` of that UNet, random non-zero zero-convs), scheduler/
(tiny-sd's PNDM) and model_index.json; and test/fixtures/controlnet-pipeline/ (cases.json, control image PNGs,
float32 final latents). Text encoder, VAE and tokenizer are tiny-sd's (the same seeded builders; this script checks
the shipped ONNX graphs still agree with them).

optimum 1.23 has no ControlNet export, so both graphs are traced with torch.onnx.export in the layout the ONNX
community conversions publish: controlnet/model.onnx takes sample, timestep, encoder_hidden_states,
controlnet_cond ([0, 1] RGB at pixel size) and conditioning_scale (a scalar) and returns down_block_res_sample_0..N
and mid_block_res_sample; unet/model.onnx takes down_block_additional_residual_0..N and
mid_block_additional_residual after the usual three inputs. Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from diffusers import (
    ControlNetModel,
    StableDiffusionControlNetImg2ImgPipeline,
    StableDiffusionControlNetPipeline,
    UNet2DConditionModel,
)
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_cases as cases  # noqa: E402
import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from fixtures_refs_img2img import init_image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
MODEL = FIXTURES / "tiny-sd-control"
REFS = FIXTURES / "controlnet-pipeline"
OPSET = 14
MAX_MB = 1.5

UNET_SEED = 7
CONTROLNET_SEED = 8
# Narrower than tiny-sd-depth's (16, 32): at those widths UNet + ControlNet are 1.7 MB, over the
# fixture budget; (16, 24) makes 1.3 MB.
BLOCK_OUT_CHANNELS = (16, 24)
# One stride-2 stage: the control image arrives at pixel size and tiny-sd's VAE halves each side.
CONDITIONING_CHANNELS = (8, 16)
PROMPT = "a lighthouse on a cliff"
NEGATIVE = "blurry, low quality"


def build_unet() -> UNet2DConditionModel:
    config = models.build_unet(in_channels=4, seed=UNET_SEED).config
    torch.manual_seed(UNET_SEED)
    return UNet2DConditionModel.from_config(config, block_out_channels=BLOCK_OUT_CHANNELS).eval()


def build_controlnet(
    unet: UNet2DConditionModel, conditioning_channels: tuple[int, ...] = CONDITIONING_CHANNELS, seed: int = CONTROLNET_SEED
) -> ControlNetModel:
    """from_unet copies the UNet's down and mid blocks; its zero convolutions start at zero, which would make every
    residual zero, so they get seeded random weights large enough that the residuals move the result.
    (tools/make_bench_models.py makes the full-size SD 1.5 one with this too.)"""
    net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels).eval()
    g = torch.Generator("cpu").manual_seed(seed)
    zero_convs = [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for conv in zero_convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.3)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.1)
    return net


class ControlNetGraph(torch.nn.Module):
    def __init__(self, net: ControlNetModel) -> None:
        super().__init__()
        self.net = net

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale):
        down, mid = self.net(
            sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale=conditioning_scale, return_dict=False
        )
        return (*down, mid)


class ResidualUnetGraph(torch.nn.Module):
    def __init__(self, unet: UNet2DConditionModel) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, *residuals):
        return self.unet(
            sample, timestep, encoder_hidden_states,
            down_block_additional_residuals=residuals[:-1], mid_block_additional_residual=residuals[-1],
        ).sample


def probe_inputs(unet: UNet2DConditionModel, net: ControlNetModel):
    g = torch.Generator("cpu").manual_seed(99)
    sample = torch.randn(2, 4, 12, 8, generator=g)
    timestep = torch.tensor([701.37])
    text = torch.randn(2, 77, 32, generator=g)
    cond = torch.rand(2, 3, 24, 16, generator=g)
    with torch.no_grad():
        down, mid = net(sample, timestep, text, cond, conditioning_scale=0.7, return_dict=False)
    return sample, timestep, text, cond, [*down, mid]


def export(unet: UNet2DConditionModel, net: ControlNetModel) -> int:
    sample, timestep, text, cond, residuals = probe_inputs(unet, net)
    n = len(residuals) - 1
    spatial = {0: "batch_size", 2: "height", 3: "width"}
    (MODEL / "controlnet").mkdir(parents=True)
    (MODEL / "unet").mkdir(parents=True)
    cn_outputs = [f"down_block_res_sample_{i}" for i in range(n)] + ["mid_block_res_sample"]
    torch.onnx.export(
        ControlNetGraph(net), (sample, timestep, text, cond, torch.tensor(0.7)), str(MODEL / "controlnet" / "model.onnx"),
        input_names=["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale"],
        output_names=cn_outputs, opset_version=OPSET,
        dynamic_axes={
            "sample": spatial, "timestep": {0: "steps"}, "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "controlnet_cond": {0: "batch_size", 2: "image_height", 3: "image_width"},
            **{name: spatial for name in cn_outputs},
        },
    )
    residual_inputs = [f"down_block_additional_residual_{i}" for i in range(n)] + ["mid_block_additional_residual"]
    torch.onnx.export(
        ResidualUnetGraph(unet), (sample, timestep, text, *residuals), str(MODEL / "unet" / "model.onnx"),
        input_names=["sample", "timestep", "encoder_hidden_states", *residual_inputs],
        output_names=["out_sample"], opset_version=OPSET,
        dynamic_axes={
            "sample": spatial, "timestep": {0: "steps"}, "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
            "out_sample": spatial, **{name: spatial for name in residual_inputs},
        },
    )
    for graph, module in (("unet", unet), ("controlnet", net)):
        # _use_default_values is a set's order: left out so a rerun writes the same bytes.
        config = {k: v for k, v in module.config.items() if k != "_use_default_values"}
        (MODEL / graph / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return n


def check_onnx(unet: UNet2DConditionModel, net: ControlNetModel) -> dict[str, float]:
    """ONNX Runtime vs torch on the probe inputs, and that the residuals matter to the UNet."""
    sample, timestep, text, cond, residuals = probe_inputs(unet, net)
    opts = {"providers": ["CPUExecutionProvider"]}
    cn = ort.InferenceSession(str(MODEL / "controlnet" / "model.onnx"), **opts)
    got = cn.run(None, {
        "sample": sample.numpy(), "timestep": timestep.numpy(), "encoder_hidden_states": text.numpy(),
        "controlnet_cond": cond.numpy(), "conditioning_scale": np.array(0.7, dtype=np.float32),
    })
    errors = {"controlnet": max(float(np.abs(a - b.numpy()).max()) for a, b in zip(got, residuals))}
    un = ort.InferenceSession(str(MODEL / "unet" / "model.onnx"), **opts)
    names = [i.name for i in un.get_inputs()]
    feeds = dict(zip(names, [sample.numpy(), timestep.numpy(), text.numpy(), *[r.numpy() for r in residuals]]))
    with torch.no_grad():
        want = unet(sample, timestep, text, down_block_additional_residuals=residuals[:-1],
                    mid_block_additional_residual=residuals[-1]).sample
        plain = unet(sample, timestep, text).sample
    errors["unet"] = float(np.abs(un.run(None, feeds)[0] - want.numpy()).max())
    for graph, err in errors.items():
        if err > 1e-4:
            raise AssertionError(f"ONNX {graph} differs from torch by {err}")
    change = float((want - plain).abs().max() / plain.abs().max())
    if change < 0.05:
        raise AssertionError(f"the residuals barely move the UNet ({change:.3g} of max)")
    return errors


def control_image(width: int, height: int, seed: int) -> Image.Image:
    """An edge-map-like picture: white strokes (a ring and lines) on black, a few stray pixels."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    cx, cy, r = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, min(width, height) * 0.3
    ring = np.abs(np.hypot(x - cx, y - cy) - r) < 1.0
    line = np.abs((x - width * rng.uniform(0.2, 0.8)) + 0.5 * (y - height / 2)) < 0.8
    stray = rng.random((height, width)) < 0.02
    gray = np.where(ring | line | stray, 255, 0).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, -1), "RGB")


@dataclass(frozen=True)
class Unit:
    image: str  # a key of IMAGES
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0


@dataclass(frozen=True)
class ControlCase:
    name: str
    scheduler: str
    steps: int
    seed: int
    units: tuple[Unit, ...]
    guidance_scale: float = 7.5
    size: tuple[int, int] = (32, 32)  # (width, height)
    guess_mode: bool = False
    negative_prompt: str | None = None
    num_images_per_prompt: int = 1
    strength: float | None = None  # img2img when set
    overrides: dict[str, object] = field(default_factory=dict)
    refiner_switch: float | None = None  # base to denoising_end, then pipes["refiner"] from denoising_start


# (width, height, seed): 'a' at the size painted; 'b' another one; 'c' smaller and of another aspect, which
# diffusers' control image processor stretches to the size painted (PIL Lanczos, A1111's "Just resize").
IMAGES = {"a": (32, 32, 1), "b": (32, 32, 2), "c": (20, 28, 3), "wide": (48, 32, 4)}

CASES = [
    ControlCase("euler-scale0.6", "EulerDiscreteScheduler", 5, 800, (Unit("a", 0.6),)),
    ControlCase("ddim-start0.2-end0.7", "DDIMScheduler", 6, 801, (Unit("a", 1.0, 0.2, 0.7),), negative_prompt=NEGATIVE),
    ControlCase("euler-guess", "EulerDiscreteScheduler", 5, 802, (Unit("b", 0.9),), guidance_scale=5.0, guess_mode=True),
    ControlCase(
        "ddim-multi", "DDIMScheduler", 6, 803, (Unit("a", 0.8, 0.0, 0.5), Unit("b", 0.5, 0.3, 1.0)),
    ),
    ControlCase(
        "dpmpp-2m-batch2-resized-wide", "DPMSolverMultistepScheduler", 6, 804, (Unit("c", 1.1),),
        size=(48, 32), negative_prompt=NEGATIVE, num_images_per_prompt=2,
    ),
    ControlCase("euler-nocfg-scale1.5", "EulerDiscreteScheduler", 5, 805, (Unit("wide", 1.5),), guidance_scale=1.0, size=(48, 32)),
    ControlCase("img2img-ddim-s0.7", "DDIMScheduler", 6, 806, (Unit("a", 0.8),), strength=0.7),
    ControlCase("img2img-euler-guess-multi", "EulerDiscreteScheduler", 6, 807, (Unit("a", 0.7), Unit("b", 0.4, 0.0, 0.6)),
                guess_mode=True, strength=0.8),
]


def keep_mask(case: ControlCase, steps_run: int) -> list[list[float]]:
    """diffusers' controlnet_keep, written out independently of the pipeline, for the record."""
    return [
        [1.0 - float(i / steps_run < u.start or (i + 1) / steps_run > u.end) for u in case.units]
        for i in range(steps_run)
    ]


def run_case(pipes, base_config, case: ControlCase, images: dict[str, Image.Image], init: dict, writer: RefWriter, masks: dict | None = None):
    """One pipeline run and its record; with `masks` (per size: file name and L-mode picture) an inpaint pipeline's, under
    pipes["img2img"] (StableDiffusionControlNetInpaintPipeline takes image/control_image/strength as img2img does).
    With case.refiner_switch the ControlNet pipeline stops at denoising_end and pipes["refiner"] (an img2img pipeline
    without ControlNet) finishes from denoising_start on the same generator: the ControlNet steers the base's steps only."""
    pipe = pipes["img2img" if case.strength is not None else "txt2img"]
    pipe.scheduler = cases.make_scheduler(base_config, case.scheduler, case.overrides)
    refiner = pipes["refiner"] if case.refiner_switch is not None else None
    if refiner is not None:
        refiner.scheduler = cases.make_scheduler(base_config, case.scheduler, case.overrides)
    width, height = case.size
    single = len(case.units) == 1
    pick = (lambda values: values[0]) if single else (lambda values: values)
    args = dict(
        prompt=PROMPT, negative_prompt=case.negative_prompt, num_inference_steps=case.steps,
        guidance_scale=case.guidance_scale, num_images_per_prompt=case.num_images_per_prompt,
        height=height, width=width, guess_mode=case.guess_mode,
        controlnet_conditioning_scale=pick([u.scale for u in case.units]),
        control_guidance_start=pick([u.start for u in case.units]),
        control_guidance_end=pick([u.end for u in case.units]),
        generator=torch.Generator("cpu").manual_seed(case.seed), output_type="latent",
    )
    controls = [images[u.image] for u in case.units]
    if case.strength is not None:
        args.update(image=init[case.size][1], control_image=pick(controls), strength=case.strength)
        if masks is not None:
            args.update(mask_image=masks[case.size][1])
    else:
        args.update(image=pick(controls))
    calls, refined = [], []
    handle = pipe.unet.register_forward_pre_hook(lambda _m, a: calls.append(float(torch.as_tensor(a[1]).reshape(-1)[0])))
    try:
        if refiner is None:
            final = pipe(**args).images
        else:
            handed = pipe(**args, denoising_end=case.refiner_switch).images
            shared = {k: args[k] for k in ("prompt", "negative_prompt", "num_inference_steps", "guidance_scale", "num_images_per_prompt", "generator", "output_type")}
            hook = refiner.unet.register_forward_pre_hook(lambda _m, a: refined.append(float(torch.as_tensor(a[1]).reshape(-1)[0])))
            try:
                final = refiner(**shared, image=handed, denoising_start=case.refiner_switch).images
            finally:
                hook.remove()
    finally:
        handle.remove()
    record = {
        "name": case.name,
        "model": "tiny-sd-control",
        "task": "txt2img" if case.strength is None else "img2img" if masks is None else "inpaint",
        "prompt": PROMPT,
        "negative_prompt": case.negative_prompt,
        "guidance_scale": case.guidance_scale,
        "num_inference_steps": case.steps,
        "num_images_per_prompt": case.num_images_per_prompt,
        "width": width,
        "height": height,
        "seed": case.seed,
        "guess_mode": case.guess_mode,
        "units": [{"image": f"control.{u.image}.png", "scale": u.scale, "start": u.start, "end": u.end} for u in case.units],
        # over every step of the schedule, the refiner's too (diffusers computes it before cutting at denoising_end)
        "controlnet_keep": keep_mask(case, len(calls) if refiner is None else len(pipe.scheduler.timesteps)),
        "unet_timesteps": calls,
        "scheduler": cases.scheduler_record(case.scheduler, case.overrides, pipe.scheduler),
        "final_latents": writer.array(f"{case.name}.final-latents", final),
    }
    if refiner is not None:
        record.update(refiner_switch=case.refiner_switch, refiner_unet_timesteps=refined)
    if case.strength is not None:
        record.update(strength=case.strength, init_image=init[case.size][0], **({"mask_image": masks[case.size][0]} if masks is not None else {}))
    return record


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    base = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    shared = onnx_tools.check_graphs_match_torch(TINY_SD, base, unet_in_channels=4)
    unet = build_unet()
    net = build_controlnet(unet)
    if MODEL.exists():
        shutil.rmtree(MODEL)
    n = export(unet, net)
    shutil.copytree(TINY_SD / "scheduler", MODEL / "scheduler")
    errors = check_onnx(unet, net)
    parts = dict(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet, controlnet=net,
                 scheduler=models.sd15_scheduler(), safety_checker=None, feature_extractor=None,
                 requires_safety_checker=False)
    txt2img = StableDiffusionControlNetPipeline(**parts)
    multi = StableDiffusionControlNetPipeline(**{**parts, "controlnet": [net, net]})
    img2img = StableDiffusionControlNetImg2ImgPipeline(**parts)
    multi_img2img = StableDiffusionControlNetImg2ImgPipeline(**{**parts, "controlnet": [net, net]})
    txt2img.save_pretrained(str(Path("/tmp/diffuse-fixtures/tiny-sd-control-torch")), safe_serialization=True)
    index = json.loads(Path("/tmp/diffuse-fixtures/tiny-sd-control-torch/model_index.json").read_text())
    (MODEL / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    size = onnx_tools.folder_size_mb(MODEL)
    graphs = onnx_tools.describe_graphs(MODEL, ("unet", "controlnet"))
    (MODEL / "README.md").write_text(
        "<!-- generated by tools/make_controlnet_fixture.py; do not edit -->\n\n"
        "# tiny-sd-control: a UNet taking ControlNet residuals, and its ControlNet\n\n"
        f"UNet: tiny-sd's blocks at `block_out_channels={BLOCK_OUT_CHANNELS}`, random weights (seed {UNET_SEED}). "
        f"ControlNet: `ControlNetModel.from_unet` of it with `conditioning_embedding_out_channels={CONDITIONING_CHANNELS}` "
        f"(one stride-2 stage: tiny-sd's VAE is 2x), zero convolutions re-drawn at random (seed {CONTROLNET_SEED}) so "
        f"the {n} down residuals and the mid residual matter. Both traced with torch.onnx.export (opset {OPSET}). "
        "Text encoder, VAE and tokenizer are `../tiny-sd/`'s.\n\n"
        f"## Graphs\n\n{graphs}\n"
        "ONNX Runtime vs torch, max abs error on random inputs: "
        + ", ".join(f"{k} {v:.2e}" for k, v in {**errors, **shared}.items()) + ".\n"
    )
    writer = RefWriter(REFS)
    images = {}
    for key, (w, h, seed) in IMAGES.items():
        file = writer.png(f"control.{key}", control_image(w, h, seed))
        images[key] = Image.open(writer.out_dir / file).convert("RGB")
    init = {}
    for w, h in sorted({c.size for c in CASES if c.strength is not None}):
        file = writer.png(f"init.{w}x{h}", init_image(w, h))
        init[(w, h)] = (file, Image.open(writer.out_dir / file).copy())
    for p in (txt2img, multi, img2img, multi_img2img):
        p.set_progress_bar_config(disable=True)
    records = []
    for case in CASES:
        many = len(case.units) > 1
        pipes = {"txt2img": multi if many else txt2img, "img2img": multi_img2img if many else img2img}
        records.append(run_case(pipes, txt2img.scheduler.config, case, images, init, writer))
    writer.manifest("cases.json", {
        "generator": "tools/make_controlnet_fixture.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-sd-control unet/controlnet/scheduler + tiny-sd text_encoder/vae/tokenizer",
        "onnx_vs_torch_max_abs": {**errors, **shared},
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "seed": "torch.Generator('cpu').manual_seed(seed) given to the pipeline; latents=None",
            "units": "one ControlNetModel (the same one twice for two units: MultiControlNetModel), control images "
            "PNGs in this folder read back as RGB PIL images; the pipeline resizes them to width x height (PIL Lanczos)",
            "controlnet_keep": "per UNet call and unit: 1 - (i / n < start or (i + 1) / n > end), n = the calls run",
            "final_latents": "output_type='latent': the last step's latents, before / scaling_factor",
        },
        "cases": records,
    })
    print(f"tiny-sd-control: {size:.2f} MB, ONNX vs torch {errors}; references {onnx_tools.folder_size_mb(REFS):.2f} MB")
    if size + onnx_tools.folder_size_mb(REFS) > MAX_MB:
        raise AssertionError(f"fixture and references exceed {MAX_MB} MB")


if __name__ == "__main__":
    main()
