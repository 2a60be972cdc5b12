"""ControlNet with an "only masked" inpaint area and with outpaint: test/fixtures/controlnet-area/.

The models are tools/make_controlnet_file_fixture.py's `sd1-inpaint` checkpoint (9-channel UNet) and its `sd1x2` ControlNet
in diffusers 0.32's StableDiffusionControlNetInpaintPipeline; the pictures are test/fixtures/pipeline's 32x32 init picture and
mask and test/fixtures/controlnet-pipeline's control pictures (nothing new but the final latents).

"Only masked", as A1111 1.10 + sd-webui-controlnet 1.1.455 run it (written here from their code, not imported):
- the crop region: the mask's bounding box grown by the padding (masking.get_crop_region_v2) and to the painted aspect
  (masking.expand_crop_region);
- init picture and mask cut to it and brought to the painted size by images.resize_image mode 2 ("resize and fill");
- each unit's picture as the extension's try_crop_image_with_a1111_mask does it: every channel as an L picture fitted to
  the whole picture's size by the unit's resize mode, cut to the same region, brought to the painted size by mode 2;
- StableDiffusionControlNetInpaintPipeline on the crop. The latents compared are that pass's (the paste-back is pixels).
Outpaint, as diffuse's src/pipeline/tasks/outpaint.ts defines it with units (one pass here): the canvas grown with its
edge pixels repeated ('stretch'), the repaint mask 1 over the margin and `overlap` pixels into the old picture, each unit's
picture fitted to the whole canvas by its resize mode, then the same pipeline on the canvas.

Usage: /opt/diffuse-venv/bin/python tools/make_controlnet_area_refs.py   (deterministic; a rerun writes the same bytes)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_controlnet_fixture as cn_fixture  # noqa: E402
import make_controlnet_file_fixture as file_fixture  # noqa: E402
from fixtures_io import RefWriter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "test" / "fixtures" / "controlnet-area"
INPUTS = REPO / "test" / "fixtures" / "pipeline"
PICTURES = REPO / "test" / "fixtures" / "controlnet-pipeline"
INIT = "input.init-image.32x32.png"
MASK = "input.mask.32x32.png"
# A1111's resize_mode numbers (modules/images.py resize_image) by diffuse's names.
MODES = {"just-resize": 0, "crop-and-resize": 1, "resize-and-fill": 2}


def resize_image(mode: int, im: Image.Image, width: int, height: int) -> Image.Image:
    """A1111 1.10 images.resize_image without an upscaler (upscaler_for_img2img None): Lanczos; bars of mode 2 filled by
    stretching the edge rows/columns with resize()'s default filter."""
    if mode == 0:
        return im.resize((width, height), resample=Image.LANCZOS)
    ratio, src_ratio = width / height, im.width / im.height
    if mode == 1:
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
    else:
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = im.resize((src_w, src_h), resample=Image.LANCZOS)
    res = Image.new(im.mode, (width, height))
    res.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if mode == 2 and ratio < src_ratio:
        fill = height // 2 - src_h // 2
        if fill > 0:
            res.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
            res.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)), box=(0, fill + src_h))
    elif mode == 2 and ratio > src_ratio:
        fill = width // 2 - src_w // 2
        if fill > 0:
            res.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
            res.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)), box=(fill + src_w, 0))
    return res


def crop_region(mask: Image.Image, pad: int, width: int, height: int) -> tuple[int, int, int, int]:
    """masking.get_crop_region_v2 then masking.expand_crop_region (A1111 1.10) for painting at width x height."""
    x1, y1, x2, y2 = mask.getbbox()
    x1, y1, x2, y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, mask.width), min(y2 + pad, mask.height)
    if (x2 - x1) / (y2 - y1) > width / height:
        diff = int((x2 - x1) / (width / height) - (y2 - y1))
        y1 -= diff // 2
        y2 += diff - diff // 2
        if y2 >= mask.height:
            y1, y2 = y1 - (y2 - mask.height), mask.height
        if y1 < 0:
            y1, y2 = 0, y2 - y1
        y2 = min(y2, mask.height)
    else:
        diff = int((y2 - y1) * (width / height) - (x2 - x1))
        x1 -= diff // 2
        x2 += diff - diff // 2
        if x2 >= mask.width:
            x1, x2 = x1 - (x2 - mask.width), mask.width
        if x1 < 0:
            x1, x2 = 0, x2 - x1
        x2 = min(x2, mask.width)
    return x1, y1, x2, y2


def unit_in_region(picture: Image.Image, mode: str, whole: tuple[int, int], region, width: int, height: int) -> Image.Image:
    """sd-webui-controlnet's try_crop_image_with_a1111_mask on one RGB picture, channel by channel as it does."""
    bands = [resize_image(MODES[mode], band, *whole).crop(region) for band in picture.split()]
    return Image.merge("RGB", [resize_image(2, band, width, height) for band in bands])


