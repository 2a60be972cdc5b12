"""Full-size SDXL base with random weights, for the speed benchmark (bench/peers.ts's SDXL rows).

stabilityai/stable-diffusion-xl-base-1.0's architecture, its configs written out below (no Hub download), random
weights from a fixed seed, saved as a diffusers folder in fp16 (5.1 GB for the 2.57 B-parameter UNet, 6.9 GB in all;
every tool loads it as fp32). The modules are created in fp16 and saved one at a time, so the build's peak memory
stays near one fp16 UNet plus its serialisation (~11 GB), not a 10 GB fp32 UNet plus its fp16 copy.

  <cache>/sdxl/torch/   StableDiffusionXLPipeline's folder (EulerDiscreteScheduler, as the base repo)

SDXL-Turbo is the same architecture (its UNet config differs only in sample_size), so its bench row runs these
weights with Turbo's settings (512², 1 step, Euler ancestral, no CFG) rather than a second 10 GB conversion.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from sdxl_fixture_models import SDXL_SCHEDULER_CONFIG

SEED = 3

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (architecture fields).
SDXL_UNET_CONFIG: dict[str, object] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    # 1280 pooled text + 6 time ids x 256.
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}

# stable-diffusion-xl-base-1.0 vae/config.json: SD 1.5's VAE with SDXL's scaling factor, upcast in diffusers.
SDXL_VAE_CONFIG: dict[str, object] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

_CLIP_COMMON: dict[str, object] = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "pad_token_id": 1,
    "vocab_size": 49408,
}

# text_encoder/config.json: CLIP ViT-L/14's text tower.
SDXL_TEXT_ENCODER_CONFIG: dict[str, object] = {
    **_CLIP_COMMON,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
}

# text_encoder_2/config.json: OpenCLIP ViT-bigG/14's text tower with its projection.
SDXL_TEXT_ENCODER_2_CONFIG: dict[str, object] = {
    **_CLIP_COMMON,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}

def _save(module, dest: Path) -> None:
    module.save_pretrained(str(dest), safe_serialization=True)


def build_sdxl(tokenizer_dir: Path, dest: Path) -> None:
    """The pipeline folder, one module at a time: created in fp16, saved, freed."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    started = time.time()
    torch.manual_seed(SEED)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)
    try:
        builders = {
            "unet": lambda: UNet2DConditionModel(**SDXL_UNET_CONFIG),
            "text_encoder_2": lambda: CLIPTextModelWithProjection(CLIPTextConfig(**SDXL_TEXT_ENCODER_2_CONFIG)),
            "text_encoder": lambda: CLIPTextModel(CLIPTextConfig(**SDXL_TEXT_ENCODER_CONFIG)),
            "vae": lambda: AutoencoderKL(**SDXL_VAE_CONFIG),
        }
        for name, build in builders.items():
            module = build().eval()
            _save(module, dest / name)
            print(f"  {name}: {sum(p.numel() for p in module.parameters()) / 1e6:.0f} M parameters ({time.time() - started:.0f} s)", flush=True)
            del module
    finally:
        torch.set_default_dtype(previous)
    CLIPTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(dest / "tokenizer"))
    # OpenCLIP's tokenizer pads with "!" (id 0), as stabilityai's tokenizer_2 is configured.
    CLIPTokenizer.from_pretrained(str(tokenizer_dir), pad_token="!").save_pretrained(str(dest / "tokenizer_2"))
    EulerDiscreteScheduler.from_config(SDXL_SCHEDULER_CONFIG).save_pretrained(str(dest / "scheduler"))
    _write_model_index(dest)


def _write_model_index(dest: Path) -> None:
    index = {
        "_class_name": StableDiffusionXLPipeline.__name__,
        "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", EulerDiscreteScheduler.__name__],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (dest / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
