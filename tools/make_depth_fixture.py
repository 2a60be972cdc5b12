"""Build the tiny depth-to-image fixture and diffusers StableDiffusionDepth2ImgPipeline references.

Usage: /opt/diffuse-venv/bin/python tools/make_depth_fixture.py
Writes test/fixtures/tiny-sd-depth/ (unet/ with 5 input channels = 4 latent + 1 depth, as
stabilityai/stable-diffusion-2-depth; scheduler/ = tiny-sd's PNDM; model_index.json) and
test/fixtures/depth-pipeline/ (cases.json + float32 .bin references, init image PNGs, bicubic resize references).
The text encoder, VAE and tokenizer are tiny-sd's: the same seeded builders give the same weights, and this script
checks that test/fixtures/tiny-sd's ONNX text encoder and VAE still agree with them before using them.
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from diffusers import StableDiffusionDepth2ImgPipeline, StableDiffusionPipeline, UNet2DConditionModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
import fixtures_refs_depth as depth_refs  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
TINY_SD_DEPTH = FIXTURES / "tiny-sd-depth"
DEPTH_REFS = FIXTURES / "depth-pipeline"
WORK = Path("/tmp/diffuse-fixtures")

DEPTH_UNET_SEED = 6
DEPTH_UNET_IN_CHANNELS = 5
# Half tiny-sd's (32, 64): at full width the UNet alone is 3.4 MB, more than this fixture's share of the
# test/fixtures size budget. Same blocks, layers, attention and cross-attention width (tiny-sd's text encoder).
DEPTH_BLOCK_OUT_CHANNELS = (16, 32)
MAX_TINY_SD_DEPTH_MB = 1.5


def build_depth_unet() -> UNet2DConditionModel:
    config = models.build_unet(in_channels=DEPTH_UNET_IN_CHANNELS, seed=DEPTH_UNET_SEED).config
    torch.manual_seed(DEPTH_UNET_SEED)
    return UNet2DConditionModel.from_config(config, block_out_channels=DEPTH_BLOCK_OUT_CHANNELS).eval()


def build_pipelines() -> tuple[StableDiffusionPipeline, StableDiffusionDepth2ImgPipeline]:
    """tiny-sd's txt2img pipeline (to check its shipped graphs) and the depth pipeline sharing its components."""
    base = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    depth = StableDiffusionDepth2ImgPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=build_depth_unet(),
        scheduler=models.sd15_scheduler(),
        # depth_map is always passed explicitly, so no DPT estimator is needed.
        depth_estimator=None,
        feature_extractor=None,
    )
    return base, depth


