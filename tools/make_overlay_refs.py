"""References for inpaint's finish (src/pipeline/tasks/inpaint.ts through src/image/composite.ts applyOverlay):
test/fixtures/overlay/.

A1111 1.10, written here from its code (modules/processing.py, not imported):
- the mask blur of StableDiffusionProcessingImg2Img.init: k = 2 * int(2.5 * blur + 0.5) + 1, cv2.GaussianBlur of the
  uint8 L mask with ksize (k, 1) and sigma blur, then of that with ksize (1, k);
- "Whole picture": mask_for_overlay = clip(mask * 2, 0, 255) as uint8 (after resize_image(resize_mode) to the painted
  size, which is the picture's here); "Only masked": mask_for_overlay = the blurred mask, the crop region
  masking.get_crop_region_v2 + expand_crop_region (make_controlnet_area_refs.crop_region), paste_to (x, y, w, h);
- the overlay: Image.new('RGBa'), paste(picture.convert('RGBA').convert('RGBa'), mask=ImageOps.invert(mask_for_overlay)),
  convert('RGBA');
- apply_overlay / uncrop: with paste_to the painted picture through resize_image(1, …, w, h) ("crop and resize",
  make_controlnet_area_refs.resize_image) pasted at (x, y) on Image.new('RGBA', the picture's size); convert('RGBA'),
  alpha_composite(overlay), convert('RGB').
Second reference for the composite: diffusers 0.32's VaeImageProcessor.apply_overlay(mask_for_overlay, picture, painted,
crop_coords) (its "crop" resize, on an opaque black canvas): the script fails unless both give the same bytes. Each
masked case records how far (max level) the crop stretched to the region ("just resize", diffuse before) lands from the
reference; the script fails unless a case at each blur is told apart by it.

Pictures: the original (40x32) and the painted pictures are tools/make_cv_resize_u8_refs.seeded_picture's, which the
test makes from the same seeds; the masks (grey edges) are drawn here and stored as PNGs, as are the expected pictures.

Usage: /opt/diffuse-venv/bin/python tools/make_overlay_refs.py   (deterministic; a rerun writes the same bytes)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from diffusers.image_processor import VaeImageProcessor
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_controlnet_area_refs import crop_region, resize_image  # noqa: E402
from make_cv_resize_u8_refs import seeded_picture  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "overlay"
WIDTH, HEIGHT, ORIGINAL_SEED = 40, 32, 11


def draw_mask(name: str) -> np.ndarray:
    """A shape at 255 with a ramp of greys around it (64 levels a pixel of distance beyond the shape)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    if name == "dot":  # a small ellipse near the top left
        d = np.sqrt(((x - 12) / 3) ** 2 + ((y - 11) / 2) ** 2) * 3 - 3
    elif name == "blob":  # a larger ellipse in the middle
        d = np.sqrt(((x - 20) / 5) ** 2 + ((y - 16) / 4) ** 2) * 4 - 4
    else:  # "band": a horizontal bar
        d = np.maximum(np.maximum(np.abs(x - 20) - 10, 0), np.maximum(np.abs(y - 16) - 3, 0))
    return np.clip(np.rint(255 - d * 64), 0, 255).astype(np.uint8)


# name, mask, blur, area, padding, painted size, painted seed. Regions of the "masked" ones: blob/32x48 23x32 and dot/b4/p2
# 29x32 (grown to the painted aspect until the picture's height stops them, so crop-and-resize is not a stretch), dot/b4/p4
# 31x31 (the painted aspect); each leaves part of the picture outside.
CASES = [
    ("whole-blob-b0", "blob", 0, "whole", 0, (WIDTH, HEIGHT), 21),
    ("whole-blob-b4", "blob", 4, "whole", 0, (WIDTH, HEIGHT), 21),
    ("whole-band-b4", "band", 4, "whole", 0, (WIDTH, HEIGHT), 22),
    ("whole-dot-b3", "dot", 3, "whole", 0, (WIDTH, HEIGHT), 26),  # odd blur: int(2.5 * 3 + 0.5) = 8, int(7.5) = 7
    ("masked-blob-b0-p2", "blob", 0, "masked", 2, (32, 48), 23),
    ("masked-dot-b4-p4", "dot", 4, "masked", 4, (32, 32), 24),
    ("masked-dot-b4-p2", "dot", 4, "masked", 2, (32, 48), 25),
]


