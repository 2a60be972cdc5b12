"""A diffusers SDXL pipeline folder as one SGM-layout checkpoint (the .safetensors stable-diffusion.cpp, A1111 and
ComfyUI load), for the speed benchmark's `sd.cpp sdxl` row (issue 16).

The key names are Stability's generative-models (SGM) ones: model.diffusion_model.* (UNet, with label_emb for the
pooled text and size embeddings), first_stage_model.* (VAE), conditioner.embedders.0.transformer.* (CLIP ViT-L) and
conditioner.embedders.1.model.* (OpenCLIP bigG, q/k/v packed, text_projection as [width, projection]), renamed by
tools/ldm_keys.py. Tensors keep the folder's dtype (fp16 for the bench's SDXL: sd.cpp is told `--type f32`, as every
other row loads the same fp16 values as fp32). The renaming is checked by running diffusers' own single-file
converters (SGM -> diffusers) on the result: every tensor must come back under its diffusers name, identical.

Usage: /opt/diffuse-venv/bin/python tools/sdxl_single_file.py <SDXL diffusers folder> <out.safetensors>
(tools/make_bench_models.py --only sdxl-single-file calls it.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ldm_keys import assert_recovered, big_g_to_sgm, save_checkpoint, sdxl_unet_to_ldm, vae_to_ldm  # noqa: E402

TE1 = "conditioner.embedders.0.transformer."
TE2 = "conditioner.embedders.1.model."
PARTS = {"unet": "diffusion_pytorch_model.safetensors", "vae": "diffusion_pytorch_model.safetensors",
         "text_encoder": "model.safetensors", "text_encoder_2": "model.safetensors"}


def _originals(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {part: load_file(str(folder / part / name)) for part, name in PARTS.items()}


def convert(folder: Path, originals: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet_config = dict(UNet2DConditionModel.load_config(str(folder / "unet")))
    levels = len(AutoencoderKL.load_config(str(folder / "vae"))["block_out_channels"])
    text_1 = {k: v for k, v in originals["text_encoder"].items() if not k.endswith("position_ids")}
    return {
        **sdxl_unet_to_ldm(originals["unet"], unet_config),
        **vae_to_ldm(originals["vae"], levels),
        **{TE1 + k: v for k, v in text_1.items()},
        **big_g_to_sgm(originals["text_encoder_2"], TE2),
    }


def check_round_trip(folder: Path, checkpoint: dict[str, torch.Tensor], originals: dict[str, dict[str, torch.Tensor]]) -> int:
    """diffusers' SGM -> diffusers converters must give back every original tensor exactly."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                     convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    # convert_open_clip_checkpoint reads only the module's config (widths, layer count); meta weights cost no memory.
    with torch.device("meta"):
        big_g = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(str(folder / "text_encoder_2")))
    back = {
        "unet": convert_ldm_unet_checkpoint(dict(checkpoint), dict(UNet2DConditionModel.load_config(str(folder / "unet")))),
        "vae": convert_ldm_vae_checkpoint(dict(checkpoint), dict(AutoencoderKL.load_config(str(folder / "vae")))),
        "text_encoder": convert_ldm_clip_checkpoint(dict(checkpoint), remove_prefix=TE1),
        "text_encoder_2": convert_open_clip_checkpoint(big_g, dict(checkpoint), prefix=TE2),
    }
    return assert_recovered(back, originals, skip=lambda key: key.endswith("position_ids"))


def write_single_file(folder: Path, dest: Path) -> int:
    originals = _originals(folder)
    checkpoint = convert(folder, originals)
    checked = check_round_trip(folder, checkpoint, originals)
    save_checkpoint(checkpoint, dest)
    return checked


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = write_single_file(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]}: {n} tensors, round trip through diffusers' converters exact")
