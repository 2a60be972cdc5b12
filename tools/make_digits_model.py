"""Train the tiny-digits latent-diffusion model on scikit-learn's digits and export it to assets/tiny-digits.

Usage: nice -n 10 /opt/diffuse-venv/bin/python tools/make_digits_model.py [--stage vae|unet|export|all]

SD 1.x's recipe shrunk: an AutoencoderKL (32x32 RGB -> 8x8x4 latents, scaling factor 1/std of the training latents
as SD's was chosen), a frozen randomly initialised CLIP text encoder over a cut-down CLIP tokenizer (prompts
"a handwritten digit seven"), and a cross-attention UNet trained for epsilon prediction on SD 1.5's
scaled_linear DDPM schedule, prompts dropped 10% of the time so classifier-free guidance works; EMA weights are
exported. CPU, torch 1 thread, fixed seeds: a rerun trains the same weights. Stages cache their torch weights in
/tmp/diffuse-digits so the export can be redone without retraining.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import digits_data as data  # noqa: E402
import fixtures_models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "assets" / "tiny-digits"
WORK = Path("/tmp/diffuse-digits")
MAX_MB = 3.0

VAE_STEPS = 500
VAE_KL_WEIGHT = 1e-4
UNET_STEPS = 3000
BATCH = 32
DROP_PROMPT = 0.1
EMA_DECAY = 0.995


def build_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        hidden_act="quick_gelu",
        # SD 1.5's ids: with eos_token_id 2 transformers pools at argmax(input_ids), the end-of-text token here too.
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    )
    torch.manual_seed(10)
    return CLIPTextModel(config).eval()


def build_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(11)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        # Three levels: two downsamples, 32x32 pixels -> 8x8 latents.
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=data.SIZE,
    )


def build_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(12)
    return UNet2DConditionModel(
        sample_size=data.SIZE // 4,
        in_channels=4,
        out_channels=4,
        # Three levels (8x8, 4x4, 2x2 latents), cross-attention at 4x4 and in the 2x2 middle block only: no
        # attention at 8x8 keeps a training step cheap for the 35-minute CPU budget, none in the 2x2 blocks keeps
        # the export under 3 MB.
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=32,
        attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    )


def train_vae(images: torch.Tensor) -> None:
    vae = build_vae().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(21)
    start = time.time()
    for step in range(VAE_STEPS):
        idx = torch.randint(0, len(images), (BATCH,), generator=g)
        x = images[idx]
        dist = vae.encode(x).latent_dist
        z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=g)
        recon = vae.decode(z).sample
        mse = F.mse_loss(recon, x)
        kl = dist.kl().mean() / (4 * 8 * 8)
        loss = mse + VAE_KL_WEIGHT * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == VAE_STEPS - 1:
            print(f"vae {step} mse {mse.item():.5f} kl {kl.item():.3f} {time.time() - start:.0f}s", flush=True)
    vae.eval()
    with torch.no_grad():
        dist = vae.encode(images).latent_dist
        # SD picked 0.18215 as 1/std of its training latents; the same rule here.
        vae.register_to_config(scaling_factor=float(1.0 / dist.sample(generator=g).std()))
    vae.save_pretrained(str(WORK / "vae"))


def encode_prompts(text_encoder, tokenizer) -> torch.Tensor:
    """[11, 77, 32]: the ten digit prompts, then the empty prompt (the unconditional embedding)."""
    prompts = [data.prompt(d) for d in range(10)] + [""]
    ids = tokenizer(prompts, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids)[0]


def train_unet(images: torch.Tensor, labels: torch.Tensor) -> None:
    from diffusers import AutoencoderKL, DDPMScheduler
    from transformers import CLIPTokenizer

    vae = AutoencoderKL.from_pretrained(str(WORK / "vae")).eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(WORK / "tokenizer"))
    text_encoder = build_text_encoder(len(tokenizer))
    cond = encode_prompts(text_encoder, tokenizer)
    with torch.no_grad():
        dist = vae.encode(images).latent_dist
        mean, std = dist.mean * vae.config.scaling_factor, dist.std * vae.config.scaling_factor
    scheduler = DDPMScheduler.from_config(fixtures_models.SD15_SCHEDULER_CONFIG)
    alphas = scheduler.alphas_cumprod
    unet = build_unet().train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=0.0)
    lr = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=UNET_STEPS, pct_start=0.05)
    g = torch.Generator().manual_seed(22)
    start, running = time.time(), 0.0
    for step in range(UNET_STEPS):
        idx = torch.randint(0, len(images), (BATCH,), generator=g)
        x0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (BATCH,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = alphas[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        which = torch.where(torch.rand(BATCH, generator=g) < DROP_PROMPT, 10, labels[idx])
        loss = F.mse_loss(unet(xt, t, cond[which]).sample, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lr.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1 - EMA_DECAY)
        running += loss.item()
        if (step + 1) % 500 == 0:
            print(f"unet {step + 1} loss {running / 500:.4f} {time.time() - start:.0f}s", flush=True)
            running = 0.0
    ema.save_pretrained(str(WORK / "unet"))
    text_encoder.save_pretrained(str(WORK / "text_encoder"))


def build_pipeline():
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    return StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(str(WORK / "vae")).eval(),
        text_encoder=CLIPTextModel.from_pretrained(str(WORK / "text_encoder")).eval(),
        tokenizer=CLIPTokenizer.from_pretrained(str(WORK / "tokenizer")),
        unet=UNet2DConditionModel.from_pretrained(str(WORK / "unet")).eval(),
        scheduler=fixtures_models.sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def export() -> dict[str, float]:
    pipe = build_pipeline()
    torch_dir = WORK / "torch"
    pipe.save_pretrained(str(torch_dir), safe_serialization=True)
    export_dir = onnx_tools.export_onnx(torch_dir, WORK / "onnx", "text-to-image", pipe)
    onnx_tools.copy_export(export_dir, OUT, onnx_tools.GRAPH_DIRS)
    shutil.copytree(WORK / "tokenizer", OUT / "tokenizer")
    errors = onnx_tools.check_graphs_match_torch(OUT, pipe, unet_in_channels=4)
    size = onnx_tools.folder_size_mb(OUT)
    if size > MAX_MB:
        raise AssertionError(f"{OUT} is {size:.2f} MB > {MAX_MB} MB")
    write_model_card(size, errors)
    print(f"tiny-digits: {size:.2f} MB, ONNX vs torch max abs error {errors}")
    (WORK / "export.json").write_text(json.dumps({"size_mb": size, "errors": errors}, indent=2))
    return errors


def write_model_card(size_mb: float, errors: dict[str, float]) -> None:
    vae = json.loads((OUT / "vae_decoder" / "config.json").read_text())
    measured = ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
    (OUT / "README.md").write_text(f"""<!-- generated by tools/make_digits_model.py; do not edit -->

