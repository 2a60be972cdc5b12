"""The single-file test checkpoints of the graph builder (test/fixtures/graphs/), as diffusers/transformers modules.

Each spec is a small member of a Stable Diffusion family, with the structure the converter must read off the
weights: SD 1.x (CLIP text model, quick_gelu, 8-head UNet with convolutional projections, two resnets per
level), SD 2.x v-prediction (OpenCLIP text tower whose last block the model does not use, gelu, 64-wide
heads, linear projections), a 9-channel inpainting and a 5-channel depth UNet, and a one-level model saved
as a torch .ckpt. Widths and heads follow the families' rules (detect.ts): CLIP heads are 64 wide (one head
below 64), SD 2.x UNet heads are 64 wide, SD 1.x's UNet has 8.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from ldm_keys import OPEN_CLIP_PREFIX, clip_to_ldm, open_clip_to_ldm, unet_to_ldm, vae_to_ldm

FULL_VOCAB = 49408


@dataclass(frozen=True)
class Spec:
    name: str
    family: str  # sd1 | sd2
    dtype: str  # how the file stores floats: F16 | BF16 | F32
    seed: int
    vocab: int
    hidden: int
    # Text layers the model uses; an SD 2.x file holds one more OpenCLIP block (the model reads the penultimate).
    text_layers: int
    unet_channels: tuple[int, ...]
    unet_attention: tuple[bool, ...]
    layers_per_block: int
    in_channels: int
    vae_channels: tuple[int, ...]
    prediction: str = "epsilon"


SPECS = [
    Spec("sd1", "sd1", "F16", 11, FULL_VOCAB, 128, 2, (32, 64), (True, False), 2, 4, (32, 64)),
    Spec("sd2v", "sd2", "BF16", 12, FULL_VOCAB, 128, 2, (64, 128), (True, False), 1, 4, (32, 64), "v_prediction"),
    Spec("inpaint", "sd1", "F32", 13, 1000, 64, 2, (32, 64), (True, True), 1, 9, (32, 64)),
    Spec("depth", "sd2", "F16", 14, 1000, 64, 2, (64, 128), (False, True), 1, 5, (32, 64)),
    Spec("mini", "sd1", "F16", 15, 1000, 32, 2, (32,), (True,), 1, 4, (32,)),
]


def heads_of(width: int) -> int:
    return 1 if width < 64 else width // 64


def text_config(spec: Spec, layers: int) -> CLIPTextConfig:
    # SD's configs: bos/eos/pad 0/2/1, so transformers pools at argmax(input_ids) (the end-of-text token).
    return CLIPTextConfig(vocab_size=spec.vocab, hidden_size=spec.hidden, intermediate_size=4 * spec.hidden, num_hidden_layers=layers,
                          num_attention_heads=heads_of(spec.hidden), max_position_embeddings=77, projection_dim=spec.hidden,
                          hidden_act="quick_gelu" if spec.family == "sd1" else "gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1)


def text_model(spec: Spec) -> CLIPTextModel:
    """The reference text encoder (the layers the model uses)."""
    return CLIPTextModel(text_config(spec, spec.text_layers)).eval()


def unet_model(spec: Spec) -> UNet2DConditionModel:
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in spec.unet_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(spec.unet_attention))
    heads = 8 if spec.family == "sd1" else [c // 64 for c in spec.unet_channels]
    return UNet2DConditionModel(sample_size=16, in_channels=spec.in_channels, out_channels=4, block_out_channels=spec.unet_channels,
                                layers_per_block=spec.layers_per_block, down_block_types=down, up_block_types=up,
                                cross_attention_dim=spec.hidden, attention_head_dim=heads, use_linear_projection=spec.family == "sd2",
                                norm_num_groups=32).eval()


def vae_model(spec: Spec) -> AutoencoderKL:
    levels = len(spec.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * levels,
                         up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=spec.vae_channels, layers_per_block=1,
                         latent_channels=4, norm_num_groups=32, sample_size=32, scaling_factor=0.18215).eval()


def ldm_layout(spec: Spec) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Keys and shapes of the spec's single-file checkpoint (values are placeholders), and its integer keys."""
    unet, vae = unet_model(spec), vae_model(spec)
    out = {**unet_to_ldm(unet.state_dict(), dict(unet.config)), **vae_to_ldm(vae.state_dict(), len(spec.vae_channels))}
    if spec.family == "sd1":
        out.update(clip_to_ldm(text_model(spec).state_dict()))
        ids = "cond_stage_model.transformer.text_model.embeddings.position_ids"
        # Real SD 1.x files carry CLIP's position ids (int64), which a converter must leave alone.
        out[ids] = torch.zeros(1, 77, dtype=torch.int64)
        integers: tuple[str, ...] = (ids,)
    else:
        out.update(open_clip_to_ldm(CLIPTextModel(text_config(spec, spec.text_layers + 1)).state_dict()))
        out[OPEN_CLIP_PREFIX + "text_projection"] = torch.zeros(spec.hidden, spec.hidden)
        out[OPEN_CLIP_PREFIX + "logit_scale"] = torch.zeros(())
        integers = ()
    # LDM's noise schedule buffers ride along in every original checkpoint.
    out["alphas_cumprod"] = torch.zeros(1000)
    return out, integers
