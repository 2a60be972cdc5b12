"""What tools/make_hed_refs.py, make_pidinet_refs.py and make_lineart_refs.py share: controlnet_aux's detector modules loaded alone, and
sd-webui-controlnet's padding (scripts/preprocessor/legacy/processor.py, written out: the extension cannot be imported
without AUTOMATIC1111).

controlnet_aux/__init__.py imports every detector (timm, scikit-image, mediapipe...): a detector's module and
controlnet_aux.util are loaded here through the package's path without running its __init__.
"""

import gzip
import hashlib
import importlib
import importlib.util
import json
import math
import os
import sys
import types

import numpy as np
import torch
from PIL import Image

import synthetic_checkpoint as sc


def load_aux_module(name: str):
    """controlnet_aux.<name> (hed, pidi, lineart) without the package's __init__."""
    if "controlnet_aux" not in sys.modules:
        spec = importlib.util.find_spec("controlnet_aux")
        package = types.ModuleType("controlnet_aux")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["controlnet_aux"] = package
    return importlib.import_module(f"controlnet_aux.{name}")


def pad64(x: int) -> int:
    """sd-webui-controlnet's pad64: the rows or columns that bring x up to a multiple of 64."""
    return int(np.ceil(float(x) / 64.0) * 64 - x)


def pad_edge_to_64(picture: np.ndarray) -> np.ndarray:
    """resize_image_with_pad at scale 1: np.pad mode='edge' below and to the right up to multiples of 64."""
    height, width = picture.shape[:2]
    return np.pad(picture, [[0, pad64(height)], [0, pad64(width)], [0, 0]], mode="edge")


def save_png(out: str, name: str, pixels: np.ndarray) -> str:
    Image.fromarray(pixels).save(os.path.join(out, name), optimize=True)
    return name


def write_fixture(out: str, kind: str, recipe: dict, cases: list) -> None:
    """<out>/<kind>.recipe.json.gz and cases.json: the recipe's .safetensors SHA-256 and parameter count, the versions, the cases."""
    with gzip.GzipFile(os.path.join(out, f"{kind}.recipe.json.gz"), "wb", mtime=0) as f:
        f.write(json.dumps(recipe, separators=(",", ":")).encode())
    info = {
        "controlnet_aux": "0.0.10",
        "torch": torch.__version__,
        "safetensors_sha256": hashlib.sha256(sc.to_bytes(recipe)).hexdigest(),
        "parameters": sum(math.prod(e[2]) for e in recipe["tensors"]),
        "cases": cases,
    }
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def detector_map(module, call, picture: np.ndarray, whole: bool, grey: bool = True) -> np.ndarray:
    """One grey map (or RGB, grey=False): the detector's whole __call__ at detect and image resolution = the shorter side (whole), or
    sd-webui-controlnet's way (edge-pad to 64, the detector's middle with `module`.resize_image made the identity,
    crop back). `call(image, **resolutions)` runs the detector with its own options."""
    height, width = picture.shape[:2]
    if whole:
        out = call(picture, detect_resolution=min(width, height), image_resolution=min(width, height))
    else:
        as_given = module.resize_image
        module.resize_image = lambda image, resolution: image
        try:
            out = call(pad_edge_to_64(picture))[:height, :width]
        finally:
            module.resize_image = as_given
    assert out.shape == (height, width, 3)
    if not grey:
        return out
    assert (out[..., 0] == out[..., 2]).all()
    return out[..., 0]
