"""Build test/fixtures/upscale: tiny Real-ESRGAN-family upscalers and what torch and A1111's tiling make of them.

Usage: /opt/diffuse-venv/bin/python tools/make_upscale_fixture.py      (spandrel pinned in tools/requirements.txt)

Models (random weights, fixed seeds, from spandrel's reference architecture code; exported with torch.onnx, opset 17,
height and width dynamic, one float32 input NCHW in [0, 1], one output):
  rrdb-x4.onnx     RRDBNet as RealESRGAN_x4plus (upconv x2 twice), num_feat 8, num_block 1, growth channels 4
  rrdb-x2.onnx     RRDBNet as RealESRGAN_x2plus: pixel_unshuffle(2) on the input (12 channels in), then the x4 body;
                   exported as basicsr exports it, without spandrel's reflect pad, so the graph takes even sizes only
  compact-x4.onnx  SRVGGNetCompact as realesr-general-x4v3 / animevideov3: num_feat 8, num_conv 2, PReLU, pixel shuffle
spandrel's RRDBNet fixes the growth channels at 32 (Real-ESRGAN's num_grow_ch); its RRDB block takes gc, and 4
keeps each graph under 70 KB: the block is spandrel's, only narrower.

References (cases.json lists them):
  float/<model>-<image>.bin   torch's float32 output (NCHW, unclamped) of the whole picture, untiled; rrdb-x2 also on
                              the odd-sized picture: spandrel's forward, reflect-pad to even, run, crop
  a1111/<model>-<order>.png   A1111's upscale_with_model (modules/upscaler_utils.py) reproduced here: images.split_grid
                              of the picture in tiles of TILE with OVERLAP, each tile through the torch model
                              (clamp to [0, 1], x255, truncated to uint8 as upscale_without_tiling), then
                              images.combine_grid at the model's scale; <order> rgb feeds the model RGB (Real-ESRGAN's
                              and ComfyUI's order), bgr flips the channels first and back after, as A1111 does (rrdb-x4 only)
  grid/*.png + grid.json      combine_grid of synthetic tiles (tile k = its crop of the picture plus 41 k, mod 256):
                              tile positions and the feathered blend of SD upscale, without a model
Deterministic: a rerun rewrites byte-identical files.

With --bench it writes instead the full-size RealESRGAN_x4plus architecture (RRDBNet, 64 features, 23 blocks,
growth 32; random weights, 67 MB) to $DIFFUSE_BENCH_CACHE/upscale/rrdb-x4plus-random.onnx (default
~/.cache/diffuse-bench) for bench/upscale.ts.
"""
from __future__ import annotations

import json
import math
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from spandrel.architectures.Compact.__arch.SRVGG import SRVGGNetCompact
from spandrel.architectures.ESRGAN.__arch import RRDB as rrdb_module

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = REPO_ROOT / "test" / "fixtures" / "upscale"
MAX_MB = 0.5
TILE, OVERLAP = 24, 8
GROWTH = 4

# ---- A1111's modules/images.py grid, as written there -------------------------------------------------------------

Grid = namedtuple("Grid", ["tiles", "tile_w", "tile_h", "image_w", "image_h", "overlap"])


def split_grid(image, tile_w=512, tile_h=512, overlap=64):
    w, h = image.width, image.height
    non_overlap_width = tile_w - overlap
    non_overlap_height = tile_h - overlap
    cols = math.ceil((w - overlap) / non_overlap_width)
    rows = math.ceil((h - overlap) / non_overlap_height)
    dx = (w - tile_w) / (cols - 1) if cols > 1 else 0
    dy = (h - tile_h) / (rows - 1) if rows > 1 else 0
    grid = Grid([], tile_w, tile_h, w, h, overlap)
    for row in range(rows):
        row_images = []
        y = int(row * dy)
        if y + tile_h >= h:
            y = h - tile_h
        for col in range(cols):
            x = int(col * dx)
            if x + tile_w >= w:
                x = w - tile_w
            row_images.append([x, tile_w, image.crop((x, y, x + tile_w, y + tile_h))])
        grid.tiles.append([y, tile_h, row_images])
    return grid


