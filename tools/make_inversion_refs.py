"""DDIM inversion references: diffusers' StableDiffusionDiffEditPipeline.invert on the tiny-sd fixture, and the DDIM run
that paints the picture back from the inverted latents.

Usage: /opt/diffuse-venv/bin/python tools/make_inversion_refs.py
Writes test/fixtures/inversion/ (cases.json, the init PNG, float32 .bin arrays):
- invert(prompt, image, num_inference_steps, inpaint_strength=1.0, guidance_scale, negative_prompt, generator) with its
  regularisation off (num_reg_steps=0, the default): the VAE posterior sample drawn from the generator, DDIMInverseScheduler
  (from tiny-sd's scheduler config) up through every timestep; `inverted` is latents[:, 0], the noisiest.
- StableDiffusionPipeline with DDIMScheduler.from_config(the same config), latents=inverted, the same prompt, steps and
  guidance, eta 0, output_type="latent": `reconstructed` (the final latents, VAE-scaled).
The torch tiny-sd is rebuilt from its seeded builders and checked against test/fixtures/tiny-sd's ONNX graphs first.
Deterministic: fixed seeds, single-threaded torch.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fixtures_models as models  # noqa: E402
import fixtures_onnx as onnx_tools  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402
from fixtures_refs_img2img import PROMPT, init_image  # noqa: E402
from fixtures_refs_txt2img import NATIVE, NEGATIVE  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_SD = REPO_ROOT / "test" / "fixtures" / "tiny-sd"
OUT = REPO_ROOT / "test" / "fixtures" / "inversion"
MAX_OUT_MB = 0.1

# (name, steps, guidance, negative prompt, seed): no guidance (what reconstructs), and CFG with a negative prompt.
CASES = [
    ("cfg1", 10, 1.0, None, 11),
    ("cfg2-negative", 8, 2.0, NEGATIVE, 12),
]


def main() -> None:
    import diffusers
    from diffusers import (
        DDIMInverseScheduler, DDIMScheduler, OnnxRuntimeModel, OnnxStableDiffusionPipeline, StableDiffusionDiffEditPipeline, StableDiffusionPipeline,
    )

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    base = models.build_txt2img_pipeline(TINY_SD / "tokenizer")
    errors = onnx_tools.check_graphs_match_torch(TINY_SD, base, unet_in_channels=4)
    config = base.scheduler.config
    # `_use_default_values` lists its keys in set order: left out so that a rerun writes the same bytes.
    recorded_config = {k: v for k, v in config.items() if not k.startswith("_")}
    components = {k: v for k, v in base.components.items() if k not in ("scheduler", "image_encoder")}
    diffedit = StableDiffusionDiffEditPipeline(
        **components, scheduler=DDIMScheduler.from_config(config), inverse_scheduler=DDIMInverseScheduler.from_config(config),
        requires_safety_checker=False,
    )
    ddim = StableDiffusionPipeline(**components, image_encoder=None, scheduler=DDIMScheduler.from_config(config), requires_safety_checker=False)
    graph = {part: OnnxRuntimeModel.from_pretrained(str(TINY_SD / part), provider="CPUExecutionProvider")
             for part in ("vae_encoder", "vae_decoder", "text_encoder", "unet")}
    onnx_ddim = OnnxStableDiffusionPipeline(
        **graph, tokenizer=base.tokenizer, scheduler=DDIMScheduler.from_config(config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    for pipe in (diffedit, ddim, onnx_ddim):
        pipe.set_progress_bar_config(disable=True)

    writer = RefWriter(OUT)
    width, height = NATIVE
    image_file = writer.png(f"input.{width}x{height}", init_image(width, height))
    image = Image.open(OUT / image_file).convert("RGB")
    records = []
    for name, steps, guidance, negative, seed in CASES:
        with torch.no_grad():
            inverted = diffedit.invert(
                prompt=PROMPT, image=image, num_inference_steps=steps, inpaint_strength=1.0, guidance_scale=guidance,
                negative_prompt=negative, generator=torch.Generator().manual_seed(seed),
            ).latents[:, 0]
            reconstructed = ddim(
                prompt=PROMPT, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, eta=0.0,
                latents=inverted.clone(), height=height, width=width, output_type="latent",
            ).images
        # The same DDIM run on tiny-sd's ONNX graphs (onnxruntime): what is left between diffuse and diffusers once the
        # graphs are the same. Backwards from inverted latents the torch/ONNX difference of the UNet grows at every step.
        # It has no latent output (the last step's latents come from its callback) and assumes a VAE factor of 8 when it
        # checks the latents' shape (height and width only size that check: tiny-sd's factor is 2).
        last: list[np.ndarray] = []
        onnx_ddim(
            prompt=PROMPT, negative_prompt=negative, num_inference_steps=steps, guidance_scale=guidance, eta=0.0,
            latents=inverted.numpy().copy(), height=inverted.shape[2] * 8, width=inverted.shape[3] * 8, output_type="np",
            callback=lambda _i, _t, latents: last.append(latents.copy()),
        )
        reconstructed_onnx = last[-1]
        if not records:
            # numpy's own .npy bytes for one array: diffuse writes the same file.
            np.save(writer._claim(f"{name}.inverted.npy"), inverted.numpy())
        records.append({
            "name": name, "prompt": PROMPT, "negative_prompt": negative or "", "num_inference_steps": steps,
            "guidance_scale": guidance, "seed": seed, "width": width, "height": height,
            "scheduler": {"class": "DDIMScheduler", "overrides": {}, "config": recorded_config},
            "inverted": writer.array(f"{name}.inverted", inverted),
            "reconstructed": writer.array(f"{name}.reconstructed", reconstructed),
            "reconstructed_onnx": writer.array(f"{name}.reconstructed-onnx", reconstructed_onnx),
        })
    writer.manifest("cases.json", {
        "generator": "tools/make_inversion_refs.py",
        "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__},
        "model": "tiny-sd",
        "onnx_vs_torch_max_abs": errors,
        "inverse_scheduler": "DDIMInverseScheduler.from_config(scheduler.config)",
        "init_image": image_file,
        "cases": records,
    })
    writer.finish(MAX_OUT_MB)


if __name__ == "__main__":
    main()
