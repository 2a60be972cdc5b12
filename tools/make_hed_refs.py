"""Reference fixtures for --control type=softedge / softedge-safe: controlnet_aux's HEDdetector on a random HED.

Run: /opt/diffuse-venv/bin/python tools/make_hed_refs.py
Writes test/fixtures/hed/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the
projections' .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's ControlNetHED_Apache2 (the architecture of lllyasviel/Annotators'
ControlNetHED.pth, 14.7M parameters) filled from a synthetic recipe (tools/synthetic_checkpoint.py): the test
rewrites the same weights as .safetensors from hed.recipe.json.gz (its SHA-256 is recorded). The recipe's scales
keep the five projections a few units wide so that sigmoid(mean) spreads over 0..255 instead of saturating.

Cases (each a picture, the uint8 edge map, what HEDdetector was asked):
  * scene-64: 64x64, softedge_hed (safe=False), detect and image resolution 64: the whole HEDdetector.__call__,
    whose resize_image (cv2 INTER_AREA at scale 1, multiples of 64) and final INTER_LINEAR resize leave the
    picture as it is; plus the five projections as float32, to check the graph itself.
  * scene-128x64: 128 wide, 64 high, softedge_hedsafe (safe=True, safe_step 2), the whole __call__ at 64.
  * scene-45x70: 45 wide, 70 high, softedge_hed as sd-webui-controlnet's hed() computes it at Preprocessor
    Resolution 45 (scripts/preprocessor/legacy/processor.py, written out here: the extension cannot be imported
    without AUTOMATIC1111): resize_image_with_pad at scale 1 edge-pads the picture to 64x128 (np.pad
    mode='edge'), annotator/hed's apply_hed (the same code as HEDdetector's middle, run here through
    HEDdetector with its resize_image made the identity) makes the map, remove_pad crops it back. HEDdetector
    itself would stretch such a picture to multiples of 64 instead; diffuse pads as the extension does.
controlnet_aux.hed is loaded alone (tools/controlnet_aux_refs.py).
"""

import math
import os

import numpy as np
import torch

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "hed")
SEED = 17
# 2^-5 on the 1x1 projections' usual scale: the mean of the five lands a few units either side of 0.
PROJECTION_SHIFT = -5


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2; norm (subtracted from 0..255 pixels) within +-128."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        if key == "norm":
            scale = 7
        elif key.endswith(".bias"):
            scale = -1 if "projection" in key else -3
        else:
            scale = round(math.log2(math.sqrt(6 / math.prod(shape[1:])))) + (PROJECTION_SHIFT if "projection" in key else 0)
        entries.append([key, "F32", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    hed = load_aux_module("hed")
    net = hed.ControlNetHED_Apache2()
    recipe = recipe_for(net.state_dict())
    net.load_state_dict(sc.tensors(recipe))
    net.float().eval()
    detector = hed.HEDdetector(net)
    os.makedirs(OUT, exist_ok=True)

    cases = []
    for name, width, height, seed, safe, whole in [("scene-64", 64, 64, 5, False, True), ("scene-128x64", 128, 64, 6, True, True), ("scene-45x70", 45, 70, 7, False, False)]:
        picture = scene(width, height, seed)
        edge = detector_map(hed, lambda image, **res: detector(image, safe=safe, output_type="np", **res), picture, whole)
        case = {
            "name": name,
            "module": "softedge_hedsafe" if safe else "softedge_hed",
            "picture": save_png(OUT, f"{name}.png", picture),
            "edge": save_png(OUT, f"{name}.edge.png", edge),
            "reference": "HEDdetector.__call__" if whole else "sd-webui-controlnet hed(): edge-pad to 64, apply_hed, crop",
        }
        if name == "scene-64":
            with torch.no_grad():
                projections = net(torch.from_numpy(picture.copy()).float().permute(2, 0, 1)[None])
            flat = np.concatenate([p.numpy().astype(np.float32).ravel() for p in projections])
            flat.tofile(os.path.join(OUT, f"{name}.projections.bin"))
            case["projections"] = {"file": f"{name}.projections.bin", "shapes": [list(p.shape) for p in projections]}
        cases.append(case)
        print(name, case["module"], np.histogram(edge, bins=8, range=(0, 256))[0].tolist())

    write_fixture(OUT, "hed", recipe, cases)


if __name__ == "__main__":
    main()
