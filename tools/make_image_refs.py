"""Reference fixtures for src/image/: decoding, resizing, tensor<->uint8 conversion and PNG text chunks.

Run: /opt/diffuse-venv/bin/python tools/make_image_refs.py
Writes test/fixtures/image/ (deterministic; a few hundred KB).

What each reference is:
  * postprocess: diffusers VaeImageProcessor.postprocess(output_type="pil") itself, and the A1111/ComfyUI
    conversion (torch.clamp((x + 1.0) / 2.0, 0, 1), 255. * numpy, astype(uint8) truncation) written out here.
  * preprocess: diffusers VaeImageProcessor.preprocess itself (uint8 -> float32 in [-1, 1]).
  * resize: diffusers VaeImageProcessor.resize with resize_mode default/crop/fill, which are A1111's
    resize_image modes 0/1/2 (same PIL LANCZOS calls), plus raw PIL Image.resize with a box.
  * decode: what PIL gives after ImageOps.exif_transpose + convert("RGB") (diffusers load_image), and A1111's
    flatten (paste on a background with the image as mask, then convert("RGB")).
  * png text: PNGs written by PIL PngInfo (tEXt / zTXt / iTXt), as A1111 and ComfyUI write them.
"""

import io
import json
import os
import zlib

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin
from diffusers.image_processor import VaeImageProcessor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "image")
os.makedirs(OUT, exist_ok=True)
manifest: dict = {}


def write_bin(name: str, arr: np.ndarray) -> str:
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(np.ascontiguousarray(arr).tobytes())
    return name


