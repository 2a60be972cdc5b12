"""Helpers the tiny CLIP-family fixtures share: crafted RGB pictures and unit-scale random weights."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image


def picture(width: int, height: int, seed: int, kind: str) -> Image.Image:
    """A smooth pattern (ramps, checks, rings, stripes or blobs) with a little seeded noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    if kind == "ramps":
        base = np.stack([255 * x / (width - 1), 255 * y / (height - 1), 255 - 255 * x / (width - 1)], -1)
    elif kind == "checks":
        c = ((x // 8 + y // 8) % 2) * 255
        base = np.stack([c, 255 - c, np.full_like(c, 64)], -1)
    elif kind == "rings":
        r = np.hypot(x - width / 2, y - height / 2)
        base = np.stack([127.5 + 127.5 * np.sin(r / 3), 127.5 + 127.5 * np.cos(r / 5), 200 - r], -1)
    elif kind == "stripes":
        base = np.stack([(x % 20 < 10) * 230.0, np.full_like(x, 120), (y % 14 < 7) * 210.0], -1)
    else:
        base = np.stack([127.5 + 127.5 * np.sin(x / 17 + np.cos(y / 11)), 90 + 0 * x, 127.5 + 127.5 * np.cos(y / 13)], -1)
    noise = rng.integers(-6, 7, size=(height, width, 3))
    return Image.fromarray(np.clip(np.rint(base) + noise, 0, 255).astype(np.uint8), mode="RGB")


def unit_scale_init(model: torch.nn.Module, g: torch.Generator, skip: Callable[[str], bool] = lambda name: False) -> None:
    """Weights of unit scale (randn / sqrt(fan-in)), norms near 1, small biases: tiny random models that still tell
    their inputs apart (transformers' 0.02-std init makes every output nearly the same)."""
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if skip(name):
                continue
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p[0].numel()))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
