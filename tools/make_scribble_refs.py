"""References for --control type=scribble-hed / scribble-pidinet (src/image/cv-gaussian-u8.ts, nms.ts,
scribble-edges.ts): sd-webui-controlnet's scribble_hed and scribble_pidinet after the soft-edge map, with OpenCV 4.11.

The extension (scripts/preprocessor/legacy/processor.py) computes, on hed()'s or pidinet()'s cropped uint8 map:
    annotator/util.py nms(map, 127, 3.0): cv2.GaussianBlur(map.astype(np.float32), (0, 0), 3.0); a sample is kept where
        it equals cv2.dilate of the blur by one of four 3x3 line kernels (row, column, both diagonals); 255 where a kept
        sample is above 127;
    then cv2.GaussianBlur(that uint8 map, (0, 0), 3.0), and 255 where the blur is above 4, 0 elsewhere.
It cannot be imported without AUTOMATIC1111, so those expressions are written out below (scribble, nms).

Writes test/fixtures/scribble/refs.json and PNGs:
  * blur: cv2.GaussianBlur((0, 0), sigma) of uint8 pictures (OpenCV's fixed-point 8-bit path) on several sizes (below
    the kernel's width, rows of 8k samples and not, 1 and 3 channels) and sigmas (3-, 5-, 7-tap and longer kernels);
  * nms: util.nms(x, t, s) of grey maps at several sizes, thresholds and sigmas;
  * modules: scribble_hed / scribble_pidinet's steps on the random networks' softedge maps that test/fixtures/hed and
    test/fixtures/pidinet hold (scene-64: the detector's own call, sides multiples of 64; scene-45x70: the extension's
    hed()/pidinet(), padded and cropped back), each result saved as a PNG (a 0/255 map, a few hundred bytes).
Each is computed with OpenCV's default dispatch (IPP on) and again with IPP off on one thread (OpenCV's own code); the
file records the default's SHA-256 and how many samples IPP off changes (none: OpenCV 4.11 sends 8-bit GaussianBlur to its
fixed-point code whatever IPP says, float32 GaussianBlur does not use IPP unless built with OPENCV_IPP_GAUSSIAN_BLUR, and a
dilation is a maximum either way), and how many samples are 255. Inputs are test/helpers/seeded-picture.ts's
pictures (make_cv_resize_u8_refs.seeded_picture), their first channel for grey ones; 'sparse' is noise > 240 -> 255, else
0 (a map like nms's output); 'blocks' is cells > 127 -> 255 (plateaus, where the blur's samples tie).

Run: /opt/diffuse-venv/bin/python tools/make_scribble_refs.py
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from make_cv_resize_u8_refs import seeded_picture

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test" / "fixtures" / "scribble"

# 0/255 inputs: a seeded picture above the level -> 255. sparse: noise's dots, as nms leaves; blocks: cells' patches,
# 255 plateaus wider than the blur, whose samples tie with their neighbours (nms keeps a sample equal to its line's
# largest, so a plateau stays).
LEVELS = {"sparse": ("noise", 240), "blocks": ("cells", 127)}

# (kind, width, height, seed, channels, sigma)
BLUR = [
    ("sparse", 64, 64, 1, 1, 3.0),
    ("photo", 45, 70, 2, 1, 3.0),
    ("noise", 70, 45, 3, 1, 3.0),
    ("sparse", 128, 64, 4, 1, 3.0),
    ("noise", 9, 1, 5, 1, 3.0),
    ("noise", 1, 9, 6, 1, 3.0),
    ("noise", 5, 3, 7, 1, 3.0),
    ("photo", 33, 17, 8, 3, 3.0),
    ("noise", 100, 37, 9, 1, 1.0),
    ("photo", 64, 48, 10, 3, 0.5),
    ("noise", 37, 29, 11, 1, 0.3),
    ("sparse", 80, 61, 12, 1, 2.0),
    ("photo", 50, 40, 13, 1, 5.0),
    ("noise", 31, 7, 14, 3, 0.8),
]

# (kind, width, height, seed, threshold, sigma)
NMS = [
    ("photo", 64, 64, 21, 127, 3.0),
    ("photo", 45, 70, 22, 127, 3.0),
    ("noise", 70, 45, 23, 127, 3.0),
    ("photo", 128, 64, 24, 127, 3.0),
    ("photo", 33, 17, 25, 100, 3.0),
    ("noise", 7, 5, 26, 127, 3.0),
    ("noise", 1, 9, 27, 60, 3.0),
    ("photo", 61, 39, 28, 100, 1.5),
    ("noise", 40, 31, 29, 60, 2.0),
    ("blocks", 160, 130, 30, 127, 3.0),
    ("blocks", 150, 100, 31, 100, 1.5),
]

# (network, picture, module): the networks' non-safe softedge maps.
MODULES = [
    ("hed", "scene-64", "scribble_hed"),
    ("hed", "scene-45x70", "scribble_hed"),
    ("pidinet", "scene-64", "scribble_pidinet"),
    ("pidinet", "scene-45x70", "scribble_pidinet"),
]


def grey_or_rgb(kind: str, width: int, height: int, seed: int, channels: int) -> np.ndarray:
    source, level = LEVELS.get(kind, (kind, None))
    picture = seeded_picture(width, height, seed, source)
    if level is not None:
        picture = np.where(picture > level, 255, 0).astype(np.uint8)
    return picture if channels == 3 else np.ascontiguousarray(picture[:, :, 0])


def nms(x: np.ndarray, t: float, s: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(x.astype(np.float32), (0, 0), s)
    lines = [np.array(k, dtype=np.uint8) for k in ([[0, 0, 0], [1, 1, 1], [0, 0, 0]], [[0, 1, 0], [0, 1, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 0, 1], [0, 1, 0], [1, 0, 0]])]
    kept = np.zeros_like(blurred)
    for kernel in lines:
        np.putmask(kept, cv2.dilate(blurred, kernel=kernel) == blurred, blurred)
    out = np.zeros_like(kept, dtype=np.uint8)
    out[kept > t] = 255
    return out


def scribble(edge: np.ndarray) -> np.ndarray:
    result = nms(edge, 127, 3.0)
    result = cv2.GaussianBlur(result, (0, 0), 3.0)
    result[result > 4] = 255
    result[result < 255] = 0
    return result


def both(run):
    """run() with OpenCV's default dispatch (IPP on, threads as configured), then IPP off on one thread."""
    cv2.ipp.setUseIPP(True)
    cv2.setNumThreads(-1)
    default = run()
    cv2.ipp.setUseIPP(False)
    cv2.setNumThreads(1)
    plain = run()
    cv2.ipp.setUseIPP(True)
    cv2.setNumThreads(-1)
    return default, plain


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def record(default: np.ndarray, plain: np.ndarray) -> dict:
    return {"sha256": sha(default), "ippOffDiffers": int(np.count_nonzero(default != plain)), "white": int(np.count_nonzero(default == 255))}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    blur = []
    for kind, w, h, seed, channels, sigma in BLUR:
        x = grey_or_rgb(kind, w, h, seed, channels)
        default, plain = both(lambda: cv2.GaussianBlur(x, (0, 0), sigma))
        blur.append({"kind": kind, "width": w, "height": h, "seed": seed, "channels": channels, "sigma": sigma, "input": sha(x), **record(default, plain)})
    nms_cases = []
    for kind, w, h, seed, t, s in NMS:
        x = grey_or_rgb(kind, w, h, seed, 1)
        default, plain = both(lambda: nms(x, t, s))
        nms_cases.append({"kind": kind, "width": w, "height": h, "seed": seed, "threshold": t, "sigma": s, "input": sha(x), **record(default, plain)})
    modules = []
    for network, name, module in MODULES:
        edge_file = ROOT / "test" / "fixtures" / network / f"{name}.edge.png"
        edge = np.asarray(Image.open(edge_file))
        assert edge.ndim == 2 and edge.dtype == np.uint8, edge_file
        default, plain = both(lambda: scribble(edge))
        assert np.array_equal(default, plain), f"{network} {name}: IPP on and off differ"
        png = f"{network}-{name}.png"
        Image.fromarray(plain).save(OUT / png, optimize=True)
        modules.append({"network": network, "picture": name, "module": module, "edge": f"{network}/{name}.edge.png", "edgeSha256": sha(edge), "scribble": png, **record(default, plain)})
    refs = {"opencv": cv2.__version__, "blur": blur, "nms": nms_cases, "modules": modules}
    lines = [f' "opencv": {json.dumps(refs["opencv"])}']
    for group in ("blur", "nms", "modules"):
        lines.append(f' "{group}": [\n' + ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in refs[group]) + "\n ]")
    (OUT / "refs.json").write_text("{\n" + ",\n".join(lines) + "\n}\n")
    for group in ("blur", "nms", "modules"):
        print(group, [(c["width"] if "width" in c else c["picture"], c["ippOffDiffers"], c["white"]) for c in refs[group]])


if __name__ == "__main__":
    main()
