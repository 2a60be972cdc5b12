"""Reference fixtures for --control type=lineart-anime: controlnet_aux's LineartAnimeDetector on a random network.

Run: /opt/diffuse-venv/bin/python tools/make_lineart_anime_refs.py
Writes test/fixtures/lineart-anime/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the
network output .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's lineart_anime UnetGenerator(3, 1, 8, 64) with InstanceNorm2d(affine=False,
track_running_stats=False) and no dropout, as LineartAnimeDetector.from_pretrained builds it: the architecture of
lllyasviel/Annotators' netG.pth, 54.4M parameters. Its weights come from a synthetic recipe
(tools/synthetic_checkpoint.py) that the test writes as .safetensors (SHA-256 recorded), stored as float16 (the
recipe's values are exact in it) so that the file the tests write is 109 MB rather than 218 MB.

OpenCV runs with IPP off (cv2.ipp.setUseIPP(False)): its INTER_CUBIC then takes OpenCV's own code, which
src/image/cv-resize-u8.ts and cv-resize-cubic.ts reproduce bit for bit; opencv-python's default sends both resizes to
IPP, whose cubic differs by a level or an ulp here and there (with IPP on, these maps differ from the committed ones
in 0, 6 and 0 pixels by one level: scene-64, scene-128x64, scene-45x70).

Cases (each a picture, the uint8 line map, what was asked):
  * scene-64: 64x64, LineartAnimeDetector.__call__ at detect and image resolution 64: the picture resized by
    cv2.INTER_CUBIC to 256x256, the network on RGB / 127.5 - 1, its output * 127.5 + 127.5 resized back by INTER_CUBIC,
    clipped and truncated to 8 bits, 255 - that. Plus, to check the graph itself, the network's output on the picture
    upscaled 4x by repetition (np.repeat, which the test reproduces exactly), at every 4th row and column (4096 of its
    65536 values; the whole map is 256 kB).
  * scene-128x64: 128 wide, 64 high, the whole __call__ at 64 (resized to 256x256).
  * scene-45x70: 45 wide, 70 high, as sd-webui-controlnet's lineart_anime() computes it at Preprocessor Resolution 45:
    the picture edge-padded to 64x128, 255 - annotator/lineart_anime's map (the same code as LineartAnimeDetector's
    middle, run here through it with its resize_image made the identity), cropped.
"""

import functools
import math
import os

import cv2
import numpy as np
import torch
import torch.nn as nn

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "lineart-anime")
SEED = 31
STRIDE = 4
# A power of 2 on the last transposed convolution (model.model.3.weight): at He scale the tanh saturates at +-1 and
# torch's own float32 output is 1.4e-5 of max away from float64; an eighth keeps it within +-0.97 (error 2e-6).
LAST_SHIFT = -3


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2 (InstanceNorm keeps every level near unit scale), LAST_SHIFT."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        scale = -3 if key.endswith(".bias") else round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
        if key == "model.model.3.weight":
            scale += LAST_SHIFT
        entries.append([key, "F16", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cv2.ipp.setUseIPP(False)
    anime = load_aux_module("lineart_anime")
    norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    net = anime.UnetGenerator(3, 1, 8, 64, norm_layer=norm_layer, use_dropout=False)
    recipe = recipe_for(net.state_dict())
    net.load_state_dict(sc.tensors(recipe))
    net.float().eval()
    detector = anime.LineartAnimeDetector(net)
    os.makedirs(OUT, exist_ok=True)

    cases = []
    for name, width, height, seed, whole in [("scene-64", 64, 64, 5, True), ("scene-128x64", 128, 64, 6, True), ("scene-45x70", 45, 70, 7, False)]:
        picture = scene(width, height, seed)
        lines = detector_map(anime, lambda image, **res: detector(image, output_type="np", **res), picture, whole)
        case = {
            "name": name,
            "module": "lineart_anime",
            "picture": save_png(OUT, f"{name}.png", picture),
            "lines": save_png(OUT, f"{name}.lines.png", lines),
            "reference": "LineartAnimeDetector.__call__" if whole else "sd-webui-controlnet lineart_anime(): edge-pad to 64, 255 - network map, crop",
        }
        if name == "scene-64":
            big = np.repeat(np.repeat(picture, 4, axis=0), 4, axis=1)
            with torch.no_grad():
                out = net(torch.from_numpy(big.copy()).float().div(127.5).sub(1.0).permute(2, 0, 1)[None])
            sampled = out.numpy().astype(np.float32)[:, :, ::STRIDE, ::STRIDE].copy()
            sampled.tofile(os.path.join(OUT, f"{name}.output.bin"))
            case["output"] = {"file": f"{name}.output.bin", "repeat": 4, "stride": STRIDE, "shape": list(sampled.shape)}
        cases.append(case)
        print(name, case["module"], np.histogram(lines, bins=8, range=(0, 256))[0].tolist())

    write_fixture(OUT, "lineart-anime", recipe, cases)


if __name__ == "__main__":
    main()
