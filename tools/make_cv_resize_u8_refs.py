"""References for src/image/cv-resize-u8.ts: cv2.resize (OpenCV 4.11, the pinned venv) of 3-channel uint8 pictures
with INTER_AREA and INTER_CUBIC, stored as the SHA-256 of each output's bytes (the test makes the same pictures from
their seeds: test/helpers/seeded-picture.ts, reproduced here in numpy integer arithmetic).

Each output is computed with OpenCV's default dispatch (IPP on, as sd-webui-controlnet runs) and again with IPP off on
one thread (OpenCV's own code): the file records both hashes and how many samples differ. OpenCV 4.11's IPP HAL
(hal/ipp ipp_hal_resize) takes 8-bit INTER_CUBIC (ippiResizeCubic) but refuses INTER_AREA (ippSuper, "not exact"),
so the two agree for INTER_AREA and differ by 1 level in some samples for INTER_CUBIC.

Run: /opt/diffuse-venv/bin/python tools/make_cv_resize_u8_refs.py   (writes test/fixtures/cv-resize-u8/refs.json)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "cv-resize-u8" / "refs.json"

# (kind, width, height, seed, out width, out height, interpolation): integer and non-integer factors, down with
# INTER_AREA (its fast path at 2, 3 and 4; its general path otherwise, including factors just above 1 and unequal
# ones), up and down with INTER_CUBIC, rows whose length is and is not a multiple of 8 samples.
CASES = [
    ("noise", 64, 48, 1, 32, 24, "area"),
    ("photo", 96, 60, 2, 32, 20, "area"),
    ("noise", 120, 80, 3, 30, 20, "area"),
    ("noise", 100, 75, 4, 64, 48, "area"),
    ("photo", 77, 53, 5, 40, 27, "area"),
    ("noise", 200, 150, 6, 131, 98, "area"),
    ("photo", 513, 257, 7, 512, 256, "area"),
    ("noise", 90, 70, 8, 61, 70, "area"),
    ("photo", 300, 200, 9, 111, 74, "area"),
    ("noise", 40, 30, 10, 64, 48, "cubic"),
    ("photo", 37, 23, 11, 100, 62, "cubic"),
    ("noise", 10, 7, 12, 80, 56, "cubic"),
    ("photo", 33, 47, 13, 66, 94, "cubic"),
    ("noise", 5, 3, 14, 7, 4, "cubic"),
    ("photo", 150, 100, 15, 768, 512, "cubic"),
    ("noise", 100, 80, 16, 61, 49, "cubic"),
    ("photo", 200, 120, 17, 853, 512, "cubic"),
    # Rows whose last (length mod 8) samples come out differently in float32 than in OpenCV's integer tail.
    ("noise", 29, 10, 272, 29, 55, "cubic"),
    ("photo", 5, 4, 240, 63, 53, "cubic"),
]


def lcg(seed: int):
    s = seed & 0xFFFFFFFF
    while True:
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        yield s >> 24


def seeded_picture(width: int, height: int, seed: int, kind: str) -> np.ndarray:
    draw = lcg(seed)
    if kind == "noise":
        return np.fromiter((next(draw) for _ in range(width * height * 3)), np.uint8).reshape(height, width, 3)
    gw, gh = 6, 5
    grids = [[next(draw) for _ in range(gw * gh)] for _ in range(3)]
    dx, dy = width - 1, height - 1
    out = np.zeros((height, width, 3), np.uint8)
    for y in range(height):
        iy, ry = divmod(y * (gh - 1), dy)
        iy1 = min(iy + 1, gh - 1)
        for x in range(width):
            ix, rx = divmod(x * (gw - 1), dx)
            ix1 = min(ix + 1, gw - 1)
            for c in range(3):
                g = grids[c]
                if kind == "cells":
                    v = g[(y * gh // height) * gw + x * gw // width]
                else:
                    v = (g[iy * gw + ix] * (dx - rx) * (dy - ry) + g[iy * gw + ix1] * rx * (dy - ry) + g[iy1 * gw + ix] * (dx - rx) * ry + g[iy1 * gw + ix1] * rx * ry) // (dx * dy)
                out[y, x, c] = min(255, max(0, v + next(draw) % 9 - 4))
    return out


def main() -> None:
    flags = {"area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC}
    refs = []
    for kind, w, h, seed, ow, oh, interp in CASES:
        pic = seeded_picture(w, h, seed, kind)
        cv2.ipp.setUseIPP(True)
        cv2.setNumThreads(-1)
        default = cv2.resize(pic, (ow, oh), interpolation=flags[interp])
        cv2.ipp.setUseIPP(False)
        cv2.setNumThreads(1)
        plain = cv2.resize(pic, (ow, oh), interpolation=flags[interp])
        refs.append({
            "kind": kind, "width": w, "height": h, "seed": seed, "outWidth": ow, "outHeight": oh, "interpolation": interp,
            "input": hashlib.sha256(pic.tobytes()).hexdigest(),
            "sha256": hashlib.sha256(default.tobytes()).hexdigest(),
            "sha256IppOff": hashlib.sha256(plain.tobytes()).hexdigest(),
            "ippOffDiffers": int(np.count_nonzero(default != plain)),
        })
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"opencv": cv2.__version__, "cases": refs}, indent=1) + "\n")
    print(f"{len(refs)} cases -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
