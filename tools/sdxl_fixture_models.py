"""Tiny, randomly initialised SDXL models (base, refiner, inpainting) built from diffusers/transformers classes.

SDXL's architecture shrunk: two CLIP text encoders of different widths (ViT-L style with quick_gelu, the second
with a projection and gelu, as OpenCLIP ViT-bigG), a UNet with `addition_embed_type="text_time"` (pooled text +
micro-conditioning time ids), transformer depths per level, linear projections, and a KL VAE with SDXL's scaling
factor. The tokenizers keep CLIP's byte-level BPE but only its first merges, so the token tables stay tiny and the
whole fixture a few hundred kB; real prompts still tokenize (into more, shorter pieces).
Every model is built right after torch.manual_seed(<fixed seed>), so a rebuild gives identical weights.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from clip_vocab import BOS, EOS, bytes_to_unicode, special_token

# CLIP's merges as the repository ships them for converted checkpoints (tools/make_clip_asset.py).
MERGES_GZ = Path(__file__).resolve().parent.parent / "assets" / "clip" / "merges.txt.gz"

TEXT_ENCODER_SEED = 20
TEXT_ENCODER_2_SEED = 21
UNET_SEED = 22
VAE_SEED = 23
REFINER_UNET_SEED = 24
INPAINT_UNET_SEED = 25

# Merges kept from CLIP's list: vocab = 256 bytes x2 (with and without </w>) + merges + BOS/EOS.
TINY_MERGES = 1000
VOCAB_SIZE = 512 + TINY_MERGES + 2

NATIVE_SIZE = 32
VAE_SCALE_FACTOR = 2
HIDDEN_1 = 16
HIDDEN_2 = 24
# The pooled width (text_encoder_2's projection_dim), SDXL's 1280 shrunk.
POOLED = 12
TIME_EMBED = 8

# stabilityai/stable-diffusion-xl-base-1.0 scheduler/scheduler_config.json, verbatim.
SDXL_SCHEDULER_CONFIG: dict[str, object] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}


def write_tokenizer(out_dir: Path, pad: str) -> None:
    """CLIP's tokenizer files with the first TINY_MERGES merges; `pad` is SDXL's: EOS for the first, "!" for the second."""
    lines = gzip.open(MERGES_GZ, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + TINY_MERGES]]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:
        raise AssertionError(f"tiny vocab has {len(vocab)} tokens, expected {VOCAB_SIZE}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    specials = {"bos_token": special_token(BOS), "eos_token": special_token(EOS), "pad_token": pad, "unk_token": special_token(EOS)}
    config = {
        "add_prefix_space": False,
        "do_lower_case": True,
        "errors": "replace",
        "model_max_length": 77,
        "tokenizer_class": "CLIPTokenizer",
        **{k: ({"__type": "AddedToken", **v} if isinstance(v, dict) else v) for k, v in specials.items()},
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


def _clip_config(hidden: int, act: str, projection: int) -> CLIPTextConfig:
    # eos_token_id 2 as in SDXL's own configs: transformers then pools at argmax(input_ids), the real EOS.
    return CLIPTextConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=3,
        num_attention_heads=2,
        max_position_embeddings=77,
        projection_dim=projection,
        hidden_act=act,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )


def build_text_encoder() -> CLIPTextModel:
    torch.manual_seed(TEXT_ENCODER_SEED)
    return CLIPTextModel(_clip_config(HIDDEN_1, "quick_gelu", HIDDEN_1)).eval()


def build_text_encoder_2() -> CLIPTextModelWithProjection:
    torch.manual_seed(TEXT_ENCODER_2_SEED)
    return CLIPTextModelWithProjection(_clip_config(HIDDEN_2, "gelu", POOLED)).eval()


def build_unet(seed: int, in_channels: int = 4, cross_attention_dim: int = HIDDEN_1 + HIDDEN_2, time_ids: int = 6) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=NATIVE_SIZE // VAE_SCALE_FACTOR,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=time_ids * TIME_EMBED + POOLED,
        cross_attention_dim=cross_attention_dim,
    ).eval()


def build_vae() -> AutoencoderKL:
    torch.manual_seed(VAE_SEED)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=NATIVE_SIZE,
        scaling_factor=0.13025,
        force_upcast=True,
    ).eval()


def scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG)


def build_base(tokenizers: Path) -> StableDiffusionXLPipeline:
    return StableDiffusionXLPipeline(
        vae=build_vae(),
        text_encoder=build_text_encoder(),
        text_encoder_2=build_text_encoder_2(),
        tokenizer=CLIPTokenizer.from_pretrained(str(tokenizers / "tokenizer")),
        tokenizer_2=CLIPTokenizer.from_pretrained(str(tokenizers / "tokenizer_2")),
        unet=build_unet(UNET_SEED),
        scheduler=scheduler(),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )


def build_refiner(base: StableDiffusionXLPipeline) -> StableDiffusionXLImg2ImgPipeline:
    """The refiner's layout: only the second text encoder (so cross-attention is its width), aesthetic-score time ids."""
    return StableDiffusionXLImg2ImgPipeline(
        vae=base.vae,
        text_encoder=None,
        text_encoder_2=base.text_encoder_2,
        tokenizer=None,
        tokenizer_2=base.tokenizer_2,
        unet=build_unet(REFINER_UNET_SEED, cross_attention_dim=HIDDEN_2, time_ids=5),
        scheduler=scheduler(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )


def build_inpaint(base: StableDiffusionXLPipeline) -> StableDiffusionXLInpaintPipeline:
    return StableDiffusionXLInpaintPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        text_encoder_2=base.text_encoder_2,
        tokenizer=base.tokenizer,
        tokenizer_2=base.tokenizer_2,
        unet=build_unet(INPAINT_UNET_SEED, in_channels=9),
        scheduler=scheduler(),
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