# tiny-digits: a latent-diffusion model trained on scikit-learn's handwritten digits

Prompts: `a handwritten digit zero` ... `a handwritten digit nine` (other words tokenize, letter by letter, but mean
nothing to it). 32x32 pixels, dark digit on white. Trained here on CPU by `tools/make_digits_model.py` (fixed seeds,
torch 1 thread) on {1797 - data.HELD_OUT} of the 1797 digits of `sklearn.datasets.load_digits` (a copy of the UCI
Optical Recognition of Handwritten Digits test set, CC BY 4.0); the other {data.HELD_OUT} are held out.

- VAE: AutoencoderKL (8, 16, 32), 32x32x3 -> 8x8x4 latents, {VAE_STEPS} steps of MSE + {VAE_KL_WEIGHT} KL, batch {BATCH};
  scaling factor {vae["scaling_factor"]:.5f} (1/std of the training latents).
- text encoder: CLIPTextModel (hidden 32, 2 layers), random and frozen, over CLIP's tokenizer cut to {len(json.loads((OUT / "tokenizer" / "vocab.json").read_text()))} tokens.
- UNet: UNet2DConditionModel (16, 32, 32), cross-attention at 4x4 and in the middle block, epsilon prediction,
  SD 1.5's scaled_linear schedule, {UNET_STEPS} steps of batch {BATCH}, prompt dropped {DROP_PROMPT:.0%} (for CFG),
  EMA {EMA_DECAY} exported.
- {size_mb:.2f} MB in all, fp32; ONNX Runtime vs torch max abs error: {measured}.

How well it draws, and what each speed option costs on it: README "Quality on a trained model" (`npm run bench:digits`).
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", choices=("vae", "unet", "export", "all"), default="all")
    stage = parser.parse_args().stage
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    WORK.mkdir(parents=True, exist_ok=True)
    train_images, train_labels, _, _ = data.load_split()
    images = data.to_model_range(train_images)
    labels = torch.tensor(train_labels)
    if stage in ("vae", "all"):
        data.write_tokenizer(WORK / "tokenizer")
        train_vae(images)
    if stage in ("unet", "all"):
        train_unet(images, labels)
    if stage in ("export", "all"):
        export()


if __name__ == "__main__":
    main()
