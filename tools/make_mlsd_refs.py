"""Reference fixtures for --control type=mlsd: controlnet_aux's MLSDdetector (the same code as sd-webui-controlnet's
annotator/mlsd apply_mlsd) on a random MobileV2_MLSD_Large, and its pred_lines + drawing fed synthesised outputs.

Run: /opt/diffuse-venv/bin/python tools/make_mlsd_refs.py
Writes test/fixtures/mlsd/ (deterministic; the network's sampled output may move by ~1e-6 of max on another CPU class).

The network is controlnet_aux 0.0.10's MobileV2_MLSD_Large (the architecture of lllyasviel/Annotators'
mlsd_large_512_fp32.pth), filled from a synthetic recipe (tools/synthetic_checkpoint.py): BatchNorm variances in
[0.5, 1.5), num_batches_tracked 0, the last 1x1 convolution (block23.conv3) at twice the He-like scale: centre logits
spread by ~3 and displacements by ~4-7 half-size pixels, so that the scenes get 20-70 lines of 10-40 pixels (at 16x the
scale they all fell outside the pictures).

Cases:
  * graph: the network's channels 7..11 (what pred_lines reads) on the 64x64 scene as pred_lines feeds it (RGB and a
    plane of ones, / 127.5 - 1 in float32), every 2nd row and column, float32.
  * scene-64 (thr_v 0.1, thr_d 0.1), scene-128x64 (0.2, 2.5): MLSDdetector.__call__ at detect and image resolution =
    the shorter side (its resizes leave these pictures as they are); scene-45x70 (0.1, 0.1) as sd-webui-controlnet's
    mlsd() computes it at Preprocessor Resolution 45: edge-padded to 64x128, apply_mlsd, cropped back. The pictures
    are make_pidinet_refs.py's (test/fixtures/pidinet/), checked equal here.
  * synth-*: pred_lines and the drawing loop of MLSDdetector.__call__ with the model replaced by one returning
    synthesised maps both sides compute (centre logits a permutation of (i * 37) mod n over -10..10, displacements from
    (i * 7919 + c * 104729) mod 1009 over -30..30 half-size pixels, so that lines leave the picture); `override` puts
    one displacement out of OpenCV's int range (3e9) or NaN at the given centre, where the extension's loop stops.
  * sigmoid: SHA-256 of torch.sigmoid over float32 bit patterns 0, 4099, 8198, ... below +inf, with and without the
    sign (a multiple of 32 values: the vectorised kernel only), as diffuse's src/image/preprocess/torch-sigmoid.ts
    must give it.
"""

import hashlib
import math
import os

import numpy as np
import torch
from PIL import Image

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "mlsd")
PICTURES = os.path.join(HERE, "..", "test", "fixtures", "pidinet")
SEED = 31
HEAD_SHIFT = 1


