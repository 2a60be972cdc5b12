"""References for sd-webui-controlnet's network-free line preprocessors (src/image/preprocess/scribble.ts,
lineart-standard.ts, canny.ts's cannyControlMap): scribble_xdog, lineart_standard and canny (100, 200), computed as the extension's
scripts/processor.py computes them (the extension cannot be imported without AUTOMATIC1111, so its numpy/cv2
expressions are written out here) at Preprocessor Resolution = the picture's shorter side, where
resize_image_with_pad's cv2.resize is a copy and only its edge padding to multiples of 64 remains.

Pictures: make_preprocess_refs' photo-like scene at 45x70 and 64x64, and a line drawing (dark strokes on a
light, slightly noisy ground: what lineart_standard is for) at 70x45. Each output is computed with OpenCV's
default dispatch (IPP on, 2 threads) and with IPP off on 1 thread; the file records the default one and how
many pixels the other differs in.

Run: /opt/diffuse-venv/bin/python tools/make_line_preprocess_refs.py   (writes test/fixtures/preprocess-lines/)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_preprocess_refs import scene  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "preprocess-lines"
MAX_KB = 60


def drawing(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (236, 232, 225))
    pen = ImageDraw.Draw(img)
    for _ in range(9):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, [width, height, width, height]))
        pen.line([(x0, y0), (x1, y1)], fill=tuple(int(v) for v in rng.integers(0, 90, 3)), width=int(rng.integers(1, 4)))
    pen.ellipse([width // 4, height // 4, width * 3 // 4, height * 3 // 4], outline=(30, 30, 40), width=2)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-6, 7, (height, width, 3))
    return np.clip(arr, 0, 255).astype(np.uint8)


def edge_padded(img: np.ndarray) -> np.ndarray:
    pad = lambda n: int(np.ceil(n / 64.0) * 64 - n)  # noqa: E731
    return np.pad(img, [[0, pad(img.shape[0])], [0, pad(img.shape[1])], [0, 0]], mode="edge")


def xdog(img: np.ndarray, thr: float) -> np.ndarray:
    h, w = img.shape[:2]
    x = edge_padded(img).astype(np.float32)
    fine = cv2.GaussianBlur(x, (0, 0), 0.5)
    coarse = cv2.GaussianBlur(x, (0, 0), 5.0)
    dog = (255 - np.min(coarse - fine, axis=2)).clip(0, 255).astype(np.uint8)
    out = np.zeros_like(x, dtype=np.uint8)
    out[2 * (255 - dog) > thr] = 255
    return out[:h, :w]


def canny(img: np.ndarray, low: int, high: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.Canny(edge_padded(img), low, high)[:h, :w]


def lineart_standard(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    x = edge_padded(img).astype(np.float32)
    g = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(g - x, axis=2).clip(0, 255)
    lines = intensity[intensity > 8]
    intensity /= max(16, np.median(lines)) if lines.size else 16
    intensity *= 127
    grey = intensity.clip(0, 255).astype(np.uint8)[:h, :w]
    return np.repeat(grey[..., None], 3, axis=2)


def both_dispatches(fn, *args) -> tuple[np.ndarray, int]:
    cv2.setNumThreads(2)
    cv2.ipp.setUseIPP(True)
    default = fn(*args)
    cv2.setNumThreads(1)
    cv2.ipp.setUseIPP(False)
    plain = fn(*args)
    cv2.ipp.setUseIPP(True)
    cv2.setNumThreads(2)
    differ = default != plain
    return default, int(np.count_nonzero(differ.any(axis=-1) if differ.ndim == 3 else differ))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    pictures = {"scene-45x70": scene(45, 70, 3), "scene-64": scene(64, 64, 4), "drawing-70x45": drawing(70, 45, 5)}
    cases = []
    for name, img in pictures.items():
        Image.fromarray(img).save(OUT / f"{name}.png")
        runs = [("scribble_xdog", {"threshold": 32}, lambda i: xdog(i, 32)), ("scribble_xdog", {"threshold": 12}, lambda i: xdog(i, 12)),
                ("lineart_standard", {}, lineart_standard), ("canny", {"low": 100, "high": 200}, lambda i: canny(i, 100, 200))]
        for module, args, fn in runs:
            out, differing = both_dispatches(fn, img)
            file = f"{name}.{module}{'-' + str(args['threshold']) if 'threshold' in args else ''}.png"
            Image.fromarray(out).save(OUT / file)
            cases.append({"picture": f"{name}.png", "module": module, "args": args, "output": file,
                          "white_or_nonzero_pixels": int(np.count_nonzero(out if out.ndim == 2 else out[..., 0])), "pixels_differing_with_ipp_off_1_thread": differing})
    (OUT / "cases.json").write_text(json.dumps({"generator": "tools/make_line_preprocess_refs.py", "opencv": cv2.__version__, "numpy": np.__version__, "cases": cases}, indent=1) + "\n")
    size = sum(f.stat().st_size for f in OUT.iterdir()) / 1e3
    if size > MAX_KB:
        raise AssertionError(f"{OUT} is {size:.1f} kB > {MAX_KB} kB")
    print(f"{len(cases)} cases, {size:.1f} kB")
    for c in cases:
        print(f"  {c['output']}: {c['white_or_nonzero_pixels']} set, {c['pixels_differing_with_ipp_off_1_thread']} differ without IPP")


if __name__ == "__main__":
    main()
