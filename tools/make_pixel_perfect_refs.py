"""References for res=pixel-perfect (src/image/preprocess/processor-resolution.ts pixelPerfectResolution):
sd-webui-controlnet 1.1.455's Pixel Perfect resolution. The extension cannot be imported without AUTOMATIC1111, so
its expression is written out here: get_control (scripts/controlnet.py) passes the unit's picture, the painted size
aligned down to the latent grid (get_target_dimensions' h, w: align_dim_latent, x // 8 * 8, also with a hires fix)
and the unit's resize mode to pixel_perfect_resolution (internal_controlnet/external_code.py): k0 = target_H / raw_H,
k1 = target_W / raw_W in float64, min(k0, k1) for Resize and Fill (OUTER_FIT) and max otherwise, times
float(min(raw_H, raw_W)), int(np.round(...)) (halves to even).

The cases: pictures wider and taller than the painted size, squares, a painted size off the latent grid, and exact
.5 ties (a 64x20 picture: 8.125 * 20 = 162.5 gives 162, 8.375 * 20 = 167.5 gives 168).

Run: /opt/diffuse-venv/bin/python tools/make_pixel_perfect_refs.py   (writes test/fixtures/pixel-perfect/cases.json)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "pixel-perfect" / "cases.json"

# (picture width, picture height, painted width, painted height)
SIZES = [
    (600, 530, 512, 512),
    (600, 530, 128, 96),  # test/controlnet-cli.test.ts paints this one
    (600, 530, 64, 64),
    (150, 100, 768, 512),
    (1200, 800, 512, 768),
    (512, 512, 512, 512),
    (333, 777, 640, 448),
    (640, 480, 515, 301),
    (64, 20, 520, 160),
    (64, 20, 536, 160),
    (64, 20, 520, 168),
    (20, 64, 160, 536),
]
MODES = ["just-resize", "crop-and-resize", "resize-and-fill"]


def pixel_perfect(raw_w: int, raw_h: int, width: int, height: int, mode: str) -> tuple[int, float]:
    target_h, target_w = (height // 8) * 8, (width // 8) * 8
    k0 = float(target_h) / float(raw_h)
    k1 = float(target_w) / float(raw_w)
    k = min(k0, k1) if mode == "resize-and-fill" else max(k0, k1)
    estimation = k * float(min(raw_h, raw_w))
    return int(np.round(estimation)), estimation


def main() -> None:
    cases = []
    for raw_w, raw_h, width, height in SIZES:
        for mode in MODES:
            res, estimation = pixel_perfect(raw_w, raw_h, width, height, mode)
            cases.append({"picture": [raw_w, raw_h], "painted": [width, height], "resize": mode, "estimation": estimation, "res": res})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"numpy": np.__version__, "cases": cases}, separators=(",", ":")) + "\n")
    ties = [c for c in cases if c["estimation"] % 1 == 0.5]
    print(f"{len(cases)} cases ({len(ties)} ties at .5), {OUT.stat().st_size} bytes -> {OUT}")


if __name__ == "__main__":
    main()
