"""Reference fixtures for src/image/watermark/: the invisible-watermark library's "dwtDct" method.

Run: /opt/diffuse-venv/bin/python tools/make_watermark_refs.py
Writes test/fixtures/watermark/ (deterministic: a rerun rewrites byte-identical files).

What each reference is:
  * cases: WatermarkEncoder().set_watermark(kind, payload).encode(img, "dwtDct") on an 8-bit image, called the
    two ways its users call it: CompVis' and Stability's scripts convert PIL's RGB to BGR first (cv2.cvtColor
    RGB2BGR, and [:, :, ::-1] on the way back); diffusers' StableDiffusionXLWatermarker hands its RGB array over
    as it is, so the library reads red as blue ("rgb" order here). Input and output are stored as RGB PNGs.
    WatermarkDecoder.decode on the output must give the payload back (checked here); its bits on the unmarked
    input and on the output read in the other channel order are recorded for the decoder test.
  * haar: pywt.dwt2 / idwt2 (float64) on a small uint8 plane, with the detail bands swapped on the way back as
    the library's EmbedMaxDct.encode passes them, to localise a float mismatch before it reaches uint8.
  * yuv: SHA-256 of cv2.cvtColor over all 2^24 colours, BGR2YUV and YUV2BGR (every triple read as YUV): the
    exhaustive check of the 8-bit fixed-point conversions without storing 96 MB.
"""

import hashlib
import json
import math
import os

import cv2
import numpy as np
import pywt
from imwatermark import WatermarkDecoder, WatermarkEncoder
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "watermark")

# diffusers' pipelines/stable_diffusion_xl/watermark.py (= Stability's generative-models): bin(x)[2:] of
WATERMARK_MESSAGE = 0b101100111110110010010000011110111011000110011110
SDXL_BITS = [int(bit) for bit in bin(WATERMARK_MESSAGE)[2:]]


def chance_of_matching(matched: int, n: int) -> float:
    """P(an unmarked image agrees on at least `matched` of n bits), each bit a fair coin."""
    return sum(math.comb(n, k) for k in range(matched, n + 1)) / 2**n


