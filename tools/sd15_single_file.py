"""A diffusers SD 1.x pipeline folder as one original-layout checkpoint (the .safetensors A1111,
ComfyUI and stable-diffusion.cpp load), for the speed benchmark (issue 7).

The key names are CompVis/ldm's: model.diffusion_model.* (UNet), first_stage_model.* (VAE),
cond_stage_model.transformer.* (CLIP text model), renamed by tools/ldm_keys.py. The renaming is
checked by running diffusers' own single-file loader conversions (ldm -> diffusers) on the result:
every tensor must come back under its diffusers name with identical values.

Usage: /opt/diffuse-venv/bin/python tools/sd15_single_file.py <diffusers folder> <out.safetensors>
(tools/make_bench_models.py calls it for the benchmark's SD 1.5.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ldm_keys import check_round_trip, clip_to_ldm, save_checkpoint, unet_to_ldm, vae_to_ldm  # noqa: E402


def _configs(folder: Path) -> dict[str, dict]:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    return {"unet": dict(UNet2DConditionModel.load_config(str(folder / "unet"))), "vae": dict(AutoencoderKL.load_config(str(folder / "vae")))}


def _originals(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "unet": load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors")),
        "vae": load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors")),
        "text_encoder": load_file(str(folder / "text_encoder" / "model.safetensors")),
    }


def convert(folder: Path) -> dict[str, torch.Tensor]:
    configs, originals = _configs(folder), _originals(folder)
    return {
        **unet_to_ldm(originals["unet"], configs["unet"]),
        **vae_to_ldm(originals["vae"], len(configs["vae"]["block_out_channels"])),
        **clip_to_ldm(originals["text_encoder"]),
    }


def write_single_file(folder: Path, dest: Path) -> int:
    checkpoint = convert(folder)
    checked = check_round_trip(checkpoint, _originals(folder), _configs(folder))
    save_checkpoint(checkpoint, dest)
    return checked


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = write_single_file(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]}: {n} tensors, round trip through diffusers' converters exact")
