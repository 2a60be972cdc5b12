"""References for the OpenCV ports OpenPose's preprocessor uses: cv2.resize with INTER_LANCZOS4 (src/image/cv-resize-lanczos.ts,
3-channel uint8 and one-channel float32), cv2.resize INTER_AREA of float32 planes (src/image/cv-resize-area.ts) and
cv2.ellipse2Poly + cv2.fillConvexPoly + cv2.circle(thickness=-1) and cv2.line(thickness=2, 3) (src/image/cv-draw.ts), and
cv2.GaussianBlur of 3-channel uint8 pictures at sigma 0.8 (the hand detector's; src/image/cv-gaussian-u8.ts), OpenCV 4.11 of the pinned venv
with its default dispatch, stored as SHA-256s of each output's bytes (the test makes the same inputs: seeded pictures,
test/helpers/seeded-picture.ts, through tools/make_cv_resize_u8_refs.seeded_picture; float planes as channel 0 / 256 -
0.5, exact in float32).

Run: /opt/diffuse-venv/bin/python tools/make_cv_pose_ops_refs.py   (writes test/fixtures/cv-pose-ops/refs.json)
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from make_cv_resize_u8_refs import seeded_picture

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "cv-pose-ops" / "refs.json"

# (kind, width, height, seed, out width, out height, samples, interpolation): Lanczos up (OpenPose's 184-row
# picture, its maps x8) and down, rows of 4k samples and not (the float vertical pass's SIMD and scalar tails);
# area of float planes: general factors, whole factors (3x4) and halving with a row tail.
RESIZES = [
    ("noise", 45, 64, 1, 129, 184, "u8", "lanczos"),
    ("photo", 70, 45, 2, 286, 184, "u8", "lanczos"),
    ("noise", 20, 13, 3, 37, 29, "u8", "lanczos"),
    ("photo", 64, 48, 4, 45, 31, "u8", "lanczos"),
    ("photo", 17, 23, 5, 136, 184, "f32", "lanczos"),
    ("noise", 13, 9, 6, 101, 77, "f32", "lanczos"),
    ("photo", 64, 48, 7, 45, 31, "f32", "lanczos"),
    ("photo", 131, 184, 8, 45, 70, "f32", "area"),
    ("noise", 96, 64, 9, 32, 16, "f32", "area"),
    ("noise", 90, 64, 10, 45, 32, "f32", "area"),
]


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def draw_cases() -> list:
    """Limbs and joints as draw_bodypose draws them, some across the canvas' edges and some off it."""
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(30):
        width, height = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        center = [int(rng.integers(-10, width + 10)), int(rng.integers(-10, height + 10))]
        axes = [int(rng.integers(0, 40)), 4]
        angle = int(rng.integers(-180, 181))
        joint = [int(rng.integers(-6, width + 6)), int(rng.integers(-6, height + 6))]
        polygon = cv2.ellipse2Poly(tuple(center), tuple(axes), angle, 0, 360, 1)
        canvas = np.zeros((height, width, 3), np.uint8)
        cv2.fillConvexPoly(canvas, polygon, [153, 51, 0])
        cv2.circle(canvas, tuple(joint), 4, [255, 0, 85], thickness=-1)
        cases.append({"width": width, "height": height, "center": center, "axes": axes, "angle": angle, "joint": joint,
                      "polygon": sha(polygon.astype(np.int32)), "canvas": sha(canvas)})
    return cases


def line_cases() -> list:
    """Segments as draw_handpose draws them (thickness 2; 3 for the odd-thickness rounding), some leaving the canvas, some a point."""
    rng = np.random.default_rng(8)
    cases = []
    for k in range(40):
        width, height = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        a = [int(rng.integers(-8, width + 8)), int(rng.integers(-8, height + 8))]
        b = a if k % 10 == 0 else [int(rng.integers(-8, width + 8)), int(rng.integers(-8, height + 8))]
        thickness = 3 if k % 4 == 3 else 2
        canvas = np.zeros((height, width, 3), np.uint8)
        cv2.line(canvas, tuple(a), tuple(b), [255, 153, 0], thickness=thickness)
        cases.append({"width": width, "height": height, "from": a, "to": b, "thickness": thickness, "canvas": sha(canvas)})
    return cases


# (kind, width, height, seed): pictures the hand detector blurs (its boxes are 20 pixels or more), odd and even sides.
BLURS = [("noise", 20, 20, 11), ("photo", 37, 37, 12), ("noise", 64, 41, 13), ("photo", 129, 96, 14), ("noise", 23, 70, 15)]


def blur_cases() -> list:
    cases = []
    for kind, width, height, seed in BLURS:
        picture = seeded_picture(width, height, seed, kind)
        out = cv2.GaussianBlur(picture, (0, 0), 0.8)
        cases.append({"kind": kind, "width": width, "height": height, "seed": seed, "input": sha(picture), "sha256": sha(out)})
    return cases


def main() -> None:
    resizes = []
    for kind, width, height, seed, out_width, out_height, samples, interpolation in RESIZES:
        picture = seeded_picture(width, height, seed, kind)
        source = picture if samples == "u8" else picture[:, :, 0].astype(np.float32) / 256 - 0.5
        flag = cv2.INTER_LANCZOS4 if interpolation == "lanczos" else cv2.INTER_AREA
        out = cv2.resize(source, (out_width, out_height), interpolation=flag)
        resizes.append({"kind": kind, "width": width, "height": height, "seed": seed, "outWidth": out_width, "outHeight": out_height,
                        "samples": samples, "interpolation": interpolation, "input": sha(source), "sha256": sha(out)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"opencv": cv2.__version__, "resizes": resizes, "draws": draw_cases(),
                               "lines": line_cases(), "blurs": blur_cases()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
