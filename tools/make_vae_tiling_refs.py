"""Reference for --vae-tiling: diffusers' AutoencoderKL.tiled_decode on the tiny fixture VAE.

Rebuilds the fixture VAE from its fixed seed (tools/fixtures_models.py), enables diffusers' tiling
(tiles of config.sample_size pixels, overlap factor 0.25) and decodes latents larger than one tile.
Writes test/fixtures/vae-tiling/: refs.json, latents.bin (input, already divided by the scaling
factor) and tiled.bin (the tiled decode), raw little-endian float32.

    /opt/diffuse-venv/bin/python tools/make_vae_tiling_refs.py
"""
import json
from pathlib import Path

import torch

from fixtures_models import build_vae

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "vae-tiling"
SHAPE = (1, 4, 40, 24)  # 80x48 pixels: 4 x 2 overlapping tiles of 16 latents (steps of 12) at ratio 2


def main() -> None:
    vae = build_vae()
    vae.enable_tiling()
    torch.manual_seed(77)
    latents = torch.randn(SHAPE) * 1.5
    with torch.no_grad():
        tiled = vae.decode(latents).sample
    OUT.mkdir(parents=True, exist_ok=True)
    latents.numpy().astype("<f4").tofile(OUT / "latents.bin")
    tiled.numpy().astype("<f4").tofile(OUT / "tiled.bin")
    refs = {
        "latents": {"file": "latents.bin", "shape": list(SHAPE)},
        "tiled": {"file": "tiled.bin", "shape": list(tiled.shape)},
        "tile_sample_min_size": vae.tile_sample_min_size,
        "tile_latent_min_size": vae.tile_latent_min_size,
        "tile_overlap_factor": vae.tile_overlap_factor,
    }
    (OUT / "refs.json").write_text(json.dumps(refs, indent=1) + "\n")
    print("wrote", OUT, list(tiled.shape))


if __name__ == "__main__":
    main()
