"""Reference fixtures for --control type=lineart / lineart-coarse: controlnet_aux's LineartDetector on a random network.

Run: /opt/diffuse-venv/bin/python tools/make_lineart_refs.py
Writes test/fixtures/lineart/ (deterministic: a rerun rewrites the same recipe, pictures and cases.json; the
network output .bin may move by ~1e-6 of max on another CPU class, torch not being bit-stable across them).

The network is controlnet_aux 0.0.10's lineart Generator(3, 1, 3), the architecture of lllyasviel/Annotators'
sk_model.pth (lineart_realistic) and sk_model2.pth (lineart_coarse), 4.3M parameters: reflection pads, 7x7 and 3x3
convolutions, InstanceNorm2d without affine, two stride-2 convolutions, three residual blocks, two transposed
convolutions, a 7x7 convolution and a sigmoid. Its weights come from a synthetic recipe (tools/synthetic_checkpoint.py)
that the test writes as .safetensors (SHA-256 recorded). Both modules run the same network code on their own file,
so one random network serves both cases.

Cases (each a picture, the uint8 line map, what was asked):
  * scene-64: 64x64, lineart_realistic, LineartDetector.__call__ (coarse=False) at detect and image resolution 64
    (its resizes leave the picture as it is); plus the network's output as float32, to check the graph itself.
  * scene-128x64: 128 wide, 64 high, lineart_coarse, LineartDetector.__call__ (coarse=True) at 64.
  * scene-45x70: 45 wide, 70 high, lineart_realistic as sd-webui-controlnet's lineart() computes it at Preprocessor
    Resolution 45: the picture edge-padded to 64x128, 255 - the network's map (annotator/lineart: the same code as
    LineartDetector's middle, run here through LineartDetector with its resize_image made the identity), cropped.
"""

import math
import os

import numpy as np
import torch

import synthetic_checkpoint as sc
from controlnet_aux_refs import detector_map, load_aux_module, save_png, write_fixture
from make_preprocess_refs import scene

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "lineart")
SEED = 23


def recipe_for(state: dict) -> dict:
    """He-like uniform scales rounded to powers of 2 (InstanceNorm keeps every stage near unit scale)."""
    entries = []
    for key, tensor in state.items():
        shape = list(tensor.shape)
        scale = -3 if key.endswith(".bias") else round(math.log2(math.sqrt(6 / math.prod(shape[1:]))))
        entries.append([key, "F32", shape, "uniform", scale, 0.0])
    return {"seed": SEED, "tensors": entries}


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    lineart = load_aux_module("lineart")
    net = lineart.Generator(3, 1, 3)
    recipe = recipe_for(net.state_dict())
    net.load_state_dict(sc.tensors(recipe))
    net.float().eval()
    detector = lineart.LineartDetector(net, net)
    os.makedirs(OUT, exist_ok=True)

    cases = []
    for name, width, height, seed, coarse, whole in [("scene-64", 64, 64, 5, False, True), ("scene-128x64", 128, 64, 6, True, True), ("scene-45x70", 45, 70, 7, False, False)]:
        picture = scene(width, height, seed)
        lines = detector_map(lineart, lambda image, **res: detector(image, coarse=coarse, output_type="np", **res), picture, whole)
        case = {
            "name": name,
            "module": "lineart_coarse" if coarse else "lineart_realistic",
            "picture": save_png(OUT, f"{name}.png", picture),
            "lines": save_png(OUT, f"{name}.lines.png", lines),
            "reference": "LineartDetector.__call__" if whole else "sd-webui-controlnet lineart(): edge-pad to 64, 255 - network map, crop",
        }
        if name == "scene-64":
            with torch.no_grad():
                out = net(torch.from_numpy(picture.copy()).float().div(255.0).permute(2, 0, 1)[None])
            out.numpy().astype(np.float32).tofile(os.path.join(OUT, f"{name}.output.bin"))
            case["output"] = {"file": f"{name}.output.bin", "shape": list(out.shape)}
        cases.append(case)
        print(name, case["module"], np.histogram(lines, bins=8, range=(0, 256))[0].tolist())

    write_fixture(OUT, "lineart", recipe, cases)


if __name__ == "__main__":
    main()
