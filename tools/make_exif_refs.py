"""EXIF references: the parameters in JPEG, WebP and AVIF exactly as AUTOMATIC1111 writes them.

Run: /opt/diffuse-venv/bin/python tools/make_exif_refs.py
Writes test/fixtures/exif/ (deterministic; a few KB).

A1111's modules/images.py (save_image_with_geninfo) saves JPEG and WebP with PIL, then calls
piexif.insert(piexif.dump({"Exif": {UserComment: piexif.helper.UserComment.dump(geninfo, encoding="unicode")}}), file);
AVIF goes through pillow-avif-plugin with exif=<the same block>. This script writes PIL-encoded pictures
without metadata (JPEG with PIL's JFIF APP0, and the same without it; lossy VP8 and lossless VP8L WebP;
AVIF), then for several infotexts records piexif.dump's bytes, the sha256 of what piexif.insert makes of
each JPEG/WebP, and the Exif item payload pillow-avif-plugin writes, plus what piexif reads back.
Pins: piexif 1.1.3, Pillow 11.0.0, pillow-avif-plugin 1.4.3 (A1111's).
"""

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import piexif
import piexif.helper
import pillow_avif  # noqa: F401  (registers AVIF with PIL, as A1111 imports it)
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "exif"

TEXTS = {
    "ascii": "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 32x32",
    "latin1": "caf\u00e9 cr\u00e8me, (d\u00e9tail:1.2)\nSteps: 20, Seed: 1",
    "non_bmp": "a cat \U0001F431 and \u65e5\u672c\nSteps: 2, Seed: 7",
    "lone_surrogate": "broken \udc80 text",
    "empty": "",
}


def picture() -> Image.Image:
    rng = np.random.default_rng(18)
    y, x = np.mgrid[0:24, 0:40]
    rgb = np.stack([x * 6, y * 10, (x + y) * 4], axis=-1) + rng.integers(0, 40, (24, 40, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def without_app0(jpeg: bytes) -> bytes:
    assert jpeg[2:4] == b"\xff\xe0", "PIL's JPEG starts with APP0"
    length = struct.unpack(">H", jpeg[4:6])[0]
    return jpeg[:2] + jpeg[4 + length :]


def avif_exif_payload(avif: bytes) -> bytes:
    """The Exif item's bytes, found through iinf/iloc (version 0 iloc, as libavif writes it)."""
    def boxes(data: bytes, start: int, end: int):
        at = start
        while at + 8 <= end:
            size = struct.unpack(">I", data[at : at + 4])[0]
            yield data[at + 4 : at + 8], at + 8, at + size
            at += size

    meta = next((b, e) for t, b, e in boxes(avif, 0, len(avif)) if t == b"meta")
    children = {t: (b, e) for t, b, e in boxes(avif, meta[0] + 4, meta[1])}
    b, e = children[b"iinf"]
    exif_id = None
    for t, eb, ee in boxes(avif, b + 6, e):
        assert t == b"infe" and avif[eb] == 2
        item_id, _, item_type = struct.unpack(">HH4s", avif[eb + 4 : eb + 12])
        if item_type == b"Exif":
            exif_id = item_id
    b, _ = children[b"iloc"]
    assert avif[b] == 0
    sizes = avif[b + 4]
    assert sizes == 0x44 and avif[b + 5] >> 4 in (0, 4)
    base_size = avif[b + 5] >> 4
    count = struct.unpack(">H", avif[b + 6 : b + 8])[0]
    at = b + 8
    for _ in range(count):
        item_id = struct.unpack(">H", avif[at : at + 2])[0]
        at += 4
        base = struct.unpack(">I", avif[at : at + 4])[0] if base_size else 0
        at += base_size
        extents = struct.unpack(">H", avif[at : at + 2])[0]
        at += 2
        data = b""
        for _ in range(extents):
            offset, length = struct.unpack(">II", avif[at : at + 8])
            at += 8
            data += avif[base + offset : base + offset + length]
        if item_id == exif_id:
            return data
    raise ValueError("no Exif item")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    image = picture()
    bare = {
        "jfif.jpg": encoded(image, "JPEG", quality=80),
        "lossy.webp": encoded(image, "WEBP", quality=80),
        "lossless.webp": encoded(image, "WEBP", lossless=True),
        "bare.avif": encoded(image, "AVIF", quality=80),
    }
    bare["no-app0.jpg"] = without_app0(bare["jfif.jpg"])
    for name, data in bare.items():
        (OUT / name).write_bytes(data)

    cases = []
    for key, text in TEXTS.items():
        exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(text, encoding="unicode")}})
        inserted = {}
        for name in ("jfif.jpg", "no-app0.jpg", "lossy.webp", "lossless.webp"):
            out = io.BytesIO()
            piexif.insert(exif, bare[name], out)
            data = out.getvalue()
            read = piexif.helper.UserComment.load(piexif.load(data)["Exif"][piexif.ExifIFD.UserComment])
            inserted[name] = {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data), "readBack": read}
        avif = encoded(image, "AVIF", quality=80, exif=exif)
        with Image.open(io.BytesIO(avif)) as reopened:
            avif_read = piexif.helper.UserComment.load(piexif.load(reopened.info["exif"])["Exif"][piexif.ExifIFD.UserComment])
        (OUT / f"pil-{key}.avif").write_bytes(avif)
        cases.append({
            "name": key,
            "text": text,
            "exifHex": exif.hex(),
            "inserted": inserted,
            "avif": {"file": f"pil-{key}.avif", "payloadHex": avif_exif_payload(avif).hex(), "readBack": avif_read},
        })
    refs = {
        "conventions": "exifHex: piexif.dump of A1111's dict; inserted: piexif.insert into each bare file (sha256, length, what piexif reads back); avif: the Exif item payload pillow-avif-plugin writes and PIL+piexif's reading of it. Lone surrogates are written as '?' (Python's errors='replace').",
        "versions": {"piexif": piexif.VERSION, "Pillow": Image.__version__, "pillow-avif-plugin": pillow_avif.__version__},
        "bare": sorted(bare),
        "cases": cases,
    }
    (OUT / "refs.json").write_text(json.dumps(refs, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