def blurred(mask: np.ndarray, blur: float) -> np.ndarray:
    if blur <= 0:
        return mask
    k = 2 * int(2.5 * blur + 0.5) + 1
    return cv2.GaussianBlur(cv2.GaussianBlur(mask, (k, 1), blur), (1, k), blur)


def a1111_finish(original: Image.Image, painted: Image.Image, overlay_mask: np.ndarray, paste_to) -> Image.Image:
    kept = Image.new("RGBa", original.size)
    kept.paste(original.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(Image.fromarray(overlay_mask).convert("L")))
    overlay = kept.convert("RGBA")
    if paste_to is not None:
        x, y, w, h = paste_to
        canvas = Image.new("RGBA", original.size)
        canvas.paste(resize_image(1, painted, w, h), (x, y))
        painted = canvas
    image = painted.convert("RGBA")
    image.alpha_composite(overlay)
    return image.convert("RGB")


def just_resize_finish(original: Image.Image, painted: Image.Image, overlay_mask: np.ndarray, paste_to) -> Image.Image:
    """diffuse before: the crop stretched to the region, on the original picture."""
    x, y, w, h = paste_to
    canvas = original.copy()
    canvas.paste(painted.resize((w, h), resample=Image.LANCZOS), (x, y))
    return a1111_finish(original, canvas, overlay_mask, None)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    original = Image.fromarray(seeded_picture(WIDTH, HEIGHT, ORIGINAL_SEED, "photo"))
    masks = {name: draw_mask(name) for name in ("dot", "blob", "band")}
    for name, mask in masks.items():
        Image.fromarray(mask).save(OUT / f"mask.{name}.png", optimize=True)
    processor = VaeImageProcessor()
    records = []
    for name, mask_name, blur, area, padding, (pw, ph), seed in CASES:
        painted = Image.fromarray(seeded_picture(pw, ph, seed, "photo"))
        mask = blurred(masks[mask_name], blur)
        record = {"name": name, "mask": f"mask.{mask_name}.png", "blur": blur, "area": area, "painted": {"width": pw, "height": ph, "seed": seed}}
        if area == "whole":
            overlay_mask = np.clip(mask.astype(np.float32) * 2, 0, 255).astype(np.uint8)
            paste_to = region = None
        else:
            overlay_mask = mask
            region = crop_region(Image.fromarray(mask), padding, pw, ph)
            paste_to = (region[0], region[1], region[2] - region[0], region[3] - region[1])
            record |= {"padding": padding, "region": {"x0": region[0], "y0": region[1], "x1": region[2], "y1": region[3]}}
        expected = a1111_finish(original, painted, overlay_mask, paste_to)
        second = processor.apply_overlay(Image.fromarray(overlay_mask), original, painted, region)
        if not np.array_equal(np.asarray(expected), np.asarray(second)):
            raise SystemExit(f"{name}: A1111's apply_overlay and diffusers' disagree")
        if area == "masked":
            stretched = np.asarray(just_resize_finish(original, painted, overlay_mask, paste_to)).astype(int)
            record["justResizeMaxOff"] = int(np.abs(stretched - np.asarray(expected)).max())
        expected.save(OUT / f"{name}.png", optimize=True)
        records.append(record | {"expected": f"{name}.png"})
    for blur in (0, 4):
        if not any(r.get("justResizeMaxOff", 0) > 0 for r in records if r["blur"] == blur):
            raise SystemExit(f"no masked case at blur {blur} tells crop-and-resize from a stretch")
    doc = {"original": {"width": WIDTH, "height": HEIGHT, "seed": ORIGINAL_SEED}, "pictures": "seeded_picture(width, height, seed, 'photo')", "cases": records}
    (OUT / "cases.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
