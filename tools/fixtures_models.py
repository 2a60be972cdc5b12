"""Tiny, randomly initialised Stable Diffusion 1.x models built from diffusers/transformers classes.

Same architecture families as SD 1.5 (CLIP text encoder with quick_gelu, cross-attention UNet, KL VAE),
shrunk so the ONNX export stays a few MB and a full denoising loop runs in milliseconds.
Every model is built right after torch.manual_seed(<fixed seed>), so rebuilding gives identical weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

TEXT_ENCODER_SEED = 0
UNET_SEED = 1
VAE_SEED = 2
INPAINT_UNET_SEED = 3

# Pixel size the tiny models are "trained" for; the VAE halves each side (two blocks -> one downsample).
NATIVE_SIZE = 32
VAE_SCALE_FACTOR = 2

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, verbatim.
SD15_SCHEDULER_CONFIG: dict[str, object] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}


def build_text_encoder() -> CLIPTextModel:
    # bos/eos/pad ids are left at SD 1.5's config values (0/2/1): with eos_token_id == 2 transformers pools at
    # argmax(input_ids), which is the real <|endoftext|> (49407), exactly as SD 1.5 behaves.
    config = CLIPTextConfig(
        vocab_size=49408,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=5,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act="quick_gelu",
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    torch.manual_seed(TEXT_ENCODER_SEED)
    return CLIPTextModel(config).eval()


def build_unet(in_channels: int, seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=NATIVE_SIZE // VAE_SCALE_FACTOR,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    return unet.eval()


def build_vae() -> AutoencoderKL:
    torch.manual_seed(VAE_SEED)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        # (16, 32) rather than SD's 4 levels: two levels give the 2x latent ratio, and the narrow widths keep
        # the exported encoder+decoder under 1 MB so the whole fixture stays near its 12 MB budget.
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=NATIVE_SIZE,
        scaling_factor=0.18215,
    )
    return vae.eval()


def sd15_scheduler() -> PNDMScheduler:
    return PNDMScheduler.from_config(SD15_SCHEDULER_CONFIG)


def build_txt2img_pipeline(tokenizer_dir: Path) -> StableDiffusionPipeline:
    return StableDiffusionPipeline(
        vae=build_vae(),
        text_encoder=build_text_encoder(),
        tokenizer=CLIPTokenizer.from_pretrained(str(tokenizer_dir)),
        unet=build_unet(in_channels=4, seed=UNET_SEED),
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_inpaint_pipeline(base: StableDiffusionPipeline) -> StableDiffusionInpaintPipeline:
    """SD-inpainting layout: same text encoder / VAE / tokenizer as `base`, UNet takes 4+1+4 = 9 channels."""
    return StableDiffusionInpaintPipeline(
        vae=base.vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=build_unet(in_channels=9, seed=INPAINT_UNET_SEED),
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