def export_unet(depth: StableDiffusionDepth2ImgPipeline) -> None:
    """optimum reloads the saved folder with from_pretrained, which refuses a depth2img pipeline saved without
    depth_estimator/feature_extractor (they are not optional components). So the same components are exported as
    a txt2img pipeline; only its unet/ and scheduler/ are kept, and model_index.json is the depth pipeline's own."""
    depth_dir = WORK / "tiny-sd-depth-torch"
    depth.save_pretrained(str(depth_dir), safe_serialization=True)
    as_txt2img = StableDiffusionPipeline(
        vae=depth.vae,
        text_encoder=depth.text_encoder,
        tokenizer=depth.tokenizer,
        unet=depth.unet,
        scheduler=depth.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    txt2img_dir = WORK / "tiny-sd-depth-as-txt2img-torch"
    as_txt2img.save_pretrained(str(txt2img_dir), safe_serialization=True)
    export_dir = onnx_tools.export_onnx(txt2img_dir, WORK / "tiny-sd-depth-onnx", "text-to-image", as_txt2img)
    onnx_tools.copy_export(export_dir, TINY_SD_DEPTH, ("unet",))
    shutil.copy(depth_dir / "model_index.json", TINY_SD_DEPTH / "model_index.json")


def check_against_onnx(base: StableDiffusionPipeline, depth: StableDiffusionDepth2ImgPipeline) -> dict[str, float]:
    shared = onnx_tools.check_graphs_match_torch(TINY_SD, base, unet_in_channels=4)
    errors = {f"{graph} (tiny-sd)": err for graph, err in shared.items() if graph != "unet"}
    errors["unet"] = onnx_tools.check_graphs_match_torch(TINY_SD_DEPTH, depth, DEPTH_UNET_IN_CHANNELS)["unet"]
    # Without this the fixture could silently ignore its depth input.
    g = torch.Generator("cpu").manual_seed(99)
    sample = torch.randn(1, DEPTH_UNET_IN_CHANNELS, 16, 16, generator=g)
    text = torch.randn(1, 77, 32, generator=g)
    flipped = torch.cat([sample[:, :4], sample[:, 4:].flip(-1)], 1)
    with torch.no_grad():
        change = (depth.unet(sample, 500, text).sample - depth.unet(flipped, 500, text).sample).abs().max()
    if float(change) < 1e-3:
        raise AssertionError("the depth UNet barely depends on its depth channel")
    return errors


def build_tiny_sd_depth(base: StableDiffusionPipeline, depth: StableDiffusionDepth2ImgPipeline) -> dict[str, float]:
    export_unet(depth)
    errors = check_against_onnx(base, depth)
    size = onnx_tools.folder_size_mb(TINY_SD_DEPTH)
    if size > MAX_TINY_SD_DEPTH_MB:
        raise AssertionError(f"{TINY_SD_DEPTH} is {size:.2f} MB > {MAX_TINY_SD_DEPTH_MB} MB")
    graphs = onnx_tools.describe_graphs(TINY_SD_DEPTH, ("unet",))
    (TINY_SD_DEPTH / "README.md").write_text(
        "<!-- generated by tools/make_depth_fixture.py; do not edit -->\n\n"
        "# tiny-sd-depth: depth-to-image UNet for the tiny-sd fixture\n\n"
        f"tiny-sd's UNet blocks with `in_channels={DEPTH_UNET_IN_CHANNELS}` (4 noisy latents + 1 depth map "
        "normalised to [-1, 1] at latent size, the layout of stabilityai/stable-diffusion-2-depth) and "
        f"`block_out_channels={DEPTH_BLOCK_OUT_CHANNELS}` (half tiny-sd's, to keep the fixture small), random weights "
        f"(seed {DEPTH_UNET_SEED}), exported like tiny-sd's (float32 timestep). Only `unet/`, `scheduler/` (tiny-sd's "
        "PNDMScheduler) and `model_index.json` (StableDiffusionDepth2ImgPipeline, no depth estimator) are here; text "
        "encoder, VAE and tokenizer are `../tiny-sd/`'s.\n\n"
        f"## Graphs\n\n{graphs}\n"
        "ONNX Runtime vs torch, max abs error on random inputs: "
        + ", ".join(f"{k} {v:.2e}" for k, v in errors.items()) + ".\n"
    )
    print(f"tiny-sd-depth: {size:.2f} MB, ONNX vs torch max abs error {errors}")
    return errors


def main() -> None:
    import diffusers

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    WORK.mkdir(parents=True, exist_ok=True)
    base, depth = build_pipelines()
    errors = build_tiny_sd_depth(base, depth)
    writer = RefWriter(DEPTH_REFS)
    manifest = {
        "generator": "tools/make_depth_fixture.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-sd-depth unet/scheduler/model_index + tiny-sd text_encoder/vae_encoder/vae_decoder/tokenizer",
        "onnx_vs_torch_max_abs": errors,
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "seed": "torch.Generator('cpu').manual_seed(seed) given to StableDiffusionDepth2ImgPipeline; latents=None",
            "init_image": "PNG in this folder, passed to the pipeline as the PIL image read back from it",
            "depth_map": "[1, H, W] float32 passed as depth_map= (a torch tensor; any size/aspect, the pipeline "
            "resizes it with F.interpolate(bicubic, align_corners=False) to (height // 2, width // 2), the latent size)",
            "unet_depth_channel": "channel 4 of the UNet's sample, [unet batch, 1, h, w]: the resized depth min/max "
            "normalised per map to [-1, 1], repeated per image, doubled [uncond, cond] under CFG; the same on every call",
            "first_unet_sample": "ddim and euler cases: the whole first UNet sample [uncond, cond] x (4 latents after "
            "scale_model_input + the unscaled depth channel)",
            "unet_timesteps": "the timestep of every UNet call, in order: scheduler.timesteps[t_start * order:] with "
            "t_start = steps - int(steps * strength); PNDM's timesteps repeat one entry, so its tail is one call longer",
            "pre_loop_draws": "every randn before the loop, in order, all from the one seeded generator: vae_posterior = "
            "the init image's DiagonalGaussian sample eps (batch 1, the image is encoded once), pipeline_noise = "
            "the add_noise noise (batch num_images_per_prompt); no scheduler here draws step noise",
            "final_latents": "output_type='latent': the last step's latents, before / scaling_factor",
            "image": "NHWC float32 in [0,1]: diffusers postprocess before uint8 (== output_type='np'); png = round(image * 255)",
            "bicubic": "F.interpolate(input [1,1,H,W], size=size, mode='bicubic', align_corners=False), float32, no antialias",
            "non_finite": "non-finite numbers (e.g. lambda_min_clipped) are the strings Infinity/-Infinity/NaN",
        },
        **depth_refs.write_references(depth, writer),
    }
    writer.manifest("cases.json", manifest)
    print(f"references: {len(writer.files)} files in {DEPTH_REFS}, {onnx_tools.folder_size_mb(DEPTH_REFS):.2f} MB")


if __name__ == "__main__":
    main()
