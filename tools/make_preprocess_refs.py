"""Reference fixtures for src/image/preprocess/: ControlNet's model-free control-image preprocessors.

Run: /opt/diffuse-venv/bin/python tools/make_preprocess_refs.py
Writes test/fixtures/preprocess/ (deterministic: a rerun rewrites byte-identical files).

What each reference is:
  * canny: cv2.Canny(img, low, high, L2gradient=...) with the default aperture 3, on 3-channel RGB (what
    sd-webui-controlnet, controlnet_aux and the original ControlNet scripts pass: no grey conversion first) and on
    single-channel images, over threshold edge cases (swapped, equal, 0, 255, fractional, negative, beyond the
    largest gradient, L2's 32767 clamp), a noisy photo-like image, a checkerboard (ties everywhere) and tiny
    images (1xN, Nx1, 2x2, 3x3) where every pixel touches a border.
    Each result is also computed with 1 thread and with IPP off and must be identical (checked here).
  * gray: SHA-256 of cv2.cvtColor(all 2^24 colours, COLOR_RGB2GRAY): the exhaustive check of its fixed point.
  * threshold, invert: sd-webui-controlnet's scripts/preprocessor/legacy/processor.py `threshold`
    (255 where the smallest channel exceeds the threshold) and `invert` (255 - img), written out here with the
    same numpy expressions (the extension cannot be imported without AUTOMATIC1111).
"""

import gzip
import hashlib
import json
import os

import cv2
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "preprocess")


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """RGB with gradients, hard-edged shapes touching the borders, diagonal lines, flat steps (equal gradient
    magnitudes: the tie rules of non-maximum suppression) and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([255 * x / (width - 1), 128 + 100 * np.sin(x / 5) * np.cos(y / 6), 255 * y / (height - 1)], -1)
    img[(x - width * 0.55) ** 2 + (y - height * 0.4) ** 2 < (min(width, height) * 0.3) ** 2] = [230, 20, 60]
    img[: height // 4, : width // 3] = [10, 200, 30]  # touches the top and left borders
    img[np.abs(x - y - width // 4) < 1.5] = [255, 255, 255]  # a 45-degree line
    img[height * 3 // 4 :, :] = (np.floor(x[height * 3 // 4 :, :] / 7) * 20 % 256)[..., None]  # flat steps
    img[height // 2 : height * 3 // 4, width // 2 :] += rng.normal(0, 30, img[height // 2 : height * 3 // 4, width // 2 :].shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


class Blob:
    """Arrays appended to one gzipped binary, addressed by offset."""

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, arr: np.ndarray) -> int:
        offset = len(self.data)
        self.data += np.ascontiguousarray(arr, dtype=np.uint8).tobytes()
        return offset


def canny_everywhere(img: np.ndarray, low: float, high: float, l2: bool) -> np.ndarray:
    """cv2.Canny, checked to be the same with several threads, one thread and IPP off."""
    results = []
    for threads, ipp in [(2, True), (1, True), (1, False)]:
        cv2.setNumThreads(threads)
        cv2.ipp.setUseIPP(ipp)
        results.append(cv2.Canny(img, low, high, L2gradient=l2))
    cv2.setNumThreads(2)
    cv2.ipp.setUseIPP(True)
    assert all(np.array_equal(results[0], r) for r in results[1:]), "Canny differs between OpenCV's code paths"
    assert set(np.unique(results[0])) <= {0, 255}
    return results[0]


THRESHOLDS = [
    (100, 200, False), (200, 100, False), (50, 50, False), (0, 0, False), (0, 255, False), (255, 255, False),
    (1, 2, False), (99.5, 200.7, False), (-5, 10, False), (500, 1500, False), (2040, 2040, False), (3000, 4000, False),
    (100, 200, True), (0, 0, True), (10.5, 30.2, True), (255, 255, True), (300, 1000, True), (40000, 50000, True),
]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    blob = Blob()
    images = {}

    def add_image(name: str, img: np.ndarray) -> None:
        images[name] = {"width": img.shape[1], "height": img.shape[0], "channels": 1 if img.ndim == 2 else img.shape[2], "offset": blob.add(img)}

    rgb = scene(97, 83, 1)
    add_image("scene", rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    add_image("scene-gray", gray)
    textured = scene(128, 96, 2).astype(np.float64) + np.random.default_rng(3).normal(0, 20, (96, 128, 3))
    add_image("textured", np.clip(np.round(textured), 0, 255).astype(np.uint8))  # photo-like noise everywhere
    rng = np.random.default_rng(5)
    for w, h in [(1, 1), (7, 1), (1, 7), (2, 2), (3, 3), (5, 3)]:
        add_image(f"tiny-{w}x{h}", rng.integers(0, 256, (h, w, 3)).astype(np.uint8))
    yy, xx = np.indices((24, 24))
    checker = np.where(yy < 12, (yy + xx) % 2 * 255, (yy // 3 + xx // 3) % 2 * 200).astype(np.uint8)  # 1-px, 3-px squares
    add_image("checker-gray", checker)

    canny = []
    for name in images:
        img = blob.data[images[name]["offset"] :]
        info = images[name]
        shape = (info["height"], info["width"]) if info["channels"] == 1 else (info["height"], info["width"], info["channels"])
        arr = np.frombuffer(bytes(img[: int(np.prod(shape))]), dtype=np.uint8).reshape(shape)
        if name in ("scene", "scene-gray"):
            thresholds = THRESHOLDS
        elif name == "textured":
            thresholds = [(100, 200, False), (50, 150, False), (100, 200, True), (50, 150, True)]
        else:
            thresholds = [(100, 200, False), (0, 0, False), (0, 0, True), (30, 60, True)]
        for low, high, l2 in thresholds:
            edges = canny_everywhere(arr, low, high, l2)
            canny.append({"image": name, "low": low, "high": high, "l2": l2, "edgePixels": int(np.count_nonzero(edges)), "offset": blob.add(edges)})

    # gray conversion first, as some scripts do, must equal Canny on the stored grey image (a consistency check)
    assert np.array_equal(cv2.Canny(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 100, 200), cv2.Canny(gray, 100, 200))

    threshold = []
    for thr in (127, 0, 254):
        result = np.zeros_like(rgb, dtype=np.uint8)
        result[np.min(rgb, axis=2) > thr] = 255
        threshold.append({"threshold": thr, "offset": blob.add(result)})
    invert = {"offset": blob.add(255 - rgb)}

    v = np.arange(1 << 24, dtype=np.uint32)
    triples = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    gray_hash = hashlib.sha256(cv2.cvtColor(triples, cv2.COLOR_RGB2GRAY).tobytes()).hexdigest()

    with open(os.path.join(OUT, "arrays.bin.gz"), "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(bytes(blob.data))
    refs = {
        "versions": {"opencv": cv2.__version__, "numpy": np.__version__},
        "layout": "arrays.bin.gz: uint8 arrays at byte offsets, row-major HWC (single-channel: HW); Canny outputs HW of 0/255",
        "images": images,
        "canny": canny,
        "threshold": {"image": "scene", "cases": threshold},
        "invert": {"image": "scene", **invert},
        "gray": {"layout": "pixel i of a 4096x4096 RGB image holds ((i >> 16) & 255, (i >> 8) & 255, i & 255)", "rgb2gray": gray_hash},
    }
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