def source_image(w: int = 48, h: int = 32) -> np.ndarray:
    """Smooth gradients, hard edges and noise: exercises every tap of a Lanczos kernel."""
    rng = np.random.default_rng(1234)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 127.5 + 127.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    img = np.stack([r, g, b], axis=-1)
    img[(x // 6 + y // 6) % 2 == 0] *= 0.6  # checkerboard edges
    img[8:12, :, :] = [255, 0, 0]  # a saturated stripe: ringing clips at 0 and 255
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# --- tensor -> uint8 (VAE output) ------------------------------------------------------------------------
def postprocess_refs() -> None:
    vals = []
    for k in range(256):
        for centre in ((k + 0.5) / 255.0, k / 255.0):  # rounding boundary (diffusers), truncation boundary (A1111)
            x = np.float32(2.0 * centre - 1.0)
            vals += [np.nextafter(x, np.float32(-2)), x, np.nextafter(x, np.float32(2))]
    vals += [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0, 1.0000001, -1.0000001, 1e-30, -1e-30, 3.5, -7.25]
    rng = np.random.default_rng(7)
    n = 3 * 32 * 32
    rest = rng.uniform(-1.1, 1.1, n - len(vals))
    x = np.array(vals + list(rest), dtype=np.float32).reshape(1, 3, 32, 32)
    t = torch.from_numpy(x.copy())

    with np.errstate(invalid="ignore"):  # the NaN input is deliberate: its uint8 cast gives 0
        pil = VaeImageProcessor().postprocess(t.clone(), output_type="pil")[0]
        diffusers_u8 = np.array(pil)  # HWC

        a1111 = torch.clamp((t + 1.0) / 2.0, min=0.0, max=1.0)
        a1111_u8 = (255.0 * np.moveaxis(a1111[0].numpy(), 0, 2)).astype(np.uint8)
        comfy = torch.clamp((t + 1.0) / 2.0, min=0.0, max=1.0).movedim(1, -1)
        comfy_u8 = np.clip(255.0 * comfy[0].numpy(), 0, 255).astype(np.uint8)
    assert np.array_equal(a1111_u8, comfy_u8), "A1111 and ComfyUI conversions are expected to agree"

    manifest["postprocess"] = {
        "input": write_bin("postprocess.in.f32.bin", x),
        "shape": list(x.shape),
        "diffusers": write_bin("postprocess.diffusers.u8.bin", diffusers_u8),
        "a1111": write_bin("postprocess.a1111.u8.bin", a1111_u8),
        "layout": "input NCHW float32 LE; outputs HWC uint8",
    }


# --- uint8 -> tensor (img2img input) -------------------------------------------------------------------
def preprocess_refs() -> None:
    i = np.arange(256)
    px = np.stack([i, 255 - i, (i * 7) % 256], axis=-1).astype(np.uint8).reshape(16, 16, 3)
    t = VaeImageProcessor().preprocess(Image.fromarray(px, "RGB"))
    assert t.dtype == torch.float32
    manifest["preprocess"] = {
        "input": write_bin("preprocess.in.u8.bin", px),
        "inputShape": [16, 16, 3],
        "output": write_bin("preprocess.out.f32.bin", t.numpy()),
        "outputShape": list(t.shape),
    }


# --- resize -----------------------------------------------------------------------------------------------
def resize_refs(src: np.ndarray) -> None:
    im = Image.fromarray(src, "RGB")
    proc = VaeImageProcessor()
    cases = []
    sizes = {
        "default": [(64, 64), (20, 40), (17, 13), (48, 32), (96, 64), (13, 31), (200, 7)],
        "crop": [(32, 32), (64, 24), (50, 50), (15, 7), (48, 32)],
        "fill": [(32, 32), (64, 24), (33, 17), (40, 40), (24, 64), (49, 32)],
    }
    for mode, lst in sizes.items():
        for w, h in lst:
            out = np.array(proc.resize(im, h, w, resize_mode=mode).convert("RGB"))
            assert out.shape == (h, w, 3)
            name = write_bin(f"resize.{mode}.{w}x{h}.u8.bin", out)
            cases.append({"mode": mode, "width": w, "height": h, "channels": 3, "output": name})
    # a single-channel mask goes through the same calls; PIL pastes L onto the RGB canvas as grey
    gray = Image.fromarray(src[:, :, 1], "L")
    for mode, (w, h) in [("default", (20, 40)), ("fill", (32, 32)), ("crop", (64, 24))]:
        out = np.array(proc.resize(gray, h, w, resize_mode=mode).convert("L"))
        name = write_bin(f"resize.L.{mode}.{w}x{h}.u8.bin", out)
        cases.append({"mode": mode, "width": w, "height": h, "channels": 1, "output": name})
    # raw PIL Image.resize with a box, including the zero-height boxes A1111's fill mode uses (with PIL's
    # default filter, BICUBIC, as A1111 and diffusers call it there)
    boxes = [
        ((32, 6), (0, 0, 48, 0)),
        ((48, 6), (0, 32, 48, 32)),
        ((5, 32), (48, 0, 48, 32)),
        ((10, 20), (2.5, 3.25, 30.75, 19.5)),
        ((7, 9), (0.1, 0.3, 47.9, 31.7)),
        ((64, 40), (0, 0, 48, 32)),
        ((20, 13), (0, 0, 48, 32)),
    ]
    filters = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC}
    box_cases = []
    for filter_name, resample in filters.items():
        for (w, h), box in boxes:
            out = np.array(im.resize((w, h), resample=resample, box=box))
            name = write_bin(f"resize.box.{filter_name}.{len(box_cases)}.u8.bin", out)
            box_cases.append({"filter": filter_name, "width": w, "height": h, "box": list(box), "output": name})
    manifest["resize"] = {"source": "src.png", "cases": cases, "boxCases": box_cases}


# --- decoding ---------------------------------------------------------------------------------------------
def decoded_rgb(path: str) -> np.ndarray:
    """diffusers.utils.load_image: exif_transpose, then convert("RGB")."""
    with Image.open(path) as img:
        return np.array(ImageOps.exif_transpose(img).convert("RGB"))


def a1111_flatten(path: str, bgcolor: str) -> np.ndarray:
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        assert img.mode == "RGBA"
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        return np.array(background.convert("RGB"))


def swapped_primaries_icc() -> bytes:
    """A minimal ICC v2 RGB matrix/TRC profile whose red and green primaries are swapped: any decoder that
    colour-manages would change the pixels drastically; PIL (so A1111 and diffusers) ignores it."""
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0233) + b"\0\0"  # gamma 2.2
    desc_text = b"swapped primaries\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * (4 + 4 + 2 + 1 + 67)
    tags = [
        (b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"cprt", b"text" + b"\0" * 4 + b"none\0"),
        (b"rXYZ", xyz(0.3851, 0.7169, 0.0971)), (b"gXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def decode_refs(src: np.ndarray) -> None:
    h, w, _ = src.shape
    files = []

    def save(name: str, img: Image.Image, **kw) -> str:
        img.save(os.path.join(OUT, name), **kw)
        return name

    save("src.png", Image.fromarray(src, "RGB"))
    files.append("src.png")
    save("src-gray.png", Image.fromarray(src[:, :, 0], "L"))
    files.append("src-gray.png")
    save("src-palette.png", Image.fromarray(src, "RGB").quantize(16))
    files.append("src-palette.png")
    save("src-icc.png", Image.fromarray(src, "RGB"), icc_profile=swapped_primaries_icc())
    files.append("src-icc.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    save("src-orient6.jpg", Image.fromarray(src, "RGB"), quality=90, exif=exif.tobytes())
    files.append("src-orient6.jpg")
    save("src.jpg", Image.fromarray(src, "RGB"), quality=85, subsampling=2)
    files.append("src.jpg")
    save("src-lossless.webp", Image.fromarray(src, "RGB"), lossless=True)
    files.append("src-lossless.webp")
    save("src-lossy.webp", Image.fromarray(src, "RGB"), quality=80)
    files.append("src-lossy.webp")

    # 16-bit RGB: PIL has no writer for it, so frame the PNG by hand. PIL reads it as the high bytes.
    wide = src.astype(np.uint16) * 257 + np.arange(src.size, dtype=np.uint16).reshape(src.shape) % 251
    rows = b"".join(b"\0" + wide[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    with open(os.path.join(OUT, "src-rgb16.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 2, 0, 0, 0]))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    files.append("src-rgb16.png")

    y, x = np.mgrid[0:h, 0:w]
    alpha = np.clip((x * 255) // (w - 1) + (y % 3) * 40, 0, 255).astype(np.uint8)
    alpha[:, :3] = 0
    alpha[:, -3:] = 255
    rgba = np.dstack([src, alpha])
    save("src-rgba.png", Image.fromarray(rgba, "RGBA"))
    files.append("src-rgba.png")

    decoded = []
    for name in files:
        ref = decoded_rgb(os.path.join(OUT, name))
        decoded.append({"file": name, "width": ref.shape[1], "height": ref.shape[0],
                        "rgb": write_bin(name.replace(".", "_") + ".rgb.bin", ref)})
    flatten = []
    for bg in ["#ffffff", "#102030"]:
        ref = a1111_flatten(os.path.join(OUT, "src-rgba.png"), bg)
        flatten.append({"file": "src-rgba.png", "background": bg,
                        "rgb": write_bin(f"src-rgba_flatten_{bg[1:]}.rgb.bin", ref)})
    manifest["decode"] = {"files": decoded, "flatten": flatten,
                          "alpha": write_bin("src-rgba_alpha.bin", alpha)}


# --- PNG text chunks ---------------------------------------------------------------------------------------
def png_chunks(data: bytes) -> list:
    pos, out = 8, []
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        out.append((data[pos + 4:pos + 8], data[pos:pos + 12 + length]))
        pos += 12 + length
    return out


def text_refs() -> None:
    tiny = Image.new("RGB", (4, 3), (10, 20, 30))
    info = PngImagePlugin.PngInfo()
    entries = [
        ("parameters", "café\nNegative prompt: ugly\nSteps: 20, Seed: 1", "add_text"),
        ("uni", "日本語 ✓ text", "add_text"),
        ("zt", "compressed Latin-1 ü", "add_text zip"),
        ("itz", "compressed ü 日本", "add_itxt zip"),
        ("lang", "tagged", "add_itxt lang"),
    ]
    info.add_text("parameters", entries[0][1])
    info.add_text("uni", entries[1][1])
    info.add_text("zt", entries[2][1], zip=True)
    info.add_itxt("itz", entries[3][1], zip=True)
    info.add_itxt("lang", entries[4][1], lang="en", tkey="Sprache")
    tiny.save(os.path.join(OUT, "text-pil.png"), pnginfo=info)
    with Image.open(os.path.join(OUT, "text-pil.png")) as im:
        expected = dict(im.text)

    # The exact chunk bytes PIL writes for add_text, which our writer must reproduce.
    chunk_cases = []
    for key, value in [("parameters", "a photo, café\nSteps: 20"), ("parameters", "猫 cat, Seed: 5"),
                       ("Software", "")]:
        pi = PngImagePlugin.PngInfo()
        pi.add_text(key, value)
        buf = io.BytesIO()
        tiny.save(buf, format="PNG", pnginfo=pi)
        text_chunks = [raw for cid, raw in png_chunks(buf.getvalue()) if cid in (b"tEXt", b"iTXt", b"zTXt")]
        assert len(text_chunks) == 1
        chunk_cases.append({"keyword": key, "text": value, "chunkHex": text_chunks[0].hex()})

    # ComfyUI SaveImage: "prompt" (API graph) and "workflow" (UI graph) as json.dumps text.
    comfy = PngImagePlugin.PngInfo()
    comfy.add_text("prompt", json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20}}}))
    comfy.add_text("workflow", json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}]}))
    tiny.save(os.path.join(OUT, "comfyui.png"), pnginfo=comfy)

    a1 = PngImagePlugin.PngInfo()
    a1.add_text("parameters", "a cat, sitting\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, "
                              "Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512, "
                              "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")
    tiny.save(os.path.join(OUT, "a1111.png"), pnginfo=a1)

    manifest["text"] = {"file": "text-pil.png", "expected": expected, "writers": [e[2] for e in entries],
                        "chunks": chunk_cases, "zlibVersion": zlib.ZLIB_VERSION}


src = source_image()
postprocess_refs()
preprocess_refs()
decode_refs(src)
resize_refs(src)
text_refs()
with open(os.path.join(OUT, "refs.json"), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote", OUT)