def recipe_for(state: dict) -> dict:
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        if key.endswith("num_batches_tracked"):
            entries.append([key, "I64", shape, "arange", 0, 0.0])
        elif key.endswith("running_var"):
            entries.append([key, "F32", shape, "uniform", -1, 1.0])
        elif len(shape) == 1 and key.endswith(".weight"):
            entries.append([key, "F32", shape, "uniform", -2, 1.0])
        elif len(shape) == 1:
            entries.append([key, "F32", shape, "uniform", -3, 0.0])
        else:
            scale = round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
            if key.startswith("block23.conv3"):
                scale += HEAD_SHIFT
            entries.append([key, "F32", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def network_input(picture: np.ndarray) -> torch.Tensor:
    """pred_lines' batch_image for input_shape = the picture's size (its INTER_AREA resize a copy)."""
    h, w = picture.shape[:2]
    stacked = np.concatenate([picture, np.ones([h, w, 1])], axis=-1).transpose((2, 0, 1))
    batch = np.expand_dims(stacked, axis=0).astype("float32")
    return torch.from_numpy((batch / 127.5) - 1.0).float()


def synthesised(width: int, height: int, override: dict | None) -> np.ndarray:
    """[1, 9, height, width]: channels 0..4 as the test computes them (float64 arithmetic, then float32), 5..8 zero."""
    n = width * height
    i = np.arange(n, dtype=np.int64)
    maps = np.zeros((9, n), dtype=np.float32)
    maps[0] = ((((i * 37) % n) / n) * 20 - 10).astype(np.float32)
    for c in range(1, 5):
        maps[c] = ((((i * 7919 + c * 104729) % 1009) / 1009) * 60 - 30).astype(np.float32)
    if override:
        maps[override["channel"], override["index"]] = np.float32(override["value"])
    return maps.reshape(1, 9, height, width)


class Maps(torch.nn.Module):
    """A stand-in for the network: pred_lines reads only its output (and a parameter's device)."""

    def __init__(self, maps: np.ndarray) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.maps = torch.from_numpy(maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[2] == 2 * self.maps.shape[2] and x.shape[3] == 2 * self.maps.shape[3]
        return self.maps


def nth_drawn(mlsd, maps: np.ndarray, thr_v: float, thr_d: float, n: int) -> int:
    """The flat index of the centre whose segment pred_lines gives n-th (0-based)."""
    pts, scores, vmap = mlsd.utils.deccode_output_score_and_ptss(torch.from_numpy(maps), 200, 3)
    dist = np.sqrt(np.sum((vmap[:, :, :2] - vmap[:, :, 2:]) ** 2, axis=-1))
    kept = [int(y) * maps.shape[3] + int(x) for (y, x), s in zip(pts, scores) if s > thr_v and dist[y, x] > thr_d]
    return kept[n]


def sigmoid_hash() -> dict:
    bits = np.arange(0, 0x7F800000, 4099, dtype=np.uint32)
    bits = np.concatenate([bits, bits | np.uint32(0x80000000)])
    bits = bits[: len(bits) // 32 * 32]
    out = torch.sigmoid(torch.from_numpy(bits.view(np.float32).copy())).numpy()
    return {"step": 4099, "count": int(len(bits)), "sha256": hashlib.sha256(out.tobytes()).hexdigest()}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mlsd = load_aux_module("mlsd")
    net = mlsd.MobileV2_MLSD_Large()
    recipe = recipe_for(net.state_dict())
    net.load_state_dict(sc.tensors(recipe), strict=True)
    net.float().eval()
    detector = mlsd.MLSDdetector(net)
    os.makedirs(OUT, exist_ok=True)
    cases = []

    for name, width, height, seed, thr_v, thr_d, whole in [("scene-64", 64, 64, 5, 0.1, 0.1, True), ("scene-128x64", 128, 64, 6, 0.2, 2.5, True), ("scene-45x70", 45, 70, 7, 0.1, 0.1, False)]:
        picture = scene(width, height, seed)
        stored = np.asarray(Image.open(os.path.join(PICTURES, f"{name}.png")).convert("RGB"))
        assert (stored == picture).all(), f"{name}: test/fixtures/pidinet's picture is another"
        lines = detector_map(mlsd, lambda image, **res: detector(image, thr_v=thr_v, thr_d=thr_d, output_type="np", **res), picture, whole)
        case = {
            "name": name,
            "picture": f"../pidinet/{name}.png",
            "value": thr_v,
            "distance": thr_d,
            "lines": save_png(OUT, f"{name}.lines.png", lines),
            "reference": "MLSDdetector.__call__" if whole else "sd-webui-controlnet mlsd(): edge-pad to 64, apply_mlsd, crop",
        }
        if name == "scene-64":
            with torch.no_grad():
                out = net(network_input(picture))[:, :5, ::2, ::2]
            out.numpy().astype(np.float32).tofile(os.path.join(OUT, "scene-64.output.bin"))
            case["output"] = {"file": "scene-64.output.bin", "shape": list(out.shape), "stride": 2}
        cases.append(case)
        print(name, "white pixels", int((lines > 0).sum()), "of", lines.size)

    for name, width, height, thr_v, thr_d, override in [
        ("synth-128", 128, 128, 0.1, 0.1, None),
        ("synth-128-strict", 128, 128, 0.9999, 40.0, None),
        ("synth-64x192-huge", 192, 64, 0.1, 0.1, {"rank": 10, "channel": 3, "value": 3e9}),
        ("synth-64x192-nan", 192, 64, 0.1, 0.1, {"rank": 20, "channel": 2, "value": float("nan")}),
    ]:
        if override:
            base = synthesised(width // 2, height // 2, None)
            override = {"index": nth_drawn(mlsd, base, thr_v, thr_d, override["rank"]), "channel": override["channel"], "value": override["value"]}
        maps = synthesised(width // 2, height // 2, override)
        fake = mlsd.MLSDdetector(Maps(maps))
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        lines = fake(picture, thr_v=thr_v, thr_d=thr_d, detect_resolution=min(width, height), image_resolution=min(width, height), output_type="np")
        assert lines.shape == (height, width, 3)
        case = {"name": name, "width": width, "height": height, "value": thr_v, "distance": thr_d, "lines": save_png(OUT, f"{name}.lines.png", lines[..., 0]), "reference": "MLSDdetector.__call__ with synthesised maps"}
        if override:
            case["override"] = {**override, "value": "NaN" if math.isnan(override["value"]) else override["value"]}
        cases.append(case)
        print(name, "white pixels", int((lines[..., 0] > 0).sum()), "of", width * height)

    info_cases = cases + [{"name": "sigmoid", **sigmoid_hash()}]
    write_fixture(OUT, "mlsd", recipe, info_cases)


if __name__ == "__main__":
    main()
