"""diffusers' textual-inversion training step on PyTorch CPU, timed: the comparison for bench/train.ts.

Usage: /opt/diffuse-venv/bin/python tools/bench_train_torch.py --model ~/.cache/diffuse-bench/sd15/torch --resolution 256 --steps 4
Prints one JSON line: per-step seconds, seconds before the first step, peak RSS (MB).

The step is the loop body of diffusers' examples/textual_inversion/textual_inversion.py (the script is not part of the
pip package): VAE encode + latent_dist.sample() x scaling factor, noise, a random timestep, add_noise, the text encoder
on a template caption with the placeholder token, the UNet, F.mse_loss, backward, AdamW over the token embedding,
every other row restored. Default attention processor (SDPA on CPU), float32, batch 1.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    random.seed(1)
    started = time.perf_counter()
    tokenizer = CLIPTokenizer.from_pretrained(args.model, subfolder="tokenizer")
    tokenizer.add_tokens(["<bench>"])
    token_id = tokenizer.convert_tokens_to_ids("<bench>")
    init_id = tokenizer.encode("cat", add_special_tokens=False)[0]
    text_encoder = CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder")
    vae = AutoencoderKL.from_pretrained(args.model, subfolder="vae")
    unet = UNet2DConditionModel.from_pretrained(args.model, subfolder="unet")
    noise_scheduler = DDPMScheduler.from_pretrained(args.model, subfolder="scheduler")
    text_encoder.resize_token_embeddings(len(tokenizer))
    embeds = text_encoder.get_input_embeddings().weight.data
    embeds[token_id] = embeds[init_id].clone()
    vae.requires_grad_(False)
    unet.requires_grad_(False)
    text_encoder.text_model.encoder.requires_grad_(False)
    text_encoder.text_model.final_layer_norm.requires_grad_(False)
    text_encoder.text_model.embeddings.position_embedding.requires_grad_(False)
    optimizer = torch.optim.AdamW(text_encoder.get_input_embeddings().parameters(), lr=5e-3, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    orig = text_encoder.get_input_embeddings().weight.data.clone()
    keep = torch.ones((len(tokenizer),), dtype=torch.bool)
    keep[token_id] = False
    text_encoder.train()
    pixels = torch.from_numpy((np.random.default_rng(1).integers(0, 256, (1, 3, args.resolution, args.resolution)) / 127.5 - 1.0).astype(np.float32))
    ids = tokenizer("a photo of a <bench>", padding="max_length", truncation=True, max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
    setup = time.perf_counter() - started
    seconds = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        latents = vae.encode(pixels).latent_dist.sample().detach() * vae.config.scaling_factor
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (1,)).long()
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        hidden = text_encoder(ids)[0]
        pred = unet(noisy, timesteps, hidden).sample
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        with torch.no_grad():
            text_encoder.get_input_embeddings().weight[keep] = orig[keep]
        seconds.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tool": "torch", "resolution": args.resolution, "setup": setup, "seconds": seconds, "peakRssMb": peak}))


if __name__ == "__main__":
    main()
