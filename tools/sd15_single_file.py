"""A diffusers SD 1.x pipeline folder as one original-layout checkpoint (the .safetensors A1111,
ComfyUI and stable-diffusion.cpp load), for the speed benchmark (issue 7).

The key names are CompVis/ldm's: model.diffusion_model.* (UNet), first_stage_model.* (VAE),
cond_stage_model.transformer.* (CLIP text model). The renaming is checked by running diffusers'
own single-file loader conversions (ldm -> diffusers) on the result: every tensor must come back
under its diffusers name with identical values.

Usage: /opt/diffuse-venv/bin/python tools/sd15_single_file.py <diffusers folder> <out.safetensors>
(tools/make_bench_models.py calls it for the benchmark's SD 1.5.)
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

# SD 1.x: 4 levels, 2 resnets per down level and 3 per up level; levels 0-2 have attention.
LEVELS, DOWN_RESNETS, UP_RESNETS = 4, 2, 3


def _unet_prefixes() -> list[tuple[str, str]]:
    """(diffusers prefix, ldm prefix), longest first where one is a prefix of another."""
    pairs: list[tuple[str, str]] = []
    for level in range(LEVELS):
        for j in range(DOWN_RESNETS):
            block = 3 * level + j + 1  # input_blocks.0 is conv_in; each level adds two blocks and a downsampler
            pairs.append((f"down_blocks.{level}.resnets.{j}.", f"input_blocks.{block}.0."))
            pairs.append((f"down_blocks.{level}.attentions.{j}.", f"input_blocks.{block}.1."))
        pairs.append((f"down_blocks.{level}.downsamplers.0.conv.", f"input_blocks.{3 * level + 3}.0.op."))
        for j in range(UP_RESNETS):
            block = 3 * level + j
            pairs.append((f"up_blocks.{level}.resnets.{j}.", f"output_blocks.{block}.0."))
            pairs.append((f"up_blocks.{level}.attentions.{j}.", f"output_blocks.{block}.1."))
        # The upsampler sits after the last resnet (and its attention, where the level has one).
        pairs.append((f"up_blocks.{level}.upsamplers.0.", f"output_blocks.{3 * level + 2}.{1 if level == 0 else 2}."))
    pairs += [
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
    ]
    return pairs


UNET_RESNET_PARTS = {"norm1.": "in_layers.0.", "conv1.": "in_layers.2.", "norm2.": "out_layers.0.", "conv2.": "out_layers.3.",
                     "time_emb_proj.": "emb_layers.1.", "conv_shortcut.": "skip_connection."}


def unet_key(name: str) -> str:
    for hf, ldm in _unet_prefixes():
        if name.startswith(hf):
            rest = name[len(hf):]
            if ".resnets." in hf:
                for part, ldm_part in UNET_RESNET_PARTS.items():
                    if rest.startswith(part):
                        rest = ldm_part + rest[len(part):]
                        break
            return ldm + rest
    raise KeyError(f"no ldm name for UNet tensor {name}")


VAE_RESNET_PARTS = {"conv_shortcut.": "nin_shortcut."}
VAE_ATTENTION_PARTS = {"group_norm.": "norm.", "to_q.": "q.", "to_k.": "k.", "to_v.": "v.", "to_out.0.": "proj_out."}


def vae_key(name: str) -> str:
    side, _, rest = name.partition(".")
    if side in ("quant_conv", "post_quant_conv"):
        return name
    for hf, ldm in (("conv_norm_out.", "norm_out."), ("conv_in.", "conv_in."), ("conv_out.", "conv_out.")):
        if rest.startswith(hf):
            return f"{side}.{ldm}{rest[len(hf):]}"
    parts = rest.split(".")
    if parts[0] == "mid_block":
        if parts[1] == "resnets":
            return f"{side}.mid.block_{int(parts[2]) + 1}.{_rename('.'.join(parts[3:]) + '.', VAE_RESNET_PARTS)[:-1]}"
        return f"{side}.mid.attn_1.{_rename('.'.join(parts[3:]) + '.', VAE_ATTENTION_PARTS)[:-1]}"
    level = int(parts[1])
    # The decoder's up blocks run from the lowest resolution; ldm numbers them from the highest.
    ldm_level = level if parts[0] == "down_blocks" else LEVELS - 1 - level
    kind = "down" if parts[0] == "down_blocks" else "up"
    if parts[2] == "resnets":
        return f"{side}.{kind}.{ldm_level}.block.{parts[3]}.{_rename('.'.join(parts[4:]) + '.', VAE_RESNET_PARTS)[:-1]}"
    sampler = "downsample" if parts[2] == "downsamplers" else "upsample"
    return f"{side}.{kind}.{ldm_level}.{sampler}.{'.'.join(parts[4:])}"


def _rename(rest: str, parts: dict[str, str]) -> str:
    for hf, ldm in parts.items():
        if rest.startswith(hf):
            return ldm + rest[len(hf):]
    return rest


def convert(folder: Path) -> dict[str, torch.Tensor]:
    unet = load_file(str(folder / "unet" / "diffusion_pytorch_model.safetensors"))
    vae = load_file(str(folder / "vae" / "diffusion_pytorch_model.safetensors"))
    text = load_file(str(folder / "text_encoder" / "model.safetensors"))
    out: dict[str, torch.Tensor] = {UNET_PREFIX + unet_key(k): v for k, v in unet.items()}
    for k, v in vae.items():
        ldm = vae_key(k)
        # ldm's VAE attention projections are 1x1 convolutions; diffusers' are Linear layers.
        if ".mid.attn_1." in ldm and ldm.endswith((".q.weight", ".k.weight", ".v.weight", ".proj_out.weight")):
            v = v.reshape(*v.shape, 1, 1)
        out[VAE_PREFIX + ldm] = v
    out.update({TEXT_PREFIX + k: v for k, v in text.items()})
    return out


def check_round_trip(folder: Path, checkpoint: dict[str, torch.Tensor]) -> int:
    """diffusers' ldm -> diffusers conversions must give back every original tensor exactly."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    checked = 0
    for sub, cls, fn in (("unet", UNet2DConditionModel, convert_ldm_unet_checkpoint), ("vae", AutoencoderKL, convert_ldm_vae_checkpoint)):
        config = cls.load_config(str(folder / sub))
        original = load_file(str(folder / sub / "diffusion_pytorch_model.safetensors"))
        back = fn(dict(checkpoint), config)
        if set(back) != set(original):
            missing, extra = set(original) - set(back), set(back) - set(original)
            raise AssertionError(f"{sub}: {len(missing)} tensors not recovered (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected")
        for k, v in original.items():
            if not torch.equal(back[k].reshape(v.shape), v):
                raise AssertionError(f"{sub}: {k} differs after the round trip")
            checked += 1
    text = load_file(str(folder / "text_encoder" / "model.safetensors"))
    for k, v in text.items():
        if not torch.equal(checkpoint[TEXT_PREFIX + k], v):
            raise AssertionError(f"text encoder: {k} differs")
        checked += 1
    return checked


def write_single_file(folder: Path, dest: Path) -> int:
    checkpoint = convert(folder)
    checked = check_round_trip(folder, checkpoint)
    tmp = dest.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in checkpoint.items()}, str(tmp))
    tmp.rename(dest)
    return checked


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    n = write_single_file(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {sys.argv[2]}: {n} tensors, round trip through diffusers' converters exact")
