"""References for res= (Preprocessor Resolution, src/image/preprocess/processor-resolution.ts): sd-webui-controlnet
1.1.455's canny, scribble_xdog, threshold and lineart_standard (scripts/preprocessor/legacy/processor.py; the extension cannot be imported
without AUTOMATIC1111, so its numpy/cv2 expressions are written out here, resize_image_with_pad as in
scripts/utils.py) on seeded 'cells' pictures (test/helpers/seeded-picture.ts, made again here by
make_cv_resize_u8_refs.seeded_picture) whose shorter side is not the resolution:
  * 600x530 at res=512: scaled down to 580x512 with INTER_AREA (OpenCV's own code under either dispatch);
  * 150x100 at res=512: scaled up to 768x512 with INTER_CUBIC, where OpenCV's default dispatch calls IPP's
    ippiResizeCubic: the map is stored as OpenCV's own code makes it (IPP off) and the file counts the pixels the
    default dispatch's map differs in.

Run: /opt/diffuse-venv/bin/python tools/make_processor_res_refs.py   (writes test/fixtures/processor-res/)
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_cv_resize_u8_refs import seeded_picture  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "processor-res"
MAX_KB = 40


def pad64(x: int) -> int:
    return int(np.ceil(float(x) / 64.0) * 64 - x)


def resize_image_with_pad(img: np.ndarray, resolution: int):
    h_raw, w_raw, _ = img.shape
    k = float(resolution) / float(min(h_raw, w_raw))
    interpolation = cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA
    h_target = int(np.round(float(h_raw) * k))
    w_target = int(np.round(float(w_raw) * k))
    img = cv2.resize(img, (w_target, h_target), interpolation=interpolation)
    padded = np.pad(img, [[0, pad64(h_target)], [0, pad64(w_target)], [0, 0]], mode="edge")
    return padded, lambda x: x[:h_target, :w_target].copy()


def canny(img: np.ndarray, res: int, low: int = 100, high: int = 200) -> np.ndarray:
    img, remove_pad = resize_image_with_pad(img, res)
    return remove_pad(cv2.Canny(img, low, high))


def scribble_xdog(img: np.ndarray, res: int, thr_a: int = 32) -> np.ndarray:
    img, remove_pad = resize_image_with_pad(img, res)
    g1 = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 0.5)
    g2 = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 5.0)
    dog = (255 - np.min(g2 - g1, axis=2)).clip(0, 255).astype(np.uint8)
    result = np.zeros_like(img, dtype=np.uint8)
    result[2 * (255 - dog) > thr_a] = 255
    return remove_pad(result)


def threshold(img: np.ndarray, res: int, thr_a: int = 127) -> np.ndarray:
    img, remove_pad = resize_image_with_pad(img, res)
    result = np.zeros_like(img, dtype=np.uint8)
    result[np.min(img, axis=2) > thr_a] = 255
    return remove_pad(result)


def lineart_standard(img: np.ndarray, res: int) -> np.ndarray:
    img, remove_pad = resize_image_with_pad(img, res)
    x = img.astype(np.float32)
    g = cv2.GaussianBlur(x, (0, 0), 6.0)
    intensity = np.min(g - x, axis=2).clip(0, 255)
    intensity /= max(16, np.median(intensity[intensity > 8]))
    intensity *= 127
    result = intensity.clip(0, 255).astype(np.uint8)
    return remove_pad(result)


def dispatches(fn, *args) -> tuple[np.ndarray, int]:
    """OpenCV's own code (IPP off, 1 thread) and how many pixels the default dispatch differs in."""
    cv2.setNumThreads(1)
    cv2.ipp.setUseIPP(False)
    plain = fn(*args)
    cv2.setNumThreads(-1)
    cv2.ipp.setUseIPP(True)
    default = fn(*args)
    differ = default != plain
    return plain, int(np.count_nonzero(differ.any(axis=-1) if differ.ndim == 3 else differ))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    pictures = [(600, 530, 21), (150, 100, 22)]
    cases = []
    for w, h, seed in pictures:
        img = seeded_picture(w, h, seed, "cells")
        for module, fn in (("canny", canny), ("scribble_xdog", scribble_xdog), ("threshold", threshold), ("lineart_standard", lineart_standard)):
            out, differing = dispatches(fn, img, 512)
            # lineart_standard's grey map would be ~50 kB as a PNG: only its SHA-256 is kept.
            file = None if module == "lineart_standard" else f"cells-{w}x{h}-{seed}.{module}-512.png"
            if file:
                Image.fromarray(out).save(OUT / file, optimize=True)
            cases.append({"width": w, "height": h, "seed": seed, "kind": "cells", "module": module, "res": 512, "output": file,
                          "sha256": hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest(), "channels": 1 if out.ndim == 2 else out.shape[2],
                          "outWidth": out.shape[1], "outHeight": out.shape[0],
                          "white_pixels": int(np.count_nonzero(out if out.ndim == 2 else out[..., 0])),  # nonzero, for lineart_standard
                          "pixels_differing_with_default_dispatch": differing})
    (OUT / "cases.json").write_text(json.dumps({"generator": "tools/make_processor_res_refs.py", "opencv": cv2.__version__, "numpy": np.__version__, "cases": cases}, indent=1) + "\n")
    size = sum(f.stat().st_size for f in OUT.iterdir()) / 1e3
    if size > MAX_KB:
        raise AssertionError(f"{OUT} is {size:.1f} kB > {MAX_KB} kB")
    print(f"{len(cases)} cases, {size:.1f} kB")
    for c in cases:
        print(f"  {c['module']} {c['width']}x{c['height']}: {c['outWidth']}x{c['outHeight']}, {c['white_pixels']} white, {c['pixels_differing_with_default_dispatch']} differ with IPP on")


if __name__ == "__main__":
    main()