def source_image(width: int, height: int, seed: int) -> np.ndarray:
    """RGB with smooth gradients (ties between equal DWT coefficients), hard-edged shapes, saturated colours
    and a noisy band (photo-like texture), so every branch of the per-block embedding is taken."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.stack([255 * x / (width - 1), 255 * y / (height - 1), 128 + 90 * np.sin(x / 11) * np.cos(y / 7)], -1)
    cx, cy, r = width * 0.6, height * 0.45, min(width, height) * 0.25
    img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = [200, 70, 170]
    img[height // 8 : height // 3, width // 10 : width // 3] = [40, 50, 215]
    img[-height // 5 :, :] = np.clip(img[-height // 5 :, :] + rng.normal(0, 25, img[-height // 5 :, :].shape), 0, 255)
    return np.round(img).astype(np.uint8)


def encode(rgb: np.ndarray, kind: str, payload, order: str) -> np.ndarray:
    encoder = WatermarkEncoder()
    encoder.set_watermark(kind, payload)
    if order == "bgr":
        return encoder.encode(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), "dwtDct")[:, :, ::-1]
    return encoder.encode(rgb.copy(), "dwtDct")


def decode_bits(rgb: np.ndarray, length: int, order: str) -> list:
    image = np.ascontiguousarray(rgb[:, :, ::-1] if order == "bgr" else rgb)
    return [int(b) for b in WatermarkDecoder("bits", length).decode(image, "dwtDct")]


def save_png(name: str, rgb: np.ndarray) -> str:
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(os.path.join(OUT, name), compress_level=9)
    return name


def watermark_cases() -> list:
    text = "StableDiffusionV1"  # CompVis' scripts/txt2img.py: set_watermark('bytes', wm.encode('utf-8'))
    specs = [
        # name, width, height, kind, payload, bits, order
        ("sdxl-256x256", 256, 256, "bits", SDXL_BITS, SDXL_BITS, "bgr"),
        ("text-261x253", 261, 253, "bytes", text.encode("utf-8"), None, "bgr"),
        ("sdxl-rgb-262x254", 262, 254, "bits", SDXL_BITS, SDXL_BITS, "rgb"),
    ]
    cases = []
    for seed, (name, w, h, kind, payload, bits, order) in enumerate(specs):
        rgb = source_image(w, h, seed)
        out = np.ascontiguousarray(encode(rgb, kind, payload, order))
        if bits is None:
            bits = [int(b) for b in np.unpackbits(np.frombuffer(payload, dtype=np.uint8))]
        other = "rgb" if order == "bgr" else "bgr"
        # The method is lossy even on its own output (a lowered coefficient can stop being its block's largest,
        # and the uint8 truncation and colour round trip move the others): the library reads most bits back.
        read_back = decode_bits(out, len(bits), order)
        matched = sum(a == b for a, b in zip(read_back, bits))
        assert chance_of_matching(matched, len(bits)) < 1e-3, f"{name}: the library reads back only {matched} of {len(bits)} bits"
        changed = int(np.count_nonzero(out != rgb))
        assert changed > 0
        cases.append({
            "name": name,
            "width": w,
            "height": h,
            "order": order,
            "kind": kind,
            "text": text if kind == "bytes" else None,
            "bits": "".join(map(str, bits)),
            "input": save_png(f"{name}.in.png", rgb),
            "output": save_png(f"{name}.out.png", out),
            "changedSamples": changed,
            "decodedOutput": "".join(map(str, read_back)),
            "decodedUnmarked": "".join(map(str, decode_bits(rgb, len(bits), order))),
            "decodedOtherOrder": "".join(map(str, decode_bits(out, len(bits), other))),
        })
    return cases


def haar_ref() -> dict:
    rng = np.random.default_rng(99)
    plane = rng.integers(0, 256, (12, 16)).astype(np.uint8)
    ca, (ch, cv, cd) = pywt.dwt2(plane, "haar")
    ca = ca + rng.normal(0, 9, ca.shape)  # an edited approximation band, as the embedding leaves it
    rec = pywt.idwt2((ca, (cv, ch, cd)), "haar")  # the library's order: (v1, h1, d1)
    arrays = {"plane": plane, "a": ca, "h": ch, "v": cv, "d": cd, "swappedInverse": rec}
    with open(os.path.join(OUT, "haar.bin"), "wb") as f:
        offsets = {}
        for key, arr in arrays.items():
            offsets[key] = f.tell()
            f.write(np.ascontiguousarray(arr, dtype=np.uint8 if key == "plane" else "<f8").tobytes())
    return {"file": "haar.bin", "width": 16, "height": 12, "offsets": offsets,
            "layout": "plane uint8 12x16, then float64 LE row-major: a h v d (6x8, after a's edit), swappedInverse (12x16)"}


def yuv_hashes() -> dict:
    v = np.arange(1 << 24, dtype=np.uint32)
    # colour index i = (c0 << 16) | (c1 << 8) | c2, one pixel each, in index order
    triples = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    return {
        "layout": "pixel i of a 4096x4096 image holds the triple ((i >> 16) & 255, (i >> 8) & 255, i & 255)",
        "bgr2yuv": hashlib.sha256(cv2.cvtColor(triples, cv2.COLOR_BGR2YUV).tobytes()).hexdigest(),
        "yuv2bgr": hashlib.sha256(cv2.cvtColor(triples, cv2.COLOR_YUV2BGR).tobytes()).hexdigest(),
    }


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    refs = {
        "versions": {"invisible-watermark": "0.2.0", "opencv": cv2.__version__, "pywt": pywt.__version__, "numpy": np.__version__},
        "cases": watermark_cases(),
        "haar": haar_ref(),
        "yuv": yuv_hashes(),
    }
    with open(os.path.join(OUT, "refs.json"), "w") as f:
        json.dump(refs, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