def outpaint_canvas(init: Image.Image, right: int, overlap: int) -> tuple[Image.Image, Image.Image]:
    """The canvas grown by `right` with its edge column repeated, and the repaint mask (margin + overlap)."""
    pixels = np.pad(np.asarray(init), ((0, 0), (0, right), (0, 0)), mode="edge")
    mask = np.zeros(pixels.shape[:2], np.uint8)
    mask[:, init.width - overlap:] = 255
    return Image.fromarray(pixels), Image.fromarray(mask, "L")


def kept(record: dict) -> dict:
    """The record without what the test does not read (the fixtures' budget is nearly spent)."""
    return {k: v for k, v in record.items() if k not in ("controlnet_keep", "unet_timesteps")}


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net, _ = file_fixture.sd1x2_controlnet()
    pipe, _, data = file_fixture.inpaint_pipeline(net)
    config = pipe.scheduler.config
    writer = RefWriter(OUT)
    init = Image.open(INPUTS / INIT).convert("RGB")
    mask = Image.open(INPUTS / MASK).convert("L")
    pictures = {key: Image.open(PICTURES / f"control.{key}.png").convert("RGB") for key in cn_fixture.IMAGES}

    records = []
    # (case, padding, units' resize modes): "Only masked", painted at 32x32, mask blur 0 (the region is the mask's own box)
    masked = [
        (cn_fixture.ControlCase("masked-euler-pad2", "EulerDiscreteScheduler", 6, 940, (cn_fixture.Unit("c", 1.0),), strength=0.8), 2, ["just-resize"]),
        (cn_fixture.ControlCase("masked-ddim-pad4-crop-and-resize", "DDIMScheduler", 6, 941, (cn_fixture.Unit("wide", 0.8, 0.0, 0.8),),
                                strength=1.0, negative_prompt=cn_fixture.NEGATIVE), 4, ["crop-and-resize"]),
        # 40x32: the region (A1111's int() of the missing width, clamped at the picture's edge) is 27x22, not the painted
        # aspect, so "resize and fill" pads a column on each side.
        (cn_fixture.ControlCase("masked-euler-40x32-pad2", "EulerDiscreteScheduler", 5, 944, (cn_fixture.Unit("b", 0.9),), size=(40, 32), strength=1.0),
         2, ["resize-and-fill"]),
    ]
    for case, padding, modes in masked:
        width, height = case.size
        region = crop_region(mask, padding, width, height)
        images = {u.image: unit_in_region(pictures[u.image], m, init.size, region, width, height) for u, m in zip(case.units, modes)}
        crop_init = {case.size: (INIT, resize_image(2, init.crop(region), width, height))}
        crop_mask = {case.size: (MASK, resize_image(2, mask.crop(region), width, height))}
        record = cn_fixture.run_case({"img2img": pipe}, config, case, images, crop_init, writer, crop_mask)
        record["units"] = [{**u, "resize_mode": m} for u, m in zip(record["units"], modes)]
        records.append({**kept(record), "area": "masked", "padding": padding, "crop_region": list(region)})

    # Outpaint: one pass to the right, the default overlap; the units fitted to the whole 48x32 canvas.
    outpaint = [
        (cn_fixture.ControlCase("outpaint-right16-euler", "EulerDiscreteScheduler", 6, 942, (cn_fixture.Unit("c", 1.0),), size=(48, 32), strength=1.0),
         ["resize-and-fill"]),
        (cn_fixture.ControlCase("outpaint-right16-dpmpp-2m", "DPMSolverMultistepScheduler", 6, 943, (cn_fixture.Unit("wide", 1.2, 0.0, 0.8),), size=(48, 32),
                                strength=0.9, guidance_scale=5.0), ["just-resize"]),
    ]
    right, overlap = 16, 16
    canvas, canvas_mask = outpaint_canvas(init, right, overlap)
    for case, modes in outpaint:
        width, height = case.size
        images = {u.image: resize_image(MODES[m], pictures[u.image], width, height) for u, m in zip(case.units, modes)}
        record = cn_fixture.run_case({"img2img": pipe}, config, case, images, {case.size: (INIT, canvas)}, writer, {case.size: ("outpaint", canvas_mask)})
        record["units"] = [{**u, "resize_mode": m} for u, m in zip(record["units"], modes)]
        del record["mask_image"]
        records.append({**kept(record), "outpaint": {"extend": {"left": 0, "right": right, "top": 0, "bottom": 0}, "fill": "stretch", "overlap": overlap}})

    writer.manifest("cases.json", {
        "generator": "tools/make_controlnet_area_refs.py",
        "model": "controlnet-files' sd1-inpaint checkpoint (sha256 %s) + sd1x2 ControlNet" % file_fixture.sha256(data),
        "conventions": {
            "pictures": f"init_image and mask_image are test/fixtures/pipeline's; units' images test/fixtures/controlnet-pipeline's",
            "final_latents": "the painted pass's (the crop's for area masked), float32 .bin",
        },
        "cases": records,
    })
    print(f"wrote {OUT} ({writer.finish(0.05):.3f} MB)")


if __name__ == "__main__":
    main()
