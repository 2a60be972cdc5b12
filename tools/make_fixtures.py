"""Build the tiny Stable Diffusion fixtures and the diffusers reference outputs the TypeScript pipeline is tested on.

Usage: /opt/diffuse-venv/bin/python tools/make_fixtures.py
Writes test/fixtures/tiny-sd/ (ONNX txt2img model), test/fixtures/tiny-sd-inpaint/ (ONNX inpainting UNet)
and test/fixtures/pipeline/ (reference cases). Torch copies and raw optimum exports go to /tmp/diffuse-fixtures/.
Deterministic: fixed seeds everywhere, single-threaded torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clip_vocab  # noqa: E402
import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
import fixtures_readme  # noqa: E402
import fixtures_refs_img2img  # noqa: E402
import fixtures_refs_txt2img  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "test" / "fixtures"
TINY_SD = FIXTURES / "tiny-sd"
TINY_SD_INPAINT = FIXTURES / "tiny-sd-inpaint"
PIPELINE_REFS = FIXTURES / "pipeline"
WORK = Path("/tmp/diffuse-fixtures")

# The tiny-sd folder must stay small: the 49408x32 float32 token embedding alone is ~6.3 MB.
MAX_TINY_SD_MB = 12.5
MAX_INPAINT_MB = 4.0


def build_tiny_sd(tokenizer_dir: Path):
    pipe = models.build_txt2img_pipeline(tokenizer_dir)
    torch_dir = WORK / "tiny-sd-torch"
    pipe.save_pretrained(str(torch_dir), safe_serialization=True)
    export_dir = onnx_tools.export_onnx(torch_dir, WORK / "tiny-sd-onnx", "text-to-image", pipe)
    onnx_tools.copy_export(export_dir, TINY_SD, onnx_tools.GRAPH_DIRS)
    clip_vocab.write_tokenizer(TINY_SD / "tokenizer")
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, pipe, unet_in_channels=4)
    errors["pipeline_image"] = onnx_tools.check_pipeline_matches_torch(TINY_SD, pipe)
    size = onnx_tools.folder_size_mb(TINY_SD)
    if size > MAX_TINY_SD_MB:
        raise AssertionError(f"{TINY_SD} is {size:.2f} MB > {MAX_TINY_SD_MB} MB")
    fixtures_readme.write_tiny_sd_readme(TINY_SD, onnx_tools.describe_graphs(TINY_SD, onnx_tools.GRAPH_DIRS), errors)
    print(f"tiny-sd: {size:.2f} MB, ONNX vs torch max abs error {errors}")
    return pipe


def build_tiny_sd_inpaint(base):
    pipe = models.build_inpaint_pipeline(base)
    torch_dir = WORK / "tiny-sd-inpaint-torch"
    pipe.save_pretrained(str(torch_dir), safe_serialization=True)
    export_dir = onnx_tools.export_onnx(torch_dir, WORK / "tiny-sd-inpaint-onnx", "inpainting", pipe)
    # Text encoder, VAE and tokenizer are byte-for-byte the tiny-sd ones: ship only the 9-channel UNet.
    onnx_tools.copy_export(export_dir, TINY_SD_INPAINT, ("unet",))
    errors = onnx_tools.check_graphs_match_torch(TINY_SD_INPAINT, pipe, unet_in_channels=9)
    size = onnx_tools.folder_size_mb(TINY_SD_INPAINT)
    if size > MAX_INPAINT_MB:
        raise AssertionError(f"{TINY_SD_INPAINT} is {size:.2f} MB > {MAX_INPAINT_MB} MB")
    fixtures_readme.write_inpaint_readme(
        TINY_SD_INPAINT, onnx_tools.describe_graphs(TINY_SD_INPAINT, ("unet",)), errors
    )
    print(f"tiny-sd-inpaint: {size:.2f} MB, ONNX vs torch max abs error {errors}")
    return pipe


def manifest_header() -> dict[str, object]:
    import diffusers
    import transformers

    return {
        "generator": "tools/make_fixtures.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__},
        "models": {"txt2img": "tiny-sd", "inpaint": "tiny-sd-inpaint (text encoder, VAE, tokenizer from tiny-sd)"},
        "conventions": {
            "bin": "raw little-endian float32, C order, shape in the entry",
            "latents": "NCHW, unscaled by the VAE scaling factor (what output_type='latent' returns)",
            "initial_latents": "the N(0,1) draw before multiplying by scheduler.init_noise_sigma",
            "step_noise": "[draws, ...latent shape]: every randn the scheduler drew, in order (null when none)",
            "pre_loop_draws": "img2img/inpaint: every randn before the loop, in order, all from the one seeded generator "
            "(vae_posterior = DiagonalGaussian sample eps, pipeline_noise = noise for add_noise / initial latents)",
            "timesteps": "scheduler.timesteps after set_timesteps; img2img/inpaint run only the tail starting at "
            "first_unet_input.timestep (diffusers get_timesteps with strength)",
            "first_unet_input": "the UNet's `sample` on its first call (CFG batch [uncond, cond]; inpaint: 4+1 mask+4 masked latents)",
            "image": "NHWC float32 in [0,1]: diffusers postprocess before uint8; png = round(image * 255)",
            "seed": "torch.Generator('cpu').manual_seed(seed); latents=None; the pipeline draws latents then step noise",
            "tokenizer": "transformers CLIPTokenizer without ftfy (diffusers' default install)",
            "non_finite": "non-finite numbers (e.g. lambda_min_clipped) are the strings Infinity/-Infinity/NaN",
        },
    }


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    WORK.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = WORK / "tokenizer"
    clip_vocab.write_tokenizer(tokenizer_dir)
    clip_vocab.verify_tokenizer(tokenizer_dir)

    pipe = build_tiny_sd(tokenizer_dir)
    writer = RefWriter(PIPELINE_REFS)
    manifest = manifest_header()
    manifest.update(fixtures_refs_txt2img.write_references(pipe, writer))
    inpaint = build_tiny_sd_inpaint(pipe)
    manifest.update(fixtures_refs_img2img.write_references(pipe, inpaint, writer))
    writer.manifest("cases.json", manifest)
    print(f"references: {len(writer.files)} files in {PIPELINE_REFS}, {onnx_tools.folder_size_mb(PIPELINE_REFS):.2f} MB")


if __name__ == "__main__":
    main()