def combine_grid(grid):
    def make_mask_image(r):
        r = r * 255 / grid.overlap
        return Image.fromarray(r.astype(np.uint8), "L")

    mask_w = make_mask_image(np.arange(grid.overlap, dtype=np.float32).reshape((1, grid.overlap)).repeat(grid.tile_h, axis=0))
    mask_h = make_mask_image(np.arange(grid.overlap, dtype=np.float32).reshape((grid.overlap, 1)).repeat(grid.image_w, axis=1))
    combined_image = Image.new("RGB", (grid.image_w, grid.image_h))
    for y, h, row in grid.tiles:
        combined_row = Image.new("RGB", (grid.image_w, h))
        for x, w, tile in row:
            if x == 0:
                combined_row.paste(tile, (0, 0))
                continue
            combined_row.paste(tile.crop((0, 0, grid.overlap, h)), (x, 0), mask=mask_w)
            combined_row.paste(tile.crop((grid.overlap, 0, w, h)), (x + grid.overlap, 0))
        if y == 0:
            combined_image.paste(combined_row, (0, 0))
            continue
        combined_image.paste(combined_row.crop((0, 0, combined_row.width, grid.overlap)), (0, y), mask=mask_h)
        combined_image.paste(combined_row.crop((0, grid.overlap, combined_row.width, h)), (0, y + grid.overlap))
    return combined_image


# ---- models -----------------------------------------------------------------------------------------------------------


class Unshuffled(torch.nn.Module):
    """basicsr's RRDBNet for scale 2: pixel_unshuffle, then the body (no padding: even sizes only)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.model(torch.pixel_unshuffle(x, 2))


def rrdb(seed: int, shuffle: int | None):
    torch.manual_seed(seed)
    original = rrdb_module.B.RRDB

    def narrow(*args, **kwargs):
        return original(*args, **{**kwargs, "gc": GROWTH})

    rrdb_module.B.RRDB = narrow
    try:
        in_nc = 3 * (shuffle or 1) ** 2
        net = rrdb_module.RRDBNet(in_nc=in_nc, out_nc=3, num_filters=8, num_blocks=1, scale=4, shuffle_factor=shuffle)
    finally:
        rrdb_module.B.RRDB = original
    # random init is near-identity-free noise; scale weights so outputs span [0, 1] rather than sit at 0
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)
    return net.eval()


def compact(seed: int):
    torch.manual_seed(seed)
    net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu")
    return net.eval()


def export(module, path: Path, example: torch.Tensor) -> None:
    torch.onnx.export(
        module, (example,), str(path), input_names=["input"], output_names=["output"], opset_version=17,
        dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height_out", 3: "width_out"}},
    )
    model = onnx.load(str(path))
    model.producer_version = ""
    onnx.save(model, str(path))


# ---- pictures -----------------------------------------------------------------------------------------------------


def picture(width: int, height: int, seed: int) -> Image.Image:
    """Smooth colour fields with edges and some noise: what a photo's tile looks like to a small network."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 5.0 + seed)
    g = 128 + 100 * np.cos(yy / 4.0) * (xx > width / 3)
    b = 255 * ((xx + yy) % 17 < 8)
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 12, (height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), "RGB")


def to_tensor(img: Image.Image, order: str = "rgb") -> torch.Tensor:
    a = np.array(img)
    if order == "bgr":
        a = a[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(np.transpose(a, (2, 0, 1))) / 255).float().unsqueeze(0)


def a1111_tile(forward, tile: Image.Image, order: str) -> Image.Image:
    """modules/upscaler_utils.upscale_without_tiling, the channel order a parameter."""
    with torch.no_grad():
        out = forward(to_tensor(tile, order))
    out = 255.0 * np.moveaxis(out.squeeze().float().clamp_(0, 1).numpy(), 0, 2)
    out = out.astype(np.uint8)
    if order == "bgr":
        out = out[:, :, ::-1]
    return Image.fromarray(np.ascontiguousarray(out), "RGB")


def a1111_upscale(forward, img: Image.Image, order: str) -> Image.Image:
    """modules/upscaler_utils.upscale_with_model."""
    grid = split_grid(img, TILE, TILE, OVERLAP)
    newtiles = []
    scale = None
    for y, h, row in grid.tiles:
        newrow = []
        for x, w, tile in row:
            out = a1111_tile(forward, tile, order)
            scale = out.width // tile.width
            newrow.append([x * scale, w * scale, out])
        newtiles.append([y * scale, h * scale, newrow])
    return combine_grid(Grid(newtiles, grid.tile_w * scale, grid.tile_h * scale, grid.image_w * scale, grid.image_h * scale, grid.overlap * scale))


def check_onnx(path: Path, forward, img: Image.Image) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_tensor(img)
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = forward(x).numpy()
    err = float(np.abs(got - want).max())
    if got.shape != want.shape or err > 1e-4:
        raise SystemExit(f"{path.name}: ONNX Runtime differs from torch ({got.shape} vs {want.shape}, max {err})")
    return err


def grid_cases(target: Path) -> list[dict]:
    cases = []
    for name, (w, h, tw, th, overlap) in {
        "wide": (100, 72, 48, 40, 16),
        "one-row": (90, 40, 40, 40, 8),
        # test/sd-upscale.test.ts: a 45x37 picture by 2 (88x72 after //8*8) in 32x32 tiles, overlap 8
        "sd-upscale": (88, 72, 32, 32, 8),
    }.items():
        base = picture(w, h, 7)
        grid = split_grid(base, tw, th, overlap)
        positions = [[x, y] for y, _, row in grid.tiles for x, _, _ in row]
        k = 0
        for _, _, row in grid.tiles:
            for t in row:
                t[2] = Image.fromarray(((np.array(t[2]).astype(np.int32) + 41 * k) % 256).astype(np.uint8), "RGB")
                k += 1
        base.save(target / "grid" / f"{name}-input.png")
        combine_grid(grid).save(target / "grid" / f"{name}-combined.png")
        cases.append({"name": name, "width": w, "height": h, "tileWidth": tw, "tileHeight": th, "overlap": overlap,
                      "positions": positions, "input": f"grid/{name}-input.png", "combined": f"grid/{name}-combined.png"})
    return cases


def main() -> None:
    torch.set_num_threads(1)
    if TARGET.exists():
        shutil.rmtree(TARGET)
    for sub in ("float", "a1111", "grid", "images"):
        (TARGET / sub).mkdir(parents=True)

    x2 = rrdb(2, shuffle=2)
    models = {
        "rrdb-x4": (rrdb(1, shuffle=None), rrdb(1, shuffle=None), 4),
        # the graph is basicsr's (no pad); the reference forward is spandrel's (reflect pad, crop)
        "rrdb-x2": (Unshuffled(x2), x2, 2),
        "compact-x4": (compact(3), compact(3), 4),
    }
    images = {"small": picture(16, 12, 1), "odd": picture(15, 11, 2), "tiled": picture(45, 37, 3)}
    for name, img in images.items():
        img.save(TARGET / "images" / f"{name}.png")

    cases = {"tile": TILE, "overlap": OVERLAP, "models": [], "grids": grid_cases(TARGET)}
    for name, (graph, forward, scale) in models.items():
        path = TARGET / f"{name}.onnx"
        export(graph, path, to_tensor(images["small"]))
        onnx_err = check_onnx(path, graph, images["small"])
        floats = []
        # the odd size matters where the graph needs even sizes (rrdb-x2: diffuse pads as spandrel does)
        for image in ("small", "odd") if scale == 2 else ("small",):
            with torch.no_grad():
                out = forward(to_tensor(images[image])).numpy().astype(np.float32)
            if not (0.05 < float(np.clip(out, 0, 1).mean()) < 0.95) or float(out.std()) < 0.05:
                raise SystemExit(f"{name}: output is flat (mean {out.mean()}, std {out.std()}); pick other seeds")
            out.tofile(TARGET / "float" / f"{name}-{image}.bin")
            floats.append({"image": f"images/{image}.png", "file": f"float/{name}-{image}.bin", "shape": list(out.shape)})
        a1111 = []
        # A1111's BGR order once: it is a flip around the same tiling
        for order in ("rgb", "bgr") if name == "rrdb-x4" else ("rgb",):
            a1111_upscale(forward, images["tiled"], order).save(TARGET / "a1111" / f"{name}-{order}.png")
            a1111.append({"order": order, "image": "images/tiled.png", "file": f"a1111/{name}-{order}.png"})
        cases["models"].append({"name": name, "file": f"{name}.onnx", "scale": scale, "onnxVsTorch": onnx_err, "float": floats, "a1111": a1111})

    (TARGET / "cases.json").write_text(json.dumps(cases, indent=1) + "\n")
    total = sum(f.stat().st_size for f in TARGET.rglob("*") if f.is_file())
    print(f"test/fixtures/upscale: {total / 1e6:.3f} MB")
    if total > MAX_MB * 1e6:
        raise SystemExit(f"fixture is {total / 1e6:.2f} MB, over the {MAX_MB} MB budget")


def bench_model() -> None:
    """RealESRGAN_x4plus's shape with random weights: the bench measures time and memory, not pictures."""
    import os
    import sys

    cache = Path(os.environ.get("DIFFUSE_BENCH_CACHE", Path.home() / ".cache" / "diffuse-bench")) / "upscale"
    cache.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = rrdb_module.RRDBNet(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4).eval()
    path = cache / "rrdb-x4plus-random.onnx"
    export(net, path, torch.rand(1, 3, 32, 32))
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    import sys

    bench_model() if "--bench" in sys.argv[1:] else main()
